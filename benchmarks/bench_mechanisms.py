"""pytest-benchmark: the Laplace, Gaussian and exponential mechanisms and randomized response
(plain numpy on PCG64, the bare sampler, diffprivlib).

The cases are those of ``ppml-fast bench`` (``ppml_fast._bench.mechanisms``), parametrised by
``conftest.py``. Run: ``pytest benchmarks/bench_mechanisms.py --benchmark-enable``.
"""

AREA = "mechanisms"


def test_mechanisms(bench, case, impl):
    bench(case, impl)
