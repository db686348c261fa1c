"""Packed Paillier encryption for federated aggregation: many quantised values per plaintext.

A Paillier plaintext has ``|n|`` bits but a model update is a long vector of small
numbers; encrypting each number on its own spends a 2|n|-bit ciphertext per value. Packing
(BatchCrypt, Zhang et al., USENIX ATC 2020) quantises every value to a small integer and
places many of them side by side in one plaintext, each in a *slot* with spare high bits
so that the server can add the clients' ciphertexts without a slot carrying into the next.

:func:`encrypt_packed` quantises and packs a float array and encrypts it (one kernel call
for all ciphertexts), :class:`EncryptedPackedArray` adds such arrays (``+``,
:func:`sum_packed`, built-in ``sum``) and multiplies them by small positive ints, and
:func:`decrypt_packed` decrypts by CRT and unpacks the slot sums.

Maths
-----
Layout parameters: ``bits`` (b), ``clients`` (C), ``frac_bits`` (f) and ``clip``.

* Quantisation: a value v is clipped to ``[-clip, clip]`` (when ``clip`` is given) and
  rounded to ``q = rint(v 2^f)`` (to nearest, ties to even; or stochastically, see
  :func:`encrypt_packed`), a signed integer with ``|q| <= Q = 2^(b-1) - 1``.
* Offset encoding: the slot holds ``u = q + 2^(b-1)``, an integer in ``[1, 2^b - 1]``.
  Offset encoding is exact and needs no sign handling under addition: a sum of k
  contributions holds ``S = sum q + k 2^(b-1)``, and the decoded sum is
  ``S - k 2^(b-1)``.
* Slots: each slot is ``w = b + h`` bits wide, with ``h = ceil(log2 C)`` headroom bits. A
  sum of at most C contributions is at most ``C (2^b - 1) < 2^(b+h)``, so it never carries
  into the next slot. Slot j of a plaintext occupies bits ``[j w, (j+1) w)``:
  ``P = sum_j u_j 2^(j w)``.
* Slots per plaintext: ``k = floor((|n| - 2) / w)``, so ``P < 2^(|n|-2) < n / 2``: a
  plaintext and every sum of up to C of them stay below n (Paillier adds plaintexts mod n).
* Homomorphic operations act on all slots at once: ``E(P1) E(P2) = E(P1 + P2)`` adds
  slot by slot, ``E(P)^m = E(m P)`` multiplies every slot by m (m contributions' worth of
  headroom).
* Expansion: a ciphertext has ``2 |n|`` bits and carries k values, ``2 |n| / k``
  ciphertext bits per value instead of ``2 |n|`` unpacked (about 47 bits for 16-bit slots,
  100 clients and a 2048-bit key, against 4096).

Decrypted sums are exact integers; in values they are ``sum q 2^-f``, within
``C 2^-f / 2`` of the sum of the clipped inputs when rounding to nearest.

Security
--------
Packing changes what a plaintext holds, not how it is encrypted: every ciphertext is an
ordinary Paillier encryption with fresh randomness (DJN or classic, as the key's
``encrypt_batch``), semantically secure under the same assumptions, so a packed
ciphertext reveals nothing more than an unpacked one, including nothing about which slots
hold what. The layout (bits, clients, frac_bits, clip, shape) is public, as the array's
shape is for unpacked ciphertexts. Overflowing a slot would not leak either, but would
silently corrupt its neighbours; hence every ``+``, ``sum`` and ``*`` that could take a
slot past C contributions is refused before anything is computed. Results of homomorphic
operations are not re-randomised: call :meth:`EncryptedPackedArray.obfuscate`, or
serialise with ``be_secure=True``, before passing them on. Quantisation and clipping are
not a privacy mechanism: add differential-privacy noise before encrypting if the sum
itself must be protected.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._errors import KeyMismatchError
from .._native import paillier as _kernels
from .._types import ArrayLike
from .._validation import as_finite_array, check_bool, check_choice, check_int, check_scalar
from . import _codec
from ._limbs import nlimbs, threads, vec
from .keys import PaillierPrivateKey, PaillierPublicKey, _check_obfuscation

__all__ = ["EncryptedPackedArray", "decrypt_packed", "encrypt_packed", "sum_packed"]

MAGIC = b"PPMLPPK1"
MAX_BITS = 53
"""Largest ``bits``: quantised values (``|q| < 2^52``) are exact in float64."""
MAX_SLOT_BITS = 64
"""Largest slot width ``bits + ceil(log2(clients))``: a slot sum fits one 64-bit word."""
MAX_FRAC_BITS = 1023
"""``frac_bits`` lies in ``[-MAX_FRAC_BITS, MAX_FRAC_BITS]`` (2^f a normal double)."""
_ROUNDINGS = ("nearest", "stochastic")


@dataclass(frozen=True)
class _Layout:
    """A packing layout: the quantisation and the slot geometry for one key."""

    n: int
    bits: int
    clients: int
    frac_bits: int
    clip: float | None

    @property
    def headroom(self) -> int:
        """``ceil(log2(clients))``: the spare bits above each value."""
        return (self.clients - 1).bit_length()

    @property
    def slot_bits(self) -> int:
        """The slot width ``bits + headroom``."""
        return self.bits + self.headroom

    @property
    def slots(self) -> int:
        """Slots per plaintext: ``floor((|n| - 2) / slot_bits)``."""
        return (self.n.bit_length() - 2) // self.slot_bits

    @property
    def offset(self) -> int:
        """The offset ``2^(bits-1)`` added to each quantised value."""
        return 1 << (self.bits - 1)

    @property
    def qmax(self) -> int:
        """The largest quantised magnitude, ``2^(bits-1) - 1``."""
        return (1 << (self.bits - 1)) - 1

    def ciphertexts(self, size: int) -> int:
        """The number of ciphertexts that hold ``size`` values."""
        return -(-size // self.slots)

    def diff(self, other: _Layout) -> str | None:
        """The first field in which ``other`` differs (for messages), or None."""
        for name in ("bits", "clients", "frac_bits", "clip"):
            a, b = getattr(self, name), getattr(other, name)
            if a != b:
                return f"{name} {a!r} vs {b!r}"
        return None


def _check_layout(public_key: Any, bits: Any, clients: Any, clip: Any, frac_bits: Any) -> _Layout:
    """Validate the layout arguments; ``TypeError`` / ``ValueError`` naming each one."""
    if not isinstance(public_key, PaillierPublicKey):
        raise TypeError(f"public_key must be a PaillierPublicKey, got {type(public_key).__name__}")
    bits = check_int(bits, "bits", minimum=2, maximum=MAX_BITS)
    clients = check_int(clients, "clients", minimum=1)
    headroom = (clients - 1).bit_length()
    if bits + headroom > MAX_SLOT_BITS:
        raise ValueError(
            f"bits + ceil(log2(clients)) must be <= {MAX_SLOT_BITS} (a slot sum fits 64 bits), "
            f"got bits={bits}, clients={clients} ({bits} + {headroom})"
        )
    nbits = public_key.n.bit_length()
    if (nbits - 2) // (bits + headroom) < 1:
        raise ValueError(
            f"a slot of bits + ceil(log2(clients)) = {bits + headroom} bits does not fit a "
            f"{nbits}-bit key (at most {nbits - 2} bits per plaintext)"
        )
    qmax = (1 << (bits - 1)) - 1
    if clip is not None:
        clip = check_scalar(clip, "clip")
        if clip <= 0:
            raise ValueError(f"clip must be > 0, got {clip}")
    if frac_bits is None:
        if clip is None:
            raise ValueError("give clip, frac_bits or both: the quantisation scale is unknown")
        frac_bits = _largest_frac_bits(clip, qmax)
        if frac_bits is None:
            raise ValueError(
                f"clip={clip} is too large or too small for any frac_bits in "
                f"[-{MAX_FRAC_BITS}, {MAX_FRAC_BITS}] with bits={bits}"
            )
    else:
        frac_bits = check_int(frac_bits, "frac_bits", minimum=-MAX_FRAC_BITS, maximum=MAX_FRAC_BITS)
        if clip is not None:
            top = np.rint(math.ldexp(clip, frac_bits))
            if top > qmax:
                raise ValueError(
                    f"clip * 2**frac_bits must round to at most 2**(bits-1) - 1 = {qmax}, got "
                    f"clip={clip}, frac_bits={frac_bits} ({top:.17g})"
                )
    if clip is not None and np.rint(math.ldexp(clip, frac_bits)) == 0:
        raise ValueError(
            f"clip * 2**frac_bits rounds to 0 (clip={clip}, frac_bits={frac_bits}): every "
            "value would quantise to 0"
        )
    return _Layout(public_key.n, bits, clients, frac_bits, clip)


def _largest_frac_bits(clip: float, qmax: int) -> int | None:
    """The largest f in range with ``rint(clip 2^f) <= qmax`` (None when there is none)."""
    # log2 of each side: qmax / clip overflows for a subnormal clip
    f = min(MAX_FRAC_BITS, max(-MAX_FRAC_BITS, math.floor(math.log2(qmax) - math.log2(clip)) + 1))
    while f >= -MAX_FRAC_BITS and np.rint(math.ldexp(clip, f)) > qmax:
        f -= 1
    return f if f >= -MAX_FRAC_BITS else None


def _quantise(
    values: np.ndarray, layout: _Layout, rounding: str, gen: np.random.Generator | None
) -> np.ndarray:
    """Flat float values as offset-encoded slot contents ``u = q + 2^(b-1)`` (uint64).

    Raises ``ValueError`` naming ``values`` when, without ``clip``, a value quantises
    beyond ``+-(2^(b-1) - 1)``.
    """
    x = values.astype(np.float64, copy=False).reshape(-1)  # float32 -> float64 is exact
    if layout.clip is not None:
        x = np.clip(x, -layout.clip, layout.clip)
    with np.errstate(over="ignore"):  # a huge value becomes inf, refused below
        x = np.ldexp(x, layout.frac_bits)  # exact: scaling by a power of two
    if rounding == "nearest":
        q = np.rint(x)
    else:
        assert gen is not None
        lo = np.floor(x)
        q = lo + (gen.random(x.shape) < (x - lo))
    qmax = layout.qmax
    if q.size and float(np.abs(q).max()) > qmax:
        i = int(np.flatnonzero(np.abs(q) > qmax)[0])
        bound = math.ldexp(qmax, -layout.frac_bits)
        raise ValueError(
            f"values must quantise within +-(2**(bits-1) - 1) = +-{qmax}, i.e. |value| <= "
            f"about {bound:.6g} with frac_bits={layout.frac_bits}; values[{i}] = "
            f"{float(values.reshape(-1)[i])!r} does not (pass clip= to clip instead)"
        )
    # with clip given, |q| <= rint(clip 2^f) <= qmax was checked with the layout
    return (q.astype(np.int64) + layout.offset).astype(np.uint64)


def _slot_geometry(layout: _Layout) -> tuple[np.ndarray, np.ndarray]:
    """Each slot's first limb and bit shift within it."""
    start = np.arange(layout.slots, dtype=np.int64) * layout.slot_bits
    return start // 64, start % 64


