"""Defences of split learning: DP on the cut layer and protection of the labels.

Split learning exchanges two messages per step: the client sends the cut-layer
activations ``z_i = f(x_i)`` of each example forward, and the party holding the labels
sends back the gradients ``g_i = ∂L/∂z_i``. Each message leaks something about the
examples behind it -- the raw inputs through the activations (model inversion), the
labels through the gradients (e.g. the norm attack of :mod:`.leakage`). This module
gives the three defences:

- :func:`cut_layer_dp` -- the Gaussian mechanism on the forward message: every example's
  activations are clipped to L2 norm ``C`` (as a whole, or row by row) and every entry
  gets ``N(0, (σ C)²)`` noise. One call is one accountant event;
- :func:`perturb_gradients` -- the same mechanism on the backward message, applied by the
  label holder to the gradients it returns: protects the labels (and whatever else of the
  label holder's side the gradients carry);
- :func:`rr_with_prior` -- label DP by randomized response with a prior
  (Ghazi, Golowich, Kumar, Manurangsi & Zhang 2021), for configurations where the labels
  themselves are sent; :func:`rr_with_prior_probabilities` gives its exact output
  distribution (the expected label accuracy, for instance).

Inputs are numpy arrays or anything ``np.asarray`` views without a copy (torch CPU
tensors), float32 or float64 for the Gaussian defences; the clipping and noise run in the
native kernels of :mod:`ppml_fast.clipping` and :mod:`ppml_fast.noise`, with the same
results on any number of threads for a seeded stream.
"""

from __future__ import annotations

import math
from typing import Any, Literal, NamedTuple

import numpy as np

from .. import _config
from .._native import clipping as _clip_kernels
from .._noise_fill import GAUSSIAN, fill
from .._types import RngLike
from .._validation import (
    NON_NEGATIVE,
    POSITIVE,
    RATE,
    as_float_array,
    asarray,
    check_allocation,
    check_choice,
    check_int,
    check_out_like,
    check_scalar,
    row_view,
)
from ..rng import resolve_for_dp

__all__ = [
    "CutLayerDP",
    "cut_layer_dp",
    "perturb_gradients",
    "rr_with_prior",
    "rr_with_prior_probabilities",
]

Adjacency = Literal["add_remove", "replace"]


class CutLayerDP(NamedTuple):
    """The result of :func:`cut_layer_dp` / :func:`perturb_gradients`.

    Record the step with ``accountant.step(**result.accounting)``.

    Security: only ``values`` (and the public parameters) may be sent. ``norms``
    describes individual examples: do not send, log or publish it.
    """

    values: Any
    """The clipped, noisy array (``out`` itself when it was given)."""
    noise_multiplier: float
    """σ: the noise standard deviation divided by the clipping norm ``C``."""
    sample_rate: float | None
    """The rate at which the batch was sampled from the data set, when it was given."""
    max_norm: float
    """``C``: the bound on each example's L2 norm after clipping."""
    noise_std: float
    """σ C: the standard deviation of the noise added to every entry."""
    norms: np.ndarray
    """(B,) float64: each example's L2 norm before clipping (NaN: a dropped row)."""
    adjacency: str = "add_remove"
    """The neighbouring relation :attr:`accounting` is for (see :func:`cut_layer_dp`)."""

    @property
    def sensitivity(self) -> float:
        """The L2 sensitivity of the message: ``C`` (add/remove) or ``2C`` (replace)."""
        return self.max_norm if self.adjacency == "add_remove" else 2.0 * self.max_norm

    @property
    def accounting(self) -> dict[str, float]:
        """Keyword arguments of ``RDPAccountant.step`` / ``PRVAccountant.step``.

        ``noise_multiplier`` is the noise std over the sensitivity of the chosen
        adjacency: σ for add/remove (Opacus' convention), σ/2 for replace-one.
        ``sample_rate`` is the batch's sampling rate, or 1 when none was given: no
        amplification by subsampling is then claimed, which is a valid (larger) bound.
        """
        q = 1.0 if self.sample_rate is None else self.sample_rate
        return {"noise_multiplier": self.noise_std / self.sensitivity, "sample_rate": q}


# ---------------------------------------------------------------- Gaussian defences


def _same_memory(x: np.ndarray, y: np.ndarray) -> bool:
    """Whether ``x`` and ``y`` are the same elements in the same layout."""
    return (
        x.__array_interface__["data"][0] == y.__array_interface__["data"][0]
        and x.strides == y.strides
        and x.shape == y.shape
    )


