"""Benchmark rows for the continuous samplers: ppml_fast (secure AES-CTR stream, all
cores) against numpy's ``Generator(PCG64)`` methods, and OpenDP / diffprivlib when installed."""

from __future__ import annotations

from functools import partial

import numpy as np

from .. import noise
from ..reference import noise as ref
from . import Case, Target


def _peers(kind: str, n: int) -> dict:
    """Peer samplers for ``n`` continuous values: OpenDP's vector mechanism and
    diffprivlib's per-value ``randomise`` (both far slower, so only on small sizes)."""
    peers: dict = {}
    if n > 10**4:
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


def _target(n: int, dtype: type, minimum: float) -> Target | None:
    if n != 10**7 or dtype is not np.float64:
        return None
    return Target("speed-up", minimum, f">= {minimum:g}x numpy Generator(PCG64)")


def cases(full: bool) -> list[Case]:
    sizes = [10**4, 10**5, 10**7] if not full else [10**4, 10**5, 10**6, 10**7, 10**8]
    out = []
    for n in sizes:
        pcg = np.random.Generator(np.random.PCG64())
        for dt in (np.float64, np.float32) if n == 10**7 else (np.float64,):
            tag = "" if dt is np.float64 else " float32"
            out.append(
                Case(
                    f"laplace{tag}",
                    f"{n:.0e}",
                    native=partial(noise.laplace, 1.0, n, dtype=dt),
                    reference=partial(ref.laplace, 1.0, n, rng=pcg, dtype=dt),
                    reference_name="numpy PCG64",
                    peers=_peers("laplace", n) if dt is np.float64 else {},
                    items=n,
                    target=_target(n, dt, 4.0),
                )
            )
            out.append(
                Case(
                    f"gaussian{tag}",
                    f"{n:.0e}",
                    native=partial(noise.gaussian, 1.0, n, dtype=dt),
                    reference=partial(ref.gaussian, 1.0, n, rng=pcg, dtype=dt),
                    reference_name="numpy PCG64",
                    peers=_peers("gaussian", n) if dt is np.float64 else {},
                    items=n,
                    target=_target(n, dt, 2.5),
                )
            )
    return out
