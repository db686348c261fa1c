"""pytest-benchmark: CKKS on TenSEAL (``ppml_fast.ckks``) against what a TenSEAL user writes
by hand (``ppml_fast.reference.ckks``): encryption of a model update against the loop of
``ts.ckks_vector`` calls over 4096-slot chunks on one core (asymmetric, symmetric seeded,
the addition-only preset), the server's encrypted FedAvg against the loop of TenSEAL
additions (and of ``v * w`` for server-side weights), decryption against the per-chunk
``.decrypt()`` loop. Skipped without TenSEAL (the ``ckks`` extra).

The cases are those of ``ppml-fast bench`` (``ppml_fast._bench.ckks``), parametrised by
``conftest.py``. Run: ``pytest benchmarks/bench_ckks.py --benchmark-enable``.
"""

import pytest

pytest.importorskip("tenseal")

AREA = "ckks"


def test_ckks(bench, case, impl):
    bench(case, impl)
