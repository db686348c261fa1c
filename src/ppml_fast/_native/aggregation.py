"""Numba kernels behind the federated aggregators of :mod:`ppml_fast.aggregation`.

Every kernel works on one range of columns (coordinates) ``[j0, j1)``: the wrappers in
:mod:`ppml_fast.aggregation.fedavg` and :mod:`ppml_fast.aggregation.robust` split the
columns over a thread pool (the kernels release the GIL), so no result depends on the
thread count -- every coordinate is computed by one thread, in one fixed order.

- :func:`_wsum_rows`: ``out[j] = (Σ_k w[k] x[rows[k], j]) / W`` over a (n, D) matrix, the
  terms added in client order in float64 (FedAvg, the mean of Krum's selection);
- :func:`_acc8` / :func:`_axpy`: the same running sum, for clients held as separate
  arrays (eight at a time / one at a time), into a float64 accumulator;
- :func:`_finish`: ``out[j] = acc[j] / W`` rounded once to ``out``'s dtype;
- :func:`_all_finite`: whether a range of a 1-d array is free of NaN and inf;
- :func:`_column_stat`: coordinate-wise median or trimmed mean of a (n, D) matrix, each
  block of columns sorted at once by a sorting network;
- :func:`_center`: one block of columns in float64, minus its column means (Krum's Gram
  matrix);
- :func:`_prox`: ``g + μ (w - w_g)`` (the FedProx client gradient).

Options come from :mod:`ppml_fast._native._numba` (``fastmath`` off, so ``s + w * x`` is
never contracted into a fused multiply-add and the sums are the ones the references in
:mod:`ppml_fast.reference.aggregation` compute). No validation happens here.
"""

from __future__ import annotations

import numpy as np

from ._numba import njit

#: Columns per block of :func:`_wsum_rows` (the float64 accumulator, 128 KiB, stays in
#: L2).
WSUM_BLOCK = 16384


@njit
def _wsum_rows(x, rows, w, total, out, block, j0, j1):  # pragma: no cover - compiled
    """``out[j] = (Σ_k w[k] * x[rows[k], j]) / total`` for ``j`` in ``[j0, j1)``.

    ``x``: (n, D) float32/float64 with contiguous rows; ``rows``: int64 indices of the
    clients to add (those with a nonzero weight), ``w``: their float64 weights. The sum
    starts at +0.0 and adds ``w[k] * float64(x)`` client after client -- sixteen rows per
    sweep over a block of ``block`` (:data:`WSUM_BLOCK`) columns, the running sum held in
    a register: the same additions in the same order as one client at a time, with a
    sixteenth of the accumulator traffic, close to the time of one plain read of ``x``
    (eight rows per sweep left noticeably more accumulator traffic). Returns the number of
    non-finite outputs (NaN/inf in a client, or an overflow).
    """
    n = rows.shape[0]
    bad = 0
    acc = np.empty(block)
    for b0 in range(j0, j1, block):
        b1 = min(j1, b0 + block)
        m = b1 - b0
        for j in range(m):
            acc[j] = 0.0
        k = 0
        while k + 16 <= n:
            a0 = x[rows[k], b0:b1]
            a1 = x[rows[k + 1], b0:b1]
            a2 = x[rows[k + 2], b0:b1]
            a3 = x[rows[k + 3], b0:b1]
            a4 = x[rows[k + 4], b0:b1]
            a5 = x[rows[k + 5], b0:b1]
            a6 = x[rows[k + 6], b0:b1]
            a7 = x[rows[k + 7], b0:b1]
            a8 = x[rows[k + 8], b0:b1]
            a9 = x[rows[k + 9], b0:b1]
            a10 = x[rows[k + 10], b0:b1]
            a11 = x[rows[k + 11], b0:b1]
            a12 = x[rows[k + 12], b0:b1]
            a13 = x[rows[k + 13], b0:b1]
            a14 = x[rows[k + 14], b0:b1]
            a15 = x[rows[k + 15], b0:b1]
            for j in range(m):
                s = acc[j]
                s = s + w[k] * np.float64(a0[j])
                s = s + w[k + 1] * np.float64(a1[j])
                s = s + w[k + 2] * np.float64(a2[j])
                s = s + w[k + 3] * np.float64(a3[j])
                s = s + w[k + 4] * np.float64(a4[j])
                s = s + w[k + 5] * np.float64(a5[j])
                s = s + w[k + 6] * np.float64(a6[j])
                s = s + w[k + 7] * np.float64(a7[j])
                s = s + w[k + 8] * np.float64(a8[j])
                s = s + w[k + 9] * np.float64(a9[j])
                s = s + w[k + 10] * np.float64(a10[j])
                s = s + w[k + 11] * np.float64(a11[j])
                s = s + w[k + 12] * np.float64(a12[j])
                s = s + w[k + 13] * np.float64(a13[j])
                s = s + w[k + 14] * np.float64(a14[j])
                s = s + w[k + 15] * np.float64(a15[j])
                acc[j] = s
            k += 16
        while k < n:
            a0 = x[rows[k], b0:b1]
            w0 = w[k]
            for j in range(m):
                acc[j] = acc[j] + w0 * np.float64(a0[j])
            k += 1
        for j in range(m):
            out[b0 + j] = acc[j] / total
            if not np.isfinite(out[b0 + j]):
                bad += 1
    return bad