def _pack(u: np.ndarray, layout: _Layout) -> np.ndarray:
    """Offset-encoded values (flat uint64, each < 2^bits) as plaintext limb rows.

    Value i goes to plaintext ``i // slots``, slot ``i % slots``; unused slots of the last
    plaintext are 0. Slots are disjoint bit ranges, so OR places them.
    """
    k = layout.slots
    rows = layout.ciphertexts(u.size)
    width = nlimbs((1 << (k * layout.slot_bits)) - 1)
    grid = np.zeros((rows, k), np.uint64)
    grid.reshape(-1)[: u.size] = u
    out = np.zeros((rows, width + 1), np.uint64)  # one spare limb for the top slot's spill
    limb, shift = _slot_geometry(layout)
    for j in range(k):
        s = int(shift[j])
        out[:, limb[j]] |= grid[:, j] << np.uint64(s)
        if s + layout.bits > 64:
            out[:, limb[j] + 1] |= grid[:, j] >> np.uint64(64 - s)
    return np.ascontiguousarray(out[:, :width])


def _unpack(p: np.ndarray, layout: _Layout, size: int) -> np.ndarray:
    """The slot sums (uint64) of plaintext limb rows, the first ``size`` in order."""
    k, w = layout.slots, layout.slot_bits
    rows = p.shape[0]
    padded = np.zeros((rows, p.shape[1] + 1), np.uint64)
    padded[:, : p.shape[1]] = p
    mask = np.uint64((1 << w) - 1) if w < 64 else np.uint64(2**64 - 1)
    out = np.empty((rows, k), np.uint64)
    limb, shift = _slot_geometry(layout)
    for j in range(k):
        s = int(shift[j])
        v = padded[:, limb[j]] >> np.uint64(s)
        if s and s + w > 64:
            v |= padded[:, limb[j] + 1] << np.uint64(64 - s)
        out[:, j] = v & mask
    return out.reshape(-1)[:size]


