"""Distance correlation and the NoPeek penalty (Vepakomma et al. 2020).

NoPeek makes the activations a client sends ("smashed data") less informative about its
raw inputs by adding to the client's loss a weighted distance correlation between the
inputs ``x`` and the activations ``z`` of a batch, and training through its gradient.

Maths
-----
For a batch of ``n`` examples, with each example flattened to a vector, let
``a_ij = ||x_i - x_j||`` and ``b_ij = ||z_i - z_j||`` (Euclidean), and let ``A``, ``B``
be their double-centred matrices,

    A_ij = a_ij - ā_i· - ā_·j + ā_··

(row, column and grand means). The (biased, V-statistic) distance covariance and
variances (Székely, Rizzo & Bakirov 2007) are

    dCov²(x, z) = (1/n²) Σ_ij A_ij B_ij,   dVar²(x) = dCov²(x, x),

and the distance correlation is ``dCor = sqrt(R)`` with

    R = dCor² = dCov²(x, z) / sqrt(dVar²(x) dVar²(z)),

defined as 0 when the denominator is 0 (an input whose rows are all equal) and clamped at
0 from below. These are the values of the ``dcor`` package's ``distance_correlation`` and
``distance_correlation_sqr``. ``dCor`` lies in [0, 1]; it is 0 if and only if ``x`` and
``z`` are independent (in the population limit), and does not change when either input
is shifted, rotated or scaled.

Gradient with respect to ``z`` (``B`` is centred, so ``Σ A_ij B_ij = Σ A_ij b_ij``):

    ∂dCor/∂b_ij = W_ij = (A_ij / sqrt(vx vz) - R B_ij / vz) / (2 n² dCor),

with ``vx = dVar²(x)``, ``vz = dVar²(z)``; with ``M_ij = W_ij / b_ij`` (0 where
``b_ij = 0``),

    ∂dCor/∂z = 2 (diag(M 1) - M) z,

one more matrix product of the cost of a Gram matrix. Where ``dCor = 0`` the square root
has no derivative; the gradient returned there is 0.

Numerics
--------
All arithmetic is in float64 (float32 inputs are widened; the gradient is rounded to
``z``'s dtype). The distances come from Gram matrices ``G = P Pᵀ`` of the rows after
subtracting the first row (which removes a common offset without changing a distance):
``d_ij² = G_ii + G_jj - 2 G_ij`` with the norms taken from ``G``'s own diagonal, so
``d_ii`` is exactly 0. Where ``d_ij²`` is below 1/64 of ``G_ii + G_jj`` (near-duplicate
rows, where the subtraction cancels most digits) the distance is recomputed from the
differences of the two rows. The double centring is done element by element, not by the
expanded formula, whose terms cancel. An input whose squares would overflow or underflow
is first scaled by a power of two (exact; dCor is scale-invariant). Results agree with a
long-double computation by differences to about 1e-12, and are the same bits on any
thread count and at any ISA level.

Security
--------
NoPeek is a heuristic defence: lowering the distance correlation makes reconstruction
attacks on the activations harder in experiments, but it gives no formal guarantee such
as differential privacy, and activations with low dCor can still leak information about
individual inputs. Combine it with DP on the cut layer where a guarantee is needed.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._validation import NON_NEGATIVE, check_out_like, check_scalar, inner_contiguous
from ._dcor import batch_inputs, run_kernel

__all__ = [
    "distance_correlation",
    "distance_correlation_gradient",
    "distance_correlation_sqr",
    "nopeek_loss",
]


def distance_correlation_sqr(x: Any, z: Any) -> float:
    """The squared distance correlation ``dCor²(x, z)`` of the rows of ``x`` and ``z``.

    Parameters
    ----------
    x, z : array_like, shape (B, ...)
        Two batches of the same ``B >= 2`` examples (float32 or float64; numpy arrays,
        torch CPU tensors and anything ``numpy.asarray`` views, any layout); each example
        is flattened. Their sizes per example may differ.

    Returns
    -------
    float
        ``dCov²(x, z) / sqrt(dVar²(x) dVar²(z))`` (see the module docstring), 0 when an
        input's rows are all equal; the value of ``dcor.distance_correlation_sqr``.

    Raises
    ------
    TypeError
        If an input is not float32/float64 (or not convertible).
    ValueError
        If an input is a scalar, has fewer than 2 rows, holds NaN or inf, or the row
        counts differ.
    """
    xr, zr, _ = batch_inputs(x, z)
    return float(run_kernel(xr, zr, None)[3])


def distance_correlation(x: Any, z: Any) -> float:
    """The (biased, V-statistic) distance correlation of the rows of ``x`` and ``z``.

    ``dCor = sqrt(dCov²(x, z) / sqrt(dVar²(x) dVar²(z)))`` over the examples of a batch
    (Székely, Rizzo & Bakirov 2007); see the module docstring for the maths and the
    numerics. Equals ``dcor.distance_correlation(x, z)``.

    Parameters
    ----------
    x, z : array_like, shape (B, ...)
        Two batches of the same ``B >= 2`` examples, e.g. a client's raw inputs and its
        cut-layer activations (float32 or float64, any layout, torch CPU tensors viewed
        without a copy); each example is flattened.

    Returns
    -------
    float
        The distance correlation, in [0, 1]; 0 when an input's rows are all equal.

    Raises
    ------
    TypeError
        If an input is not float32/float64 (or not convertible).
    ValueError
        If an input is a scalar, has fewer than 2 rows, holds NaN or inf, or the row
        counts differ.

    Notes
    -----
    Cost: two Gram matrices, ``O(B² (D_x + D_z))`` multiply-adds, and ``O(B²)`` more.
    As a leakage measure it is a heuristic: see the Security section of the module.
    """
    return math.sqrt(distance_correlation_sqr(x, z))


def distance_correlation_gradient(
    x: Any, z: Any, *, out: np.ndarray | None = None
) -> tuple[float, np.ndarray]:
    """``dCor(x, z)`` and its gradient with respect to ``z``.

    ``∂dCor/∂z = 2 (diag(M 1) - M) z`` with ``M_ij = (A_ij / sqrt(vx vz) - R B_ij / vz) /
    (2 n² dCor b_ij)`` (0 where ``b_ij = 0``); see the module docstring. The gradient is 0
    where ``dCor`` is 0 (there the square root has no derivative).

    Parameters
    ----------
    x, z : array_like, shape (B, ...)
        As in :func:`distance_correlation`.
    out : numpy.ndarray, optional
        Where to write the gradient: ``z``'s shape and dtype, writeable, any layout (it
        may be ``z`` itself: ``z`` is read in full before anything is written). Untouched
        when an error is raised.

    Returns
    -------
    dcor : float
        The distance correlation.
    grad : numpy.ndarray
        ``∂dCor/∂z``, of ``z``'s shape and dtype (``out`` when given).

    Raises
    ------
    TypeError
        If an input is not float32/float64, or ``out`` is not an array of ``z``'s dtype.
    ValueError
        As :func:`distance_correlation`, or ``out`` has the wrong shape or is read-only.
    """
    xr, zr, za = batch_inputs(x, z)
    if out is not None:
        target = check_out_like(out, za)
    else:
        target = np.empty(za.shape, dtype=za.dtype)
    # the kernel reads the rows of x and z until it writes its last gradient row (close
    # pairs are applied by differences of z's rows): an out sharing memory with either
    # is written from a separate buffer
    aliased = out is not None and (
        np.may_share_memory(target, xr) or np.may_share_memory(target, zr)
    )
    if target.size and inner_contiguous(target) and not aliased:
        rows = np.lib.stride_tricks.as_strided(
            target, shape=zr.shape, strides=(target.strides[0], target.itemsize)
        )
        r = run_kernel(xr, zr, rows)[3]
    else:
        tmp = np.empty(zr.shape, dtype=za.dtype)
        r = run_kernel(xr, zr, tmp)[3]
        target[...] = tmp.reshape(za.shape)
    return math.sqrt(r), target


def nopeek_loss(
    x: Any, z: Any, weight: float, *, out: np.ndarray | None = None
) -> tuple[float, np.ndarray]:
    """The NoPeek penalty ``weight · dCor(x, z)`` and its gradient with respect to ``z``.

    What a split-learning client adds to its loss (Vepakomma et al. 2020, "NoPeek:
    Information leakage reduction to share activations in distributed deep learning"):
    ``x`` the batch's raw inputs, ``z`` the activations it sends. Add the returned
    gradient to the gradient of the task loss with respect to ``z`` before
    back-propagating through the client's layers.

    Parameters
    ----------
    x, z : array_like, shape (B, ...)
        As in :func:`distance_correlation`.
    weight : float
        The penalty's weight, finite and >= 0.
    out : numpy.ndarray, optional
        As in :func:`distance_correlation_gradient`.

    Returns
    -------
    loss : float
        ``weight · dCor(x, z)``.
    grad : numpy.ndarray
        ``weight · ∂dCor/∂z``, of ``z``'s shape and dtype (``out`` when given).

    Raises
    ------
    TypeError
        As :func:`distance_correlation_gradient`, or ``weight`` is not a real number.
    ValueError
        As :func:`distance_correlation_gradient`, or ``weight`` is negative or not finite.

    Notes
    -----
    A heuristic defence: it gives no formal (differential) privacy guarantee.
    """
    w = check_scalar(weight, "weight", NON_NEGATIVE)
    value, grad = distance_correlation_gradient(x, z, out=out)
    grad *= grad.dtype.type(w)
    return w * value, grad
