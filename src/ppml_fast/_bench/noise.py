"""Benchmark rows for the continuous samplers: ppml_fast (secure AES-CTR stream, all
cores) against numpy's ``Generator(PCG64)`` methods and diffprivlib when installed."""
from __future__ import annotations

import numpy as np

from .. import noise
from ..reference import noise as ref
from . import Case


def _peers_laplace(n: int) -> dict:
    peers = {}
    try:
        from diffprivlib.mechanisms import Laplace
    except ImportError:
        return peers
    if n <= 10**5:
        mech = Laplace(epsilon=1.0, sensitivity=1.0)
        peers["diffprivlib"] = lambda: [mech.randomise(0.0) for _ in range(n)]
    return peers


def cases(full: bool) -> list[Case]:
    sizes = [10**5, 10**7] if not full else [10**4, 10**5, 10**6, 10**7, 10**8]
    out = []
    for n in sizes:
        pcg = np.random.Generator(np.random.PCG64())
        for dt in (np.float64, np.float32) if n == 10**7 else (np.float64,):
            tag = "" if dt is np.float64 else " float32"
            out.append(
                Case(
                    f"laplace{tag}",
                    f"{n:.0e}",
                    native=lambda n=n, dt=dt: noise.laplace(1.0, n, dtype=dt),
                    reference=lambda n=n, dt=dt, g=pcg: ref.laplace(1.0, n, rng=g, dtype=dt),
                    reference_name="numpy PCG64",
                    peers=_peers_laplace(n) if dt is np.float64 else {},
                    items=n,
                )
            )
            out.append(
                Case(
                    f"gaussian{tag}",
                    f"{n:.0e}",
                    native=lambda n=n, dt=dt: noise.gaussian(1.0, n, dtype=dt),
                    reference=lambda n=n, dt=dt, g=pcg: ref.gaussian(1.0, n, rng=g, dtype=dt),
                    reference_name="numpy PCG64",
                    items=n,
                )
            )
    return out
