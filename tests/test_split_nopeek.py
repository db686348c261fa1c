"""ppml_fast.split.nopeek: distance correlation, its gradient and the NoPeek penalty.

Checked against the ``dcor`` package (0.7) where installed, against a long-double oracle
that takes distances by differences, against the numpy reference, and the gradient
against central finite differences; on fresh seeds each run plus fixed ones. Also: every
ISA level and thread count gives the same bits, near-duplicate and constant inputs, any
layout, torch tensors, bad input (``out`` untouched), and child processes.
"""

from __future__ import annotations

import multiprocessing as mp

import numpy as np
import pytest

import ppml_fast
from ppml_fast._native import split as split_kernels
from ppml_fast.reference import split as ref
from ppml_fast.split import nopeek
from tests.thresholds import FRESH

SEEDS = [0, 1, 2024, FRESH]
SHAPES = [(2, 1, 1), (3, 4, 2), (17, 30, 5), (64, 200, 33), (129, 784, 512)]


def _dcor():
    return pytest.importorskip("dcor")


def _data(seed: int, n: int, dx: int, dz: int, dtype=np.float64):
    g = np.random.default_rng(seed)
    x = g.random((n, dx)) + g.integers(0, 3)  # positive, with an offset: like images
    w = g.standard_normal((dx, dz)) / np.sqrt(dx)
    z = np.tanh(x @ w) + 0.3 * g.standard_normal((n, dz))  # dependent on x
    return x.astype(dtype), z.astype(dtype)


def _oracle_sqr(x, z) -> float:
    vxz, vx, vz = ref.dcor_direct(x, z)
    den = np.sqrt(vx * vz)
    return max(vxz / den, 0.0) if den > 0 else 0.0


# --- 1. values ----------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("shape", SHAPES)
def test_value_matches_dcor_and_the_direct_oracle(seed, shape):
    x, z = _data(seed, *shape)
    got = nopeek.distance_correlation(x, z)
    got2 = nopeek.distance_correlation_sqr(x, z)
    assert got == pytest.approx(np.sqrt(got2), abs=1e-15)
    dc = _dcor()
    assert abs(got - dc.distance_correlation(x, z)) <= 1e-10
    assert abs(got2 - dc.distance_correlation_sqr(x, z)) <= 1e-10
    if shape[0] <= 64:
        assert abs(got2 - _oracle_sqr(x, z)) <= 1e-12
    assert abs(got - ref.distance_correlation(x, z)) <= 1e-12


@pytest.mark.parametrize("seed", [3, FRESH])
def test_float32_inputs(seed):
    x, z = _data(seed, 40, 50, 7, np.float32)
    got = nopeek.distance_correlation(x, z)
    # float32 values are widened exactly: the result is that of the float64 copies
    want = nopeek.distance_correlation(x.astype(np.float64), z.astype(np.float64))
    assert got == want
    assert (
        abs(got - _dcor().distance_correlation(x.astype(np.float64), z.astype(np.float64))) < 1e-10
    )
    _, g = nopeek.distance_correlation_gradient(x, z)
    assert g.dtype == np.float32 and g.shape == z.shape
    _, g64 = nopeek.distance_correlation_gradient(x.astype(np.float64), z.astype(np.float64))
    np.testing.assert_array_equal(g, g64.astype(np.float32))


def test_known_answers():
    # perfectly dependent (z a scaled, shifted copy of x): dCor = 1
    x = np.random.default_rng(5).standard_normal((30, 4))
    assert nopeek.distance_correlation(x, 3.0 * x + 7.0) == pytest.approx(1.0, abs=1e-13)
    # 2 examples: every pair of non-constant inputs has dCor 1
    assert nopeek.distance_correlation([[0.0], [1.0]], [[5.0], [2.0]]) == pytest.approx(1.0)
    # x = (0, 1, 2, 3), z = (0, 1, 0, 1)... checked against the closed form by hand:
    x = np.array([[0.0], [1.0], [2.0], [3.0]])
    z = np.array([[0.0], [1.0], [0.0], [1.0]])
    assert nopeek.distance_correlation_sqr(x, z) == pytest.approx(_oracle_sqr(x, z), abs=1e-15)


