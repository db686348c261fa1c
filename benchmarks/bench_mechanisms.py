"""pytest-benchmark: the Laplace, Gaussian and exponential mechanisms and randomized response
(plain numpy on PCG64, the bare sampler, diffprivlib). The exponential mechanism's
reference is vectorised numpy (softmax cumsum and one uniform per row); the numpy
Gumbel-max and a ``Generator.choice`` loop are peers.

The cases are those of ``ppml-fast bench`` (``ppml_fast._bench.mechanisms``), parametrised by
``conftest.py``. Run: ``pytest benchmarks/bench_mechanisms.py --benchmark-enable``.
"""

AREA = "mechanisms"


def test_mechanisms(bench, case, impl):
    bench(case, impl)
