"""DP-SGD per-sample gradient clipping: clip, fused clip-and-sum, and the noisy aggregate.

DP-SGD (Abadi et al. 2016) bounds each example's influence by clipping its gradient
``g_i`` to L2 norm at most ``C``,

    clip(g_i) = g_i * min(1, C / ||g_i||₂),

sums the clipped gradients, adds Gaussian noise ``N(0, (σ C)²)`` to every coordinate and
divides by the (expected) batch size. The sum of clipped gradients has L2 sensitivity
``C`` under adding or removing one example, so the noisy sum is the Gaussian mechanism
with noise multiplier ``σ``; an accountant (:mod:`ppml_fast.accounting`) turns the steps
into (ε, δ).

Functions
---------
- :func:`clip_per_sample` -- the clipped gradients (may work in place);
- :func:`clip_and_sum` -- the sum of clipped gradients in one fused pass, without
  materialising the clipped matrix;
- :func:`dp_aggregate` -- clip, sum, noise and scale: the DP-SGD gradient, with what an
  accountant needs to record the step;
- :func:`per_sample_norms` -- the norms alone;
- :class:`AdaptiveClipping` -- quantile-based adaptive clipping norm (Andrew et al. 2021).

Inputs
------
``grads`` is one array of shape ``(B, ...)`` (row ``i`` is example ``i``'s gradient), or a
list of such arrays, one per parameter tensor, all with the same ``B`` and dtype. With a
list, ``max_norm`` is either one number -- the norm is taken over all layers together
(Opacus' flat clipping) -- or a list of per-layer thresholds (each layer clipped on its
own). A list or tuple is always a list of layers (pass ``np.asarray(nested_list)`` for
one array). float32 and float64 are supported; torch CPU tensors and anything else
``np.asarray`` can view are read without a copy. Rows need not be contiguous with each
other (any row stride, negative included); the elements inside a row are copied to a
contiguous buffer only when they are not contiguous already.

Numerics
--------
Norms are accumulated in float64 for both dtypes, over fixed chunks of the row, so they
do not depend on the thread count; results are bit-for-bit reproducible on 1 or N
threads. A row whose squares overflow or underflow float64 is rescaled by its largest
magnitude before squaring. The scale ``min(1, C/||g||)`` is computed in float64 and
rounded once to the data type (a zero row has scale 1), except a scale below the data
type's normal range (a norm more than ~1e38 times C in float32), whose products are
formed with a single rounding instead. Because of rounding, a clipped row's norm can
exceed ``C`` by a relative amount of order the dtype's epsilon (as in Opacus and every
floating-point implementation), unless the clipped values themselves are subnormal.

Security
--------
Clipping is what makes the sensitivity ``C`` true, so NaN or inf in ``grads`` is an
error by default (``nonfinite="raise"``): a non-finite row has no norm to clip to.
``nonfinite="zero"`` instead drops such rows (a zero row has norm 0 <= C, so the bound
still holds) and reports them. The noise of :func:`dp_aggregate` comes from the secure
stream unless a seed or Generator is passed, and floating-point Gaussian noise has the
least-significant-bit weakness described in :mod:`ppml_fast.noise`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal, NamedTuple

import numpy as np
import numpy.typing as npt

from . import _config
from ._native import clipping as _kernels
from ._noise_fill import GAUSSIAN, fill
from ._types import RngLike
from ._validation import (
    NON_NEGATIVE,
    OPEN_UNIT,
    POSITIVE,
    RATE,
    as_float_array,
    asarray,
    check_choice,
    check_distinct_outs,
    check_int,
    check_scalar,
    inner_contiguous,
    row_view,
)
from .rng import resolve_for_dp

__all__ = [
    "AdaptiveClipping",
    "DPAggregate",
    "clip_and_sum",
    "clip_per_sample",
    "dp_aggregate",
    "per_sample_norms",
]

Grads = Any  # an array-like of shape (B, ...) or a sequence of them (one per layer)
NonFinite = Literal["raise", "zero"]


# ----------------------------------------------------------------------------- inputs


class _Batch:
    """``grads`` normalised: one (B, n_l) view with contiguous rows per layer."""

    __slots__ = ("batch_size", "dtype", "is_list", "rows", "shapes")

    def __init__(self, grads: Grads, name: str = "grads") -> None:
        self.is_list = isinstance(grads, (list, tuple))
        items = list(grads) if self.is_list else [grads]
        if not items:
            raise ValueError(f"{name} must hold at least one array, got an empty list")
        arrays = []
        for i, g in enumerate(items):
            label = f"{name}[{i}]" if self.is_list else name
            arrays.append(_as_float_array(g, label))
        self.dtype = arrays[0].dtype
        self.batch_size = arrays[0].shape[0]
        for i, a in enumerate(arrays[1:], start=1):
            if a.dtype != self.dtype:
                raise TypeError(
                    f"{name}[{i}] has dtype {a.dtype}, {name}[0] has {self.dtype}: "
                    "all layers must share one dtype"
                )
            if a.shape[0] != self.batch_size:
                raise ValueError(
                    f"{name}[{i}] has batch size {a.shape[0]}, {name}[0] has "
                    f"{self.batch_size}: every layer needs one row per example"
                )
        self.shapes = [a.shape for a in arrays]
        self.rows = [_rows(a) for a in arrays]

    def wrap(self, arrays: list[np.ndarray]) -> Any:
        """The input's structure: a list for a list, else the single array."""
        return list(arrays) if self.is_list else arrays[0]


