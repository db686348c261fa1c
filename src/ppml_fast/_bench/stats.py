"""Benchmark cases for :mod:`ppml_fast.stats`: the fused Numba clip-and-sum / histogram
kernels (plus secure Laplace noise) against ``numpy.clip`` + ``sum`` / ``numpy.histogram``
(plus numpy PCG64 noise)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from .. import stats
from ..reference import stats as ref
from ..rng import default_rng
from . import Case, Data, select

_BOUNDS = (-1.0, 3.0)


def _rows(data: Data, n: int, full: bool) -> list[Case]:
    secure = default_rng()
    pcg = np.random.Generator(np.random.PCG64())

    def x() -> np.ndarray:
        return data.get(f"x{n}", lambda: np.random.default_rng(0).normal(1.0, 2.0, n))

    def x2() -> np.ndarray:
        return x().reshape(-1, 100)

    out = []

    def call(f: Callable[..., Any], rng: Any) -> Any:
        return f(x(), bounds=_BOUNDS, epsilon=1.0, rng=rng)

    for name in ("dp_sum", "dp_mean", "dp_var"):
        out.append(
            Case(
                name,
                f"{n:.0e}",
                native=partial(call, getattr(stats, name), secure),
                reference=partial(call, getattr(ref, name), pcg),
                reference_name="numpy clip + sum",
                items=n,
                full=full,
                data=data,
                check=lambda v: np.ndim(v) == 0,
            )
        )
    out.append(
        Case(
            "dp_histogram 64 bins",
            f"{n:.0e}",
            native=lambda: stats.dp_histogram(x(), bins=64, range=_BOUNDS, epsilon=1.0, rng=secure),
            reference=lambda: ref.dp_histogram(x(), bins=64, range=_BOUNDS, epsilon=1.0, rng=pcg),
            reference_name="numpy clip + histogram",
            items=n,
            full=full,
            data=data,
        )
    )
    out.append(
        Case(
            "dp_sum axis=0 (n, 100)",
            f"{n:.0e}",
            native=lambda: stats.dp_sum(x2(), bounds=_BOUNDS, epsilon=1.0, rng=secure, axis=0),
            reference=lambda: ref.dp_sum(x2(), bounds=_BOUNDS, epsilon=1.0, rng=pcg, axis=0),
            reference_name="numpy clip + sum",
            items=n,
            full=full,
            data=data,
            check=lambda v: np.shape(v) == (100,),
        )
    )
    return out


def cases(full: bool) -> list[Case]:
    """The statistics rows; ``full`` adds 10^5 and 10^7 values.

    Parameters
    ----------
    full : bool
        Include the rows marked ``full``.

    Returns
    -------
    list of Case
        dp_sum, dp_mean, dp_var, a 64-bin dp_histogram and a column-wise dp_sum of 10^6
        values.
    """
    data = Data()
    out: list[Case] = []
    for n, large in ((10**5, True), (10**6, False), (10**7, True)):
        out += _rows(data, n, large)
    return select(out, full)
