"""Continuous noise samplers: :func:`laplace` and :func:`gaussian` (ziggurat kernels on
all cores, float32 or float64), re-exported by :mod:`ppml_fast.noise`.

Security
--------
Floating-point noise leaks through the gaps and rounding of the floating-point grid
(Mironov 2012); see :mod:`ppml_fast.noise` and prefer the exact discrete samplers for
integer-valued queries.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from .._noise_fill import GAUSSIAN, LAPLACE, fill, max_scale
from .._types import RngLike, SizeLike
from .._validation import NON_NEGATIVE, check_float_dtype, check_scalar, prepare_out
from ..rng import resolve

__all__ = ["check_noise_scale", "gaussian", "laplace", "max_scale"]


def check_noise_scale(scale: Any, name: str, dtype: np.dtype) -> float:
    """``scale`` as a float in ``[0, max_scale(dtype)]``: larger scales could overflow."""
    value = check_scalar(scale, name, NON_NEGATIVE)
    limit = max_scale(dtype)
    if value > limit:
        raise ValueError(f"{name} must be <= {limit:.6g} for {dtype} output, got {value}")
    return value


def _sample(
    kind: int, scale: Any, name: str, size: Any, rng: Any, dtype: npt.DTypeLike, out: Any
) -> Any:
    dt = check_float_dtype(dtype)
    scale = check_noise_scale(scale, name, dt)
    arr, scalar = prepare_out(out, size, dt)
    fill(kind, resolve(rng), scale, arr)
    return arr[0] if scalar else arr


def laplace(
    scale: float,
    size: SizeLike = None,
    *,
    rng: RngLike = None,
    dtype: npt.DTypeLike = np.float64,
    out: np.ndarray | None = None,
) -> Any:
    """Draw Laplace(0, ``scale``) noise: density ``exp(-|x|/b) / (2b)`` with ``b = scale``.

    Parameters
    ----------
    scale : float
        ``b >= 0``, the Laplace scale. For the Laplace mechanism ``b = Δ₁/ε`` (Dwork,
        McSherry, Nissim & Smith 2006). ``b = 0`` is the point mass at 0 and gives zeros.
    size : int or tuple of ints, optional
        Output shape; ``None`` returns one scalar (of ``dtype``) unless ``out`` is given.
    rng : None, int, Generator
        ``None``: the secure stream. An int seed is reproducible (tests only).
    dtype : float32 or float64
        Output dtype; samples are computed in float64 and rounded once.
    out : ndarray, optional
        C-contiguous array of ``dtype`` to fill (shape must equal ``size`` if both given).

    Returns
    -------
    float or ndarray

    Notes
    -----
    ``b`` times an Exp(1) variate from a 256-layer ziggurat (Marsaglia & Tsang 2000) with
    an independent random sign. The result is a function of the seed alone, whatever the
    thread count (see :mod:`ppml_fast.rng`).

    Security
    --------
    Floating-point Laplace noise is vulnerable to Mironov's (2012) attack; prefer
    :func:`discrete_laplace` for integer queries.
    """
    return _sample(LAPLACE, scale, "scale", size, rng, dtype, out)


def gaussian(
    sigma: float,
    size: SizeLike = None,
    *,
    rng: RngLike = None,
    dtype: npt.DTypeLike = np.float64,
    out: np.ndarray | None = None,
) -> Any:
    """Draw N(0, ``sigma``²) noise.

    Parameters
    ----------
    sigma : float
        Standard deviation ``σ >= 0`` (``σ = 0`` gives zeros). For the Gaussian mechanism
        see :func:`ppml_fast.mechanisms.gaussian_sigma`.
    size, rng, dtype, out
        As in :func:`laplace`.

    Notes
    -----
    ``σ`` times a standard normal from a 256-layer ziggurat (Marsaglia & Tsang 2000) with
    Marsaglia's (1964) exact tail beyond r ≈ 3.654.

    Security
    --------
    Floating-point Gaussian noise has the same least-significant-bit weakness as
    floating-point Laplace noise; prefer :func:`discrete_gaussian` for integer queries.
    """
    return _sample(GAUSSIAN, sigma, "sigma", size, rng, dtype, out)
