"""The wire formats of :class:`~ppml_fast.paillier.EncryptedArray`: binary and JSON.

Binary (:func:`to_bytes`): the 8-byte magic ``PPMLPAI1``, the header length as a 4-byte
little-endian int, a JSON header ``{"n": hex, "shape": [...], "limbs": L}``, the exponents
as little-endian int64 and the ciphertexts as L little-endian 64-bit limbs each, both in
C order.

JSON (:func:`to_json`): ``{"n", "public_key": {"g", "n"}, "shape", "exponents",
"ciphertexts"}``, big integers as decimal strings and flat lists in C order (the
public-key object as in python-paillier's serialisation examples; ``n`` also at the top
level).

Decoding checks everything that comes in: the key's n, the lengths against the header,
exponent bounds and ciphertexts below n^2.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from .._errors import KeyMismatchError
from .._native import paillier as _kernels
from ._limbs import nlimbs
from .keys import PaillierPublicKey

MAGIC = b"PPMLPAI1"
MAX_EXP = 2**31
"""Exponents stay within +-MAX_EXP: small in practice, and it keeps int64 sums exact."""


def check_exponents(exps: np.ndarray, name: str) -> None:
    """Raise ``ValueError`` unless every exponent is within ``+-MAX_EXP``.

    Parameters
    ----------
    exps : numpy.ndarray
        Integer exponents.
    name : str
        What they came from, for the message.
    """
    if exps.size and (int(exps.max()) >= MAX_EXP or int(exps.min()) <= -MAX_EXP):
        raise ValueError(f"{name}: exponents must be within +/-{MAX_EXP}")


def key_for(n: int, public_key: PaillierPublicKey | None) -> PaillierPublicKey:
    """The public key of decoded data: ``public_key`` checked against ``n``, or a new one.

    Raises
    ------
    TypeError
        ``public_key`` is not a :class:`PaillierPublicKey`.
    KeyMismatchError
        ``public_key`` has another n.
    """
    if public_key is None:
        return PaillierPublicKey(n)
    if not isinstance(public_key, PaillierPublicKey):
        raise TypeError("public_key must be a PaillierPublicKey")
    if public_key.n != n:
        raise KeyMismatchError("the data was encrypted under a different public key")
    return public_key


def check_rows_below(c: np.ndarray, pk: PaillierPublicKey) -> None:
    """Raise ``ValueError`` unless every limb row of ``c`` is below ``pk``'s n^2."""
    if c.shape[0]:
        ok = np.empty(c.shape[0], np.uint8)
        _kernels.rows_below(np.ascontiguousarray(c), pk._limb("n2"), ok)
        if not ok.all():
            raise ValueError("a ciphertext is >= n**2")


