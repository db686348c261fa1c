"""Reference federated aggregators: plain numpy, following each definition literally.

The oracles for ``tests/test_aggregation_robust.py`` and the baselines of the
benchmarks. Inputs are an (n, D) array (lists are the caller's business: stack them);
results are in the input's dtype.

- :func:`fedavg` accumulates ``w_i * float64(x_i)`` client by client into a float64 sum
  and divides by the weights' running sum -- the additions the native kernel makes, so
  the two agree bit for bit; :func:`fedavg_numpy` is the one-line numpy version
  (``(w[:, None] * X).sum(0) / w.sum()``) that the benchmark times;
- :func:`coordinate_median` / :func:`trimmed_mean` sort each column (NaNs dropped with
  ``omit``) and take the definition, summing the kept values in sorted order;
- :func:`krum_scores` / :func:`krum` compute every pairwise distance from an explicit
  difference vector, pair by pair (the oracle); :func:`krum_scores_gram` /
  :func:`krum_gram` take them all from one Gram matrix ``X Xᵀ`` (one BLAS product, as
  numpy code would), the benchmark's baseline;
- :func:`fedprox_gradient`, :func:`dp_fedavg` -- the formulas, with numpy's PCG64 noise;
  :func:`dp_fedavg_numpy` is the tuned numpy form in the data's dtype (``einsum`` norms,
  one ``gemv``, no float64 copy) that the benchmark times.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def fedavg(x: np.ndarray, weights: Any = None) -> np.ndarray:
    """``Σ_i w_i x_i / Σ_i w_i``, float64 sum in client order (clients with weight 0
    skipped), rounded once to ``x``'s dtype."""
    x = np.asarray(x)
    w = np.ones(x.shape[0]) if weights is None else np.asarray(weights, dtype=np.float64)
    acc = np.zeros(x.shape[1:])
    total = 0.0
    for i in range(x.shape[0]):
        total += float(w[i])
        if w[i] != 0:
            acc = acc + w[i] * x[i].astype(np.float64)
    return (acc / total).astype(x.dtype)