def _as_float_array(g: Any, name: str) -> np.ndarray:
    a = as_float_array(g, name)
    if a.ndim < 1:
        raise ValueError(f"{name} must have at least 1 dimension (B, ...), got a scalar")
    return a


def _rows(a: np.ndarray) -> np.ndarray:
    """``a`` as (B, n) with contiguous rows: a view when possible, else a copy."""
    return row_view(a, writeable=a.flags.writeable)


def _thresholds(max_norm: Any, batch: _Batch) -> list[float]:
    """``[C]`` for flat clipping, or one ``C_l`` per layer."""
    if _per_layer(max_norm):
        if not batch.is_list:
            raise ValueError(
                "max_norm must be one number when grads is a single array "
                "(a list of thresholds needs a list of layers)"
            )
        if len(max_norm) != len(batch.rows):
            raise ValueError(
                f"max_norm has {len(max_norm)} thresholds but grads has {len(batch.rows)} layers"
            )
        return [check_scalar(c, f"max_norm[{i}]", POSITIVE) for i, c in enumerate(max_norm)]
    return [check_scalar(max_norm, "max_norm", POSITIVE)]


def _per_layer(max_norm: Any) -> bool:
    """Whether ``max_norm`` is a list of per-layer thresholds (checked by _thresholds)."""
    return (
        isinstance(max_norm, (list, tuple, np.ndarray)) and asarray(max_norm, "max_norm").ndim == 1
    )


def _check_nonfinite(nonfinite: Any) -> bool:
    """True when non-finite rows are to be zeroed."""
    return check_choice(nonfinite, "nonfinite", ("raise", "zero")) == "zero"


def _nonfinite_error(name: str, row: int, layer: int | None) -> ValueError:
    where = f"row {row}" if layer is None else f"row {row} of layer {layer}"
    return ValueError(
        f"{name} must contain only finite values: {where} holds NaN or inf "
        "(pass nonfinite='zero' to drop such rows)"
    )


def _groups(batch: _Batch, thresholds: list[float]) -> list[tuple[list[int], float]]:
    """(layers, C) per clipping group: all layers under one C, or one layer each."""
    if len(thresholds) == 1:
        return [(list(range(len(batch.rows))), thresholds[0])]
    return [([i], c) for i, c in enumerate(thresholds)]