@njit
def _acc8(acc, a0, a1, a2, a3, a4, a5, a6, a7, w, j0, j1):  # pragma: no cover - compiled
    """``acc[j] += w[0] a0[j]``, then ``+= w[1] a1[j]``, ... ``+= w[7] a7[j]`` (in that
    order, float64) for ``j`` in ``[j0, j1)``: eight separate client arrays (contiguous,
    1-d, one dtype) in one sweep over the accumulator. Unused slots get weight 0 and a
    zero array (``s + 0.0 == s`` for the accumulator, which is never -0.0).

    Like every loop here, it runs over slices that start at 0: the same loop indexed
    from a computed offset compiles to a loop several times slower (it does not vectorise).
    """
    s_ = acc[j0:j1]
    b0, b1, b2, b3 = a0[j0:j1], a1[j0:j1], a2[j0:j1], a3[j0:j1]
    b4, b5, b6, b7 = a4[j0:j1], a5[j0:j1], a6[j0:j1], a7[j0:j1]
    w0, w1, w2, w3 = w[0], w[1], w[2], w[3]
    w4, w5, w6, w7 = w[4], w[5], w[6], w[7]
    for j in range(s_.shape[0]):
        s = s_[j]
        s = s + w0 * np.float64(b0[j])
        s = s + w1 * np.float64(b1[j])
        s = s + w2 * np.float64(b2[j])
        s = s + w3 * np.float64(b3[j])
        s = s + w4 * np.float64(b4[j])
        s = s + w5 * np.float64(b5[j])
        s = s + w6 * np.float64(b6[j])
        s = s + w7 * np.float64(b7[j])
        s_[j] = s


@njit
def _axpy(acc, a, w, j0, j1):  # pragma: no cover - compiled
    """``acc[j] = acc[j] + w * float64(a[j])`` for ``j`` in ``[j0, j1)``."""
    s = acc[j0:j1]
    v = a[j0:j1]
    for j in range(s.shape[0]):
        s[j] = s[j] + w * np.float64(v[j])


@njit
def _all_finite(a, j0, j1):  # pragma: no cover - compiled
    """Whether ``a[j0:j1]`` holds no NaN or inf (an OR over the whole range, which
    vectorises; no early exit)."""
    v = a[j0:j1]
    bad = False
    for j in range(v.shape[0]):
        bad = bad | (not np.isfinite(v[j]))
    return not bad


@njit
def _finish(acc, total, out, j0, j1):  # pragma: no cover - compiled
    """``out[j] = acc[j] / total`` (rounded once to ``out``'s dtype); returns the number
    of non-finite results."""
    s = acc[j0:j1]
    o = out[j0:j1]
    bad = 0
    for j in range(s.shape[0]):
        o[j] = s[j] / total
        bad += not np.isfinite(o[j])
    return bad


@njit
def _median_sorted(v, m):  # pragma: no cover - compiled
    """Median of the sorted ``v[:m]`` (m >= 1): the middle value, or the mean of the two
    middle values -- ``(a + b) / 2`` as numpy computes it, ``a/2 + b/2`` only where
    ``a + b`` overflows."""
    h = m // 2
    if m % 2 == 1:
        return v[h]
    a = v[h - 1]
    b = v[h]
    s = a + b
    if np.isinf(s) and np.isfinite(a) and np.isfinite(b):
        return a * 0.5 + b * 0.5
    return s / 2.0


@njit
def _mean_sorted(v, lo, hi):  # pragma: no cover - compiled
    """Mean of ``v[lo:hi]`` (hi > lo): the float64 sum in order, divided by ``hi - lo``;
    where finite values overflow the sum, ``Σ v[i] / (hi - lo)`` instead."""
    s = 0.0
    for i in range(lo, hi):
        s += v[i]
    cnt = hi - lo
    if np.isinf(s) and np.isfinite(v[lo]) and np.isfinite(v[hi - 1]):
        s = 0.0
        for i in range(lo, hi):
            s += v[i] / cnt
        return s
    return s / cnt