class EncryptedPackedArray:
    """An array of values packed ``slots`` to a Paillier ciphertext, with its layout.

    Made by :func:`encrypt_packed` (or :meth:`from_bytes`); the constructor itself raises
    ``TypeError``. Operations check keys, layouts and the contribution budget before they
    compute anything:

    * ``a + b``: slot-wise sums of two arrays of the same key, layout and shape (one
      ciphertext product each); the result holds ``a.count + b.count`` contributions;
    * ``sum(arrays)`` (built-in, which starts from ``0``) and :func:`sum_packed`;
    * ``a * m`` for an int ``m >= 1``: every slot times m, ``a.count * m``
      contributions.

    Any of these that would hold more than ``clients`` contributions raises
    ``ValueError``: a slot could then carry into its neighbour.

    Attributes
    ----------
    public_key : PaillierPublicKey
        The key the ciphertexts are encrypted under.

    Security
    --------
    As for :class:`~ppml_fast.paillier.EncryptedArray`: results of operations are not
    re-randomised; :meth:`obfuscate`, or :meth:`to_bytes` with ``be_secure=True`` (the
    default), before they leave this machine.
    """

    __slots__ = ("_c", "_count", "_layout", "_obfuscated", "_shape", "public_key")
    _c: np.ndarray  # (ciphertexts, limbs of n^2) uint64
    _count: int
    _layout: _Layout
    _obfuscated: bool
    _shape: tuple[int, ...]
    public_key: PaillierPublicKey

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("build an EncryptedPackedArray with encrypt_packed or from_bytes")

    @classmethod
    def _wrap(
        cls,
        public_key: PaillierPublicKey,
        layout: _Layout,
        c: np.ndarray,
        shape: tuple[int, ...],
        count: int,
        obfuscated: bool,
    ) -> EncryptedPackedArray:
        self = object.__new__(cls)
        self.public_key = public_key
        self._layout = layout
        self._c = np.ascontiguousarray(c, dtype=np.uint64)
        self._shape = tuple(int(s) for s in shape)
        self._count = int(count)
        self._obfuscated = bool(obfuscated)
        size = int(np.prod(self._shape, dtype=np.int64))
        if self._c.shape[0] != layout.ciphertexts(size):
            raise AssertionError("internal: ciphertext count does not match the shape")
        return self

    # -- properties --------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        """The shape of the packed values."""
        return self._shape

    @property
    def size(self) -> int:
        """The number of packed values."""
        return int(np.prod(self._shape, dtype=np.int64))

    @property
    def count(self) -> int:
        """How many client contributions the slots hold (1 after :func:`encrypt_packed`)."""
        return self._count

    @property
    def bits(self) -> int:
        """The width of one quantised value (offset-encoded) in bits."""
        return self._layout.bits

    @property
    def clients(self) -> int:
        """The most contributions a slot has headroom for."""
        return self._layout.clients

    @property
    def frac_bits(self) -> int:
        """Fractional bits of the fixed-point values (quantisation step ``2**-frac_bits``)."""
        return self._layout.frac_bits

    @property
    def clip(self) -> float | None:
        """The clipping bound (None: values were not clipped)."""
        return self._layout.clip

    @property
    def slot_bits(self) -> int:
        """The slot width, ``bits + ceil(log2(clients))``."""
        return self._layout.slot_bits

    @property
    def slots(self) -> int:
        """Values per ciphertext, ``floor((|n| - 2) / slot_bits)``."""
        return self._layout.slots

    @property
    def n_ciphertexts(self) -> int:
        """The number of ciphertexts, ``ceil(size / slots)``."""
        return int(self._c.shape[0])

    @property
    def expansion(self) -> float:
        """Ciphertext bits per value: ``n_ciphertexts * 2|n| / size``.

        Tends to ``2|n| / slots`` for large arrays (the last ciphertext may be partly
        empty); for an empty array, that layout figure. Unpacked Paillier spends ``2|n|``.
        """
        ct_bits = 2 * self.public_key.n.bit_length()
        if self.size == 0:
            return ct_bits / self.slots
        return self.n_ciphertexts * ct_bits / self.size

    @property
    def nbytes(self) -> int:
        """The length of :meth:`to_bytes`' output."""
        return len(MAGIC) + 4 + len(self._header()) + self._c.nbytes

    def __len__(self) -> int:
        if not self._shape:
            raise TypeError("len() of a 0-d EncryptedPackedArray")
        return self._shape[0]

    def __repr__(self) -> str:
        lay = self._layout
        return (
            f"<EncryptedPackedArray shape={self._shape} count={self._count}/{lay.clients} "
            f"bits={lay.bits} frac_bits={lay.frac_bits} clip={lay.clip} slots={lay.slots} "
            f"key={self.public_key!r}>"
        )

    def copy(self) -> EncryptedPackedArray:
        """A copy with its own ciphertext array."""
        return EncryptedPackedArray._wrap(
            self.public_key,
            self._layout,
            self._c.copy(),
            self._shape,
            self._count,
            self._obfuscated,
        )

    # -- checks ------------------------------------------------------------------------------
    def _check_compatible(self, other: EncryptedPackedArray, name: str) -> None:
        """Raise unless ``other`` has this array's key, layout and shape."""
        if other.public_key != self.public_key:
            raise KeyMismatchError(f"{name} is encrypted under a different public key")
        d = self._layout.diff(other._layout)
        if d is not None:
            raise ValueError(f"{name} has a different packing layout ({d})")
        if other._shape != self._shape:
            raise ValueError(f"{name} has a different shape ({other._shape} vs {self._shape})")

    def _check_budget(self, total: int, what: str) -> None:
        """Raise ``ValueError`` when ``total`` contributions exceed ``clients``."""
        if total > self._layout.clients:
            raise ValueError(
                f"{what} would hold {total} contributions, more than clients="
                f"{self._layout.clients} (the slot headroom of ceil(log2(clients)) = "
                f"{self._layout.headroom} bits): a slot could carry into its neighbour"
            )

    # -- arithmetic --------------------------------------------------------------------------
    def __add__(self, other: Any) -> Any:
        if not isinstance(other, EncryptedPackedArray):
            if isinstance(other, (int, np.integer)) and not isinstance(other, (bool, np.bool_)):
                if other == 0:  # the start of built-in sum()
                    return self
                raise TypeError(
                    "only 0 (the start of sum()) and EncryptedPackedArray can be added to an "
                    "EncryptedPackedArray"
                )
            return NotImplemented
        self._check_compatible(other, "other")
        self._check_budget(self._count + other._count, "the sum")
        out = np.empty_like(self._c)
        if out.shape[0]:
            _kernels.mulmod(self._c, other._c, self.public_key._limb("n2"), out, threads())
        return EncryptedPackedArray._wrap(
            self.public_key, self._layout, out, self._shape, self._count + other._count, False
        )

    def __radd__(self, other: Any) -> Any:
        return self.__add__(other)

    def __mul__(self, other: Any) -> Any:
        if isinstance(other, (bool, np.bool_)) or not isinstance(other, (int, np.integer)):
            if isinstance(other, (float, np.floating, np.ndarray, EncryptedPackedArray)):
                raise TypeError(
                    "an EncryptedPackedArray can be multiplied by a positive int only, got "
                    f"{type(other).__name__}"
                )
            return NotImplemented
        m = int(other)
        if m < 1:
            raise ValueError(f"the multiplier must be an int >= 1, got {m}")
        self._check_budget(self._count * m, f"the product by {m}")
        out = np.empty_like(self._c)
        if out.shape[0]:
            _kernels.powm(
                self._c,
                vec(m)[None, :],
                None,
                self.public_key._limb("n2"),
                False,
                out,
                None,
                threads(),
            )
        return EncryptedPackedArray._wrap(
            self.public_key, self._layout, out, self._shape, self._count * m, False
        )

    def __rmul__(self, other: Any) -> Any:
        return self.__mul__(other)

    def obfuscate(self, obfuscation: str | None = None) -> None:
        """Re-randomise every ciphertext in place.

        Parameters
        ----------
        obfuscation : {"djn", "classic"}, optional
            Fresh ``h_s^alpha`` or ``r^n`` factors (default: the key's obfuscation).
        """
        pk = self.public_key
        mode = pk.obfuscation if obfuscation is None else _check_obfuscation(obfuscation)
        if self._c.shape[0]:
            self._c = pk._obfuscate_rows(self._c, False, mode=mode)
        self._obfuscated = True

    # -- serialisation -----------------------------------------------------------------------
    def _header(self) -> bytes:
        lay = self._layout
        return json.dumps(
            {
                "n": format(lay.n, "x"),
                "shape": list(self._shape),
                "limbs": int(self._c.shape[1]),
                "bits": lay.bits,
                "clients": lay.clients,
                "frac_bits": lay.frac_bits,
                "clip": None if lay.clip is None else float(lay.clip).hex(),
                "count": self._count,
            }
        ).encode()

    def to_bytes(self, be_secure: bool = True) -> bytes:
        """A compact binary form.

        Parameters
        ----------
        be_secure : bool, default True
            Re-randomise first when the ciphertexts came out of operations.

        Returns
        -------
        bytes
            The magic ``PPMLPPK1``, the header length (4 bytes, little-endian), a JSON
            header ``{"n": hex, "shape", "limbs", "bits", "clients", "frac_bits", "clip":
            float.hex or null, "count"}`` and the ciphertexts as little-endian 64-bit
            limbs, one row per ciphertext.
        """
        if be_secure and not self._obfuscated:
            self.obfuscate()
        header = self._header()
        return b"".join(
            [MAGIC, len(header).to_bytes(4, "little"), header, self._c.astype("<u8").tobytes()]
        )

    @classmethod
    def from_bytes(
        cls, data: bytes, public_key: PaillierPublicKey | None = None
    ) -> EncryptedPackedArray:
        """The inverse of :meth:`to_bytes`, checking everything that comes in.

        Parameters
        ----------
        data : bytes
            :meth:`to_bytes`' output.
        public_key : PaillierPublicKey, optional
            The expected key (checked against the header's n); by default a new key.

        Returns
        -------
        EncryptedPackedArray
            The array; not marked re-randomised.

        Raises
        ------
        TypeError
            ``data`` is not bytes-like, or ``public_key`` not a key.
        ValueError
            Bad magic, a malformed header or layout, a count outside ``[1, clients]``, the
            wrong length or a ciphertext ``>= n**2``.
        KeyMismatchError
            ``public_key`` has another n.
        """
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data must be bytes, got {type(data).__name__}")
        data = bytes(data)
        h, n, shape, width, off = _codec.read_header(data, MAGIC, "EncryptedPackedArray")
        try:
            clip = None if h["clip"] is None else float.fromhex(h["clip"])
            bits, clients, frac_bits, count = h["bits"], h["clients"], h["frac_bits"], h["count"]
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise ValueError("data has a malformed header") from e
        pk = _codec.key_for(n, public_key)
        try:
            layout = _check_layout(pk, bits, clients, clip, frac_bits)
        except (TypeError, ValueError) as e:
            raise ValueError(f"data has an invalid packing layout: {e}") from e
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= clients:
            raise ValueError(f"data: count must be an int in [1, clients={clients}], got {count!r}")
        size = int(np.prod(shape, dtype=np.int64))
        rows = layout.ciphertexts(size)
        if width != nlimbs(pk.nsquare) or len(data) != off + 8 * rows * width:
            raise ValueError("data has the wrong length for its header")
        c = np.frombuffer(data, "<u8", rows * width, off).astype(np.uint64).reshape(rows, width)
        _codec.check_rows_below(c, pk)
        return cls._wrap(pk, layout, c, shape, count, False)


