"""Benchmark cases for :mod:`ppml_fast.noise`: the continuous and the exact discrete samplers.

Continuous (Laplace, Gaussian): ppml_fast (secure AES-CTR stream, all cores) against
numpy's ``Generator(PCG64)`` methods, and OpenDP's vector mechanism and diffprivlib's
per-value ``randomise`` when installed (far slower: only on the 10^4 rows). The
targets are at 10^7 float64 values.

Discrete (Gaussian, Laplace, exact): ppml_fast against its pure-Python ``Fraction``
oracle and, when installed, OpenDP's and diffprivlib's discrete Gaussian / discrete
Laplace (geometric) samplers. The oracle and the peers take ~10-30 µs per sample, so they
are timed only on the 10^4 rows, on exactly the same sample count as the native kernel;
larger rows are native only.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np

from .. import noise
from ..reference import noise as ref
from ..reference import noise_discrete as ref_discrete
from . import Case, Target, select

PEER_MAX = 10**4


def _peers(kind: str, n: int) -> dict[str, Any]:
    """OpenDP's and diffprivlib's continuous samplers for ``n`` values (small ``n`` only)."""
    peers: dict[str, Any] = {}
    if n > PEER_MAX:
        return peers
    try:
        import opendp.prelude as dp

        dp.enable_features("contrib")
        space = (
            dp.vector_domain(dp.atom_domain(T=float, nan=False)),
            dp.l1_distance(T=float) if kind == "laplace" else dp.l2_distance(T=float),
        )
        make = dp.m.make_laplace if kind == "laplace" else dp.m.make_gaussian
        meas = make(*space, scale=1.0)
        zeros = [0.0] * n
        peers["opendp"] = lambda: meas(zeros)
    except ImportError:
        pass
    try:
        from diffprivlib.mechanisms import Gaussian, Laplace

        mech = (
            Laplace(epsilon=1.0, sensitivity=1.0)
            if kind == "laplace"
            else Gaussian(epsilon=0.5, delta=1e-5, sensitivity=1.0)
        )
        peers["diffprivlib"] = lambda: [mech.randomise(0.0) for _ in range(n)]
    except ImportError:
        pass
    return peers


def _discrete_peers(kind: str, param: float, n: int) -> dict[str, Any]:
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


def _has_length(n: int, x: Any) -> bool:
    return len(x) == n


def _continuous(n: int, dtype: type, full: bool) -> list[Case]:
    pcg = np.random.Generator(np.random.PCG64())
    tag = "" if dtype is np.float64 else " float32"
    out = []
    for kind, minimum in (("laplace", 4.0), ("gaussian", 2.5)):
        target = None
        if n == 10**7 and dtype is np.float64:
            target = Target("speed-up", minimum, f">= {minimum:g}x numpy Generator(PCG64)")
        out.append(
            Case(
                f"{kind}{tag}",
                f"{n:.0e}",
                native=partial(getattr(noise, kind), 1.0, n, dtype=dtype),
                reference=partial(getattr(ref, kind), 1.0, n, rng=pcg, dtype=dtype),
                reference_name="numpy PCG64",
                peers=_peers(kind, n) if dtype is np.float64 else {},
                items=n,
                target=target,
                full=full,
                check=partial(_has_length, n),
            )
        )
    return out


#: (kind, σ or b, quick): the quick run keeps σ = 10 and b = 10.3; --full adds the rest.
_DISCRETE = [
    ("gaussian", 10.0, True),
    ("gaussian", 10.3, False),
    ("gaussian", 1e6, False),
    ("laplace", 10.3, True),
]


def _discrete(n: int, kind: str, param: float, full: bool) -> Case:
    sampler = noise.discrete_gaussian if kind == "gaussian" else noise.discrete_laplace
    oracle = ref_discrete.discrete_gaussian if kind == "gaussian" else ref_discrete.discrete_laplace
    label = "σ" if kind == "gaussian" else "b"
    target = None
    if (kind, param, n) == ("gaussian", 10.0, 10**6):
        target = Target("M/s", 10.0, ">= 10^7 samples/s exact")
    return Case(
        f"discrete_{kind} {label}={param:g} (exact)",
        f"{n:.0e}",
        native=partial(sampler, param, n),
        reference=partial(oracle, param, n, rng=0) if n <= PEER_MAX else None,
        reference_name="Python Fraction oracle",
        peers=_discrete_peers(kind, param, n),
        items=n,
        target=target,
        full=full,
        check=partial(_has_length, n),
    )


def cases(full: bool) -> list[Case]:
    """The noise rows; ``full`` adds the large sizes and the other discrete parameters.

    Parameters
    ----------
    full : bool
        Include the rows marked ``full``.

    Returns
    -------
    list of Case
        Continuous samplers at 10^4 (with peers), 10^6 (float64 and float32) and 10^7
        float64 (the targets); ``full`` adds 10^5, 10^7 float32 and 10^8. Discrete
        samplers at 10^4 (oracle, peers) and 10^6 (the 10^7 samples/s target);
        ``full`` adds 10^5, 10^7 and σ = 10.3 and 10^6.
    """
    out: list[Case] = []
    for n, dtypes, large in (
        (10**4, (np.float64,), False),
        (10**5, (np.float64,), True),
        (10**6, (np.float64, np.float32), False),
        (10**7, (np.float64,), False),
        (10**7, (np.float32,), True),
        (10**8, (np.float64,), True),
    ):
        for dt in dtypes:
            out += _continuous(n, dt, large)
    for n in (10**4, 10**5, 10**6, 10**7):
        for kind, param, quick in _DISCRETE:
            out.append(_discrete(n, kind, param, full=not quick or n in (10**5, 10**7)))
    return select(out, full)