#: ``mode`` of :func:`_column_stat`.
MEDIAN, TRIM_FRACTION, TRIM_COUNT = 0, 1, 2


@njit
def _column_stat(x, out, pairs, mode, frac, count, omit, j0, j1):  # pragma: no cover
    """Coordinate-wise median or trimmed mean of the (n, D) ``x`` for columns
    ``[j0, j1)``, written to ``out`` (rounded once to its dtype).

    A block of columns is copied into a float64 buffer of shape (n, width) -- client
    ``i`` in row ``i`` -- with NaN replaced by +inf and counted per column, and sorted
    down its columns by the sorting network ``pairs`` (compare-exchange of rows ``a <
    b``, vectorised across the block's columns; see ``robust._network``). NaNs, now
    +inf, sort last, so the first ``m = n - (NaN count)`` rows of a column are its
    non-NaN values in order (a real +inf is indistinguishable from, and equal to, a
    sentinel). Then ``mode``: :data:`MEDIAN`; :data:`TRIM_FRACTION`, the mean of rows
    ``[k, m - k)`` with ``k = int(frac * m)`` (the cut of ``scipy.stats.trim_mean``);
    :data:`TRIM_COUNT`, the same with ``k = count``. The mean adds the kept values in
    sorted order in float64 and divides by their number (:func:`_mean_sorted`).

    A column that cannot be aggregated -- a NaN without ``omit``, no values left (``m ==
    0``, or ``m <= 2k``) -- gets NaN, as does a mean of +inf and -inf. Returns the number
    of NaN outputs; the wrapper finds and explains the first one.
    """
    n = x.shape[0]
    width = max(8, min(512, (32768 // max(n, 1)) // 8 * 8))
    buf = np.empty((n, width))
    nans = np.empty(width, dtype=np.int64)
    col = np.empty(n)
    npairs = pairs.shape[0]
    bad = 0
    for b0 in range(j0, j1, width):
        b1 = min(j1, b0 + width)
        w = b1 - b0
        for c in range(w):
            nans[c] = 0
        for i in range(n):
            row = x[i, b0:b1]
            dst = buf[i]
            for c in range(w):
                v = np.float64(row[c])
                if np.isnan(v):
                    nans[c] += 1
                    v = np.inf
                dst[c] = v
        for p in range(npairs):
            lo = buf[pairs[p, 0]]
            hi = buf[pairs[p, 1]]
            for c in range(w):
                a = lo[c]
                b = hi[c]
                lo[c] = a if a < b else b
                hi[c] = b if a < b else a
        for c in range(w):
            m = n - nans[c]
            if (nans[c] and not omit) or m == 0:
                out[b0 + c] = np.nan
                bad += 1
                continue
            for i in range(m):
                col[i] = buf[i, c]
            if mode == MEDIAN:
                r = _median_sorted(col, m)
            else:
                k = int(frac * m) if mode == TRIM_FRACTION else count
                if m - 2 * k <= 0:
                    out[b0 + c] = np.nan
                    bad += 1
                    continue
                r = _mean_sorted(col, k, m - k)
            out[b0 + c] = r
            if np.isnan(out[b0 + c]):
                bad += 1
    return bad


@njit
def _center(x, b0, b1, out, mean):  # pragma: no cover - compiled
    """``out[i, c] = x[i, b0 + c] - mean_c`` in float64, ``mean_c`` the mean of column
    ``b0 + c`` over the n rows: one block of Krum's Gram matrix (``x`` (n, D) with
    contiguous rows, ``out`` (n, b1 - b0) float64, ``mean`` scratch of b1 - b0)."""
    n = x.shape[0]
    w = b1 - b0
    for c in range(w):
        mean[c] = 0.0
    for i in range(n):
        row = x[i, b0:b1]
        for c in range(w):
            mean[c] += np.float64(row[c])
    for c in range(w):
        mean[c] /= n
    for i in range(n):
        row = x[i, b0:b1]
        dst = out[i]
        for c in range(w):
            dst[c] = np.float64(row[c]) - mean[c]


@njit
def _prox(g, w, wg, mu, out, j0, j1):  # pragma: no cover - compiled
    """``out[j] = g[j] + mu * (w[j] - wg[j])`` in float64, rounded once to ``out``'s dtype
    (1-d contiguous arrays of one dtype; ``out`` may be ``g`` or ``w`` itself)."""
    o, gg, ww, wwg = out[j0:j1], g[j0:j1], w[j0:j1], wg[j0:j1]
    for j in range(o.shape[0]):
        o[j] = np.float64(gg[j]) + mu * (np.float64(ww[j]) - np.float64(wwg[j]))