def encrypt_packed(
    public_key: PaillierPublicKey,
    values: ArrayLike,
    *,
    bits: int,
    clients: int,
    clip: float | None = None,
    frac_bits: int | None = None,
    rounding: str = "nearest",
    rng: Any = None,
    obfuscation: str | None = None,
) -> EncryptedPackedArray:
    """Quantise, pack and encrypt ``values``: ``slots`` values per Paillier ciphertext.

    Parameters
    ----------
    public_key : PaillierPublicKey
        The key (every client of one aggregation uses the same key and layout).
    values : array_like of float
        The values, any shape, packed in C order; float32 and float64 (ints and bools are
        taken as float64). NaN and infinities are refused.
    bits : int
        Width of one quantised value, 2 to 53: ``|rint(v 2**frac_bits)| <= 2**(bits-1) - 1``.
    clients : int
        The most contributions (client arrays, or the multiplier of ``*``) a sum may
        hold, >= 1; each slot gets ``ceil(log2(clients))`` headroom bits, and
        ``bits + ceil(log2(clients))`` must be at most 64.
    clip : float, optional
        Values are clipped to ``[-clip, clip]`` before quantising (BatchCrypt's clipping).
        Without it nothing is clipped and a value that quantises beyond
        ``+-(2**(bits-1) - 1)`` raises ``ValueError``.
    frac_bits : int, optional
        Fractional bits of the fixed-point values, in ``[-1023, 1023]``: the quantisation
        step is ``2**-frac_bits``. Default (``clip`` required): the largest with
        ``rint(clip * 2**frac_bits) <= 2**(bits-1) - 1``, which uses the whole slot.
    rounding : {"nearest", "stochastic"}, default "nearest"
        ``"nearest"``: ``rint`` (ties to even), error at most ``2**-frac_bits / 2`` per
        value. ``"stochastic"``: round up with probability equal to the fraction, an
        unbiased quantiser (error below ``2**-frac_bits``).
    rng : None, int or numpy.random.Generator, optional
        The stream of stochastic rounding (default: the package's secure stream); unused
        with ``"nearest"``. Paillier's own randomness always comes from the operating
        system's CSPRNG and the package's secure stream, never from ``rng``.
    obfuscation : {"djn", "classic"}, optional
        As in :meth:`PaillierPublicKey.encrypt_batch` (default: the key's).

    Returns
    -------
    EncryptedPackedArray
        ``ceil(size / slots)`` ciphertexts, ``count`` 1, re-randomised.

    Raises
    ------
    TypeError
        ``public_key`` is not a key, ``values`` not real numbers, or a layout argument of
        the wrong type.
    ValueError
        A layout argument out of range (each message names it and its bound), a slot that
        does not fit the key, NaN or inf in ``values``, or (without ``clip``) a value
        beyond the range.

    Notes
    -----
    Value ``q`` goes into its slot as ``q + 2**(bits-1)`` (offset encoding), slot j of a
    plaintext at bits ``[j w, (j+1) w)`` with ``w = bits + ceil(log2(clients))``, and
    ``slots = floor((|n| - 2) / w)``; see :mod:`ppml_fast.paillier.packing`.

    Examples
    --------
    >>> from ppml_fast import paillier
    >>> pk, sk = paillier.generate_paillier_keypair(n_length=512)
    >>> updates = [[0.5, -0.25, 1.0], [0.25, 0.25, -2.0]]
    >>> enc = [paillier.encrypt_packed(pk, u, bits=16, clients=4, clip=2.0) for u in updates]
    >>> paillier.decrypt_packed(sk, paillier.sum_packed(enc)).tolist()
    [0.75, 0.0, -1.0]
    """
    layout = _check_layout(public_key, bits, clients, clip, frac_bits)
    rounding = check_choice(rounding, "rounding", _ROUNDINGS)
    mode = public_key.obfuscation if obfuscation is None else _check_obfuscation(obfuscation)
    gen = None
    if rounding == "stochastic" or rng is not None:  # a bad rng is refused either way
        from ..rng import resolve

        gen = resolve(rng)
    arr = as_finite_array(values, "values")
    u = _quantise(arr, layout, rounding, gen)
    plain = _pack(u, layout)
    cipher = public_key._obfuscate_rows(plain, True, mode=mode)
    return EncryptedPackedArray._wrap(public_key, layout, cipher, arr.shape, 1, True)


