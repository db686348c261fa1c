"""Per-sample clipping: the native kernel against the per-sample loop reference and a
bit-exact model of its documented summation order, known answers, layouts, ``out=``
and aliasing, non-finite rows, argument errors, the DP aggregate (noise, reduction,
accounting), thread-count independence, torch tensors and adaptive clipping.

Random cases run on fixed seeds and on one fresh seed per run (FRESH, printed in every
assertion message; rerun a failure with ``PPML_TEST_SEED=<printed seed>``). Apart from
the statistical tests those comparisons are deterministic functions of the drawn data, so
a failure on the fresh seed is a real disagreement, not a false alarm.

The statistical tests (``slow``) check the noise of :func:`dp_aggregate` on 10^6
coordinates with a false-alarm rate of 1e-6 per assertion (see their docstrings).

Bugs found while writing this file (cross-layer out= aliasing, per-layer errors after a
partial write, per-layer nonfinite='zero' dropping only one layer, fully underflowing or
overflowing float64 rows, the per-layer norms shape of a one-layer list, and
AdaptiveClipping replaying an int seed's noise at every step) were fixed; their tests stay
as regression tests.
"""

from __future__ import annotations

import math
import os
import warnings

import numpy as np
import pytest
import scipy.stats as st

import ppml_fast
from ppml_fast import noise
from ppml_fast._native import clipping as kernels
from ppml_fast.accounting import RDPAccountant
from ppml_fast.clipping import (
    AdaptiveClipping,
    DPAggregate,
    clip_and_sum,
    clip_per_sample,
    dp_aggregate,
    per_sample_norms,
)
from ppml_fast.reference import clipping as ref
from ppml_fast.rng import _reset_dp_warning, default_rng

pytestmark = pytest.mark.filterwarnings("ignore::ppml_fast.InsecureRandomnessWarning")

FRESH = int(os.environ.get("PPML_TEST_SEED") or np.random.SeedSequence().entropy % 2**63)
SEEDS = [0, 1, 20240601, FRESH]
DTYPES = [np.float32, np.float64]
RTOL = {np.dtype(np.float32): 1e-6, np.dtype(np.float64): 1e-12}


# --- helpers -----------------------------------------------------------------------------