def check_state(state: Any) -> tuple[PaillierPublicKey, np.ndarray, np.ndarray, bool]:
    """Check an :class:`~ppml_fast.paillier.EncryptedArray` pickle state as
    :func:`from_bytes` checks its input.

    Parameters
    ----------
    state : dict
        ``{"public_key", "c", "exp", "obfuscated"}`` as ``__getstate__`` returns it.

    Returns
    -------
    public_key, c, exp, obfuscated
        The checked values.

    Raises
    ------
    TypeError
        ``state`` is not a dict, or a field has the wrong type: the key is not a
        :class:`PaillierPublicKey`, ``c`` or ``exp`` is not a numpy array of dtype uint64
        (``c``) or int64 (``exp``), or ``obfuscated`` is not a bool.
    ValueError
        A missing field; ``c`` that is not C-contiguous and aligned, whose last axis is
        not the limb count of the key's n^2 or whose other axes are not ``exp``'s
        shape; exponents beyond ``+-MAX_EXP``; a ciphertext ``>= n**2``.

    Notes
    -----
    The native kernels trust the limb width and layout of the arrays they are handed
    (a narrower row would be written past its end), so nothing is assigned before these
    checks pass.
    """
    if not isinstance(state, dict):
        raise TypeError(f"EncryptedArray state must be a dict, got {type(state).__name__}")
    missing = [k for k in ("public_key", "c", "exp", "obfuscated") if k not in state]
    if missing:
        raise ValueError(f"EncryptedArray state: missing field(s) {missing}")
    pk, c, exps, obf = state["public_key"], state["c"], state["exp"], state["obfuscated"]
    if not isinstance(pk, PaillierPublicKey):
        raise TypeError(
            f"EncryptedArray state: public_key must be a PaillierPublicKey, got {type(pk).__name__}"
        )
    if not isinstance(obf, (bool, np.bool_)):
        raise TypeError(
            f"EncryptedArray state: obfuscated must be a bool, got {type(obf).__name__}"
        )
    for name, arr, dtype in (("c", c, np.uint64), ("exp", exps, np.int64)):
        if type(arr) is not np.ndarray or arr.dtype != np.dtype(dtype):
            got = arr.dtype if isinstance(arr, np.ndarray) else type(arr).__name__
            raise TypeError(
                f"EncryptedArray state: {name} must be a numpy array of dtype "
                f"{np.dtype(dtype)} (native byte order), got {got}"
            )
    if not (c.flags.c_contiguous and c.flags.aligned):
        raise ValueError("EncryptedArray state: c must be C-contiguous and aligned")
    width = nlimbs(pk.nsquare)
    if c.ndim < 1 or c.shape[-1] != width:
        raise ValueError(
            f"EncryptedArray state: c must have {width} limbs per ciphertext (the limbs of "
            f"the key's n**2), got shape {c.shape}"
        )
    if c.shape[:-1] != exps.shape:
        raise ValueError(
            f"EncryptedArray state: c's shape {c.shape} does not match exp's {exps.shape}"
        )
    check_exponents(exps, "EncryptedArray state: exp")
    check_rows_below(c.reshape(-1, width), pk)
    return pk, c, exps, bool(obf)


def _header(n: int, shape: tuple[int, ...], limbs: int) -> bytes:
    return json.dumps({"n": format(n, "x"), "shape": list(shape), "limbs": int(limbs)}).encode()


def to_bytes(n: int, exps: np.ndarray, c: np.ndarray) -> bytes:
    """The binary form of an array of ciphertexts.

    Parameters
    ----------
    n : int
        The public key's modulus.
    exps : numpy.ndarray
        The int64 exponents (the array's shape).
    c : numpy.ndarray
        The ciphertext limbs, ``exps.shape + (L,)``.

    Returns
    -------
    bytes
        Magic, header length, header, exponents, limbs.
    """
    header = _header(n, exps.shape, c.shape[-1])
    return b"".join(
        [
            MAGIC,
            len(header).to_bytes(4, "little"),
            header,
            exps.astype("<i8").tobytes(),
            c.astype("<u8").tobytes(),
        ]
    )


def nbytes(n: int, exps: np.ndarray, c: np.ndarray) -> int:
    """The length of :func:`to_bytes`' output, without building it."""
    return len(MAGIC) + 4 + len(_header(n, exps.shape, c.shape[-1])) + exps.nbytes + c.nbytes


def read_header(
    data: bytes, magic: bytes, what: str
) -> tuple[dict[str, Any], int, tuple[int, ...], int, int]:
    """The JSON header of a binary form: ``magic``, its length (4 bytes, little-endian)
    and the header, whose ``n`` (hex), ``shape`` and ``limbs`` every form has.

    Returns ``(header, n, shape, limbs, offset of the data after it)``; raises
    ``ValueError`` for another magic (naming ``what``) or a malformed header.
    """
    if len(data) < 12 or data[:8] != magic:
        raise ValueError(f"data is not a serialised {what} (bad magic)")
    hlen = int.from_bytes(data[8:12], "little")
    try:
        header = json.loads(data[12 : 12 + hlen])
        n = int(header["n"], 16)
        shape = tuple(int(s) for s in header["shape"])
        width = int(header["limbs"])
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise ValueError("data has a malformed header") from e
    if any(s < 0 for s in shape):
        raise ValueError("data has a malformed header (negative shape)")
    return header, n, shape, width, 12 + hlen