def sum_packed(arrays: Iterable[EncryptedPackedArray]) -> EncryptedPackedArray:
    """The slot-wise sum of packed arrays (the server's aggregate), one kernel call.

    Parameters
    ----------
    arrays : iterable of EncryptedPackedArray
        At least one array; all of one key, layout and shape.

    Returns
    -------
    EncryptedPackedArray
        Their sum, holding the sum of their counts; not re-randomised.

    Raises
    ------
    TypeError
        ``arrays`` is not an iterable of EncryptedPackedArray.
    ValueError
        No arrays, different layouts or shapes, or more than ``clients`` contributions
        in all.
    KeyMismatchError
        Arrays under different keys.
    """
    if (
        isinstance(arrays, EncryptedPackedArray)
        or not isinstance(arrays, Iterable)
        or (isinstance(arrays, np.ndarray) and arrays.ndim == 0)  # iterable in name only
    ):
        raise TypeError(
            f"arrays must be an iterable of EncryptedPackedArray, got {type(arrays).__name__}"
        )
    items = list(arrays)
    if not items:
        raise ValueError("arrays is empty: nothing to sum")
    for i, a in enumerate(items):
        if not isinstance(a, EncryptedPackedArray):
            raise TypeError(f"arrays[{i}] must be an EncryptedPackedArray, got {type(a).__name__}")
    first = items[0]
    for i, a in enumerate(items[1:], 1):
        first._check_compatible(a, f"arrays[{i}]")
    total = sum(a._count for a in items)
    first._check_budget(total, f"the sum of {len(items)} arrays")
    if len(items) == 1:
        return first.copy()
    pk = first.public_key
    rows, width = first._c.shape
    out = np.empty((rows, width), np.uint64)
    if rows:
        stack = np.ascontiguousarray(np.stack([a._c for a in items], axis=1))  # (rows, K, L)
        _kernels.prod_groups(stack, pk._limb("n2"), out, threads())
    return EncryptedPackedArray._wrap(pk, first._layout, out, first._shape, total, False)