def _gaussian_defence(
    x: Any,
    name: str,
    max_norm: Any,
    noise_multiplier: Any,
    mode: str,
    sample_rate: Any,
    rng: RngLike,
    out: Any,
    nonfinite: str,
    adjacency: str,
) -> CutLayerDP:
    """Clip each example of ``x`` to ``C`` (flat or per row), then add N(0, (σC)²).

    Every check, and every norm, comes before the first write to ``out``.
    """
    check_choice(mode, "mode", ("flat", "per_row"))
    zero_bad = check_choice(nonfinite, "nonfinite", ("raise", "zero")) == "zero"
    check_choice(adjacency, "adjacency", ("add_remove", "replace"))
    c = check_scalar(max_norm, "max_norm", POSITIVE)
    sigma = check_scalar(noise_multiplier, "noise_multiplier", NON_NEGATIVE)
    q = None if sample_rate is None else check_scalar(sample_rate, "sample_rate", RATE)
    a = as_float_array(x, name)
    if a.ndim < 1:
        raise ValueError(f"{name} must have at least 1 dimension (B, ...), got a scalar")
    std = sigma * c
    # Clipped entries are at most C and a standard normal variate is below 2**10 (see
    # _noise_fill.max_scale), so C + 2**10 σC finite keeps every noisy entry finite.
    limit = float(np.finfo(a.dtype).max)
    if not (math.isfinite(std) and c + 1024.0 * std <= limit and std <= limit / 1024.0):
        raise ValueError(
            f"max_norm = {c:g} with noise_multiplier = {sigma:g} is too large for "
            f"{a.dtype} output: max_norm * (1 + 1024 * noise_multiplier) must be <= {limit:g}"
        )
    batch = a.shape[0]
    # per_row: each of the R rows of an example gets C/sqrt(R), so that the example's
    # norm is still at most C; a 1-d or 2-d array has one row per example.
    r = a.shape[1] if (mode == "per_row" and a.ndim >= 3 and a.shape[1] > 0) else 1
    c_row = c / math.sqrt(r) if r > 1 else c
    n_rows = batch * r
    width = math.prod(a.shape[1:]) // r if r else 0

    target = None if out is None else check_out_like(out, a)
    # the noise fill writes a C-contiguous buffer: a strided out gets the result copied in
    if target is not None and target.flags.c_contiguous:
        work = target
    else:
        work = np.empty(a.shape, dtype=a.dtype)
    gen = resolve_for_dp(rng)

    norms = np.zeros(n_rows, dtype=np.float64)
    if n_rows and width:
        src = row_view(a.reshape(n_rows, width), writeable=False)
        dst = work.reshape(n_rows, width)
        # exactly in place is fine (the kernel reads a row before writing it); any other
        # overlap with the input would read what was just written: read a copy
        if np.may_share_memory(dst, src) and not _same_memory(dst, src):
            src = src.copy()
        nthreads = _config.omp_threads()
        _clip_kernels.run(_clip_kernels.OP_NORMS, [src], [], 1.0, norms, nthreads)
        bad_rows = np.isnan(norms)
        if bad_rows.any():
            bad = bad_rows.reshape(batch, r).any(axis=1)
            if not zero_bad:
                example = int(np.flatnonzero(bad)[0])
                raise ValueError(
                    f"{name} must contain only finite values: example {example} holds NaN "
                    "or inf (pass nonfinite='zero' to drop such examples)"
                )
            norms.reshape(batch, r)[bad] = np.nan  # drop the whole example
        _clip_kernels.run(_clip_kernels.OP_SCALE, [src], [dst], c_row, norms, nthreads)

    flat = work.reshape(-1)
    if std > 0 and flat.size and not fill(GAUSSIAN, gen, std, flat, flat):
        raise ValueError(f"the noisy {name} overflowed {a.dtype}")  # excluded by the check
    if target is not None and work is not target:
        np.copyto(target, work)
    example_norms = _example_norms(norms, batch, r)
    return CutLayerDP(
        values=work if out is None else out,
        noise_multiplier=sigma,
        sample_rate=q,
        max_norm=c,
        noise_std=std,
        norms=example_norms,
        adjacency=adjacency,
    )


