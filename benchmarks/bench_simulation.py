"""pytest-benchmark: simulated federated clients per second: the thread pool against one thread
(and a Dask cluster).

The cases are those of ``ppml-fast bench`` (``ppml_fast._bench.simulation``), parametrised by
``conftest.py``. Run: ``pytest benchmarks/bench_simulation.py --benchmark-enable``.
"""

AREA = "simulation"


def test_simulation(bench, case, impl):
    bench(case, impl)
