"""pytest-benchmark: the continuous samplers (Laplace, Gaussian; numpy PCG64, OpenDP,
diffprivlib) and the exact discrete samplers (Python Fraction oracle, OpenDP, diffprivlib).

The cases are those of ``ppml-fast bench`` (``ppml_fast._bench.noise``), parametrised by
``conftest.py``. Run: ``pytest benchmarks/bench_noise.py --benchmark-enable``.
"""

AREA = "noise"


def test_noise(bench, case, impl):
    bench(case, impl)
