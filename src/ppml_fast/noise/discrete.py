"""Exact discrete Laplace and discrete Gaussian samplers, re-exported by :mod:`ppml_fast.noise`.

Canonne, Kamath & Steinke (2020), "The Discrete Gaussian for Differential Privacy"
(NeurIPS 2020, arXiv:2004.00010), Algorithms 1-3, in integer arithmetic: every
accept/reject decision compares random bits with the binary expansion of an exact
rational, so the output distribution is the stated one (no floating point anywhere in
the sampling). Parameters are exact rationals; a float is converted exactly
(``Fraction(10.3) == 2899192260119757 / 2**48``), never rounded.

The kernels live in :mod:`ppml_fast._native.noise_discrete`; the pure-Python oracle, bit for
bit identical on one block, in :mod:`ppml_fast.reference.noise_discrete`.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np

from .. import _config
from .._native import noise_discrete as _kernels
from .._streams import split
from .._types import RngLike, SizeLike
from .._validation import check_rational, prepare_out, show
from ..rng import resolve

__all__ = ["MAX_SCALE", "discrete_gaussian", "discrete_laplace"]

#: Largest scale / sigma accepted (the truncation below must stay negligible).
MAX_SCALE = 2**42
_YCAP = 2**62  # |output| bound: int64 with room for the kernel's intermediate sums


def _terms(q: Fraction) -> str:
    """``n/d`` for an error message, or the bit lengths when the digits would not fit."""
    n, d = q.numerator, q.denominator
    if max(n, d) < 10**40:
        return f"{n}/{d}"
    return f"n/d with a {n.bit_length()}-bit n and a {d.bit_length()}-bit d"


def _laplace_params(scale: Fraction) -> tuple[int, int, int, int]:
    """``(t, s, vmax, ymax)`` for DLap(t/s); see :func:`discrete_laplace` (Notes)."""
    t, s = scale.numerator, scale.denominator
    if scale > MAX_SCALE:
        raise ValueError(f"scale must be <= 2**42, got {show(scale)}")
    if t > _YCAP or s > _YCAP:
        raise ValueError(
            f"scale = {_terms(scale)} (lowest terms) needs numerator and denominator <= 2**62 "
            "for the exact kernel; every float in [2**-10, 2**40] and every integer up to "
            "2**42 fits"
        )
    ymax = min(_YCAP, (_YCAP * t) // s)
    vmax = -(-s * (ymax + 1) // t) - 1
    return t, s, vmax, ymax


def _gaussian_params(sigma: Fraction) -> tuple[int, int, int, int, int, int]:
    """``(t, vmax, ymax, t·d², n², 2·n²·d²·t²)`` for σ = n/d; see :func:`discrete_gaussian`."""
    n, d = sigma.numerator, sigma.denominator
    if sigma > MAX_SCALE:
        raise ValueError(f"sigma must be <= 2**42, got {show(sigma)}")
    t = n // d + 1
    ymax = min(_YCAP, t << 20)
    vmax = -(-(ymax + 1) // t) - 1
    td, nn = t * d * d, n * n
    q = 2 * nn * d * d * t * t
    if q >= 2**254 or ymax * td + nn >= 2**256:
        raise ValueError(
            f"sigma = {_terms(sigma)} (lowest terms) is too large for the exact kernel: it needs "
            "2·n²·d²·t² < 2**254 and 2**20·t²·d² + n² < 2**256 with t = floor(sigma) + 1; "
            "every float in [2**-10, 2**40] and every integer up to 2**42 fits"
        )
    return t, vmax, ymax, td, nn, q


def _sample(name: str, value: Any, size: Any, rng: Any, dtype: Any, out: Any) -> Any:
    q = check_rational(value, name, allow_zero=True)
    try:
        dt = np.dtype(dtype)
    except Exception:  # numpy parses dtype strings with ast: TypeError, ValueError, SyntaxError
        raise TypeError(f"dtype must be int64 (exact integer noise), got {dtype!r}") from None
    if dt != np.int64:
        raise TypeError(f"dtype must be int64 (exact integer noise), got {dt}")
    arr, scalar = prepare_out(out, size, np.int64)
    flat = arr.reshape(-1)
    if q == 0:
        flat[:] = 0
    elif name == "scale":
        params = _laplace_params(q)
        with split(resolve(rng), flat.size) as (bit_generators, block):
            _kernels.fill_laplace(bit_generators, block, *params, flat, _config.omp_threads())
    else:
        gparams = _gaussian_params(q)
        with split(resolve(rng), flat.size) as (bit_generators, block):
            _kernels.fill_gaussian(bit_generators, block, *gparams, flat, _config.omp_threads())
    return arr[0] if scalar else arr


def discrete_laplace(
    scale: Any,
    size: SizeLike = None,
    *,
    rng: RngLike = None,
    dtype: Any = np.int64,
    out: np.ndarray | None = None,
) -> Any:
    """Draw exact discrete Laplace noise: ``P(x) ∝ exp(-|x| / scale)`` on the integers.

    Normalised, ``P(x) = (1 - e^{-1/b}) / (1 + e^{-1/b}) · e^{-|x|/b}`` with ``b = scale``;
    adding it to an integer query of L1 sensitivity Δ gives ε-DP with ``b = Δ/ε`` (the
    geometric mechanism, Ghosh, Roughgarden & Sundararajan 2009).

    Parameters
    ----------
    scale : int, float, Fraction or numpy scalar
        ``b >= 0``, taken as an exact rational t/s (a float converts exactly). ``b = 0``
        is the point mass at 0 and gives zeros. Bounds: ``b <= 2**42`` and t, s <= 2**62
        in lowest terms (every float in [2**-10, 2**40] qualifies); beyond them
        ``ValueError``.
    size : int or tuple of ints, optional
        Output shape; ``None`` returns one numpy int64 scalar unless ``out`` is given.
    rng : None, int, Generator
        ``None``: the process-wide secure AES-CTR stream. An int seed is reproducible
        (tests only); see :mod:`ppml_fast.rng`.
    dtype : int64
        Only ``numpy.int64`` (the argument exists for the samplers' common signature);
        anything else raises ``TypeError``.
    out : ndarray, optional
        Writeable C-contiguous int64 array to fill (its shape must equal ``size`` if both
        are given).

    Returns
    -------
    numpy.int64 or ndarray of int64

    Notes
    -----
    Canonne, Kamath & Steinke (2020), Algorithm 2: U uniform on {0..t-1}; retry unless
    Bernoulli(exp(-U/t)); V = number of successes of Bernoulli(exp(-1)) before the first
    failure; Y = floor((U + tV)/s); a sign bit B, retrying when B = 1 and Y = 0. The
    Bernoulli(exp(-γ)) draws are their Algorithm 1 with exact rational arithmetic and
    lazily compared random bits: about 20 random bits per sample for b = 10, about 150
    for b = 10.3 (t = 2899192260119757 needs 52-bit uniform draws).

    Outputs are conditioned on ``|x| <= min(2**62, 2**62·t/s)`` so that they fit int64; the
    excluded mass is below ``exp(-2**20)`` for every admissible scale. Results depend on
    the seed only, not on the thread count.

    Security
    --------
    Exact samplers are immune to Mironov's (2012) floating-point attack on Laplace noise:
    the output distribution is exactly the one analysed. Timing side channels are not
    addressed: the running time depends on the sample drawn.
    """
    return _sample("scale", scale, size, rng, dtype, out)


def discrete_gaussian(
    sigma: Any,
    size: SizeLike = None,
    *,
    rng: RngLike = None,
    dtype: Any = np.int64,
    out: np.ndarray | None = None,
) -> Any:
    """Draw exact discrete Gaussian noise: ``P(x) ∝ exp(-x² / (2σ²))`` on the integers.

    Adding it to an integer query of L2 sensitivity Δ satisfies ½(Δ/σ)²-concentrated DP
    (Canonne, Kamath & Steinke 2020); its variance is below σ².

    Parameters
    ----------
    sigma : int, float, Fraction or numpy scalar
        ``σ >= 0`` as an exact rational n/d (a float converts exactly). ``σ = 0`` is the
        point mass at 0 and gives zeros. Bounds: ``σ <= 2**42``, ``2·n²·d²·t² < 2**254``
        and ``2**20·t²·d² + n² < 2**256`` with ``t = floor(σ) + 1`` (every float in
        [2**-10, 2**40] and every integer up to 2**42 qualifies); beyond them
        ``ValueError``.
    size, rng, dtype, out
        As in :func:`discrete_laplace`.

    Returns
    -------
    numpy.int64 or ndarray of int64

    Notes
    -----
    Canonne, Kamath & Steinke (2020), Algorithm 3: with ``t = floor(σ) + 1``, repeat
    ``Y ~ DLap(t)`` (Algorithm 2) until Bernoulli(exp(-γ)) with
    ``γ = (|Y| - σ²/t)² / (2σ²) = (|Y|·t·d² - n²)² / (2·n²·d²·t²)`` (Algorithm 1), exact
    in 128-bit integers when ``2·n²·d²·t² < 2**127`` (e.g. integer σ up to ~2**31) and in
    256/512-bit multi-limb integers otherwise (e.g. σ = 10.3, whose d is 2**48). About 29
    random bits per sample at σ = 10, 61 at σ = 1e6.

    Outputs are conditioned on ``|x| <= min(2**62, 2**20·t)``, at least 2**20·σ, whose
    complement has mass below ``exp(-2**39)``; a proposal beyond it is rejected, so the
    result is exactly the truncated distribution. Results depend on the seed only.

    Security
    --------
    Exact samplers are immune to Mironov's (2012) floating-point attack: no floating-point
    rounding shapes the output distribution. Timing side channels are not addressed: the
    number of rejections, and so the running time, depends on the sample drawn.
    """
    return _sample("sigma", sigma, size, rng, dtype, out)
