"""Defences on the cut layer (placeholder numpy version; the full one replaces it)."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .. import rng as _rng

__all__ = ["CutLayerDP", "cut_layer_dp", "perturb_gradients", "rr_with_prior"]


class CutLayerDP(NamedTuple):
    """The noisy array and what the accountant needs."""

    values: np.ndarray
    noise_multiplier: float
    sample_rate: float | None
    max_norm: float
    noise_std: float
    norms: np.ndarray

    @property
    def accounting(self) -> dict[str, float]:
        """Keyword arguments of ``RDPAccountant.step``."""
        q = 1.0 if self.sample_rate is None else self.sample_rate
        return {"noise_multiplier": self.noise_multiplier, "sample_rate": q}


def cut_layer_dp(
    activations: Any,
    max_norm: float,
    noise_multiplier: float,
    *,
    mode: str = "flat",
    sample_rate: float | None = None,
    rng: Any = None,
    out: Any = None,
) -> CutLayerDP:
    """Clip each example's activations to norm ``max_norm`` and add N(0, (σC)²)."""
    a = np.asarray(activations)
    rows = a.reshape(a.shape[0], -1)
    norms = np.linalg.norm(rows, axis=1)
    scale = np.minimum(1.0, max_norm / np.maximum(norms, 1e-300))
    gen = _rng.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
    std = noise_multiplier * max_norm
    res = (rows * scale[:, None] + std * gen.standard_normal(rows.shape)).astype(a.dtype)
    return CutLayerDP(res.reshape(a.shape), noise_multiplier, sample_rate, max_norm, std, norms)


def perturb_gradients(
    gradients: Any,
    max_norm: float,
    noise_multiplier: float,
    *,
    sample_rate: float | None = None,
    rng: Any = None,
    out: Any = None,
) -> CutLayerDP:
    """The label holder's protection: clip each example's cut-layer gradient, add noise."""
    return cut_layer_dp(gradients, max_norm, noise_multiplier, sample_rate=sample_rate, rng=rng)


def rr_with_prior(
    labels: Any, epsilon: float, *, n_classes: int, prior: Any = None, rng: Any = None
) -> np.ndarray:
    """ε-label-DP randomized response (with a prior: RRWithPrior)."""
    y = np.asarray(labels)
    gen = _rng.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
    keep = gen.random(y.shape) < np.exp(epsilon) / (np.exp(epsilon) + n_classes - 1)
    other = (y + gen.integers(1, n_classes, size=y.shape)) % n_classes
    return np.where(keep, y, other).astype(y.dtype)