def test_shapes_with_more_dimensions_and_any_layout():
    g = np.random.default_rng(6)
    x = g.standard_normal((20, 3, 4, 5))
    z = g.standard_normal((20, 6, 2))
    want = nopeek.distance_correlation(x.reshape(20, -1), z.reshape(20, -1))
    assert nopeek.distance_correlation(x, z) == want
    assert abs(want - _dcor().distance_correlation(x.reshape(20, -1), z.reshape(20, -1))) < 1e-10
    # non-contiguous views: strided rows, reversed rows, Fortran order, transposed inner
    big = g.standard_normal((40, 3, 4, 5))
    xs = big[::2]
    assert nopeek.distance_correlation(xs, z) == nopeek.distance_correlation(xs.copy(), z)
    xf = np.asfortranarray(x)
    assert nopeek.distance_correlation(xf, z) == want
    xt = np.ascontiguousarray(x.transpose(0, 3, 2, 1)).transpose(0, 3, 2, 1)
    assert nopeek.distance_correlation(xt, z) == want
    zr = z[::-1]
    assert nopeek.distance_correlation(x[::-1], zr) == pytest.approx(want, abs=1e-14)
    # 1-d inputs: one number per example
    a, b = g.standard_normal(25), g.standard_normal(25)
    assert abs(nopeek.distance_correlation(a, b) - _dcor().distance_correlation(a, b)) < 1e-10


def test_torch_tensors():
    torch = pytest.importorskip("torch")
    x, z = _data(7, 32, 20, 6)
    tx, tz = torch.from_numpy(x), torch.from_numpy(z.astype(np.float32))
    assert nopeek.distance_correlation(tx, tz) == nopeek.distance_correlation(
        x, z.astype(np.float32)
    )
    v, g = nopeek.nopeek_loss(tx, tz, 0.5)
    v2, g2 = nopeek.nopeek_loss(x, z.astype(np.float32), 0.5)
    assert v == v2
    np.testing.assert_array_equal(g, g2)
    with pytest.raises(TypeError, match="z must"):
        nopeek.distance_correlation(tx, tz.requires_grad_())


@pytest.mark.parametrize("seed", [8, FRESH])
def test_near_duplicate_and_duplicate_rows(seed):
    g = np.random.default_rng(seed)
    x = g.random((48, 300)) * 10 + 100  # a large common offset
    x[1] = x[0] + 1e-9 * g.standard_normal(300)  # near-duplicates
    x[2] = x[0] * (1 + 1e-12)
    x[5] = x[4]  # exact duplicates
    x[7:10] = x[6]
    z = g.standard_normal((48, 8))
    z[3] = z[2]
    z[11] = z[10] + 1e-10
    got = nopeek.distance_correlation_sqr(x, z)
    assert abs(got - _oracle_sqr(x, z)) <= 1e-12
    assert abs(got - _dcor().distance_correlation_sqr(x, z)) <= 1e-10
    assert abs(nopeek.distance_correlation(x, z) - ref.distance_correlation(x, z)) <= 1e-12
    v, grad = nopeek.distance_correlation_gradient(x, z)
    assert v == nopeek.distance_correlation(x, z)
    _, want = ref.distance_correlation_gradient(x, z)
    np.testing.assert_allclose(grad, want, rtol=1e-7, atol=1e-12 * np.abs(want).max())


def test_constant_inputs_give_zero():
    g = np.random.default_rng(9)
    x = g.standard_normal((10, 4))
    for const in (np.zeros((10, 3)), np.full((10, 3), 2.5), np.full((10, 0), 1.0)):
        assert nopeek.distance_correlation(x, const) == 0.0
        assert nopeek.distance_correlation(const, x) == 0.0
        if const.size:
            assert _dcor().distance_correlation(x, const) == 0.0
        v, grad = nopeek.distance_correlation_gradient(const, x)
        assert v == 0.0 and not grad.any()
        v, grad = nopeek.distance_correlation_gradient(x, const)
        assert v == 0.0 and not grad.any() and grad.shape == const.shape
    # constant columns do not change anything
    xc = np.hstack([x, np.full((10, 2), 4.0)])
    z = g.standard_normal((10, 2))
    assert nopeek.distance_correlation(xc, z) == pytest.approx(
        nopeek.distance_correlation(x, z), abs=1e-14
    )


@pytest.mark.parametrize("scale", [1e-200, 1e-30, 1e30, 1e200, 1e300])
def test_extreme_magnitudes(scale):
    x, z = _data(10, 20, 6, 4)
    want = nopeek.distance_correlation(x, z)
    assert nopeek.distance_correlation(x * scale, z) == pytest.approx(want, abs=1e-13)
    v, g = nopeek.distance_correlation_gradient(x, z * scale)
    _, g1 = nopeek.distance_correlation_gradient(x, z)
    assert v == pytest.approx(want, abs=1e-13)
    np.testing.assert_allclose(g * scale, g1, rtol=1e-10, atol=1e-13 * np.abs(g1).max())


