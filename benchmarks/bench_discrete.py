"""pytest-benchmark: exact discrete samplers, reference (pure-Python Fraction oracle) vs
native (Cython, secure AES-CTR stream, all cores) vs OpenDP / diffprivlib when installed.

Run: ``pytest benchmarks/bench_discrete.py --benchmark-enable``; one group per operation
and size. The oracle and the peers run only at the small size (they take ~10-30 µs per
sample); the native kernel at every size.
"""

import importlib.util

import pytest

from ppml_fast import noise
from ppml_fast._bench.discrete import _peers
from ppml_fast.reference import noise_discrete as ref

SMALL, LARGE = 10**4, 10**6
PEERS = [p for p in ("opendp", "diffprivlib") if importlib.util.find_spec(p) is not None]
PARAMS = [("gaussian", 10), ("gaussian", 10.3), ("gaussian", 1e6), ("laplace", 10.3)]


def _call(kind, impl, param, n):
    if impl == "native":
        f = noise.discrete_gaussian if kind == "gaussian" else noise.discrete_laplace
        return lambda: f(param, n)
    if impl == "reference":
        f = ref.discrete_gaussian if kind == "gaussian" else ref.discrete_laplace
        return lambda: f(param, n, rng=0)
    return _peers(kind, param, n)[impl]


CASES = [
    (kind, param, impl, n)
    for kind, param in PARAMS
    for n in (SMALL, LARGE)
    for impl in ["reference", "native", *PEERS]
    if impl == "native" or (n == SMALL and (impl == "reference" or impl in _peers(kind, param, n)))
]


@pytest.mark.parametrize("kind, param, impl, n", CASES)
def test_discrete_sampler(benchmark, kind, param, impl, n):
    benchmark.group = f"discrete_{kind} {param:g} n={n:.0e}"
    benchmark.extra_info["samples_per_call"] = n
    fn = _call(kind, impl, param, n)
    result = benchmark.pedantic(fn, rounds=3 if impl != "native" else 10, warmup_rounds=1)
    assert len(result) == n
    if benchmark.stats is not None:
        benchmark.extra_info["Msamples_per_s"] = n / benchmark.stats.stats.min / 1e6
