"""Paillier key files: the JSON (JWK-like) form of public and private keys.

The format is python-paillier's key format (the one its ``pheutil`` command line writes
and reads), so key files move between python-paillier programs and this package.

Public key::

    {"kty": "DAJ", "alg": "PAI-GN1", "key_ops": ["encrypt"], "n": N, "bits": 3072}

Private key::

    {"kty": "DAJ", "key_ops": ["decrypt"], "p": P, "q": Q, "pub": {public key}}

Fields
------
kty : str
    ``"DAJ"`` (the key type python-paillier uses for Damgard-Jurik / Paillier keys).
alg : str
    ``"PAI-GN1"`` (Paillier with g = n + 1). Required in a public key; a private key
    may state it too.
key_ops : list of str
    Must contain ``"encrypt"`` for a public key, ``"decrypt"`` for a private key.
n, p, q : str or int
    Positive integers, written as base64url (RFC 4648, URL-safe alphabet, no padding) of
    their big-endian bytes, as python-paillier writes them. A JSON integer is read as
    the number itself (convenient for hand-written files; Python's JSON reader refuses
    integers of more than 4300 decimal digits, so use base64url for such keys).
bits : int, optional
    The bit length of n. Written by :func:`public_to_json`; when present it must equal
    ``n.bit_length()``.
hs : str or int, optional
    This package's extension: the key's DJN base ``h_s = h^n mod n^2`` (see
    :class:`~ppml_fast.paillier.PaillierPublicKey`), written when the key has one.
    python-paillier ignores it.
pub : object
    In a private key: the public key, in the form above.

Other fields (python-paillier writes a free-text ``kid``) are ignored.

Checks on reading
-----------------
Malformed JSON, a missing field, a field of the wrong JSON type, a wrong ``kty`` or
``alg``, ``key_ops`` without the key's operation, a number that is not a positive
base64url or JSON integer, a ``bits`` that is not n's bit length, an n the public key
refuses (even, too long), an ``hs`` that is no usable DJN base; and for a private key,
p or q that is not prime, p == q, ``p * q != n``, an ``hs`` that is not an n-th residue
(it must decrypt to 0), and a public part that differs from the expected public key.
Each error names the field: ``TypeError`` for a wrong type, ``ValueError`` (or
:class:`~ppml_fast.KeyMismatchError`, a ``ValueError``) for a wrong value.

Security
--------
A private key file holds the secret primes p and q in plain text: whoever reads it can
decrypt everything encrypted under the key. The caller must protect it (file
permissions, encryption at rest, a secrets store); this module writes no file itself and
never logs or prints a key, and its error messages never quote p, q or their encodings.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import TYPE_CHECKING, Any

import gmpy2

from .._errors import KeyMismatchError

if TYPE_CHECKING:
    from .keys import PaillierPrivateKey, PaillierPublicKey

KTY = "DAJ"
"""The key type of python-paillier's key files."""
ALG = "PAI-GN1"
"""The algorithm name of python-paillier's key files (Paillier with g = n + 1)."""
PRIME_REPS = 40
"""Miller-Rabin rounds (after GMP's Baillie-PSW) that p and q must pass on reading."""

_B64URL = re.compile(r"[A-Za-z0-9_-]+")


def int_to_b64url(value: int) -> str:
    """A positive int as base64url (no padding) of its minimal big-endian bytes."""
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _int_field(obj: dict[str, Any], name: str, where: str) -> int:
    """The positive int in ``obj[name]`` (base64url string or JSON integer).

    Messages name the field and never quote its value (it may be a secret prime).
    """
    if name not in obj:
        raise ValueError(f"{where}: missing field {name!r}")
    raw = obj[name]
    if isinstance(raw, bool) or not isinstance(raw, (str, int)):
        raise TypeError(
            f"{where}: field {name!r} must be a base64url string or an int, "
            f"got {type(raw).__name__}"
        )
    if isinstance(raw, int):
        value = raw
    else:
        if not _B64URL.fullmatch(raw) or len(raw) % 4 == 1:
            raise ValueError(f"{where}: field {name!r} is not base64url")
        try:
            data = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
        except (binascii.Error, ValueError):
            raise ValueError(f"{where}: field {name!r} is not base64url") from None
        value = int.from_bytes(data, "big")
    if value <= 0:
        raise ValueError(f"{where}: field {name!r} must be a positive integer")
    return value


def _str_field(obj: dict[str, Any], name: str, where: str, expected: str | None) -> None:
    """Check that ``obj[name]`` is a string equal to ``expected``."""
    if name not in obj:
        raise ValueError(f"{where}: missing field {name!r}")
    raw = obj[name]
    if not isinstance(raw, str):
        raise TypeError(f"{where}: field {name!r} must be a string, got {type(raw).__name__}")
    if expected is not None and raw != expected:
        raise ValueError(f"{where}: field {name!r} must be {expected!r}, got {raw[:40]!r}")


def _key_ops(obj: dict[str, Any], op: str, where: str) -> None:
    """Check that ``obj["key_ops"]`` is a list of strings containing ``op``."""
    if "key_ops" not in obj:
        raise ValueError(f"{where}: missing field 'key_ops'")
    ops = obj["key_ops"]
    if not isinstance(ops, list) or not all(isinstance(o, str) for o in ops):
        raise TypeError(f"{where}: field 'key_ops' must be a list of strings")
    if op not in ops:
        raise ValueError(f"{where}: field 'key_ops' must contain {op!r}")


