"""Pure-numpy oracles of :mod:`ppml_fast.split`."""

from __future__ import annotations

import numpy as np

__all__: list[str] = []

# ------------------------------------------------------------- distance correlation


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
