"""pytest-benchmark: FedAvg, DP-FedAvg, the robust aggregators, FedProx and secure
aggregation's masked sum (numpy references, the read probe, Flower, cryptography's AES-CTR).

The cases are those of ``ppml-fast bench`` (``ppml_fast._bench.aggregation``), parametrised by
``conftest.py``. Run: ``pytest benchmarks/bench_aggregation.py --benchmark-enable``.
"""

AREA = "aggregation"


def test_aggregation(bench, case, impl):
    bench(case, impl)