def _example_norms(row_norms: np.ndarray, batch: int, r: int) -> np.ndarray:
    """(B,) norms of whole examples from the (B*R,) norms of their rows (NaN kept)."""
    if r == 1:
        return row_norms
    m = row_norms.reshape(batch, r)
    top = np.max(m, axis=1) if m.size else np.zeros(batch)
    safe = np.where(top > 0, top, 1.0)
    # scaled by the largest row so that squaring neither overflows nor underflows
    return top * np.sqrt(np.sum((m / safe[:, None]) ** 2, axis=1))


def cut_layer_dp(
    activations: Any,
    max_norm: float,
    noise_multiplier: float,
    *,
    mode: Literal["flat", "per_row"] = "flat",
    sample_rate: float | None = None,
    rng: RngLike = None,
    out: Any = None,
    nonfinite: Literal["raise", "zero"] = "raise",
    adjacency: Adjacency = "add_remove",
) -> CutLayerDP:
    """DP on the cut layer: clip every example's activations to norm ``C``, add noise.

    The message sent for a batch becomes

        z̃_i = z_i · min(1, C / ||z_i||₂) + N(0, (σ C)² I),

    with ``z_i`` example ``i``'s activations (``mode="flat"``), or, row by row, each of
    the ``R`` rows ``z_ir`` of a (B, R, ...) example clipped to ``C/√R`` (``mode=
    "per_row"``: e.g. one row per token or per patch; the example's norm is still at most
    ``C``).

    Parameters
    ----------
    activations : array of shape (B, ...)
        The cut-layer activations, one example per row of the first axis (float32 or
        float64; torch CPU tensors are read without a copy). Any memory layout.
    max_norm : float > 0
        ``C``.
    noise_multiplier : float >= 0
        σ: the noise std is ``σ C``. Zero only clips (and protects nothing).
    mode : {"flat", "per_row"}
        Clip each example as a whole, or each of its rows along axis 1 to ``C/√R`` (for a
        1-d or 2-d array both are the same).
    sample_rate : float in (0, 1], optional
        The rate at which the batch was sampled from the data set (Poisson sampling),
        carried into :attr:`CutLayerDP.accounting`.
    rng : None, int or Generator
        Noise source: ``None`` is the secure stream; an int seed is reproducible (tests
        only; warns once).
    out : array, optional
        Where to write the result: same shape and dtype as ``activations``. It may be
        ``activations`` itself (in place) or overlap it in any way.
    nonfinite : {"raise", "zero"}
        An example holding NaN or inf raises ``ValueError`` (nothing written), or is
        replaced by zeros (then noise) with norm NaN in ``norms``.
    adjacency : {"add_remove", "replace"}
        The neighbouring relation :attr:`CutLayerDP.accounting` is computed for.

    Returns
    -------
    CutLayerDP
        ``values`` (``out`` itself when given, else a new numpy array), σ, ``C``, σC,
        the pre-clip norms, and ``accounting`` for ``accountant.step(**...)``.

    Notes
    -----
    *What is protected.* Each example's activations in the forward message: after
    clipping, example ``i`` contributes a row of norm at most ``C`` and every entry gets
    independent Gaussian noise of std σC, so the message is the Gaussian mechanism with
    L2 sensitivity ``C`` when an example is added or removed (its row present, or the
    pure-noise row of an absent example), and ``2C`` when one example is replaced by
    another (two rows in the ball of radius ``C`` are up to ``2C`` apart). With
    ``adjacency="add_remove"`` (the default, Opacus' convention) the accountant records
    noise multiplier σ; with ``"replace"`` it records σ/2. Each training step is one
    accountant event: the Poisson-subsampled Gaussian mechanism with the batch's
    ``sample_rate``. The guarantee covers the values of the rows; the number of rows a
    batch sends is visible to the receiver (send fixed-size batches, or pad with
    pure-noise rows, when that matters). The model weights that produce the activations
    are not protected by this step, nor is anything computed before the cut.

    *Numerics.* Norms are accumulated in float64 by the kernel of
    :func:`ppml_fast.clipping.clip_per_sample`, whose rounding notes apply (a clipped
    row's norm may exceed ``C`` by a relative amount of order the dtype's epsilon); rows
    within the bound are copied bit for bit. The noise is drawn into the output in one
    more pass, from a stream split into fixed blocks (the same result on any number of
    threads for a seeded stream).

    Security
    --------
    Noise comes from the cryptographically secure stream unless a seed or Generator is
    passed; seeded noise can be removed by whoever knows the seed and is for tests only.
    Floating-point Gaussian noise has the least-significant-bit weakness described in
    :mod:`ppml_fast.noise` (Mironov 2012). NaN or inf in the activations is an error by
    default: a non-finite row has no norm to clip to.
    """
    return _gaussian_defence(
        activations,
        "activations",
        max_norm,
        noise_multiplier,
        mode,
        sample_rate,
        rng,
        out,
        nonfinite,
        adjacency,
    )


