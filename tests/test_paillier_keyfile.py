"""Paillier key files: ``to_json`` / ``from_json`` of public and private keys.

Round trips (the loaded keys encrypt and decrypt), interoperation with python-paillier's
key files (``pheutil``), and every malformed file refused with an error naming the field.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from ppml_fast import paillier as pl
from ppml_fast.paillier.keyfile import int_to_b64url


@pytest.fixture(scope="module", params=[256, 1024])
def keys(request):
    return pl.generate_paillier_keypair(n_length=request.param)


def test_round_trip_encrypt_decrypt(keys):
    pk, sk = keys
    pk2 = pl.PaillierPublicKey.from_json(pk.to_json())
    sk2 = pl.PaillierPrivateKey.from_json(sk.to_json())
    assert pk2 == pk and sk2 == sk and sk2.public_key == pk
    assert pk2.n.bit_length() == json.loads(pk.to_json())["bits"]
    for x in (0, 1, -7, 2**40 + 3, 3.25, -1e-5):
        assert sk2.decrypt(pk2.encrypt(x)) == x
        assert sk.decrypt(pk2.encrypt(x)) == x  # the loaded key is the same key
    vals = np.array([1.5, -2.0, 1e6, -3e-3])
    np.testing.assert_array_equal(sk2.decrypt_batch(pk2.encrypt_batch(vals)), vals)
    # the DJN base travels with the key; writing the loaded key gives the same file
    assert pk2._hs == pk._hs
    assert pk2.to_json() == pk.to_json() and sk2.to_json() == sk.to_json()
    # bytes are accepted too
    assert pl.PaillierPublicKey.from_json(pk.to_json().encode()) == pk


def test_private_key_against_given_public_key(k256):
    pk, sk = k256
    sk2 = pl.PaillierPrivateKey.from_json(sk.to_json(), pk)
    assert sk2.public_key is pk and sk2 == sk
    other_pk, _ = pl.generate_paillier_keypair(n_length=256)
    with pytest.raises(pl.KeyMismatchError, match="public_key"):
        pl.PaillierPrivateKey.from_json(sk.to_json(), other_pk)
    with pytest.raises(TypeError, match="public_key"):
        pl.PaillierPrivateKey.from_json(sk.to_json(), pk.n)


def test_decimal_json_integers_accepted(k256):
    pk, sk = k256
    obj = {"kty": "DAJ", "alg": "PAI-GN1", "key_ops": ["encrypt"], "n": pk.n}
    assert pl.PaillierPublicKey.from_json(json.dumps(obj)) == pk
    priv = {"kty": "DAJ", "key_ops": ["decrypt"], "p": sk.p, "q": sk.q, "pub": obj}
    assert pl.PaillierPrivateKey.from_json(json.dumps(priv)) == sk


def test_python_paillier_key_files_interoperate():
    """A key file written by phe's pheutil loads here, and ours loads in phe."""
    phe = pytest.importorskip("phe")
    cli = pytest.importorskip("phe.command_line")
    testing = pytest.importorskip("click.testing")
    res = testing.CliRunner().invoke(cli.cli, ["genpkey", "--keysize", "256", "-"])
    assert res.exit_code == 0, res.output
    text = next(line for line in res.output.splitlines() if line.startswith("{"))
    sk = pl.PaillierPrivateKey.from_json(text)
    pk = pl.PaillierPublicKey.from_json(json.dumps(json.loads(text)["pub"]))
    assert sk.public_key == pk and pk.n.bit_length() == 256
    assert sk.decrypt(pk.encrypt(-12.5)) == -12.5
    # ours, read with phe's own key-file reader and its base64url helper
    pk2, sk2 = pl.generate_paillier_keypair(n_length=512)
    phe_pk = cli.load_public_key(json.loads(pk2.to_json()))
    priv = json.loads(sk2.to_json())
    phe_sk = phe.PaillierPrivateKey(
        phe_pk, phe.util.base64_to_int(priv["p"]), phe.util.base64_to_int(priv["q"])
    )
    assert phe_pk.n == pk2.n
    assert phe_sk.decrypt(phe_pk.encrypt(41)) == 41
    assert sk2.decrypt(pl.EncryptedNumber(pk2, phe_pk.encrypt(7).ciphertext(), 0)) == 7


def _pub(pk, **change):
    obj = {"kty": "DAJ", "alg": "PAI-GN1", "key_ops": ["encrypt"], "n": int_to_b64url(pk.n)}
    obj["bits"] = pk.n.bit_length()
    obj.update(change)
    return {k: v for k, v in obj.items() if v is not _DROP}


_DROP = object()


