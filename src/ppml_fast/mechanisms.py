"""Differential-privacy mechanisms, batched: Laplace, Gaussian (classic and analytic
calibration), exponential / report-noisy-max, randomized response and the geometric
(discrete Laplace) mechanism.

Definitions used throughout. A randomised algorithm ``M`` is ``(ε, δ)``-differentially
private when ``P[M(D) ∈ S] <= e^ε P[M(D') ∈ S] + δ`` for every set of outputs ``S`` and
every pair of *neighbouring* inputs ``D, D'`` (Dwork, McSherry, Nissim & Smith 2006;
``δ = 0`` is pure ε-DP). The neighbouring relation is the caller's: the mechanisms here
take the *sensitivity* of the query under it, ``Δ₁ = max ||f(D) - f(D')||₁`` (Laplace,
geometric, exponential) or ``Δ₂ = max ||f(D) - f(D')||₂`` (Gaussian). For the
exponential mechanism ``Δ`` bounds the change of every utility score. Array inputs are
one query answer per element; the sensitivity is of the whole vector.

Randomness comes from :func:`ppml_fast.rng.resolve_for_dp`: ``rng=None`` is the
process-wide cryptographically secure AES-CTR stream; a seed gives reproducible noise for
tests and warns once per process (:class:`ppml_fast.InsecureRandomnessWarning`).

Security
--------
Continuous noise computed in floating point (Laplace, Gaussian, Gumbel) leaks through
the floating-point grid (Mironov 2012, "On Significance of the Least Significant Bits for
Differential Privacy"). For integer-valued queries use :func:`geometric_mechanism`, which
is exact. A seeded ``rng`` gives noise that anyone who knows the seed can subtract.
"""

from __future__ import annotations

import functools
import math
import numbers
import sys
from fractions import Fraction
from typing import Any

import numpy as np

from ._errors import ResultOverflowError
from ._native import mechanisms as _kernels
from ._noise_fill import GAUSSIAN, GUMBEL, LAPLACE, fill
from ._types import ArrayLike, RngLike
from ._validation import (
    OPEN_UNIT,
    POSITIVE,
    as_finite_array,
    as_int_array,
    as_real_array,
    asarray,
    check_axes,
    check_int,
    check_rational,
    check_scalar,
    not_finite,
)
from .noise import discrete_laplace
from .rng import resolve, resolve_for_dp, warn_if_insecure

__all__ = [
    "exponential_mechanism",
    "gaussian_mechanism",
    "gaussian_sigma",
    "geometric_mechanism",
    "laplace_mechanism",
    "randomized_response",
    "randomized_response_estimate",
    "report_noisy_max",
]

_SQRT2 = math.sqrt(2.0)
_SQRT_PI = math.sqrt(math.pi)
#: Relative margin by which the analytic calibration undershoots δ, so that rounding in
#: evaluating δ(σ) can never make the returned σ too small.
_DELTA_MARGIN = 1e-9


# --- helpers -----------------------------------------------------------------------------


def _values(value: Any) -> tuple[np.ndarray, bool]:
    """Convert ``value`` to a real float array and say whether it is ours to overwrite.

    It is ours when the conversion made it (ints → float64, a list, a Python scalar);
    an ndarray or an object exposing its own buffer is never written to. NaN and inf
    are caught by the sampler's own pass (:func:`_noisy_copy`), not by a second one here.
    """
    src = asarray(value, "value")
    arr = as_real_array(src, "value")
    fresh = arr is not src or isinstance(value, (list, tuple, numbers.Number))
    return arr, fresh and arr.flags.writeable


def _noisy_copy(
    arr: np.ndarray, fresh: bool, kind: int, scale: float, gen: np.random.Generator
) -> Any:
    """``arr + scale * Z`` in one pass of the sampler (``Z`` of the given kind).

    The result has ``arr``'s shape and float dtype; the only allocation is the output,
    and none when ``arr`` is ``fresh`` (converted by us: overwritten in place).
    """
    if not arr.flags.c_contiguous:
        out = np.ascontiguousarray(arr)
        loc = out
    elif fresh:
        out = loc = arr
    else:
        out = np.empty_like(arr, order="C")
        loc = arr
    if not fill(kind, gen, scale, out, loc):
        if fresh and out is arr:  # the input was overwritten: which cause is unknown
            raise ResultOverflowError(
                f"value must contain only finite values, and value + noise must fit "
                f"{arr.dtype}: one of them failed (noise scale {scale:.6g}; a smaller "
                "sensitivity / larger epsilon if the values are finite)"
            )
        if not np.isfinite(arr).all():
            raise not_finite("value")
        raise ResultOverflowError(
            f"value + noise overflows {arr.dtype} (noise scale {scale:.6g}): use float64, "
            "or a smaller sensitivity / larger epsilon"
        )
    warn_if_insecure(gen, stacklevel=4)  # only once the release has succeeded
    return out[()] if out.ndim == 0 else out


