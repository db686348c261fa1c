"""pytest-benchmark: DP mechanisms and statistics, reference (plain numpy, PCG64) vs native
(fused kernels, secure AES-CTR stream), and diffprivlib where installed.

Run: ``pytest benchmarks/bench_mechanisms.py --benchmark-enable``; one group per operation
and size. The native Laplace/Gaussian mechanisms also record ``vs_bare_sampler``: their
best time over that of ``noise.laplace`` / ``noise.gaussian`` on the same size (the
issue's target: <= 1.2 at 10^6).
"""

import numpy as np
import pytest

from ppml_fast import mechanisms, noise, stats
from ppml_fast._bench import time_call
from ppml_fast.reference import mechanisms as ref
from ppml_fast.reference import stats as ref_stats
from ppml_fast.rng import default_rng

EPS, DELTA = 1.0, 1e-5
SECURE = default_rng()


def _peer(name, kind, x):
    if name != "diffprivlib":
        return None
    dpl = pytest.importorskip("diffprivlib.mechanisms")
    if x.size > 10**4:
        pytest.skip("diffprivlib randomises one value per Python call: small sizes only")
    mech = (
        dpl.Laplace(epsilon=EPS, sensitivity=1.0)
        if kind == "laplace"
        else dpl.Gaussian(epsilon=EPS, delta=DELTA, sensitivity=1.0)
    )
    data = x.tolist()
    return lambda: [mech.randomise(v) for v in data]


@pytest.mark.parametrize("n", [10**4, 10**6, 10**7])
@pytest.mark.parametrize("impl", ["reference", "native", "diffprivlib"])
@pytest.mark.parametrize("kind", ["laplace", "gaussian"])
def test_additive_mechanism(benchmark, kind, impl, n):
    benchmark.group = f"{kind}_mechanism n={n:.0e}"
    x = np.linspace(-1.0, 1.0, n)
    if impl == "native":
        fn = (
            (lambda: mechanisms.laplace_mechanism(x, 1.0, EPS, rng=SECURE))
            if kind == "laplace"
            else (lambda: mechanisms.gaussian_mechanism(x, 1.0, EPS, DELTA, rng=SECURE))
        )
    elif impl == "reference":
        g = np.random.Generator(np.random.PCG64())
        fn = (
            (lambda: ref.laplace_mechanism(x, 1.0, EPS, rng=g))
            if kind == "laplace"
            else (lambda: ref.gaussian_mechanism(x, 1.0, EPS, DELTA, rng=g))
        )
    else:
        fn = _peer(impl, kind, x)
    benchmark(fn)
    benchmark.extra_info["values_per_call"] = n
    if benchmark.stats is not None:
        benchmark.extra_info["Mvalues_per_s"] = n / benchmark.stats.stats.min / 1e6
        if impl == "native":
            sigma = mechanisms.gaussian_sigma(EPS, DELTA)
            bare = time_call(
                (lambda: noise.laplace(1.0 / EPS, n, rng=SECURE))
                if kind == "laplace"
                else (lambda: noise.gaussian(sigma, n, rng=SECURE))
            )
            benchmark.extra_info["vs_bare_sampler"] = benchmark.stats.stats.min / bare


@pytest.mark.parametrize(
    "shape", [(1000, 1000), (10**5, 10), (10, 10**5)], ids=lambda s: f"{s[0]}x{s[1]}"
)
@pytest.mark.parametrize("impl", ["reference", "native"])
def test_exponential_mechanism(benchmark, impl, shape):
    benchmark.group = f"exponential_mechanism {shape[0]}x{shape[1]}"
    u = np.random.default_rng(0).normal(size=shape)
    if impl == "native":
        fn = lambda: mechanisms.exponential_mechanism(u, EPS, 1.0, rng=SECURE)  # noqa: E731
    else:
        g = np.random.Generator(np.random.PCG64())
        fn = lambda: ref.exponential_mechanism(u, EPS, 1.0, rng=g)  # noqa: E731
    result = benchmark(fn)
    assert result.shape == (shape[0],)
    if benchmark.stats is not None:
        benchmark.extra_info["Mutilities_per_s"] = u.size / benchmark.stats.stats.min / 1e6


@pytest.mark.parametrize("impl", ["reference", "native"])
def test_randomized_response(benchmark, impl):
    n = 10**6
    benchmark.group = f"randomized_response n={n:.0e}"
    bits = np.random.default_rng(0).random(n) < 0.5
    g = SECURE if impl == "native" else np.random.Generator(np.random.PCG64())
    f = mechanisms.randomized_response if impl == "native" else ref.randomized_response
    benchmark(lambda: f(bits, EPS, rng=g))
    if benchmark.stats is not None:
        benchmark.extra_info["Mbits_per_s"] = n / benchmark.stats.stats.min / 1e6


@pytest.mark.parametrize("n", [10**6, 10**7])
@pytest.mark.parametrize("impl", ["reference", "native"])
@pytest.mark.parametrize("name", ["dp_sum", "dp_mean", "dp_var", "dp_histogram"])
def test_stats(benchmark, name, impl, n):
    benchmark.group = f"{name} n={n:.0e}"
    x = np.random.default_rng(0).normal(1.0, 2.0, n)
    mod = stats if impl == "native" else ref_stats
    g = SECURE if impl == "native" else np.random.Generator(np.random.PCG64())
    f = getattr(mod, name)
    if name == "dp_histogram":
        benchmark(lambda: f(x, bins=64, range=(-1.0, 3.0), epsilon=EPS, rng=g))
    else:
        benchmark(lambda: f(x, bounds=(-1.0, 3.0), epsilon=EPS, rng=g))
    if benchmark.stats is not None:
        benchmark.extra_info["Mvalues_per_s"] = n / benchmark.stats.stats.min / 1e6