def perturb_gradients(
    gradients: Any,
    max_norm: float,
    noise_multiplier: float,
    *,
    sample_rate: float | None = None,
    rng: RngLike = None,
    out: Any = None,
    mode: Literal["flat", "per_row"] = "flat",
    nonfinite: Literal["raise", "zero"] = "raise",
    adjacency: Adjacency = "add_remove",
) -> CutLayerDP:
    """The label holder's protection: clip each example's returned gradient, add noise.

    ``g̃_i = g_i · min(1, C / ||g_i||₂) + N(0, (σ C)² I)`` for the cut-layer gradient
    ``g_i = ∂L_i/∂z_i`` of each example's own loss (compute it per example, i.e. for the
    summed loss, and divide by the batch size after the noise if the client's update
    needs the mean).

    Parameters
    ----------
    gradients : array of shape (B, ...)
        The per-example cut-layer gradients about to be sent back (float32 or float64;
        torch CPU tensors are read without a copy).
    max_norm, noise_multiplier, sample_rate, rng, out, mode, nonfinite, adjacency
        As in :func:`cut_layer_dp`.

    Returns
    -------
    CutLayerDP
        ``values`` is the array to send back; ``accounting`` is the step's event.

    Notes
    -----
    *What is protected.* The gradient of example ``i`` is a function of its label (and
    of the label holder's layers and the activations the client already has), so
    bounding and noising it bounds what the client -- or anyone reading the backward
    message -- learns about each label, e.g. through the norm attack of
    :func:`ppml_fast.split.leakage.norm_leakage_auc`. For label DP in the sense of
    Ghazi et al. (2021), neighbouring data sets differ in one example's label: the two
    clipped gradients are up to ``2C`` apart, so pass ``adjacency="replace"`` (the
    accountant then records σ/2); ``"add_remove"`` (sensitivity ``C``, Opacus'
    convention) is for an example, label and all, being present or absent. Each training
    step is one Poisson-subsampled Gaussian event with the batch's ``sample_rate``. The
    forward activations are not protected by this function (see :func:`cut_layer_dp`).

    Security
    --------
    As in :func:`cut_layer_dp`: secure noise unless seeded (tests only); the
    floating-point caveat of :mod:`ppml_fast.noise` applies.
    """
    return _gaussian_defence(
        gradients,
        "gradients",
        max_norm,
        noise_multiplier,
        mode,
        sample_rate,
        rng,
        out,
        nonfinite,
        adjacency,
    )


# -------------------------------------------------------------------------- label DP


def _labels(labels: Any, n_classes: int) -> np.ndarray:
    """``labels`` as an integer array with every value in [0, n_classes)."""
    y = asarray(labels, "labels")
    if y.dtype.kind not in "iu":
        raise TypeError(f"labels must be an integer array, got dtype {y.dtype}")
    if y.size:
        lo, hi = int(y.min()), int(y.max())
        if lo < 0 or hi >= n_classes:
            bad = lo if lo < 0 else hi
            raise ValueError(f"labels must be in [0, n_classes) = [0, {n_classes}), got {bad}")
    return y


#: Bytes of work per class of one prior row: the prior, its sort order and ranks, the
#: cumulative masses, the candidate k's and their keep probabilities, argsort's scratch.
_BYTES_PER_CLASS = 64
#: Bytes per (example, class) entry of :func:`rr_with_prior_probabilities`: the float64
#: result, two float64 temporaries of the same shape and two boolean masks.
_BYTES_PER_PROBABILITY = 8 * 3 + 2


def _check_classes_fit(n_classes: int, outputs: int) -> None:
    """Refuse, naming ``n_classes``, a class count whose work would not fit in memory.

    ``outputs`` is the number of rows of K probabilities returned (0 for the draws, which
    need no (B, K) array). The work of one prior row is counted (a per-example prior is
    an array the caller already holds); a K beyond memory would otherwise fail inside
    numpy with an error that names no parameter, or get the process killed when touched.
    """
    need = (_BYTES_PER_CLASS + _BYTES_PER_PROBABILITY * outputs) * n_classes
    check_allocation(need, "n_classes", f"{n_classes} classes for {outputs} rows of output")