def _erfcx(t: float) -> float:
    """Scaled complementary error function ``e^{t²} erfc(t)`` for ``t >= 0``, no scipy.

    ``exp(t²) erfc(t)`` directly below 2.5 (``t² < 6.25`` keeps the rounding of the
    exponent under 1e-15); above, the continued fraction ``erfc(t) = e^{-t²}/√π ·
    1/(t + (1/2)/(t + (2/2)/(t + (3/2)/(t + …))))`` (Abramowitz & Stegun 7.1.14), 40
    levels, evaluated backwards: relative error below 1e-15 on [2.5, ∞).
    """
    if t < 2.5:
        return math.exp(t * t) * math.erfc(t)
    f = t
    for k in range(40, 0, -1):
        f = t + 0.5 * k / f
    return 1.0 / (_SQRT_PI * f)


def _erfcx_drop(u: float, h: float) -> float:
    """``erfcx(u) - erfcx(u + h)`` for ``u, h >= 0``, accurate also when ``h << u``.

    The plain difference cancels (relative error ~1e-16·u/h), which matters for tiny ε,
    where ``h = √2·Δ/(2σ)`` is minute. For ``h <= 1/4`` use the Taylor series
    ``-Σ_k f⁽ᵏ⁾(u) h^k / k!`` with ``f' = 2u f - 2/√π`` and ``f⁽ᵏ⁺¹⁾ = 2u f⁽ᵏ⁾ + 2k f⁽ᵏ⁻¹⁾``
    (differentiate ``f' = 2uf - 2/√π`` repeatedly); erfcx is entire, and for ``h <= 1/4``
    the terms fall fast.
    """
    if h > 0.25:
        return _erfcx(u) - _erfcx(u + h)
    prev = _erfcx(u)
    cur = 2.0 * u * prev - 2.0 / _SQRT_PI
    total = 0.0
    power = 1.0
    for k in range(1, 60):
        power *= h / k
        term = cur * power
        total -= term
        if abs(term) <= 1e-17 * abs(total):
            break
        prev, cur = cur, 2.0 * u * cur + 2.0 * k * prev
    return total


def _log_delta(sigma: float, epsilon: float, sensitivity: float) -> float:
    """``log δ(σ)`` for the Gaussian mechanism, Balle & Wang (2018), Theorem 8.

    ``δ(σ) = Φ(a - b) - e^ε Φ(-a - b)`` with ``a = Δ/(2σ)``, ``b = εσ/Δ``. Since
    ``ab = ε/2``, writing ``Φ(-x) = e^{-x²/2} erfcx(x/√2) / 2`` makes the factor ``e^ε``
    cancel exactly: for ``b >= a``

    ``δ(σ) = e^{-(b-a)²/2} (erfcx((b-a)/√2) - erfcx((b+a)/√2)) / 2``,

    computed in log space (no overflow of ``e^ε``, no underflow of the tails, and no
    cancellation between two huge logarithms); for ``a > b`` (large δ) it is
    ``Φ(a - b) - e^{-(a-b)²/2} erfcx((a+b)/√2) / 2``.
    """
    a = sensitivity / (2.0 * sigma)
    b = epsilon * sigma / sensitivity
    if b >= a:
        diff = _erfcx_drop((b - a) / _SQRT2, _SQRT2 * a)
        if not diff > 0.0:
            return -math.inf
        return -0.5 * (b - a) ** 2 + math.log(0.5 * diff)
    x = a - b
    d = (1.0 - 0.5 * math.erfc(x / _SQRT2)) - 0.5 * math.exp(-0.5 * x * x) * _erfcx(
        (a + b) / _SQRT2
    )
    return math.log(d) if d > 0.0 else -math.inf


