"""Fixtures shared by the Paillier test files (module-scoped key pairs)."""

import pytest

from ppml_fast import paillier as pl

TOY_P, TOY_Q = 293, 433  # the classic toy key of python-paillier's tests: n = 126869
TOY_N = TOY_P * TOY_Q


@pytest.fixture(scope="module")
def toy():
    pk = pl.PaillierPublicKey(TOY_N)
    return pk, pl.PaillierPrivateKey(pk, TOY_P, TOY_Q)


@pytest.fixture(scope="module")
def k256():
    return pl.generate_paillier_keypair(n_length=256)


@pytest.fixture(scope="module")
def k512():
    return pl.generate_paillier_keypair(n_length=512)


@pytest.fixture(scope="module")
def other256():
    return pl.generate_paillier_keypair(n_length=256)


@pytest.fixture(scope="module")
def phe_pair(k512):
    """python-paillier (module, public key, private key) with k512's n, p and q."""
    phe = pytest.importorskip("phe")
    pk, sk = k512
    ppk = phe.paillier.PaillierPublicKey(pk.n)
    return phe, ppk, phe.paillier.PaillierPrivateKey(ppk, sk.p, sk.q)
