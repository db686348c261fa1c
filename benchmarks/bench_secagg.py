"""pytest-benchmark: secure aggregation's hot path, native vs numpy (vs Flower if installed).

Run: ``pytest benchmarks/bench_secagg.py --benchmark-enable``. The masked-sum phase of a
SecAgg+ round (100 clients, k = 14, 10% dropouts) with agreed seeds: ``native`` expands
AES-128-CTR masks with the fused kernel, ``reference`` with numpy PCG64 generators,
``flower`` with Flower's ``pseudo_rand_gen``. D = 10^5 by default, 10^6 with
``PPML_BENCH_FULL=1``. ``extra_info["GB_per_s"]`` is mask words (8 bytes) per second.
"""

import os

import numpy as np
import pytest

from ppml_fast.aggregation import secure as _secagg
from ppml_fast._bench import secagg as bench
from ppml_fast.reference import aggregation_secure as ref

N, K = 100, 14
D = 10**6 if os.environ.get("PPML_BENCH_FULL") else 10**5


@pytest.fixture(scope="module")
def plan():
    gen = np.random.default_rng(0)
    dropped = set(gen.choice(N, size=N // 10, replace=False).tolist())
    q = _secagg.quantize(gen.uniform(-1, 1, (N, D)), 1.0, 16)
    clients, server = bench._plan(N, K, dropped, 1)
    words = sum(len(s) for s, _ in clients.values()) * D + len(server[0]) * D
    return q, clients, server, words


@pytest.mark.parametrize("impl", ["native", "reference", "flower"])
def test_masked_sum_round(benchmark, plan, impl):
    q, clients, server, words = plan
    if impl == "native":
        fn = lambda: bench.native_masked_round(q, clients, server)  # noqa: E731
    elif impl == "reference":
        fn = lambda: ref.numpy_masked_round(q, clients, server)  # noqa: E731
    else:
        pytest.importorskip("flwr")
        case = bench.cases(False)[0]
        if "flower" not in case.peers:
            pytest.skip("flower peer unavailable")
        fn = case.peers["flower"]
    out = benchmark(fn)
    if impl != "flower":
        survivors = sorted(clients)
        assert np.array_equal(out, q[survivors].sum(axis=0))  # masks cancel exactly
    if benchmark.stats is not None:
        benchmark.extra_info["GB_per_s"] = 8 * words / benchmark.stats["min"] / 1e9


def test_mask_expansion(benchmark):
    acc = np.zeros(10**6, np.uint64)
    seed = [os.urandom(16)]
    benchmark(lambda: _secagg.expand_masks(acc, seed, [1]))
    if benchmark.stats is not None:
        benchmark.extra_info["GB_per_s"] = 8e6 / benchmark.stats["min"] / 1e9