@functools.lru_cache(maxsize=256)
def _analytic_sigma(epsilon: float, delta: float, sensitivity: float) -> float:
    """Smallest σ (to relative 1e-13, rounded up) with ``δ(σ) <= δ(1 - 1e-9)``.

    Cached: a mechanism applied again with the same parameters skips the bisection.
    """
    target = math.log(delta) + math.log1p(-_DELTA_MARGIN)
    hi = sensitivity * math.sqrt(2.0 * math.log(1.25 / delta)) / epsilon
    for _ in range(2100):
        if _log_delta(hi, epsilon, sensitivity) <= target:
            break
        hi *= 2.0
    lo = hi
    for _ in range(2100):
        lo *= 0.5
        if _log_delta(lo, epsilon, sensitivity) > target:
            break
    for _ in range(200):
        if hi <= lo * (1.0 + 1e-13):
            break
        mid = math.sqrt(lo * hi)
        if _log_delta(mid, epsilon, sensitivity) <= target:
            hi = mid
        else:
            lo = mid
    if not (math.isfinite(hi) and hi > 0.0):
        raise ValueError(
            f"cannot calibrate sigma for epsilon={epsilon}, delta={delta}, "
            f"sensitivity={sensitivity}: the result is not a positive finite float"
        )
    return hi


def _rr_probabilities(epsilon: float) -> tuple[float, float]:
    """``(p, q)``: keep probability ``e^ε/(1+e^ε)`` and flip probability ``1/(1+e^ε)``."""
    q = 1.0 / (1.0 + math.exp(epsilon)) if epsilon < 700.0 else math.exp(-epsilon)
    return 1.0 - q, q


# --- Laplace and Gaussian ----------------------------------------------------------------


def laplace_mechanism(
    value: ArrayLike, sensitivity: float, epsilon: float, *, rng: RngLike = None
) -> Any:
    """Release ``value + Lap(Δ₁/ε)`` noise: the Laplace mechanism, pure ε-DP.

    Parameters
    ----------
    value : float or array_like
        The true query answer(s), finite. float32 and float64 keep their dtype; integers,
        bools and lists become float64.
    sensitivity : float
        ``Δ₁ > 0``: the largest L1 distance between the answers (the whole array) on two
        neighbouring inputs.
    epsilon : float
        ``ε > 0``.
    rng : None, int, Generator
        ``None``: the secure stream. A seed is for tests only (warns once).

    Returns
    -------
    numpy scalar or ndarray
        Same shape and float dtype as ``value``; a new array (``value`` is not modified).

    Notes
    -----
    Each element gets independent noise of density ``exp(-|z|/b)/(2b)`` with
    ``b = Δ₁/ε``, which makes the release ε-DP (Dwork, McSherry, Nissim & Smith 2006,
    "Calibrating Noise to Sensitivity in Private Data Analysis", Prop. 1). The noise is
    added inside the sampler's loop (no separate noise array): the cost is that of
    :func:`ppml_fast.noise.laplace` on the same size.

    Security
    --------
    Floating-point Laplace noise is vulnerable to Mironov's (2012) attack; for integer
    queries use :func:`geometric_mechanism`.
    """
    sensitivity = check_scalar(sensitivity, "sensitivity", POSITIVE)
    epsilon = check_scalar(epsilon, "epsilon", POSITIVE)
    scale = sensitivity / epsilon
    if not math.isfinite(scale):
        raise ValueError(f"sensitivity / epsilon must be finite, got {scale}")
    arr, fresh = _values(value)
    gen = resolve(rng)
    return _noisy_copy(arr, fresh, LAPLACE, scale, gen)