def _load_object(text: Any, what: str) -> dict[str, Any]:
    """``text`` (str or bytes) parsed as a JSON object."""
    if not isinstance(text, (str, bytes, bytearray)):
        raise TypeError(f"text must be a str or bytes holding a {what}, got {type(text).__name__}")
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):  # JSONDecodeError and bad UTF-8 are ValueErrors
        raise ValueError(f"text is not valid JSON (expected a {what})") from None
    if not isinstance(obj, dict):
        raise ValueError(f"text must hold a JSON object (a {what}), got {type(obj).__name__}")
    return obj


def public_to_dict(key: PaillierPublicKey) -> dict[str, Any]:
    """The public key file's object (see the module docstring)."""
    out: dict[str, Any] = {
        "kty": KTY,
        "alg": ALG,
        "key_ops": ["encrypt"],
        "n": int_to_b64url(key.n),
        "bits": key.n.bit_length(),
    }
    if key._hs is not None:
        out["hs"] = int_to_b64url(key._hs)
    return out


def public_from_dict(obj: Any, where: str = "public key") -> PaillierPublicKey:
    """The public key in a key file's object (see the module docstring for the checks)."""
    from .keys import PaillierPublicKey  # keys imports this module for its methods

    if not isinstance(obj, dict):
        raise TypeError(f"{where} must be a JSON object, got {type(obj).__name__}")
    _str_field(obj, "kty", where, KTY)
    _str_field(obj, "alg", where, ALG)
    _key_ops(obj, "encrypt", where)
    n = _int_field(obj, "n", where)
    if "bits" in obj:
        bits = obj["bits"]
        if isinstance(bits, bool) or not isinstance(bits, int):
            raise TypeError(f"{where}: field 'bits' must be an int, got {type(bits).__name__}")
        if bits != n.bit_length():
            raise ValueError(f"{where}: field 'bits' is {bits} but n has {n.bit_length()} bits")
    hs = _int_field(obj, "hs", where) if "hs" in obj else None
    try:
        key = PaillierPublicKey(n)
    except ValueError as e:
        raise ValueError(f"{where}: field 'n' is not a Paillier modulus ({e})") from None
    if hs is not None:
        try:
            key = PaillierPublicKey(n, hs)
        except ValueError as e:
            raise ValueError(f"{where}: field 'hs' is not a usable DJN base ({e})") from None
    return key


def public_to_json(key: PaillierPublicKey) -> str:
    """The public key file (a JSON string)."""
    return json.dumps(public_to_dict(key))


def public_from_json(text: str | bytes) -> PaillierPublicKey:
    """The public key in a public key file (see the module docstring for the checks)."""
    return public_from_dict(_load_object(text, "Paillier public key"))


def private_to_json(key: PaillierPrivateKey) -> str:
    """The private key file (a JSON string); it holds p and q in plain text."""
    return json.dumps(
        {
            "kty": KTY,
            "key_ops": ["decrypt"],
            "p": int_to_b64url(key.p),
            "q": int_to_b64url(key.q),
            "pub": public_to_dict(key.public_key),
        }
    )


def private_from_json(
    text: str | bytes, public_key: PaillierPublicKey | None = None
) -> PaillierPrivateKey:
    """The private key in a private key file, checked against ``public_key`` when given
    (see the module docstring for the checks)."""
    from .keys import PaillierPrivateKey, PaillierPublicKey

    if public_key is not None and not isinstance(public_key, PaillierPublicKey):
        raise TypeError(
            f"public_key must be a PaillierPublicKey or None, got {type(public_key).__name__}"
        )
    where = "private key"
    obj = _load_object(text, "Paillier private key")
    _str_field(obj, "kty", where, KTY)
    if "alg" in obj:
        _str_field(obj, "alg", where, ALG)
    _key_ops(obj, "decrypt", where)
    if "pub" not in obj:
        raise ValueError(f"{where}: missing field 'pub'")
    pub = public_from_dict(obj["pub"], "private key: field 'pub'")
    p = _int_field(obj, "p", where)
    q = _int_field(obj, "q", where)
    # the cheap checks first: p * q == n also bounds p and q before the primality tests
    if p * q != pub.n:
        raise ValueError(f"{where}: p * q does not equal the public key's field 'n'")
    if p == q:
        raise ValueError(f"{where}: fields 'p' and 'q' are equal (they must differ)")
    for name, x in (("p", p), ("q", q)):
        if not gmpy2.is_prime(x, PRIME_REPS):
            raise ValueError(f"{where}: field {name!r} is not a prime")
    if public_key is not None and public_key.n != pub.n:
        raise KeyMismatchError(
            f"{where}: its public part (field 'pub') does not match the given public_key"
        )
    key = PaillierPrivateKey(pub if public_key is None else public_key, p, q)
    if pub._hs is not None and key.raw_decrypt(pub._hs) != 0:
        raise ValueError(f"{where}: field 'pub' has an 'hs' that is not an n-th residue mod n**2")
    return key