# --- 2. gradient -------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [11, 12, FRESH])
@pytest.mark.parametrize("shape", [(3, 2, 2), (12, 9, 5), (40, 30, 7)])
def test_gradient_matches_finite_differences(seed, shape):
    x, z = _data(seed, *shape)
    v, grad = nopeek.distance_correlation_gradient(x, z)
    assert v == nopeek.distance_correlation(x, z)
    h = 1e-6
    g = np.random.default_rng(seed)
    for _ in range(12):
        i, k = g.integers(shape[0]), g.integers(shape[2])
        zp, zm = z.copy(), z.copy()
        zp[i, k] += h
        zm[i, k] -= h
        fd = (ref.distance_correlation(x, zp) - ref.distance_correlation(x, zm)) / (2 * h)
        assert grad[i, k] == pytest.approx(fd, rel=1e-5, abs=1e-8)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("shape", SHAPES[1:])
def test_gradient_matches_the_reference(seed, shape):
    x, z = _data(seed, *shape)
    v, grad = nopeek.distance_correlation_gradient(x, z)
    rv, rgrad = ref.distance_correlation_gradient(x, z)
    assert abs(v - rv) <= 1e-12
    np.testing.assert_allclose(grad, rgrad, rtol=1e-9, atol=1e-12 * np.abs(rgrad).max())
    # the gradient of a translation- and scale-invariant function: rows sum to 0 and it
    # is orthogonal to z
    np.testing.assert_allclose(grad.sum(axis=0), 0.0, atol=1e-12 * np.abs(grad).max() * len(z))
    assert abs(np.vdot(grad, z - z.mean(axis=0))) <= 1e-9 * np.abs(grad).sum()


def test_nopeek_loss_is_weight_times_value():
    x, z = _data(13, 30, 10, 4)
    v, g = nopeek.distance_correlation_gradient(x, z)
    for w in (0.0, 0.1, 3, np.float32(2.0)):
        loss, lg = nopeek.nopeek_loss(x, z, w)
        assert loss == float(w) * v
        np.testing.assert_array_equal(lg, g * float(w))
    rl, rg = ref.nopeek_loss(x, z, 0.7)
    loss, lg = nopeek.nopeek_loss(x, z, 0.7)
    assert loss == pytest.approx(rl, abs=1e-12)
    np.testing.assert_allclose(lg, rg, rtol=1e-9, atol=1e-14)


def test_out_any_layout_and_in_place():
    x, z = _data(14, 20, 8, 6)
    _, want = nopeek.distance_correlation_gradient(x, z)
    for out in (np.empty_like(z), np.empty((6, 20)).T, np.empty((20, 12))[:, ::2]):
        _, got = nopeek.distance_correlation_gradient(x, z, out=out)
        assert got is out
        np.testing.assert_array_equal(out, want)
    zz = z.copy()
    _, got = nopeek.distance_correlation_gradient(x, zz, out=zz)  # z is read first
    np.testing.assert_array_equal(got, want)
    out = np.empty_like(z)
    _, got = nopeek.nopeek_loss(x, z, 2.0, out=out)
    assert got is out
    np.testing.assert_array_equal(out, want * 2.0)


# --- 3. native vs reference, levels, threads ---------------------------------------------


@pytest.mark.parametrize("seed", [15, FRESH])
def test_same_bits_at_every_level_and_thread_count(seed):
    x, z = _data(seed, 70, 100, 30)
    first = None
    for level in ppml_fast.available_isas():
        for threads in (1, 2, 3):
            with ppml_fast.isa(level), ppml_fast.num_threads(threads):
                got = (nopeek.distance_correlation_sqr(x, z), *nopeek.nopeek_loss(x, z, 1.0))
                assert ppml_fast.get_isa() == level
                assert split_kernels._get_isa() == ppml_fast.available_isas().index(level)
            if first is None:
                first = got
            assert got[0] == first[0] and got[1] == first[1]
            np.testing.assert_array_equal(got[2], first[2])


@pytest.mark.parametrize("level", ppml_fast.available_isas())
def test_each_level_matches_the_reference(level):
    x, z = _data(16, 50, 40, 12)
    with ppml_fast.isa(level):
        v, g = nopeek.distance_correlation_gradient(x, z)
    rv, rg = ref.distance_correlation_gradient(x, z)
    assert abs(v - rv) < 1e-12
    np.testing.assert_allclose(g, rg, rtol=1e-9, atol=1e-14)


# --- 4. bad input ------------------------------------------------------------------------

FUNCS = [
    nopeek.distance_correlation,
    nopeek.distance_correlation_sqr,
    nopeek.distance_correlation_gradient,
    lambda x, z: nopeek.nopeek_loss(x, z, 1.0),
]


