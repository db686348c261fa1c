"""pytest-benchmark: Paillier encryption, decryption and homomorphic operations with 2048-bit
keys (Python-int oracle, python-paillier).

The cases are those of ``ppml-fast bench`` (``ppml_fast._bench.paillier``), parametrised by
``conftest.py``. Run: ``pytest benchmarks/bench_paillier.py --benchmark-enable``.
"""

AREA = "paillier"


def test_paillier(bench, case, impl):
    bench(case, impl)