def _prior(prior: Any, n_classes: int, y: np.ndarray) -> np.ndarray:
    """The prior as a (K,) or (B, K) float64 array of probabilities (rows sum to 1)."""
    if prior is None:
        return np.full(n_classes, 1.0 / n_classes)
    p = asarray(prior, "prior")
    if p.dtype.kind not in "biuf":
        raise TypeError(f"prior must be a real numeric array, got dtype {p.dtype}")
    p = p.astype(np.float64)
    if p.ndim == 1:
        if p.shape[0] != n_classes:
            raise ValueError(f"prior must have shape ({n_classes},), got {p.shape}")
    elif p.ndim == 2:
        if y.ndim != 1 or p.shape != (y.shape[0], n_classes):
            raise ValueError(
                f"a per-example prior must have shape (B, n_classes) = "
                f"({y.shape[0] if y.ndim == 1 else 'B'}, {n_classes}) for 1-d labels, "
                f"got {p.shape} with labels of shape {y.shape}"
            )
    else:
        raise ValueError(f"prior must have shape (n_classes,) or (B, n_classes), got {p.shape}")
    if p.size and not np.isfinite(p).all():
        raise ValueError("prior must contain only finite values (found NaN or inf)")
    if p.size and p.min() < 0:
        raise ValueError(f"prior must be >= 0, got {float(p.min())}")
    total = p.sum(axis=-1, keepdims=True)
    if total.size and total.min() <= 0:
        raise ValueError("prior must have a positive sum (in every row)")
    return p / total