def _raw_norms(batch: _Batch, groups: list[tuple[list[int], float]]) -> np.ndarray:
    """(G, B) float64 norms of each group of layers; NaN where a group holds NaN/inf."""
    norms = np.empty((len(groups), batch.batch_size), dtype=np.float64)
    nthreads = _config.omp_threads()
    for g, (layers, _) in enumerate(groups):
        _kernels.run(
            _kernels.OP_NORMS, [batch.rows[i] for i in layers], [], 1.0, norms[g], nthreads
        )
    return norms


def _measure(batch: _Batch, groups: list[tuple[list[int], float]], zero_bad: bool) -> np.ndarray:
    """Every group's norms, (G, B) float64, before anything is written.

    A row with NaN or inf in any layer raises (``zero_bad`` false), or gets norm NaN in
    every group, so that the whole example is dropped, not just the bad layer.
    """
    norms = _raw_norms(batch, groups)
    bad = np.isnan(norms).any(axis=0)
    if bad.any():
        if not zero_bad:
            row = int(np.flatnonzero(bad)[0])
            layer = None
            if len(groups) > 1:
                layer = groups[int(np.flatnonzero(np.isnan(norms[:, row]))[0])][0][0]
            raise _nonfinite_error("grads", row, layer)
        norms[:, bad] = np.nan
    return norms


def _apply(
    op: int,
    batch: _Batch,
    groups: list[tuple[list[int], float]],
    outs: list[np.ndarray],
    norms: np.ndarray,
) -> None:
    """Scale or sum every group with the norms of :func:`_measure` (NaN: dropped row)."""
    nthreads = _config.omp_threads()
    for g, (layers, c) in enumerate(groups):
        _kernels.run(
            op, [batch.rows[i] for i in layers], [outs[i] for i in layers], c, norms[g], nthreads
        )


def _overlaps(a: np.ndarray, batch: _Batch) -> bool:
    """Whether ``a`` may share memory with any layer of ``grads``."""
    return a.size > 0 and any(r.size and np.may_share_memory(a, r) for r in batch.rows)


def _norms_result(norms: np.ndarray, per_layer: bool) -> np.ndarray:
    """(G, B) norms as the public (B,) or, per layer, (B, L) float64 array."""
    return np.ascontiguousarray(norms.T if per_layer else norms[0])


# ----------------------------------------------------------------------------- public


def per_sample_norms(grads: Grads, *, per_layer: bool = False) -> np.ndarray:
    """Per-example L2 norms ``||g_i||₂`` of ``grads`` (one array or a list of layers).

    With a list, the norm is over all layers together, or per layer (shape (B, L)) when
    ``per_layer``. Non-finite rows give NaN. float64 for both dtypes (a float32 row's
    norm can exceed float32's range); independent of the thread count.
    """
    batch = _Batch(grads)
    n = len(batch.rows)
    groups = [([i], 1.0) for i in range(n)] if per_layer else [(list(range(n)), 1.0)]
    return _norms_result(_raw_norms(batch, groups), per_layer)


def _prepare_out(
    out: Any, is_list: bool, dtype: np.dtype, shapes: list[tuple[int, ...]]
) -> list[np.ndarray]:
    """Check ``out`` against the expected structure; return one array per layer."""
    if is_list:
        if not isinstance(out, (list, tuple)) or len(out) != len(shapes):
            raise TypeError(f"out must be a list of {len(shapes)} arrays (one per layer of grads)")
        items = list(out)
    else:
        if isinstance(out, (list, tuple)):
            raise TypeError("out must be an array when grads is a single array")
        items = [out]
    arrays = []
    for i, o in enumerate(items):
        label = f"out[{i}]" if is_list else "out"
        try:
            a = np.asarray(o)
        except (RuntimeError, TypeError) as exc:
            raise TypeError(f"{label} must be convertible by numpy.asarray: {exc}") from None
        if a.dtype != dtype:
            raise TypeError(f"{label} must have dtype {dtype}, got {a.dtype}")
        if a.shape != shapes[i]:
            raise ValueError(f"{label} must have shape {shapes[i]}, got {a.shape}")
        if not a.flags.writeable:
            raise ValueError(f"{label} must be writeable")
        arrays.append(a)
    # Outputs written by several threads must be distinct memory, each element its own.
    check_distinct_outs(arrays, [f"out[{i}]" if is_list else "out" for i in range(len(arrays))])
    return arrays


