"""pytest-benchmark: simulated federated clients per second: the thread pool against one thread
(and a Dask cluster).

The cases are those of ``ppml-fast bench`` (``ppml_fast._bench.simulation``), parametrised by
``conftest.py``; ``test_paillier_round`` times a Paillier round packed and unpacked. Run:
``pytest benchmarks/bench_simulation.py --benchmark-enable``.
"""

import pytest

from ppml_fast import simulation as sim

AREA = "simulation"


def test_simulation(bench, case, impl):
    bench(case, impl)


@pytest.fixture(scope="module")
def digits():
    return sim.load_dataset("digits")


@pytest.mark.parametrize("packing", [True, False], ids=["packed", "unpacked"])
def test_paillier_round(benchmark, digits, packing):
    """One round of the default experiment (10 of 20 clients) under Paillier with a
    1024-bit key, packed (the default) against one ciphertext per value; ``extra_info``
    holds the record's packing factor, bytes per client and aggregation seconds."""
    agg = sim.PaillierAggregation(key_bits=1024, packing=packing)
    result = benchmark(sim.run_simulation, digits, rounds=1, seed=0, aggregator=agg)
    rec = result.history[0]
    benchmark.extra_info.update(
        packing_factor=rec.packing_factor,
        bytes_per_client=rec.bytes_per_client,
        aggregation_s=rec.aggregation_s,
    )
