"""pytest-benchmark: dp_sum, dp_mean, dp_var and dp_histogram (numpy clip + sum / histogram).

The cases are those of ``ppml-fast bench`` (``ppml_fast._bench.stats``), parametrised by
``conftest.py``. Run: ``pytest benchmarks/bench_stats.py --benchmark-enable``.
"""

AREA = "stats"


def test_stats(bench, case, impl):
    bench(case, impl)
