"""pytest-benchmark: the NoPeek distance correlation, and with its gradient, of a batch of
784-value inputs and 512-value activations (numpy Gram-matrix reference; peer: ``dcor``).

The cases are those of ``ppml-fast bench`` (``ppml_fast._bench.split``), parametrised by
``conftest.py``. Run: ``pytest benchmarks/bench_split.py --benchmark-enable``.
"""

AREA = "split"


def test_split(bench, case, impl):
    bench(case, impl)