def clip_per_sample(
    grads: Grads,
    max_norm: float | Sequence[float],
    *,
    out: Any = None,
    return_norms: bool = False,
    nonfinite: NonFinite = "raise",
) -> Any:
    """Clip each example's gradient to L2 norm at most ``max_norm``.

    Row ``i`` becomes ``g_i * min(1, C / ||g_i||₂)`` (``g_i`` unchanged when its norm is
    at most ``C``, or zero).

    Parameters
    ----------
    grads : array of shape (B, ...) or list of such arrays
        Per-example gradients (float32 or float64; torch CPU tensors accepted). With a
        list, one array per parameter tensor, all with the same ``B``.
    max_norm : float > 0, or list of floats
        ``C``. One number clips the norm over all layers together (flat clipping); a list
        (one per layer) clips each layer to its own threshold.
    out : array or list of arrays, optional
        Where to write the result: same shapes and dtype as ``grads``. It may be
        ``grads`` itself (in place): rows already within the bound are then not written.
        Any other overlap with ``grads`` (a shifted view, another layer) is handled by
        reading a copy. The entries of a list must not share memory with each other, nor
        may an array's own elements alias (e.g. stride 0): ``ValueError``.
    return_norms : bool
        Also return the norms before clipping: shape (B,) (flat) or (B, L) (per-layer
        thresholds), float64.
    nonfinite : {"raise", "zero"}
        What a row holding NaN or inf does: raise ``ValueError`` (nothing is written,
        in place or to ``out``), or become zeros -- in every layer, whichever layer held
        the NaN -- with norm NaN in the returned norms.

    Returns
    -------
    clipped : ndarray or list of ndarrays (``out`` itself when given, a torch tensor too)
    norms : ndarray, only with ``return_norms``

    Notes
    -----
    Two streaming passes on both cores: every row's norm, then the scaled rows. All norms
    are known (and checked for NaN/inf) before anything is written, so an error leaves
    ``out`` -- and ``grads``, in place -- untouched.
    """
    zero_bad = _check_nonfinite(nonfinite)
    batch = _Batch(grads)
    thresholds = _thresholds(max_norm, batch)
    if out is None:
        results = [np.empty(s, dtype=batch.dtype) for s in batch.shapes]
    else:
        results = _prepare_out(out, batch.is_list, batch.dtype, batch.shapes)
    targets = []  # (B, n) views of the results the kernel writes into
    copy_back: list[tuple[np.ndarray, np.ndarray]] = []
    for i, r in enumerate(results):
        view = _rows(r) if inner_contiguous(r) else None
        if view is None or view.size == 0:
            view = np.empty(batch.rows[i].shape, dtype=batch.dtype)
            copy_back.append((r, view))
        targets.append(view)
    # Exactly in place (out[i] is grads[i], element for element) is fine; any other
    # overlap -- a shifted view, another layer -- would read what was just written.
    for j, src in enumerate(batch.rows):
        for i, view in enumerate(targets):
            if not (view.size and src.size and np.may_share_memory(view, src)):
                continue
            same = (
                i == j
                and view.__array_interface__["data"][0] == src.__array_interface__["data"][0]
                and view.strides == src.strides
            )
            if not same:
                batch.rows[j] = src.copy()
                break
    groups = _groups(batch, thresholds)
    norms = _measure(batch, groups, zero_bad)  # raises before anything is written
    _apply(_kernels.OP_SCALE, batch, groups, targets, norms)
    for r, view in copy_back:
        np.copyto(r, view.reshape(r.shape))
    clipped = batch.wrap(results) if out is None else out
    if return_norms:
        return clipped, _norms_result(norms, _per_layer(max_norm))
    return clipped