@pytest.mark.parametrize("fn", FUNCS)
def test_bad_inputs(fn):
    x, z = _data(17, 6, 3, 2)
    for bad, where in ((np.nan, "x"), (np.inf, "x"), (-np.inf, "z"), (np.nan, "z")):
        xb, zb = x.copy(), z.copy()
        (xb if where == "x" else zb)[3, 1] = bad
        with pytest.raises(ValueError, match=f"{where} must contain only finite"):
            fn(xb, zb)
    with pytest.raises(ValueError, match="z has 5 rows but x has 6"):
        fn(x, z[:5])
    with pytest.raises(ValueError, match="x must hold at least 2 examples"):
        fn(x[:1], z[:1])
    with pytest.raises(ValueError, match="x must hold at least 2 examples"):
        fn(x[:0], z[:0])
    with pytest.raises(ValueError, match="x must have at least 1 dimension"):
        fn(np.float64(1.0), z)
    for wrong in (x.astype(np.int64), x.astype(np.complex128), x.astype(object), "abc"):
        with pytest.raises(TypeError, match="x must"):
            fn(wrong, z)
    with pytest.raises(TypeError, match="z must"):
        fn(x, z.astype(np.float16))
    with pytest.raises(TypeError, match="x must"):
        fn([[1.0, 2.0], [3.0]], z[:2])


def test_bad_weight_and_out_leave_out_untouched():
    x, z = _data(18, 6, 3, 2)
    out = np.full_like(z, 7.0)
    for w, exc in (
        (-0.1, ValueError),
        (np.nan, ValueError),
        (np.inf, ValueError),
        ("1", TypeError),
        (True, TypeError),
        (None, TypeError),
    ):
        with pytest.raises(exc, match="weight must"):
            nopeek.nopeek_loss(x, z, w, out=out)
    for bad, exc, msg in (
        (np.empty((6, 3)), ValueError, "out must have shape"),
        (np.empty((6, 2), dtype=np.float32), TypeError, "out must have dtype"),
        (z.tolist(), TypeError, "out must be a numpy.ndarray"),
        (np.broadcast_to(np.zeros(2), (6, 2)), ValueError, "out must be writeable"),
    ):
        with pytest.raises(exc, match=msg):
            nopeek.distance_correlation_gradient(x, z, out=bad)
    ro = np.zeros_like(z)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="out must be writeable"):
        nopeek.distance_correlation_gradient(x, z, out=ro)
    xb = x.copy()
    xb[0, 0] = np.nan
    with pytest.raises(ValueError, match="x must contain only finite"):
        nopeek.nopeek_loss(xb, z, 1.0, out=out)
    zb = z.copy()
    zb[5, 1] = np.inf
    with pytest.raises(ValueError, match="z must contain only finite"):
        nopeek.distance_correlation_gradient(x, zb, out=out)
    assert (out == 7.0).all()


# --- 5. child processes ------------------------------------------------------------------


def _child_case(x, z):
    with ppml_fast.num_threads(2):
        return nopeek.nopeek_loss(x, z, 0.5)


@pytest.mark.parametrize(
    "method", [m for m in ("fork", "spawn") if m in mp.get_all_start_methods()]
)
def test_in_a_child_process(method):
    # the same arrays in both processes (numpy's own matmul, which made them, may round
    # differently in a child whose BLAS runs on another thread count)
    x, z = _data(19, 150, 300, 40)
    parent = _child_case(x, z)  # the OpenMP team exists before the child is made
    with mp.get_context(method).Pool(1) as pool:
        got = pool.apply_async(_child_case, (x, z)).get(timeout=120)
    assert got[0] == parent[0]
    np.testing.assert_array_equal(got[1], parent[1])


def test_out_list_is_refused():
    x, z = _data(21, 6, 5, 3)
    with pytest.raises(TypeError, match=r"out must be a numpy\.ndarray"):
        nopeek.distance_correlation_gradient(x, z, out=[[0.0] * 3] * 6)


@pytest.mark.parametrize("seed", [22, FRESH])
def test_out_may_be_z_itself(seed):
    # close pairs are applied by differences of z's rows, after other rows' gradients are
    # written: an out that is z must not feed written gradients back as z
    x, z = _data(seed, 12, 7, 5)
    z[3] = z[2] + 1e-9  # a close pair
    z[7] = z[6] * (1 + 1e-12)
    want = nopeek.distance_correlation_gradient(x, z)
    zz = z.copy()
    got = nopeek.distance_correlation_gradient(x, zz, out=zz)
    assert got[0] == want[0]
    np.testing.assert_array_equal(zz, want[1])
