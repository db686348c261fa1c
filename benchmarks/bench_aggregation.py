"""pytest-benchmark: federated aggregators, native vs the numpy references (and peers).

Run: ``pytest benchmarks/bench_aggregation.py --benchmark-enable``. Default sizes are
small enough for a quick run (FedAvg 1000 x 10^4, Krum and the coordinate-wise
statistics 100 x 10^4, float32); ``PPML_BENCH_FULL=1`` gives the issue's sizes (FedAvg
1000 x 10^5, 400 MB; Krum 100 x 10^6, 400 MB, whose reference takes seconds per call).
``extra_info`` records GB/s of updates read per call and, for FedAvg, the read probe's
GB/s measured in the same session (the issue asks FedAvg for at most 1.5x the time of
one read of the matrix).
"""

import os

import numpy as np
import pytest

import ppml_fast
from ppml_fast import aggregation as ag
from ppml_fast._native import clipping as kernels
from ppml_fast.reference import aggregation as ref

FULL = bool(os.environ.get("PPML_BENCH_FULL"))
N_AVG, D_AVG = 1000, 10**5 if FULL else 10**4
N_ROBUST, D_ROBUST = 100, 10**5 if FULL else 10**4
D_KRUM = 10**6 if FULL else 10**4


def _matrix(n, d, dtype=np.float32):
    return (
        np.random.default_rng(n + d)
        .standard_normal((n, d), dtype=np.float32)
        .astype(dtype, copy=False)
    )


@pytest.fixture(scope="module", params=[np.float32, np.float64], ids=["f32", "f64"])
def avg_data(request):
    x = _matrix(N_AVG, D_AVG, request.param)
    w = np.random.default_rng(1).integers(1, 500, N_AVG).astype(np.float64)
    return x, w


def _record(benchmark, nbytes):
    benchmark.extra_info["bytes_read_per_call"] = nbytes
    if benchmark.stats is not None:
        benchmark.extra_info["GB_per_s"] = nbytes / benchmark.stats.stats.min / 1e9


@pytest.mark.parametrize("impl", ["reference", "numpy-gemv", "native", "read-probe"])
def test_fedavg(benchmark, avg_data, impl):
    x, w = avg_data
    benchmark.group = f"fedavg {N_AVG}x{D_AVG:.0e} {x.dtype}"
    wd, total = w.astype(x.dtype), x.dtype.type(w.sum())
    fn = {
        "reference": lambda: ref.fedavg_numpy(x, w),
        "numpy-gemv": lambda: (wd @ x) / total,
        "native": lambda: ag.fedavg(x, w),
        "read-probe": lambda: kernels.read_probe(x, ppml_fast.get_num_threads()),
    }[impl]
    result = benchmark(fn)
    if impl != "read-probe":
        assert np.asarray(result).shape == (D_AVG,)
    _record(benchmark, x.nbytes)


@pytest.mark.parametrize("impl", ["reference", "native"])
def test_streaming_fedavg(benchmark, avg_data, impl):
    x, w = avg_data
    benchmark.group = f"StreamingFedAvg.add x n {N_AVG}x{D_AVG:.0e} {x.dtype}"

    def native():
        agg = ag.StreamingFedAvg()
        for row, wi in zip(x, w, strict=True):
            agg.add(row, wi)
        return agg.result()

    def reference():
        acc = np.zeros(D_AVG)
        for row, wi in zip(x, w, strict=True):
            acc += wi * row
        return (acc / w.sum()).astype(x.dtype)

    result = benchmark(native if impl == "native" else reference)
    assert result.shape == (D_AVG,)
    _record(benchmark, x.nbytes)


@pytest.mark.parametrize("impl", ["reference", "native"])
def test_dp_fedavg(benchmark, avg_data, impl):
    x, _ = avg_data
    benchmark.group = f"dp_fedavg {N_AVG}x{D_AVG:.0e} {x.dtype}"
    pcg = np.random.Generator(np.random.PCG64(1))
    if impl == "native":
        fn = lambda: ag.dp_fedavg(x, 50.0, 1.0, expected_clients=N_AVG).update  # noqa: E731
    else:
        fn = lambda: ref.dp_fedavg(x, 50.0, 1.0, pcg, denominator=float(N_AVG))  # noqa: E731
    assert benchmark(fn).shape == (D_AVG,)
    _record(benchmark, x.nbytes)


@pytest.fixture(scope="module")
def robust_data():
    return _matrix(N_ROBUST, D_ROBUST)


@pytest.mark.parametrize("impl", ["reference", "numpy", "native"])
@pytest.mark.parametrize("name", ["coordinate_median", "trimmed_mean"])
def test_coordinate_wise(benchmark, robust_data, name, impl):
    x = robust_data
    benchmark.group = f"{name} {N_ROBUST}x{D_ROBUST:.0e} f32"
    if impl == "reference":  # the per-column sorted oracle: slow, run it on 1/10 of x
        x = x[:, : D_ROBUST // 10]
        benchmark.group += " (reference on D/10)"
    if name == "coordinate_median":
        fn = {
            "reference": lambda: ref.coordinate_median(x),
            "numpy": lambda: np.median(x, axis=0),
            "native": lambda: ag.coordinate_median(x),
        }[impl]
    else:
        st = pytest.importorskip("scipy.stats")
        fn = {
            "reference": lambda: ref.trimmed_mean(x, 0.1),
            "numpy": lambda: st.trim_mean(x, 0.1, axis=0),
            "native": lambda: ag.trimmed_mean(x, 0.1),
        }[impl]
    assert benchmark(fn).shape == (x.shape[1],)
    _record(benchmark, x.nbytes)


@pytest.fixture(scope="module")
def krum_data():
    return _matrix(100, D_KRUM)


@pytest.mark.parametrize("impl", ["reference", "native"])
def test_krum(benchmark, krum_data, impl):
    x = krum_data
    benchmark.group = f"krum f=10 100x{D_KRUM:.0e} f32"
    if impl == "native":
        fn = lambda: ag.krum(x, 10).indices  # noqa: E731
    else:
        fn = lambda: ref.krum(x, 10)[1]  # noqa: E731
    if FULL and impl == "reference":  # seconds per call: a few rounds are enough
        result = benchmark.pedantic(fn, rounds=2, iterations=1)
    else:
        result = benchmark(fn)
    assert result.shape == (1,)
    _record(benchmark, x.nbytes)


@pytest.mark.parametrize("impl", ["reference", "native"])
def test_fedprox_gradient(benchmark, impl):
    size = 10**7 if FULL else 10**6
    g, w, wg = _matrix(3, size)
    benchmark.group = f"fedprox_gradient {size:.0e} f32"
    fn = ag.fedprox_gradient if impl == "native" else ref.fedprox_gradient
    assert benchmark(fn, g, w, wg, 0.01).shape == (size,)
    _record(benchmark, 3 * g.nbytes)