def decrypt_packed(
    private_key: PaillierPrivateKey, packed: EncryptedPackedArray, *, integers: bool = False
) -> np.ndarray:
    """Decrypt a packed array (one CRT kernel call) and unpack its slot sums.

    Parameters
    ----------
    private_key : PaillierPrivateKey
        The key matching ``packed.public_key``.
    packed : EncryptedPackedArray
        A packed array or sum of them.
    integers : bool, default False
        Return the exact fixed-point sums ``sum q`` (int64) instead of values.

    Returns
    -------
    numpy.ndarray
        Of ``packed.shape``: float64 sums ``sum q * 2**-frac_bits`` (exact while
        ``|sum q| < 2**53``, else the nearest double), or with ``integers`` the int64
        sums ``sum q``.

    Raises
    ------
    TypeError
        Not a private key, or ``packed`` not an EncryptedPackedArray.
    KeyMismatchError
        ``packed`` is under another key.
    ValueError
        An invalid ciphertext, or a plaintext that is not a packed sum of this layout
        (bits above the top slot, or a slot beyond ``count * (2**bits - 1)``).
    """
    if not isinstance(private_key, PaillierPrivateKey):
        raise TypeError(
            f"private_key must be a PaillierPrivateKey, got {type(private_key).__name__}"
        )
    if not isinstance(packed, EncryptedPackedArray):
        raise TypeError(f"packed must be an EncryptedPackedArray, got {type(packed).__name__}")
    integers = check_bool(integers, "integers")
    pk = private_key.public_key
    if packed.public_key != pk:
        raise KeyMismatchError("packed was encrypted against a different key")
    lay = packed._layout
    rows = packed._c.shape[0]
    n_l = pk._limb("n")
    p = np.empty((rows, n_l.size), np.uint64)
    sign = np.empty(rows, np.uint8)
    if rows:
        nbad = _kernels.decrypt(private_key._dec_limbs(), packed._c, p, sign, threads())
        if nbad:
            i = int(np.flatnonzero(sign == 3)[0])
            raise ValueError(
                f"packed holds {nbad} invalid ciphertext(s) (0, >= n**2 or not coprime to "
                f"n), the first is ciphertext {i}"
            )
    # The kernel reports plaintexts above n - max_int as negatives (sign 1); a packed sum
    # is below 2**(|n| - 2) < n - max_int, so such a row is not one.
    limb, bit = divmod(lay.slots * lay.slot_bits, 64)
    high = sign == 1
    if limb < p.shape[1]:
        high |= (p[:, limb] >> np.uint64(bit)) != 0
        high |= p[:, limb + 1 :].any(axis=1)
    if high.any():
        raise ValueError(
            f"ciphertext {int(np.flatnonzero(high)[0])} does not hold a packed sum of this "
            "layout (bits above the top slot): wrong layout, or a sum that overflowed"
        )
    s = _unpack(p, lay, packed.size)
    cap = np.uint64(packed._count * ((1 << lay.bits) - 1))
    if s.size and (s > cap).any():
        raise ValueError(
            f"value {int(np.flatnonzero(s > cap)[0])} exceeds count * (2**bits - 1): packed "
            "does not hold a sum of its layout"
        )
    # S - count 2^(b-1) lies within +-2^63 (slot width <= 64): wraparound subtraction and an
    # int64 view give it exactly
    q = (s - np.uint64(packed._count * lay.offset)).view(np.int64).reshape(packed.shape)
    if integers:
        return q
    return np.ldexp(q.astype(np.float64), -lay.frac_bits)