def _as_list(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _row_shape(a):
    """Shape that broadcasts a (B,) vector against ``a`` of shape (B, ...)."""
    return (-1,) + (1,) * (a.ndim - 1)


def _chunk_partials(x):
    """Sums of squares of chunks ``x`` (shape (B, nchunks, len), the data's dtype) in the
    kernel's order: LANES float64 lanes folded by the fixed pairwise tree."""
    lanes = kernels.LANES
    b, nc, n = x.shape
    acc = np.zeros((b, nc, lanes))
    # every square exact in float64 (float32 too), lane j taking elements j, j + LANES, ...
    nblk = n // lanes
    blocks = x[..., : nblk * lanes].reshape(b, nc, nblk, lanes).astype(np.float64)
    for k in range(nblk):
        v = blocks[:, :, k]
        acc = acc + v * v
    # the tail: element j goes to lane j % LANES, squared in float64
    tail = x[..., nblk * lanes :].astype(np.float64)
    for j in range(tail.shape[2]):
        acc[:, :, j % lanes] = acc[:, :, j % lanes] + tail[:, :, j] * tail[:, :, j]
    w = lanes // 2
    while w >= 1:
        acc[..., :w] = acc[..., :w] + acc[..., w : 2 * w]
        w //= 2
    return acc[..., 0]


def _model_sumsq(layers):
    """Rows' sums of squares in the kernel's documented order (``_clipping_kernels.h``).

    Each layer's row is cut into CHUNK-element chunks, each summed by
    :func:`_chunk_partials`; the chunk partials are added in order, layer by layer.
    """
    chunk = kernels.CHUNK
    b = layers[0].shape[0]
    ss = np.zeros(b)
    for a in layers:
        rows = np.ascontiguousarray(a).reshape(b, -1)
        n = rows.shape[1]
        full = n // chunk
        parts = []
        if full:
            parts.append(_chunk_partials(rows[:, : full * chunk].reshape(b, full, chunk)))
        if n - full * chunk:
            parts.append(_chunk_partials(rows[:, full * chunk :].reshape(b, 1, -1)))
        for part in parts:
            for c in range(part.shape[1]):
                ss = ss + part[:, c]
    return ss


def _model(layers, thresholds):
    """Bit-exact model of the kernel: (clipped layers, sums, float64 norms (G, B))."""
    groups = (
        [list(range(len(layers)))] if len(thresholds) == 1 else [[i] for i in range(len(layers))]
    )
    clipped = [None] * len(layers)
    sums = [None] * len(layers)
    norms = []
    for idx, c in zip(groups, thresholds, strict=True):
        nrm = np.sqrt(_model_sumsq([layers[i] for i in idx]))
        norms.append(nrm)
        scale = np.where(nrm > c, c / np.where(nrm > c, nrm, 1.0), 1.0)
        for i in idx:
            a = layers[i]
            clipped[i] = a * scale.astype(a.dtype).reshape(_row_shape(a))
            acc = np.zeros(a.shape[1:], dtype=a.dtype)
            for r in range(a.shape[0]):  # rows in order, in the data's dtype
                acc = acc + clipped[i][r]
            sums[i] = acc
    return clipped, sums, np.array(norms)


def _group_norms_f64(layers, thresholds):
    """Norms of each clipping group, accumulated in float64 (for the <= C check)."""
    groups = (
        [list(range(len(layers)))] if len(thresholds) == 1 else [[i] for i in range(len(layers))]
    )
    out = []
    for idx in groups:
        ss = sum(
            np.sum(
                np.asarray(layers[i], dtype=np.float64).reshape(layers[i].shape[0], -1) ** 2, axis=1
            )
            for i in idx
        )
        out.append(np.sqrt(ss))
    return out


def _random_shape(rng, n):
    """A trailing shape with ``n`` elements and 0 to 3 dimensions."""
    if n == 1 and rng.random() < 0.4:
        return ()
    dims = []
    for _ in range(int(rng.integers(0, 3))):
        f = int(rng.integers(1, 6))
        if n % f == 0:
            dims.append(f)
            n //= f
    dims.append(n)
    rng.shuffle(dims)
    return tuple(dims)


def _odd_layout(rng, a):
    """The same values as ``a`` in a randomly chosen non-contiguous layout."""
    kind = rng.integers(0, 4)
    if kind == 0 and a.ndim >= 1:
        return a[::-1].copy()[::-1]  # negative row stride
    if kind == 1:
        return np.asfortranarray(a)  # copied by the wrapper
    if kind == 2:
        big = np.zeros((2 * a.shape[0], *a.shape[1:]), dtype=a.dtype)
        big[::2] = a
        return big[::2]  # every other row
    return a


def _random_case(rng, dtype, per_layer, *, max_elems):
    b = int(min(512, max(1, math.floor(math.exp(rng.uniform(0, math.log(513)))))))
    cap = max(1, min(10**6, max_elems // b))
    d = int(max(1, math.floor(math.exp(rng.uniform(0, math.log(cap + 1))))))
    n_layers = int(rng.integers(1, 6)) if d >= 5 else 1
    n_layers = min(n_layers, d)
    cuts = (
        np.sort(rng.choice(np.arange(1, d), size=n_layers - 1, replace=False))
        if (n_layers > 1)
        else np.array([], dtype=int)
    )
    sizes = np.diff(np.concatenate([[0], cuts, [d]])).astype(int)
    c = float(10 ** rng.uniform(-2, 2))
    thresholds = (
        [float(c * 10 ** rng.uniform(-0.5, 0.5)) for _ in range(n_layers)] if per_layer else [c]
    )
    layers = []
    for i, n in enumerate(sizes):
        shape = _random_shape(rng, int(n))
        ci = thresholds[i] if per_layer else c / math.sqrt(n_layers)
        row_norm = ci * 10 ** rng.uniform(-1, 1, b)  # about half the rows clipped
        row_norm[rng.random(b) < 0.05] = 0.0  # some zero rows
        x = rng.standard_normal((b, int(n))) * (row_norm / math.sqrt(n))[:, None]
        a = x.reshape((b, *shape)).astype(dtype)
        if rng.random() < 0.3:
            a = _odd_layout(rng, a)
        layers.append(a)
    return layers, thresholds


def _check_case(layers, thresholds, per_layer, msg, *, as_list=False):
    """Native vs reference, the <= C bound, the bit-exact model and per_sample_norms.

    A single layer goes in as a bare array unless ``as_list`` (or per-layer thresholds,
    which need a list).
    """
    dtype = layers[0].dtype
    rtol = RTOL[dtype]
    eps = float(np.finfo(dtype).eps)
    grads = layers if (len(layers) > 1 or as_list or per_layer) else layers[0]
    max_norm = thresholds if per_layer else thresholds[0]
    got, got_norms = clip_per_sample(grads, max_norm, return_norms=True)
    got_sum = clip_and_sum(grads, max_norm)
    got = _as_list(got)
    got_sum = _as_list(got_sum)

    # 1. the reference loop, up to summation order
    exp = _as_list(ref.clip_per_sample(grads, max_norm))
    exp_sum = _as_list(ref.clip_and_sum(grads, max_norm))
    ref_norms = ref.per_sample_norms(grads, per_layer=per_layer)
    np.testing.assert_allclose(got_norms, ref_norms, rtol=rtol, atol=0, err_msg=msg)
    assert got_norms.dtype == np.float64, msg  # float64 for both dtypes
    for g, e in zip(got, exp, strict=True):
        assert g.shape == e.shape and g.dtype == dtype, msg
        np.testing.assert_allclose(g, e, rtol=rtol, atol=0, err_msg=msg)
    for i, (g, e) in enumerate(zip(got_sum, exp_sum, strict=True)):
        assert g.shape == layers[i].shape[1:] and g.dtype == dtype, msg
        abs_sum = np.sum(np.abs(exp[i].astype(np.float64)), axis=0)
        atol = 2 * layers[i].shape[0] * eps * abs_sum
        err = np.abs(g.astype(np.float64) - e.astype(np.float64))
        assert np.all(err <= rtol * np.abs(e) + atol), (msg, float(np.max(err - atol)))

    # 2. every clipped group within C (up to rounding of the scaled values)
    for n, c in zip(_group_norms_f64(got, thresholds), thresholds, strict=True):
        assert np.all(n <= c * (1 + 4 * eps)), (msg, float(n.max()), c)

    # 3. bit for bit against the model of the documented order
    m_clip, m_sum, m_norms = _model([np.asarray(a) for a in layers], thresholds)
    pub = m_norms.T if per_layer else m_norms[0]
    np.testing.assert_array_equal(got_norms, pub, err_msg=msg)
    for g, m in zip(got, m_clip, strict=True):
        np.testing.assert_array_equal(g, m, err_msg=msg)
    for g, m in zip(got_sum, m_sum, strict=True):
        np.testing.assert_array_equal(g, m, err_msg=msg)

    # 4. per_sample_norms (flat, and per layer) agree with the reference
    np.testing.assert_allclose(
        per_sample_norms(grads), ref.per_sample_norms(grads), rtol=rtol, atol=0, err_msg=msg
    )
    if len(layers) > 1:
        np.testing.assert_allclose(
            per_sample_norms(layers, per_layer=True),
            ref.per_sample_norms(layers, per_layer=True),
            rtol=rtol,
            atol=0,
            err_msg=msg,
        )


def _fixture_rows(dtype):
    """Exactly representable rows for C = 5: norms 5, 0, 10, 1.25, 20, 20, 5, 40."""
    return np.array(
        [[3, 4], [0, 0], [6, 8], [0.75, 1.0], [-12, -16], [0, -20], [5, 0], [-32, 24]], dtype=dtype
    )


KNOWN_CLIPPED = [[3, 4], [0, 0], [3, 4], [0.75, 1.0], [-3, -4], [0, -5], [5, 0], [-4, 3]]
KNOWN_NORMS = [5, 0, 10, 1.25, 20, 20, 5, 40]
KNOWN_SUM = [4.75, 3.0]


# --- 1. native vs reference on random shapes ---------------------------------------------


@pytest.mark.parametrize("per_layer", [False, True], ids=["flat", "per_layer"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", SEEDS)
def test_random_small_cases_match_reference(seed, dtype, per_layer):
    rng = np.random.default_rng([seed, np.dtype(dtype).itemsize, per_layer])
    for case in range(10):
        layers, thresholds = _random_case(rng, dtype, per_layer, max_elems=40_000)
        as_list = bool(rng.random() < 0.5)
        msg = (
            f"seed={seed} case={case} dtype={np.dtype(dtype)} "
            f"shapes={[a.shape for a in layers]} C={thresholds} as_list={as_list}"
        )
        _check_case(layers, thresholds, per_layer, msg, as_list=as_list)


LARGE_CASES = [
    (np.float32, 2, [(1_000_000,)], False),
    (np.float64, 1, [(1_000, 1_000)], False),
    (np.float64, 3, [(400, 1000), (7, 3), ()], True),
    (np.float32, 512, [(40, 50), (7,), ()], True),
    (np.float32, 64, [(20_000,), (3, 4000), (1,)], False),
    (np.float64, 20, [(kernels.CHUNK + 1,)], False),
    (np.float32, 24, [(2 * kernels.CHUNK + 129,), (5,)], False),
]


@pytest.mark.parametrize("dtype,b,shapes,per_layer", LARGE_CASES)
def test_large_cases_match_reference(dtype, b, shapes, per_layer):
    rng = np.random.default_rng([FRESH, b])
    thresholds = [float(10 ** rng.uniform(-1, 1)) for _ in shapes] if per_layer else [1.5]
    layers = []
    for i, s in enumerate(shapes):
        n = math.prod(s)
        ci = thresholds[i] if per_layer else thresholds[0] / math.sqrt(len(shapes))
        row_norm = ci * 10 ** rng.uniform(-1, 1, b)
        x = rng.standard_normal((b, n), dtype=np.float32) * (row_norm / math.sqrt(n))[:, None]
        layers.append(x.reshape((b, *s)).astype(dtype))
    msg = f"seed={FRESH} dtype={np.dtype(dtype)} B={b} shapes={shapes} C={thresholds}"
    _check_case(layers, thresholds, per_layer, msg)


# --- 2. known answers --------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_known_answer_single_array(dtype):
    g = _fixture_rows(dtype)
    before = g.copy()
    clipped, norms = clip_per_sample(g, 5.0, return_norms=True)
    np.testing.assert_array_equal(clipped, np.array(KNOWN_CLIPPED, dtype=dtype))
    np.testing.assert_array_equal(norms, KNOWN_NORMS)
    assert clipped.dtype == dtype and norms.dtype == np.float64
    np.testing.assert_array_equal(g, before)  # out of place: the input is untouched
    # rows at the threshold (norm exactly C) and zero rows are unchanged bit for bit
    for i in (0, 1, 3, 6):
        assert clipped[i].tobytes() == g[i].tobytes()
    total, tnorms = clip_and_sum(g, 5.0, return_norms=True)
    np.testing.assert_array_equal(total, np.array(KNOWN_SUM, dtype=dtype))
    np.testing.assert_array_equal(tnorms, norms)
    np.testing.assert_array_equal(per_sample_norms(g), norms)
    res = dp_aggregate(g, 5.0, 0.0)
    np.testing.assert_array_equal(res.gradient, np.array([4.75 / 8, 3.0 / 8], dtype=dtype))
    assert res.denominator == 8.0 and res.batch_size == 8 and res.noise_std == 0.0
    # the norm (and nothing else) depends on C: a huge C leaves everything unchanged
    np.testing.assert_array_equal(clip_per_sample(g, 1e30), g)


@pytest.mark.parametrize("dtype", DTYPES)
def test_known_answer_in_place(dtype):
    g = _fixture_rows(dtype)
    res = clip_per_sample(g, 5.0, out=g)
    assert res is g
    np.testing.assert_array_equal(g, np.array(KNOWN_CLIPPED, dtype=dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_known_answer_layers(dtype):
    g = _fixture_rows(dtype)
    # flat clipping of a column split is the clipping of the whole row
    parts, norms = clip_per_sample([g[:, :1], g[:, 1:]], 5.0, return_norms=True)
    np.testing.assert_array_equal(
        np.concatenate(parts, axis=1), np.array(KNOWN_CLIPPED, dtype=dtype)
    )
    np.testing.assert_array_equal(norms, KNOWN_NORMS)
    sums = clip_and_sum([g[:, :1], g[:, 1:]], 5.0)
    np.testing.assert_array_equal(np.concatenate(sums), np.array(KNOWN_SUM, dtype=dtype))
    # per-layer thresholds: each layer clipped on its own
    a = np.array([[4], [0], [-2], [0.5]], dtype=dtype)
    b = np.array([[6, 8], [0, 0], [3, 4], [-12, 16]], dtype=dtype)
    (ca, cb), n = clip_per_sample([a, b], [1.0, 5.0], return_norms=True)
    np.testing.assert_array_equal(ca, np.array([[1], [0], [-1], [0.5]], dtype=dtype))
    np.testing.assert_array_equal(cb, np.array([[3, 4], [0, 0], [3, 4], [-3, 4]], dtype=dtype))
    np.testing.assert_array_equal(n, np.array([[4, 10], [0, 0], [2, 5], [0.5, 20]], dtype=dtype))
    sa, sb = clip_and_sum([a, b], [1.0, 5.0])
    np.testing.assert_array_equal(sa, np.array([0.5], dtype=dtype))
    np.testing.assert_array_equal(sb, np.array([3.0, 12.0], dtype=dtype))
    np.testing.assert_array_equal(per_sample_norms([a, b], per_layer=True), n)
    res = dp_aggregate([a, b], [1.0, 5.0], 2.0, rng=1, reduction="sum")
    assert res.max_norm == math.sqrt(26.0) and res.noise_std == 2.0 * math.sqrt(26.0)
    assert res.norms.shape == (4, 2)
    np.testing.assert_array_equal(res.norms, n)


def test_rows_within_the_bound_are_unchanged_bit_for_bit():
    rng = np.random.default_rng([FRESH, 2])
    g = rng.standard_normal((50, 37)).astype(np.float32)
    c = float(np.median(np.linalg.norm(g, axis=1)))
    out, norms = clip_per_sample(g, c, return_norms=True)
    inside = norms <= c
    assert 0 < inside.sum() < 50, f"seed={FRESH}"
    np.testing.assert_array_equal(out[inside], g[inside], err_msg=f"seed={FRESH}")
    assert not np.array_equal(out[~inside], g[~inside])


def test_one_dimensional_input_clips_scalars():
    v = np.array([3.0, -7.0, 0.5, 0.0, -1.0])
    out, norms = clip_per_sample(v, 1.0, return_norms=True)
    np.testing.assert_array_equal(out, [1.0, -1.0, 0.5, 0.0, -1.0])
    np.testing.assert_array_equal(norms, [3.0, 7.0, 0.5, 0.0, 1.0])
    total = clip_and_sum(v, 1.0)
    assert total.shape == () and total == -0.5
    np.testing.assert_array_equal(per_sample_norms(v), norms)


# --- 3. layouts --------------------------------------------------------------------------


def _layouts(base):
    b = base.shape[0]
    rng = np.random.default_rng(3)
    row = (rng.standard_normal((1, *base.shape[1:])) * 4).astype(base.dtype)
    col = (rng.standard_normal((b, 1, 1)) * 4).astype(base.dtype)
    return {
        "contiguous": base,
        "rows_sliced": base[::2],
        "rows_reversed": base[::-1],
        "swapaxes": np.swapaxes(base, 1, 2),
        "fortran": np.asfortranarray(base),
        "inner_strided": base[:, :, ::2],
        "inner_partial": base[:, 1:3, :],
        "broadcast_rows": np.broadcast_to(row, base.shape),
        "broadcast_trailing": np.broadcast_to(col, base.shape),
        "reshaped_4d": base.reshape(b, 2, 2, -1),
        "transposed_4d": base.reshape(b, 2, 2, -1).transpose(0, 3, 1, 2),
    }


@pytest.mark.parametrize("dtype", DTYPES)
def test_layouts_match_contiguous_copies(dtype):
    rng = np.random.default_rng([FRESH, 4])
    base = (rng.standard_normal((12, 4, 6)) * rng.uniform(0.1, 3, (12, 1, 1))).astype(dtype)
    for name, g in _layouts(base).items():
        msg = f"layout={name} seed={FRESH}"
        c = np.ascontiguousarray(g)
        for max_norm in (2.0, 1e9):
            out, n = clip_per_sample(g, max_norm, return_norms=True)
            exp, en = clip_per_sample(c, max_norm, return_norms=True)
            assert out.shape == g.shape and out.dtype == dtype, msg
            np.testing.assert_array_equal(out, exp, err_msg=msg)
            np.testing.assert_array_equal(n, en, err_msg=msg)
            np.testing.assert_array_equal(
                clip_and_sum(g, max_norm), clip_and_sum(c, max_norm), err_msg=msg
            )
        np.testing.assert_array_equal(per_sample_norms(g), per_sample_norms(c), err_msg=msg)
        np.testing.assert_array_equal(
            dp_aggregate(g, 2.0, 1.0, rng=5).gradient,
            dp_aggregate(c, 2.0, 1.0, rng=5).gradient,
            err_msg=msg,
        )
        # and the loop reference agrees on the view itself
        np.testing.assert_allclose(
            clip_per_sample(g, 2.0),
            ref.clip_per_sample(g, 2.0),
            rtol=RTOL[np.dtype(dtype)],
            err_msg=msg,
        )
        # in place where the view is writeable
        if g.flags.writeable and name != "contiguous":
            h = base.copy()
            view = _layouts(h)[name]
            res = clip_per_sample(view, 2.0, out=view)
            assert res is view, msg
            np.testing.assert_array_equal(view, clip_per_sample(c, 2.0), err_msg=msg)


def test_list_of_layers_with_mixed_layouts():
    rng = np.random.default_rng([FRESH, 5])
    a = rng.standard_normal((9, 5, 4))
    b = rng.standard_normal((9,))
    c = rng.standard_normal((9, 3, 2, 2))
    views = [np.swapaxes(a, 1, 2), b[::-1], np.asfortranarray(c)]
    copies = [np.ascontiguousarray(v) for v in views]
    for max_norm in (1.0, [0.5, 0.2, 2.0]):
        got, gn = clip_per_sample(views, max_norm, return_norms=True)
        exp, en = clip_per_sample(copies, max_norm, return_norms=True)
        assert isinstance(got, list) and len(got) == 3
        for x, y, v in zip(got, exp, views, strict=True):
            assert x.shape == v.shape
            np.testing.assert_array_equal(x, y)
        np.testing.assert_array_equal(gn, en)
        for x, y in zip(clip_and_sum(views, max_norm), clip_and_sum(copies, max_norm), strict=True):
            np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(0,), (0, 3), (0, 2, 3), (4, 0), (4, 0, 3), (0, 0)])
def test_empty_inputs(dtype, shape):
    g = np.zeros(shape, dtype=dtype)
    b = shape[0]
    out, norms = clip_per_sample(g, 1.0, return_norms=True)
    assert out.shape == shape and out.dtype == dtype
    assert norms.shape == (b,) and norms.dtype == np.float64 and not norms.any()
    total = clip_and_sum(g, 1.0)
    assert total.shape == shape[1:] and total.dtype == dtype and not total.any()
    assert per_sample_norms(g).shape == (b,)
    res = clip_per_sample(g, 1.0, out=g)
    assert res is g
    o = np.full(shape[1:], np.nan, dtype=dtype)
    assert clip_and_sum(g, 1.0, out=o) is o and not o.any()
    # per-layer with an empty layer next to a real one
    h = np.full((3, 2), 3.0, dtype=dtype)
    e = np.zeros((3, 0), dtype=dtype)
    (_, ce), n = clip_per_sample([h, e], [1.0, 1.0], return_norms=True)
    assert ce.shape == (3, 0)
    np.testing.assert_allclose(n[:, 0], np.full(3, math.sqrt(18.0)), rtol=1e-6)
    np.testing.assert_array_equal(n[:, 1], np.zeros(3))


def test_empty_batch_dp_aggregate():
    g = np.zeros((0, 2, 3), dtype=np.float32)
    res = dp_aggregate(g, 2.0, 1.5, rng=11, expected_batch_size=4)
    expected = noise.gaussian(3.0, (2, 3), rng=11, dtype=np.float32) / np.float32(4.0)
    np.testing.assert_array_equal(res.gradient, expected)
    assert res.batch_size == 0 and res.denominator == 4.0 and res.norms.shape == (0,)
    assert res.nonfinite_rows.size == 0
    s = dp_aggregate(g, 2.0, 1.5, rng=11, reduction="sum")
    np.testing.assert_array_equal(s.gradient, noise.gaussian(3.0, (2, 3), rng=11, dtype=np.float32))
    with pytest.raises(ValueError, match="expected_batch_size must be given"):
        dp_aggregate(g, 2.0, 1.5, rng=11)


# --- 4. out= -----------------------------------------------------------------------------


def _clip_data(dtype, shape=(40, 3, 50), seed=6):
    rng = np.random.default_rng([FRESH, seed])
    return (
        rng.standard_normal(shape) * rng.uniform(0.05, 2.0, (shape[0],) + (1,) * (len(shape) - 1))
    ).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_out_separate_and_in_place(dtype):
    g = _clip_data(dtype)
    expected, en = clip_per_sample(g, 3.0, return_norms=True)
    out = np.full_like(g, np.nan)
    res = clip_per_sample(g, 3.0, out=out)
    assert res is out
    np.testing.assert_array_equal(out, expected)
    res, n = clip_per_sample(g, 3.0, out=out, return_norms=True)  # reusing a filled out
    assert res is out
    np.testing.assert_array_equal(n, en)
    h = g.copy()
    res, n = clip_per_sample(h, 3.0, out=h, return_norms=True)
    assert res is h
    np.testing.assert_array_equal(h, expected)
    np.testing.assert_array_equal(n, en)
    # in place with nonfinite="zero" gives the same
    h = g.copy()
    clip_per_sample(h, 3.0, out=h, nonfinite="zero")
    np.testing.assert_array_equal(h, expected)


@pytest.mark.parametrize("dtype", DTYPES)
def test_out_in_place_large_multi_block(dtype):
    # several kernel blocks (about 1 MiB each) and several threads
    g = _clip_data(dtype, shape=(300, 5000), seed=7)
    expected = clip_per_sample(g, 1.0)
    np.testing.assert_allclose(expected, ref.clip_per_sample(g, 1.0), rtol=RTOL[np.dtype(dtype)])
    h = g.copy()
    with ppml_fast.num_threads(2):
        assert clip_per_sample(h, 1.0, out=h) is h
    np.testing.assert_array_equal(h, expected)


def test_out_in_place_for_a_list_of_layers():
    a = _clip_data(np.float64, shape=(20, 30), seed=8)
    b = _clip_data(np.float64, shape=(20, 2, 5), seed=9)
    for max_norm in (1.0, [0.7, 0.3]):
        exp = clip_per_sample([a, b], max_norm)
        x, y = a.copy(), b.copy()
        res = clip_per_sample([x, y], max_norm, out=[x, y])
        assert isinstance(res, list) and res[0] is x and res[1] is y
        np.testing.assert_array_equal(x, exp[0])
        np.testing.assert_array_equal(y, exp[1])
        # one layer in place, the other into fresh storage
        x = a.copy()
        o = np.empty_like(b)
        res = clip_per_sample([x, b], max_norm, out=[x, o])
        assert res[0] is x and res[1] is o
        np.testing.assert_array_equal(x, exp[0])
        np.testing.assert_array_equal(o, exp[1])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows", [41, 400])
def test_out_partially_overlapping_grads(dtype, rows):
    base = _clip_data(dtype, shape=(rows + 1, 3000), seed=10)
    for src, dst in ((slice(None, -1), slice(1, None)), (slice(1, None), slice(None, -1))):
        expected = clip_per_sample(base[src].copy(), 0.8)
        h = base.copy()
        res = clip_per_sample(h[src], 0.8, out=h[dst])
        np.testing.assert_array_equal(h[dst], expected, err_msg=f"{src} -> {dst}")
        np.testing.assert_array_equal(res, expected)
    # same start, different row stride: out=g[:k] for grads=g[::2]
    expected = clip_per_sample(base[::2].copy(), 0.8)
    h = base.copy()
    k = expected.shape[0]
    clip_per_sample(h[::2], 0.8, out=h[:k])
    np.testing.assert_array_equal(h[:k], expected)
    # interleaved: grads the even rows, out the odd rows (no overlap at all)
    h = base[: 2 * (rows // 2)].copy()
    expected = clip_per_sample(h[::2].copy(), 0.8)
    clip_per_sample(h[::2], 0.8, out=h[1::2])
    np.testing.assert_array_equal(h[1::2], expected)


@pytest.mark.parametrize("dtype", DTYPES)
def test_out_non_contiguous(dtype):
    g = _clip_data(dtype, shape=(10, 4, 6), seed=11)
    expected = clip_per_sample(g, 1.0)
    outs = {
        "strided": np.zeros((10, 4, 12), dtype=dtype)[:, :, ::2],
        "fortran": np.asfortranarray(np.zeros((10, 4, 6), dtype=dtype)),
        "reversed": np.zeros((10, 4, 6), dtype=dtype)[::-1],
        "rows_sliced": np.zeros((20, 4, 6), dtype=dtype)[::2],
    }
    for name, out in outs.items():
        res = clip_per_sample(g, 1.0, out=out)
        assert res is out, name
        np.testing.assert_array_equal(out, expected, err_msg=name)
    sums = clip_and_sum(g, 1.0)
    for o in (
        np.full((4, 12), np.nan, dtype=dtype)[:, ::2],
        np.asfortranarray(np.full((4, 6), np.nan, dtype=dtype)),
        np.full((4, 6), np.nan, dtype=dtype),
    ):
        res = clip_and_sum(g, 1.0, out=o)
        assert res is o
        np.testing.assert_array_equal(o, sums)


def test_clip_and_sum_out_list_and_norms():
    a = _clip_data(np.float32, shape=(15, 7), seed=12)
    b = _clip_data(np.float32, shape=(15, 2, 3), seed=13)
    exp, en = clip_and_sum([a, b], [1.0, 0.5], return_norms=True)
    oa, ob = np.full(7, np.nan, np.float32), np.full((2, 3), np.nan, np.float32)
    res, n = clip_and_sum([a, b], [1.0, 0.5], out=[oa, ob], return_norms=True)
    assert res[0] is oa and res[1] is ob and n.shape == (15, 2)
    np.testing.assert_array_equal(oa, exp[0])
    np.testing.assert_array_equal(ob, exp[1])
    np.testing.assert_array_equal(n, en)


def test_out_errors():
    g = np.ones((4, 3))
    ro = np.empty((4, 3))
    ro.flags.writeable = False
    cases = [
        (np.empty((4, 4)), ValueError, "out must have shape"),
        (np.empty((3, 4)), ValueError, "out must have shape"),
        (np.empty((4, 3), np.float32), TypeError, "out must have dtype float64"),
        (ro, ValueError, "out must be writeable"),
        (np.broadcast_to(np.empty(3), (4, 3)), ValueError, "out must be writeable"),
        ([np.empty((4, 3))], TypeError, "out must be an array"),
    ]
    for out, exc, match in cases:
        with pytest.raises(exc, match=match):
            clip_per_sample(g, 1.0, out=out)
    with pytest.raises(ValueError, match="out must have shape"):
        clip_and_sum(g, 1.0, out=np.empty((4, 3)))
    with pytest.raises(TypeError, match="out must have dtype"):
        clip_and_sum(g, 1.0, out=np.empty(3, np.float32))
    ro3 = np.empty(3)
    ro3.flags.writeable = False
    with pytest.raises(ValueError, match="out must be writeable"):
        clip_and_sum(g, 1.0, out=ro3)
    # lists
    layers = [np.ones((4, 3)), np.ones((4, 2))]
    with pytest.raises(TypeError, match="out must be a list of 2 arrays"):
        clip_per_sample(layers, 1.0, out=np.empty((4, 3)))
    with pytest.raises(TypeError, match="out must be a list of 2 arrays"):
        clip_per_sample(layers, 1.0, out=[np.empty((4, 3))])
    with pytest.raises(ValueError, match=r"out\[1\] must have shape"):
        clip_per_sample(layers, 1.0, out=[np.empty((4, 3)), np.empty((4, 3))])
    with pytest.raises(TypeError, match=r"out\[0\] must have dtype"):
        clip_and_sum(layers, 1.0, out=[np.empty(3, np.float32), np.empty(2)])
    # an error in out= leaves an in-place target untouched
    h = np.full((4, 3), 10.0)
    with pytest.raises(ValueError):
        clip_per_sample([h, np.ones((4, 2))], 1.0, out=[h, np.empty((4, 3))])
    np.testing.assert_array_equal(h, np.full((4, 3), 10.0))


@pytest.mark.parametrize("max_norm", [1.0, [1.0, 2.0]], ids=["flat", "per_layer"])
def test_out_aliasing_another_layer(max_norm):
    rng = np.random.default_rng(14)
    a = rng.standard_normal((6, 5)) * 2
    b = rng.standard_normal((6, 5)) * 3
    ea, eb = clip_per_sample([a.copy(), b.copy()], max_norm)
    x, y = a.copy(), b.copy()
    clip_per_sample([x, y], max_norm, out=[y, x])  # clip(a) into b's storage and vice versa
    np.testing.assert_array_equal(y, ea)
    np.testing.assert_array_equal(x, eb)


# --- 5. non-finite values ----------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nonfinite_raises_and_leaves_in_place_input_unchanged(dtype, bad):
    g = _clip_data(dtype, shape=(8, 10), seed=15)
    g[3, 7] = bad
    for f in (clip_per_sample, clip_and_sum):
        with pytest.raises(ValueError, match="row 3 holds NaN or inf"):
            f(g, 1.0)
    with pytest.raises(ValueError, match="row 3 holds NaN or inf"):
        dp_aggregate(g, 1.0, 1.0, rng=0)
    with pytest.raises(ValueError, match="row 3"):
        clip_per_sample(g, 1.0, out=np.empty_like(g))
    before = g.copy()
    with pytest.raises(ValueError, match="row 3"):
        clip_per_sample(g, 1.0, out=g)
    np.testing.assert_array_equal(g, before)
    # norms report NaN, not an error
    n = per_sample_norms(g)
    assert np.isnan(n[3]) and np.isfinite(np.delete(n, 3)).all()


def test_nonfinite_in_place_large_unchanged_and_first_row_named():
    g = _clip_data(np.float32, shape=(300, 5000), seed=16)
    g[250, 4999] = np.nan
    g[270, 0] = np.inf
    before = g.copy()
    for nt in (1, 2):
        with ppml_fast.num_threads(nt), pytest.raises(ValueError, match="row 250 holds"):
            clip_per_sample(g, 0.5, out=g)
        np.testing.assert_array_equal(g, before)
        with ppml_fast.num_threads(nt), pytest.raises(ValueError, match="row 250 holds"):
            clip_and_sum(g, 0.5)
    # the reversed view: the first bad row is then row 29
    with pytest.raises(ValueError, match="row 29 holds"):
        clip_per_sample(g[::-1], 0.5, out=g[::-1])
    np.testing.assert_array_equal(g, before)


@pytest.mark.parametrize("dtype", DTYPES)
def test_nonfinite_error_leaves_a_separate_out_untouched(dtype):
    g = _clip_data(dtype, shape=(300, 5000), seed=28)
    g[123, 17] = np.nan
    out = np.full_like(g, 7.0)
    with pytest.raises(ValueError, match="row 123 holds"):
        clip_per_sample(g, 0.5, out=out)
    assert np.all(out == 7.0)
    a, b = g[:, :1000], g[:, 1000:].reshape(300, 40, 100)
    outs = [np.full_like(a, 7.0), np.full(b.shape, 7.0, dtype=dtype)]
    with pytest.raises(ValueError, match="row 123 holds"):
        clip_per_sample([a, b], 0.5, out=outs)
    assert all(np.all(o == 7.0) for o in outs)


def test_nonfinite_error_per_layer_leaves_a_separate_out_untouched():
    rng = np.random.default_rng(29)
    a, b = rng.standard_normal((5, 4)), rng.standard_normal((5, 3))
    b[2, 1] = np.nan
    oa, ob = np.full_like(a, 7.0), np.full_like(b, 7.0)
    with pytest.raises(ValueError, match="row 2 of layer 1 holds"):
        clip_per_sample([a, b], [1.0, 2.0], out=[oa, ob])
    assert np.all(ob == 7.0)
    assert np.all(oa == 7.0)


def test_nonfinite_in_layers_names_the_layer():
    a = _clip_data(np.float64, shape=(50, 30), seed=17)
    b = _clip_data(np.float64, shape=(50, 4, 10), seed=18)
    b[20, 1, 3] = np.inf
    a0, b0 = a.copy(), b.copy()
    with pytest.raises(ValueError, match="row 20 of layer 1 holds"):
        clip_per_sample([a, b], [1.0, 2.0], out=[a, b])
    with pytest.raises(ValueError, match="row 20 of layer 1 holds"):
        clip_and_sum([a, b], [1.0, 2.0])
    with pytest.raises(ValueError, match="row 20 holds"):
        clip_per_sample([a, b], 1.0, out=[a, b])
    np.testing.assert_array_equal(a, a0)
    np.testing.assert_array_equal(b, b0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_nonfinite_zero_drops_rows(dtype):
    g = _clip_data(dtype, shape=(12, 3, 7), seed=19)
    g[2, 0, 0] = np.nan
    g[9, 2, 6] = -np.inf
    keep = np.array([i not in (2, 9) for i in range(12)])
    clean = g[keep]
    out, n = clip_per_sample(g, 1.0, return_norms=True, nonfinite="zero")
    assert not out[2].any() and not out[9].any()
    assert np.isnan(n[[2, 9]]).all() and np.isfinite(n[keep]).all()
    exp, en = clip_per_sample(clean, 1.0, return_norms=True)
    np.testing.assert_array_equal(out[keep], exp)
    np.testing.assert_array_equal(n[keep], en)
    total, tn = clip_and_sum(g, 1.0, return_norms=True, nonfinite="zero")
    np.testing.assert_array_equal(total, clip_and_sum(clean, 1.0))
    np.testing.assert_array_equal(tn, n)
    res = dp_aggregate(g, 1.0, 0.0, nonfinite="zero")
    np.testing.assert_array_equal(res.nonfinite_rows, [2, 9])
    assert res.batch_size == 12 and res.denominator == 12.0
    np.testing.assert_array_equal(res.gradient, clip_and_sum(clean, 1.0) / dtype(12))
    np.testing.assert_array_equal(res.norms, n)
    # in place
    h = g.copy()
    assert clip_per_sample(h, 1.0, out=h, nonfinite="zero") is h
    np.testing.assert_array_equal(h, out)
    # clean data reports no dropped rows
    assert dp_aggregate(clean, 1.0, 0.0, nonfinite="zero").nonfinite_rows.size == 0
    assert dp_aggregate(clean, 1.0, 0.0).nonfinite_rows.size == 0


def test_nonfinite_zero_flat_layers_drops_the_whole_example():
    a = _clip_data(np.float64, shape=(6, 4), seed=20)
    b = _clip_data(np.float64, shape=(6, 3), seed=21)
    b[4, 1] = np.nan
    (ca, cb), n = clip_per_sample([a, b], 1.0, return_norms=True, nonfinite="zero")
    assert not ca[4].any() and not cb[4].any() and np.isnan(n[4])
    sa, sb = clip_and_sum([a, b], 1.0, nonfinite="zero")
    ea, eb = clip_and_sum([np.delete(a, 4, 0), np.delete(b, 4, 0)], 1.0)
    np.testing.assert_array_equal(sa, ea)
    np.testing.assert_array_equal(sb, eb)


def test_nonfinite_zero_per_layer_drops_the_whole_example():
    a = _clip_data(np.float64, shape=(6, 4), seed=22)
    b = _clip_data(np.float64, shape=(6, 3), seed=23)
    b[4, 1] = np.nan
    res = dp_aggregate([a, b], [1.0, 2.0], 0.0, reduction="sum", nonfinite="zero")
    np.testing.assert_array_equal(res.nonfinite_rows, [4])
    ea, eb = clip_and_sum([np.delete(a, 4, 0), np.delete(b, 4, 0)], [1.0, 2.0])
    np.testing.assert_array_equal(res.gradient[1], eb)
    np.testing.assert_array_equal(res.gradient[0], ea)


SCALED_OK = [1e200, 1e300, 1e154, 1e-140, 1e-150, 1e-160, 1e30, 1e-30]
SCALED_BUG = [1e-170, 1e-200, 1e-300, 1e-310]


def _check_scaled(scale, n):
    rng = np.random.default_rng([FRESH, n])
    x = rng.standard_normal((3, n))
    x = np.sign(x) * np.maximum(np.abs(x), 0.25)  # no element whose square alone underflows
    g = x * scale
    unit = g / np.max(np.abs(g), axis=1, keepdims=True)
    true = np.max(np.abs(g), axis=1) * np.linalg.norm(unit, axis=1)
    msg = f"scale={scale} n={n} seed={FRESH}"
    np.testing.assert_allclose(per_sample_norms(g), true, rtol=1e-12, err_msg=msg)
    c = float(true[0] / 2)  # clip row 0 to half its norm; rows 1, 2 compared as they come
    out, norms = clip_per_sample(g, c, return_norms=True)
    np.testing.assert_allclose(norms, true, rtol=1e-12, err_msg=msg)
    expected = np.where((true > c)[:, None], unit * (c / np.linalg.norm(unit, axis=1))[:, None], g)
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=0, err_msg=msg)
    np.testing.assert_allclose(
        clip_and_sum(g, c), expected.sum(axis=0), rtol=1e-9, atol=1e-12 * c, err_msg=msg
    )
    # a threshold above every norm leaves the rows unchanged
    np.testing.assert_array_equal(clip_per_sample(g, float(true.max() * 4)), g)


@pytest.mark.parametrize("n", [2, 1000, 20_000])
@pytest.mark.parametrize("scale", SCALED_OK)
def test_float64_overflowing_and_underflowing_squares(scale, n):
    _check_scaled(scale, n)


@pytest.mark.parametrize("n", [2, 1000])
@pytest.mark.parametrize("scale", SCALED_BUG)
def test_float64_fully_underflowing_squares(scale, n):
    _check_scaled(scale, n)


def test_float64_row_with_norm_beyond_dbl_max_is_clipped_not_zeroed():
    g = np.array([[1.5e308, 1.5e308], [3.0, 4.0]])
    out = clip_per_sample(g, 1.0)
    np.testing.assert_allclose(out[0], [math.sqrt(0.5)] * 2, rtol=1e-12)
    np.testing.assert_allclose(out[1], [0.6, 0.8], rtol=1e-12)


def test_float32_row_with_norm_beyond_float32_max():
    """Norms are float64 for float32 data too: a float32 row whose norm exceeds float32's
    range has a finite norm and the right scale (no overflow warning)."""
    g = np.array([[3e38, 3e38], [1.0, 0.0]], dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out, norms = clip_per_sample(g, 2.0, return_norms=True)
        total = clip_and_sum(g, 2.0)
        psn = per_sample_norms(g)
    np.testing.assert_allclose(norms, [math.sqrt(2.0) * float(np.float32(3e38)), 1.0], rtol=1e-6)
    np.testing.assert_array_equal(psn, norms)
    np.testing.assert_allclose(out, [[math.sqrt(2.0)] * 2, [1.0, 0.0]], rtol=1e-6)
    np.testing.assert_allclose(total, [math.sqrt(2.0) + 1, math.sqrt(2.0)], rtol=1e-6)


def test_float32_tiny_values_have_exact_norms():
    g = np.array([[3e-40, 4e-40], [3e-30, 4e-30]], dtype=np.float32)
    n = per_sample_norms(g)
    np.testing.assert_allclose(n, [5e-40, 5e-30], rtol=1e-5)
    out = clip_per_sample(g, 1e-41)
    np.testing.assert_allclose(out[0].astype(np.float64), [6e-42, 8e-42], rtol=2e-2)


def test_per_layer_norms_of_one_layer_have_shape_b_by_1():
    g = np.ones((5, 3)) * np.arange(1, 6)[:, None]  # row i has norm (i + 1)·√3
    want = (np.arange(1, 6) * math.sqrt(3.0))[:, None]
    clipped, n = clip_per_sample([g], [1.0], return_norms=True)
    assert n.shape == (5, 1)
    np.testing.assert_allclose(n, want, rtol=1e-15)
    np.testing.assert_allclose(clipped[0], np.full((5, 3), 1 / math.sqrt(3.0)), rtol=1e-15)
    assert per_sample_norms([g], per_layer=True).shape == (5, 1)
    np.testing.assert_array_equal(per_sample_norms([g], per_layer=True), n)
    res = dp_aggregate([g], [1.0], 0.0)
    assert res.norms.shape == (5, 1)
    np.testing.assert_array_equal(res.norms, n)
    np.testing.assert_allclose(res.gradient[0], np.full(3, 1 / math.sqrt(3.0)), rtol=1e-15)


# --- 6. validation -----------------------------------------------------------------------


def _dp(g, c, **kw):
    return dp_aggregate(g, c, 1.0, rng=0, **kw)


FUNCS = {"clip_per_sample": clip_per_sample, "clip_and_sum": clip_and_sum, "dp_aggregate": _dp}
BAD_MAX_NORMS = [
    (0.0, ValueError, "max_norm must be > 0"),
    (-1.0, ValueError, "max_norm must be > 0"),
    (np.float32(-0.5), ValueError, "max_norm must be > 0"),
    (math.nan, ValueError, "max_norm must be finite"),
    (math.inf, ValueError, "max_norm must be finite"),
    (True, TypeError, "max_norm must be a real number"),
    ("1.0", TypeError, "max_norm must be a real number"),
    (None, TypeError, "max_norm must be a real number"),
    (1j, TypeError, "max_norm must be a real number"),
    ([1.0], ValueError, "max_norm must be one number when grads is a single array"),
    (np.array([1.0, 2.0]), ValueError, "max_norm must be one number"),
]


@pytest.mark.parametrize("fname", FUNCS)
@pytest.mark.parametrize("max_norm,exc,match", BAD_MAX_NORMS)
def test_bad_max_norm(fname, max_norm, exc, match):
    g = np.full((3, 4), 2.0)
    with pytest.raises(exc, match=match):
        FUNCS[fname](g, max_norm)
    with pytest.raises(exc, match=match):
        FUNCS[fname](g, max_norm, nonfinite="zero")
    if fname == "clip_per_sample":
        with pytest.raises(exc, match=match):
            clip_per_sample(g, max_norm, out=g)
        np.testing.assert_array_equal(g, np.full((3, 4), 2.0))  # nothing written


@pytest.mark.parametrize("fname", FUNCS)
def test_bad_layer_arguments(fname):
    f = FUNCS[fname]
    a, b = np.ones((4, 3)), np.ones((4, 2, 2))
    with pytest.raises(ValueError, match="max_norm has 1 thresholds but grads has 2 layers"):
        f([a, b], [1.0])
    with pytest.raises(ValueError, match="max_norm has 3 thresholds"):
        f([a, b], (1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match=r"max_norm\[1\] must be > 0"):
        f([a, b], [1.0, 0.0])
    with pytest.raises(ValueError, match=r"max_norm\[0\] must be finite"):
        f([a, b], [math.nan, 1.0])
    with pytest.raises(TypeError, match=r"max_norm\[1\] must be a real number"):
        f([a, b], [1.0, "2"])
    with pytest.raises(ValueError, match=r"grads\[1\] has batch size 5, grads\[0\] has 4"):
        f([a, np.ones((5, 2))], 1.0)
    with pytest.raises(ValueError, match=r"grads\[2\] has batch size 3"):
        f([a, b, np.ones((3,))], [1.0, 1.0, 1.0])
    with pytest.raises(TypeError, match=r"grads\[1\] has dtype float32, grads\[0\] has float64"):
        f([a, b.astype(np.float32)], 1.0)
    with pytest.raises(TypeError, match=r"grads\[1\] must have dtype float32 or float64"):
        f([a, np.ones((4, 2), dtype=np.int64)], 1.0)
    with pytest.raises(ValueError, match="at least one array"):
        f([], 1.0)
    with pytest.raises(ValueError, match="at least one array"):
        f((), 1.0)
    with pytest.raises(ValueError, match=r"grads\[0\] must have at least 1 dimension"):
        f([np.float64(1.0)], 1.0)


@pytest.mark.parametrize("fname", FUNCS)
@pytest.mark.parametrize(
    "grads,exc,match",
    [
        (np.ones((3, 2), dtype=np.int64), TypeError, "grads must have dtype float32 or float64"),
        (np.ones((3, 2), dtype=np.int32), TypeError, "grads must have dtype"),
        (np.ones((3, 2), dtype=bool), TypeError, "grads must have dtype"),
        (np.ones((3, 2), dtype=np.float16), TypeError, "got float16"),
        (np.ones((3, 2), dtype=np.complex128), TypeError, "grads must have dtype"),
        (np.array([["a", "b"]]), TypeError, "grads must have dtype"),
        ([[1, 2], [3, 4]], TypeError, "grads must have dtype"),  # nested ints are one layer each
        (np.array(3.0), ValueError, "grads must have at least 1 dimension"),
        (2.5, ValueError, "grads must have at least 1 dimension"),
    ],
)
def test_bad_grads(fname, grads, exc, match):
    if isinstance(grads, list):
        match = r"grads\[0\] must have dtype"
    with pytest.raises(exc, match=match):
        FUNCS[fname](grads, 1.0)


@pytest.mark.parametrize("fname", FUNCS)
@pytest.mark.parametrize("value", ["bogus", None, "Zero", True])
def test_bad_nonfinite(fname, value):
    g = np.ones((3, 2))
    with pytest.raises(ValueError, match="nonfinite must be 'raise' or 'zero'"):
        FUNCS[fname](g, 1.0, nonfinite=value)


def test_per_sample_norms_bad_input():
    with pytest.raises(TypeError, match="grads must have dtype"):
        per_sample_norms(np.ones((3, 2), dtype=np.int64))
    with pytest.raises(ValueError, match="at least one array"):
        per_sample_norms([])
    with pytest.raises(ValueError, match=r"grads\[1\] has batch size"):
        per_sample_norms([np.ones((3, 2)), np.ones((2, 2))])


@pytest.mark.parametrize(
    "kw,exc,match",
    [
        ({"noise_multiplier": -0.1}, ValueError, "noise_multiplier must be >= 0"),
        ({"noise_multiplier": math.nan}, ValueError, "noise_multiplier must be finite"),
        ({"noise_multiplier": math.inf}, ValueError, "noise_multiplier must be finite"),
        ({"noise_multiplier": True}, TypeError, "noise_multiplier must be a real number"),
        ({"noise_multiplier": "1"}, TypeError, "noise_multiplier must be a real number"),
        ({"reduction": "avg"}, ValueError, "reduction must be 'mean' or 'sum'"),
        ({"reduction": None}, ValueError, "reduction must be 'mean' or 'sum'"),
        ({"expected_batch_size": 0}, ValueError, "expected_batch_size must be >= 1"),
        ({"expected_batch_size": -3}, ValueError, "expected_batch_size must be >= 1"),
        ({"expected_batch_size": 2.5}, TypeError, "expected_batch_size must be an int"),
        ({"expected_batch_size": True}, TypeError, "expected_batch_size must be an int"),
        ({"sample_rate": 0.0}, ValueError, r"sample_rate must be in \(0, 1\]"),
        ({"sample_rate": 1.5}, ValueError, r"sample_rate must be in \(0, 1\]"),
        ({"sample_rate": -0.1}, ValueError, r"sample_rate must be in \(0, 1\]"),
        ({"sample_rate": math.nan}, ValueError, "sample_rate must be finite"),
        ({"sample_rate": "0.1"}, TypeError, "sample_rate must be a real number"),
    ],
)
def test_dp_aggregate_bad_arguments(kw, exc, match):
    args = {"noise_multiplier": 1.0, "rng": 0, **kw}
    sigma = args.pop("noise_multiplier")
    with pytest.raises(exc, match=match):
        dp_aggregate(np.ones((4, 3)), 1.0, sigma, **args)


def test_dp_aggregate_noise_too_large_for_dtype():
    with pytest.raises(ValueError, match="too large for float32"):
        dp_aggregate(np.ones((4, 3), np.float32), 1e30, 1e9, rng=0)
    res = dp_aggregate(np.ones((4, 3)), 1e30, 1e9, rng=0)  # fine in float64
    assert np.isfinite(res.gradient).all()
    assert dp_aggregate(np.ones((2, 3)), 1.0, 1.0, sample_rate=1.0, rng=0).sample_rate == 1.0


# --- 7. dp_aggregate ---------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_dp_aggregate_seeded_reproducibility(dtype):
    g = _clip_data(dtype, shape=(30, 2, 200), seed=24)
    a = dp_aggregate(g, 1.0, 1.2, rng=123)
    b = dp_aggregate(g, 1.0, 1.2, rng=123)
    c = dp_aggregate(g, 1.0, 1.2, rng=124)
    assert isinstance(a, DPAggregate) and isinstance(a, tuple)
    assert a.gradient.shape == (2, 200) and a.gradient.dtype == dtype
    np.testing.assert_array_equal(a.gradient, b.gradient)
    assert not np.array_equal(a.gradient, c.gradient)
    gen = default_rng(123)
    first = dp_aggregate(g, 1.0, 1.2, rng=gen).gradient
    np.testing.assert_array_equal(first, a.gradient)  # a Generator seeded alike: same noise
    assert not np.array_equal(dp_aggregate(g, 1.0, 1.2, rng=gen).gradient, first)  # advances
    # the secure stream: two calls differ
    assert not np.array_equal(
        dp_aggregate(g, 1.0, 1.2).gradient, dp_aggregate(g, 1.0, 1.2).gradient
    )


@pytest.mark.parametrize("dtype", DTYPES)
def test_dp_aggregate_noise_is_the_seeded_gaussian(dtype):
    g = _clip_data(dtype, shape=(25, 3, 40), seed=25)
    c, sigma = 0.7, 1.3
    total = clip_and_sum(g, c)
    z = noise.gaussian(sigma * c, (3, 40), rng=77)  # float64 draw from the same stream
    expected_sum = (total.astype(np.float64) + z).astype(dtype)  # loc + σC·Z, rounded once
    res = dp_aggregate(g, c, sigma, rng=77, reduction="sum")
    np.testing.assert_array_equal(res.gradient, expected_sum)
    res = dp_aggregate(g, c, sigma, rng=77, expected_batch_size=40)
    np.testing.assert_array_equal(res.gradient, expected_sum / dtype(40))
    assert res.noise_std == sigma * c and res.max_norm == c and res.noise_multiplier == sigma
    # layers draw one after the other from the same stream, std σ·sqrt(Σ C_l²)
    layers = [g[:, 0], g[:, 1:]]
    res = dp_aggregate(layers, [0.5, 2.0], sigma, rng=78, reduction="sum")
    std = sigma * math.sqrt(0.25 + 4.0)
    assert res.noise_std == pytest.approx(std, rel=1e-15)
    assert res.max_norm == pytest.approx(math.sqrt(4.25), rel=1e-15)
    sums = clip_and_sum(layers, [0.5, 2.0])
    gen = default_rng(78)
    for i, s in enumerate(sums):
        zi = noise.gaussian(res.noise_std, s.shape, rng=gen)
        np.testing.assert_array_equal(res.gradient[i], (s.astype(np.float64) + zi).astype(dtype))


def test_dp_aggregate_layers_get_independent_noise():
    z = np.zeros((3, 500))
    res = dp_aggregate([z, z], 1.0, 1.0, rng=3, reduction="sum")
    assert not np.array_equal(res.gradient[0], res.gradient[1])
    assert abs(np.corrcoef(res.gradient[0], res.gradient[1])[0, 1]) < 0.25


@pytest.mark.parametrize("dtype", DTYPES)
def test_dp_aggregate_reduction_and_denominator(dtype):
    g = _clip_data(dtype, shape=(12, 9), seed=26)
    total, norms = clip_and_sum(g, 0.9, return_norms=True)
    cases = [
        ({"reduction": "sum"}, 1.0),
        ({}, 12.0),
        ({"reduction": "mean"}, 12.0),
        ({"expected_batch_size": 10}, 10.0),
        ({"expected_batch_size": np.int64(16), "reduction": "mean"}, 16.0),
        ({"expected_batch_size": 16, "reduction": "sum"}, 1.0),
    ]
    for kw, den in cases:
        res = dp_aggregate(g, 0.9, 0.0, **kw)
        assert res.denominator == den, kw
        assert res.batch_size == 12 and res.noise_std == 0.0 and res.noise_multiplier == 0.0
        expected = total if den == 1.0 else total / dtype(den)
        np.testing.assert_array_equal(res.gradient, expected, err_msg=str(kw))
        np.testing.assert_array_equal(res.norms, norms)
        assert res.nonfinite_rows.size == 0 and res.sample_rate is None
    # σ = 0 per layer: exactly the clipped sums over the denominator
    a, b = g[:, :4], g[:, 4:].reshape(12, 5, 1)
    res = dp_aggregate([a, b], [0.3, 0.6], 0.0, expected_batch_size=7)
    sa, sb = clip_and_sum([a, b], [0.3, 0.6])
    np.testing.assert_array_equal(res.gradient[0], sa / dtype(7))
    np.testing.assert_array_equal(res.gradient[1], sb / dtype(7))
    assert res.gradient[1].shape == (5, 1)


def test_dp_aggregate_accounting():
    g = _clip_data(np.float64, shape=(16, 5), seed=27)
    res = dp_aggregate(g, 1.0, 1.1, rng=1, sample_rate=0.01, expected_batch_size=16)
    assert res.sample_rate == 0.01
    assert res.accounting == {"noise_multiplier": 1.1, "sample_rate": 0.01}
    acc = RDPAccountant()
    acc.step(**res.accounting)
    acc.step(**dp_aggregate(g, 1.0, 1.1, rng=2, sample_rate=0.01).accounting)
    assert acc.history == [(1.1, 0.01, 2)]
    eps = acc.get_epsilon(delta=1e-5)
    assert 0 < eps < math.inf
    no_q = dp_aggregate(g, 1.0, 1.1, rng=1)
    with pytest.raises(ValueError, match="sample_rate was not given"):
        _ = no_q.accounting
    # per-layer: σ is what the accountant records (the noise std is σ·sqrt(Σ C²))
    res = dp_aggregate([g[:, :2], g[:, 2:]], [1.0, 2.0], 0.8, rng=1, sample_rate=0.5)
    assert res.accounting == {"noise_multiplier": 0.8, "sample_rate": 0.5}


def test_seeded_noise_warns_and_secure_noise_does_not():
    g = np.ones((3, 4))
    _reset_dp_warning()
    with pytest.warns(ppml_fast.InsecureRandomnessWarning, match="seed"):
        dp_aggregate(g, 1.0, 1.0, rng=1)
    _reset_dp_warning()
    with pytest.warns(ppml_fast.InsecureRandomnessWarning):
        ac = AdaptiveClipping(1.0, expected_batch_size=10)
        ac.update(np.ones(3), rng=np.random.default_rng(2))
    _reset_dp_warning()
    with warnings.catch_warnings():
        warnings.simplefilter("error", ppml_fast.InsecureRandomnessWarning)
        dp_aggregate(g, 1.0, 1.0)
        AdaptiveClipping(1.0, expected_batch_size=10).aggregate(g, 0.5)
        clip_per_sample(g, 1.0)  # no noise, no stream
    _reset_dp_warning()


THREAD_CASES = {
    "64x300000_f32": ((64, 300_000), np.float32, 1.0),
    "2000x100_f64": ((2000, 100), np.float64, 0.5),
    "8x3x70000_f64": ((8, 3, 70_000), np.float64, 2.0),
}


@pytest.fixture(scope="module")
def thread_data():
    out = {}
    for name, (shape, dtype, c) in THREAD_CASES.items():
        rng = np.random.default_rng([FRESH, len(name)])
        n = math.prod(shape[1:])
        scale = (c * 10 ** rng.uniform(-1, 1, shape[0]) / math.sqrt(n)).astype(dtype)
        x = rng.standard_normal(shape, dtype=dtype) * scale.reshape((-1,) + (1,) * (len(shape) - 1))
        out[name] = (x, c)
    return out


@pytest.mark.parametrize("name", THREAD_CASES)
def test_thread_count_does_not_change_results(thread_data, name):
    g, c = thread_data[name]
    layers = [g[:, : g.shape[1] // 3], g[:, g.shape[1] // 3 :]]
    first = None
    for nt in (1, 2, 3):
        with ppml_fast.num_threads(nt):
            assert ppml_fast.get_num_threads() == nt
            h = g.copy()
            clip_per_sample(h, c, out=h)
            results = [
                *clip_per_sample(g, c, return_norms=True),
                h,
                clip_and_sum(g, c),
                dp_aggregate(g, c, 1.1, rng=9).gradient,
                per_sample_norms(g),
            ]
            if g.size < 10**7:  # layers too, where the data are smaller
                results += [
                    *clip_per_sample(layers, [c, c / 2]),
                    *clip_and_sum(layers, [c, c / 2]),
                    *clip_and_sum(layers, c),
                    per_sample_norms(layers, per_layer=True),
                    dp_aggregate(layers, [c, c / 2], 0.7, rng=10).gradient[1],
                ]
        if first is None:
            first = results
            continue
        for k, (x, y) in enumerate(zip(first, results, strict=True)):
            assert x.dtype == y.dtype and x.shape == y.shape
            assert np.array_equal(x, y), f"{name} item {k} threads={nt} seed={FRESH}"
        del results
    np.testing.assert_allclose(
        first[1], ref.per_sample_norms(g), rtol=RTOL[g.dtype], err_msg=f"seed={FRESH}"
    )


# --- 8. statistics of the noise (slow) ---------------------------------------------------

ALPHA = 1e-6  # false-alarm rate per assertion
Z_CRIT = float(st.norm.isf(ALPHA / 2))


def _check_gaussian(x, std, label):
    """Mean 0, variance std², normal shape: four assertions, each at level ALPHA.

    - mean: sqrt(n)·x̄/std ~ N(0, 1), two-sided at ALPHA;
    - variance: Σx²/std² ~ χ²(n) (the mean is known to be 0), two-sided at ALPHA;
    - excess kurtosis ~ N(0, 24/n) for large n, two-sided at ALPHA;
    - Kolmogorov-Smirnov against N(0, std²): p-value > ALPHA.
    """
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    n = x.size
    zm = math.sqrt(n) * x.mean() / std
    assert abs(zm) < Z_CRIT, f"{label}: mean z={zm:.3f} seed={FRESH}"
    chi = float(np.sum((x / std) ** 2))
    lo, hi = st.chi2.ppf(ALPHA / 2, n), st.chi2.isf(ALPHA / 2, n)
    assert lo < chi < hi, (
        f"{label}: var ratio={chi / n:.5f} bounds=({lo / n:.5f}, {hi / n:.5f}) seed={FRESH}"
    )
    k = float(st.kurtosis(x))
    assert abs(k) < Z_CRIT * math.sqrt(24.0 / n), f"{label}: kurtosis={k:.4f} seed={FRESH}"
    p = st.kstest(x / std, "norm").pvalue
    assert p > ALPHA, f"{label}: KS p={p:.2e} seed={FRESH}"


@pytest.mark.slow
@pytest.mark.parametrize("seed", [2024, FRESH])
@pytest.mark.parametrize("dtype", DTYPES)
def test_noise_std_flat(seed, dtype):
    """Pure noise (all-zero grads, D = 10^6): N(0, (σC)²) per coordinate, then / m.

    8 assertions per (seed, dtype) at 1e-6 each (_check_gaussian twice); the fixed seed is
    deterministic, the fresh one gives a false alarm with probability < 1e-5 per run.
    """
    g = np.zeros((3, 1000, 1000), dtype=dtype)
    c, sigma = 0.7, 1.3
    res = dp_aggregate(g, c, sigma, rng=seed, reduction="sum")
    assert res.noise_std == pytest.approx(sigma * c, rel=1e-15)
    _check_gaussian(res.gradient, sigma * c, f"flat sum {np.dtype(dtype)}")
    res = dp_aggregate(g, c, sigma, rng=seed + 1, expected_batch_size=64)
    _check_gaussian(res.gradient, sigma * c / 64, f"flat mean/64 {np.dtype(dtype)}")


@pytest.mark.slow
@pytest.mark.parametrize("seed", [2025, FRESH])
def test_noise_std_per_layer(seed):
    """Per-layer thresholds C_l: every coordinate gets N(0, σ²·ΣC_l²), independent across
    layers; the data are not zero here, so the noise is measured around clip_and_sum.

    4 assertions (_check_gaussian) + one on the correlation of two layers (|r|·sqrt(n)
    ~ N(0, 1)) + 4 on each of two layers alone, each at 1e-6.
    """
    rng = np.random.default_rng([seed, 1])
    shapes = [(500, 1000), (300_000,), (200_000,)]
    cs = [0.5, 1.5, 3.0]
    sigma = 0.8
    layers = [rng.standard_normal((4, *s)) * 0.01 for s in shapes]
    res = dp_aggregate(layers, cs, sigma, rng=seed, reduction="sum")
    std = sigma * math.sqrt(sum(c * c for c in cs))
    assert res.noise_std == pytest.approx(std, rel=1e-15)
    sums = clip_and_sum(layers, cs)
    z = [r - s for r, s in zip(res.gradient, sums, strict=True)]
    _check_gaussian(np.concatenate([x.reshape(-1) for x in z]), std, "per-layer pooled")
    _check_gaussian(z[1], std, "per-layer layer 1")
    _check_gaussian(z[2], std, "per-layer layer 2")
    r = float(np.corrcoef(z[1][:200_000], z[2])[0, 1])
    assert abs(r) * math.sqrt(200_000) < Z_CRIT, f"corr={r} seed={FRESH}"


# --- 9. torch ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


@pytest.mark.parametrize("tdtype", ["float32", "float64"])
def test_torch_tensors_match_numpy(torch, tdtype):
    dt = getattr(torch, tdtype)
    gen = torch.Generator().manual_seed(FRESH % 2**31)
    t = torch.randn(16, 3, 5, generator=gen, dtype=dt) * 2
    a = t.numpy().copy()
    out, n = clip_per_sample(t, 1.0, return_norms=True)
    eo, en = clip_per_sample(a, 1.0, return_norms=True)
    assert isinstance(out, np.ndarray) and out.dtype == a.dtype
    np.testing.assert_array_equal(out, eo)
    np.testing.assert_array_equal(n, en)
    np.testing.assert_array_equal(clip_and_sum(t, 1.0), clip_and_sum(a, 1.0))
    np.testing.assert_array_equal(per_sample_norms(t), per_sample_norms(a))
    np.testing.assert_array_equal(
        dp_aggregate(t, 1.0, 1.0, rng=4).gradient, dp_aggregate(a, 1.0, 1.0, rng=4).gradient
    )
    # a non-contiguous tensor
    tt = t.transpose(1, 2)
    np.testing.assert_array_equal(
        clip_per_sample(tt, 1.0), clip_per_sample(np.ascontiguousarray(a.transpose(0, 2, 1)), 1.0)
    )
    # a list of tensors, flat and per layer
    layers = [t[:, 0], t[:, 1:]]
    np_layers = [a[:, 0], a[:, 1:]]
    for max_norm in (1.0, [0.5, 1.0]):
        for x, y in zip(
            clip_per_sample(layers, max_norm), clip_per_sample(np_layers, max_norm), strict=True
        ):
            np.testing.assert_array_equal(x, y)
        for x, y in zip(
            clip_and_sum(layers, max_norm), clip_and_sum(np_layers, max_norm), strict=True
        ):
            np.testing.assert_array_equal(x, y)


def test_torch_out_and_in_place(torch):
    t = torch.randn(10, 7, generator=torch.Generator().manual_seed(5)) * 3
    expected = clip_per_sample(t.numpy().copy(), 1.0)
    o = torch.full_like(t, float("nan"))
    res = clip_per_sample(t, 1.0, out=o)
    np.testing.assert_array_equal(o.numpy(), expected)
    assert np.shares_memory(res, o.numpy())
    # in place on the tensor itself (np.asarray views it without a copy)
    h = t.clone()
    res = clip_per_sample(h, 1.0, out=h)
    np.testing.assert_array_equal(h.numpy(), expected)
    assert np.shares_memory(res, h.numpy())
    # clip_and_sum into a tensor, and a list of out tensors
    s = torch.full((7,), float("nan"))
    clip_and_sum(t, 1.0, out=s)
    np.testing.assert_array_equal(s.numpy(), clip_and_sum(t.numpy(), 1.0))
    la, lb = t[:, :3].clone(), t[:, 3:].clone()
    oa, ob = torch.empty_like(la), torch.empty_like(lb)
    clip_per_sample([la, lb], [1.0, 2.0], out=[oa, ob])
    ea, eb = clip_per_sample([la.numpy(), lb.numpy()], [1.0, 2.0])
    np.testing.assert_array_equal(oa.numpy(), ea)
    np.testing.assert_array_equal(ob.numpy(), eb)


def test_torch_errors(torch):
    with pytest.raises(TypeError, match=r"grads must be convertible by numpy\.asarray"):
        clip_per_sample(torch.randn(3, 4, requires_grad=True), 1.0)
    with pytest.raises(TypeError, match="convertible"):
        dp_aggregate(torch.randn(3, 4, requires_grad=True), 1.0, 1.0, rng=0)
    with pytest.raises(TypeError, match=r"grads\[1\] must be convertible"):
        clip_and_sum([torch.randn(3, 4), torch.randn(3, 2, requires_grad=True)], 1.0)
    with pytest.raises(TypeError, match="grads must have dtype float32 or float64"):
        clip_per_sample(torch.randn(3, 4, dtype=torch.float16), 1.0)
    with pytest.raises(TypeError):
        clip_per_sample(torch.randn(3, 4, dtype=torch.bfloat16), 1.0)
    with pytest.raises(TypeError, match="out must be convertible"):
        clip_per_sample(torch.randn(3, 4), 1.0, out=torch.empty(3, 4, requires_grad=True))
    with pytest.raises(TypeError, match="out must have dtype"):
        clip_per_sample(torch.randn(3, 4), 1.0, out=torch.empty(3, 4, dtype=torch.float64))


# --- 10. adaptive clipping ---------------------------------------------------------------


@pytest.mark.parametrize(
    "kw,exc,match",
    [
        ({"initial_norm": 0.0}, ValueError, "initial_norm must be > 0"),
        ({"initial_norm": -1.0}, ValueError, "initial_norm must be > 0"),
        ({"initial_norm": math.nan}, ValueError, "initial_norm must be finite"),
        ({"initial_norm": True}, TypeError, "initial_norm must be a real number"),
        ({"expected_batch_size": 0}, ValueError, "expected_batch_size must be >= 1"),
        ({"expected_batch_size": 10.0}, TypeError, "expected_batch_size must be an int"),
        ({"expected_batch_size": True}, TypeError, "expected_batch_size must be an int"),
        ({"target_quantile": 0.0}, ValueError, r"target_quantile must be in \(0, 1\)"),
        ({"target_quantile": 1.0}, ValueError, r"target_quantile must be in \(0, 1\)"),
        ({"target_quantile": -0.5}, ValueError, r"target_quantile must be in \(0, 1\)"),
        ({"learning_rate": 0.0}, ValueError, "learning_rate must be > 0"),
        ({"learning_rate": math.inf}, ValueError, "learning_rate must be finite"),
        ({"count_noise_std": 0.0}, ValueError, "count_noise_std must be > 0"),
        ({"count_noise_std": -2.0}, ValueError, "count_noise_std must be > 0"),
        ({"min_norm": 0.0}, ValueError, "min_norm must be > 0"),
        ({"max_norm": -1.0}, ValueError, "max_norm must be > 0"),
        ({"min_norm": 2.0, "max_norm": 1.0}, ValueError, "min_norm must be <= max_norm"),
        ({"min_norm": 2.0}, ValueError, r"initial_norm must be in \[min_norm, max_norm\]"),
        ({"max_norm": 0.5}, ValueError, r"initial_norm must be in \[min_norm, max_norm\]"),
    ],
)
def test_adaptive_bad_arguments(kw, exc, match):
    args = {"initial_norm": 1.0, "expected_batch_size": 100, **kw}
    init = args.pop("initial_norm")
    with pytest.raises(exc, match=match):
        AdaptiveClipping(init, **args)


def test_adaptive_defaults():
    ac = AdaptiveClipping(1.5, expected_batch_size=100)
    assert ac.clip_norm == 1.5 and ac.expected_batch_size == 100
    assert ac.target_quantile == 0.5 and ac.learning_rate == 0.2
    assert ac.count_noise_std == 5.0  # m / 20
    assert ac.min_norm == 0.0 and ac.max_norm == math.inf and ac.history == []
    ac = AdaptiveClipping(1.0, expected_batch_size=7, min_norm=1.0, max_norm=1.0)
    assert ac.clip_norm == 1.0 and ac.count_noise_std == 7 / 20


@pytest.mark.parametrize("sigma_b", [0.7, 5.0, 50.0])
@pytest.mark.parametrize("z", [0.3, 1.0, 1.39])
def test_gradient_noise_multiplier(z, sigma_b):
    ac = AdaptiveClipping(1.0, expected_batch_size=64, count_noise_std=sigma_b)
    got = ac.gradient_noise_multiplier(z)
    expected = (z**-2 - (2 * sigma_b) ** -2) ** -0.5
    assert got == pytest.approx(expected, rel=1e-14)
    assert got > z
    # composing the two Gaussian queries gives back z: σ_Δ⁻² + (2σ_b)⁻² = z⁻²
    assert got**-2 + (2 * sigma_b) ** -2 == pytest.approx(z**-2, rel=1e-12)


def test_gradient_noise_multiplier_errors():
    ac = AdaptiveClipping(1.0, expected_batch_size=100, count_noise_std=2.0)
    for z in (4.0, 4.5, 100.0):
        with pytest.raises(ValueError, match=r"noise_multiplier must be < 2 \* count_noise_std"):
            ac.gradient_noise_multiplier(z)
    for z in (0.0, -1.0):
        with pytest.raises(ValueError, match="noise_multiplier must be > 0"):
            ac.gradient_noise_multiplier(z)
    with pytest.raises(TypeError):
        ac.gradient_noise_multiplier("1")
    assert ac.gradient_noise_multiplier(3.99) > 40  # just below the limit: huge σ_Δ
    with pytest.raises(ValueError, match="count_noise_std"):
        ac.aggregate(np.ones((4, 3)), 4.0, rng=0)
    assert ac.history == [] and ac.clip_norm == 1.0


@pytest.mark.parametrize("seed", [1, 2, 3, FRESH])
def test_adaptive_update_direction(seed):
    """All norms below C: b̃ ≈ 1 > γ so C shrinks; all above: b̃ ≈ 0 < γ so C grows
    (the count noise has std σ_b/m = 1/20, ten of them from flipping the sign)."""
    ac = AdaptiveClipping(1.0, expected_batch_size=100, rng=default_rng(seed))
    rng = np.random.default_rng(seed)
    for _ in range(5):
        c = ac.clip_norm
        new = ac.update(rng.uniform(0, 0.9, 100) * c)
        assert new < c, f"seed={seed}"
        assert new == ac.clip_norm
    for _ in range(5):
        c = ac.clip_norm
        assert ac.update(rng.uniform(1.1, 5.0, 100) * c) > c, f"seed={seed}"
    assert len(ac.history) == 10


@pytest.mark.parametrize("seed", [7, FRESH])
def test_adaptive_update_exact_step(seed):
    m, sigma_b, eta, gamma = 50, 3.0, 0.4, 0.7
    ac = AdaptiveClipping(
        2.0,
        expected_batch_size=m,
        count_noise_std=sigma_b,
        learning_rate=eta,
        target_quantile=gamma,
    )
    norms = np.array([0.5, 2.0, 2.5, np.nan, 1.0, 3.0, 0.1, 2.0000001] * 5)  # 40 rows
    unclipped = 20  # 0.5, 2.0 (<= C counts as unclipped), 1.0, 0.1; NaN counts as clipped
    gen = default_rng(seed)
    z = float(default_rng(seed).normal(0.0, sigma_b))
    new = ac.update(norms, rng=gen)
    b = (unclipped - 0.5 * 40 + z) / m + 0.5
    expected = 2.0 * math.exp(-eta * (b - gamma))
    assert new == pytest.approx(expected, rel=1e-14), f"seed={seed}"
    assert ac.history == [(2.0, pytest.approx(b, rel=1e-14, abs=1e-15))]
    # a tiny count noise: the step is the noiseless one
    ac = AdaptiveClipping(
        2.0, expected_batch_size=40, count_noise_std=1e-12, learning_rate=eta, target_quantile=gamma
    )
    new = ac.update(norms, rng=seed)
    assert new == pytest.approx(2.0 * math.exp(-eta * (0.5 - gamma)), rel=1e-12)
    # the seed given at construction is the default stream
    ac = AdaptiveClipping(
        2.0,
        expected_batch_size=m,
        count_noise_std=sigma_b,
        learning_rate=eta,
        target_quantile=gamma,
        rng=default_rng(seed),
    )
    assert ac.update(norms) == pytest.approx(expected, rel=1e-14)


def test_adaptive_update_clamps():
    ac = AdaptiveClipping(
        1.0,
        expected_batch_size=10,
        count_noise_std=1e-9,
        learning_rate=5.0,
        min_norm=0.5,
        max_norm=1.5,
        rng=default_rng(0),
    )
    assert ac.update(np.zeros(10)) == 0.5  # exp(-5 * 0.5) = 0.08 -> clamped up to 0.5
    assert ac.update(np.zeros(10)) == 0.5
    assert ac.update(np.full(10, 100.0)) == 1.5  # 0.5 * exp(2.5) = 6.1 -> clamped to 1.5
    assert ac.update(np.full(10, np.nan)) == 1.5
    assert [h[0] for h in ac.history] == [1.0, 0.5, 0.5, 1.5]
    # within the bounds nothing is clamped
    ac = AdaptiveClipping(
        1.0,
        expected_batch_size=10,
        count_noise_std=1e-9,
        learning_rate=0.1,
        min_norm=0.5,
        max_norm=1.5,
        rng=default_rng(0),
    )
    assert ac.update(np.zeros(10)) == pytest.approx(math.exp(-0.05), rel=1e-9)


def test_adaptive_aggregate_exact():
    m, sigma_b, z_total, seed = 40, 4.0, 1.2, 31
    rng = np.random.default_rng(seed)
    g = rng.standard_normal((32, 2, 30)) * rng.uniform(0.05, 0.5, (32, 1, 1))
    ac = AdaptiveClipping(1.0, expected_batch_size=m, count_noise_std=sigma_b, rng=5)
    c0 = ac.clip_norm
    sigma_grad = ac.gradient_noise_multiplier(z_total)
    res = ac.aggregate(g, z_total, rng=seed, sample_rate=0.02)
    # the same computation by hand from one stream: gradient noise first, then the count
    gen = default_rng(seed)
    total, norms = clip_and_sum(g, c0, return_norms=True)
    noise_draw = noise.gaussian(sigma_grad * c0, (2, 30), rng=gen)
    count_noise = float(gen.normal(0.0, sigma_b))
    np.testing.assert_array_equal(res.gradient, (total + noise_draw) / m)
    assert res.noise_multiplier == z_total
    assert res.noise_std == pytest.approx(sigma_grad * c0, rel=1e-15)
    assert res.max_norm == c0 and res.denominator == m and res.batch_size == 32
    np.testing.assert_array_equal(res.norms, norms)
    assert res.accounting == {"noise_multiplier": z_total, "sample_rate": 0.02}
    unclipped = int(np.count_nonzero(norms <= c0))
    b = (unclipped - 16 + count_noise) / m + 0.5
    assert ac.history == [(c0, pytest.approx(b, rel=1e-13, abs=1e-15))]
    assert ac.clip_norm == pytest.approx(c0 * math.exp(-0.2 * (b - 0.5)), rel=1e-13)
    # the next step clips at the new C
    c1 = ac.clip_norm
    res2 = ac.aggregate(g, z_total, rng=seed + 1)
    assert res2.max_norm == c1 != c0 and ac.history[1][0] == c1 and len(ac.history) == 2
    assert res2.noise_std == pytest.approx(sigma_grad * c1, rel=1e-15)
    np.testing.assert_array_equal(res2.norms, norms)


def test_adaptive_seeded_stream_advances():
    """Regression: an int seed was resolved afresh at every step, so every update (and
    aggregate) replayed the same count noise and the same standard normals."""
    norms = np.full(100, 0.5)
    ac = AdaptiveClipping(1.0, expected_batch_size=100, rng=7)
    ac.update(norms)
    ac.update(norms)
    (_, b1), (_, b2) = ac.history
    assert b1 != b2
    # and it is one reproducible stream: the same seed replays the same sequence
    again = AdaptiveClipping(1.0, expected_batch_size=100, rng=7)
    again.update(norms)
    again.update(norms)
    assert again.history == ac.history
    gen = default_rng(7)
    z1, z2 = gen.normal(0.0, 5.0), gen.normal(0.0, 5.0)
    assert b1 == pytest.approx((100 - 50 + z1) / 100 + 0.5, rel=1e-14)  # all unclipped
    assert b2 == pytest.approx((100 - 50 + z2) / 100 + 0.5, rel=1e-14)
    # aggregate: the gradient noise of consecutive steps is not the same draw rescaled
    g = np.zeros((100, 64))
    ac = AdaptiveClipping(1.0, expected_batch_size=100, rng=8)
    r1, r2 = ac.aggregate(g, 1.0), ac.aggregate(g, 1.0)
    assert not np.allclose(r1.gradient / r1.noise_std, r2.gradient / r2.noise_std)
