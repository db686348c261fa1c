"""pytest-benchmark: modular arithmetic, ring and field matmul, Shamir sharing and the Beaver
matmul (numpy references, torch, MPyC, float64 BLAS).

The cases are those of ``ppml-fast bench`` (``ppml_fast._bench.sharing``), parametrised by
``conftest.py``. Run: ``pytest benchmarks/bench_sharing.py --benchmark-enable``.
"""

AREA = "sharing"


def test_sharing(bench, case, impl):
    bench(case, impl)
