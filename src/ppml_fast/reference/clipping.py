"""Reference per-sample clipping: a plain loop over examples, and the numpy pipelines
the benchmarks compare against.

The oracle (:func:`clip_per_sample`, :func:`clip_and_sum`, :func:`per_sample_norms`)
follows the definition literally: for each example, its norm over all layers (or per
layer), the scale ``min(1, C / norm)`` in float64 (1 for a zero row), rounded once to the
data's dtype, the product, and a running sum over examples in the data's dtype. Norms are
``sqrt(sum(x**2))`` in float64 with numpy's summation order, so they can differ from the
kernel's chunked order in the last bits.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def _layers(grads: Any) -> tuple[list[np.ndarray], bool]:
    if isinstance(grads, (list, tuple)):
        return [np.asarray(g) for g in grads], True
    return [np.asarray(grads)], False


def _groups(n_layers: int, max_norm: Any) -> list[tuple[list[int], float]]:
    if isinstance(max_norm, (list, tuple, np.ndarray)):
        return [([i], float(c)) for i, c in enumerate(max_norm)]
    return [(list(range(n_layers)), float(max_norm))]


def _row_norm(layers: list[np.ndarray], idx: list[int], i: int) -> float:
    """max|x| * sqrt(sum((x / max|x|)²)) in float64: no overflow or underflow of squares
    (the plain sum where it is safe, so that ordinary rows keep numpy's rounding)."""
    rows = [layers[j][i].astype(np.float64).reshape(-1) for j in idx]
    if any(not np.isfinite(r).all() for r in rows):
        return math.nan
    m = max((float(np.max(np.abs(r))) for r in rows if r.size), default=0.0)
    if m == 0.0:
        return 0.0
    if 1e-140 < m < 1e140:
        return math.sqrt(sum(float(np.sum(r * r)) for r in rows))
    return m * math.sqrt(sum(float(np.sum((r / m) ** 2)) for r in rows))


def _scale(norm: float, c: float) -> float:
    if math.isnan(norm):
        return math.nan
    return c / norm if norm > c else 1.0


def _times(row: np.ndarray, s: float) -> np.ndarray:
    """``row * s`` in the row's dtype: the scale rounded to the dtype, except a scale below
    the dtype's smallest normal number, where the product is formed exactly (via Python
    floats' exact rationals) and rounded once."""
    dt = row.dtype
    if s == 0.0 or s >= float(np.finfo(dt).tiny):
        return row * dt.type(s)
    from fractions import Fraction

    exact = [Fraction(float(v)) * Fraction(s) for v in row.reshape(-1)]
    return np.array([float(v) for v in exact], dtype=np.float64).astype(dt).reshape(row.shape)


def per_sample_norms(grads: Any, *, per_layer: bool = False) -> np.ndarray:
    """(B,) norms over all layers, or (B, L) per layer, in float64."""
    layers, _ = _layers(grads)
    b = layers[0].shape[0]
    groups = [[j] for j in range(len(layers))] if per_layer else [list(range(len(layers)))]
    out = np.empty((b, len(groups)))
    for i in range(b):
        for g, idx in enumerate(groups):
            out[i, g] = _row_norm(layers, idx, i)
    return out if per_layer else out[:, 0]


def clip_per_sample(grads: Any, max_norm: Any) -> Any:
    """Each row times ``min(1, C / ||row||)`` (float64 scale rounded to the dtype)."""
    layers, is_list = _layers(grads)
    out = [np.empty_like(a) for a in layers]
    for idx, c in _groups(len(layers), max_norm):
        for i in range(layers[0].shape[0]):
            s = _scale(_row_norm(layers, idx, i), c)
            for j in idx:
                out[j][i] = _times(layers[j][i], s)
    return out if is_list else out[0]


def clip_and_sum(grads: Any, max_norm: Any) -> Any:
    """Running sum over examples of the clipped rows, in the data's dtype, in row order."""
    layers, is_list = _layers(grads)
    sums = [np.zeros(a.shape[1:], dtype=a.dtype) for a in layers]
    for idx, c in _groups(len(layers), max_norm):
        for i in range(layers[0].shape[0]):
            s = _scale(_row_norm(layers, idx, i), c)
            for j in idx:
                sums[j] = sums[j] + _times(layers[j][i], s)
    return sums if is_list else sums[0]


def dp_aggregate(
    grads: Any,
    max_norm: Any,
    noise_multiplier: float,
    *,
    rng: Any = None,
    denominator: float = 1.0,
) -> Any:
    """``(clip_and_sum + N(0, (σ·sqrt(Σ C²))²)) / denominator`` with numpy's normal."""
    gen = np.random.default_rng(rng)
    cs = [max_norm] if not isinstance(max_norm, (list, tuple, np.ndarray)) else list(max_norm)
    std = noise_multiplier * math.hypot(*(float(c) for c in cs))
    sums = clip_and_sum(grads, max_norm)
    items = sums if isinstance(sums, list) else [sums]
    out = [((s + gen.normal(0.0, std, s.shape)) / denominator).astype(s.dtype) for s in items]
    return out if isinstance(sums, list) else out[0]


# ------------------------------------------------------------------ benchmark baselines


def numpy_pipeline(
    g: np.ndarray,
    max_norm: float,
    noise_multiplier: float,
    gen: np.random.Generator,
    denominator: float,
) -> np.ndarray:
    """The plain numpy DP-SGD step: norms → scales → clipped matrix → sum → noise → mean."""
    flat = g.reshape(g.shape[0], -1)
    norms = np.linalg.norm(flat, axis=1)
    scale = np.minimum(1.0, max_norm / np.maximum(norms, 1e-300))
    clipped = flat * scale[:, None].astype(g.dtype)
    total = clipped.sum(axis=0)
    total += gen.normal(0.0, noise_multiplier * max_norm, total.shape).astype(g.dtype)
    return (total / denominator).reshape(g.shape[1:])


def numpy_plain_sum(g: np.ndarray, max_norm: float) -> np.ndarray:
    """The plain numpy clip-and-sum: norms → scales → clipped matrix → sum over rows."""
    flat = g.reshape(g.shape[0], -1)
    norms = np.linalg.norm(flat, axis=1)
    scale = np.minimum(1.0, max_norm / np.maximum(norms, 1e-300)).astype(g.dtype)
    return (flat * scale[:, None]).sum(axis=0).reshape(g.shape[1:])


def numpy_tuned_sum(g: np.ndarray, max_norm: float) -> np.ndarray:
    """A hand-tuned numpy clip-and-sum without temporaries of the data's size: norms by
    ``einsum`` (no squared copy), then one matrix-vector product (BLAS sgemv/dgemv)."""
    flat = g.reshape(g.shape[0], -1)
    sq = np.einsum("ij,ij->i", flat, flat)
    norms = np.sqrt(sq.astype(np.float64))
    scale = np.minimum(1.0, max_norm / np.maximum(norms, 1e-300)).astype(g.dtype)
    return (scale @ flat).reshape(g.shape[1:])


def numpy_clip_and_sum_layers(grads: Any, max_norm: Any) -> Any:
    """The vectorised numpy clip-and-sum of a batch held as layers, flat or per layer.

    Each layer's per-example squared norms by one ``einsum`` over its flattened rows (no
    squared copy); the rows' norms over a group of layers (all of them for a scalar
    ``max_norm``, each layer alone for a sequence) as the root of their sum; the scales
    ``min(1, C / norm)`` in the data's dtype; each layer's clipped sum as one
    vector-matrix product ``scale @ layer`` (BLAS ``gemv``). No Python loop over
    examples: the benchmarks' baseline for a list of layers.

    Parameters
    ----------
    grads : numpy.ndarray or sequence of numpy.ndarray
        One (B, ...) array or a list of layers, each (B, ...).
    max_norm : float or sequence of float
        One threshold over all layers together, or one per layer.

    Returns
    -------
    numpy.ndarray or list of numpy.ndarray
        The sums, shaped like one example (a list for a list of layers).
    """
    layers, is_list = _layers(grads)
    flats = [a.reshape(a.shape[0], -1) for a in layers]
    sq = [np.einsum("ij,ij->i", f, f).astype(np.float64) for f in flats]
    sums: list[np.ndarray] = [np.empty(0)] * len(layers)
    for idx, c in _groups(len(layers), max_norm):
        norms = np.sqrt(np.sum([sq[j] for j in idx], axis=0))
        scale = np.minimum(1.0, c / np.maximum(norms, 1e-300))
        for j in idx:
            sums[j] = (scale.astype(flats[j].dtype) @ flats[j]).reshape(layers[j].shape[1:])
    return sums if is_list else sums[0]


def numpy_clip_inplace(g: np.ndarray, max_norm: float) -> np.ndarray:
    """The numpy way to clip in place: ``np.linalg.norm`` over rows, then ``*=``."""
    flat = g.reshape(g.shape[0], -1)
    norms = np.linalg.norm(flat, axis=1)
    scale = np.minimum(1.0, max_norm / np.maximum(norms, 1e-300))
    flat *= scale[:, None].astype(g.dtype)
    return g
