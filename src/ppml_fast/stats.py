"""Differentially private statistics with explicit clipping bounds: sum, count, mean,
variance and histogram, each pure ε-DP by the Laplace mechanism.

Records and neighbours
----------------------
With ``axis=None`` every element of ``x`` is one record; with ``axis=k`` a record is one
slice ``x[..., i, ...]`` along axis ``k`` and the statistic has one entry per position in
the other axes (``m`` entries). Two datasets are neighbours when one is the other with a
record **added or removed** (unbounded DP). The number of records is therefore private
too; the functions never use it in the clear.

Every value is clipped into ``bounds = (lower, upper)`` before it is used, so one record
moves a sum by at most ``max(|lower|, |upper|)`` per entry, a centred sum by ``(upper -
lower)/2`` per entry, a count by 1. The bounds must not depend on the data (choose them
from domain knowledge), or they leak it. Under the *replace-one* relation sensitivities
double for counts (``1 → 2``) and become ``upper - lower`` for sums: scale ε accordingly.

Noise is added with the Laplace mechanism of Dwork, McSherry, Nissim & Smith (2006): an
``m``-entry statistic of L1 sensitivity ``Δ₁`` gets ``Lap(Δ₁/ε)`` noise per entry. Clipping
and summing are one fused Numba pass in float64 (no clipped copy of ``x``).

Security
--------
Floating-point Laplace noise is vulnerable to Mironov's (2012) attack. A seeded ``rng`` is
for tests only (it warns once per process).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._errors import ResultOverflowError
from ._native import stats as _kernels
from ._noise_fill import LAPLACE, fill, max_scale
from ._types import ArrayLike, RngLike
from ._validation import (
    POSITIVE,
    as_finite_array,
    check_allocation,
    check_bounds,
    check_finite,
    check_int,
    check_scalar,
    real_array,
)
from .rng import resolve_for_dp

__all__ = ["dp_count", "dp_histogram", "dp_mean", "dp_sum", "dp_var"]


def _records(x: Any, axis: Any) -> tuple[np.ndarray, tuple[int, ...], int]:
    """Validate ``x`` and view it as ``(outer, n_records, inner)`` (copying only if needed).

    Returns the 3-d view, the statistic's shape and the number of records ``n``.
    """
    arr = as_finite_array(x, "x")
    if axis is None:
        flat = arr.reshape(-1) if arr.flags.c_contiguous else arr.ravel(order="K")
        return flat.reshape(1, -1, 1), (), flat.size
    if arr.ndim == 0:
        raise ValueError("axis must be None for a 0-d x")
    axis = check_int(axis, "axis")
    if not -arr.ndim <= axis < arr.ndim:
        raise ValueError(f"axis must be in [{-arr.ndim}, {arr.ndim - 1}], got {axis}")
    axis %= arr.ndim
    arr = np.ascontiguousarray(arr)
    outer = math.prod(arr.shape[:axis])
    inner = math.prod(arr.shape[axis + 1 :])
    n = arr.shape[axis]
    return arr.reshape(outer, n, inner), arr.shape[:axis] + arr.shape[axis + 1 :], n


def _clipped_sums(x3: np.ndarray, lo: float, hi: float, shift: float) -> np.ndarray:
    """``Σ (clip(x, lo, hi) - shift)`` over the records axis of the 3-d view, float64."""
    if x3.shape[0] == 1 and x3.shape[2] == 1:  # one statistic over a flat array
        total = _kernels._clip_sum_flat(x3.reshape(-1), lo, hi, shift)
        return np.array([[total]])
    sums = np.empty((x3.shape[0], x3.shape[2]), dtype=np.float64)
    _kernels._clip_sum(x3, lo, hi, shift, sums)
    return sums


def _clipped_moments(
    x3: np.ndarray, lo: float, hi: float, mid: float
) -> tuple[np.ndarray, np.ndarray]:
    """Centred sums and sums of squares of the clipped values (see :func:`_clipped_sums`)."""
    if x3.shape[0] == 1 and x3.shape[2] == 1:
        s1, s2 = _kernels._clip_moments_flat(x3.reshape(-1), lo, hi, mid)
        return np.array([[s1]]), np.array([[s2]])
    sums = np.empty((x3.shape[0], x3.shape[2]), dtype=np.float64)
    sq = np.empty_like(sums)
    _kernels._clip_moments(x3, lo, hi, mid, sums, sq)
    return sums, sq


def _laplace(values: np.ndarray, scale: float, gen: np.random.Generator) -> np.ndarray:
    """``values += Lap(scale)`` in place (values: C-contiguous float64)."""
    if not scale <= max_scale(values.dtype):
        raise ValueError(
            f"the noise scale (sensitivity / epsilon) must be <= {max_scale(values.dtype):.6g}, "
            f"got {scale:.6g}: epsilon is too small for these bounds"
        )
    if not fill(LAPLACE, gen, scale, values, values):
        raise ResultOverflowError("a noisy statistic overflowed float64")
    return values


def _out(a: np.ndarray, shape: tuple[int, ...]) -> Any:
    a = a.reshape(shape)
    return a[()] if a.ndim == 0 else a


def _check_epsilon(epsilon: Any) -> float:
    return check_scalar(epsilon, "epsilon", POSITIVE)


def dp_sum(
    x: ArrayLike,
    *,
    bounds: tuple[float, float],
    epsilon: float,
    rng: RngLike = None,
    axis: Any = None,
) -> Any:
    """ε-DP sum of ``x`` clipped into ``bounds``.

    Parameters
    ----------
    x : array_like
        Finite real data (NaN or inf raise ``ValueError``).
    bounds : (float, float)
        ``(lower, upper)``, finite, ``lower <= upper``, chosen independently of the data.
    epsilon : float
        ``ε > 0``, spent entirely on the sum.
    rng : None, int, Generator
        ``None``: the secure stream. A seed is for tests only (warns once).
    axis : None or int
        ``None``: every element is a record, the result is a scalar. An int: records are
        the slices along ``axis``, the result has the other axes' shape.

    Returns
    -------
    numpy.float64 or ndarray of float64
        ``Σ clip(x, lower, upper) + Lap(Δ₁/ε)`` per entry.

    Notes
    -----
    Add/remove-one-record neighbours: ``Δ₁ = m · max(|lower|, |upper|)`` for a statistic
    of ``m`` entries (one record touches all of them).
    """
    epsilon = _check_epsilon(epsilon)
    lo, hi = check_bounds(bounds)
    x3, shape, _ = _records(x, axis)
    gen = resolve_for_dp(rng)
    sums = _clipped_sums(x3, lo, hi, 0.0)
    sensitivity = sums.size * max(abs(lo), abs(hi))
    return _out(_laplace(sums, sensitivity / epsilon, gen), shape)


def dp_count(x: ArrayLike, *, epsilon: float, rng: RngLike = None, axis: Any = None) -> Any:
    """ε-DP count of the records in ``x``: ``n + Lap(1/ε)``.

    A record is what it is for :func:`dp_sum` and :func:`dp_mean`: an element of ``x``
    (``axis=None``) or one slice ``x[..., i, ...]`` along ``axis``. ``x`` must be a real
    numeric array (bool, integer or floating); its values are not used, but they are
    checked as the other statistics check them, so that the same data is counted here
    and averaged there.

    Parameters
    ----------
    x : array_like
        The records: anything ``numpy.asarray`` turns into a bool, integer or real
        floating array (``TypeError`` otherwise: ``None``, strings, objects, complex).
        NaN or inf anywhere raise ``ValueError``, as in :func:`dp_sum`: a record that
        holds them is not a value, and dropping or counting it silently would make the
        count disagree with the mean's. Filter them out first (``x[np.isfinite(x)]``) if
        they are to be counted or dropped; the count is then of the filtered records.
    epsilon : float
        ``ε > 0``.
    rng : None, int, Generator
        ``None``: the secure stream. A seed is for tests only (warns once).
    axis : None or int
        ``None``: every element is a record. An int: records are slices along ``axis``.

    Returns
    -------
    numpy.float64
        The noisy count (not rounded, may be negative; round or clamp it if needed, as
        post-processing). For an exact integer release use
        :func:`ppml_fast.mechanisms.geometric_mechanism` on the count.

    Notes
    -----
    Adding or removing one record changes the count by 1: ``Δ₁ = 1``.
    """
    epsilon = _check_epsilon(epsilon)
    arr = check_finite(real_array(x, "x"), "x")
    if axis is None:
        n = arr.size
    else:
        if arr.ndim == 0:
            raise ValueError("axis must be None for a 0-d x")
        axis = check_int(axis, "axis")
        if not -arr.ndim <= axis < arr.ndim:
            raise ValueError(f"axis must be in [{-arr.ndim}, {arr.ndim - 1}], got {axis}")
        n = arr.shape[axis]
    gen = resolve_for_dp(rng)
    return _laplace(np.array([float(n)]), 1.0 / epsilon, gen)[0]


def dp_mean(
    x: ArrayLike,
    *,
    bounds: tuple[float, float],
    epsilon: float,
    rng: RngLike = None,
    axis: Any = None,
) -> Any:
    """ε-DP mean of ``x`` clipped into ``bounds``, from a noisy sum and a noisy count.

    Parameters
    ----------
    x, bounds, epsilon, rng, axis
        As in :func:`dp_sum`.

    Returns
    -------
    numpy.float64 or ndarray of float64
        The estimate, always inside ``bounds``.

    Notes
    -----
    Budget: ``ε/2`` on the record count (``Δ₁ = 1``) and ``ε/2`` on the *centred* clipped
    sum ``S = Σ (clip(x) - c)``, ``c = (lower + upper)/2``, whose add/remove sensitivity is
    ``m (upper - lower)/2`` (half that of the raw sum when the bounds straddle 0). The
    release ``c + S̃ / max(ñ, 1)``, clipped into ``bounds``, is post-processing of the two
    (basic composition: ε in total). The count is not assumed public.
    """
    epsilon = _check_epsilon(epsilon)
    lo, hi = check_bounds(bounds)
    x3, shape, n = _records(x, axis)
    gen = resolve_for_dp(rng)
    mid = 0.5 * (lo + hi)
    half = 0.5 * (hi - lo)
    sums = _clipped_sums(x3, lo, hi, mid)
    count = _laplace(np.array([float(n)]), 2.0 / epsilon, gen)[0]
    _laplace(sums, 2.0 * sums.size * half / epsilon, gen)
    mean = np.clip(mid + sums / max(count, 1.0), lo, hi)
    return _out(mean, shape)


def dp_var(
    x: ArrayLike,
    *,
    bounds: tuple[float, float],
    epsilon: float,
    rng: RngLike = None,
    axis: Any = None,
) -> Any:
    """ε-DP variance (population, ``ddof=0``) of ``x`` clipped into ``bounds``.

    Parameters
    ----------
    x, bounds, epsilon, rng, axis
        As in :func:`dp_sum`.

    Returns
    -------
    numpy.float64 or ndarray of float64
        The estimate, in ``[0, ((upper - lower)/2)²]`` (the largest variance possible).

    Notes
    -----
    Budget split three ways, ``ε/3`` each, Laplace noise on: the count (``Δ₁ = 1``), the
    centred sum ``S₁ = Σ (clip(x) - c)`` (``Δ₁ = m h``) and the centred sum of squares
    ``S₂ = Σ (clip(x) - c)²`` (``Δ₁ = m h²``), with ``c = (lower + upper)/2`` and
    ``h = (upper - lower)/2`` under add/remove-one neighbours. Centring makes the square's
    sensitivity ``h²`` instead of ``max(lower², upper²)``. The release is
    ``S̃₂/ñ - (S̃₁/ñ)²`` with ``ñ = max(count, 1)``, clipped into ``[0, h²]``
    (post-processing; ε in total by basic composition).
    """
    epsilon = _check_epsilon(epsilon)
    lo, hi = check_bounds(bounds)
    x3, shape, n = _records(x, axis)
    gen = resolve_for_dp(rng)
    mid = 0.5 * (lo + hi)
    half = 0.5 * (hi - lo)
    sums, sq = _clipped_moments(x3, lo, hi, mid)
    m = sums.size
    count = max(_laplace(np.array([float(n)]), 3.0 / epsilon, gen)[0], 1.0)
    _laplace(sums, 3.0 * m * half / epsilon, gen)
    _laplace(sq, 3.0 * m * half * half / epsilon, gen)
    mean = sums / count
    var = np.clip(sq / count - mean * mean, 0.0, half * half)
    return _out(var, shape)


def dp_histogram(
    x: ArrayLike,
    *,
    bins: int,
    range: tuple[float, float],
    epsilon: float,
    rng: RngLike = None,
) -> tuple[np.ndarray, np.ndarray]:
    """ε-DP histogram of ``x`` over ``bins`` equal bins of ``range``.

    Parameters
    ----------
    x : array_like
        Finite real data; every element is a record.
    bins : int
        Number of equal-width bins, ``>= 1``.
    range : (float, float)
        ``(lower, upper)``, finite, ``lower < upper``, chosen independently of the data.
        Values outside are clipped into it, i.e. counted in the first or last bin, so
        every record is counted (unlike ``numpy.histogram``, which drops them).
    epsilon : float
        ``ε > 0``.
    rng : None, int, Generator
        ``None``: the secure stream. A seed is for tests only (warns once).

    Returns
    -------
    counts : ndarray of float64, shape (bins,)
        Noisy counts (not rounded; may be negative).
    edges : ndarray of float64, shape (bins + 1,)
        ``numpy.linspace(lower, upper, bins + 1)``, as ``numpy.histogram`` returns.

    Notes
    -----
    Adding or removing one record changes one bin by 1: ``Δ₁ = 1``, and every bin gets
    ``Lap(1/ε)`` noise (Dwork, McSherry, Nissim & Smith 2006, Sect. 3). Bins are
    ``[e_i, e_{i+1})``, the last one closed, matching ``numpy.histogram`` bit for bit.
    """
    epsilon = _check_epsilon(epsilon)
    bins = check_int(bins, "bins", minimum=1)
    check_allocation(3 * 8 * (bins + 1), "bins", "the counts and edges")
    lo, hi = check_bounds(range, "range", strict=True)
    arr = as_finite_array(x, "x")
    flat = arr.reshape(-1) if arr.flags.c_contiguous else arr.ravel(order="K")
    gen = resolve_for_dp(rng)
    counts = np.zeros(bins, dtype=np.int64)
    _kernels._clip_histogram(flat, lo, hi, counts)
    noisy = _laplace(counts.astype(np.float64), 1.0 / epsilon, gen)
    edges = np.linspace(lo, hi, bins + 1)
    return noisy, edges