def _rr_plan(
    p: np.ndarray, epsilon: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """RRWithPrior's choice for prior(s) ``p`` ((K,) or (B, K)).

    Returns ``order`` (classes by decreasing prior, ties by index), ``rank`` (its
    inverse: each class's position in ``order``), ``k`` (the chosen k*) and ``keep``
    (``e^ε / (e^ε + k* - 1)``), with the prior's leading shape.
    """
    order = np.argsort(-p, axis=-1, kind="stable")
    rank = np.argsort(order, axis=-1, kind="stable")
    top = np.cumsum(np.take_along_axis(p, order, axis=-1), axis=-1)
    ks = np.arange(1, p.shape[-1] + 1, dtype=np.float64)
    # e^ε/(e^ε + k - 1) written with e^-ε: no overflow for large ε
    keep_k = 1.0 / (1.0 + (ks - 1.0) * math.exp(-epsilon))
    k = np.argmax(top * keep_k, axis=-1) + 1  # the first maximum: the smallest such k
    return order, rank, k, keep_k[k - 1]


def rr_with_prior_probabilities(
    labels: Any, epsilon: float, *, n_classes: int, prior: Any = None
) -> np.ndarray:
    """The exact output distribution of :func:`rr_with_prior` for each label.

    Returns a float64 array of shape ``labels.shape + (n_classes,)``: entry ``[..., j]``
    is the probability that the randomized label is ``j``. ``P[output = label]``, its
    diagonal, is the expected label accuracy. Arguments as in :func:`rr_with_prior`;
    ``n_classes`` is refused (``ValueError``) when that result would not fit in memory.
    """
    epsilon = check_scalar(epsilon, "epsilon", POSITIVE)
    n_classes = check_int(n_classes, "n_classes", minimum=1)
    y = _labels(labels, n_classes)
    _check_classes_fit(n_classes, y.size)
    p = _prior(prior, n_classes, y)
    _, rank, k, keep = _rr_plan(p, epsilon)
    shape = y.shape if p.ndim == 1 else (y.shape[0],)
    k_b = np.broadcast_to(k, shape)[..., None]
    keep_b = np.broadcast_to(keep, shape)[..., None]
    rank_b = np.broadcast_to(rank, (*shape, n_classes))
    in_top = rank_b < k_b  # (..., K): the classes of Y_k*
    is_label = np.arange(n_classes) == y[..., None]
    label_in = (in_top & is_label).any(axis=-1, keepdims=True)
    # each other member of Y_k*: 1/(e^ε + k - 1) = e^-ε · keep (not (1 - keep)/(k - 1),
    # which cancels catastrophically for large ε)
    other = keep_b * math.exp(-epsilon)
    probs = np.where(label_in, np.where(is_label, keep_b, other), 1.0 / k_b)
    return np.where(in_top, probs, 0.0)


def rr_with_prior(
    labels: Any,
    epsilon: float,
    *,
    n_classes: int,
    prior: Any = None,
    rng: RngLike = None,
) -> np.ndarray:
    """Label DP by randomized response with a prior (RRWithPrior).

    For an example with label ``y`` and prior ``p`` over the classes (Ghazi, Golowich,
    Kumar, Manurangsi & Zhang 2021, "Deep Learning with Label Differential Privacy",
    Algorithm 2):

    1. ``k* = argmax_k  e^ε / (e^ε + k - 1) · Σ_{j ≤ k} p_(j)`` (``p_(j)``: the prior
       masses sorted in decreasing order) and ``Y_k*`` = the ``k*`` most likely classes;
    2. if ``y ∈ Y_k*``, output ``y`` with probability ``e^ε / (e^ε + k* - 1)``, else each
       other member of ``Y_k*`` with probability ``1 / (e^ε + k* - 1)``;
    3. if ``y ∉ Y_k*``, output a uniform member of ``Y_k*``.

    With the uniform prior (``prior=None``) ``k* = n_classes`` and this is plain k-ary
    randomized response.

    Parameters
    ----------
    labels : array of ints
        The true labels, each in ``[0, n_classes)`` (any integer dtype, any shape; 1-d
        when the prior is per example). Torch tensors accepted.
    epsilon : float > 0
        ε (finite).
    n_classes : int >= 1
        K; refused (``ValueError``) when the per-class work would not fit in this
        machine's memory.
    prior : array, optional
        Non-negative weights over the classes, normalised per row: shape (K,) shared by
        every example, or (B, K), one row per example. ``None``: uniform.
    rng : None, int or Generator
        ``None`` is the secure stream; an int seed is for tests only (warns once).

    Returns
    -------
    ndarray
        The randomized labels, same shape and dtype as ``labels``.

    Notes
    -----
    ε-label-DP (neighbouring data sets differ in one example's label): ``Y_k*`` depends
    on the prior only, and for any output ``j`` the probabilities under two labels are
    among ``e^ε/(e^ε+k-1)``, ``1/(e^ε+k-1)``, ``1/k`` and 0 (0 for both, outside
    ``Y_k*``), whose ratios are at most ``e^ε``. Each label is randomized once; reusing the
    randomized labels over many epochs costs nothing more. Ties between equal prior
    masses go to the smaller class index, ties in the ``argmax`` to the smaller ``k``.

    Security
    --------
    The prior must not depend on the private labels it is applied to (in the paper it
    comes from a model trained on an earlier, disjoint part of the data, or is public);
    a prior computed from these labels voids the guarantee. Randomness comes from the
    secure stream unless seeded.
    """
    epsilon = check_scalar(epsilon, "epsilon", POSITIVE)
    n_classes = check_int(n_classes, "n_classes", minimum=1)
    y = _labels(labels, n_classes)
    _check_classes_fit(n_classes, 0)
    p = _prior(prior, n_classes, y)
    gen = resolve_for_dp(rng)
    order, rank, k, keep = _rr_plan(p, epsilon)
    flat = y.reshape(-1).astype(np.intp)
    n = flat.size
    if p.ndim == 1:
        order_b = np.broadcast_to(order, (n, n_classes))
        label_rank = rank[flat]
        k_b = np.full(n, k, dtype=np.int64)
        keep_b = np.full(n, keep)
    else:
        order_b = order
        label_rank = np.take_along_axis(rank, flat[:, None], axis=1)[:, 0]
        k_b, keep_b = k.astype(np.int64), keep
    label_in = label_rank < k_b
    u = gen.random(n)
    # one uniform position per example: among the k* - 1 other members of Y_k* when the
    # label is in it (skipping the label's own position), among all k* otherwise
    m = np.where(label_in, k_b - 1, k_b)
    j = gen.integers(0, np.maximum(m, 1), size=n)
    j = np.where(label_in & (j >= label_rank), j + 1, j)
    drawn = np.take_along_axis(order_b, np.minimum(j, n_classes - 1)[:, None], axis=1)[:, 0]
    stay = label_in & (u < keep_b)
    result = np.where(stay, flat, drawn)
    return result.astype(y.dtype).reshape(y.shape)
