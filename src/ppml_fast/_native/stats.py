"""Numba kernels behind :mod:`ppml_fast.stats`.

- :func:`_clip_sum`, :func:`_clip_moments` (and their ``_flat`` forms for one statistic
  over a 1-d array): fused clip-shift-and-sum over the middle axis of an
  ``(outer, n, inner)`` view, accumulated in float64, no temporary clipped copy;
- :func:`_clip_histogram`: bin counts of values clipped into ``[lo, hi]``.

Options come from :mod:`ppml_fast._native._numba` (``fastmath`` off). No validation
happens here: the public wrappers check shapes, dtypes, finiteness and bounds first.
"""

from __future__ import annotations

import numpy as np

from ._numba import njit


@njit
def _clip_sum_flat(x, lo, hi, shift):  # pragma: no cover - compiled
    """``Σ_i (clip(x[i], lo, hi) - shift)`` over a 1-d array, in float64.

    Eight independent accumulators (summed pairwise at the end): without fast-math the
    compiler may not reassociate one running sum, so this is what keeps the loop at
    memory speed; it also halves the rounding error of a single running sum.
    """
    n = x.shape[0]
    acc = np.zeros(8)
    i = 0
    while i + 8 <= n:
        for lane in range(8):
            acc[lane] += min(max(np.float64(x[i + lane]), lo), hi) - shift
        i += 8
    tail = 0.0
    while i < n:
        tail += min(max(np.float64(x[i]), lo), hi) - shift
        i += 1
    total = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))
    return total + tail


@njit
def _clip_sum(x, lo, hi, shift, out):  # pragma: no cover - compiled
    """``out[a, b] = Σ_j (clip(x[a, j, b], lo, hi) - shift)`` in float64, one pass."""
    n0, n1, n2 = x.shape
    for a in range(n0):
        for b in range(n2):
            out[a, b] = 0.0
        for j in range(n1):
            for b in range(n2):
                v = np.float64(x[a, j, b])
                if v < lo:
                    v = lo
                elif v > hi:
                    v = hi
                out[a, b] += v - shift


@njit
def _clip_moments_flat(x, lo, hi, mid):  # pragma: no cover - compiled
    """``(Σ (c_i - mid), Σ (c_i - mid)²)``, ``c_i = clip(x[i], lo, hi)``, over a 1-d array.

    Four accumulators per moment, as in :func:`_clip_sum_flat`.
    """
    n = x.shape[0]
    s1 = np.zeros(4)
    s2 = np.zeros(4)
    i = 0
    while i + 4 <= n:
        for lane in range(4):
            v = min(max(np.float64(x[i + lane]), lo), hi) - mid
            s1[lane] += v
            s2[lane] += v * v
        i += 4
    t1 = 0.0
    t2 = 0.0
    while i < n:
        v = min(max(np.float64(x[i]), lo), hi) - mid
        t1 += v
        t2 += v * v
        i += 1
    return (s1[0] + s1[1]) + (s1[2] + s1[3]) + t1, (s2[0] + s2[1]) + (s2[2] + s2[3]) + t2


@njit
def _clip_moments(x, lo, hi, mid, out_sum, out_sq):  # pragma: no cover - compiled
    """Centred first and second moments of the clipped values, one pass.

    ``out_sum[a, b] = Σ_j (c_j - mid)`` and ``out_sq[a, b] = Σ_j (c_j - mid)²`` with
    ``c_j = clip(x[a, j, b], lo, hi)``.
    """
    n0, n1, n2 = x.shape
    for a in range(n0):
        for b in range(n2):
            out_sum[a, b] = 0.0
            out_sq[a, b] = 0.0
        for j in range(n1):
            for b in range(n2):
                v = np.float64(x[a, j, b])
                if v < lo:
                    v = lo
                elif v > hi:
                    v = hi
                v -= mid
                out_sum[a, b] += v
                out_sq[a, b] += v * v


@njit
def _clip_histogram(x, lo, hi, counts):  # pragma: no cover - compiled
    """Add to ``counts`` (int64, ``bins`` long) the bins of ``x`` clipped into ``[lo, hi]``.

    Bins are ``[e_i, e_{i+1})`` with ``e_i = i * ((hi - lo) / bins) + lo`` (numpy's
    ``linspace`` edges) and the last bin closed; the index is computed and then corrected
    against the edges exactly as ``numpy.histogram`` does for equal bins, so the counts
    agree with numpy's bit for bit.
    """
    bins = counts.shape[0]
    norm = bins / (hi - lo)
    step = (hi - lo) / bins
    for i in range(x.shape[0]):
        v = np.float64(x[i])
        if v <= lo:
            counts[0] += 1
            continue
        if v >= hi:
            counts[bins - 1] += 1
            continue
        b = int((v - lo) * norm)
        if b >= bins:
            b = bins - 1
        if v < b * step + lo:
            b -= 1
        elif b < bins - 1 and v >= (b + 1) * step + lo:
            b += 1
        counts[b] += 1