def gaussian_sigma(
    epsilon: float, delta: float, sensitivity: float = 1.0, *, analytic: bool = True
) -> float:
    """Noise standard deviation σ that makes the Gaussian mechanism ``(ε, δ)``-DP.

    Parameters
    ----------
    epsilon : float
        ``ε > 0`` (the classic bound needs ``ε <= 1``).
    delta : float
        ``δ`` in (0, 1).
    sensitivity : float
        L2 sensitivity ``Δ₂ > 0``.
    analytic : bool
        ``True`` (default): the exact calibration of Balle & Wang (2018). ``False``: the
        classic bound ``σ = Δ₂ √(2 ln(1.25/δ)) / ε`` (Dwork & Roth 2014, Thm. A.1), valid
        only for ``ε <= 1``.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        Out-of-range parameters, or ``analytic=False`` with ``ε > 1``.

    Notes
    -----
    Balle & Wang (2018), "Improving the Gaussian Mechanism for Differential Privacy:
    Analytical Calibration and Optimal Denoising", Theorem 8: ``x + N(0, σ²I)`` is
    ``(ε, δ)``-DP if and only if

    ``Φ(Δ/(2σ) - εσ/Δ) - e^ε Φ(-Δ/(2σ) - εσ/Δ) <= δ``.

    The left side decreases in σ; the smallest σ satisfying it is found by bisection on
    ``log σ`` (to relative 1e-13, keeping the side that satisfies the condition), with
    ``δ(σ)`` evaluated in log space through the scaled complementary error function, in
    which the ``e^ε`` factor cancels exactly (see ``_log_delta``), so any ``ε`` and ``δ``
    down to the smallest doubles work without overflow or catastrophic cancellation.
    The target is ``δ(1 - 1e-9)``, a margin against rounding: the returned σ never
    undershoots. For ``ε <= 1`` the result is always smaller than the classic σ, for
    large ε very much so.
    """
    epsilon = check_scalar(epsilon, "epsilon", POSITIVE)
    delta = check_scalar(delta, "delta", OPEN_UNIT)
    sensitivity = check_scalar(sensitivity, "sensitivity", POSITIVE)
    if sensitivity < sys.float_info.min:  # Δ/σ ratios of a subnormal Δ divide by zero
        raise ValueError(
            f"sensitivity must be >= {sys.float_info.min} (a normal float), got {sensitivity}"
        )
    if not isinstance(analytic, (bool, np.bool_)):
        raise TypeError(f"analytic must be a bool, got {type(analytic).__name__}")
    if analytic:
        # δ(σ) depends on σ/Δ alone (a = Δ/(2σ), b = εσ/Δ): calibrate for Δ = 1 and scale,
        # rounded up, so that no Δ near the ends of the float range over- or underflows
        # inside the bisection.
        unit = _analytic_sigma(epsilon, delta, 1.0)
        if sensitivity == 1.0:
            return unit
        sigma = math.nextafter(sensitivity * unit, math.inf)
        if not (math.isfinite(sigma) and sigma >= sys.float_info.min):
            raise ValueError(
                f"sigma = sensitivity * {unit:.6g} must be a finite normal float, got {sigma} "
                f"(sensitivity={sensitivity}, epsilon={epsilon}, delta={delta})"
            )
        return sigma
    if epsilon > 1.0:
        raise ValueError(
            f"epsilon must be <= 1 for the classic Gaussian mechanism (analytic=False), "
            f"got {epsilon}"
        )
    sigma = sensitivity * math.sqrt(2.0 * math.log(1.25 / delta)) / epsilon
    if not math.isfinite(sigma):
        raise ValueError(f"sigma must be finite, got {sigma} (sensitivity / epsilon too large)")
    return sigma


def gaussian_mechanism(
    value: ArrayLike,
    sensitivity: float,
    epsilon: float,
    delta: float,
    *,
    analytic: bool = True,
    rng: RngLike = None,
) -> Any:
    """Release ``value + N(0, σ²)`` noise with σ from :func:`gaussian_sigma`: ``(ε, δ)``-DP.

    Parameters
    ----------
    value : float or array_like
        The true answer(s), finite; float32/float64 kept, others become float64.
    sensitivity : float
        L2 sensitivity ``Δ₂ > 0`` of the whole answer vector under the neighbouring
        relation.
    epsilon, delta : float
        ``ε > 0``, ``δ`` in (0, 1).
    analytic : bool
        Analytic calibration (Balle & Wang 2018, default) or the classic bound (``ε <= 1``).
    rng : None, int, Generator
        ``None``: the secure stream. A seed is for tests only (warns once).

    Returns
    -------
    numpy scalar or ndarray
        Same shape and float dtype as ``value``.

    Security
    --------
    Floating-point Gaussian noise has the least-significant-bit weakness of Mironov
    (2012); for integer queries prefer exact discrete noise.
    """
    sigma = gaussian_sigma(epsilon, delta, sensitivity, analytic=analytic)
    arr, fresh = _values(value)
    gen = resolve(rng)
    return _noisy_copy(arr, fresh, GAUSSIAN, sigma, gen)


# --- exponential mechanism / report noisy max ---------------------------------------------


