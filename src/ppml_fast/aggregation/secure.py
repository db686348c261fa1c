"""Secure aggregation: SecAgg (Bonawitz et al. 2017) and SecAgg+ (Bell et al. 2020).

The server learns the sum of the surviving clients' quantised updates and nothing else
about them (in the honest-but-curious setting of the papers' first protocol; there is no
consistency-check round, so a malicious server is out of scope). One round, with the
protocol's four steps explicit (:class:`SecAggClient` / :class:`SecAggServer`):

1. **Advertise keys.** Each client makes two X25519 key pairs: ``c`` (to encrypt the
   shares it sends through the server) and ``s`` (to agree pairwise mask seeds).
2. **Share keys.** Each client draws a self-mask seed ``b_u``, splits ``b_u`` and its
   secret key ``s_u`` into Shamir shares (threshold ``t``) and sends one share of each to
   every neighbour, encrypted with AES-GCM under a key agreed from the ``c`` keys.
3. **Masked input.** Client ``u`` quantises its update ``x_u`` to the ring Z_2^64 (fixed
   point, see :func:`quantize`) and sends
   ``y_u = x_u + PRG(b_u) + sum_{v > u} PRG(s_uv) - sum_{v < u} PRG(s_uv)`` (mod 2^64),
   with ``s_uv = HKDF(X25519(s_u, s_v))`` over its neighbours ``v``. The PRG is AES-128
   in counter mode (a native kernel fused with the addition: VAES or AES-NI; at the
   generic ISA level OpenSSL's keystream, added in cache-sized chunks).
4. **Unmasking.** Clients that sent ``y_u`` are the survivors. Each survivor reveals, for
   each neighbour, its share of ``b_v`` if ``v`` survived, or of ``s_v`` if ``v``
   dropped -- never both. The server rebuilds them (``t`` shares each), removes the
   survivors' self masks and the dropped clients' pair masks, and gets
   ``sum_{u survived} x_u`` exactly (mod 2^64), then decodes it.

SecAgg masks every pair (``O(n^2 D)`` work in all); SecAgg+ masks only along a random
``k``-regular graph (a Harary graph on a random ordering; ``k = O(log n)``), cutting the
work to ``O(n k D)``, with shares sent to neighbours only (threshold ``t`` of ``k``).

If the shares needed to remove a mask are not there (fewer than ``t`` surviving
neighbours for some survivor or dropped client; with SecAgg, fewer than ``t`` survivors)
the round fails with :class:`SecAggError` -- never a wrong sum.

:func:`secure_aggregate` runs a whole round with every party in this process;
:class:`SecAggClient` and :class:`SecAggServer` are the parties, one step per method.

Security
--------
Assumptions: an honest-but-curious server and clients (the papers' semi-honest
protocol), and fewer than ``t`` of any client's share holders colluding with the server
(``t`` shares rebuild a seed or a secret key).

The threshold is held to an honest majority of the holders, ``t > (k + 1)/2`` for a
client with ``k`` neighbours (the ``k`` neighbours and the client itself hold shares;
so ``t >= 2`` always, and ``t >= floor((k + 1)/2) + 1``), as Bonawitz et al. (2017,
Section 4) and Bell et al. (2020, SecAgg+) require. Each holder reveals one kind of
share per client, ``b`` or ``s``, never both; with ``2t > k + 1`` no set of answers can
hold ``t`` shares of both kinds for one client, so even a server that told different
holders different survivor sets (the deviation a consistency-check round would catch)
cannot rebuild a client's self mask *and* its pair masks, which together unmask its
input. A lower threshold would also let fewer holders collude: ``t = 1`` makes every
share the secret itself. Every message a party receives is checked (types, lengths,
senders, addressees) and a malformed one raises :class:`SecAggError`.

Key agreement is real X25519 (the ``cryptography`` package); seeds go through
HKDF-SHA256; shares travel AES-GCM encrypted; the self-mask seeds come from the OS
CSPRNG and the Shamir polynomials from the package's secure stream. The masks are
uniform in Z_2^64 per coordinate, so a single masked vector is uniform and says nothing
about its update. The quantised sum must fit the ring: ``n * clip * 2^frac_bits < 2^63``.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Sequence
from concurrent.futures import Executor
from types import ModuleType
from typing import Any, Literal, NamedTuple

import numpy as np

from .. import _config
from .. import sharing as _sharing
from .._errors import PPMLError
from .._native import aggregation_secure as _kernels
from .._types import ArrayLike, RngLike, UpdatesLike
from .._validation import (
    HALF_OPEN_UNIT,
    POSITIVE,
    as_real_array,
    asarray,
    check_allocation,
    check_choice,
    check_int,
    check_scalar,
)
from ..rng import resolve
from ._inputs import float64_rows

__all__ = [
    "SecAggClient",
    "SecAggError",
    "SecAggResult",
    "SecAggServer",
    "dequantize",
    "expand_masks",
    "quantize",
    "secagg_graph",
    "secure_aggregate",
]

_P = _sharing.MERSENNE61
_CHUNK_BYTES = 7  # secrets are shared in 56-bit pieces (< p = 2^61 - 1)
_SEED_BYTES = 16  # AES-128 keys for the PRG
_B_CHUNKS = -(-_SEED_BYTES // _CHUNK_BYTES)  # Shamir pieces of a self-mask seed
_S_CHUNKS = -(-32 // _CHUNK_BYTES)  # ... of an X25519 secret key

#: A revealed share: ``("b", share)`` of a survivor's self-mask seed or ``("s", share)``
#: of a dropped client's secret key.
Revealed = tuple[str, np.ndarray]


class SecAggError(PPMLError, RuntimeError):
    """A secure-aggregation round cannot complete (too many dropouts, bad messages)."""


def _min_threshold(degree: int) -> int:
    """The smallest threshold allowed for a client with ``degree`` neighbours.

    ``floor((degree + 1)/2) + 1``: a strict majority of the ``degree + 1`` share holders
    (the neighbours and the client), which is also the default (see the module's
    Security section for why nothing lower keeps the privacy claim).
    """
    return (degree + 1) // 2 + 1


def _check_threshold(threshold: Any, degrees: Sequence[int]) -> int:
    """``threshold`` as an int in ``[_min_threshold(max degree), min degree + 1]``."""
    lo = max(_min_threshold(d) for d in degrees)
    hi = min(degrees) + 1
    t = check_int(threshold, "threshold")
    if not lo <= t <= hi:
        raise ValueError(
            f"threshold must be in [{lo}, {hi}] (a strict majority of the "
            f"{max(degrees) + 1} share holders, at most all of them), got {t}"
        )
    return t


def _client_id(v: Any, n: int | None, what: str) -> int:
    """A client index from a protocol message: an int (not a bool) in ``[0, n)``."""
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
        raise SecAggError(f"{what} must be a client index (an int), got {v!r}")
    u = int(v)
    if u < 0 or (n is not None and u >= n):
        bound = f"[0, {n})" if n is not None else ">= 0"
        raise SecAggError(f"{what} must be a client index in {bound}, got {u}")
    return u


def _check_keys(keys: Any, what: str) -> tuple[bytes, bytes]:
    """An advertised ``(c, s)`` pair of raw 32-byte X25519 public keys."""
    if not (
        isinstance(keys, (tuple, list))
        and len(keys) == 2
        and all(isinstance(k, (bytes, bytearray)) and len(k) == 32 for k in keys)
    ):
        raise SecAggError(f"{what} must be a pair of 32-byte public keys")
    return bytes(keys[0]), bytes(keys[1])


def _check_blob(blob: Any, what: str) -> bytes:
    """An encrypted share message: bytes holding at least a nonce and a GCM tag."""
    if not isinstance(blob, (bytes, bytearray)) or len(blob) < 12 + 16:
        raise SecAggError(f"{what} must be an encrypted share (bytes of a nonce and a tag)")
    return bytes(blob)


def _check_ids(ids: Any, n: int | None, what: str) -> set[int]:
    """A list of distinct client indices from a protocol message."""
    if isinstance(ids, (str, bytes)) or not isinstance(ids, (Sequence, np.ndarray, set)):
        raise SecAggError(f"{what} must be a sequence of client indices")
    if isinstance(ids, np.ndarray) and ids.ndim != 1:
        raise SecAggError(f"{what} must be a 1-D sequence of client indices, got shape {ids.shape}")
    items = ids.tolist() if isinstance(ids, np.ndarray) else list(ids)
    out = [_client_id(v, n, what) for v in items]
    if len(set(out)) != len(out):
        raise SecAggError(f"{what} lists a client twice")
    return set(out)


# ---------------------------------------------------------------------------- quantising


def quantize(x: ArrayLike, clip: float, frac_bits: int) -> np.ndarray:
    """Fixed point in the ring Z_2^64: ``round(clip_to_range(x) * 2^frac_bits) mod 2^64``.

    Parameters
    ----------
    x : array-like of real numbers
        The values; every coordinate is clipped to ``[-clip, clip]`` first (the stated
        range), so the per-client contribution is bounded.
    clip : float > 0
        The range's bound.
    frac_bits : int in [0, 52]
        Fraction bits of the fixed-point encoding.

    Returns
    -------
    ndarray of uint64
        ``x``'s shape; negative values in two's complement (:func:`dequantize` inverts it
        up to the rounding).

    Raises
    ------
    ValueError
        NaN in ``x``, a non-positive ``clip``, ``frac_bits`` out of range, or
        ``clip * 2**frac_bits >= 2**62``.
    """
    c, fb = _fixed_point(clip, frac_bits)
    return _quantize(as_real_array(x, "x", np.float64), c, fb)


def _fixed_point(clip: Any, frac_bits: Any, n_clients: int | None = None) -> tuple[float, int]:
    """(clip, frac_bits), checked: n_clients (when given) of the largest quantised
    magnitude round(clip 2^frac_bits) must sum below 2^63 (signed sums in the ring
    Z_2^64), and that magnitude itself must stay below 2^62."""
    c = check_scalar(clip, "clip", POSITIVE)
    fb = check_int(frac_bits, "frac_bits", minimum=0, maximum=52)
    if not math.isfinite(c * 2.0**fb):  # int() of inf would raise OverflowError
        raise ValueError(f"clip * 2**frac_bits must be < 2**62, got {c * 2.0**fb:g}")
    qmax = int(np.rint(c * 2.0**fb))
    if n_clients is not None and n_clients * qmax > 2**63 - 1:
        raise ValueError(
            "n_clients * round(clip * 2**frac_bits) must be < 2**63 (the ring "
            f"Z_2^64 holds signed sums below 2**63), got {n_clients * qmax}"
        )
    if qmax >= 2**62:
        raise ValueError(f"clip * 2**frac_bits must be < 2**62, got {c * 2.0**fb:g}")
    return c, fb


def _quantize(arr: np.ndarray, clip: float, frac_bits: int) -> np.ndarray:
    if arr.size and np.isnan(arr).any():
        raise ValueError("updates must not contain NaN (x, for quantize)")
    q: np.ndarray = np.rint(np.clip(arr, -clip, clip) * 2.0**frac_bits).astype(np.int64)
    return q.view(np.uint64)


def dequantize(v: ArrayLike, frac_bits: int) -> np.ndarray:
    """The signed fixed-point values of ring elements (two's complement), as float64.

    Parameters
    ----------
    v : array-like of uint64
        Ring elements, e.g. :func:`quantize`'s output or a round's ``ring_sum``.
    frac_bits : int
        The fraction bits they were encoded with.

    Returns
    -------
    ndarray of float64
        ``int64(v) / 2**frac_bits`` (exact while ``|int64(v)| <= 2**53``).
    """
    fb = check_int(frac_bits, "frac_bits", minimum=0, maximum=1023)
    arr = asarray(v, "v")
    if arr.dtype.kind not in "iu":
        raise TypeError(f"v must be an integer (ring element) array, got dtype {arr.dtype}")
    values: np.ndarray = arr.astype(np.uint64).view(np.int64) / 2.0**fb
    return values


# --------------------------------------------------------------------------- mask PRG


def _check_vec(a: object, name: str, writeable: bool = False) -> None:
    if not (
        isinstance(a, np.ndarray)
        and a.dtype == np.uint64
        and a.ndim == 1
        and a.flags.c_contiguous
        and (a.flags.writeable or not writeable)
    ):
        raise TypeError(
            f"{name} must be a C-contiguous 1-D uint64 array"
            + (" (writeable)" if writeable else "")
        )


def expand_masks(
    acc: np.ndarray, seeds: Sequence[bytes], signs: Sequence[int], *, base: np.ndarray | None = None
) -> None:
    """``acc = (base or acc) + sum_j sign_j * PRG(seed_j)`` (mod 2^64), on all cores.

    ``PRG(seed)`` is the AES-128-CTR keystream of the 16-byte seed with a zero nonce, as
    little-endian uint64 words (identical to ``cryptography``'s CTR mode).

    Parameters
    ----------
    acc : ndarray of uint64
        A C-contiguous, writeable 1-D vector; the result is written here.
    seeds : sequence of bytes
        The 16-byte AES-128 keys, one per mask.
    signs : sequence of {+1, -1}
        Whether each mask is added or subtracted.
    base : ndarray of uint64, optional
        A C-contiguous 1-D vector of ``acc``'s length that does not overlap it: the
        masks are added to ``base`` instead of ``acc``'s contents (the copy happens
        inside the kernel's single pass).

    Raises
    ------
    TypeError
        ``acc`` or ``base`` is not a C-contiguous 1-D uint64 array (``acc`` writeable).
    ValueError
        Lengths that differ, overlapping ``acc`` and ``base``, a seed that is not 16
        bytes, or a sign that is not +1 or -1.
    MemoryError
        The kernel could not allocate its key schedules.

    Notes
    -----
    The native kernel runs on ``ppml_fast.get_num_threads()`` threads, with the body of
    the current ISA level (:func:`ppml_fast.get_isa`): VAES-512 at avx512, VAES-256 or
    AES-NI at avx2; at generic, OpenSSL's AES-CTR through ``cryptography`` (the AES
    instructions of whatever CPU this is, ARM's included, or OpenSSL's constant-time
    software AES where there are none), added in chunks that stay in cache. Every path
    gives the same keystream.

    Security
    --------
    A seed must mask one vector only: the same keystream on two vectors reveals their
    difference.
    """
    _check_vec(acc, "acc", writeable=True)
    if base is not None:
        _check_vec(base, "base")
        if base.shape != acc.shape:
            raise ValueError(f"base has length {base.size}, acc {acc.size}")
        if np.shares_memory(acc, base):
            raise ValueError("base and acc must not overlap")
    seeds = _as_list(seeds, "seeds", "16-byte seeds")
    signs = _as_list(signs, "signs", "signs (+1 or -1)")
    if len(seeds) != len(signs):
        raise ValueError(f"seeds and signs differ in length ({len(seeds)} vs {len(signs)})")
    for s in seeds:
        if not isinstance(s, (bytes, bytearray)) or len(s) != _SEED_BYTES:
            raise ValueError(f"every entry of seeds must be {_SEED_BYTES} bytes")
    for s in signs:
        if (
            isinstance(s, (bool, np.bool_))
            or not isinstance(s, (int, np.integer))
            or s not in (1, -1)
        ):
            raise ValueError(f"every entry of signs must be +1 or -1, got {s!r:.40}")
    keys = np.frombuffer(b"".join(bytes(s) for s in seeds), dtype=np.uint8)
    sg = np.array([-1 if s < 0 else 1 for s in signs], dtype=np.int8)
    rc = _kernels.masks_add(acc, base, keys, sg, 0, _config.omp_threads())
    if rc == -1:  # the generic level: OpenSSL's keystream
        _masks_add_openssl(acc, base, [bytes(s) for s in seeds], sg.tolist())
    elif rc != 0:
        raise MemoryError("mask expansion could not allocate its key schedules")


#: Words per chunk of the generic path: the chunk and its keystream (256 KiB) stay in L2.
_OPENSSL_CHUNK = 16384


def _masks_add_openssl(
    acc: np.ndarray, base: np.ndarray | None, seeds: list[bytes], signs: list[int]
) -> None:
    """The generic level of :func:`expand_masks`: each seed's AES-128-CTR keystream from
    OpenSSL (``update_into``, no allocation per chunk), added chunk by chunk so that a
    chunk of ``acc`` stays in cache while every mask is added to it."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    if base is not None:
        acc[:] = base
    if acc.size == 0 or not seeds:
        return
    encs = [Cipher(algorithms.AES(s), modes.CTR(bytes(16))).encryptor() for s in seeds]
    zeros = memoryview(bytes(8 * min(_OPENSSL_CHUNK, acc.size)))
    raw = bytearray(8 * (min(_OPENSSL_CHUNK, acc.size) + 2))  # update_into wants 16 B more
    buf = np.frombuffer(raw, dtype=np.uint64)  # the same memory, as words
    for w0 in range(0, acc.size, _OPENSSL_CHUNK):
        part = acc[w0 : w0 + _OPENSSL_CHUNK]
        nbytes = 8 * part.size
        for enc, g in zip(encs, signs, strict=True):
            enc.update_into(zeros[:nbytes], raw)
            words = buf[: part.size]
            if sys.byteorder != "little":
                words = words.byteswap()
            if g < 0:
                np.subtract(part, words, out=part)
            else:
                np.add(part, words, out=part)
    buf[:] = 0  # the keystream masks someone's input


# ------------------------------------------------------------------------------- graph


def secagg_graph(n: int, k: int | None, rng: RngLike = None) -> list[np.ndarray]:
    """Each client's neighbours: all others (SecAgg) or a random ``k``-regular Harary
    graph (SecAgg+).

    Parameters
    ----------
    n : int >= 2
        The number of clients.
    k : int or None
        ``None`` (or ``k >= n - 1``): every other client (SecAgg). Otherwise an even
        ``k >= 2``: the ring of a uniformly random ordering, each client joined to the
        ``k/2`` nearest on either side (SecAgg+).
    rng : RngLike
        The stream for the ordering (see :mod:`ppml_fast.rng`).

    Returns
    -------
    list of n ndarrays of int64
        ``graph[u]``: client ``u``'s neighbours, sorted (a symmetric graph).

    Raises
    ------
    ValueError
        ``n < 2``, ``k < 2`` or an odd ``k``.
    """
    n = check_int(n, "n", minimum=2)
    if (k is not None and not isinstance(k, (int, np.integer))) or isinstance(k, (bool, np.bool_)):
        raise TypeError(f"neighbors (k) must be None or an int, got {type(k).__name__}")
    deg = n - 1 if k is None else min(int(k), n - 1)
    check_allocation(8 * n * max(deg, 1), "n", "the neighbour lists")
    if k is None or k >= n - 1:
        return [np.array([v for v in range(n) if v != u], dtype=np.int64) for u in range(n)]
    k = check_int(k, "neighbors", minimum=2)
    if k % 2:
        raise ValueError(f"neighbors must be even (a Harary graph), got {k}")

    order = resolve(rng).permutation(n)
    pos = np.empty(n, dtype=np.int64)
    pos[order] = np.arange(n)
    half = k // 2
    out = []
    for u in range(n):
        p = pos[u]
        offs = [d for d in range(-half, half + 1) if d]
        out.append(np.sort(order[(p + np.array(offs)) % n]))
    return out


# ------------------------------------------------------------------------------ crypto


def _x25519() -> ModuleType:
    from cryptography.hazmat.primitives.asymmetric import x25519

    return x25519


def _raw_pub(key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    raw: bytes = key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return raw


def _raw_priv(key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    raw: bytes = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return raw


def _kdf(shared: bytes, info: bytes, length: int) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(shared)


def _agree(priv: Any, pub: bytes, info: bytes, length: int) -> bytes:
    x25519 = _x25519()
    return _kdf(priv.exchange(x25519.X25519PublicKey.from_public_bytes(pub)), info, length)


def _to_chunks(secret: bytes) -> np.ndarray:
    pad = (-len(secret)) % _CHUNK_BYTES
    b = secret + bytes(pad)
    return np.array(
        [int.from_bytes(b[i : i + _CHUNK_BYTES], "little") for i in range(0, len(b), _CHUNK_BYTES)],
        dtype=np.uint64,
    )


def _from_chunks(chunks: np.ndarray, length: int) -> bytes:
    b = b"".join(int(c).to_bytes(_CHUNK_BYTES, "little") for c in chunks.tolist())
    return b[:length]


# ---------------------------------------------------------------------------- parties


class SecAggClient:
    """One client of a SecAgg / SecAgg+ round (the steps: :mod:`ppml_fast.aggregation.secure`).

    Call :meth:`advertise_keys`, :meth:`share_keys`, :meth:`receive_shares`,
    :meth:`masked_input` and :meth:`unmask` in that order, once each.

    Parameters
    ----------
    index : int >= 0
        The client's id in the round (``0 .. n-1``); its Shamir point is ``index + 1``.

    Security
    --------
    The key pairs ``c`` and ``s`` are made here by ``cryptography``'s X25519 generator
    and the self-mask seed ``b_u`` from the OS CSPRNG; the secret keys and the seed
    leave the object only as Shamir shares. The object refuses a
    second masked input (which would reveal the difference of two updates) and a second
    unmasking request (which could ask for both kinds of share of one client).
    """

    def __init__(self, index: int) -> None:
        x25519 = _x25519()
        self.index = check_int(index, "index", minimum=0)
        self._c = x25519.X25519PrivateKey.generate()
        self._s = x25519.X25519PrivateKey.generate()
        self._b = os.urandom(_SEED_BYTES)
        self._roster: dict[int, tuple[bytes, bytes]] = {}
        self._neighbors: np.ndarray = np.zeros(0, np.int64)
        self._inbox: dict[int, bytes] = {}
        self._own_share: np.ndarray | None = None
        self._unmasked = False
        self._channel: dict[int, bytes] = {}
        self._sent_input = False

    def _channel_key(self, v: int) -> bytes:
        key = self._channel.get(v)
        if key is None:
            key = _agree(self._c, self._roster[v][0], b"ppml-secagg share channel", 32)
            self._channel[v] = key
        return key

    # step 1
    def advertise_keys(self) -> tuple[bytes, bytes]:
        """Step 1: the public keys.

        Returns
        -------
        (bytes, bytes)
            The raw 32-byte X25519 public keys ``c`` (share channel) and ``s`` (pair
            masks).
        """
        return _raw_pub(self._c), _raw_pub(self._s)

    # step 2
    def share_keys(
        self,
        roster: dict[int, tuple[bytes, bytes]],
        neighbors: Sequence[int] | np.ndarray,
        threshold: int,
    ) -> dict[int, bytes]:
        """Step 2: shares of ``b_u`` and ``s_u`` for each neighbour, encrypted to it.

        Parameters
        ----------
        roster : dict of int to (bytes, bytes)
            Every client's public keys, as the server collected them.
        neighbors : sequence of int
            This client's neighbours (:func:`secagg_graph`).
        threshold : int in [floor((k + 1)/2) + 1, k + 1]
            ``t``, the shares needed to rebuild a secret. The client keeps one share for
            itself, as in Bonawitz et al.: the holders are the ``k`` neighbours and the
            client, ``k + 1`` in all, and ``t`` must be a strict majority of them (see
            the module's Security section).

        Returns
        -------
        dict of int to bytes
            One message per neighbour: a 12-byte nonce and the AES-GCM ciphertext (under
            a key agreed from the ``c`` keys) of ``(sender, recipient, shares)``.

        Raises
        ------
        SecAggError
            A malformed roster (not every neighbour and this client with a pair of
            32-byte keys) or neighbour list (this client, a client twice, a non-int).
        ValueError, TypeError
            ``threshold`` out of range or not an int.
        """
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        if not isinstance(roster, dict):
            raise SecAggError("roster must be a dict of client index to public keys")
        nbrs = _check_ids(neighbors, None, "neighbors")
        if self.index in nbrs:
            raise SecAggError(f"neighbors must not list client {self.index} itself")
        if not nbrs:
            raise SecAggError("neighbors must list at least one client")
        checked = {}
        for v in sorted(nbrs | {self.index}):
            if v not in roster:
                who = "this client" if v == self.index else "neighbors"
                raise SecAggError(f"roster has no public keys for client {v} (from {who})")
            checked[v] = _check_keys(roster[v], f"roster[{v}]")
        t = _check_threshold(threshold, [len(nbrs)])
        self._roster = checked
        self._neighbors = np.asarray(sorted(nbrs), dtype=np.int64)
        both = np.concatenate([_to_chunks(self._b), _to_chunks(_raw_priv(self._s))])
        # Shamir points are the holders' indices + 1 (evaluated at every point up to the
        # largest; only the holders' are used)
        npts = max(int(self._neighbors.max()) if len(self._neighbors) else 0, self.index) + 1
        shares = _sharing.shamir_share(both, max(npts, t), t, p=_P)
        self._own_share = shares[self.index].copy()
        out: dict[int, bytes] = {}
        for v in self._neighbors.tolist():
            payload = (
                self.index.to_bytes(4, "little")
                + v.to_bytes(4, "little")
                + shares[v].astype("<u8").tobytes()
            )
            key = self._channel_key(v)
            nonce = os.urandom(12)
            out[v] = nonce + AESGCM(key).encrypt(nonce, payload, b"share")
        return out

    def receive_shares(self, messages: dict[int, bytes]) -> None:
        """Step 2, receiving: the messages other clients sent this one, by sender (as the
        server forwards them); they are decrypted only when unmasking.

        Raises
        ------
        SecAggError
            Called before :meth:`share_keys`, ``messages`` not a dict, a sender that is
            not a neighbour, or a message that is not an encrypted share.
        """
        if self._own_share is None:
            raise SecAggError("receive_shares comes after share_keys (step 2)")
        if not isinstance(messages, dict):
            raise SecAggError("messages must be a dict of sender index to encrypted share")
        neighbours = set(self._neighbors.tolist())
        inbox = {}
        for v, blob in messages.items():
            u = _client_id(v, None, "a share's sender")
            if u not in neighbours:
                raise SecAggError(f"client {u} is not a neighbour of client {self.index}")
            inbox[u] = _check_blob(blob, f"the share from client {u}")
        self._inbox = inbox

    # step 3
    def masked_input(self, update: ArrayLike) -> np.ndarray:
        """Step 3: ``y_u``, the quantised update plus the self and pair masks (mod 2^64).

        Parameters
        ----------
        update : 1-D array-like of integers
            The quantised update (:func:`quantize`), read as uint64.

        Returns
        -------
        ndarray of uint64
            ``x_u + PRG(b_u) + sum_{v > u} PRG(s_uv) - sum_{v < u} PRG(s_uv)``.

        Raises
        ------
        SecAggError
            This client already sent its masked input.
        ValueError
            ``update`` is not a 1-D integer vector.

        Security
        --------
        A second input under the same masks would reveal the difference of the two
        updates: it is refused.
        """
        if self._sent_input:
            raise SecAggError(
                f"client {self.index} already sent its masked input: a second "
                "one under the same masks would reveal the difference"
            )
        arr = np.asarray(update)
        if arr.dtype.kind not in "iu" or arr.ndim != 1:
            raise ValueError("update must be a 1-D integer (quantised, see quantize) vector")
        x = np.ascontiguousarray(arr.astype(np.uint64, copy=False))
        y = np.empty_like(x)
        seeds, signs = [self._b], [1]
        for v in self._neighbors.tolist():
            seeds.append(
                _agree(self._s, self._roster[v][1], _pair_info(self.index, v), _SEED_BYTES)
            )
            signs.append(1 if v > self.index else -1)
        expand_masks(y, seeds, signs, base=x)
        self._sent_input = True
        return y

    # step 4
    def unmask(self, survivors: Sequence[int], dropped: Sequence[int]) -> dict[int, Revealed]:
        """Step 4: this client's shares of the survivors' self-mask seeds and the dropped
        clients' secret keys.

        Parameters
        ----------
        survivors, dropped : sequence of int
            The clients whose masked input the server received, and the others.

        Returns
        -------
        dict of int to (str, ndarray)
            For each neighbour that sent this client shares: ``("b", share)`` if it
            survived, ``("s", share)`` if it dropped (and ``("b", own share)`` for this
            client itself).

        Raises
        ------
        SecAggError
            This client did not send a masked input (it dropped), a client is listed as
            both survivor and dropped, this client already answered, or a share fails
            authentication or is addressed wrongly.

        Security
        --------
        Never both kinds of share for one client: with ``b_v`` and ``s_v`` the server
        could remove all of ``v``'s masks and read its update. Hence one answer per
        client, and the disjointness check.
        """
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        if not self._sent_input:
            raise SecAggError(f"client {self.index} dropped: it takes no part in unmasking")
        surv = _check_ids(survivors, None, "survivors")
        drop = _check_ids(dropped, None, "dropped")
        if surv & drop:
            raise SecAggError("a client cannot both survive and drop")
        if self._unmasked:  # a second request could ask for both kinds of one client
            raise SecAggError(f"client {self.index} already answered the unmasking request")
        self._unmasked = True
        out: dict[int, Revealed] = {}
        if self._own_share is not None and self.index in surv:
            out[self.index] = ("b", self._own_share[:_B_CHUNKS])
        for v, blob in self._inbox.items():
            if v not in surv and v not in drop:
                continue
            key = self._channel_key(v)
            try:
                payload = AESGCM(key).decrypt(blob[:12], blob[12:], b"share")
            except Exception as exc:  # cryptography's InvalidTag: tampered or misrouted
                raise SecAggError(f"the share from client {v} failed authentication") from exc
            if (
                int.from_bytes(payload[:4], "little") != v
                or int.from_bytes(payload[4:8], "little") != self.index
            ):
                raise SecAggError(f"a share from client {v} is addressed wrongly")
            if len(payload) != 8 + 8 * (_B_CHUNKS + _S_CHUNKS):
                raise SecAggError(f"the share from client {v} has the wrong length")
            share = np.frombuffer(payload[8:], dtype="<u8").astype(np.uint64)
            out[v] = ("b", share[:_B_CHUNKS]) if v in surv else ("s", share[_B_CHUNKS:])
        return out


def _accumulate(total: np.ndarray | None, y: np.ndarray) -> np.ndarray:
    """total + y (mod 2^64), in place on both cores; a copy of y for the first input."""
    if total is None:
        return np.array(y, dtype=np.uint64, copy=True, order="C")
    _kernels.ring_add(total, np.ascontiguousarray(y), _config.omp_threads())
    return total


def _pair_info(u: int, v: int) -> bytes:
    a, b = min(u, v), max(u, v)
    return b"ppml-secagg pair mask " + a.to_bytes(4, "little") + b.to_bytes(4, "little")


class SecAggServer:
    """The server of one round: routes messages, sums masked inputs, removes masks.

    Parameters
    ----------
    n : int >= 2
        The number of clients.
    threshold : int
        The Shamir threshold ``t`` (shares needed to rebuild a seed): a strict majority
        of every client's ``k + 1`` share holders and at most all of them,
        ``floor((k + 1)/2) + 1 <= t <= k + 1`` (see the module's Security section).
    graph : sequence of n sequences of int
        Each client's neighbours (:func:`secagg_graph`): distinct other clients, and
        symmetric.

    Raises
    ------
    ValueError
        A graph that does not list ``n`` clients, lists a client as its own neighbour,
        twice, or out of range, or is not symmetric; a threshold out of range.
    TypeError
        ``graph`` is not a sequence of sequences of ints, or ``threshold`` not an int.

    Security
    --------
    The server sees the public keys, the encrypted shares it routes, the masked inputs
    and the revealed shares; it holds only the running sum of the masked inputs.
    """

    def __init__(self, n: int, threshold: int, graph: Sequence[ArrayLike]) -> None:
        self.n = check_int(n, "n", minimum=2)
        try:  # a 0-d array has __len__ but no length
            count = None if isinstance(graph, (str, bytes)) else len(graph)
        except TypeError:
            count = None
        if count is None:
            raise TypeError(f"graph must be a sequence of {n} neighbour lists")
        if count != n:
            raise ValueError(f"graph must list neighbours for all {n} clients")
        sets = []
        for u, nb in enumerate(graph):
            arr = np.asarray(nb)
            if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
                raise TypeError(f"graph[{u}] must be a 1-D sequence of client indices")
            lst = [int(v) for v in arr.tolist()]
            if len(set(lst)) != len(lst) or u in lst or any(not 0 <= v < n for v in lst):
                raise ValueError(f"graph[{u}] must list distinct other clients in [0, {n})")
            if not lst:
                raise ValueError(f"graph[{u}] must list at least one neighbour")
            sets.append(set(lst))
        for u in range(n):
            for v in sets[u]:
                if u not in sets[v]:
                    raise ValueError(
                        f"graph must be symmetric: {v} is in graph[{u}] but "
                        f"{u} is not in graph[{v}]"
                    )
        self.graph = [np.asarray(sorted(x), dtype=np.int64) for x in sets]
        self.threshold = _check_threshold(threshold, [len(x) for x in sets])
        self.roster: dict[int, tuple[bytes, bytes]] = {}
        self._senders: set[int] = set()
        self._total: np.ndarray | None = None

    def collect_keys(self, keys: dict[int, tuple[bytes, bytes]]) -> dict[int, tuple[bytes, bytes]]:
        """Step 1: every client's public keys; the roster to send to all clients.

        Raises
        ------
        SecAggError
            Not every client advertised keys, an unknown client, or keys that are not a
            pair of 32-byte public keys.
        """
        if not isinstance(keys, dict):
            raise SecAggError("keys must be a dict of client index to public keys")
        roster = {}
        for u, pair in keys.items():
            v = _client_id(u, self.n, "a key's owner")
            roster[v] = _check_keys(pair, f"client {v}'s keys")
        if len(roster) != self.n:
            raise SecAggError("every client must advertise keys")
        self.roster = roster
        return self.roster

    def route_shares(self, outboxes: dict[int, dict[int, bytes]]) -> dict[int, dict[int, bytes]]:
        """Step 2: the encrypted shares regrouped by recipient (``inbox[v][u]``: from
        ``u`` to ``v``), to forward to each client.

        Raises
        ------
        SecAggError
            An unknown sender, a recipient that is not the sender's neighbour, or a
            message that is not an encrypted share.
        """
        if not isinstance(outboxes, dict):
            raise SecAggError("outboxes must be a dict of sender index to messages")
        inbox: dict[int, dict[int, bytes]] = {u: {} for u in range(self.n)}
        for u, box in outboxes.items():
            su = _client_id(u, self.n, "a sender")
            if not isinstance(box, dict):
                raise SecAggError(f"client {su}'s outbox must be a dict of recipient to share")
            neighbours = set(self.graph[su].tolist())
            for v, blob in box.items():
                rv = _client_id(v, self.n, f"a recipient of client {su}")
                if rv not in neighbours:
                    raise SecAggError(f"client {su} sent a share to {rv}, not a neighbour")
                inbox[rv][su] = _check_blob(blob, f"the share from {su} to {rv}")
        return inbox

    def add_masked(self, u: int, y: ArrayLike) -> None:
        """Step 3: client ``u``'s masked input, added to the running sum (mod 2^64) at
        once, so the server holds O(D) memory whatever the number of clients.

        Raises
        ------
        SecAggError
            An unknown client, a second input from one client, or an input that is not
            a uint64 vector of the first input's length.
        """
        if isinstance(u, (bool, np.bool_)) or not isinstance(u, (int, np.integer)):
            raise SecAggError(f"masked input from {u!r}, not a client index")
        if not 0 <= int(u) < self.n:
            raise SecAggError(f"masked input from unknown client {u} (n = {self.n})")
        u = int(u)
        if u in self._senders:
            raise SecAggError(f"client {u} sent its masked input twice")
        try:
            y = np.asarray(y)
        except (TypeError, ValueError, RuntimeError):
            raise SecAggError(f"client {u}'s masked input is not a uint64 vector") from None
        if y.dtype != np.uint64 or y.ndim != 1:
            raise SecAggError(f"client {u}'s masked input is not a uint64 vector")
        if self._total is not None and y.shape != self._total.shape:
            raise SecAggError(f"client {u}'s masked input has the wrong length")
        self._total = _accumulate(self._total, y)
        self._senders.add(int(u))

    def survivors(self) -> list[int]:
        """The clients whose masked input was received, sorted."""
        return sorted(self._senders)

    def check_recoverable(self) -> None:
        """Check, before asking for shares, that every mask can be removed.

        Raises
        ------
        SecAggError
            No masked input arrived, or some survivor's self mask or some dropped
            client's pair masks have fewer than ``t`` surviving share holders.
        """
        surv = set(self._senders)
        dropped = [u for u in range(self.n) if u not in surv]
        t = self.threshold
        if not surv:
            raise SecAggError("no client sent a masked input")
        for u in range(self.n):
            alive = sum(1 for v in self.graph[u].tolist() if v in surv)
            if u in dropped and alive == 0:
                continue  # no survivor masked with u: nothing of u's to remove
            alive += u in surv  # a survivor holds a share of its own self mask
            if alive < t:
                what = "self mask" if u in surv else "pair masks"
                raise SecAggError(
                    f"too many dropouts: client {u}'s {what} need {t} shares but only "
                    f"{alive} of its neighbours survived (threshold t = {t})"
                )

    def unmask(self, revealed: dict[int, dict[int, Revealed]], dim: int) -> np.ndarray:
        """Step 4: the sum of the survivors' quantised inputs.

        Parameters
        ----------
        revealed : dict of int to dict of int to (str, ndarray)
            Each survivor's answer to :meth:`SecAggClient.unmask`, by survivor.
        dim : int
            The length ``D`` of the inputs.

        Returns
        -------
        ndarray of uint64
            ``sum_{u survived} x_u`` (mod 2^64): the running sum minus the survivors'
            self masks and the pair masks they shared with dropped clients.

        Raises
        ------
        SecAggError
            No input of length ``dim`` arrived, a seed has fewer than ``t`` shares, or
            its shares are inconsistent; a malformed answer: from a client that did not
            survive, about a client that is not the holder's neighbour (or itself), of
            the wrong kind (``"b"`` for a survivor, ``"s"`` for a dropped client), or a
            share that is not a vector of the right length of field elements.
        TypeError, ValueError
            ``dim`` not an int >= 0.
        """
        dim = check_int(dim, "dim", minimum=0)
        surv = sorted(self._senders)
        survset = set(surv)
        dropped = [u for u in range(self.n) if u not in survset]
        if self._total is None or self._total.shape != (dim,):
            raise SecAggError("no masked input of the expected length was received")
        total = self._total.copy()
        t = self.threshold
        shares = self._gather(revealed, survset)

        seeds, signs = [], []
        for u in surv:  # remove self masks
            b = _rebuild(shares.get((u, "b"), []), t, _SEED_BYTES, f"b_{u}")
            seeds.append(b)
            signs.append(-1)
        x25519 = _x25519()
        for v in dropped:  # remove the dropped clients' pair masks from the survivors' sums
            neigh = [u for u in self.graph[v].tolist() if u in survset]
            if not neigh:
                continue
            sk = _rebuild(shares.get((v, "s"), []), t, 32, f"s_{v}")
            s_v = x25519.X25519PrivateKey.from_private_bytes(sk)
            for u in neigh:
                seeds.append(_agree(s_v, self.roster[u][1], _pair_info(u, v), _SEED_BYTES))
                # survivor u added +PRG(s_uv) if v > u, else -PRG: undo it
                signs.append(-1 if v > u else 1)
        expand_masks(total, seeds, signs)
        return total

    def _gather(
        self, revealed: Any, survset: set[int]
    ) -> dict[tuple[int, str], list[tuple[int, np.ndarray]]]:
        """The revealed shares by (owner, kind), each as (Shamir point, share), checked."""
        if not isinstance(revealed, dict):
            raise SecAggError("revealed must be a dict of survivor index to answers")
        shares: dict[tuple[int, str], list[tuple[int, np.ndarray]]] = {}
        for h, msgs in revealed.items():
            holder = _client_id(h, self.n, "a revealing client")
            if holder not in survset:
                raise SecAggError(f"client {holder} did not survive: it cannot reveal shares")
            if not isinstance(msgs, dict):
                raise SecAggError(f"client {holder}'s answer must be a dict of owner to share")
            allowed = set(self.graph[holder].tolist()) | {holder}
            for o, item in msgs.items():
                owner = _client_id(o, self.n, f"an owner in client {holder}'s answer")
                what = f"client {holder}'s share of client {owner}"
                if owner not in allowed:
                    raise SecAggError(f"{what}: {owner} is not a neighbour of {holder}")
                if not (isinstance(item, (tuple, list)) and len(item) == 2):
                    raise SecAggError(f"{what} must be a (kind, share) pair")
                kind, share = item
                want = "b" if owner in survset else "s"
                if kind != want or (owner == holder and kind != "b"):
                    raise SecAggError(f"{what} must be of kind {want!r}, got {kind!r}")
                length = _B_CHUNKS if kind == "b" else _S_CHUNKS
                vec = _check_share(share, length, what)
                shares.setdefault((owner, kind), []).append((holder + 1, vec))
        return shares


def _check_share(share: Any, length: int, what: str) -> np.ndarray:
    """A revealed share: ``length`` field elements (integers in [0, p)) as uint64."""
    try:
        arr = np.asarray(share)
    except (TypeError, ValueError, RuntimeError):
        arr = np.asarray(None)
    if arr.dtype.kind not in "iu" or arr.shape != (length,):
        raise SecAggError(f"{what} must be {length} integers")
    if arr.size and (arr.min() < 0 or int(arr.max()) >= _P):
        raise SecAggError(f"{what} must hold field elements in [0, 2**61 - 1)")
    return arr.astype(np.uint64)


def _rebuild(pts: list[tuple[int, np.ndarray]], t: int, length: int, name: str) -> bytes:
    if len(pts) < t:
        raise SecAggError(f"too many dropouts: {name} has {len(pts)} shares, needs {t}")
    xs = np.array([x for x, _ in pts], dtype=np.uint64)
    ys = np.stack([s for _, s in pts])
    try:  # with more than t shares, the others must lie on the same polynomial
        chunks = np.asarray(
            _sharing.shamir_reconstruct(ys, xs, p=_P, threshold=t, check=len(pts) > t),
            dtype=np.uint64,
        )
    except ValueError as exc:
        raise SecAggError(f"the shares of {name} are inconsistent") from exc
    if (chunks >> np.uint64(8 * _CHUNK_BYTES)).any():
        raise SecAggError(f"the shares of {name} are inconsistent (wrong threshold?)")
    return _from_chunks(chunks, length)


# ----------------------------------------------------------------------------- driver


class SecAggResult(NamedTuple):
    """The result of one :func:`secure_aggregate` round."""

    sum: np.ndarray
    """(D,) float64: the decoded sum of the survivors' quantised updates."""
    ring_sum: np.ndarray
    """(D,) uint64: the same sum in Z_2^64 (before decoding)."""
    survivors: np.ndarray
    """The clients whose input is in the sum (int64, sorted)."""
    dropped: np.ndarray
    """The clients that dropped after sharing keys (int64, sorted)."""
    bytes_per_client: int
    """Bytes one client sends (keys, encrypted shares, masked input, revealed shares),
    the largest over clients."""
    neighbors: int
    """The graph degree ``k`` (``n - 1`` for SecAgg)."""
    threshold: int
    """The Shamir threshold ``t`` used."""


def _as_list(value: Any, name: str, what: str) -> list[Any]:
    """``value`` (a sequence or 1-D array) as a list, else ``TypeError`` naming ``name``."""
    if isinstance(value, np.ndarray):
        if value.ndim != 1:
            raise TypeError(f"{name} must be a 1-D sequence of {what}, got shape {value.shape}")
        return list(value.tolist())
    if isinstance(value, (str, bytes, bytearray)) or not isinstance(value, Sequence):
        raise TypeError(f"{name} must be a sequence of {what}, got {type(value).__name__}")
    return list(value)


def _dropouts(
    dropout: float | Sequence[int] | np.ndarray | None, n: int, rng: RngLike
) -> list[int]:
    if dropout is None:
        return []
    if isinstance(dropout, (bool, int, np.integer)):
        raise TypeError(
            "dropout must be a float rate in [0, 1) or a sequence of client "
            f"indices, got {dropout!r}"
        )
    if isinstance(dropout, (float, np.floating)):
        rate = check_scalar(dropout, "dropout rate", HALF_OPEN_UNIT)

        count = round(rate * n)
        return sorted(resolve(rng).choice(n, size=count, replace=False).tolist())
    if isinstance(dropout, (set, frozenset)):
        dropout = list(dropout)
    items = _as_list(dropout, "dropout", "client indices (or a float rate)")
    if any(isinstance(i, (bool, np.bool_)) or not isinstance(i, (int, np.integer)) for i in items):
        raise TypeError(
            "dropout must be a float rate in [0, 1) or a sequence of int client indices"
        )
    idx = sorted({int(i) for i in items})
    if idx and (idx[0] < 0 or idx[-1] >= n):
        raise ValueError(f"dropout indices must be in [0, {n}), got {idx}")
    return idx


def secure_aggregate(
    updates: UpdatesLike,
    *,
    clip: float = 1.0,
    frac_bits: int = 16,
    threshold: int | None = None,
    neighbors: int | Literal["auto"] | None = None,
    dropout: float | Sequence[int] | np.ndarray | None = None,
    rng: RngLike = None,
    executor: Executor | None = None,
) -> SecAggResult:
    """Run one SecAgg (``neighbors=None``) or SecAgg+ round over ``updates`` (n, D).

    Every client is simulated in this process with its own :class:`SecAggClient`; the
    :class:`SecAggServer` sees only what the protocol sends it.

    Parameters
    ----------
    updates : array (n_clients, D) of real numbers, or list of n_clients 1-D arrays
        One row per client, ``n_clients >= 2``.
    clip : float > 0
        Each coordinate is clipped to ``[-clip, clip]`` before quantisation.
    frac_bits : int in [0, 52]
        Fixed-point fraction bits (values are ``round(x * 2^frac_bits)``).
    threshold : int, optional
        The Shamir threshold ``t`` of the ``k + 1`` share holders (the ``k`` neighbours
        and the client itself), in ``[floor((k + 1) / 2) + 1, k + 1]``: a strict
        majority, which is also the default (``n // 2 + 1`` for SecAgg). Nothing lower
        keeps the privacy claim (the module's Security section).
    neighbors : None, int or "auto"
        ``None`` (SecAgg, all pairs), an even ``k`` (SecAgg+) or ``"auto"`` (SecAgg+
        with ``k`` the even number nearest ``2 log2 n``).
    dropout : float in [0, 1) or sequence of int, optional
        Clients that drop after sharing keys (before sending their masked input): a rate
        (that many clients drawn with ``rng``) or their indices.
    rng : RngLike
        The stream for the graph and dropout draws (not for masks or shares, which
        always come from the secure sources).
    executor : concurrent.futures.Executor, optional
        Runs the clients' masked-input step (default: one after another in this thread,
        each already using every core; or e.g. a thread pool or a Dask client's
        executor); the kernels release the GIL.

    Returns
    -------
    SecAggResult
        ``ring_sum`` equals the plain sum of the survivors' quantised updates exactly
        (mod 2^64), and ``sum`` is its decoded value (exact while the quantised sum stays
        below 2^53 in magnitude, else rounded to float64).

    Raises
    ------
    SecAggError
        Too many dropouts to remove every mask (never a wrong sum).
    ValueError
        Bad shapes, NaN, a bad dropout rate or index, an odd ``k``, a threshold out of
        range, or a sum that cannot fit the ring
        (``n * round(clip * 2**frac_bits) >= 2**63``).
    TypeError
        ``dropout`` given as a bool or an int.

    Security
    --------
    The protocol's guarantees are those of the module (:mod:`ppml_fast.aggregation.secure`):
    against an honest-but-curious server, the sum of the survivors' quantised updates is
    all it learns. Running every party in one process, as here, gives no protection in
    itself: this function is for simulation and measurement.
    """
    x = float64_rows(updates)
    n, dim = x.shape
    c, fb = _fixed_point(clip, frac_bits, n)
    if isinstance(neighbors, str):
        check_choice(neighbors, "neighbors", ("auto",))
        k: int | None = max(2, 2 * round(math.log2(n)))
        if k is not None and k >= n - 1:
            k = None
    elif neighbors is None:
        k = None
    else:
        k = check_int(neighbors, "neighbors", minimum=2)
    graph = secagg_graph(n, k, rng)
    degree = len(graph[0])
    t = _min_threshold(degree) if threshold is None else _check_threshold(threshold, [degree])
    drop = set(_dropouts(dropout, n, rng))
    q = _quantize(x, c, fb)

    clients = [SecAggClient(u) for u in range(n)]
    server = SecAggServer(n, t, graph)
    roster = server.collect_keys({u: c.advertise_keys() for u, c in enumerate(clients)})
    outboxes = {u: c.share_keys(roster, graph[u], t) for u, c in enumerate(clients)}
    for u, box in server.route_shares(outboxes).items():
        clients[u].receive_shares(box)
    alive = [u for u in range(n) if u not in drop]

    def work(u: int) -> np.ndarray:
        return clients[u].masked_input(q[u])

    ys = map(work, alive) if executor is None else executor.map(work, alive)
    for u, y in zip(alive, ys, strict=True):
        server.add_masked(u, y)
    server.check_recoverable()
    survivors = server.survivors()
    dropped = [u for u in range(n) if u not in set(survivors)]
    revealed = {u: clients[u].unmask(survivors, dropped) for u in survivors}
    total = server.unmask(revealed, dim)
    share_bytes = max((len(b) for box in outboxes.values() for b in box.values()), default=0)
    per_client = 64 + share_bytes * degree + 8 * dim + degree * 8 * _S_CHUNKS
    return SecAggResult(
        sum=dequantize(total, frac_bits),
        ring_sum=total,
        survivors=np.array(survivors, dtype=np.int64),
        dropped=np.array(dropped, dtype=np.int64),
        bytes_per_client=int(per_client),
        neighbors=degree,
        threshold=t,
    )
