"""Federated aggregators of :mod:`ppml_fast.aggregation` (FedAvg, StreamingFedAvg,
coordinate median, trimmed mean, Krum / Multi-Krum, FedProx, DP-FedAvg) against the
numpy oracles of :mod:`ppml_fast.reference.aggregation`, numpy's own median / nanmedian
and scipy's ``trim_mean``; the three input structures (matrix, list of arrays, parameter
lists); ``out=``; ties, ±inf and NaN policies; argument errors (the message must name the
parameter); thread-count independence; Krum under Byzantine attacks; and the DP-FedAvg
noise, accounting and adaptive clipping.

Random cases run on fixed seeds and on one fresh seed per run (FRESH, printed in every
assertion message; rerun a failure with ``PPML_TEST_SEED=<printed seed>``). The FedAvg,
median, trimmed-mean and FedProx comparisons are bit-exact (the kernels make the
reference's additions in the reference's order), so a failure on the fresh seed is a real
disagreement, not a false alarm. The statistical tests (``slow``) have a false-alarm rate
of 1e-6 per assertion (see their docstrings).
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
import scipy.stats as st

import ppml_fast
from ppml_fast import aggregation as ag
from ppml_fast.accounting import RDPAccountant
from ppml_fast.clipping import AdaptiveClipping
from ppml_fast.reference import aggregation as ref

pytestmark = pytest.mark.filterwarnings("ignore::ppml_fast.InsecureRandomnessWarning")

FRESH = int(os.environ.get("PPML_TEST_SEED") or np.random.SeedSequence().entropy % 2**63)
SEEDS = [0, 1, 20240601, FRESH]
DTYPES = [np.float32, np.float64]
LAYER_SHAPES = [(3, 4), (5,), (), (2, 1, 3)]  # 24 coordinates, a 0-d bias included


# --- helpers -----------------------------------------------------------------------------


def _rng(seed, *salt):
    return np.random.default_rng([seed, *salt])


def _as_layers(x):
    """(n, 24) matrix -> list of n parameter lists with LAYER_SHAPES."""
    out = []
    for row in x:
        layers, o = [], 0
        for s in LAYER_SHAPES:
            size = math.prod(s)
            layers.append(row[o : o + size].reshape(s).copy())
            o += size
        out.append(layers)
    return out


def _flat(result):
    if isinstance(result, list):
        return np.concatenate([np.asarray(r).reshape(-1) for r in result])
    return np.asarray(result).reshape(-1)


def _structures(x):
    """The same clients as a matrix, a 3-d array, a list of rows and parameter lists."""
    n = x.shape[0]
    yield "matrix", x
    yield "3d", x.reshape(n, 4, 6)
    yield "list", list(x)
    yield "tuple", tuple(x)
    yield "layers", _as_layers(x)


def _data(seed, dtype, n=None, d=None, *salt):
    rng = _rng(seed, *salt)
    n = int(rng.integers(1, 40)) if n is None else n
    d = int(rng.integers(1, 300)) if d is None else d
    return rng.standard_normal((n, d)).astype(dtype), rng


# --- FedAvg ------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_fedavg_matches_reference_bit_for_bit(seed, dtype):
    for trial in range(6):
        x, rng = _data(seed, dtype, None, None, trial)
        n = x.shape[0]
        w = rng.integers(0, 50, n).astype(float)
        w[rng.integers(n)] = 7.0  # a positive sum
        msg = f"seed={seed} trial={trial} dtype={np.dtype(dtype)} shape={x.shape}"
        for weights in (None, w, w.tolist(), w.astype(np.int64)):
            got = ag.fedavg(x, weights)
            want = ref.fedavg(x, weights)
            assert got.dtype == x.dtype, msg
            np.testing.assert_array_equal(got, want, err_msg=msg)
            np.testing.assert_allclose(
                got,
                np.average(x.astype(np.float64), axis=0, weights=weights),
                rtol=1e-5 if dtype == np.float32 else 1e-12,
                atol=1e-6,
                err_msg=msg,
            )


@pytest.mark.parametrize("dtype", DTYPES)
def test_fedavg_structures_agree(dtype):
    x, rng = _data(FRESH, dtype, 13, 24, 1)
    w = rng.random(13)
    want = ref.fedavg(x, w)
    for name, updates in _structures(x):
        got = ag.fedavg(updates, w)
        if name == "layers":
            assert isinstance(got, list) and [g.shape for g in got] == LAYER_SHAPES
            assert all(g.dtype == x.dtype for g in got)
        elif name == "3d":
            assert got.shape == (4, 6)
        np.testing.assert_array_equal(_flat(got), want, err_msg=f"{name} seed={FRESH}")


def test_fedavg_client_groups_and_tails():
    # matrices are added sixteen clients per sweep, lists eight: every remainder must agree
    for n in (1, 7, 8, 9, 15, 16, 17, 23, 31, 32, 33, 40):
        x, rng = _data(FRESH, np.float64, n, 50, n)
        w = rng.random(n)
        np.testing.assert_array_equal(
            ag.fedavg(list(x), w), ref.fedavg(x, w), err_msg=f"n={n} seed={FRESH}"
        )
        np.testing.assert_array_equal(
            ag.fedavg(x, w), ref.fedavg(x, w), err_msg=f"n={n} seed={FRESH}"
        )


def test_fedavg_layouts():
    x, rng = _data(FRESH, np.float32, 20, 90, 2)
    w = rng.random(20)
    want = ref.fedavg(x, w)
    big = np.zeros((40, 90), dtype=np.float32)
    big[::2] = x
    for name, v in [
        ("row stride", big[::2]),
        ("fortran", np.asfortranarray(x)),
        ("non-native", x.astype(">f4")),
    ]:
        np.testing.assert_array_equal(ag.fedavg(v, w), want, err_msg=name)
    rev = np.ascontiguousarray(x[::-1])[::-1]  # negative row stride
    np.testing.assert_array_equal(ag.fedavg(rev, w), want)


def test_fedavg_zero_weight_clients_are_not_read():
    x, _ = _data(FRESH, np.float64, 5, 30, 3)
    x[2, 4] = np.nan
    x[3, 0] = np.inf
    w = np.array([1.0, 2.0, 0.0, 0.0, 3.0])
    np.testing.assert_array_equal(ag.fedavg(x, w), ref.fedavg(x, w))
    with pytest.raises(ValueError, match=r"updates\[2\] must contain only finite"):
        ag.fedavg(x, [1.0, 2.0, 1.0, 0.0, 3.0])
    with pytest.raises(ValueError, match=r"updates\[3\] must contain only finite"):
        ag.fedavg(list(x), [1.0, 2.0, 0.0, 1.0, 3.0])


def test_fedavg_overflow_and_float32_range():
    x = np.full((3, 4), 1e308)
    with pytest.raises(ValueError, match="overflowed float64"):
        ag.fedavg(x)
    # float32 extremes are summed in float64: the mean stays in range
    y = np.full((3, 4), np.finfo(np.float32).max, dtype=np.float32)
    np.testing.assert_array_equal(ag.fedavg(y), y[0])


def test_fedavg_out():
    x, rng = _data(FRESH, np.float64, 9, 24, 4)
    w = rng.random(9)
    want = ref.fedavg(x, w)
    out = np.empty(24)
    assert ag.fedavg(x, w, out=out) is out
    np.testing.assert_array_equal(out, want)
    strided = np.empty(48)[::2]
    ag.fedavg(x, w, out=strided)
    np.testing.assert_array_equal(strided, want)
    y = x.copy()
    ag.fedavg(y, w, out=y[0])  # out overlaps the input: computed aside
    np.testing.assert_array_equal(y[0], want)
    outs = [np.empty(s) for s in LAYER_SHAPES]
    assert ag.fedavg(_as_layers(x), w, out=outs) is outs
    np.testing.assert_array_equal(_flat(outs), want)
    with pytest.raises(TypeError, match="out must have dtype float64"):
        ag.fedavg(x, out=np.empty(24, np.float32))
    with pytest.raises(ValueError, match=r"out must have shape \(24,\)"):
        ag.fedavg(x, out=np.empty(23))
    ro = np.empty(24)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="out must be writeable"):
        ag.fedavg(x, out=ro)
    with pytest.raises(TypeError, match="out must be a list of 4 arrays"):
        ag.fedavg(_as_layers(x), out=np.empty(24))
    with pytest.raises(TypeError, match="out must be an array"):
        ag.fedavg(x, out=[np.empty(24)])
    with pytest.raises(ValueError, match=r"out\[1\] must have shape \(5,\)"):
        ag.fedavg(_as_layers(x), out=[np.empty(s) for s in [(3, 4), (4,), (), (2, 1, 3)]])


def test_updates_validation():
    x = np.ones((3, 4))
    cases = [
        ([], ValueError, "updates must hold at least one client"),
        (np.ones((0, 4)), ValueError, "updates must hold at least one client"),
        (np.ones(4), ValueError, r"updates must have shape \(n_clients, ...\)"),
        (np.ones((3, 4), dtype=np.int64), TypeError, "updates must have dtype float32 or"),
        ([np.ones(4), np.ones(5)], ValueError, r"updates\[1\] has shape \(5,\), updates\[0\]"),
        ([np.ones(4), np.ones(4, np.float32)], TypeError, r"updates\[1\] has dtype float32"),
        ([np.ones(4), [np.ones(4)]], TypeError, r"updates\[1\] must be an array"),
        ([[np.ones(4)], np.ones(4)], TypeError, r"updates\[1\] must be a list of layers"),
        ([[np.ones(4)], [np.ones(4), np.ones(1)]], ValueError, r"updates\[1\] has 2 layers"),
        (
            [[np.ones(4), np.ones(2)], [np.ones(4), np.ones(3)]],
            ValueError,
            r"updates\[1\]\[1\] has shape \(3,\), updates\[0\]\[1\] has \(2,\)",
        ),
        ([[]], ValueError, r"updates\[0\] must hold at least one layer"),
        ([np.ones(3, dtype=complex)], TypeError, r"updates\[0\] must have dtype"),
        ([np.ones(3), "abc"], TypeError, r"updates\[1\] must have dtype"),
    ]
    for updates, exc, pattern in cases:
        for fn in (ag.fedavg, ag.coordinate_median, ag.trimmed_mean):
            with pytest.raises(exc, match=pattern):
                fn(updates)
    with pytest.raises(ValueError, match=r"updates\[2\] has shape"):
        ag.krum([np.ones(4)] * 2 + [np.ones(3)] + [np.ones(4)] * 3, 1)
    assert ag.fedavg(x).shape == (4,)


def test_weights_validation():
    x = np.ones((3, 4))
    cases = [
        ([1.0, 2.0], ValueError, r"weights must have shape \(n_clients,\) = \(3,\), got \(2,\)"),
        ([[1.0, 2.0, 3.0]], ValueError, "weights must have shape"),
        ([1.0, -1.0, 2.0], ValueError, "weights must be >= 0, got -1.0 at index 1"),
        ([0.0, 0.0, 0.0], ValueError, "weights must have a positive sum, got 0.0"),
        ([1.0, np.nan, 2.0], ValueError, "weights must contain only finite values"),
        ([1.0, np.inf, 2.0], ValueError, "weights must contain only finite values"),
        ([1e308, 1e308, 1e308], ValueError, "weights must have a finite sum"),
        (["a", "b", "c"], TypeError, "weights must be a real numeric array"),
    ]
    for w, exc, pattern in cases:
        with pytest.raises(exc, match=pattern):
            ag.fedavg(x, w)


def test_thread_count_does_not_change_results():
    x, rng = _data(FRESH, np.float32, 37, 40_000, 5)  # large enough to split over threads
    x[rng.random(x.shape) < 0.01] = np.nan
    w = rng.random(37)
    finite = np.nan_to_num(x)
    results = []
    for threads in (1, 2, 3):
        with ppml_fast.num_threads(threads):
            results.append(
                [
                    ag.fedavg(finite, w),
                    ag.fedavg(list(finite), w),
                    ag.coordinate_median(x, nan="omit"),
                    ag.trimmed_mean(x, 0.2, nan="omit"),
                    ag.fedprox_gradient(finite[0], finite[1], finite[2], 0.3),
                ]
            )
    for other in results[1:]:
        for a, b in zip(results[0], other, strict=True):
            np.testing.assert_array_equal(a, b, err_msg=f"seed={FRESH}")
    np.testing.assert_array_equal(results[0][0], ref.fedavg(finite, w))


# --- StreamingFedAvg -----------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_streaming_equals_fedavg(dtype):
    for seed in SEEDS:
        x, rng = _data(seed, dtype, None, 24, 6)
        w = rng.integers(0, 9, x.shape[0]).astype(float)
        w[0] = 1.0
        for name, updates in _structures(x):
            if name == "tuple":
                continue
            agg = ag.StreamingFedAvg()
            clients = list(updates)
            for c, wi in zip(clients, w, strict=True):
                agg.add(c, weight=wi)
            assert agg.count == x.shape[0]
            assert agg.total_weight == float(np.cumsum(w)[-1])
            np.testing.assert_array_equal(
                _flat(agg.result()),
                _flat(ag.fedavg(updates, w)),
                err_msg=f"{name} seed={seed}",
            )


def test_streaming_state_and_errors():
    agg = ag.StreamingFedAvg()
    with pytest.raises(ValueError, match="no update was added"):
        agg.result()
    agg.add(np.ones(3), weight=0)
    assert agg.count == 1 and agg.total_weight == 0.0
    with pytest.raises(ValueError, match="total_weight must be > 0"):
        agg.result()
    agg.add(np.array([1.0, 2.0, 3.0]), weight=2)
    bad = np.array([1.0, np.nan, 3.0])
    with pytest.raises(ValueError, match="update must contain only finite values"):
        agg.add(bad, weight=1)
    agg.add(bad, weight=0)  # weight 0: not read
    assert agg.count == 3 and agg.total_weight == 2.0
    np.testing.assert_array_equal(agg.result(), [1.0, 2.0, 3.0])  # the NaN was not added
    with pytest.raises(ValueError, match=r"update has shape \(4,\), the first update had"):
        agg.add(np.ones(4))
    with pytest.raises(TypeError, match="update has dtype float32"):
        agg.add(np.ones(3, np.float32))
    with pytest.raises(TypeError, match="update must be an array like the first update"):
        agg.add([np.ones(3)])
    with pytest.raises(ValueError, match=r"weight must be >= 0, got -1\.0"):
        agg.add(np.ones(3), weight=-1)
    with pytest.raises(ValueError, match="weight must be finite"):
        agg.add(np.ones(3), weight=np.nan)
    with pytest.raises(TypeError, match="update must have dtype float32 or float64"):
        agg.add(np.ones(3, np.int32))
    out = np.empty(3)
    assert agg.result(out=out) is out
    strided = np.empty(6)[::2]
    agg.result(out=strided)
    np.testing.assert_array_equal(strided, [1.0, 2.0, 3.0])
    agg.reset()
    assert agg.count == 0 and agg.total_weight == 0.0
    agg.add([np.ones((2, 2), np.float32), np.zeros(1, np.float32)], weight=3)
    res = agg.result()
    assert [r.shape for r in res] == [(2, 2), (1,)] and res[0].dtype == np.float32
    with pytest.raises(ValueError, match="update has 1 layers, the first update had 2"):
        agg.add([np.ones((2, 2), np.float32)])
    with pytest.raises(ValueError, match=r"update\[1\] has shape \(2,\)"):
        agg.add([np.ones((2, 2), np.float32), np.zeros(2, np.float32)])
    with pytest.raises(TypeError, match=r"update\[1\] has dtype float64, update\[0\] has"):
        ag.StreamingFedAvg().add([np.ones(2, np.float32), np.ones(2)])
    with pytest.raises(ValueError, match="update must hold at least one layer"):
        ag.StreamingFedAvg().add([])
    big = ag.StreamingFedAvg()
    big.add(np.full(2, 1e308), 1.0)
    big.add(np.full(2, 1e308), 1.0)
    with pytest.raises(ValueError, match="the mean overflowed float64"):
        big.result()


# --- coordinate median and trimmed mean ------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_median_matches_reference_and_numpy(seed, dtype):
    for trial, n in enumerate([1, 2, 3, 4, 5, 8, 17, 32, 33, 100, None]):
        x, _ = _data(seed, dtype, n, None, 10, trial)
        msg = f"seed={seed} dtype={np.dtype(dtype)} shape={x.shape}"
        got = ag.coordinate_median(x)
        assert got.dtype == x.dtype
        np.testing.assert_array_equal(got, ref.coordinate_median(x), err_msg=msg)
        want = np.median(x.astype(np.float64), axis=0).astype(dtype)
        np.testing.assert_array_equal(got, want, err_msg=msg)


@pytest.mark.parametrize("dtype", DTYPES)
def test_median_ties_and_infinities(dtype):
    rng = _rng(FRESH, 11)
    for n in (2, 5, 6, 31, 64):
        x = rng.integers(-2, 3, (n, 200)).astype(dtype)  # many ties
        x[rng.random(x.shape) < 0.1] = np.inf
        x[rng.random(x.shape) < 0.1] = -np.inf
        want = ref.coordinate_median(x)
        defined = ~np.isnan(want)
        if defined.all():
            np.testing.assert_array_equal(ag.coordinate_median(x), want)
            with np.errstate(invalid="ignore"):
                np.testing.assert_array_equal(ag.coordinate_median(x), np.median(x, axis=0))
        else:
            with pytest.raises(ValueError, match="averages -inf and \\+inf"):
                ag.coordinate_median(x)
        k = 2 * n // 5
        want = ref.trimmed_mean(x, k)
        defined = ~np.isnan(want)  # NaN: the kept values include -inf and +inf
        np.testing.assert_array_equal(ag.trimmed_mean(x[:, defined], k), want[defined])
        if not defined.all():
            with pytest.raises(ValueError, match="is undefined: it averages -inf and \\+inf"):
                ag.trimmed_mean(x, k)


@pytest.mark.parametrize("dtype", DTYPES)
def test_median_nan_policies(dtype):
    x, rng = _data(FRESH, dtype, 15, 120, 12)
    x[rng.random(x.shape) < 0.3] = np.nan
    x[:, 7] = np.nan  # an all-NaN coordinate
    j = int(np.flatnonzero(np.isnan(x).any(axis=0))[0])  # the first coordinate with a NaN
    i = int(np.flatnonzero(np.isnan(x[:, j]))[0])
    with pytest.raises(ValueError, match=rf"updates\[{i}\] holds NaN at coordinate {j}"):
        ag.coordinate_median(x)
    with pytest.raises(ValueError, match="NaN for every client at coordinate 7"):
        ag.coordinate_median(x, nan="omit")
    keep = np.ones(120, bool)
    keep[7] = False
    y = x[:, keep]
    got = ag.coordinate_median(y, nan="omit")
    np.testing.assert_array_equal(got, ref.coordinate_median(y, omit=True), err_msg=f"{FRESH}")
    np.testing.assert_array_equal(got, np.nanmedian(y.astype(np.float64), 0).astype(dtype))
    with pytest.raises(ValueError, match="nan must be 'raise' or 'omit', got 'ignore'"):
        ag.coordinate_median(y, nan="ignore")


def test_median_parameter_lists_name_the_layer():
    x, _ = _data(FRESH, np.float64, 7, 24, 13)
    x[3, 12] = np.nan  # layer 1 starts at 12
    with pytest.raises(ValueError, match=r"updates\[3\] holds NaN at layer 1, coordinate 0"):
        ag.coordinate_median(_as_layers(x))
    x[3, 12] = 0.5
    got = ag.coordinate_median(_as_layers(x))
    assert [g.shape for g in got] == LAYER_SHAPES
    np.testing.assert_array_equal(_flat(got), np.median(x, axis=0))


def test_median_overflow_and_out():
    x = np.array([[1e308], [1.5e308], [-1.0], [1.7e308]])
    np.testing.assert_array_equal(ag.coordinate_median(x), [1e308 / 2 + 1.5e308 / 2])
    y, _ = _data(FRESH, np.float32, 9, 24, 14)
    out = np.empty(24, np.float32)
    assert ag.coordinate_median(y, out=out) is out
    np.testing.assert_array_equal(out, np.median(y, axis=0))
    with pytest.raises(TypeError, match="out must have dtype float32"):
        ag.coordinate_median(y, out=np.empty(24))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_trimmed_mean_matches_reference_and_scipy(seed, dtype):
    for trial, (n, trim) in enumerate(
        [
            (1, 0.1),
            (5, 0.2),
            (10, 0.1),
            (10, 0.3),
            (33, 0.25),
            (100, 0.1),
            (9, 0),
            (9, 4),
            (20, 0.49),
            (7, 0.0),
        ]
    ):
        x, _ = _data(seed, dtype, n, None, 20, trial)
        msg = f"seed={seed} dtype={np.dtype(dtype)} n={n} trim={trim}"
        got = ag.trimmed_mean(x, trim)
        assert got.dtype == x.dtype
        np.testing.assert_array_equal(got, ref.trimmed_mean(x, trim), err_msg=msg)
        k = trim if isinstance(trim, int) else int(trim * n)
        if isinstance(trim, float):
            want = st.trim_mean(x.astype(np.float64), trim, axis=0)
        else:
            want = np.sort(x.astype(np.float64), axis=0)[k : n - k].mean(axis=0)
        np.testing.assert_allclose(
            got, want, rtol=1e-6 if dtype == np.float32 else 1e-13, atol=1e-7, err_msg=msg
        )


def test_trimmed_mean_nan_omit_and_errors():
    x, rng = _data(FRESH, np.float64, 12, 80, 21)
    x[rng.random(x.shape) < 0.1] = np.nan
    x[:11, 5] = np.nan  # one value left at coordinate 5
    x[11, 5] = 0.25
    x[:, 6] = 1.0
    x[:, 6][::3] = np.nan
    with pytest.raises(ValueError, match=r"updates\[\d+\] holds NaN at coordinate \d+"):
        ag.trimmed_mean(x, 0.2)
    got = ag.trimmed_mean(x, 0.2, nan="omit")  # k = int(0.2 * m) per column
    np.testing.assert_array_equal(got, ref.trimmed_mean(x, 0.2, omit=True), err_msg=f"{FRESH}")
    assert got[5] == x[11, 5] and got[6] == 1.0
    with pytest.raises(
        ValueError, match="only 1 non-NaN values at coordinate 5, and trim cuts 1 from each side"
    ):
        ag.trimmed_mean(x, 1, nan="omit")
    y = np.array([[-np.inf, 1.0], [np.inf, 2.0], [0.0, 3.0]])
    np.testing.assert_array_equal(ag.trimmed_mean(y, 1), [0.0, 2.0])  # inf trimmed away
    with pytest.raises(ValueError, match="trimmed mean at coordinate 0 is undefined"):
        ag.trimmed_mean(y, 0)
    huge = np.full((3, 1), 1.7e308)  # the sum overflows: divided first
    np.testing.assert_array_equal(ag.trimmed_mean(huge), ref.trimmed_mean(huge, 0.1))
    np.testing.assert_allclose(ag.trimmed_mean(huge), [1.7e308], rtol=1e-15)


def test_trim_validation():
    x = np.ones((6, 3))
    cases = [
        (0.5, ValueError, r"trim must be in \[0, 0.5\), got 0.5"),
        (-0.1, ValueError, r"trim must be in \[0, 0.5\), got -0.1"),
        (np.nan, ValueError, "trim must be finite"),
        (3, ValueError, "trim must be < n_clients / 2 = 3 as a count per side, got 3"),
        (-1, ValueError, "trim must be >= 0, got -1"),
        (True, TypeError, "trim must be a float fraction or an int count, got bool"),
        ("0.1", TypeError, "trim must be a real number"),
    ]
    for trim, exc, pattern in cases:
        with pytest.raises(exc, match=pattern):
            ag.trimmed_mean(x, trim)
    with pytest.raises(ValueError, match="nan must be 'raise' or 'omit'"):
        ag.trimmed_mean(x, nan=None)
    np.testing.assert_array_equal(ag.trimmed_mean(x, np.int64(2)), np.ones(3))


# --- Krum --------------------------------------------------------------------------------


def _separated(scores, m):
    """Whether the m-th and (m+1)-th best reference scores are clearly apart."""
    s = np.sort(scores)
    return m >= len(s) or s[m] - s[m - 1] > 1e-9 * max(abs(s[m]), 1.0)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_krum_matches_reference(seed, dtype):
    for trial in range(5):
        rng = _rng(seed, 30, trial)
        n = int(rng.integers(3, 30))
        f = int(rng.integers(0, (n - 3) // 2 + 1))
        m = int(rng.integers(1, n + 1))
        x = (rng.standard_normal((n, int(rng.integers(1, 200)))) * 3).astype(dtype)
        msg = f"seed={seed} n={n} f={f} m={m} dtype={np.dtype(dtype)}"
        res = ag.krum(x, f, m=m)
        _, want_idx, want_scores = ref.krum(x.astype(np.float64), f, m)
        np.testing.assert_allclose(res.scores, want_scores, rtol=1e-10, err_msg=msg)
        assert res.indices.dtype == np.int64 and res.scores.dtype == np.float64
        if _separated(want_scores, m):
            assert sorted(res.indices.tolist()) == sorted(want_idx.tolist()), msg
            np.testing.assert_array_equal(
                res.update, ref.fedavg(x[np.sort(res.indices)]), err_msg=msg
            )
        assert res.update.dtype == x.dtype
        np.testing.assert_array_equal(res.indices, np.argsort(res.scores, kind="stable")[:m])


def test_krum_picks_honest_clients_under_attack():
    rng = _rng(FRESH, 31)
    n, f, d = 20, 5, 500
    center = rng.standard_normal(d)
    honest = center + 0.1 * rng.standard_normal((n - f, d))
    attacks = {
        "large": 100 * rng.standard_normal((f, d)),
        "sign flip": -10 * np.repeat(center[None], f, axis=0),
        "colluding": np.repeat((center + 2.0)[None], f, axis=0)
        + 1e-3 * rng.standard_normal((f, d)),
    }
    for name, byz in attacks.items():
        x = np.concatenate([byz[:2], honest, byz[2:]])  # Byzantine rows at both ends
        byz_rows = {0, 1, *range(n - f + 2, n)}
        res = ag.krum(x, f)
        assert int(res.indices[0]) not in byz_rows, f"{name} seed={FRESH}"
        np.testing.assert_array_equal(res.update, x[res.indices[0]])
        multi = ag.multi_krum(x, f)
        assert len(multi.indices) == n - f
        assert not byz_rows & set(multi.indices.tolist()), f"{name} seed={FRESH}"
        np.testing.assert_array_equal(multi.update, ref.fedavg(honest))  # all honest, in order
        np.testing.assert_array_equal(ag.krum(x, f, m=n - f).update, multi.update)
        assert ag.multi_krum(x, f, 3).indices[0] == res.indices[0]


def test_krum_is_accurate_under_a_large_common_offset():
    # |a|² + |b|² - 2a·b cancels catastrophically without centring: 1e6 offset, 1e-3 spread
    rng = _rng(FRESH, 32)
    x = rng.standard_normal((12, 400)) * 1e-3
    x[5] *= 0.01  # the most central client by far
    x[7] *= 0.5
    res = ag.krum(x + 1e6, 2)
    np.testing.assert_allclose(res.scores, ref.krum_scores(x, 2), rtol=1e-3)
    assert res.indices[0] == 5


def test_krum_ties_and_duplicates():
    base = _rng(FRESH, 33).standard_normal(50)
    x = np.stack([base] * 6 + [base + 5.0, base - 5.0])
    res = ag.krum(x, 1, m=3)
    assert set(res.indices.tolist()) <= set(range(6))
    np.testing.assert_allclose(res.update, base, rtol=1e-15)
    assert res.scores[:6].max() < 1e-9 * res.scores[6:].min()
    np.testing.assert_array_equal(ag.krum(x, 1).update, x[ag.krum(x, 1).indices[0]])


def test_krum_structures_and_out():
    x, _ = _data(FRESH, np.float32, 11, 24, 34)
    want = ag.krum(x, 2, m=3)
    for name, updates in _structures(x):
        got = ag.krum(updates, 2, m=3)
        np.testing.assert_array_equal(got.indices, want.indices, err_msg=name)
        np.testing.assert_array_equal(_flat(got.update), _flat(want.update), err_msg=name)
    outs = [np.empty(s, np.float32) for s in LAYER_SHAPES]
    assert ag.krum(_as_layers(x), 2, m=3, out=outs).update is outs
    np.testing.assert_array_equal(_flat(outs), want.update)


def test_krum_nonfinite_policies():
    x, _ = _data(FRESH, np.float64, 10, 30, 35)
    x[3, 4] = np.nan
    x[8, 0] = -np.inf
    with pytest.raises(ValueError, match=r"updates\[3\] must contain only finite values"):
        ag.krum(x, 2)
    res = ag.multi_krum(x, 2, 5, nonfinite="exclude")
    assert np.isinf(res.scores[[3, 8]]).all() and np.isfinite(np.delete(res.scores, [3, 8])).all()
    assert not {3, 8} & set(res.indices.tolist())
    good = np.delete(np.arange(10), [3, 8])
    np.testing.assert_allclose(
        np.delete(res.scores, [3, 8]), _scores_with_excluded(x, good, 2), rtol=1e-10
    )
    with pytest.raises(ValueError, match="m must be <= the number of clients with a finite score"):
        ag.multi_krum(x, 2, 9, nonfinite="exclude")
    with pytest.raises(ValueError, match="nonfinite must be 'raise' or 'exclude'"):
        ag.krum(x, 2, nonfinite="omit")
    with pytest.raises(ValueError, match="squared distances overflow float64"):
        ag.krum(np.full((5, 3), 1e300) * np.arange(1, 6)[:, None], 1)


def _scores_with_excluded(x, good, f):
    """Reference scores of the finite clients when the others are infinitely far."""
    n = x.shape[0]
    d = ref.pairwise_sq_distances(x[good])
    scores = []
    for i in range(len(good)):
        others = np.sort(np.concatenate([np.delete(d[i], i), np.full(n - len(good), np.inf)]))
        scores.append(others[: n - f - 2].sum())
    return np.array(scores)


def test_krum_validation():
    x = np.ones((6, 3))
    with pytest.raises(
        ValueError,
        match=r"n_byzantine must satisfy n_clients > 2 \* "
        r"n_byzantine \+ 2 .* n_clients = 6 and "
        "n_byzantine = 2",
    ):
        ag.krum(x, 2)
    with pytest.raises(ValueError, match="n_byzantine must be >= 0, got -1"):
        ag.krum(x, -1)
    with pytest.raises(TypeError, match="n_byzantine must be an int"):
        ag.krum(x, 1.0)
    with pytest.raises(ValueError, match="m must be >= 1, got 0"):
        ag.krum(x, 1, m=0)
    with pytest.raises(ValueError, match="m must be <= n_clients = 6, got 7"):
        ag.multi_krum(x, 1, 7)
    with pytest.raises(ValueError, match="n_byzantine must satisfy"):
        ag.krum(np.ones((2, 3)), 0)
    assert ag.multi_krum(x, 1).indices.size == 5
    np.testing.assert_array_equal(ag.krum(np.ones((3, 0)), 0).update, np.ones(0))


# --- FedProx -----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_fedprox_gradient(dtype):
    for seed in SEEDS:
        rng = _rng(seed, 40)
        g, w, wg = (rng.standard_normal((7, 9)).astype(dtype) for _ in range(3))
        mu = float(rng.random())
        want = ref.fedprox_gradient(g, w, wg, mu)
        got = ag.fedprox_gradient(g, w, wg, mu)
        assert got.dtype == g.dtype
        np.testing.assert_array_equal(got, want, err_msg=f"seed={seed}")
        layers = ag.fedprox_gradient([g, g[0]], [w, w[0]], [wg, wg[0]], mu)
        np.testing.assert_array_equal(layers[0], want)
        np.testing.assert_array_equal(layers[1], want[0])
        inplace = g.copy()
        assert ag.fedprox_gradient(inplace, w, wg, mu, out=inplace) is inplace
        np.testing.assert_array_equal(inplace, want)
        shifted = np.concatenate([g.reshape(-1), np.zeros(1, dtype)])
        ag.fedprox_gradient(
            shifted[:-1].reshape(7, 9), w, wg, mu, out=shifted[1:].reshape(7, 9)
        )  # overlapping, shifted by one
        np.testing.assert_array_equal(shifted[1:].reshape(7, 9), want)
        fort = np.asfortranarray(np.empty((7, 9), dtype))
        ag.fedprox_gradient(np.asfortranarray(g), w, wg, mu, out=fort)
        np.testing.assert_array_equal(fort, want)
    np.testing.assert_array_equal(ag.fedprox_gradient(g, w, wg, 0.0), g)
    nan = g.copy()
    nan[0, 0] = np.nan
    assert np.isnan(ag.fedprox_gradient(nan, w, wg, 0.1)[0, 0])  # propagates, like the grad


def test_fedprox_validation():
    g = np.ones(3)
    with pytest.raises(ValueError, match=r"mu must be >= 0, got -0\.1"):
        ag.fedprox_gradient(g, g, g, -0.1)
    with pytest.raises(ValueError, match="mu must be finite"):
        ag.fedprox_gradient(g, g, g, np.inf)
    with pytest.raises(ValueError, match=r"weights has shape \(4,\), grad has \(3,\)"):
        ag.fedprox_gradient(g, np.ones(4), g, 0.1)
    with pytest.raises(TypeError, match="global_weights has dtype float32, grad has float64"):
        ag.fedprox_gradient(g, g, g.astype(np.float32), 0.1)
    with pytest.raises(ValueError, match="global_weights must have grad's structure"):
        ag.fedprox_gradient([g], [g], g, 0.1)
    with pytest.raises(ValueError, match="weights must have grad's structure"):
        ag.fedprox_gradient([g, g], [g], [g, g], 0.1)
    with pytest.raises(TypeError, match="grad must have dtype float32 or float64"):
        ag.fedprox_gradient(np.ones(3, int), g, g, 0.1)
    with pytest.raises(ValueError, match="out must have shape"):
        ag.fedprox_gradient(g, g, g, 0.1, out=np.empty(2))
    with pytest.raises(ValueError, match="grad must hold at least one layer"):
        ag.fedprox_gradient([], [], [], 0.1)


# --- DP-FedAvg ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_dp_fedavg_without_noise_is_the_clipped_mean(dtype):
    x, rng = _data(FRESH, dtype, 9, 24, 50)
    x *= rng.random((9, 1)) * 3  # norms on both sides of C
    w = rng.random(9)
    tol = {"rtol": 1e-5 if dtype == np.float32 else 1e-12, "atol": 1e-7}
    gen = np.random.default_rng(0)
    for name, updates in _structures(x):
        res = ag.dp_fedavg(updates, 2.0, 0.0)
        np.testing.assert_allclose(
            _flat(res.update), ref.dp_fedavg(x, 2.0, 0.0, gen), **tol, err_msg=name
        )
        assert _flat(res.update).dtype == x.dtype
        res = ag.dp_fedavg(updates, 2.0, 0.0, weights=w, expected_clients=4.5)
        np.testing.assert_allclose(
            _flat(res.update),
            ref.dp_fedavg(x, 2.0, 0.0, gen, weights=w, denominator=4.5),
            **tol,
            err_msg=name,
        )
        assert res.denominator == 4.5 and res.n_clients == 9
    res = ag.dp_fedavg(x, 2.0, 0.0, weights=w)
    assert res.denominator == float(np.cumsum(w)[-1])


def test_dp_fedavg_result_fields_and_accounting():
    x, _ = _data(FRESH, np.float64, 8, 24, 51)
    res = ag.dp_fedavg(x, 1.5, 1.1, rng=3, expected_clients=10, sample_rate=0.01)
    assert isinstance(res, ag.DPFedAvgResult)
    assert res.clip_norm == 1.5 and res.n_clients == 8 and res.denominator == 10.0
    assert res.noise_std == pytest.approx(1.1 * 1.5 / 10)
    assert res.noise_multiplier == 1.1 and res.sample_rate == 0.01
    assert res.accounting == {"noise_multiplier": 1.1, "sample_rate": 0.01}
    acc = RDPAccountant()
    for _ in range(3):
        acc.step(**res.accounting)
    direct = RDPAccountant()
    for _ in range(3):
        direct.step(noise_multiplier=1.1, sample_rate=0.01)
    assert acc.get_epsilon(1e-5) == direct.get_epsilon(1e-5)
    with pytest.raises(ValueError, match="sample_rate was not given to dp_fedavg"):
        _ = ag.dp_fedavg(x, 1.0, 1.0, rng=1).accounting
    a = ag.dp_fedavg(x, 1.0, 1.0, rng=7).update
    np.testing.assert_array_equal(a, ag.dp_fedavg(x, 1.0, 1.0, rng=7).update)  # seeded
    assert not np.array_equal(
        ag.dp_fedavg(x, 1.0, 1.0).update, ag.dp_fedavg(x, 1.0, 1.0).update
    )  # secure stream


def test_dp_fedavg_nonfinite_and_empty_rounds():
    x, _ = _data(FRESH, np.float64, 6, 24, 52)
    x[2, 3] = np.nan
    with pytest.raises(ValueError, match=r"updates\[2\] must contain only finite values"):
        ag.dp_fedavg(x, 1.0, 0.0)
    with pytest.raises(ValueError, match=r"updates\[2\] must contain only finite values"):
        ag.dp_fedavg(x, 1.0, 0.0, weights=np.ones(6))
    gen = np.random.default_rng(0)
    for weights in (None, np.ones(6)):
        res = ag.dp_fedavg(x, 1.0, 0.0, weights=weights, nonfinite="zero", expected_clients=6)
        np.testing.assert_allclose(
            res.update,
            ref.dp_fedavg(np.delete(x, 2, 0), 1.0, 0.0, gen, denominator=6.0),
            rtol=1e-12,
        )
    empty = ag.dp_fedavg(np.zeros((0, 5)), 1.0, 2.0, rng=1, expected_clients=4)
    assert empty.update.shape == (5,) and empty.n_clients == 0 and np.all(empty.update != 0)
    assert empty.noise_std == pytest.approx(2.0 / 4)
    with pytest.raises(ValueError, match="expected_clients must be given when the round has no"):
        ag.dp_fedavg(np.zeros((0, 5)), 1.0, 2.0)
    with pytest.raises(ValueError, match="updates must hold at least one client"):
        ag.dp_fedavg([], 1.0, 2.0, expected_clients=3)


def test_dp_fedavg_validation():
    x = np.ones((4, 3))
    cases = [
        (dict(clip_norm=0.0), ValueError, "clip_norm must be > 0, got 0.0"),
        (dict(clip_norm=None), TypeError, "clip_norm must be a positive number"),
        (dict(noise_multiplier=-1.0), ValueError, "noise_multiplier must be >= 0, got -1.0"),
        (
            dict(weights=[0.5, 1.5, 1.0, 1.0]),
            ValueError,
            "weights must be <= 1 .* got 1.5 at index 1",
        ),
        (dict(weights=[0.5, -0.5, 1.0, 1.0]), ValueError, "weights must be >= 0"),
        (dict(weights=[1.0, 1.0]), ValueError, "weights must have shape"),
        (dict(expected_clients=0), ValueError, "expected_clients must be > 0, got 0"),
        (dict(sample_rate=0.0), ValueError, r"sample_rate must be in \(0, 1\], got 0.0"),
        (dict(sample_rate=1.5), ValueError, r"sample_rate must be in \(0, 1\]"),
        (dict(nonfinite="drop"), ValueError, "nonfinite must be 'raise' or 'zero'"),
        (
            dict(adaptive=object(), clip_norm=None),
            TypeError,
            "adaptive must be a ppml_fast.clipping.Adaptive",
        ),
        (
            dict(clip_norm=1e300, noise_multiplier=1e10),
            ValueError,
            "noise_multiplier \\* clip_norm = .* too large",
        ),
    ]
    for kw, exc, pattern in cases:
        args = {"clip_norm": 1.0, "noise_multiplier": 1.0, "rng": 1, **kw}
        with pytest.raises(exc, match=pattern):
            ag.dp_fedavg(x, **args)


def test_dp_fedavg_adaptive_clipping():
    x, _ = _data(FRESH, np.float64, 10, 24, 53)  # norms about sqrt(24) ~ 4.9 > C = 1
    for weights in (None, np.full(10, 0.5)):
        ad = AdaptiveClipping(1.0, expected_batch_size=10, count_noise_std=2.0, rng=5)
        sigma_update = ad.gradient_noise_multiplier(1.2)
        res = ag.dp_fedavg(x, None, 1.2, adaptive=ad, weights=weights, sample_rate=0.1)
        assert res.clip_norm == 1.0 and res.noise_multiplier == 1.2
        assert res.denominator == 10.0
        assert res.noise_std == pytest.approx(sigma_update * 1.0 / 10)
        assert res.accounting == {"noise_multiplier": 1.2, "sample_rate": 0.1}
        assert len(ad.history) == 1 and ad.history[0][0] == 1.0
        assert ad.clip_norm > 1.0  # every client was clipped: the norm grows
        again = ag.dp_fedavg(x, None, 1.2, adaptive=ad, weights=weights)
        assert again.clip_norm == ad.history[1][0] > 1.0
    ad = AdaptiveClipping(1.0, expected_batch_size=10, count_noise_std=2.0)
    with pytest.raises(ValueError, match="clip_norm must be None when adaptive is given"):
        ag.dp_fedavg(x, 1.0, 1.2, adaptive=ad)
    with pytest.raises(
        ValueError,
        match=r"expected_clients must equal "
        r"adaptive\.expected_batch_size = 10",
    ):
        ag.dp_fedavg(x, None, 1.2, adaptive=ad, expected_clients=8)
    with pytest.raises(ValueError, match="noise_multiplier must be < 2 \\* count_noise_std"):
        ag.dp_fedavg(x, None, 5.0, adaptive=ad)
    assert ad.history == []  # nothing ran


@pytest.mark.slow
@pytest.mark.parametrize("weighted", [False, True])
def test_dp_fedavg_noise_is_gaussian_with_the_reported_std(weighted):
    """Zero updates, so the result is pure noise: N(0, noise_std²) in each of N = 4·10^6
    coordinates. Each assertion has a false-alarm rate of at most 1e-6: the sample variance
    is within 4.9 sqrt(2/N) (relative) of noise_std², the mean within 4.9 noise_std /
    sqrt(N) of 0 (|z| > 4.9 has probability 1e-6), and a KS test against the normal has
    p > 1e-6."""
    d = 4_000_000
    x = np.zeros((5, d), dtype=np.float32)
    weights = np.full(5, 0.8) if weighted else None
    res = ag.dp_fedavg(x, 2.0, 1.3, weights=weights, expected_clients=7)
    assert res.noise_std == pytest.approx(1.3 * 2.0 / 7)
    v = res.update.astype(np.float64)
    s = res.noise_std
    assert abs(v.var() / s**2 - 1) < 4.9 * math.sqrt(2 / d)
    assert abs(v.mean()) < 4.9 * s / math.sqrt(d)
    assert st.kstest(v[:200_000] / s, "norm").pvalue > 1e-6


def test_dp_fedavg_agrees_with_clipping_dp_aggregate():
    from ppml_fast.clipping import dp_aggregate

    x, rng = _data(FRESH, np.float64, 16, 24, 54)
    x *= rng.random((16, 1)) * 2
    got = ag.dp_fedavg(x, 1.3, 0.0, expected_clients=20)
    want = dp_aggregate(x, 1.3, 0.0, expected_batch_size=20).gradient
    np.testing.assert_allclose(got.update, want, rtol=1e-13, atol=1e-16, err_msg=f"{FRESH}")


# --- the thread pool -----------------------------------------------------------------------


def _fedavg_in_child(x):
    return ag.fedavg(x)


def test_kernels_run_concurrently_and_after_fork():
    import concurrent.futures as cf
    import multiprocessing as mp

    x, _ = _data(FRESH, np.float32, 16, 50_000, 60)  # big enough to use the pool
    want = ref.fedavg(x)
    with ppml_fast.num_threads(2), cf.ThreadPoolExecutor(4) as ex:
        jobs = [ex.submit(ag.fedavg, x) for _ in range(8)]
        jobs += [ex.submit(ag.coordinate_median, x) for _ in range(4)]
        for job in jobs[:8]:
            np.testing.assert_array_equal(job.result(timeout=60), want)
        for job in jobs[8:]:
            np.testing.assert_array_equal(job.result(timeout=60), ref.coordinate_median(x))
    if "fork" in mp.get_all_start_methods():
        with mp.get_context("fork").Pool(1) as pool:  # the parent's pool threads are gone
            np.testing.assert_array_equal(
                pool.apply_async(_fedavg_in_child, (x,)).get(timeout=60), want
            )