def exponential_mechanism(
    utilities: ArrayLike, epsilon: float, sensitivity: float, *, rng: RngLike = None, axis: int = -1
) -> Any:
    """Select one candidate per row with probability ``∝ exp(ε u_i / (2Δ))``.

    Parameters
    ----------
    utilities : array_like
        Utility scores ``u``, finite, at least one candidate along ``axis``. Every other
        axis is a batch of independent selections.
    epsilon : float
        ``ε > 0``.
    sensitivity : float
        ``Δ > 0``: the most any single utility can change between neighbouring inputs.
    rng : None, int, Generator
        ``None``: the secure stream. A seed is for tests only (warns once).
    axis : int
        The candidates' axis (default: the last).

    Returns
    -------
    numpy.int64 or ndarray of int64
        The selected indices; shape of ``utilities`` without ``axis``.

    Notes
    -----
    The exponential mechanism of McSherry & Talwar (2007), "Mechanism Design via
    Differential Privacy", is ε-DP. It is sampled by the Gumbel-max trick: with ``G_i``
    i.i.d. standard Gumbel, ``argmax_i (ε u_i/(2Δ) + G_i)`` has exactly the softmax
    distribution — report-noisy-max with Gumbel noise of scale ``2Δ/ε``. Each row is
    shifted by its maximum first, ``argmax_i ((u_i - max u) / (2Δ/ε) + G_i)``, so no
    exponential is taken and utilities as large as 1e300 neither overflow nor lose the
    winner.

    Security
    --------
    Gumbel noise is computed in floating point (Mironov 2012).
    """
    epsilon = check_scalar(epsilon, "epsilon", POSITIVE)
    sensitivity = check_scalar(sensitivity, "sensitivity", POSITIVE)
    scale = 2.0 * sensitivity / epsilon
    if not (math.isfinite(scale) and scale > 0.0):
        raise ValueError(f"2 * sensitivity / epsilon must be positive and finite, got {scale}")
    u = as_finite_array(utilities, "utilities")
    if u.ndim == 0:
        raise ValueError("utilities must have at least one dimension (the candidates)")
    axis = check_int(axis, "axis")
    if not -u.ndim <= axis < u.ndim:
        raise ValueError(f"axis must be in [{-u.ndim}, {u.ndim - 1}], got {axis}")
    if u.shape[axis] == 0:
        raise ValueError("utilities must have at least 1 candidate along axis, got 0")
    gen = resolve_for_dp(rng)
    u = np.moveaxis(u, axis, -1)
    batch = u.shape[:-1]
    u2 = np.ascontiguousarray(u).reshape(-1, u.shape[-1])
    g = np.empty(u2.shape, dtype=np.float64)
    fill(GUMBEL, gen, 1.0, g)
    out = np.empty(u2.shape[0], dtype=np.int64)
    _kernels._gumbel_argmax(u2, g, scale, out)
    picks = out.reshape(batch)
    return picks[()] if picks.ndim == 0 else picks


# --- randomized response -----------------------------------------------------------------


def _as_bits(bits: Any, name: str) -> np.ndarray:
    arr = asarray(bits, name)
    if arr.dtype.kind not in "biu":
        raise TypeError(f"{name} must be an array of bools or 0/1 integers, got dtype {arr.dtype}")
    if arr.dtype.kind != "b" and arr.size and (arr.min() < 0 or arr.max() > 1):
        raise ValueError(f"{name} must contain only 0 and 1")
    return arr


def randomized_response(bits: ArrayLike, epsilon: float, *, rng: RngLike = None) -> Any:
    """Binary randomized response: keep each bit with probability ``e^ε/(1+e^ε)``.

    Parameters
    ----------
    bits : array_like of bool or 0/1 integers
        One private bit per respondent (local model: each bit is one person's record).
    epsilon : float
        ``ε > 0``.
    rng : None, int, Generator
        ``None``: the secure stream. A seed is for tests only (warns once).

    Returns
    -------
    ndarray or numpy scalar
        The reports, same shape and dtype as ``bits``.

    Notes
    -----
    Warner (1965), "Randomized Response: A Survey Technique for Eliminating Evasive
    Answer Bias". Each report is the true bit with probability ``p = e^ε/(1+e^ε)`` and
    its complement with ``q = 1 - p``; the likelihood ratio of any report under the two
    values of one bit is at most ``p/q = e^ε``, so each report is ε-DP (local DP, the
    neighbouring relation being a change of that one bit). Decode aggregates with
    :func:`randomized_response_estimate`.
    """
    epsilon = check_scalar(epsilon, "epsilon", POSITIVE)
    arr = _as_bits(bits, "bits")
    gen = resolve_for_dp(rng)
    _, q = _rr_probabilities(epsilon)
    flip = gen.random(arr.shape) < q
    out = np.logical_xor(arr, flip) if arr.dtype.kind == "b" else arr ^ flip.astype(arr.dtype)
    return out[()] if out.ndim == 0 else out


