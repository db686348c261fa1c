"""Leakage measures (placeholder numpy version; the full one replaces it)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .nopeek import distance_correlation

__all__ = ["activation_leakage", "norm_leakage_auc"]


def norm_leakage_auc(gradients: Any, labels: Any) -> float:
    """AUC of the gradient-norm attack: how well ||g_i|| separates label 1 from label 0."""
    g = np.asarray(gradients)
    s = np.linalg.norm(g.reshape(g.shape[0], -1), axis=1)
    y = np.asarray(labels) == 1
    pos, neg = s[y], s[~y]
    if pos.size == 0 or neg.size == 0:
        return 0.5
    gt = (pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean()
    return float(gt)


def activation_leakage(inputs: Any, activations: Any) -> float:
    """Distance correlation between the raw inputs and the activations sent."""
    return distance_correlation(inputs, activations)
