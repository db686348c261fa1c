"""Reference mechanisms in plain numpy / Python: the oracle for tests, the baseline for
benchmarks. Obviously correct, not fast, and on numpy's own (non-secure) generators.

``rng`` is anything ``numpy.random.default_rng`` accepts.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import numpy as np


def laplace_mechanism(value: Any, sensitivity: float, epsilon: float, *, rng: Any = None) -> Any:
    """``value + Generator.laplace(0, Δ/ε)`` (float32 kept, else float64)."""
    v = np.asarray(value)
    dt = v.dtype if v.dtype in (np.float32, np.float64) else np.float64
    gen = np.random.default_rng(rng)
    return (v + gen.laplace(0.0, sensitivity / epsilon, v.shape)).astype(dt)


def gaussian_mechanism(
    value: Any,
    sensitivity: float,
    epsilon: float,
    delta: float,
    *,
    analytic: bool = True,
    rng: Any = None,
) -> Any:
    """``value + Generator.normal(0, σ)`` with σ from :func:`gaussian_sigma`."""
    v = np.asarray(value)
    dt = v.dtype if v.dtype in (np.float32, np.float64) else np.float64
    sigma = gaussian_sigma(epsilon, delta, sensitivity, analytic=analytic)
    gen = np.random.default_rng(rng)
    return (v + gen.normal(0.0, sigma, v.shape)).astype(dt)


def _phi(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def analytic_delta(sigma: float, epsilon: float, sensitivity: float = 1.0) -> float:
    """Balle & Wang (2018), Thm. 8, straight from the formula (moderate ε, δ only)."""
    a = sensitivity / (2.0 * sigma)
    b = epsilon * sigma / sensitivity
    return _phi(a - b) - math.exp(epsilon) * _phi(-a - b)


def gaussian_sigma(
    epsilon: float, delta: float, sensitivity: float = 1.0, *, analytic: bool = True
) -> float:
    """Classic ``Δ√(2 ln(1.25/δ))/ε`` or a plain bisection of :func:`analytic_delta` = δ."""
    classic = sensitivity * math.sqrt(2.0 * math.log(1.25 / delta)) / epsilon
    if not analytic:
        return classic
    lo, hi = 0.0, classic
    while analytic_delta(hi, epsilon, sensitivity) > delta:
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        if analytic_delta(mid, epsilon, sensitivity) > delta:
            lo = mid
        else:
            hi = mid
    return hi


def softmax_probabilities(
    utilities: Any, epsilon: float, sensitivity: float, axis: int = -1
) -> Any:
    """``exp(ε u/(2Δ))`` normalised along ``axis``, by the log-sum-exp trick (the maximum
    is subtracted before scaling, so huge utilities keep their differences)."""
    u = np.asarray(utilities, dtype=np.float64)
    z = (u - u.max(axis=axis, keepdims=True)) / (2.0 * sensitivity / epsilon)
    w = np.exp(z)
    return w / w.sum(axis=axis, keepdims=True)


def exponential_mechanism(
    utilities: Any, epsilon: float, sensitivity: float, *, rng: Any = None, axis: int = -1
) -> Any:
    """One ``Generator.choice`` per row from the exact softmax probabilities (the oracle of
    the law; a Python loop over rows, so slow for many rows: the benchmarks time
    :func:`exponential_mechanism_cumsum` as the baseline)."""
    p = np.moveaxis(softmax_probabilities(utilities, epsilon, sensitivity, axis), axis, -1)
    gen = np.random.default_rng(rng)
    rows = p.reshape(-1, p.shape[-1])
    out = np.array([gen.choice(rows.shape[1], p=r) for r in rows], dtype=np.int64)
    return out.reshape(p.shape[:-1])


def exponential_mechanism_gumbel(
    utilities: Any, epsilon: float, sensitivity: float, *, rng: Any = None, axis: int = -1
) -> Any:
    """The exponential mechanism vectorised in numpy: Gumbel-max over the whole array.

    ``argmax_i ((u_i - max u) ε/(2Δ) + G_i)`` along ``axis`` with ``G`` from
    ``Generator.gumbel`` (standard Gumbel, one array call). With i.i.d. standard Gumbel
    ``G_i``, ``P[argmax_i (z_i + G_i) = j] = exp(z_j) / Σ_i exp(z_i)``: the softmax law of
    :func:`exponential_mechanism`, sampled without a Python loop over rows (the fast
    numpy way, the benchmarks' baseline). Subtracting the row maximum changes no
    argmax and keeps huge utilities' differences.
    """
    u = np.moveaxis(np.asarray(utilities, dtype=np.float64), axis, -1)
    gen = np.random.default_rng(rng)
    z = (u - u.max(axis=-1, keepdims=True)) * (epsilon / (2.0 * sensitivity))
    z += gen.gumbel(size=z.shape)
    return np.argmax(z, axis=-1)


def exponential_mechanism_cumsum(
    utilities: Any, epsilon: float, sensitivity: float, *, rng: Any = None, axis: int = -1
) -> Any:
    """The exponential mechanism vectorised in numpy: inverse CDF of each row's softmax.

    With ``w_i = exp((u_i - max u) ε/(2Δ))`` and ``c = cumsum(w)`` along ``axis``, one
    uniform ``U`` per row picks ``j = #{i : c_i <= U c_last}``, the first index whose
    cumulative weight exceeds ``U c_last``: ``P[j] = w_j / Σ w``, the softmax law of
    :func:`exponential_mechanism` (up to the rounding of the float64 cumulative sum).
    One ``exp`` per utility and one uniform per row, no Python loop: the fastest plain
    numpy sampler measured for this mechanism, the benchmarks' baseline. Weights that
    underflow to 0 are never picked (their ``c_i`` equals the previous one).
    """
    u = np.moveaxis(np.asarray(utilities, dtype=np.float64), axis, -1)
    gen = np.random.default_rng(rng)
    z = (u - u.max(axis=-1, keepdims=True)) * (epsilon / (2.0 * sensitivity))
    c = np.cumsum(np.exp(z, out=z), axis=-1)
    last = c[..., -1:]
    # U c_last < c_last, unless the product rounds up to it: keep x below c_last, so that
    # some c_i > x and the index picked has a positive weight
    x = np.minimum(gen.random(last.shape) * last, np.nextafter(last, 0.0))
    return np.count_nonzero(c <= x, axis=-1)


def randomized_response(bits: Any, epsilon: float, *, rng: Any = None) -> Any:
    """Flip each bit independently with probability ``1/(1+e^ε)``."""
    b = np.asarray(bits)
    gen = np.random.default_rng(rng)
    flip = gen.random(b.shape) < 1.0 / (1.0 + math.exp(epsilon))
    return np.where(flip, 1 - b.astype(np.int64), b.astype(np.int64)).astype(b.dtype)


def randomized_response_estimate(reports: Any, epsilon: float, *, axis: Any = None) -> Any:
    """``(mean - q)/(p - q)``, ``p = e^ε/(1+e^ε)``, ``q = 1 - p``."""
    p = math.exp(epsilon) / (1.0 + math.exp(epsilon))
    q = 1.0 - p
    return (np.mean(np.asarray(reports, dtype=np.float64), axis=axis) - q) / (p - q)


def two_sided_geometric(scale: Fraction, size: int, rng: Any = None) -> np.ndarray:
    """Discrete Laplace by the difference of two geometrics, in floating point (an oracle
    for the distribution, not for exactness): ``P[Z = z] ∝ exp(-|z|/scale)``."""
    gen = np.random.default_rng(rng)
    p = 1.0 - math.exp(-1.0 / float(scale))
    return gen.geometric(p, size) - gen.geometric(p, size)


def geometric_mechanism(value: Any, sensitivity: Any, epsilon: Any, *, rng: Any = None) -> Any:
    """``value + (G₁ - G₂)`` with geometric ``G`` of ratio ``exp(-ε/Δ)``."""
    v = np.asarray(value, dtype=np.int64)
    scale = Fraction(sensitivity) / Fraction(epsilon)
    return v + two_sided_geometric(scale, v.size, rng).reshape(v.shape)
