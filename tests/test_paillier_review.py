"""Regression tests for the review of ppml_fast.paillier: DJN base checks, the
constant-time fixed-base walk on awkward alphas (both kernel paths), exponent bounds and
argument errors."""

from __future__ import annotations

import json
import secrets

import numpy as np
import pytest

from ppml_fast import paillier as pl
from ppml_fast._native import paillier as kernels
from ppml_fast.paillier._limbs import from_limbs, nlimbs, to_limbs

HAVE_IFMA = kernels.set_ifma(None)


@pytest.fixture(scope="module")
def key():
    return pl.generate_paillier_keypair(n_length=640)


@pytest.fixture(params=[False, True] if HAVE_IFMA else [False], ids=lambda p: f"ifma={p}")
def path(request):
    kernels.set_ifma(request.param)
    yield request.param
    kernels.set_ifma(None)


def test_hs_of_tiny_order_rejected(key):
    pk, _ = key
    for bad in (1, pk.nsquare - 1):
        with pytest.raises(ValueError, match="order"):
            pl.PaillierPublicKey(pk.n, hs=bad)
    assert pl.PaillierPublicKey(pk.n, hs=pk.hs).hs == pk.hs


def _alphas(bits: int) -> list[int]:
    ones = (1 << bits) - 1
    return [
        0,
        1,
        ones,
        1 << (bits - 1),
        int("f0" * (bits // 8), 16),
        0x10001,
        secrets.randbits(bits),
        secrets.randbits(bits) & ~0xFFFF0000FFFF,
    ]


@pytest.mark.parametrize("window", [1, 3, 4, 5])
def test_djn_walk_matches_pow_for_awkward_alphas(key, path, window):
    pk, sk = key
    pk.precompute(window)
    alphas = _alphas(pk._alpha_bits())
    msgs = [secrets.randbelow(pk.n) for _ in alphas]
    abits = pk._alpha_bits()
    rnd = to_limbs(alphas, (abits + 63) // 64)
    mabs = to_limbs(msgs, nlimbs(pk.n))
    out = np.empty((len(alphas), nlimbs(pk.nsquare)), np.uint64)
    table, w = pk._table
    assert w == window
    kernels.encrypt(0, pk._limb("n"), pk._limb("n2"), rnd, mabs, None, True, out, table, w, None, 2)
    want = [
        (1 + pk.n * m) * pow(pk.hs, a, pk.nsquare) % pk.nsquare
        for m, a in zip(msgs, alphas, strict=True)
    ]
    assert from_limbs(out) == want
    assert [sk.raw_decrypt(c) for c in want] == msgs


def test_single_encrypts_switch_to_the_table(key):
    pk, sk = key
    fresh = pl.PaillierPublicKey(pk.n, pk.hs)
    vals = list(range(-20, 20))
    encs = [fresh.encrypt(v) for v in vals]  # the first 16 use powmod_sec, then the table
    assert fresh._table is not None
    assert [sk.decrypt(e) for e in encs] == vals


def test_exponents_are_bounded(key):
    pk, sk = key
    cts = [pk.encrypt(3).ciphertext(), pk.encrypt(5).ciphertext()]
    with pytest.raises(ValueError, match="exponents"):
        pl.EncryptedArray.from_ciphertexts(pk, cts, exponents=[2**62, -(2**62)])
    with pytest.raises(ValueError):
        pl.EncryptedArray.from_numbers([pl.EncryptedNumber(pk, cts[0], 2**40)])
    data = bytearray(pk.encrypt_batch([1]).to_bytes())
    hlen = int.from_bytes(data[8:12], "little")
    data[12 + hlen : 20 + hlen] = (2**62).to_bytes(8, "little")
    with pytest.raises(ValueError):
        pl.EncryptedArray.from_bytes(bytes(data))
    obj = json.loads(pk.encrypt_batch([1]).to_json())
    with pytest.raises(ValueError):
        pl.EncryptedArray.from_json(json.dumps({**obj, "exponents": [2**31]}))
    # an alignment whose multiplier would be gigantic is refused, not attempted
    a = pl.EncryptedArray.from_ciphertexts(pk, cts, exponents=[2**30, -(2**30)])
    with pytest.raises(ValueError, match="align"):
        a.sum()
    b = pl.EncryptedArray.from_ciphertexts(pk, cts, exponents=[5, -5])
    assert sk.decrypt(b.sum()) == 3 * 16.0**5 + 5 * 16.0**-5


def test_argument_errors(key):
    pk, sk = key
    with pytest.raises(TypeError, match="enc must be"):
        sk.decrypt_batch(5)
    with pytest.raises(TypeError, match="enc must be"):
        sk.decrypt_batch("abc")
    with pytest.raises(TypeError, match="precision"):
        pk.encrypt_batch([1.0], precision="x")
    with pytest.raises(ValueError, match="precision"):
        pk.encrypt_batch([1.0], precision=-1.0)
    with pytest.raises(TypeError, match="exponent"):
        pl.EncryptedNumber(pk, 5, "1")
    with pytest.raises(ValueError, match="65536"):
        pl.PaillierPublicKey((1 << 65537) + 1)
    with pytest.raises(ValueError, match="n_length"):
        pl.generate_paillier_keypair(n_length=70000)


def test_nbytes_is_the_serialised_length(key):
    pk, _ = key
    for values in ([1, 2, 3], np.zeros((2, 0)), 7.5, np.arange(12.0).reshape(3, 4)):
        e = pk.encrypt_batch(values)
        assert e.nbytes == len(e.to_bytes())
