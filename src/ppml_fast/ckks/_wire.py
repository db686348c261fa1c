"""TenSEAL's wire format, read and written without protobuf, and the encryption workers.

A serialised TenSEAL ``CKKSVector`` is a protobuf message: field 1 the chunk sizes
(packed uint32), field 2 one SEAL ciphertext per chunk (bytes), field 3 the scale
(double). Protobuf merges concatenated messages by appending repeated fields, so the
serialisations of consecutive chunks, joined, are the serialisation of the whole vector:
workers encrypt blocks of chunks and the parent only joins bytes.

A serialised TenSEAL context is field 1 the SEAL encryption parameters, field 2 the public
part and field 3 the private part (its field 1: the SEAL secret key).

Seeded ciphertexts. SEAL's ``encrypt_symmetric`` can save a ciphertext whose second
polynomial (uniformly random) is replaced by the seed of the generator that made it, half
the bytes; SEAL's loader re-expands it, so TenSEAL reads such a chunk unchanged. TenSEAL's
own symmetric encryption does not keep the seed; the symmetric path here encrypts through
the SEAL binding TenSEAL ships (``tenseal.sealapi``), whose objects save and load through
file paths: an anonymous in-memory file (``memfd``) where the OS has one, else a private
temporary file removed at once. Secret-key bytes never touch a disk where memfd exists.
"""

from __future__ import annotations

import hashlib
import os
import struct
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

__all__ = [
    "encrypt_block",
    "encrypt_chunk",
    "make_engine",
    "parse_fields",
    "vector_chunks",
]