def clip_and_sum(
    grads: Grads,
    max_norm: float | Sequence[float],
    *,
    out: Any = None,
    return_norms: bool = False,
    nonfinite: NonFinite = "raise",
) -> Any:
    """Sum of the clipped per-example gradients, ``Σ_i g_i min(1, C / ||g_i||₂)``.

    Fused: the clipped rows are never materialised. The kernel streams ``grads`` twice on
    both cores -- every row's norm, then the scaled rows added into the sum column panel
    by column panel, each panel of the sum staying in cache -- which is faster than
    scaling each row while it is still in cache when rows are megabytes long (see
    ``_native/_clipping_kernels.h``).

    Parameters
    ----------
    grads, max_norm, return_norms, nonfinite
        As in :func:`clip_per_sample` (a dropped non-finite row adds nothing).
    out : array or list of arrays, optional
        Where to write the sums: shape ``grads.shape[1:]`` per layer, same dtype (it may
        overlap ``grads``: the sum is then made aside and copied in). The entries of a
        list must not share memory with each other, nor may an array's own elements
        alias (e.g. stride 0): ``ValueError``, before anything is written.

    Returns
    -------
    total : ndarray of shape ``grads.shape[1:]`` (a list of them for a list of layers;
        ``out`` itself when given)
    norms : ndarray, only with ``return_norms``

    Notes
    -----
    The rows are added in order, in the data's dtype (as ``np.add.reduce`` would, one row
    at a time), so the sum is the same on any number of threads.
    """
    zero_bad = _check_nonfinite(nonfinite)
    batch = _Batch(grads)
    thresholds = _thresholds(max_norm, batch)
    sums, norms = _clip_sum(batch, thresholds, out, zero_bad)
    total = batch.wrap(sums) if out is None else out
    if return_norms:
        return total, _norms_result(norms, _per_layer(max_norm))
    return total


def _clip_sum(
    batch: _Batch, thresholds: list[float], out: Any, zero_bad: bool
) -> tuple[list[np.ndarray], np.ndarray]:
    shapes = [s[1:] for s in batch.shapes]
    if out is None:
        results = [np.zeros(s, dtype=batch.dtype) for s in shapes]
    else:
        results = _prepare_out(out, batch.is_list, batch.dtype, shapes)
    groups = _groups(batch, thresholds)
    norms = _measure(batch, groups, zero_bad)  # raises before out is touched
    accs, aside = [], []
    for r in results:
        direct = out is None or (r.flags.c_contiguous and not _overlaps(r, batch))
        if direct:
            r[...] = 0
            accs.append(r.reshape(-1))
        else:  # a strided out, or one that overlaps grads: sum aside, then copy
            accs.append(np.zeros(r.size, dtype=batch.dtype))
        aside.append(not direct)
    _apply(_kernels.OP_SUM, batch, groups, accs, norms)
    for r, acc, copy in zip(results, accs, aside, strict=True):
        if copy:
            np.copyto(r, acc.reshape(r.shape))
    return results, norms


class DPAggregate(NamedTuple):
    """The result of :func:`dp_aggregate`: the DP gradient and the step's accounting.

    Record the step with ``accountant.step(**result.accounting)`` (needs ``sample_rate``).

    Security: only ``gradient`` (and the public parameters) may be released. ``norms``,
    ``nonfinite_rows`` and ``batch_size`` describe individual examples and the realised
    (private, under Poisson sampling) batch: do not log or publish them.
    """

    gradient: Any
    """The noisy, scaled gradient (an array, or a list mirroring ``grads``)."""
    noise_multiplier: float
    """σ: the noise standard deviation divided by the L2 sensitivity."""
    sample_rate: float | None
    """The Poisson sampling rate, when it was given."""
    max_norm: float
    """The L2 sensitivity of the sum: ``C``, or ``sqrt(Σ C_l²)`` for per-layer thresholds."""
    noise_std: float
    """σ × sensitivity: the standard deviation added to each coordinate of the sum."""
    batch_size: int
    """B, the number of rows in ``grads`` (dropped non-finite rows included). Private."""
    denominator: float
    """What the noisy sum was divided by (1 for ``reduction="sum"``)."""
    norms: np.ndarray
    """The per-example norms before clipping ((B,), or (B, L) for per-layer thresholds)."""
    nonfinite_rows: np.ndarray
    """Indices of rows dropped for NaN/inf (always empty unless ``nonfinite="zero"``)."""

    @property
    def accounting(self) -> dict[str, float]:
        """Keyword arguments for ``RDPAccountant.step`` / ``PRVAccountant.step``."""
        if self.sample_rate is None:
            raise ValueError(
                "sample_rate was not given to dp_aggregate: pass it to record the step"
            )
        return {"noise_multiplier": self.noise_multiplier, "sample_rate": self.sample_rate}


