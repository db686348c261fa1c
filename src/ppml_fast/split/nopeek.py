"""Distance correlation and the NoPeek penalty (placeholder numpy version; the native
kernel replaces it)."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["distance_correlation", "distance_correlation_gradient"]


def _centred(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    sq = np.einsum("ij,ij->i", v, v)
    g = v @ v.T
    d = sq[:, None] + sq[None, :] - 2.0 * g
    np.fill_diagonal(d, 0.0)
    np.sqrt(np.maximum(d, 0.0, out=d), out=d)
    r = d.mean(axis=1)
    return d, d - r[:, None] - r[None, :] + r.mean()


def distance_correlation(x: Any, z: Any) -> float:
    """The (biased, V-statistic) distance correlation of the rows of ``x`` and ``z``."""
    value, _ = distance_correlation_gradient(x, z)
    return value


def distance_correlation_gradient(x: Any, z: Any) -> tuple[float, np.ndarray]:
    """dCor(x, z) and its gradient with respect to ``z``."""
    xa = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    za = np.asarray(z, dtype=np.float64).reshape(len(z), -1)
    n = xa.shape[0]
    _, a = _centred(xa)
    b_raw, b = _centred(za)
    vxy, vx, vz = (a * b).mean(), (a * a).mean(), (b * b).mean()
    if vx * vz <= 0:
        return 0.0, np.zeros(np.shape(z))
    r = max(vxy / np.sqrt(vx * vz), 0.0)
    dcor = float(np.sqrt(r))
    if dcor == 0.0:
        return 0.0, np.zeros(np.shape(z))
    w = (a / np.sqrt(vx * vz) - r * b / vz) / (n * n) / (2.0 * dcor)
    with np.errstate(divide="ignore", invalid="ignore"):
        m = np.where(b_raw > 0, w / b_raw, 0.0)
    grad = 2.0 * (m.sum(axis=1)[:, None] * za - m @ za)
    return dcor, grad.reshape(np.shape(z))
