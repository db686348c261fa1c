"""Leakage measures of split learning: what each message gives away, as a number.

- :func:`norm_leakage_auc` -- the norm-based label-leakage attack (Li, Sun, Wang, Tang,
  Yin, Cheng & Wang 2022, "Label Leakage and Protection in Two-party Split Learning"):
  in a binary task whose positives are rare, the cut-layer gradient an example's
  owner receives back is larger for positives than for negatives, so its norm alone
  tells the labels apart. The function returns the attack's ROC AUC: 0.5 is no
  leakage, 1.0 is every label recovered;
- :func:`norm_attack_scores` and :func:`roc_auc` -- its two halves, the per-example
  scores and the AUC of any scores;
- :func:`activation_leakage` -- the distance correlation between the raw inputs and the
  activations sent (the quantity NoPeek penalises): 0 for independent, 1 for
  activations that are a similarity transform of the inputs.

Inputs are numpy arrays or anything ``np.asarray`` views without a copy (torch CPU
tensors).
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from scipy import stats

from .._validation import asarray
from ..clipping import per_sample_norms
from ._dcor import named_distance_correlation

__all__ = ["activation_leakage", "norm_attack_scores", "norm_leakage_auc", "roc_auc"]


def norm_attack_scores(gradients: Any) -> np.ndarray:
    """The norm attack's score of each example: ``||g_i||₂`` of its cut-layer gradient.

    Parameters
    ----------
    gradients : array of shape (B, ...)
        The gradients received for a batch, one example per row of the first axis
        (float32 or float64; torch CPU tensors are read without a copy).

    Returns
    -------
    ndarray of shape (B,), float64

    Raises
    ------
    ValueError
        A row holding NaN or inf (it has no norm).
    """
    norms = per_sample_norms(_float_rows(gradients, "gradients"))
    if norms.size and np.isnan(norms).any():
        row = int(np.flatnonzero(np.isnan(norms))[0])
        raise ValueError(f"gradients must contain only finite values: row {row} holds NaN or inf")
    return norms


def _float_rows(x: Any, name: str) -> np.ndarray:
    """``x`` as a float32/float64 array of at least one dimension, named in errors."""
    a = asarray(x, name)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a real numeric array, got dtype {a.dtype}")
    if a.dtype not in (np.float32, np.float64):
        a = a.astype(np.float64)
    if a.ndim < 1:
        raise ValueError(f"{name} must have at least 1 dimension (B, ...), got a scalar")
    return a


def _check_positive(positive: Any) -> Any:
    """``positive`` as one real label value (a Python or numpy scalar, or a 0-d array).

    A sequence or an array would be broadcast against the labels and compare element by
    element; a string, complex number or other object equals no numeric label.
    """
    if isinstance(positive, np.ndarray):
        if positive.ndim != 0:
            raise TypeError(
                f"positive must be one label value (a scalar), got an array of shape "
                f"{positive.shape}"
            )
        positive = positive[()]
    if not isinstance(positive, (bool, np.bool_, numbers.Real)):
        raise TypeError(
            f"positive must be one real label value (a scalar), got {type(positive).__name__}"
        )
    return positive


def roc_auc(scores: Any, labels: Any, *, positive: Any = 1) -> float:
    """The ROC AUC of ``scores`` for telling ``labels == positive`` from the other label.

    ``AUC = P[s⁺ > s⁻] + ½ P[s⁺ = s⁻]`` for a random positive and a random negative:
    the Mann–Whitney U statistic over ``n⁺ n⁻``, computed from the average ranks of the
    scores (ties get their mean rank) in O(B log B).

    Parameters
    ----------
    scores : array of shape (B,)
        Real, finite; higher means "more likely positive".
    labels : array of shape (B,) or (B, 1)
        Binary: at most two distinct values, ``positive`` one of them and both present.
    positive : scalar
        The label value of the positive class (a real number, numpy scalar or 0-d array).

    Returns
    -------
    float in [0, 1]

    Raises
    ------
    TypeError
        Non-numeric scores or labels, or a ``positive`` that is not one real value.
    ValueError
        Shapes that differ, non-finite scores, more than two label values, or a class
        that is absent (the AUC is undefined without both).
    """
    positive = _check_positive(positive)
    s = _float_rows(scores, "scores")
    if s.ndim != 1:
        raise ValueError(f"scores must be 1-d (B,), got shape {s.shape}")
    if s.size and not np.isfinite(s).all():
        raise ValueError("scores must contain only finite values (found NaN or inf)")
    y = asarray(labels, "labels")
    if y.dtype.kind not in "biuf":
        raise TypeError(f"labels must be a real numeric array, got dtype {y.dtype}")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.shape != s.shape:
        raise ValueError(
            f"labels must have shape ({s.shape[0]},) or ({s.shape[0]}, 1) like scores, "
            f"got {np.shape(labels)}"
        )
    values = np.unique(y)
    if values.size > 2:
        raise ValueError(f"labels must be binary, got {values.size} distinct values")
    pos = y == positive
    n_pos = int(np.count_nonzero(pos))
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        absent = f"positive={positive!r}" if n_pos == 0 else "the negative class"
        raise ValueError(f"labels must hold both classes for an AUC, but no example is of {absent}")
    ranks = stats.rankdata(s)  # average ranks, 1-based
    u = float(np.sum(ranks[pos], dtype=np.float64)) - n_pos * (n_pos + 1) / 2.0
    return u / (float(n_pos) * float(n_neg))


def norm_leakage_auc(gradients: Any, labels: Any, *, positive: Any = 1) -> float:
    """AUC of the norm-based label-leakage attack on the cut-layer gradients.

    Each example is scored by ``||g_i||₂``, the norm of the gradient of the loss with
    respect to its cut-layer activations (what the non-label party receives back), and
    the score's ROC AUC against the true labels is returned (Li et al. 2022, Section 4).

    Parameters
    ----------
    gradients : array of shape (B, ...)
        The cut-layer gradients received for a batch (or a whole epoch stacked).
    labels : array of shape (B,) or (B, 1)
        The true binary labels of the same examples.
    positive : scalar
        The label value of the positive (usually the rare) class.

    Returns
    -------
    float
        The AUC. 0.5: the norms say nothing about the labels; near 1: positives get the
        larger gradients (the unbalanced, undefended case); near 0: the reverse, which
        leaks as much (an attacker flips the score). Report ``max(auc, 1 - auc)`` for
        the leakage regardless of direction.

    Notes
    -----
    Why it works: for a logistic top layer ``∂L_i/∂z_i = (p_i - y_i) w``; a model
    trained on rare positives predicts small ``p_i`` for most examples, so
    ``|p_i - y_i|`` -- and the norm -- is large for positives and small for negatives.
    Defences are compared by this number: gradient perturbation
    (:func:`ppml_fast.split.defences.perturb_gradients`) and label DP
    (:func:`ppml_fast.split.defences.rr_with_prior`) drive it toward 0.5.

    Raises
    ------
    TypeError, ValueError
        As :func:`roc_auc` and :func:`norm_attack_scores` (one class absent, NaN/inf), or
        a number of gradient rows that differs from the number of labels.
    """
    positive = _check_positive(positive)
    scores = norm_attack_scores(gradients)
    y = asarray(labels, "labels")
    if y.ndim >= 1 and y.shape[0] != scores.shape[0]:
        raise ValueError(
            f"gradients and labels must hold the same number of examples, got "
            f"{scores.shape[0]} gradient rows and {y.shape[0]} labels"
        )
    return roc_auc(scores, y, positive=positive)


def activation_leakage(inputs: Any, activations: Any) -> float:
    """The distance correlation between the raw inputs and the activations sent.

    ``dCor(X, Z)`` of the rows of ``inputs`` (B, ...) and ``activations`` (B, ...), in
    [0, 1]: 0 when (in the population) they are independent, 1 when the activations are
    a rotation, scaling and shift of the inputs. Computed by
    :func:`ppml_fast.split.nopeek.distance_correlation`, whose validation applies.
    """
    return named_distance_correlation(inputs, activations, ("inputs", "activations"))