def fedavg_numpy(x: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The obvious numpy FedAvg (materialises ``w_i x_i``)."""
    return ((weights[:, None] * x).sum(axis=0) / weights.sum()).astype(x.dtype)


def _median_sorted(v: np.ndarray) -> float:
    m = v.size
    h = m // 2
    if m % 2:
        return float(v[h])
    a, b = float(v[h - 1]), float(v[h])
    s = a + b
    if math.isinf(s) and math.isfinite(a) and math.isfinite(b):
        return a * 0.5 + b * 0.5
    return s / 2.0


def _mean_sorted(v: np.ndarray) -> float:
    """The float64 sum in order (``cumsum`` adds left to right) over the count."""
    with np.errstate(over="ignore", invalid="ignore"):
        s = float(np.cumsum(v)[-1])
    if math.isinf(s) and np.isfinite(v).all():
        return float(np.cumsum(v / v.size)[-1])
    return s / v.size


def _columns(x: np.ndarray, omit: bool) -> list[np.ndarray | None]:
    """Each column sorted in float64 (NaNs dropped with ``omit``; None if it has NaN
    and not ``omit``, or nothing is left)."""
    cols: list[np.ndarray | None] = []
    for j in range(x.shape[1]):
        c = x[:, j].astype(np.float64)
        nan = np.isnan(c)
        if nan.any() and not omit:
            cols.append(None)
            continue
        c = np.sort(c[~nan])
        cols.append(c if c.size else None)
    return cols


def coordinate_median(x: np.ndarray, *, omit: bool = False) -> np.ndarray:
    """Median of each column of the (n, D) ``x``; NaN where it is undefined."""
    x = np.asarray(x)
    res = [math.nan if c is None else _median_sorted(c) for c in _columns(x, omit)]
    return np.array(res, dtype=np.float64).astype(x.dtype)


def trimmed_mean(x: np.ndarray, trim: float | int, *, omit: bool = False) -> np.ndarray:
    """Mean of ``sorted(column)[k : m - k]`` per column, ``k = int(trim * m)`` for a
    float ``trim``, ``k = trim`` for an int; NaN where nothing is left."""
    x = np.asarray(x)
    res = []
    for c in _columns(x, omit):
        if c is None:
            res.append(math.nan)
            continue
        m = c.size
        k = trim if isinstance(trim, int) else int(trim * m)
        res.append(math.nan if m - 2 * k <= 0 else _mean_sorted(c[k : m - k]))
    return np.array(res, dtype=np.float64).astype(x.dtype)


def pairwise_sq_distances(x: np.ndarray) -> np.ndarray:
    """``||x_i - x_j||²`` for every pair, one explicit difference vector per pair, in
    ``x``'s dtype (pass float64 data for an accurate oracle)."""
    x = np.asarray(x)
    n = x.shape[0]
    d = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            diff = x[i] - x[j]
            d[i, j] = d[j, i] = float(np.dot(diff, diff))
    return d


def krum_scores(x: np.ndarray, f: int) -> np.ndarray:
    """Blanchard et al.'s score: the sum of the ``n - f - 2`` smallest squared distances
    from each client to the others."""
    d = pairwise_sq_distances(x)
    n = d.shape[0]
    scores = np.empty(n)
    for i in range(n):
        others = np.sort(np.delete(d[i], i))
        scores[i] = others[: n - f - 2].sum()
    return scores


def krum(x: np.ndarray, f: int, m: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean of the ``m`` best-scoring clients, their indices best first, the scores)."""
    x = np.asarray(x)
    scores = krum_scores(x, f)
    chosen = np.argsort(scores, kind="stable")[:m]
    return fedavg(x[np.sort(chosen)]), chosen, scores


def pairwise_sq_distances_gram(x: np.ndarray, *, centred: bool = True) -> np.ndarray:
    """``||x_i||² + ||x_j||² - 2 x_i·x_j`` for every pair from one Gram matrix ``X Xᵀ``.

    Parameters
    ----------
    x : numpy.ndarray
        The (n, D) updates.
    centred : bool, default True
        True: the Gram matrix of ``X - mean(X)`` in float64 (one float64 copy of the
        updates, centred on the column means, one BLAS ``dgemm``): the arithmetic of
        :func:`ppml_fast.aggregation.krum`, without its blocking, and as accurate
        (distances do not change under a translation; centring removes the cancellation
        of the three terms when the updates share a large common part). False: ``X Xᵀ``
        in ``x``'s own dtype (``sgemm`` for float32, no copy), the quickest numpy form and
        the least accurate.

    Returns
    -------
    numpy.ndarray
        (n, n) float64 squared distances, rounding residues below 0 clamped to 0, zero
        diagonal.
    """
    x = np.asarray(x)
    if centred:
        xd = x.astype(np.float64)
        xd -= xd.mean(axis=0)
        g = xd @ xd.T
    else:
        g = np.matmul(x, x.T).astype(np.float64)
    sq = np.diag(g).copy()
    d = sq[:, None] + sq[None, :] - 2.0 * g
    np.maximum(d, 0.0, out=d)
    np.fill_diagonal(d, 0.0)
    return d


def krum_scores_gram(x: np.ndarray, f: int, *, centred: bool = True) -> np.ndarray:
    """:func:`krum_scores` vectorised: distances by :func:`pairwise_sq_distances_gram`,
    each row's own zero dropped, the ``n - f - 2`` smallest of the rest summed."""
    d = pairwise_sq_distances_gram(x, centred=centred)
    n = d.shape[0]
    np.fill_diagonal(d, np.inf)
    return np.sort(d, axis=1)[:, : n - f - 2].sum(axis=1)


def krum_gram(
    x: np.ndarray, f: int, m: int = 1, *, centred: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`krum` in vectorised numpy (one Gram matrix, one sort of the distance
    matrix, the mean of the chosen rows in float64): (mean, indices best first, scores)."""
    x = np.asarray(x)
    scores = krum_scores_gram(x, f, centred=centred)
    chosen = np.argsort(scores, kind="stable")[:m]
    mean = x[np.sort(chosen)].mean(axis=0, dtype=np.float64).astype(x.dtype)
    return mean, chosen, scores


def fedprox_gradient(g: np.ndarray, w: np.ndarray, wg: np.ndarray, mu: float) -> np.ndarray:
    """``g + mu (w - wg)`` in float64, rounded to ``g``'s dtype."""
    f64 = np.float64
    return (g.astype(f64) + mu * (w.astype(f64) - wg.astype(f64))).astype(g.dtype)


def clip_rows(x: np.ndarray, c: float) -> np.ndarray:
    """Each row scaled to L2 norm at most ``c`` (float64)."""
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1)
    scale = np.where(norms > c, c / np.where(norms > 0, norms, 1.0), 1.0)
    return x * scale[:, None]


def dp_fedavg(
    x: np.ndarray,
    clip_norm: float,
    noise_multiplier: float,
    rng: np.random.Generator,
    *,
    weights: Any = None,
    denominator: float | None = None,
) -> np.ndarray:
    """``(Σ_i w_i clip(x_i) + N(0, (σ C)² I)) / m`` with numpy's Gaussian noise."""
    x = np.asarray(x)
    w = np.ones(x.shape[0]) if weights is None else np.asarray(weights, dtype=np.float64)
    total = (w[:, None] * clip_rows(x.reshape(x.shape[0], -1), clip_norm)).sum(axis=0)
    total += rng.normal(0.0, noise_multiplier * clip_norm, size=total.shape)
    m = float(w.sum()) if denominator is None else denominator
    return (total / m).reshape(x.shape[1:]).astype(x.dtype)


def dp_fedavg_numpy(
    x: np.ndarray,
    clip_norm: float,
    noise_multiplier: float,
    rng: np.random.Generator,
    *,
    weights: Any = None,
    denominator: float | None = None,
) -> np.ndarray:
    """:func:`dp_fedavg` as tuned numpy writes it, in the data's dtype throughout.

    Row norms by one ``einsum`` (no squared copy), the scales ``w_i min(1, C/||x_i||)``
    as a vector of the data's dtype, the weighted sum of the clipped rows as one
    matrix-vector product (BLAS ``gemv``: no clipped copy), noise drawn in the data's
    dtype (``standard_normal(dtype=float32)`` for float32) and added in place, then the
    division in place: no float64 copy of the updates. The benchmarks' baseline.
    """
    x = np.asarray(x)
    dt = x.dtype
    flat = x.reshape(x.shape[0], -1)
    w = np.ones(x.shape[0]) if weights is None else np.asarray(weights, dtype=np.float64)
    norms = np.sqrt(np.einsum("ij,ij->i", flat, flat).astype(np.float64))
    scale = (w * np.minimum(1.0, clip_norm / np.maximum(norms, 1e-300))).astype(dt)
    total = scale @ flat
    total += rng.standard_normal(total.shape, dtype=dt) * dt.type(noise_multiplier * clip_norm)
    m = float(w.sum()) if denominator is None else denominator
    total /= dt.type(m)
    return total.reshape(x.shape[1:])
