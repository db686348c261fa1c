"""Benchmark rows for the exact discrete samplers: ppml_fast (secure AES-CTR stream, all
cores) against its pure-Python ``Fraction`` oracle and, when installed, OpenDP's and
diffprivlib's discrete Gaussian / discrete Laplace (geometric) samplers.

The oracle and the peers take ~10-30 µs per sample, so they are timed only on the 10^4
rows, on exactly the same sample count as the native kernel; larger rows are native only.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from .. import noise
from ..reference import noise_discrete as ref
from . import Case, Target

PEER_MAX = 10**4


def _peers(kind: str, param: float, n: int) -> dict[str, Any]:
    """OpenDP's vector measurement on integers and diffprivlib's per-value ``randomise``."""
    peers: dict[str, Any] = {}
    if n > PEER_MAX:
        return peers
    try:
        import opendp.prelude as dp

        dp.enable_features("contrib")
        domain = dp.vector_domain(dp.atom_domain(T=int))
        if kind == "gaussian":
            meas = dp.m.make_gaussian(domain, dp.l2_distance(T=int), scale=param)
        else:
            meas = dp.m.make_laplace(domain, dp.l1_distance(T=int), scale=param)
        zeros = [0] * n
        peers["opendp"] = lambda: meas(zeros)
    except ImportError:
        pass
    try:
        from diffprivlib.mechanisms import GaussianDiscrete, Geometric

        if kind == "gaussian":
            if param > 100:  # diffprivlib's sampler takes time linear in σ (~7 ms at 1e4)
                return peers
            mech: Any = GaussianDiscrete(epsilon=0.5, delta=1e-5)
            mech._scale = param  # diffprivlib derives σ from (ε, δ); pin it to ours
        else:
            mech = Geometric(epsilon=1.0 / param, sensitivity=1)
        peers["diffprivlib"] = lambda: [mech.randomise(0) for _ in range(n)]
    except ImportError:
        pass
    return peers


def cases(full: bool) -> list[Case]:
    sizes = [10**4, 10**6] if not full else [10**4, 10**5, 10**6, 10**7]
    params = [("gaussian", 10), ("gaussian", 10.3), ("gaussian", 1e6), ("laplace", 10.3)]
    out = []
    for n in sizes:
        for kind, p in params:
            sampler = noise.discrete_gaussian if kind == "gaussian" else noise.discrete_laplace
            oracle = ref.discrete_gaussian if kind == "gaussian" else ref.discrete_laplace
            label = "σ" if kind == "gaussian" else "b"
            native = partial(sampler, p, n)
            reference = partial(oracle, p, n, rng=0) if n <= PEER_MAX else None
            out.append(
                Case(
                    f"discrete_{kind} {label}={p:g} (exact)",
                    f"{n:.0e}",
                    native=native,
                    reference=reference,
                    reference_name="Python Fraction oracle",
                    peers=_peers(kind, p, n),
                    items=n,
                    target=Target("M/s", 10.0, ">= 10^7 samples/s exact")
                    if (kind, p, n) == ("gaussian", 10, 10**6)
                    else None,
                )
            )
    return out
