"""Pure-numpy oracles of :mod:`ppml_fast.split`."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__: list[str] = []

# ------------------------------------------------------------- distance correlation
# The numpy version of ppml_fast.split.nopeek (the benchmarks' baseline: Gram matrices
# through BLAS, as a competent numpy user would write it, with the accuracy fixes the
# native kernel has) and a direct long-double oracle for the tests.

__all__ += [
    "dcor_direct",
    "distance_correlation",
    "distance_correlation_gradient",
    "distance_correlation_sqr",
    "nopeek_loss",
]


def _dcor_rows(v: np.ndarray) -> np.ndarray:
    """(B, ...) as (B, d) float64 rows."""
    a = np.asarray(v)
    return a.reshape(a.shape[0], -1).astype(np.float64, copy=False)


def _distances(v: np.ndarray) -> np.ndarray:
    """Pairwise Euclidean distances of the rows of ``v`` (B, d) through ``v vᵀ``.

    The rows are centred first (distances do not change; the Gram products cancel less),
    the norms come from the Gram matrix's own diagonal (so the diagonal is exactly 0), and
    pairs whose squared distance is below 1/64 of ``|v_i|² + |v_j|²`` are recomputed from
    their differences.
    """
    c = v - v.mean(axis=0)
    d = c @ c.T
    sq = d.diagonal().copy()
    tot = sq[:, None] + sq[None, :]
    d *= -2.0
    d += tot
    close = np.argwhere(np.triu(d < tot / 64.0, 1))
    if len(close):
        diff = v[close[:, 0]] - v[close[:, 1]]  # exact for close rows (Sterbenz)
        d2 = np.einsum("ij,ij->i", diff, diff)
        d[close[:, 0], close[:, 1]] = d2
        d[close[:, 1], close[:, 0]] = d2
    np.fill_diagonal(d, 0.0)
    np.maximum(d, 0.0, out=d)
    return np.sqrt(d, out=d)


def _centre(a: np.ndarray) -> np.ndarray:
    """The double-centred matrix of the distances ``a`` (in place)."""
    r = a.mean(axis=1)
    a -= r[:, None]
    a -= r[None, :]
    a += r.mean()
    return a


_Parts = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float, float, float]


def _dcor_parts(x: Any, z: Any) -> _Parts:
    """(z rows, A, b, B, dCov², dVar²(x), dVar²(z)): A and B double-centred, b the raw
    distances of z."""
    zr = _dcor_rows(z)
    a = _centre(_distances(_dcor_rows(x)))
    b = _distances(zr)
    bc = _centre(b.copy())
    n2 = float(a.shape[0]) ** 2
    vxz = float(np.einsum("ij,ij->", a, bc)) / n2
    vx = float(np.einsum("ij,ij->", a, a)) / n2
    vz = float(np.einsum("ij,ij->", bc, bc)) / n2
    return zr, a, b, bc, vxz, vx, vz


def distance_correlation_sqr(x: Any, z: Any) -> float:
    """dCor² of the rows of ``x`` and ``z`` (0 when a distance variance is 0)."""
    vxz, vx, vz = _dcor_parts(x, z)[4:]
    den = np.sqrt(vx * vz)
    return max(vxz / den, 0.0) if den > 0 else 0.0


def distance_correlation(x: Any, z: Any) -> float:
    """The (biased, V-statistic) distance correlation of the rows of ``x`` and ``z``."""
    return float(np.sqrt(distance_correlation_sqr(x, z)))


def distance_correlation_gradient(x: Any, z: Any) -> tuple[float, np.ndarray]:
    """dCor(x, z) and its gradient with respect to ``z`` (0 where dCor is 0)."""
    zr, a, b, bc, vxz, vx, vz = _dcor_parts(x, z)
    shape, dtype = np.shape(z), np.asarray(z).dtype
    den = np.sqrt(vx * vz)
    r = max(vxz / den, 0.0) if den > 0 else 0.0
    dcor = float(np.sqrt(r))
    if dcor == 0.0:
        return 0.0, np.zeros(shape, dtype=dtype)
    n2 = float(a.shape[0]) ** 2
    a *= 1.0 / (den * n2 * 2.0 * dcor)
    a -= bc * (r / (vz * n2 * 2.0 * dcor))
    np.divide(a, b, out=a, where=b > 0)
    a[b <= 0] = 0.0
    # 2 Σ_j M_ij (z_i - z_j) as -2 M' z with M'_ii = -Σ_j M_ij, except for close pairs,
    # whose large M_ij would cancel most digits in the product: by differences
    zc = zr - zr.mean(axis=0)
    sq = np.einsum("ij,ij->i", zc, zc)
    close = b * b < (sq[:, None] + sq[None, :]) / 64.0
    np.fill_diagonal(close, False)
    pairs = np.argwhere(close)
    m_close = a[close]
    a[close] = 0.0
    a[np.diag_indices_from(a)] = -a.sum(axis=1)
    grad = (a @ zc) * -2.0
    if len(pairs):
        contrib = 2.0 * m_close[:, None] * (zr[pairs[:, 0]] - zr[pairs[:, 1]])
        np.add.at(grad, pairs[:, 0], contrib)
    return dcor, grad.reshape(shape).astype(dtype, copy=False)


def nopeek_loss(x: Any, z: Any, weight: float) -> tuple[float, np.ndarray]:
    """``weight · dCor(x, z)`` and its gradient with respect to ``z``."""
    value, grad = distance_correlation_gradient(x, z)
    grad *= grad.dtype.type(weight)
    return weight * value, grad


def dcor_direct(x: Any, z: Any) -> tuple[float, float, float]:
    """(dCov², dVar²(x), dVar²(z)) from distances by differences, in long double: the
    slow oracle for small batches (it holds a (B, B, d) array)."""

    def dist(v: Any) -> np.ndarray:
        r = np.asarray(v).reshape(np.shape(v)[0], -1).astype(np.longdouble)
        diff = r[:, None, :] - r[None, :, :]
        return np.sqrt(np.einsum("ijk,ijk->ij", diff, diff))

    def centre(d: np.ndarray) -> np.ndarray:
        return d - d.mean(axis=0)[None, :] - d.mean(axis=1)[:, None] + d.mean()

    a, b = centre(dist(x)), centre(dist(z))
    return float((a * b).mean()), float((a * a).mean()), float((b * b).mean())


# ------------------------------------------------------------------------ defences


def clip_examples(x: np.ndarray, max_norm: float, mode: str = "flat") -> np.ndarray:
    """Each example of ``x`` (B, ...) clipped to L2 norm ``max_norm``: as a whole
    (``"flat"``), or each of its rows along axis 1 to ``max_norm/sqrt(R)``
    (``"per_row"``, 3-d and up). Norms in float64, the scale rounded once to the dtype;
    rows within the bound are returned unchanged."""
    x = np.asarray(x)
    r = x.shape[1] if (mode == "per_row" and x.ndim >= 3 and x.shape[1] > 0) else 1
    c = max_norm / np.sqrt(r) if r > 1 else max_norm
    rows = x.reshape(x.shape[0] * r, -1) if x.size else x.reshape(x.shape[0] * r, 0)
    out = rows.copy()
    for i, row in enumerate(rows):
        norm = float(np.sqrt(np.sum(row.astype(np.float64) ** 2)))
        if norm > c:
            out[i] = row * x.dtype.type(c / norm)
    return out.reshape(x.shape)


def rr_with_prior_probabilities(
    labels: np.ndarray, epsilon: float, n_classes: int, prior: np.ndarray | None = None
) -> np.ndarray:
    """RRWithPrior's output distribution (Ghazi et al. 2021, Algorithm 2), one example at
    a time: rows of shape labels.shape + (n_classes,)."""
    y = np.asarray(labels).reshape(-1)
    p = np.full(n_classes, 1.0) if prior is None else np.asarray(prior, dtype=np.float64)
    e = np.exp(epsilon)
    result = np.zeros((y.size, n_classes))
    for i, label in enumerate(y):
        row = p if p.ndim == 1 else p[i]
        row = row / row.sum()
        ranked = sorted(range(n_classes), key=lambda j: (-row[j], j))
        best_k, best = 1, -1.0
        for k in range(1, n_classes + 1):
            value = e / (e + k - 1) * sum(row[j] for j in ranked[:k])
            if value > best:
                best_k, best = k, value
        top = ranked[:best_k]
        if label in top:
            for j in top:
                result[i, j] = e / (e + best_k - 1) if j == label else 1 / (e + best_k - 1)
        else:
            for j in top:
                result[i, j] = 1 / best_k
    return result.reshape(*np.shape(labels), n_classes)


# ------------------------------------------------------------------------- leakage


def roc_auc_pairwise(scores: np.ndarray, labels: np.ndarray, positive: object = 1) -> float:
    """The AUC by its definition: over every (positive, negative) pair, 1 when the
    positive scores higher, 1/2 on a tie, averaged. O(B²)."""
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    y = np.asarray(labels).reshape(-1) == positive
    pos, neg = s[y], s[~y]
    wins = 0.0
    for a in pos:
        wins += float(np.sum(a > neg)) + 0.5 * float(np.sum(a == neg))
    return wins / (pos.size * neg.size)
