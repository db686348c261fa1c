"""Reference samplers: numpy's own Generator methods, the baseline every kernel must beat.

The exact discrete samplers' oracle lives in :mod:`ppml_fast.reference.discrete`.
"""
from __future__ import annotations

from typing import Any

import numpy as np


def laplace(scale: float, size: Any = None, *, rng: Any = None, dtype: Any = np.float64) -> Any:
    """Laplace(0, scale) from ``numpy.random.Generator.laplace`` (inverse CDF on PCG64)."""
    gen = np.random.default_rng(rng)
    return np.asarray(gen.laplace(0.0, scale, size)).astype(dtype, copy=False)


def gaussian(sigma: float, size: Any = None, *, rng: Any = None, dtype: Any = np.float64) -> Any:
    """N(0, sigma²) from ``numpy.random.Generator.normal`` (numpy's ziggurat on PCG64)."""
    gen = np.random.default_rng(rng)
    return np.asarray(gen.normal(0.0, sigma, size)).astype(dtype, copy=False)


def ziggurat_tables(r: float, v: float, f: Any, finv: Any, n: int = 256) -> Any:
    """Marsaglia & Tsang's (2000) layer edges X[0..n] and heights F[0..n], in plain Python.

    The native kernels build the same tables in C; tests compare the two.
    """
    x = [0.0] * (n + 1)
    x[0] = v / f(r)
    x[1] = r
    for i in range(1, n - 1):
        y = v / x[i] + f(x[i])
        x[i + 1] = finv(y) if y < 1.0 else 0.0
    heights = [f(xi) for xi in x]
    heights[0] = f(r)
    return np.array(x), np.array(heights)
