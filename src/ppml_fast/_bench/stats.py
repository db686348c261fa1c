"""Benchmark rows for :mod:`ppml_fast.stats`: the fused Numba clip-and-sum / histogram
kernels (plus secure Laplace noise) against ``numpy.clip`` + ``sum`` / ``numpy.histogram``
(plus numpy PCG64 noise)."""

from __future__ import annotations

from functools import partial

import numpy as np

from .. import stats
from ..reference import stats as ref
from ..rng import default_rng
from . import Case

_BOUNDS = (-1.0, 3.0)


def cases(full: bool) -> list[Case]:
    sizes = [10**6] if not full else [10**5, 10**6, 10**7]
    secure = default_rng()
    out = []
    for n in sizes:
        x = np.random.default_rng(0).normal(1.0, 2.0, n)
        pcg = np.random.Generator(np.random.PCG64())
        for name in ("dp_sum", "dp_mean", "dp_var"):
            out.append(
                Case(
                    name,
                    f"{n:.0e}",
                    native=partial(
                        getattr(stats, name), x, bounds=_BOUNDS, epsilon=1.0, rng=secure
                    ),
                    reference=partial(getattr(ref, name), x, bounds=_BOUNDS, epsilon=1.0, rng=pcg),
                    reference_name="numpy clip + sum",
                    items=n,
                )
            )
        out.append(
            Case(
                "dp_histogram 64 bins",
                f"{n:.0e}",
                native=partial(
                    stats.dp_histogram, x, bins=64, range=_BOUNDS, epsilon=1.0, rng=secure
                ),
                reference=partial(
                    ref.dp_histogram, x, bins=64, range=_BOUNDS, epsilon=1.0, rng=pcg
                ),
                reference_name="numpy clip + histogram",
                items=n,
            )
        )
        x2 = x.reshape(-1, 100)
        out.append(
            Case(
                "dp_sum axis=0 (n, 100)",
                f"{n:.0e}",
                native=partial(stats.dp_sum, x2, bounds=_BOUNDS, epsilon=1.0, rng=secure, axis=0),
                reference=partial(ref.dp_sum, x2, bounds=_BOUNDS, epsilon=1.0, rng=pcg, axis=0),
                reference_name="numpy clip + sum",
                items=n,
            )
        )
    return out