def dp_aggregate(
    grads: Grads,
    max_norm: float | Sequence[float],
    noise_multiplier: float,
    *,
    rng: RngLike = None,
    reduction: Literal["mean", "sum"] = "mean",
    expected_batch_size: int | None = None,
    sample_rate: float | None = None,
    nonfinite: NonFinite = "raise",
) -> DPAggregate:
    """The DP-SGD gradient: clip each example, sum, add Gaussian noise, scale.

    ``(Σ_i clip_C(g_i) + N(0, (σ C)² I)) / m`` where ``m`` is ``expected_batch_size``
    (Poisson sampling, as Opacus divides), else the batch size ``B``, or 1 with
    ``reduction="sum"``.

    Parameters
    ----------
    grads, max_norm, nonfinite
        As in :func:`clip_and_sum`. With per-layer thresholds ``C_l`` the sensitivity of
        the concatenated sum is ``sqrt(Σ C_l²)``, and that is what the noise is scaled by
        (as Opacus' per-layer optimizer does).
    noise_multiplier : float >= 0
        σ. Zero adds no noise (and gives no privacy).
    rng : None, int or Generator
        Noise source: ``None`` is the secure stream; an int seed is reproducible (tests
        only; warns once).
    reduction : {"mean", "sum"}
    expected_batch_size : int > 0, optional
        The divisor for ``"mean"``: under Poisson sampling pass the *expected* batch size
        ``q N``; dividing by the realised ``B`` would depend on the private batch.
        Without it ``"mean"`` divides by ``B`` (right for fixed-size batches).
    sample_rate : float in (0, 1], optional
        The sampling rate ``q``, carried into the result for the accountant.

    Returns
    -------
    DPAggregate
        ``gradient`` plus ``noise_multiplier``, ``sample_rate``, ``noise_std``, the norms
        and the dropped rows; ``accountant.step(**result.accounting)`` records the step.

    Notes
    -----
    The clipped sum is computed by the kernel of :func:`clip_and_sum`; the noise is
    drawn into the sum in one further pass over the output only (not over ``grads``),
    from a stream split into fixed blocks (the same result on any number of threads).
    An empty batch (B = 0, possible under Poisson sampling) gives pure noise.
    """
    zero_bad = _check_nonfinite(nonfinite)
    sigma = check_scalar(noise_multiplier, "noise_multiplier", NON_NEGATIVE)
    check_choice(reduction, "reduction", ("mean", "sum"))
    if expected_batch_size is not None:
        expected_batch_size = check_int(expected_batch_size, "expected_batch_size", minimum=1)
    q = None
    if sample_rate is not None:
        q = check_scalar(sample_rate, "sample_rate", RATE)
    batch = _Batch(grads)
    thresholds = _thresholds(max_norm, batch)
    if reduction == "sum":
        denominator = 1.0
    elif expected_batch_size is not None:
        denominator = float(expected_batch_size)
    elif batch.batch_size > 0:
        denominator = float(batch.batch_size)
    else:
        raise ValueError(
            "expected_batch_size must be given for reduction='mean' when the batch is empty"
        )
    sensitivity = math.hypot(*thresholds)  # no under/overflow of C² for extreme C
    std = sigma * sensitivity
    if not math.isfinite(std) or std > float(np.finfo(batch.dtype).max) / 1024.0:
        raise ValueError(
            f"noise_multiplier * max_norm = {std:g} is too large for {batch.dtype} output"
        )
    gen = resolve_for_dp(rng)
    sums, norms = _clip_sum(batch, thresholds, None, zero_bad)
    for s in sums:
        flat = s.reshape(-1)
        if flat.size and not (
            fill(GAUSSIAN, gen, std, flat, flat) if std > 0 else np.isfinite(flat).all()
        ):
            raise ValueError(f"the noisy sum overflowed {batch.dtype}: max_norm is too large")
        if denominator != 1.0:
            np.divide(flat, flat.dtype.type(denominator), out=flat)
    bad = np.flatnonzero(np.isnan(norms).any(axis=0))
    public_norms = _norms_result(norms, _per_layer(max_norm))
    return DPAggregate(
        gradient=batch.wrap(sums),
        noise_multiplier=sigma,
        sample_rate=q,
        max_norm=sensitivity,
        noise_std=std,
        batch_size=batch.batch_size,
        denominator=denominator,
        norms=public_norms,
        nonfinite_rows=bad,
    )


