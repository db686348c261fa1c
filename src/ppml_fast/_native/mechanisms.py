"""Numba kernel behind :mod:`ppml_fast.mechanisms`: :func:`_gumbel_argmax`, the row-wise
report-noisy-max step of the exponential mechanism (argmax of ``(u - max(u)) / s + G``
per row, ``G`` standard Gumbel noise already drawn).

Options come from :mod:`ppml_fast._native._numba` (``fastmath`` off). No validation
happens here: the public wrapper checks shapes, dtypes, finiteness and bounds first.
"""

from __future__ import annotations

import numpy as np

from ._numba import njit


@njit
def _gumbel_argmax(u, g, s, out):  # pragma: no cover - compiled
    """``out[r] = argmax_j((u[r, j] - max_j u[r, j]) / s + g[r, j])`` for each row ``r``.

    ``u``: (rows, k) utilities (float32/float64, k >= 1); ``g``: (rows, k) float64 standard
    Gumbel noise; ``s = 2Δ/ε`` (positive, finite). Shifting by the row maximum keeps every
    term in ``[-inf, 0] + G``, so no utility, however large, overflows; the first maximum
    wins ties (they have probability zero).
    """
    rows, k = u.shape
    for r in range(rows):
        m = u[r, 0]
        for j in range(1, k):
            if u[r, j] > m:
                m = u[r, j]
        best = -np.inf
        idx = 0
        for j in range(k):
            v = (np.float64(u[r, j]) - m) / s + g[r, j]
            if v > best:
                best = v
                idx = j
        out[r] = idx
