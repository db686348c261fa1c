"""Batched noise samplers for differential privacy.

Continuous (:mod:`.continuous`): :func:`laplace`, :func:`gaussian` (ziggurat kernels on
all cores, float32 or float64). Exact discrete (:mod:`.discrete`):
:func:`discrete_laplace`, :func:`discrete_gaussian` (Canonne, Kamath & Steinke 2020; no
floating point in any accept/reject decision).

All samplers take ``rng=None`` (a cryptographically secure AES-CTR stream), an int seed
(reproducible, for tests only) or a numpy ``Generator``; see :mod:`ppml_fast.rng`.

Security
--------
Laplace and Gaussian noise computed in floating point leak through the gaps and the
rounding of the floating-point grid (Mironov 2012, "On Significance of the Least
Significant Bits for Differential Privacy"): the set of outputs reachable from two
neighbouring inputs can differ. For integer-valued queries use the exact discrete
samplers; for real-valued queries snap or discretise the result if the threat model
includes an adversary who sees every bit of the output.
"""

from .continuous import check_noise_scale as check_noise_scale
from .continuous import gaussian, laplace
from .continuous import max_scale as max_scale
from .discrete import MAX_SCALE as MAX_SCALE
from .discrete import discrete_gaussian, discrete_laplace

__all__ = ["discrete_gaussian", "discrete_laplace", "gaussian", "laplace"]
