"""pytest-benchmark: per-sample clipping, native vs the numpy pipelines vs torch.

Run: ``pytest benchmarks/bench_clipping.py --benchmark-enable``. The default batch is
256 x 10^5 float32 (100 MB); set ``PPML_BENCH_FULL=1`` for the issue's 256 x 10^6 (1 GB;
the plain numpy pipeline then needs about 3 GB). ``extra_info`` records GB/s of G read
per call and, for comparison, the read probe's GB/s measured in the same session.
"""

import os

import numpy as np
import pytest

import ppml_fast
from ppml_fast import clipping
from ppml_fast._native import clipping as kernels
from ppml_fast.reference import clipping as ref

B = 256
D = 10**6 if os.environ.get("PPML_BENCH_FULL") else 10**5
C, SIGMA = 1.0, 1.1


@pytest.fixture(scope="module")
def g():
    x = np.random.default_rng(0).random((B, D), dtype=np.float32)
    x -= 0.5
    return x


def _torch_impls(t, name):
    torch = pytest.importorskip("torch")

    def total():
        norms = torch.linalg.vector_norm(t, dim=1)
        return torch.mv(t.t(), (C / norms).clamp(max=1.0))

    if name == "clip_and_sum":
        return total
    return lambda: (total() + torch.normal(0.0, SIGMA * C, size=(D,))) / B


def _impl(name, impl, g):
    pcg = np.random.Generator(np.random.PCG64(1))
    if impl == "native":
        if name == "clip_and_sum":
            return lambda: clipping.clip_and_sum(g, C)
        return lambda: clipping.dp_aggregate(g, C, SIGMA, expected_batch_size=B).gradient
    if impl == "reference":
        if name == "clip_and_sum":
            return lambda: ref.numpy_plain_sum(g, C)
        return lambda: ref.numpy_pipeline(g, C, SIGMA, pcg, float(B))
    if impl == "numpy-tuned":
        return lambda: ref.numpy_tuned_sum(g, C)
    torch = pytest.importorskip("torch")
    return _torch_impls(torch.from_numpy(g), name)


def _record(benchmark, g):
    benchmark.extra_info["bytes_read_per_call"] = g.nbytes
    if benchmark.stats is not None:
        benchmark.extra_info["GB_per_s"] = g.nbytes / benchmark.stats.stats.min / 1e9


@pytest.mark.parametrize("impl", ["reference", "numpy-tuned", "torch", "native"])
@pytest.mark.parametrize("name", ["clip_and_sum", "dp_aggregate"])
def test_clip_sum(benchmark, g, name, impl):
    benchmark.group = f"{name} {B}x{D:.0e} f32"
    result = benchmark(_impl(name, impl, g))
    assert np.asarray(result).shape == (D,)
    _record(benchmark, g)


@pytest.mark.parametrize("impl", ["reference", "native"])
def test_clip_in_place(benchmark, g, impl):
    benchmark.group = f"clip_per_sample in place {B}x{D:.0e} f32"
    x = g.copy()
    state = {"c": C}

    def call():
        state["c"] *= 0.999  # every call rescales every row
        if impl == "native":
            return clipping.clip_per_sample(x, state["c"], out=x)
        return ref.numpy_clip_inplace(x, state["c"])

    result = benchmark(call)
    assert result.shape == (B, D)
    _record(benchmark, g)


def test_read_probe(benchmark, g):
    """The machine's read bandwidth in this session: one plain read of G."""
    benchmark.group = f"read probe {B}x{D:.0e} f32"
    benchmark(lambda: kernels.read_probe(g, ppml_fast.get_num_threads()))
    _record(benchmark, g)
