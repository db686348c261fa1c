"""pytest-benchmark: Paillier encryption, decryption and homomorphic operations with 2048-bit
keys (Python-int oracle, python-paillier). DJN encryption is timed against DJN written in
Python on gmpy2 (``powmod`` as the reference, a fixed-base table as a peer) as well as
python-paillier's classic ``r^n``. Packed encryption of 1e5 values (``encrypt_packed``) is
timed against per-value encryption of a subset of the same quantised ints (ours and
python-paillier's; the row's target scales the subset to all the values).

The cases are those of ``ppml-fast bench`` (``ppml_fast._bench.paillier``), parametrised by
``conftest.py``. Run: ``pytest benchmarks/bench_paillier.py --benchmark-enable``.
"""

AREA = "paillier"


def test_paillier(bench, case, impl):
    bench(case, impl)