def varint(n: int) -> bytes:
    """Protobuf's base-128 varint of a non-negative int."""
    out = bytearray()
    while True:
        low = n & 0x7F
        n >>= 7
        if n:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def _read_varint(buf: bytes | memoryview, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        if i >= len(buf) or shift > 63:
            raise ValueError("data is not a serialised TenSEAL object (bad varint)")
        byte = buf[i]
        i += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return result, i


def parse_fields(buf: bytes | memoryview) -> Iterator[tuple[int, int, Any]]:
    """The (field number, wire type, value) triples of one protobuf message; a
    length-delimited value is a memoryview into ``buf``. Raises ``ValueError`` on bytes
    that are not a well-formed message."""
    view = memoryview(buf)
    i = 0
    while i < len(view):
        key, i = _read_varint(view, i)
        field, wire = key >> 3, key & 7
        value: Any
        if wire == 0:
            value, i = _read_varint(view, i)
        elif wire == 1:
            value, i = view[i : i + 8], i + 8
        elif wire == 2:
            n, i = _read_varint(view, i)
            value, i = view[i : i + n], i + n
        elif wire == 5:
            value, i = view[i : i + 4], i + 4
        else:
            raise ValueError("data is not a serialised TenSEAL object (bad wire type)")
        if i > len(view):
            raise ValueError("data is not a serialised TenSEAL object (truncated)")
        yield field, wire, value


def vector_chunk(ciphertext: bytes, size: int, scale: float) -> bytes:
    """The TenSEAL ``CKKSVector`` message of one chunk: ``size`` values in ``ciphertext``."""
    packed = varint(size)
    return b"".join(
        (
            b"\x0a" + varint(len(packed)) + packed,
            b"\x12" + varint(len(ciphertext)) + ciphertext,
            b"\x19" + struct.pack("<d", scale),
        )
    )


def vector_chunks(wire: bytes | memoryview) -> tuple[list[int], int]:
    """The chunk sizes of a serialised ``CKKSVector`` and its number of ciphertexts."""
    sizes: list[int] = []
    count = 0
    for field, wire_type, value in parse_fields(wire):
        if field == 1 and wire_type == 2:
            j = 0
            while j < len(value):
                s, j = _read_varint(value, j)
                sizes.append(s)
        elif field == 1 and wire_type == 0:
            sizes.append(value)
        elif field == 2 and wire_type == 2:
            count += 1
    return sizes, count


def context_part(context_bytes: bytes, field: int) -> bytes:
    """Field ``field`` (1: encryption parameters; 3: private part) of a serialised context."""
    for f, wire_type, value in parse_fields(context_bytes):
        if f == field and wire_type == 2:
            return bytes(value)
    raise ValueError(f"the serialised context has no field {field}")


def secret_key_bytes(context_bytes: bytes) -> bytes:
    """The SEAL secret key inside a serialised private TenSEAL context."""
    for f, wire_type, value in parse_fields(context_part(context_bytes, 3)):
        if f == 1 and wire_type == 2 and len(value):
            return bytes(value)
    raise ValueError("the context holds no secret key")


@contextmanager
def _scratch_path() -> Iterator[str]:
    """A path to a private in-memory file (memfd) or, failing that, a temporary file."""
    if hasattr(os, "memfd_create") and os.path.isdir("/proc/self/fd"):
        fd = os.memfd_create("ppml_fast_ckks")
        try:
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
    else:  # pragma: no cover - platforms without memfd
        fd, path = tempfile.mkstemp(prefix="ppml_fast_ckks_")
        os.close(fd)
        try:
            yield path
        finally:
            with open(path, "r+b") as f:  # overwrite before unlinking: it may be a key
                f.write(b"\0" * os.path.getsize(path))
            os.unlink(path)


def save_bytes(save: Callable[[str], None]) -> bytes:
    """The bytes a SEAL binding object's ``save(path)`` writes."""
    with _scratch_path() as path:
        save(path)
        with open(path, "rb") as f:
            return f.read()


def load_bytes(load: Callable[[str], None], data: bytes) -> None:
    """Feed ``data`` to a SEAL binding object's ``load(path)``."""
    with _scratch_path() as path:
        with open(path, "wb") as f:
            f.write(data)
        load(path)


class _SymmetricEncryptor:
    """SEAL objects for seeded secret-key encryption under one TenSEAL context."""

    def __init__(self, context_bytes: bytes) -> None:
        import tenseal.sealapi as sa

        parms = sa.EncryptionParameters(sa.SCHEME_TYPE.CKKS)
        load_bytes(parms.load, context_part(context_bytes, 1))
        # The parameters were checked when the TenSEAL context was made; NONE here keeps
        # SEAL from refusing a context TenSEAL accepted.
        self.context = sa.SEALContext(parms, True, sa.SEC_LEVEL_TYPE.NONE)
        key = sa.SecretKey()
        load_bytes(lambda p: key.load(self.context, p), secret_key_bytes(context_bytes))
        self.encryptor = sa.Encryptor(self.context, key)
        self.encoder = sa.CKKSEncoder(self.context)
        self._plain = sa.Plaintext

    def chunk(self, values: np.ndarray, scale: float) -> bytes:
        plain = self._plain()
        self.encoder.encode(values.tolist(), scale, plain)
        seeded = self.encryptor.encrypt_symmetric(plain)
        return save_bytes(seeded.save)


def make_engine(context_bytes: bytes, symmetric: bool) -> Any:
    """What :func:`encrypt_chunk` encrypts with: a TenSEAL context (public key) or the
    SEAL objects of seeded secret-key encryption."""
    if symmetric:
        return _SymmetricEncryptor(context_bytes)
    import tenseal as ts

    return ts.context_from(context_bytes)


# The worker interpreters' cache of public-key contexts: a request after the first for the
# same context skips its deserialisation. Only workers use it (they never fork); the
# calling process caches nothing, and no secret-key engine is ever cached.
_cache: dict[str, Any] = {}


def cached_public_engine(context_bytes: bytes) -> Any:
    """:func:`make_engine` of a public-key context, kept for the next request."""
    key = hashlib.sha256(context_bytes).hexdigest()
    engine = _cache.get(key)
    if engine is None:
        engine = make_engine(context_bytes, False)
        _cache.clear()
        _cache[key] = engine
    return engine


def encrypt_chunk(
    engine: Any, values: np.ndarray, index: int, slots: int, scale: float, symmetric: bool
) -> bytes:
    """The ``CKKSVector`` message of chunk ``index`` of ``values`` (``slots`` per chunk)."""
    chunk = values[index * slots : (index + 1) * slots]
    if symmetric:
        return vector_chunk(engine.chunk(chunk, scale), chunk.shape[0], scale)
    import tenseal as ts

    return bytes(ts.ckks_vector(engine, chunk.tolist(), scale).serialize())


def encrypt_block(
    context_bytes: bytes, values: np.ndarray, slots: int, scale: float, symmetric: bool
) -> bytes:
    """The ``CKKSVector`` message of ``values`` (1-D float64) in chunks of ``slots``, for an
    executor's task: the context is made for the call and kept nowhere after it.

    ``context_bytes`` is a TenSEAL context with the public key (asymmetric) or the secret
    key (symmetric, seeded ciphertexts).
    """
    engine = make_engine(context_bytes, symmetric)
    n_chunks = -(-values.shape[0] // slots)
    return b"".join(
        encrypt_chunk(engine, values, i, slots, scale, symmetric) for i in range(n_chunks)
    )