# ----------------------------------------------------------------------- adaptive


class AdaptiveClipping:
    """Quantile-based adaptive clipping norm (Andrew, Thakkar, McMahan & Ramaswamy 2021,
    "Differentially Private Learning with Adaptive Clipping").

    Each step clips at the current ``C``, privately estimates the fraction ``b`` of
    examples whose norm is at most ``C``, and moves ``C`` geometrically toward the target
    quantile ``γ``:

        b̃ = (Σ_i (1[||g_i|| <= C] - 1/2) + N(0, σ_b²)) / m + 1/2,
        C ← C · exp(-η (b̃ - γ)),

    with ``m`` the expected batch size. The centred count has sensitivity 1/2, so
    spending noise multiplier ``z`` in total means the gradient gets
    ``σ_Δ = (z⁻² - (2σ_b)⁻²)^(-1/2)`` (their Theorem 1): the pair of Gaussian queries is
    then exactly as private as one Gaussian mechanism with multiplier ``z``, which is
    what the accountant records.

    Parameters
    ----------
    initial_norm : float > 0
        The first ``C``.
    expected_batch_size : int > 0
        ``m`` (``q N`` under Poisson sampling).
    target_quantile : float in (0, 1)
        ``γ``: the fraction of examples to leave unclipped (0.5 is the paper's default).
    learning_rate : float > 0
        ``η`` (0.2 in the paper).
    count_noise_std : float > 0, optional
        ``σ_b``; default ``m / 20`` (the paper's recommendation).
    min_norm, max_norm : float, optional
        Bounds that ``C`` is kept within (default: none). Without ``min_norm``, ``C`` can
        shrink geometrically for as long as every gradient stays below it (e.g. zero
        gradients): set a floor for long runs.
    rng : None, int or Generator
        Stream for the count noise and the default for :meth:`aggregate`, resolved once:
        an int seed gives one reproducible stream across all steps.

    Notes
    -----
    Opacus' ``AdaptiveClipping`` adds noise to the uncentred count; this follows the
    paper's centred estimator, whose sensitivity the ``2σ_b`` in ``σ_Δ`` assumes.
    """

    def __init__(
        self,
        initial_norm: float,
        *,
        expected_batch_size: int,
        target_quantile: float = 0.5,
        learning_rate: float = 0.2,
        count_noise_std: float | None = None,
        min_norm: float | None = None,
        max_norm: float | None = None,
        rng: Any = None,
    ) -> None:
        self._norm = check_scalar(initial_norm, "initial_norm", POSITIVE)
        self.expected_batch_size = check_int(expected_batch_size, "expected_batch_size", 1)
        self.target_quantile = check_scalar(target_quantile, "target_quantile", OPEN_UNIT)
        self.learning_rate = check_scalar(learning_rate, "learning_rate", POSITIVE)
        if count_noise_std is None:
            count_noise_std = self.expected_batch_size / 20.0
        self.count_noise_std = check_scalar(count_noise_std, "count_noise_std", POSITIVE)
        self.min_norm = 0.0 if min_norm is None else check_scalar(min_norm, "min_norm", POSITIVE)
        self.max_norm = (
            math.inf if max_norm is None else check_scalar(max_norm, "max_norm", POSITIVE)
        )
        if self.min_norm > self.max_norm:
            raise ValueError(f"min_norm must be <= max_norm, got {self.min_norm} > {self.max_norm}")
        if not self.min_norm <= self._norm <= self.max_norm:
            raise ValueError(
                f"initial_norm must be in [min_norm, max_norm] = [{self.min_norm}, "
                f"{self.max_norm}], got {self._norm}"
            )
        # resolved once: an int seed must give one stream across steps, not the same
        # noise at every step
        self._gen = resolve_for_dp(rng)
        self.history: list[tuple[float, float]] = []  # (C used, estimated quantile b̃)

    @property
    def clip_norm(self) -> float:
        """The current clipping norm ``C``."""
        return self._norm

    def gradient_noise_multiplier(self, noise_multiplier: float) -> float:
        """``σ_Δ = (z⁻² - (2σ_b)⁻²)^(-1/2)``: the gradient's share of total multiplier ``z``.

        Raises ``ValueError`` when ``2σ_b <= z`` (the count would use the whole budget).
        """
        z = check_scalar(noise_multiplier, "noise_multiplier", POSITIVE)
        if z < 1e-150:  # z**-2 overflows; such a multiplier gives no privacy anyway
            raise ValueError(f"noise_multiplier must be >= 1e-150, got {z}")
        rest = z**-2 - (2.0 * self.count_noise_std) ** -2
        if rest <= 0:
            raise ValueError(
                f"noise_multiplier must be < 2 * count_noise_std = "
                f"{2 * self.count_noise_std:g} for the count's noise to fit, got {z}"
            )
        return float(rest**-0.5)

    def update(self, norms: npt.ArrayLike, *, rng: RngLike = None) -> float:
        """Update ``C`` from one batch's per-example norms (taken before clipping at the
        current ``C``); returns the new ``C``. NaN norms (dropped rows) count as clipped."""
        n = asarray(norms, "norms", np.float64).reshape(-1)
        unclipped = int(np.count_nonzero(n <= self._norm))
        gen = self._gen if rng is None else resolve_for_dp(rng)
        noise = float(gen.normal(0.0, self.count_noise_std))
        b = (unclipped - 0.5 * n.size + noise) / self.expected_batch_size + 0.5
        self.history.append((self._norm, b))
        new = self._norm * math.exp(-self.learning_rate * (b - self.target_quantile))
        self._norm = min(max(new, self.min_norm), self.max_norm)
        return self._norm

    def aggregate(
        self,
        grads: Grads,
        noise_multiplier: float,
        *,
        rng: RngLike = None,
        reduction: Literal["mean", "sum"] = "mean",
        sample_rate: float | None = None,
        nonfinite: NonFinite = "raise",
    ) -> DPAggregate:
        """One adaptive DP-SGD step: :func:`dp_aggregate` at the current ``C`` with the
        gradient's noise multiplier ``σ_Δ``, then :meth:`update` from the same norms.

        ``noise_multiplier`` is the total ``z``; the result reports ``z`` (what the
        accountant must record) and ``noise_std = σ_Δ C``. Flat clipping only.
        """
        z = check_scalar(noise_multiplier, "noise_multiplier", POSITIVE)
        sigma_grad = self.gradient_noise_multiplier(z)
        gen = self._gen if rng is None else resolve_for_dp(rng)
        res = dp_aggregate(
            grads,
            self._norm,
            sigma_grad,
            rng=gen,
            reduction=reduction,
            expected_batch_size=self.expected_batch_size,
            sample_rate=sample_rate,
            nonfinite=nonfinite,
        )
        self.update(res.norms, rng=gen)
        return res._replace(noise_multiplier=z)
