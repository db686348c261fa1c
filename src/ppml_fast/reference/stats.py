"""Reference DP statistics in plain numpy: the oracle for :mod:`ppml_fast.stats` and the
baseline of its benchmarks. Same maths and budget splits (add/remove-one neighbours),
``numpy.clip`` + ``sum`` + ``Generator.laplace``. ``rng`` is anything
``numpy.random.default_rng`` accepts.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def clipped_sum(x: Any, bounds: tuple[float, float], axis: Any = None, shift: float = 0.0) -> Any:
    """``Σ (clip(x, lower, upper) - shift)`` along ``axis``, in float64 (no noise)."""
    lo, hi = bounds
    return (np.clip(np.asarray(x, dtype=np.float64), lo, hi) - shift).sum(axis=axis)


def _count(x: Any, axis: Any) -> int:
    a = np.asarray(x)
    return a.size if axis is None else a.shape[axis]


def dp_sum(x: Any, *, bounds: Any, epsilon: float, rng: Any = None, axis: Any = None) -> Any:
    gen = np.random.default_rng(rng)
    s = np.asarray(clipped_sum(x, bounds, axis))
    delta = s.size * max(abs(bounds[0]), abs(bounds[1]))
    return s + gen.laplace(0.0, delta / epsilon, s.shape)


def dp_count(x: Any, *, epsilon: float, rng: Any = None, axis: Any = None) -> Any:
    gen = np.random.default_rng(rng)
    return _count(x, axis) + gen.laplace(0.0, 1.0 / epsilon)


def dp_mean(x: Any, *, bounds: Any, epsilon: float, rng: Any = None, axis: Any = None) -> Any:
    gen = np.random.default_rng(rng)
    lo, hi = bounds
    mid, half = (lo + hi) / 2, (hi - lo) / 2
    n = _count(x, axis) + gen.laplace(0.0, 2.0 / epsilon)
    s = np.asarray(clipped_sum(x, bounds, axis, mid))
    s = s + gen.laplace(0.0, 2.0 * s.size * half / epsilon, s.shape)
    return np.clip(mid + s / max(n, 1.0), lo, hi)


def dp_var(x: Any, *, bounds: Any, epsilon: float, rng: Any = None, axis: Any = None) -> Any:
    gen = np.random.default_rng(rng)
    lo, hi = bounds
    mid, half = (lo + hi) / 2, (hi - lo) / 2
    c = np.clip(np.asarray(x, dtype=np.float64), lo, hi) - mid
    s1 = np.asarray(c.sum(axis=axis))
    s2 = np.asarray((c * c).sum(axis=axis))
    m = s1.size
    n = max(_count(x, axis) + gen.laplace(0.0, 3.0 / epsilon), 1.0)
    s1 = s1 + gen.laplace(0.0, 3.0 * m * half / epsilon, s1.shape)
    s2 = s2 + gen.laplace(0.0, 3.0 * m * half * half / epsilon, s2.shape)
    return np.clip(s2 / n - (s1 / n) ** 2, 0.0, half * half)


def histogram_counts(x: Any, bins: int, range: tuple[float, float]) -> np.ndarray:
    """``numpy.histogram`` of ``x`` clipped into ``range`` (no noise)."""
    lo, hi = range
    return np.histogram(np.clip(np.asarray(x, dtype=np.float64), lo, hi), bins, (lo, hi))[0]


def dp_histogram(
    x: Any, *, bins: int, range: tuple[float, float], epsilon: float, rng: Any = None
) -> tuple[np.ndarray, np.ndarray]:
    gen = np.random.default_rng(rng)
    counts = histogram_counts(x, bins, range)
    return counts + gen.laplace(0.0, 1.0 / epsilon, bins), np.linspace(range[0], range[1], bins + 1)