@pytest.mark.parametrize(
    ("change", "exc", "field"),
    [
        ({"kty": _DROP}, ValueError, "'kty'"),
        ({"kty": "RSA"}, ValueError, "'kty'"),
        ({"kty": 1}, TypeError, "'kty'"),
        ({"alg": _DROP}, ValueError, "'alg'"),
        ({"alg": "PAILLIER-X"}, ValueError, "'alg'"),
        ({"key_ops": _DROP}, ValueError, "'key_ops'"),
        ({"key_ops": "encrypt"}, TypeError, "'key_ops'"),
        ({"key_ops": ["decrypt"]}, ValueError, "'key_ops'"),
        ({"n": _DROP}, ValueError, "'n'"),
        ({"n": 3.5}, TypeError, "'n'"),
        ({"n": True}, TypeError, "'n'"),
        ({"n": None}, TypeError, "'n'"),
        ({"n": "not base64!"}, ValueError, "'n'"),
        ({"n": ""}, ValueError, "'n'"),
        ({"n": "A"}, ValueError, "'n'"),
        ({"n": 0}, ValueError, "'n'"),
        ({"n": -15}, ValueError, "'n'"),
        ({"n": 2**64, "bits": 65}, ValueError, "'n'"),  # even: not a Paillier modulus
        ({"bits": 100}, ValueError, "'bits'"),
        ({"bits": "256"}, TypeError, "'bits'"),
        ({"bits": True}, TypeError, "'bits'"),
        ({"hs": 1}, ValueError, "'hs'"),  # order 1: would leave ciphertexts bare
        ({"hs": [1]}, TypeError, "'hs'"),
    ],
)
def test_malformed_public_key_refused_by_name(k256, change, exc, field):
    pk, _ = k256
    with pytest.raises(exc, match=field):
        pl.PaillierPublicKey.from_json(json.dumps(_pub(pk, **change)))


@pytest.mark.parametrize(
    ("text", "exc", "match"),
    [
        ("{not json", ValueError, "JSON"),
        (b"\xff\xfe", ValueError, "JSON"),
        ("[1, 2]", ValueError, "JSON object"),
        ("null", ValueError, "JSON object"),
        (5, TypeError, "text"),
        (None, TypeError, "text"),
    ],
)
def test_malformed_text_refused(text, exc, match):
    with pytest.raises(exc, match=match):
        pl.PaillierPublicKey.from_json(text)
    with pytest.raises(exc, match=match):
        pl.PaillierPrivateKey.from_json(text)


def _priv(pk, p, q, /, *, n=None, **change):
    pub = _pub(pk) if n is None else _pub(pk, n=int_to_b64url(n), bits=n.bit_length())
    obj = {
        "kty": "DAJ",
        "key_ops": ["decrypt"],
        "p": int_to_b64url(p),
        "q": int_to_b64url(q),
        "pub": pub,
    }
    obj.update(change)
    return json.dumps({k: v for k, v in obj.items() if v is not _DROP})


def test_malformed_private_key_refused_by_name(k256):
    pk, sk = k256
    p, q = sk.p, sk.q
    cases = [
        (_priv(pk, p, q, kty="RSA"), ValueError, "'kty'"),
        (_priv(pk, p, q, alg="RSA"), ValueError, "'alg'"),
        (_priv(pk, p, q, key_ops=_DROP), ValueError, "'key_ops'"),
        (_priv(pk, p, q, key_ops=["encrypt"]), ValueError, "'key_ops'"),
        (_priv(pk, p, q, key_ops=[1]), TypeError, "'key_ops'"),
        (_priv(pk, p, q, pub=_DROP), ValueError, "'pub'"),
        (_priv(pk, p, q, pub="n"), TypeError, "'pub'"),
        (_priv(pk, p, q, pub=_pub(pk, alg="X")), ValueError, "'pub'.*'alg'"),
        (_priv(pk, p, q, pub=_pub(pk, bits=255)), ValueError, "'pub'.*'bits'"),
        (_priv(pk, p, q, p=_DROP), ValueError, "'p'"),
        (_priv(pk, p, q, q=_DROP), ValueError, "'q'"),
        (_priv(pk, p, q, p=1.5), TypeError, "'p'"),
        (_priv(pk, p, q, q="!!"), ValueError, "'q'"),
        # p * q != n: the factors of another key
        (_priv(pk, p + 2, q), ValueError, "p \\* q.*'n'"),
        # p not prime / q not prime (n is their product, so only primality fails)
        (_priv(pk, 3 * p, q, n=3 * p * q), ValueError, "'p' is not a prime"),
        (_priv(pk, p, 9 * q, n=9 * p * q), ValueError, "'q' is not a prime"),
        # p == q: n = p**2
        (_priv(pk, p, p, n=p * p), ValueError, "'p' and 'q' are equal"),
    ]
    for text, exc, match in cases:
        with pytest.raises(exc, match=match) as info:
            pl.PaillierPrivateKey.from_json(text)
        # the error never quotes the secret primes
        msg = str(info.value)
        for secret in (p, q):
            assert str(secret) not in msg and int_to_b64url(secret) not in msg


def test_private_key_hs_must_be_nth_residue(k256):
    """An hs in the private file's public part that is not h^n mod n^2 is refused:
    g = n + 1 has order n mod n**2 (it passes the public check) but decrypts to 1."""
    pk, sk = k256
    bad = _pub(pk, hs=int_to_b64url(pk.g))
    assert pl.PaillierPublicKey.from_json(json.dumps(bad)).n == pk.n  # public check passes
    with pytest.raises(ValueError, match=r"'hs'.*n-th residue"):
        pl.PaillierPrivateKey.from_json(_priv(pk, sk.p, sk.q, pub=bad))
    good = _pub(pk, hs=int_to_b64url(pk.hs))
    assert pl.PaillierPrivateKey.from_json(_priv(pk, sk.p, sk.q, pub=good)) == sk