def randomized_response_estimate(reports: ArrayLike, epsilon: float, *, axis: Any = None) -> Any:
    """Unbiased estimate of the fraction of ones behind randomized-response reports.

    Parameters
    ----------
    reports : array_like of bool or 0/1 integers
        Outputs of :func:`randomized_response` with the same ``epsilon``.
    epsilon : float
        ``ε > 0``.
    axis : None or int or tuple of ints
        Axis over which respondents vary (default: all of them).

    Returns
    -------
    float or ndarray
        ``(mean(reports) - q) / (p - q)`` with ``p = e^ε/(1+e^ε)``, ``q = 1 - p``. It is
        unbiased (``E[mean] = q + (p - q) π`` for a true fraction ``π``) and may fall
        outside [0, 1]; its variance is ``p q / (n (p - q)²)`` on ``n`` reports.
        Post-processing: no further privacy cost.
    """
    epsilon = check_scalar(epsilon, "epsilon", POSITIVE)
    arr = _as_bits(reports, "reports")
    if arr.size == 0:
        raise ValueError("reports must not be empty")
    axes = check_axes(axis, arr.ndim)
    p, q = _rr_probabilities(epsilon)
    return (np.mean(arr, axis=axes, dtype=np.float64) - q) / (p - q)


# --- geometric (discrete Laplace) mechanism -----------------------------------------------


def geometric_mechanism(
    value: ArrayLike, sensitivity: Any, epsilon: Any, *, rng: RngLike = None
) -> Any:
    """Release ``value + Z`` with ``Z`` two-sided geometric: exact pure ε-DP for integers.

    Parameters
    ----------
    value : int or array_like of ints
        True integer answer(s) (int64 range).
    sensitivity : int, float or Fraction
        L1 sensitivity ``Δ₁ > 0`` (an integer for integer queries).
    epsilon : int, float or Fraction
        ``ε > 0``. Floats are taken at their exact binary value.
    rng : None, int, Generator
        ``None``: the secure stream. A seed is for tests only (warns once).

    Returns
    -------
    numpy.int64 or ndarray of int64
        Same shape as ``value``.

    Raises
    ------
    OverflowError
        When a noisy value leaves the int64 range.

    Notes
    -----
    ``P[Z = z] ∝ exp(-|z| ε/Δ₁)``: the discrete Laplace distribution of scale ``Δ₁/ε``
    (Ghosh, Roughgarden & Sundararajan 2009, the geometric mechanism), drawn exactly by
    :func:`ppml_fast.noise.discrete_laplace` (Canonne, Kamath & Steinke 2020) with the
    scale passed as an exact ``Fraction``. For integer ``Δ₁`` it is ε-DP with no
    floating-point caveat, unlike the continuous Laplace mechanism (Mironov 2012).
    """
    sensitivity = check_rational(sensitivity, "sensitivity")
    epsilon = check_rational(epsilon, "epsilon")
    arr = as_int_array(value, "value")
    gen = resolve_for_dp(rng)
    scale = Fraction(sensitivity) / Fraction(epsilon)
    try:
        noise = np.asarray(discrete_laplace(scale, arr.shape, rng=gen), dtype=np.int64)
    except ValueError as exc:
        raise ValueError(
            f"sensitivity / epsilon (the noise scale) is out of range: {exc}"
        ) from None
    with np.errstate(over="ignore"):
        out = arr + noise
    # Two's-complement overflow: operands of one sign, result of the other.
    if np.any(((arr ^ out) & (noise ^ out)) < 0):
        raise ResultOverflowError("value + noise does not fit in int64")
    return out[()] if out.ndim == 0 else out


#: Report-noisy-max with Gumbel noise of scale ``2Δ/ε`` *is* the exponential mechanism
#: (the Gumbel-max trick): the same function under the name of its noisy-max formulation.
report_noisy_max = exponential_mechanism
