"""Split learning with measured privacy.

A model is cut between parties: clients hold the bottom layers and send the cut-layer
activations ("smashed data") forward; the party that holds the next layers returns the
gradients of the loss with respect to those activations. This package gives the
configurations and the privacy defences of split learning, and measures how much each
defence protects.

Parts
-----
- :mod:`.nopeek` -- distance correlation between raw inputs and activations (its value
  and its gradient with respect to the activations), the NoPeek penalty
  (Vepakomma et al. 2020);
- :mod:`.defences` -- DP on the cut layer (per-example clipping of activations plus
  Gaussian noise, one accountant event per step), Gaussian perturbation of the gradients
  the label holder returns, and label DP by randomized response with a prior
  (Ghazi et al. 2021);
- :mod:`.leakage` -- the leakage measures: the norm-based label-leakage attack
  (Li et al. 2022) as an AUC, and the distance correlation of activations;
- :mod:`.models` -- numpy multilayer models cut at a chosen layer;
- :mod:`.protocols` -- horizontal SplitNN (label-sharing and U-shaped), SplitFed
  (Thapa et al. 2022) and vertical split learning.
"""

from __future__ import annotations

from .defences import (
    CutLayerDP,
    cut_layer_dp,
    perturb_gradients,
    rr_with_prior,
    rr_with_prior_probabilities,
)
from .leakage import activation_leakage, norm_attack_scores, norm_leakage_auc, roc_auc
from .models import LayeredModel, Segment, SplitModel
from .nopeek import (
    distance_correlation,
    distance_correlation_gradient,
    distance_correlation_sqr,
    nopeek_loss,
)
from .protocols import (
    ClientRound,
    Defences,
    SplitFed,
    SplitNN,
    SplitParams,
    VerticalParams,
    VerticalRound,
    VerticalSplitNN,
)

__all__ = [
    "ClientRound",
    "CutLayerDP",
    "Defences",
    "LayeredModel",
    "Segment",
    "SplitFed",
    "SplitModel",
    "SplitNN",
    "SplitParams",
    "VerticalParams",
    "VerticalRound",
    "VerticalSplitNN",
    "activation_leakage",
    "cut_layer_dp",
    "distance_correlation",
    "distance_correlation_gradient",
    "distance_correlation_sqr",
    "nopeek_loss",
    "norm_attack_scores",
    "norm_leakage_auc",
    "perturb_gradients",
    "roc_auc",
    "rr_with_prior",
    "rr_with_prior_probabilities",
]