def from_bytes(
    data: bytes, public_key: PaillierPublicKey | None
) -> tuple[PaillierPublicKey, np.ndarray, np.ndarray]:
    """Decode and check :func:`to_bytes`' output.

    Parameters
    ----------
    data : bytes
        The binary form.
    public_key : PaillierPublicKey or None
        The expected key (checked against the header's n), or ``None`` for a new key.

    Returns
    -------
    public_key : PaillierPublicKey
        The key.
    exps : numpy.ndarray
        The int64 exponents, of the header's shape.
    c : numpy.ndarray
        The ciphertext limbs, ``shape + (limbs of n^2,)``.

    Raises
    ------
    ValueError
        Bad magic, a malformed header, a wrong length, exponents beyond ``+-MAX_EXP`` or
        a ciphertext ``>= n**2``.
    KeyMismatchError
        ``public_key`` has another n.
    """
    data = bytes(data)
    _, n, shape, width, off = read_header(data, MAGIC, "EncryptedArray")
    pk = key_for(n, public_key)
    size = int(np.prod(shape, dtype=np.int64))
    if width != nlimbs(pk.nsquare) or len(data) != off + 8 * size + 8 * size * width:
        raise ValueError("data has the wrong length for its header")
    exps = np.frombuffer(data, "<i8", size, off).astype(np.int64).reshape(shape)
    check_exponents(exps, "data")
    c = np.frombuffer(data, "<u8", size * width, off + 8 * size).astype(np.uint64)
    c = c.reshape(size, width)
    check_rows_below(c, pk)
    return pk, exps, c.reshape(*shape, width)


def to_json(pk: PaillierPublicKey, exps: np.ndarray, ciphertexts: list[Any]) -> str:
    """The JSON form of an array of ciphertexts.

    Parameters
    ----------
    pk : PaillierPublicKey
        The key.
    exps : numpy.ndarray
        The exponents (the array's shape).
    ciphertexts : list of int
        The ciphertexts, flat in C order.

    Returns
    -------
    str
        ``{"n", "public_key": {"g", "n"}, "shape", "exponents", "ciphertexts"}``.
    """
    return json.dumps(
        {
            "n": str(pk.n),
            "public_key": {"g": str(pk.g), "n": str(pk.n)},
            "shape": list(exps.shape),
            "exponents": exps.reshape(-1).tolist(),
            "ciphertexts": [str(c) for c in ciphertexts],
        }
    )


def from_json(
    text: str | bytes, public_key: PaillierPublicKey | None
) -> tuple[PaillierPublicKey, np.ndarray, np.ndarray]:
    """Decode :func:`to_json`'s output (the ciphertexts are checked by the caller).

    Parameters
    ----------
    text : str or bytes
        The JSON form.
    public_key : PaillierPublicKey or None
        The expected key (checked against the text's n), or ``None`` for a new key.

    Returns
    -------
    public_key : PaillierPublicKey
        The key.
    ciphertexts : numpy.ndarray
        An object array of ints, of the text's shape.
    exps : numpy.ndarray
        The int64 exponents, of the text's shape.

    Raises
    ------
    ValueError
        Malformed JSON, ``n`` and ``public_key.n`` that differ, a count of values that
        does not match the shape, or an exponent outside int64.
    KeyMismatchError
        ``public_key`` has another n.
    """
    try:
        obj = json.loads(text)
        ns = {int(obj["n"])} if "n" in obj else set()
        if "n" not in obj or "public_key" in obj:
            ns.add(int(obj["public_key"]["n"]))
        if len(ns) != 1:
            raise ValueError("text: n and public_key.n differ")
        n = ns.pop()
        shape = tuple(int(s) for s in obj["shape"])
        exps = [int(e) for e in obj["exponents"]]
        cts = [int(c) for c in obj["ciphertexts"]]
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError("text is not a serialised EncryptedArray") from e
    pk = key_for(n, public_key)
    size = int(np.prod(shape, dtype=np.int64))
    if len(exps) != size or len(cts) != size:
        raise ValueError("text has the wrong number of values for its shape")
    try:
        exparr = np.array(exps, np.int64).reshape(shape)
    except OverflowError as e:
        raise ValueError("text has an exponent outside int64") from e
    ctsarr = np.array(cts, dtype=object).reshape(shape) if size else np.empty(shape, dtype=object)
    return pk, ctsarr, exparr
