"""pytest-benchmark: FedAvg, DP-FedAvg, the robust aggregators, FedProx and secure
aggregation's masked sum (numpy references, the read probe, Flower, cryptography's AES-CTR).

Krum's reference is numpy with one float64 centred Gram matrix (peers: the float32 Gram and
the pairwise loop); DP-FedAvg's is tuned float32 numpy (``einsum`` norms, one ``gemv``;
peer: the float64-copy formula).

The cases are those of ``ppml-fast bench`` (``ppml_fast._bench.aggregation``), parametrised by
``conftest.py``. Run: ``pytest benchmarks/bench_aggregation.py --benchmark-enable``.
"""

AREA = "aggregation"


def test_aggregation(bench, case, impl):
    bench(case, impl)
