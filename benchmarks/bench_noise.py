"""pytest-benchmark: continuous samplers, reference (numpy PCG64) vs native (secure AES-CTR).

Run: ``pytest benchmarks/bench_noise.py --benchmark-enable``; compare groups per operation.
"""

import numpy as np
import pytest

from ppml_fast import noise
from ppml_fast.reference import noise as ref

SIZES = [10**5, 10**7]
IMPLS = ["reference", "native"]


def _call(name, impl, n, dtype):
    if impl == "native":
        f = getattr(noise, name)
        return lambda: f(1.0, n, dtype=dtype)
    f = getattr(ref, name)
    g = np.random.Generator(np.random.PCG64())
    return lambda: f(1.0, n, rng=g, dtype=dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("name", ["laplace", "gaussian"])
def test_sampler(benchmark, name, impl, n, dtype):
    benchmark.group = f"{name} n={n:.0e} {np.dtype(dtype).name}"
    benchmark.extra_info["samples_per_call"] = n
    fn = _call(name, impl, n, dtype)
    result = benchmark(fn)
    assert result.shape == (n,)
    if benchmark.stats is not None:
        benchmark.extra_info["Msamples_per_s"] = n / benchmark.stats.stats.min / 1e6
