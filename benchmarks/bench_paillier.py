"""pytest-benchmark: Paillier encryption, decryption and homomorphic operations with 2048-bit
keys (Python-int oracle, python-paillier). DJN encryption is timed against DJN written in
Python on gmpy2 (``powmod`` as the reference, a fixed-base table as a peer) as well as
python-paillier's classic ``r^n``.

The cases are those of ``ppml-fast bench`` (``ppml_fast._bench.paillier``), parametrised by
``conftest.py``. Run: ``pytest benchmarks/bench_paillier.py --benchmark-enable``.
"""

AREA = "paillier"


def test_paillier(bench, case, impl):
    bench(case, impl)
