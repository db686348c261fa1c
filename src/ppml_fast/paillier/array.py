"""Paillier homomorphic encryption: a drop-in for ``phe.paillier`` plus batched GMP kernels.

Replace ``from phe import paillier`` with ``from ppml_fast import paillier``: keys,
:class:`EncodedNumber` and :class:`EncryptedNumber` behave as python-paillier's do, and for
the same key and ``r_value`` the ciphertext integers are the same, so keys and ciphertexts
move between the two libraries unchanged. The batch API is what the module is for:
:meth:`PaillierPublicKey.encrypt_batch` returns an :class:`EncryptedArray` (ciphertexts as
rows of GMP limbs), whose ``+``, ``-``, ``*``, ``sum`` and plaintext ``@`` run as OpenMP
loops over GMP with the GIL released, and :meth:`PaillierPrivateKey.decrypt_batch` decrypts
by CRT on all cores.

Maths
-----
A public key is n = pq with g = n + 1. Encryption of m in Z_n is
``c = g^m r^n mod n^2 = (1 + n m) r^n mod n^2`` for a random r in Z_n^*; decryption uses
``L(x) = (x - 1) / p``: ``m_p = L(c^(p-1) mod p^2) h_p mod p`` with
``h_p = L(g^(p-1) mod p^2)^-1 mod p`` (likewise mod q) joined by CRT. ``E(a) E(b) = E(a+b)``
and ``E(a)^k = E(ka)`` mod n^2. Signed and real numbers use python-paillier's encoding: a
value x is ``mantissa * BASE**exponent`` with BASE = 16, the mantissa stored mod n, and
|mantissa| <= max_int = n // 3 - 1 (values in between mean overflow).

Randomness and security notes
-----------------------------
* Every random value (r, the DJN exponent alpha, key primes) comes from the operating
  system's CSPRNG or the package's AES-CTR stream seeded from it; no seed is accepted.
* Obfuscation (the random factor ``r^n``) has two forms. ``"classic"`` draws r uniform
  in Z_n^* and computes r^n (what python-paillier does). ``"djn"`` (the default for keys
  of 512 bits and more) uses Damgard-Jurik-Nielsen's short-exponent form ``h_s^alpha`` with
  ``h_s = h^n mod n^2`` for a random ``h = -x^2 mod n`` published with the key, and a fresh
  nonzero alpha of ``n_length / 2`` bits per encryption (as Intel's IPCL does).
  h_s^alpha = (h^alpha)^n is an ordinary Paillier obfuscator, so the ciphertexts decrypt
  anywhere. Its semantic security rests on the decisional composite residuosity assumption
  *and* on the assumption that a random n_length/2-bit exponent of h_s is
  indistinguishable from a full one (the short-exponent assumption of Damgard, Jurik and
  Nielsen, 2010). With a precomputed fixed-base table (4 MB for a 2048-bit key) it costs
  205 modular multiplications instead of a full exponentiation. Choose
  ``obfuscation="classic"`` to rely on DCR alone.
* Secret exponents use constant-time code: GMP's ``mpz_powm_sec`` for p - 1 and q - 1 in
  decryption (and for n mod p(p-1) in private-key encryption without IFMA), and for
  h_s^alpha before a key has its table; the table walk itself reads every entry of each
  window and multiplies once per window whatever alpha's digit is. The classic CRT path
  with IFMA raises r to the public exponent n itself modulo the secret p^2 and q^2, with
  Montgomery multiplications whose timing depends on no value. Plaintext multipliers
  (``*``, ``@``, exponent alignment) use variable-time powers: their time depends on the
  plaintext scalars, the caller's own data (as in python-paillier).
* Results of homomorphic operations are *not* re-randomised (as in python-paillier); call
  ``obfuscate()`` or serialise with ``be_secure=True`` before sending them to anyone.
* Key generation: primes p, q of n_length/2 bits drawn from the OS CSPRNG, the next prime
  found by GMP (Baillie-PSW plus Miller-Rabin) and re-checked with 40 more Miller-Rabin
  rounds, p != q, |n| = n_length exactly and gcd(n, (p-1)(q-1)) = 1.

Differences from python-paillier
--------------------------------
* Unsupported operands (``EncryptedNumber * EncryptedNumber``, strings, ...) return
  ``NotImplemented``, so Python raises ``TypeError`` (phe raised ``NotImplementedError``
  for the first).
* Encoding a number outside +-max_int raises :class:`EncodingOverflowError`, which is both
  the ``ValueError`` phe raises and an ``OverflowError``.
* Numpy integer and floating scalars are accepted wherever Python ints and floats are.
* ``raw_decrypt`` rejects ciphertexts outside [1, n^2) or not coprime to n (``ValueError``).
* ``DEFAULT_KEYSIZE`` is 2048 (phe 1.5 uses 3072).
"""

from __future__ import annotations

import fractions
import json
import math
import secrets
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import gmpy2
import numpy as np

from .. import _config
from .._errors import EncodingOverflowError, KeyMismatchError
from .._native import _gmp
from .._validation import check_int

_gmp.load()
from .._native import paillier as _k  # noqa: E402  (needs GMP loaded globally first)

__all__ = [
    "DEFAULT_KEYSIZE",
    "EncodedNumber",
    "EncodingOverflowError",
    "EncryptedArray",
    "EncryptedNumber",
    "KeyMismatchError",
    "PaillierPrivateKey",
    "PaillierPrivateKeyring",
    "PaillierPublicKey",
    "generate_paillier_keypair",
]

DEFAULT_KEYSIZE = 2048
"""Default modulus length in bits (about 112-bit security)."""

_DJN_MIN_BITS = 512  # below this, keys obfuscate with classic r^n (alpha would be tiny)
_MAX_BITS = 65536  # the kernels keep a few rows of n^2 on the stack
_TABLE_AFTER = 16  # single DJN encryptions on one key before its table is built
_TABLE_MAX_BYTES = 64 << 20
_OBFUSCATIONS = ("djn", "classic")


# ----------------------------------------------------------------------------------------
# limb helpers: a batch of big integers is a C-contiguous (N, L) uint64 array, little-endian


def _nlimbs(x: int) -> int:
    return max(1, (int(x).bit_length() + 63) // 64)


def _to_limbs(values: Iterable[int], width: int) -> np.ndarray:
    """Non-negative ints (each < 2**(64*width)) as an (N, width) uint64 limb array."""
    nbytes = 8 * width
    buf = b"".join(int(v).to_bytes(nbytes, "little") for v in values)
    return np.frombuffer(bytearray(buf), dtype="<u8").reshape(-1, width)


def _vec(x: int, width: int | None = None) -> np.ndarray:
    """One int as a 1-D limb vector of ``width`` limbs (default: its own size)."""
    return _to_limbs([x], width or _nlimbs(x))[0]


def _from_limbs(a: np.ndarray) -> list[int]:
    """Rows of an (N, L) limb array as Python ints."""
    a = np.ascontiguousarray(a, dtype="<u8")
    step = 8 * a.shape[-1]
    buf = a.tobytes()
    return [int.from_bytes(buf[i : i + step], "little") for i in range(0, len(buf), step)]


def _random_words(count: int) -> np.ndarray:
    """``count`` uniform 64-bit words from the package's secure AES-CTR stream."""
    from ..rng import _secure_stream

    if count == 0:
        return np.zeros(0, np.uint64)
    return np.asarray(_secure_stream().bit_generator.random_raw(count), dtype=np.uint64)


def _random_bits_rows(n_rows: int, bits: int) -> np.ndarray:
    """(n_rows, ceil(bits/64)) uniform integers in [0, 2**bits)."""
    width = max(1, (bits + 63) // 64)
    words = _random_words(n_rows * width).reshape(n_rows, width)
    top = bits - 64 * (width - 1)
    if top < 64:
        words[:, -1] &= np.uint64((1 << top) - 1)
    return words


def _random_below_rows(n_rows: int, bound: int, bound_limbs: np.ndarray) -> np.ndarray:
    """(n_rows, L) uniform integers in [1, bound) by rejection (each row accepted w.p. > 1/2)."""
    bits = bound.bit_length()
    out = _random_bits_rows(n_rows, bits)
    todo = np.arange(n_rows)
    while todo.size:
        rows = out[todo]
        ok = np.empty(todo.size, np.uint8)
        _k.rows_below(np.ascontiguousarray(rows), bound_limbs, ok)
        ok &= rows.any(axis=1)
        todo = todo[ok == 0]
        if todo.size:
            out[todo] = _random_bits_rows(todo.size, bits)
    return out


def _random_units_rows(n_rows: int, n: int, n_limbs: np.ndarray) -> np.ndarray:
    """(n_rows, L) uniform elements of Z_n^* (r in [1, n) with gcd(r, n) = 1).

    A multiple of p or q is drawn with probability about 1/p + 1/q: negligible for real
    keys, but common with toy keys, whose ciphertexts must still decrypt.
    """
    out = _random_below_rows(n_rows, n, n_limbs)
    while True:
        bad = [i for i, r in enumerate(_from_limbs(out)) if math.gcd(r, n) != 1]
        if not bad:
            return out
        out[bad] = _random_below_rows(len(bad), n, n_limbs)


def _threads() -> int:
    return _config.get_num_threads()


_MPZ = type(gmpy2.mpz(0))
_INTS = (int, np.integer, _MPZ)


# ----------------------------------------------------------------------------------------
# key generation


def _random_prime(bits: int) -> int:
    """A uniformly drawn random start of ``bits`` bits (OS CSPRNG), then GMP's next prime."""
    while True:
        x = secrets.randbits(bits) | (1 << (bits - 1)) | 1
        if bits >= 16:
            x |= 1 << (bits - 2)  # top two bits set: the product has exactly p_bits + q_bits
        p = gmpy2.next_prime(x - 1)  # the smallest prime >= x
        if p.bit_length() == bits and gmpy2.is_prime(p, 40):
            return int(p)


def generate_paillier_keypair(
    private_keyring: PaillierPrivateKeyring | None = None, n_length: int = DEFAULT_KEYSIZE
) -> tuple[PaillierPublicKey, PaillierPrivateKey]:
    """A new key pair with an n of exactly ``n_length`` bits (added to ``private_keyring``).

    p and q have ``n_length // 2`` and ``n_length - n_length // 2`` bits, p != q and
    gcd(n, (p-1)(q-1)) = 1 (see the module notes on how primes are drawn). The public key
    carries the DJN base h_s for keys of 512 bits and more.

    Raises:
        TypeError: ``n_length`` is not an int.
        ValueError: ``n_length < 8``.
    """
    n_length = check_int(n_length, "n_length", minimum=8, maximum=_MAX_BITS)
    if private_keyring is not None and not isinstance(private_keyring, PaillierPrivateKeyring):
        raise TypeError(
            "private_keyring must be a PaillierPrivateKeyring or None, got "
            f"{type(private_keyring).__name__}"
        )
    p_bits = n_length // 2
    q_bits = n_length - p_bits
    while True:
        p = _random_prime(p_bits)
        q = _random_prime(q_bits)
        if p == q:
            continue
        n = p * q
        if n.bit_length() != n_length or math.gcd(n, (p - 1) * (q - 1)) != 1:
            continue
        break
    public_key = PaillierPublicKey(n)
    private_key = PaillierPrivateKey(public_key, p, q)
    if n_length >= _DJN_MIN_BITS:
        public_key._init_hs(private_key)
    if private_keyring is not None:
        private_keyring.add(private_key)
    return public_key, private_key


# ----------------------------------------------------------------------------------------
# keys


class PaillierPublicKey:
    """A Paillier public key: n, g = n + 1, nsquare = n**2 and max_int = n // 3 - 1.

    Args:
        n: the modulus (an odd int >= 3; a product of two distinct primes).
        hs: optional DJN base h_s = h^n mod n^2 (an n-th residue coprime to n), as published
            with the key by its owner; accept it only over an authenticated channel (a bad
            hs cannot be detected without the factorisation, beyond the tiny-order check
            done here). When missing and DJN obfuscation is used, the encryptor draws its
            own from the secure stream.
        obfuscation: ``"djn"`` or ``"classic"`` (default: ``"djn"`` when n has 512 bits or
            more). See the module docstring for the security assumption behind DJN.

    Attributes:
        n, g, nsquare, max_int: as in python-paillier.
        obfuscation: the default obfuscation of this key's encryptions.
    """

    def __init__(self, n: int, hs: int | None = None, *, obfuscation: str | None = None):
        n = check_int(n, "n")
        if n < 3 or n % 2 == 0:
            raise ValueError(f"n must be an odd int >= 3, got {n}")
        if n.bit_length() > _MAX_BITS:
            raise ValueError(f"n must have at most {_MAX_BITS} bits, got {n.bit_length()}")
        self.g = n + 1
        self.n = n
        self.nsquare = n * n
        self.max_int = n // 3 - 1
        if obfuscation is None:
            obfuscation = "djn" if n.bit_length() >= _DJN_MIN_BITS else "classic"
        self.obfuscation = _check_obfuscation(obfuscation)
        self._hs: int | None = None
        if hs is not None:
            hs = check_int(hs, "hs")
            if not 0 < hs < self.nsquare or math.gcd(hs, n) != 1:
                raise ValueError("hs must be in (0, n**2) and coprime to n")
            _check_hs_order(hs, self.nsquare)
            self._hs = hs
        self._lock = threading.RLock()  # precompute() holds it and may draw hs
        self._table: tuple[np.ndarray, int] | None = None
        self._djn_single = 0
        self._limbs: dict[str, np.ndarray] = {}

    # -- python-paillier surface --------------------------------------------------------
    def __repr__(self) -> str:
        return f"<PaillierPublicKey {hex(hash(self))[2:][:10]}>"

    def __eq__(self, other: object) -> bool:
        n = getattr(other, "n", None)
        if n is None:
            return NotImplemented
        return bool(self.n == n)

    def __hash__(self) -> int:
        return hash(self.n)

    def __getstate__(self) -> dict[str, Any]:
        return {"n": self.n, "hs": self._hs, "obfuscation": self.obfuscation}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["n"], state["hs"], obfuscation=state["obfuscation"])  # type: ignore[misc]

    def get_random_lt_n(self) -> int:
        """A cryptographically random int in [1, n)."""
        return secrets.randbelow(self.n - 1) + 1

    def raw_encrypt(self, plaintext: int, r_value: int | None = None) -> int:
        """Paillier encryption of an int plaintext (taken mod n): ``(1 + n m) r^n mod n^2``.

        ``r_value`` fixes r (python-paillier's ciphertext for the same r); by default the
        key's obfuscation draws fresh randomness.

        Raises:
            TypeError: ``plaintext`` is not an int.
        """
        if not isinstance(plaintext, _INTS):
            raise TypeError(f"Expected int type plaintext but got: {type(plaintext)}")
        plaintext = int(plaintext) % self.n  # g^m depends on m mod n only (phe wraps too)
        nude = self.n * plaintext + 1
        if r_value:
            obf = gmpy2.powmod(int(r_value), self.n, self.nsquare)
        else:
            obf = self._obfuscator()
        return int(gmpy2.f_mod(gmpy2.mul(nude, obf), self.nsquare))

    def encrypt(
        self, value: Any, precision: float | None = None, r_value: int | None = None
    ) -> EncryptedNumber:
        """Encode (see :meth:`EncodedNumber.encode`) and encrypt an int or float.

        ``r_value`` as in python-paillier: a given r gives phe's exact ciphertext and leaves
        it un-obfuscated; ``None`` obfuscates with fresh randomness.
        """
        encoding = value if _is_encoded(value) else EncodedNumber.encode(self, value, precision)
        return self.encrypt_encoded(encoding, r_value)

    def encrypt_encoded(self, encoding: Any, r_value: int | None) -> EncryptedNumber:
        """Encrypt an :class:`EncodedNumber` (``r_value`` as in :meth:`encrypt`)."""
        if encoding.public_key != self:
            raise KeyMismatchError("encoding was made for a different public key")
        obfuscator = r_value or 1
        ciphertext = self.raw_encrypt(encoding.encoding, r_value=obfuscator)
        encrypted = EncryptedNumber(self, ciphertext, encoding.exponent)
        if r_value is None:
            encrypted.obfuscate()
        return encrypted

    # -- DJN ----------------------------------------------------------------------------
    @property
    def hs(self) -> int:
        """The DJN base h_s = h^n mod n^2 (drawn on first use when the key came without)."""
        if self._hs is None:
            with self._lock:
                if self._hs is None:
                    self._hs = self._draw_hs(None)
        return self._hs

    def _draw_hs(self, private_key: PaillierPrivateKey | None) -> int:
        n = self.n
        while True:
            x = self.get_random_lt_n()
            if math.gcd(x, n) == 1:
                break
        h = (-x * x) % n
        if private_key is not None:  # h^n mod p^2 and q^2 by CRT (secret moduli)
            return private_key._crt_pow_n(h)
        return int(gmpy2.powmod(h, n, self.nsquare))

    def _init_hs(self, private_key: PaillierPrivateKey) -> None:
        self._hs = self._draw_hs(private_key)

    def _window(self) -> int:
        """5-bit windows: the constant-time walk reads all 2^w entries of every window, so
        wider windows (fewer multiplications, more reads) stop paying off; measured at 2048
        bits, 169 us per encryption for w = 5 against 196 (w = 4) and 182 (w = 6)."""
        abits = self._alpha_bits()
        entry = 8 * _nlimbs(self.nsquare)
        for w in (5, 4, 3, 2):
            if -(-abits // w) * (1 << w) * entry <= _TABLE_MAX_BYTES:
                return w
        return 1

    def precompute(self, window: int | None = None) -> None:
        """Build the DJN fixed-base table now (else it is built on first batch use).

        The table holds h_s^(d 2^(w j)) for every w-bit digit d and window j of alpha:
        3.4 MB for a 2048-bit key with w = 5 (4.2 MB in the IFMA Montgomery form), and makes
        one DJN obfuscation cost ceil(n_length / 2 / w) modular multiplications. alpha is
        secret, so the walk is constant-time: each window reads all 2^w entries and keeps
        one by masks, and multiplies even for a zero digit. Single :meth:`encrypt` calls
        build the table themselves after 16 encryptions with this key.
        """
        w = self._window() if window is None else check_int(window, "window", minimum=1, maximum=10)
        l2 = self._limb("n2")
        mont = int(_k.mont_width(l2))
        with self._lock:
            if (
                self._table is not None
                and self._table[1] == w
                and (self._table[0].shape[2] == (mont or l2.size))
            ):
                return
            nwin = -(-self._alpha_bits() // w)
            table = np.empty((nwin, 1 << w, l2.size), np.uint64)
            _k.fixed_base_table(_vec(self.hs, l2.size), l2, w, table, _threads())
            if mont:  # AVX-512 IFMA: keep the entries in Montgomery form, 52-bit digits
                mtable = np.empty((nwin, 1 << w, mont), np.uint64)
                _k.table_to_mont(table.reshape(-1, l2.size), l2, mtable, _threads())
                table = mtable
            self._table = (table, w)

    def _ensure_table(self) -> None:
        table = self._table
        width = int(_k.mont_width(self._limb("n2"))) or self._limb("n2").size
        if table is None or table[0].shape[2] != width:
            self.precompute(None if table is None else table[1])

    def _alpha_bits(self) -> int:
        return max(self.n.bit_length() // 2, 1)

    def _limb(self, name: str) -> np.ndarray:
        cached = self._limbs.get(name)
        if cached is None:
            if name == "n":
                cached = _vec(self.n)
            elif name == "n2":
                cached = _vec(self.nsquare)
            elif name == "max_int":
                cached = _vec(max(self.max_int, 0), _nlimbs(self.n))
            else:  # pragma: no cover
                raise KeyError(name)
            cached.setflags(write=False)
            self._limbs[name] = cached
        return cached

    def _obfuscator(self, obfuscation: str | None = None) -> int:
        """One fresh r^n (classic) or h_s^alpha (DJN) mod n^2."""
        mode = self.obfuscation if obfuscation is None else obfuscation
        if mode == "classic":
            r = self.get_random_lt_n()
            while math.gcd(r, self.n) != 1:  # only toy keys ever loop
                r = self.get_random_lt_n()
            return int(gmpy2.powmod(r, self.n, self.nsquare))
        alpha = 0
        while alpha == 0:  # alpha = 0 would leave the ciphertext bare (tiny keys only)
            alpha = secrets.randbits(self._alpha_bits())
        if self._table is None:
            self._djn_single += 1
            if self._djn_single <= _TABLE_AFTER:  # alpha is secret: constant-time power
                return int(gmpy2.powmod_sec(self.hs, alpha, self.nsquare))
            self.precompute()  # a loop of single encryptions: the table pays off now
        one = np.ones((1, 1), np.uint64)
        out = self._obfuscate_rows(
            one, False, mode="djn", rnd=_vec(alpha)[None, :], private_key=None
        )
        return _from_limbs(out)[0]

    def _obfuscate_rows(
        self,
        base: np.ndarray,
        is_msg: bool,
        neg: np.ndarray | None = None,
        *,
        mode: str,
        rnd: np.ndarray | None = None,
        private_key: PaillierPrivateKey | None = None,
    ) -> np.ndarray:
        """Rows of base times fresh obfuscators: encryption (is_msg: |m| rows + signs) or
        re-randomisation of ciphertext rows."""
        nrows = base.shape[0]
        n_l, n2_l = self._limb("n"), self._limb("n2")
        out = np.empty((nrows, n2_l.size), np.uint64)
        if nrows == 0:
            return out
        base = np.ascontiguousarray(base, dtype=np.uint64)
        negarr = None if neg is None else np.ascontiguousarray(neg, dtype=np.uint8)
        table, w, crt = None, 0, None
        if mode == "djn":
            self._ensure_table()
            assert self._table is not None
            table, w = self._table
            if rnd is None:
                rnd = _random_bits_rows(nrows, self._alpha_bits())
                while True:  # alpha = 0 would leave a ciphertext bare (tiny keys only)
                    zero = np.flatnonzero(~rnd.any(axis=1))
                    if zero.size == 0:
                        break
                    rnd[zero] = _random_bits_rows(zero.size, self._alpha_bits())
            code = 0
        else:
            if rnd is None:
                rnd = _random_units_rows(nrows, self.n, n_l)
            if private_key is not None:
                crt = private_key._enc_crt_limbs()
                code = 2
            else:
                code = 1
        _k.encrypt(
            code,
            n_l,
            n2_l,
            np.ascontiguousarray(rnd, dtype=np.uint64),
            base,
            negarr,
            bool(is_msg),
            out,
            table,
            w,
            crt,
            _threads(),
        )
        return out

    # -- batch ----------------------------------------------------------------------------
    def encrypt_batch(
        self, values: Any, *, precision: float | None = None, obfuscation: str | None = None
    ) -> EncryptedArray:
        """Encrypt an array of ints or floats into an :class:`EncryptedArray`.

        Each element is encoded as :meth:`EncodedNumber.encode` would (its own exponent:
        0 for ints, the exact float exponent for floats, or from ``precision``) and
        encrypted with fresh randomness on all cores (GIL released).

        Args:
            values: array-like of ints (any integer dtype, or Python ints of any size) or
                floats (float32/float64; float32 values are encoded exactly).
            precision: as in :meth:`EncodedNumber.encode`.
            obfuscation: ``"djn"`` (fixed-base h_s^alpha; the table is built on first use)
                or ``"classic"`` (r^n); default: the key's.

        Raises:
            TypeError: values are not numbers.
            ValueError: NaN or infinite values, bad precision or obfuscation.
            EncodingOverflowError: a value's mantissa exceeds max_int.
        """
        return self._encrypt_batch(values, precision, obfuscation, None)

    def _encrypt_batch(
        self,
        values: Any,
        precision: float | None,
        obfuscation: str | None,
        private_key: PaillierPrivateKey | None,
    ) -> EncryptedArray:
        mode = self.obfuscation if obfuscation is None else _check_obfuscation(obfuscation)
        arr = _as_number_array(values, "values")
        mabs, neg, exps = _encode_array(self, arr.reshape(-1), precision=precision)
        cipher = self._obfuscate_rows(
            mabs, True, neg, mode=mode, private_key=private_key if mode == "classic" else None
        )
        return EncryptedArray._wrap(
            self,
            cipher.reshape(*arr.shape, cipher.shape[1]),
            exps.reshape(arr.shape),
            obfuscated=True,
        )


def _check_hs_order(hs: int, n2: int) -> None:
    """Reject a DJN base of tiny order (h_s^k = 1 for some k <= 64, e.g. 1 or -1), which would
    leave ciphertexts nearly bare. Whether h_s is an n-th residue cannot be checked without
    the factorisation: a supplied hs must come from the key owner over a trusted channel."""
    x = 1
    for k in range(1, 65):
        x = x * hs % n2
        if x == 1:
            raise ValueError(f"hs has order {k} mod n**2: not a usable DJN base")


def _check_obfuscation(value: Any) -> str:
    if value not in _OBFUSCATIONS:
        raise ValueError(f"obfuscation must be one of {_OBFUSCATIONS}, got {value!r}")
    return str(value)


class PaillierPrivateKey:
    """A Paillier private key (p, q) with CRT decryption.

    Args:
        public_key: the matching :class:`PaillierPublicKey`.
        p, q: the distinct prime factors of ``public_key.n`` (stored with p < q).

    Attributes:
        public_key, p, q, psquare, qsquare, p_inverse (p^-1 mod q), hp, hq: as in
        python-paillier.
    """

    def __init__(self, public_key: PaillierPublicKey, p: int, q: int):
        p = check_int(p, "p")
        q = check_int(q, "q")
        if not p * q == public_key.n:
            raise ValueError("given public key does not match the given p and q.")
        if p == q:
            raise ValueError("p and q have to be different")
        if min(p, q) < 2:
            raise ValueError("p and q must be > 1")
        self.public_key = public_key
        self.p, self.q = (q, p) if q < p else (p, q)
        self.psquare = self.p * self.p
        self.qsquare = self.q * self.q
        self.p_inverse = int(gmpy2.invert(self.p, self.q))
        self.hp = self.h_function(self.p, self.psquare)
        self.hq = self.h_function(self.q, self.qsquare)
        self._dec: tuple[np.ndarray, ...] | None = None
        self._enc: tuple[np.ndarray, ...] | None = None

    @staticmethod
    def from_totient(public_key: PaillierPublicKey, totient: int) -> PaillierPrivateKey:
        """The private key from phi(n) = (p-1)(q-1).

        Raises:
            ValueError: the totient does not belong to ``public_key``.
        """
        totient = check_int(totient, "totient")
        p_plus_q = public_key.n - totient + 1
        disc = p_plus_q * p_plus_q - public_key.n * 4
        if disc < 0:
            raise ValueError("given public key and totient do not match.")
        p_minus_q = int(gmpy2.isqrt(disc))
        q = (p_plus_q - p_minus_q) // 2
        p = p_plus_q - q
        if not p * q == public_key.n or p == q:
            raise ValueError("given public key and totient do not match.")
        return PaillierPrivateKey(public_key, p, q)

    def __repr__(self) -> str:
        return f"<PaillierPrivateKey for {self.public_key!r}>"

    def __eq__(self, other: object) -> bool:
        if not hasattr(other, "p") or not hasattr(other, "q"):
            return NotImplemented
        return bool(self.p == other.p and self.q == other.q)  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((self.p, self.q))

    def __getstate__(self) -> dict[str, Any]:
        return {"public_key": self.public_key, "p": self.p, "q": self.q}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["public_key"], state["p"], state["q"])  # type: ignore[misc]

    # -- python-paillier surface --------------------------------------------------------
    def decrypt(self, encrypted_number: EncryptedNumber) -> int | float:
        """The int or float that ``encrypted_number`` holds.

        Raises:
            TypeError: not an :class:`EncryptedNumber`.
            KeyMismatchError (a ValueError): encrypted under another key.
            OverflowError: the decrypted mantissa is in the overflow band.
        """
        return self.decrypt_encoded(encrypted_number).decode()

    def decrypt_encoded(
        self, encrypted_number: EncryptedNumber, Encoding: type | None = None
    ) -> Any:
        """The :class:`EncodedNumber` (or ``Encoding`` instance) in ``encrypted_number``."""
        if not isinstance(encrypted_number, EncryptedNumber):
            raise TypeError(
                f"Expected encrypted_number to be an EncryptedNumber not: {type(encrypted_number)}"
            )
        if self.public_key != encrypted_number.public_key:
            raise KeyMismatchError("encrypted_number was encrypted against a different key!")
        if Encoding is None:
            Encoding = EncodedNumber
        encoded = self.raw_decrypt(encrypted_number.ciphertext(be_secure=False))
        return Encoding(self.public_key, encoded, encrypted_number.exponent)

    def raw_decrypt(self, ciphertext: int) -> int:
        """Decrypt a raw ciphertext int to the plaintext in [0, n) (CRT, mpz_powm_sec).

        Raises:
            TypeError: ``ciphertext`` is not an int.
            ValueError: ``ciphertext`` is outside [1, n**2) or shares a factor with n.
        """
        if not isinstance(ciphertext, _INTS):
            raise TypeError(f"Expected ciphertext to be an int, not: {type(ciphertext)}")
        c = int(ciphertext)
        if not 0 < c < self.public_key.nsquare:
            raise ValueError("ciphertext must be in [1, n**2)")
        if c % self.p == 0 or c % self.q == 0:
            raise ValueError("ciphertext is not coprime to n (not a valid ciphertext)")
        mp = self._half(c, self.p, self.psquare, self.hp)
        mq = self._half(c, self.q, self.qsquare, self.hq)
        return self.crt(mp, mq)

    def _half(self, c: int, x: int, xsquare: int, hx: int) -> int:
        u = gmpy2.powmod_sec(c % xsquare, x - 1, xsquare)
        return int(gmpy2.f_mod(self.l_function(int(u), x) * hx, x))

    def h_function(self, x: int, xsquare: int) -> int:
        """h(x) = L_x(g^(x-1) mod x^2)^-1 mod x (Paillier's CRT decryption constant)."""
        g = self.public_key.g
        return int(
            gmpy2.invert(self.l_function(int(gmpy2.powmod_sec(g % xsquare, x - 1, xsquare)), x), x)
        )

    def l_function(self, x: int, p: int) -> int:
        """L(x, p) = (x - 1) // p."""
        return (x - 1) // p

    def crt(self, mp: int, mq: int) -> int:
        """The residue mod n = pq with the given residues mod p and mod q."""
        u = int(gmpy2.f_mod((mq - mp) * self.p_inverse, self.q))
        return mp + u * self.p

    # -- CRT helpers for the kernels ------------------------------------------------------
    def _crt_pow_n(self, h: int) -> int:
        """h^n mod n^2 by CRT (mpz_powm_sec on the secret moduli/exponents)."""
        n = self.public_key.n
        xp = int(gmpy2.powmod_sec(h % self.psquare, n % (self.p * (self.p - 1)), self.psquare))
        xq = int(gmpy2.powmod_sec(h % self.qsquare, n % (self.q * (self.q - 1)), self.qsquare))
        u = int(gmpy2.invert(self.psquare, self.qsquare))
        return xp + self.psquare * (((xq - xp) * u) % self.qsquare)

    def _enc_crt_limbs(self) -> tuple[np.ndarray, ...]:
        if self._enc is None:
            n = self.public_key.n
            width = _nlimbs(max(self.psquare, self.qsquare))
            vals = (
                self.psquare,
                self.qsquare,
                n % (self.p * (self.p - 1)),
                n % (self.q * (self.q - 1)),
                int(gmpy2.invert(self.psquare, self.qsquare)),
            )
            self._enc = tuple(_vec(v, width) for v in vals)
        return self._enc

    def _dec_limbs(self) -> tuple[np.ndarray, ...]:
        if self._dec is None:
            pk = self.public_key
            wh = _nlimbs(self.q)
            w2 = _nlimbs(self.qsquare)
            small = (self.p, self.q)
            self._dec = (
                *(_vec(v, wh) for v in small),
                _vec(self.psquare, w2),
                _vec(self.qsquare, w2),
                *(_vec(v, wh) for v in (self.p - 1, self.q - 1, self.hp, self.hq, self.p_inverse)),
                pk._limb("n"),
                pk._limb("n2"),
                pk._limb("max_int"),
            )
        return self._dec

    # -- batch ----------------------------------------------------------------------------
    def decrypt_batch(self, enc: Any) -> np.ndarray:
        """Decrypt an :class:`EncryptedArray` (or a sequence of EncryptedNumber) by CRT.

        Returns an array of the encrypted array's shape: int64 when every exponent is >= 0
        and every value fits (an object array of Python ints when not), else float64
        (each value decoded as python-paillier's ``decode`` would, then as a double).

        Raises:
            KeyMismatchError: encrypted under another key.
            ValueError: an invalid ciphertext (0, >= n**2 or not coprime to n).
            OverflowError: a decrypted mantissa in the overflow band.
        """
        if not isinstance(enc, EncryptedArray):
            if isinstance(enc, (str, bytes)) or not isinstance(enc, (Iterable, EncryptedNumber)):
                raise TypeError(
                    "enc must be an EncryptedArray or a sequence of "
                    f"EncryptedNumber, got {type(enc).__name__}"
                )
            enc = EncryptedArray.from_numbers(enc)
        if enc.public_key != self.public_key:
            raise KeyMismatchError("enc was encrypted against a different key")
        flat = enc._c.reshape(-1, enc._c.shape[-1])
        n_l = self.public_key._limb("n")
        mabs = np.empty((flat.shape[0], n_l.size), np.uint64)
        sign = np.empty(flat.shape[0], np.uint8)
        nbad = _k.decrypt(self._dec_limbs(), np.ascontiguousarray(flat), mabs, sign, _threads())
        if nbad:
            i = int(np.flatnonzero(sign == 3)[0])
            raise ValueError(
                f"enc holds {nbad} invalid ciphertext(s) (0, >= n**2 or not "
                f"coprime to n), the first at flat index {i}"
            )
        if (sign == 2).any():
            i = int(np.flatnonzero(sign == 2)[0])
            raise OverflowError(f"Overflow detected in decrypted number (flat index {i})")
        return _decode_array(mabs, sign, enc._exp.reshape(-1)).reshape(enc.shape)

    def encrypt_batch(
        self, values: Any, *, precision: float | None = None, obfuscation: str | None = None
    ) -> EncryptedArray:
        """:meth:`PaillierPublicKey.encrypt_batch` using the private key: with
        ``obfuscation="classic"`` r^n is computed by CRT mod p^2 and q^2 (secret exponents
        through mpz_powm_sec), about 1.4x faster than the public-key path."""
        return self.public_key._encrypt_batch(values, precision, obfuscation, self)


class PaillierPrivateKeyring(Mapping):
    """Private keys by public key; decrypts with whichever key matches.

    Acts like a read-only dict keyed by :class:`PaillierPublicKey`; add keys with
    :meth:`add`, remove them with ``del``.
    """

    def __init__(self, private_keys: Iterable[PaillierPrivateKey] | None = None):
        if private_keys is None:
            private_keys = []
        private_keys = list(private_keys)
        for key in private_keys:
            if not isinstance(key, PaillierPrivateKey):
                raise TypeError(
                    f"private_keys must hold PaillierPrivateKey, got {type(key).__name__}"
                )
        self.__keyring = {k.public_key: k for k in private_keys}

    def __getitem__(self, key: PaillierPublicKey) -> PaillierPrivateKey:
        return self.__keyring[key]

    def __len__(self) -> int:
        return len(self.__keyring)

    def __iter__(self) -> Iterator[PaillierPublicKey]:
        return iter(self.__keyring)

    def __delitem__(self, public_key: PaillierPublicKey) -> None:
        del self.__keyring[public_key]

    def add(self, private_key: PaillierPrivateKey) -> None:
        """Add ``private_key`` (replacing a key for the same public key)."""
        if not isinstance(private_key, PaillierPrivateKey):
            raise TypeError(
                f"private_key should be of type PaillierPrivateKey, not {type(private_key)}"
            )
        self.__keyring[private_key.public_key] = private_key

    def decrypt(self, encrypted_number: EncryptedNumber) -> int | float:
        """Decrypt with the matching key (``KeyError`` when the keyring has none)."""
        return self.__keyring[encrypted_number.public_key].decrypt(encrypted_number)

    def decrypt_batch(self, enc: EncryptedArray) -> np.ndarray:
        """:meth:`PaillierPrivateKey.decrypt_batch` with the matching key."""
        return self.__keyring[enc.public_key].decrypt_batch(enc)


# ----------------------------------------------------------------------------------------
# encoding


def _negated_encoding(encoded: Any) -> Any:
    """The EncodedNumber (same class, key and exponent) of minus the value."""
    return encoded.__class__(
        encoded.public_key, (-encoded.encoding) % encoded.public_key.n, encoded.exponent
    )


def _check_lower(new_exp: int, exponent: int) -> None:
    if new_exp > exponent:
        raise ValueError(
            f"New exponent {new_exp} should be more negative than old exponent {exponent}"
        )


def _is_encoded(x: Any) -> bool:
    """An EncodedNumber, ours or python-paillier's (duck-typed)."""
    return isinstance(x, EncodedNumber) or (
        not isinstance(x, EncryptedNumber)
        and hasattr(x, "encoding")
        and hasattr(x, "exponent")
        and hasattr(x, "public_key")
        and hasattr(x, "decrease_exponent_to")
    )


class EncodedNumber:
    """A signed int or float as ``mantissa * BASE**exponent``, the mantissa stored mod n.

    Encodings in [0, max_int] are non-negative, [n - max_int, n) negative, and anything
    in between signals overflow. Subclass and change ``BASE``/``LOG2_BASE`` for another
    base (as in python-paillier).

    Attributes:
        BASE: 16. LOG2_BASE: log2(BASE). FLOAT_MANTISSA_BITS: 53.
        public_key, encoding (int in [0, n)), exponent (int).
    """

    BASE = 16
    LOG2_BASE = math.log(BASE, 2)
    FLOAT_MANTISSA_BITS = sys.float_info.mant_dig

    def __init__(self, public_key: PaillierPublicKey, encoding: int, exponent: int):
        self.public_key = public_key
        self.encoding = encoding
        self.exponent = exponent

    def __repr__(self) -> str:
        return f"<EncodedNumber exponent={self.exponent}>"

    @classmethod
    def encode(
        cls,
        public_key: PaillierPublicKey,
        scalar: Any,
        precision: float | None = None,
        max_exponent: int | None = None,
    ) -> EncodedNumber:
        """Encode an int or float (numpy scalars too) for ``public_key``.

        With ``precision=None`` ints get exponent 0 and floats the exponent that holds
        their 53-bit mantissa exactly, ``floor((frexp(x)[1] - 53) / log2(BASE))``; else the
        exponent is ``floor(log_BASE(precision))`` and the value is rounded (half to even)
        to a multiple of BASE**exponent. ``max_exponent`` caps the exponent.

        Raises:
            TypeError: not an int or float.
            EncodingOverflowError (ValueError and OverflowError): |mantissa| > max_int.
        """
        if isinstance(scalar, np.integer):
            scalar = int(scalar)
        elif isinstance(scalar, np.floating):
            scalar = float(scalar)
        if precision is None:
            if isinstance(scalar, int):
                prec_exponent = 0
            elif isinstance(scalar, float):
                bin_flt_exponent = math.frexp(scalar)[1]
                bin_lsb_exponent = bin_flt_exponent - cls.FLOAT_MANTISSA_BITS
                prec_exponent = math.floor(bin_lsb_exponent / cls.LOG2_BASE)
            else:
                raise TypeError(f"Don't know the precision of type {type(scalar)}.")
        else:
            prec_exponent = math.floor(math.log(precision, cls.BASE))
        exponent = prec_exponent if max_exponent is None else min(max_exponent, prec_exponent)
        int_rep = round(fractions.Fraction(scalar) * fractions.Fraction(cls.BASE) ** -exponent)
        if abs(int_rep) > public_key.max_int:
            raise EncodingOverflowError(
                f"Integer needs to be within +/- {public_key.max_int} but got {int_rep}"
            )
        return cls(public_key, int_rep % public_key.n, exponent)

    def decode(self) -> int | float:
        """The encoded int (exponent >= 0) or float.

        Raises:
            ValueError: the encoding is >= n (corrupted).
            OverflowError: the encoding is in the overflow band, or too large for a float.
        """
        pk = self.public_key
        if self.encoding >= pk.n:
            raise ValueError("Attempted to decode corrupted number")
        if self.encoding <= pk.max_int:
            mantissa = self.encoding
        elif self.encoding >= pk.n - pk.max_int:
            mantissa = self.encoding - pk.n
        else:
            raise OverflowError("Overflow detected in decrypted number")
        if self.exponent >= 0:
            return mantissa * self.BASE**self.exponent
        try:
            return mantissa / self.BASE**-self.exponent
        except OverflowError as e:
            raise OverflowError("decoded result too large for a float") from e

    def decrease_exponent_to(self, new_exp: int) -> EncodedNumber:
        """The same value with a lower exponent (the mantissa times BASE**(exp - new_exp)).

        Raises:
            ValueError: ``new_exp`` is above the current exponent.
        """
        _check_lower(new_exp, self.exponent)
        factor = pow(self.BASE, self.exponent - new_exp)
        new_enc = self.encoding * factor % self.public_key.n
        return self.__class__(self.public_key, new_enc, new_exp)


# ----------------------------------------------------------------------------------------
# one encrypted number


def _scalar_ok(x: Any) -> bool:
    return (
        isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, np.bool_)
    ) or isinstance(x, bool)


class EncryptedNumber:
    """The Paillier encryption of an encoded int or float (python-paillier semantics).

    Supports ``+`` and ``-`` with EncryptedNumber, EncodedNumber, int and float, ``*`` and
    ``/`` by EncodedNumber, int and float, and :meth:`ciphertext`, :meth:`obfuscate`,
    :meth:`decrease_exponent_to`. Results of operations are not re-randomised until
    :meth:`ciphertext` (``be_secure=True``) or :meth:`obfuscate`.

    Args:
        public_key: the key it is encrypted under.
        ciphertext: the ciphertext int (in [0, n**2) for a valid one).
        exponent: the encoding exponent.

    Raises:
        TypeError: ``ciphertext`` is not an int or ``public_key`` not a PaillierPublicKey.
    """

    def __init__(self, public_key: PaillierPublicKey, ciphertext: int, exponent: int = 0):
        if isinstance(ciphertext, EncryptedNumber) or not isinstance(ciphertext, _INTS):
            raise TypeError("ciphertext should be an integer")
        if not isinstance(public_key, PaillierPublicKey):
            raise TypeError("public_key should be a PaillierPublicKey")
        self.public_key = public_key
        self.__ciphertext = int(ciphertext)
        if not isinstance(exponent, _INTS) or isinstance(exponent, np.bool_):
            raise TypeError(f"exponent should be an int, got {type(exponent).__name__}")
        self.exponent = int(exponent)
        self.__is_obfuscated = False

    @classmethod
    def _make(
        cls, public_key: PaillierPublicKey, ciphertext: int, exponent: int, obfuscated: bool
    ) -> EncryptedNumber:
        x = cls(public_key, ciphertext, exponent)
        x.__is_obfuscated = obfuscated
        return x

    def __repr__(self) -> str:
        return f"<EncryptedNumber exponent={self.exponent} key={self.public_key!r}>"

    def __add__(self, other: Any) -> Any:
        if isinstance(other, EncryptedNumber):
            return self._add_encrypted(other)
        if _is_encoded(other):
            return self._add_encoded(other)
        if _scalar_ok(other):
            return self._add_scalar(other)
        return NotImplemented

    def __radd__(self, other: Any) -> Any:
        return self.__add__(other)

    def __mul__(self, other: Any) -> Any:
        if isinstance(other, EncryptedNumber):
            return NotImplemented
        if _is_encoded(other):
            encoding = other
        elif _scalar_ok(other):
            encoding = EncodedNumber.encode(self.public_key, other)
        else:
            return NotImplemented
        if encoding.public_key != self.public_key:
            raise KeyMismatchError(
                "Attempted to multiply by a number encoded against a different public key!"
            )
        product = self._raw_mul(encoding.encoding)
        return EncryptedNumber(self.public_key, product, self.exponent + encoding.exponent)

    def __rmul__(self, other: Any) -> Any:
        return self.__mul__(other)

    def __sub__(self, other: Any) -> Any:
        if _is_encoded(other):
            return self + _negated_encoding(other)
        if isinstance(other, EncryptedNumber) or _scalar_ok(other):
            return self + (other * -1)
        return NotImplemented

    def __rsub__(self, other: Any) -> Any:
        if _is_encoded(other) or _scalar_ok(other):
            return other + (self * -1)
        return NotImplemented

    def __neg__(self) -> EncryptedNumber:
        return self * -1

    def __truediv__(self, scalar: Any) -> Any:
        if not _scalar_ok(scalar):
            return NotImplemented
        return self.__mul__(1 / scalar)

    def ciphertext(self, be_secure: bool = True) -> int:
        """The ciphertext int; with ``be_secure`` (default) obfuscated first if needed."""
        if be_secure and not self.__is_obfuscated:
            self.obfuscate()
        return self.__ciphertext

    def decrease_exponent_to(self, new_exp: int) -> EncryptedNumber:
        """The same value at a lower exponent (multiplies by BASE**(exponent - new_exp)).

        Raises:
            ValueError: ``new_exp`` is above the current exponent.
        """
        _check_lower(new_exp, self.exponent)
        multiplied = self * pow(EncodedNumber.BASE, self.exponent - new_exp)
        multiplied.exponent = new_exp
        return multiplied

    def obfuscate(self) -> None:
        """Re-randomise: multiply the ciphertext by a fresh obfuscator (r^n or h_s^alpha)."""
        pk = self.public_key
        obf = pk._obfuscator()
        self.__ciphertext = int(gmpy2.f_mod(gmpy2.mul(self.__ciphertext, obf), pk.nsquare))
        self.__is_obfuscated = True

    def _add_scalar(self, scalar: Any) -> EncryptedNumber:
        encoded = EncodedNumber.encode(self.public_key, scalar, max_exponent=self.exponent)
        return self._add_encoded(encoded)

    def _add_encoded(self, encoded: Any) -> EncryptedNumber:
        if self.public_key != encoded.public_key:
            raise KeyMismatchError(
                "Attempted to add numbers encoded against different public keys!"
            )
        a, b = self._aligned(encoded)
        encrypted_scalar = a.public_key.raw_encrypt(b.encoding, 1)
        sum_ciphertext = a._raw_add(a.ciphertext(False), encrypted_scalar)
        return EncryptedNumber(a.public_key, sum_ciphertext, a.exponent)

    def _add_encrypted(self, other: EncryptedNumber) -> EncryptedNumber:
        if self.public_key != other.public_key:
            raise KeyMismatchError(
                "Attempted to add numbers encrypted against different public keys!"
            )
        a, b = self._aligned(other)
        sum_ciphertext = a._raw_add(a.ciphertext(False), b.ciphertext(False))
        return EncryptedNumber(a.public_key, sum_ciphertext, a.exponent)

    def _aligned(self, other: Any) -> tuple[EncryptedNumber, Any]:
        """self and other (encrypted or encoded) at the lower of their two exponents."""
        if self.exponent > other.exponent:
            return self.decrease_exponent_to(other.exponent), other
        if self.exponent < other.exponent:
            return self, other.decrease_exponent_to(self.exponent)
        return self, other

    def _raw_add(self, e_a: int, e_b: int) -> int:
        return int(gmpy2.f_mod(gmpy2.mul(e_a, e_b), self.public_key.nsquare))

    def _raw_mul(self, plaintext: int) -> int:
        """E(a * plaintext) for an encoding ``plaintext`` in [0, n) (inverse for negatives)."""
        if not isinstance(plaintext, _INTS):
            raise TypeError(f"Expected ciphertext to be int, not {type(plaintext)}")
        plaintext = int(plaintext)
        pk = self.public_key
        if plaintext < 0 or plaintext >= pk.n:
            raise ValueError(f"Scalar out of bounds: {plaintext}")
        if pk.n - pk.max_int <= plaintext:
            try:
                neg_c = gmpy2.invert(self.ciphertext(False), pk.nsquare)
            except ZeroDivisionError as e:
                raise ValueError("ciphertext is not invertible mod n**2 (not coprime to n)") from e
            return int(gmpy2.powmod(neg_c, pk.n - plaintext, pk.nsquare))
        return int(gmpy2.powmod(self.ciphertext(False), plaintext, pk.nsquare))


# ----------------------------------------------------------------------------------------
# array encoding / decoding


def _as_number_array(values: Any, name: str) -> np.ndarray:
    """values as an int64/uint64/float64/object(int) numpy array (float32 widened)."""
    if isinstance(values, (EncryptedArray, EncryptedNumber)):
        raise TypeError(f"{name} must hold plaintext numbers, got {type(values).__name__}")
    if isinstance(values, (list, tuple)):
        # numpy would turn [2**63 + 1, -1] into float64; keep Python ints exact
        obj = np.asarray(values, dtype=object)
        flat = obj.reshape(-1).tolist()
        if flat and all(
            isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in flat
        ):
            if all(-(2**63) <= int(v) < 2**63 for v in flat):
                return np.asarray(obj, dtype=np.int64)
            return obj
    arr = np.asarray(values)
    kind = arr.dtype.kind
    if kind == "b":
        return arr.astype(np.int64)
    if kind in "iu":
        return arr.astype(np.int64) if kind == "i" or arr.dtype.itemsize < 8 else arr
    if kind == "f":
        if arr.dtype.itemsize > 8:
            raise TypeError(f"{name}: float dtype {arr.dtype} is not supported (use float64)")
        return arr.astype(np.float64, copy=False)
    if kind == "O":
        items = arr.reshape(-1).tolist()
        if all(
            isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in items
        ):
            return arr
        if all(_scalar_ok(v) for v in items):
            try:
                return arr.astype(np.float64)
            except OverflowError as e:
                raise EncodingOverflowError(f"{name}: a value does not fit a float") from e
    raise TypeError(f"{name} must be ints or floats, got dtype {arr.dtype}")


def _float_exponents(x: np.ndarray, base_log2: float = 4.0) -> np.ndarray:
    """python-paillier's exact-float exponent floor((frexp(x)[1] - 53) / log2(BASE))."""
    _, e2 = np.frexp(x)
    return np.floor((e2.astype(np.int64) - EncodedNumber.FLOAT_MANTISSA_BITS) / base_log2).astype(
        np.int64
    )


def _encode_array(
    pk: PaillierPublicKey,
    x: np.ndarray,
    *,
    precision: float | None = None,
    max_exponent: np.ndarray | int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Encode a flat array as EncodedNumber.encode would each element.

    Returns (|mantissa| limbs (N, L), sign uint8 (N,), exponents int64 (N,)).
    """
    count = x.size
    if x.dtype.kind == "f" and count and not np.isfinite(x).all():
        raise ValueError("values must be finite (NaN or inf found)")
    if precision is not None:
        if not isinstance(precision, (int, float, np.integer, np.floating)):
            raise TypeError(f"precision must be a number, got {type(precision).__name__}")
        if not (math.isfinite(precision) and precision > 0):
            raise ValueError(f"precision must be a finite number > 0, got {precision!r}")
        pexp = np.full(count, math.floor(math.log(precision, EncodedNumber.BASE)), np.int64)
    elif x.dtype.kind == "f":
        pexp = _float_exponents(x)
    else:
        pexp = np.zeros(count, np.int64)
    exps = pexp if max_exponent is None else np.minimum(pexp, max_exponent)
    exps = np.ascontiguousarray(exps, dtype=np.int64)
    mant = None
    if x.dtype.kind == "f":
        with np.errstate(over="ignore", under="ignore"):
            y = np.rint(np.ldexp(x, (-4 * exps).clip(-2000, 2000).astype(np.int32)))
        if count == 0 or np.abs(y).max() < 2.0**62:
            mant = y.astype(np.int64)
    elif x.dtype.kind in "iu" and (count == 0 or (exps.min() >= 0 and exps.max() == 0)):
        mant = x
    elif x.dtype.kind in "iu" and count and exps.max() <= 0 and exps.min() >= -14:
        shift = (-4 * exps).astype(np.uint64)
        mag = np.abs(x.astype(np.float64))
        if (mag * 2.0 ** (-4.0 * exps)).max() < 2.0**62:
            mant = x.astype(np.int64) << shift.astype(np.int64)
    if mant is not None:
        if mant.dtype == np.uint64:
            absval = mant
            neg = np.zeros(count, np.uint8)
        else:
            neg = (mant < 0).astype(np.uint8)
            absval = mant.astype(np.uint64)
            np.negative(absval, out=absval, where=neg.astype(bool))
        if count and pk.max_int < 2**64 and int(absval.max()) > pk.max_int:
            bad = int(np.argmax(absval > np.uint64(max(pk.max_int, 0))))
            raise EncodingOverflowError(
                f"value at flat index {bad} needs a mantissa within +/- {pk.max_int}"
            )
        return np.ascontiguousarray(absval.reshape(-1, 1)), neg, exps
    # general path: exact Fraction arithmetic per element (big ints, large floats)
    width = _nlimbs(pk.n)
    mags, negs = [], np.zeros(count, np.uint8)
    base = fractions.Fraction(EncodedNumber.BASE)
    for i, v in enumerate(x.tolist()):
        int_rep = round(fractions.Fraction(v) * base ** -int(exps[i]))
        if abs(int_rep) > pk.max_int:
            raise EncodingOverflowError(
                f"value at flat index {i} needs a mantissa within +/- {pk.max_int}, got {int_rep}"
            )
        negs[i] = int_rep < 0
        mags.append(abs(int_rep))
    return _to_limbs(mags, width), negs, exps


def _decode_array(mabs: np.ndarray, sign: np.ndarray, exps: np.ndarray) -> np.ndarray:
    """Signed mantissas (limbs + sign) times 16**exps, as python-paillier decodes each."""
    count = exps.size
    if count == 0:
        return np.zeros(0, np.int64)
    small = count == 0 or (not mabs[:, 1:].any() and int(mabs[:, 0].max()) < 2**53)
    if count and exps.min() >= 0:  # integers
        if small and exps.max() * 4 + 53 < 63:
            m = mabs[:, 0].astype(np.int64)
            m = np.where(sign == 1, -m, m)
            return m << (4 * exps)
        vals = [
            (-v if s else v) * 16 ** int(e)
            for v, s, e in zip(_from_limbs(mabs), sign.tolist(), exps.tolist(), strict=True)
        ]
        try:
            return np.array(vals, dtype=np.int64)
        except OverflowError:
            out = np.empty(count, dtype=object)
            out[:] = vals
            return out
    if small:
        m = mabs[:, 0].astype(np.float64)
        m = np.where(sign == 1, -m, m)
        with np.errstate(over="raise"):
            try:
                return np.ldexp(m, (4 * exps).clip(-4000, 4000).astype(np.int32))
            except FloatingPointError as err:
                raise OverflowError("decoded result too large for a float") from err
    out = np.empty(count, np.float64)
    triples = zip(_from_limbs(mabs), sign.tolist(), exps.tolist(), strict=True)
    for i, (v, s, e) in enumerate(triples):
        mant = -v if s else v
        try:
            out[i] = mant * 16**e if e >= 0 else mant / 16**-e
        except OverflowError as err:
            raise OverflowError("decoded result too large for a float") from err
    return out


# ----------------------------------------------------------------------------------------
# arrays of ciphertexts

_MAGIC = b"PPMLPAI1"


class EncryptedArray:
    """An n-d array of Paillier ciphertexts under one key, each with its own exponent.

    Ciphertexts are stored as rows of 64-bit GMP limbs (``shape + (limbs of n^2,)``), and
    every operation is a batched native kernel with the GIL released:

    * ``a + b``, ``a - b`` (encrypted or plaintext operands, numpy broadcasting; exponents
      are aligned per element by multiplying the higher one's ciphertext by
      ``BASE**difference``, as python-paillier does per pair);
    * ``a * k``, ``a / k`` by plaintext scalars or arrays (ints, floats, EncodedNumber);
      negative factors invert the ciphertext first;
    * ``a.sum(axis=None)``; ``a @ W`` and ``W @ a`` for plaintext matrices W (1-D or 2-D
      operands, numpy's matmul shapes);
    * indexing and slicing (an EncryptedNumber for a single element), ``len``, iteration;
    * :meth:`to_bytes` / :meth:`from_bytes`, :meth:`to_json` / :meth:`from_json`.

    As in python-paillier, results of operations are not re-randomised: call
    :meth:`obfuscate`, or serialise with ``be_secure=True`` (the default), before they
    leave this machine. Build one with :meth:`PaillierPublicKey.encrypt_batch`,
    :meth:`from_numbers` or :meth:`from_ciphertexts`.
    """

    __array_ufunc__ = None  # numpy defers to our reflected operators (W @ enc, x + enc)
    __slots__ = ("_c", "_exp", "_obfuscated", "public_key")
    _c: np.ndarray  # (*shape, limbs of n^2) uint64, C order
    _exp: np.ndarray  # (*shape) int64
    _obfuscated: bool
    public_key: PaillierPublicKey

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError(
            "build an EncryptedArray with PaillierPublicKey.encrypt_batch, "
            "EncryptedArray.from_numbers or EncryptedArray.from_ciphertexts"
        )

    @classmethod
    def _wrap(
        cls, public_key: PaillierPublicKey, c: np.ndarray, exp: np.ndarray, obfuscated: bool
    ) -> EncryptedArray:
        self = object.__new__(cls)
        self.public_key = public_key
        self._c = np.asarray(c, dtype=np.uint64, order="C")
        self._exp = np.asarray(exp, dtype=np.int64, order="C")  # keeps 0-d (ascontiguous...
        if self._c.shape[:-1] != self._exp.shape:  # ...array would make it 1-d)
            raise AssertionError("internal: ciphertext and exponent shapes differ")
        self._obfuscated = bool(obfuscated)
        return self

    # -- construction and conversion ----------------------------------------------------
    @classmethod
    def from_ciphertexts(
        cls, public_key: PaillierPublicKey, ciphertexts: Any, exponents: Any = 0
    ) -> EncryptedArray:
        """An array from ciphertext ints (any nesting numpy accepts) and exponents.

        Raises:
            TypeError: not ints / not a PaillierPublicKey.
            ValueError: a ciphertext outside [0, n**2), or exponents of another shape.
        """
        if not isinstance(public_key, PaillierPublicKey):
            raise TypeError(
                f"public_key must be a PaillierPublicKey, got {type(public_key).__name__}"
            )
        arr = np.asarray(ciphertexts, dtype=object)
        flat = arr.reshape(-1).tolist()
        for v in flat:
            if not isinstance(v, (int, np.integer)) or isinstance(v, (bool, np.bool_)):
                raise TypeError(f"ciphertexts must be ints, got {type(v).__name__}")
        n2 = public_key.nsquare
        if any(not 0 <= int(v) < n2 for v in flat):
            raise ValueError("ciphertexts must be in [0, n**2)")
        exps = np.broadcast_to(np.asarray(exponents), arr.shape)
        if exps.dtype.kind not in "iu":
            raise TypeError("exponents must be ints")
        _check_exponents(exps, "exponents")
        width = _nlimbs(n2)
        c = _to_limbs(flat, width).reshape(*arr.shape, width)
        return cls._wrap(public_key, c, exps.astype(np.int64), obfuscated=False)

    @classmethod
    def from_numbers(cls, numbers: Any) -> EncryptedArray:
        """An array from EncryptedNumber objects (a sequence or object array; one key).

        Raises:
            TypeError: an element is not an EncryptedNumber.
            ValueError: empty input (the key is unknown).
            KeyMismatchError: numbers under different keys.
        """
        if isinstance(numbers, EncryptedArray):
            return numbers
        arr = np.empty(0, dtype=object)
        if isinstance(numbers, EncryptedNumber):
            arr = np.empty((), dtype=object)
            arr[()] = numbers
        else:
            items = list(numbers) if not isinstance(numbers, np.ndarray) else None
            if items is not None:
                arr = np.empty(len(items), dtype=object)
                arr[:] = items
                if any(isinstance(v, (list, tuple)) for v in items):
                    arr = np.array(items, dtype=object)
            else:
                arr = numbers.astype(object)
        flat = arr.reshape(-1).tolist()
        if not flat:
            raise ValueError("numbers is empty: cannot tell the public key")
        pk = None
        for v in flat:
            if not isinstance(v, EncryptedNumber):
                raise TypeError(f"numbers must be EncryptedNumber, got {type(v).__name__}")
            if pk is None:
                pk = v.public_key
            elif v.public_key != pk:
                raise KeyMismatchError("numbers are encrypted under different public keys")
        assert pk is not None
        obf = all(v._EncryptedNumber__is_obfuscated for v in flat)
        width = _nlimbs(pk.nsquare)
        cts = [v.ciphertext(False) for v in flat]
        if any(not 0 <= c < pk.nsquare for c in cts):
            raise ValueError("numbers hold a ciphertext outside [0, n**2) (not a valid ciphertext)")
        c = _to_limbs(cts, width).reshape(*arr.shape, width)
        try:
            exps = np.array([v.exponent for v in flat], np.int64).reshape(arr.shape)
        except OverflowError as e:
            raise ValueError(f"an exponent is beyond +/-{_MAX_EXP}") from e
        _check_exponents(exps, "numbers")
        return cls._wrap(pk, c, exps, obfuscated=obf)

    def tolist(self) -> Any:
        """Nested lists of EncryptedNumber (as ndarray.tolist nests)."""
        return np.asarray(self.to_numbers()).tolist() if self.ndim else self.to_numbers()[()]

    def to_numbers(self) -> np.ndarray:
        """An object array of EncryptedNumber of the same shape."""
        flat = self._c.reshape(-1, self._c.shape[-1])
        out = np.empty(flat.shape[0], dtype=object)
        pairs = zip(_from_limbs(flat), self._exp.reshape(-1).tolist(), strict=True)
        for i, (c, e) in enumerate(pairs):
            out[i] = EncryptedNumber._make(self.public_key, c, e, self._obfuscated)
        return out.reshape(self.shape)

    def ciphertexts(self, be_secure: bool = True) -> np.ndarray:
        """The ciphertext ints as an object array (obfuscated first when ``be_secure``)."""
        if be_secure and not self._obfuscated:
            self.obfuscate()
        out = np.empty(self.size, dtype=object)
        out[:] = _from_limbs(self._c.reshape(-1, self._c.shape[-1])) if self.size else []
        return out.reshape(self.shape)

    @property
    def exponents(self) -> np.ndarray:
        """A copy of the per-element exponents (int64, the array's shape)."""
        return self._exp.copy()

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self._exp.shape)

    @property
    def ndim(self) -> int:
        return self._exp.ndim

    @property
    def size(self) -> int:
        return int(self._exp.size)

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d EncryptedArray")
        return self.shape[0]

    def __iter__(self) -> Iterator[Any]:
        for i in range(len(self)):
            yield self[i]

    def __repr__(self) -> str:
        return (
            f"<EncryptedArray shape={self.shape} exponents=[{self._exp.min(initial=0)}.."
            f"{self._exp.max(initial=0)}] key={self.public_key!r}>"
        )

    def __getitem__(self, index: Any) -> Any:
        pos = np.arange(self.size).reshape(self.shape)[index]
        flat = self._c.reshape(-1, self._c.shape[-1])
        exps = self._exp.reshape(-1)
        if np.ndim(pos) == 0:
            i = int(pos)
            return EncryptedNumber._make(
                self.public_key, _from_limbs(flat[i : i + 1])[0], int(exps[i]), self._obfuscated
            )
        pos = np.asarray(pos)
        return EncryptedArray._wrap(
            self.public_key,
            flat[pos.reshape(-1)].reshape(*pos.shape, flat.shape[1]),
            exps[pos],
            self._obfuscated,
        )

    def reshape(self, *shape: Any) -> EncryptedArray:
        """The same ciphertexts in another shape (numpy's rules)."""
        exp = self._exp.reshape(*shape)
        width = self._c.shape[-1]
        return EncryptedArray._wrap(
            self.public_key, self._c.reshape(*exp.shape, width), exp, self._obfuscated
        )

    def ravel(self) -> EncryptedArray:
        return self.reshape(-1)

    @property
    def T(self) -> EncryptedArray:
        """The transpose (reversed axes), like ndarray.T."""
        axes = tuple(range(self.ndim))[::-1]
        return EncryptedArray._wrap(
            self.public_key,
            np.transpose(self._c, (*axes, self.ndim)),
            np.transpose(self._exp),
            self._obfuscated,
        )

    def copy(self) -> EncryptedArray:
        return EncryptedArray._wrap(
            self.public_key, self._c.copy(), self._exp.copy(), self._obfuscated
        )

    # -- randomisation --------------------------------------------------------------------
    def obfuscate(self, obfuscation: str | None = None) -> None:
        """Re-randomise every ciphertext in place (fresh r^n or h_s^alpha each)."""
        pk = self.public_key
        mode = pk.obfuscation if obfuscation is None else _check_obfuscation(obfuscation)
        flat = self._c.reshape(-1, self._c.shape[-1])
        self._c = pk._obfuscate_rows(flat, False, mode=mode).reshape(self._c.shape)
        self._obfuscated = True

    # -- helpers ----------------------------------------------------------------------------
    def _flat(self) -> np.ndarray:
        return self._c.reshape(-1, self._c.shape[-1])

    def _check_key(self, other_key: Any) -> None:
        if other_key != self.public_key:
            raise KeyMismatchError(
                "Attempted to combine numbers encrypted against different public keys!"
            )

    def _lowered(self, target: np.ndarray) -> np.ndarray:
        """Flat ciphertext rows with each exponent lowered to ``target`` (<= current)."""
        return _lower(self.public_key, self._flat(), self._exp.reshape(-1), target.reshape(-1))

    def decrease_exponent_to(self, new_exp: Any) -> EncryptedArray:
        """The same values with exponents lowered to ``new_exp`` (scalar or array).

        Raises:
            ValueError: some ``new_exp`` is above the current exponent.
        """
        target = np.broadcast_to(np.asarray(new_exp, dtype=np.int64), self.shape)
        if (target > self._exp).any():
            raise ValueError("new exponents should be more negative than the old ones")
        c = self._lowered(np.array(target, dtype=np.int64))
        return EncryptedArray._wrap(self.public_key, c.reshape(self._c.shape), target.copy(), False)

    # -- arithmetic ---------------------------------------------------------------------------
    def __add__(self, other: Any) -> Any:
        pk = self.public_key
        if isinstance(other, EncryptedNumber):
            other = EncryptedArray.from_numbers(other)
        if isinstance(other, EncryptedArray):
            self._check_key(other.public_key)
            shape = np.broadcast_shapes(self.shape, other.shape)
            ea = np.broadcast_to(self._exp, shape).reshape(-1)
            eb = np.broadcast_to(other._exp, shape).reshape(-1)
            target = np.minimum(ea, eb)
            ca = _lower(pk, _bcast_rows(self, shape), ea, target)
            cb = _lower(pk, _bcast_rows(other, shape), eb, target)
            out = np.empty_like(ca)
            if out.shape[0]:
                _k.mulmod(ca, cb, pk._limb("n2"), out, _threads())
            return EncryptedArray._wrap(
                pk, out.reshape(*shape, out.shape[1]), target.reshape(shape), False
            )
        plain = _plain_operand(pk, other)
        if plain is None:
            return NotImplemented
        values, encoded = plain
        shape = np.broadcast_shapes(self.shape, values.shape if encoded is None else ())
        ea = np.broadcast_to(self._exp, shape).reshape(-1)
        if encoded is not None:  # one EncodedNumber
            mabs, neg = _signed_encoding(pk, encoded)
            eb = np.full(ea.size, encoded.exponent, np.int64)
            target = np.minimum(ea, eb)
            if (eb > target).any():  # lower the encoding (as phe does)
                lowered = [encoded.decrease_exponent_to(int(t)) for t in np.unique(target)]
                by_exp = {x.exponent: _signed_encoding(pk, x) for x in lowered}
                width = max(v[0].shape[1] for v in by_exp.values())
                mabs = np.zeros((ea.size, width), np.uint64)
                neg = np.zeros(ea.size, np.uint8)
                for t, (ma, ng) in by_exp.items():
                    sel = target == t
                    mabs[sel, : ma.shape[1]] = ma[0]
                    neg[sel] = ng[0]
            else:
                mabs = np.broadcast_to(mabs, (ea.size, mabs.shape[1]))
                neg = np.broadcast_to(neg, (ea.size,))
        else:
            flatv = np.broadcast_to(values, shape).reshape(-1)
            mabs, neg, target = _encode_array(pk, flatv, max_exponent=ea)
        ca = _lower(pk, _bcast_rows(self, shape), ea, target)
        out = _times_plain_factor(pk, ca, mabs, neg)
        return EncryptedArray._wrap(
            pk, out.reshape(*shape, out.shape[1]), target.reshape(shape), False
        )

    def __radd__(self, other: Any) -> Any:
        return self.__add__(other)

    def __neg__(self) -> EncryptedArray:
        return self * -1

    def __sub__(self, other: Any) -> Any:
        if isinstance(other, (EncryptedArray, EncryptedNumber)):
            return self + (-other)
        plain = _plain_operand(self.public_key, other)
        if plain is None:
            return NotImplemented
        values, encoded = plain
        if encoded is not None:
            return self + _negated_encoding(encoded)
        if (
            values.dtype == np.uint64
            or values.dtype == object
            or (values.size and values.min() == np.iinfo(np.int64).min)
        ):
            neg_values = np.asarray([-int(v) for v in values.reshape(-1)], dtype=object).reshape(
                values.shape
            )
        else:
            neg_values = -values
        return self + neg_values

    def __rsub__(self, other: Any) -> Any:
        if (
            not isinstance(other, EncryptedNumber)
            and _plain_operand(self.public_key, other) is None
        ):
            return NotImplemented
        return (-self) + other

    def __mul__(self, other: Any) -> Any:
        if isinstance(other, (EncryptedArray, EncryptedNumber)):
            return NotImplemented
        pk = self.public_key
        plain = _plain_operand(pk, other)
        if plain is None:
            return NotImplemented
        values, encoded = plain
        if encoded is not None:
            mabs, neg = _signed_encoding(pk, encoded)
            shape = self.shape
            fexp = np.full(self.size, encoded.exponent, np.int64)
        else:
            shape = np.broadcast_shapes(self.shape, values.shape)
            mabs, neg, fexp = _encode_array(pk, np.broadcast_to(values, shape).reshape(-1))
        ca = _bcast_rows(self, shape)
        out = np.empty((ca.shape[0], ca.shape[1]), np.uint64)
        if out.shape[0]:
            bad = np.zeros(out.shape[0], np.uint8)
            nbad = _k.powm(
                ca,
                np.ascontiguousarray(mabs),
                np.ascontiguousarray(neg),
                pk._limb("n2"),
                False,
                out,
                bad,
                _threads(),
            )
            if nbad:
                raise ValueError(
                    f"{nbad} ciphertext(s) are not invertible mod n**2 (not "
                    "coprime to n): cannot multiply them by a negative number"
                )
        exps = np.broadcast_to(self._exp, shape).reshape(-1) + fexp
        return EncryptedArray._wrap(
            pk, out.reshape(*shape, out.shape[1]), exps.reshape(shape), False
        )

    def __rmul__(self, other: Any) -> Any:
        return self.__mul__(other)

    def __truediv__(self, other: Any) -> Any:
        if isinstance(other, (EncryptedArray, EncryptedNumber)):
            return NotImplemented
        plain = _plain_operand(self.public_key, other)
        if plain is None or plain[1] is not None:
            return NotImplemented
        divisor = np.asarray(plain[0], dtype=np.float64)
        if (divisor == 0).any():
            raise ZeroDivisionError("division of an EncryptedArray by zero")
        return self * (1 / divisor)

    def sum(self, axis: int | tuple[int, ...] | None = None) -> Any:
        """E(sum) over ``axis`` (all: an EncryptedNumber), exponents aligned to the minimum.

        An empty sum is E(0) = 1 (not obfuscated).
        """
        pk = self.public_key
        if axis is None:
            axes = tuple(range(self.ndim))
        else:
            axes = _norm_axes(axis, self.ndim)
        keep = [a for a in range(self.ndim) if a not in axes]
        order = keep + list(axes)
        c = np.transpose(self._c, (*order, self.ndim))
        e = np.transpose(self._exp, order)
        out_shape = tuple(self.shape[a] for a in keep)
        groups = int(np.prod(out_shape, dtype=np.int64))
        k = int(np.prod([self.shape[a] for a in axes], dtype=np.int64))
        e2 = e.reshape(groups, k)
        target = e2.min(axis=1) if k else np.zeros(groups, np.int64)
        width = self._c.shape[-1]
        rows = _lower(
            pk, np.ascontiguousarray(c).reshape(-1, width), e2.reshape(-1), np.repeat(target, k)
        )
        out = np.empty((groups, width), np.uint64)
        if groups:
            _k.prod_groups(
                np.ascontiguousarray(rows).reshape(groups, k, width),
                pk._limb("n2"),
                out,
                _threads(),
            )
        if axis is None:
            return EncryptedNumber._make(pk, _from_limbs(out)[0], int(target[0]), False)
        return EncryptedArray._wrap(
            pk, out.reshape(*out_shape, width), target.reshape(out_shape), False
        )

    def __matmul__(self, other: Any) -> Any:
        if isinstance(other, (EncryptedArray, EncryptedNumber)):
            return NotImplemented
        return _matmul(self, other, encrypted_left=True)

    def __rmatmul__(self, other: Any) -> Any:
        if isinstance(other, (EncryptedArray, EncryptedNumber)):
            return NotImplemented
        return _matmul(self, other, encrypted_left=False)

    def dot(self, other: Any) -> Any:
        """``self @ other`` for a plaintext ``other``."""
        return self.__matmul__(other)

    # -- serialisation ------------------------------------------------------------------------
    def to_bytes(self, be_secure: bool = True) -> bytes:
        """A compact binary form: magic, a JSON header (n, shape), exponents, limbs.

        ``be_secure`` obfuscates first when the values came out of operations.
        """
        if be_secure and not self._obfuscated:
            self.obfuscate()
        header = self._header()
        return b"".join(
            [
                _MAGIC,
                len(header).to_bytes(4, "little"),
                header,
                self._exp.astype("<i8").tobytes(),
                self._c.astype("<u8").tobytes(),
            ]
        )

    def _header(self) -> bytes:
        return json.dumps(
            {
                "n": format(self.public_key.n, "x"),
                "shape": list(self.shape),
                "limbs": int(self._c.shape[-1]),
            }
        ).encode()

    @property
    def nbytes(self) -> int:
        """The length of :meth:`to_bytes`' output (what sending the array costs)."""
        return len(_MAGIC) + 4 + len(self._header()) + self._exp.nbytes + self._c.nbytes

    @classmethod
    def from_bytes(cls, data: bytes, public_key: PaillierPublicKey | None = None) -> EncryptedArray:
        """Inverse of :meth:`to_bytes` (checks ``public_key``'s n when given).

        Raises:
            ValueError: malformed data, a ciphertext >= n**2, or another key's n.
        """
        data = bytes(data)
        if data[:8] != _MAGIC or len(data) < 12:
            raise ValueError("data is not a serialised EncryptedArray (bad magic)")
        hlen = int.from_bytes(data[8:12], "little")
        try:
            header = json.loads(data[12 : 12 + hlen])
            n = int(header["n"], 16)
            shape = tuple(int(s) for s in header["shape"])
            width = int(header["limbs"])
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError("data has a malformed header") from e
        pk = _key_for(n, public_key)
        size = int(np.prod(shape, dtype=np.int64))
        off = 12 + hlen
        if width != _nlimbs(pk.nsquare) or len(data) != off + 8 * size + 8 * size * width:
            raise ValueError("data has the wrong length for its header")
        exps = np.frombuffer(data, "<i8", size, off).astype(np.int64).reshape(shape)
        _check_exponents(exps, "data")
        c = np.frombuffer(data, "<u8", size * width, off + 8 * size).astype(np.uint64)
        c = c.reshape(size, width)
        _check_rows_below(c, pk)
        return cls._wrap(pk, c.reshape(*shape, width), exps, obfuscated=True)

    def to_json(self, be_secure: bool = True) -> str:
        """JSON ``{"n", "public_key": {"g", "n"}, "shape", "exponents", "ciphertexts"}``:
        big integers as decimal strings, flat lists in C order (the public-key object as in
        python-paillier's serialisation examples; ``n`` also at the top level)."""
        cts = self.ciphertexts(be_secure=be_secure).reshape(-1).tolist()
        pk = self.public_key
        return json.dumps(
            {
                "n": str(pk.n),
                "public_key": {"g": str(pk.g), "n": str(pk.n)},
                "shape": list(self.shape),
                "exponents": self._exp.reshape(-1).tolist(),
                "ciphertexts": [str(c) for c in cts],
            }
        )

    @classmethod
    def from_json(
        cls, text: str | bytes, public_key: PaillierPublicKey | None = None
    ) -> EncryptedArray:
        """Inverse of :meth:`to_json` (checks ``public_key``'s n when given).

        Raises:
            ValueError: malformed JSON, a ciphertext outside [0, n**2) or another key's n.
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
        pk = _key_for(n, public_key)
        size = int(np.prod(shape, dtype=np.int64))
        if len(exps) != size or len(cts) != size:
            raise ValueError("text has the wrong number of values for its shape")
        try:
            exparr = np.array(exps, np.int64).reshape(shape)
        except OverflowError as e:
            raise ValueError("text has an exponent outside int64") from e
        out = cls.from_ciphertexts(
            pk,
            np.array(cts, dtype=object).reshape(shape) if size else np.empty(shape, dtype=object),
            exparr,
        )
        out._obfuscated = True
        return out

    def __getstate__(self) -> dict[str, Any]:
        return {
            "public_key": self.public_key,
            "c": self._c,
            "exp": self._exp,
            "obfuscated": self._obfuscated,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.public_key = state["public_key"]
        self._c = state["c"]
        self._exp = state["exp"]
        self._obfuscated = state["obfuscated"]


def _norm_axes(axis: Any, ndim: int) -> tuple[int, ...]:
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    out = []
    for a in axes:
        a = int(a)
        if not -ndim <= a < ndim:
            raise np.exceptions.AxisError(a, ndim)
        out.append(a % ndim)
    if len(set(out)) != len(out):
        raise ValueError("repeated axis")
    return tuple(out)


_MAX_EXP = 2**31  # exponents are small in practice; this keeps int64 sums exact


def _check_exponents(exps: np.ndarray, name: str) -> None:
    if exps.size and (int(exps.max()) >= _MAX_EXP or int(exps.min()) <= -_MAX_EXP):
        raise ValueError(f"{name}: exponents must be within +/-{_MAX_EXP}")


def _key_for(n: int, public_key: PaillierPublicKey | None) -> PaillierPublicKey:
    if public_key is None:
        return PaillierPublicKey(n)
    if not isinstance(public_key, PaillierPublicKey):
        raise TypeError("public_key must be a PaillierPublicKey")
    if public_key.n != n:
        raise KeyMismatchError("the data was encrypted under a different public key")
    return public_key


def _check_rows_below(c: np.ndarray, pk: PaillierPublicKey) -> None:
    if c.shape[0]:
        ok = np.empty(c.shape[0], np.uint8)
        _k.rows_below(np.ascontiguousarray(c), pk._limb("n2"), ok)
        if not ok.all():
            raise ValueError("a ciphertext is >= n**2")


def _bcast_rows(a: EncryptedArray, shape: tuple[int, ...]) -> np.ndarray:
    """a's ciphertext rows broadcast to ``shape``, flat and C-contiguous."""
    width = a._c.shape[-1]
    if a.shape == tuple(shape):
        return a._c.reshape(-1, width)
    return np.ascontiguousarray(np.broadcast_to(a._c, (*shape, width))).reshape(-1, width)


def _lower(
    pk: PaillierPublicKey, rows: np.ndarray, exps: np.ndarray, target: np.ndarray
) -> np.ndarray:
    """Rows with exponents lowered to target: c^(16^(e - t)) for rows where e > t."""
    diff = np.asarray(exps, np.int64) - np.asarray(target, np.int64)
    sel = np.flatnonzero(diff > 0)
    if sel.size == 0:
        return rows
    bits = 4 * diff[sel]
    if int(bits.max()) > 1 << 24:
        raise ValueError(
            "cannot align exponents that differ by more than 2**22 (the "
            "multiplier 16**difference would have over 16 million bits)"
        )
    width = int(bits.max()) // 64 + 1
    e = np.zeros((sel.size, width), np.uint64)
    e[np.arange(sel.size), bits // 64] = np.left_shift(np.uint64(1), (bits % 64).astype(np.uint64))
    out = np.array(rows, dtype=np.uint64, copy=True, order="C")
    sub = np.empty((sel.size, rows.shape[1]), np.uint64)
    _k.powm(np.ascontiguousarray(rows[sel]), e, None, pk._limb("n2"), False, sub, None, _threads())
    out[sel] = sub
    return out


def _signed_encoding(pk: PaillierPublicKey, encoded: Any) -> tuple[np.ndarray, np.ndarray]:
    """An EncodedNumber's encoding as (|m| limbs (1, L), sign (1,)), phe's sign rule."""
    if encoded.public_key != pk:
        raise KeyMismatchError(
            "Attempted to combine numbers encoded against different public keys!"
        )
    enc = int(encoded.encoding)
    if not 0 <= enc < pk.n:
        raise ValueError(f"Scalar out of bounds: {enc}")
    if enc >= pk.n - pk.max_int:
        return _vec(pk.n - enc)[None, :], np.ones(1, np.uint8)
    return _vec(enc)[None, :], np.zeros(1, np.uint8)


def _plain_operand(pk: PaillierPublicKey, other: Any) -> tuple[np.ndarray, Any] | None:
    """(values array, None) for numbers/arrays, (None-shaped, EncodedNumber) for an
    encoding; None for unsupported operands."""
    if _is_encoded(other):
        return np.zeros(()), other
    if isinstance(other, (EncryptedArray, EncryptedNumber, str, bytes)):
        return None
    if _scalar_ok(other):
        return _as_number_array(other, "operand"), None
    if isinstance(other, (np.ndarray, list, tuple)) or hasattr(other, "__array__"):
        try:
            return _as_number_array(other, "operand"), None
        except TypeError:
            return None
    return None


def _times_plain_factor(
    pk: PaillierPublicKey, rows: np.ndarray, mabs: np.ndarray, neg: np.ndarray
) -> np.ndarray:
    """rows * g^(+-|m|) mod n^2: homomorphic addition of plaintexts (no randomness)."""
    out = np.empty((rows.shape[0], pk._limb("n2").size), np.uint64)
    if out.shape[0]:  # mode 3: the "obfuscator" is the existing ciphertext row
        _k.encrypt(
            3,
            pk._limb("n"),
            pk._limb("n2"),
            np.ascontiguousarray(rows),
            np.ascontiguousarray(mabs),
            np.ascontiguousarray(neg, dtype=np.uint8),
            True,
            out,
            None,
            0,
            None,
            _threads(),
        )
    return out


def _matmul(enc: EncryptedArray, other: Any, *, encrypted_left: bool) -> Any:
    pk = enc.public_key
    plain = _plain_operand(pk, other)
    if plain is None or plain[1] is not None:
        return NotImplemented
    w = plain[0]
    if enc.ndim == 0 or w.ndim == 0:
        raise ValueError("matmul: input operand does not have enough dimensions (0-d)")
    if enc.ndim > 2 or w.ndim > 2:
        raise ValueError("matmul with EncryptedArray supports 1-D and 2-D operands only")
    # common exponents: the encrypted side lowered to its minimum, W at one exponent
    target = int(enc._exp.min()) if enc.size else 0
    width = enc._c.shape[-1]
    rows = _lower(pk, enc._flat(), enc._exp.reshape(-1), np.full(enc.size, target, np.int64))
    wflat = w.reshape(-1)
    if wflat.size:
        if w.dtype.kind == "f":
            if not np.isfinite(wflat).all():
                raise ValueError("W must be finite (NaN or inf found)")
            wexp = int(_float_exponents(wflat).min())
        else:
            wexp = 0
    else:
        wexp = 0
    mabs, neg, _ = _encode_array(pk, wflat, max_exponent=np.full(wflat.size, wexp, np.int64))
    mabs = mabs.reshape(*w.shape, mabs.shape[1])
    neg = neg.reshape(w.shape)
    c = rows.reshape(*enc.shape, width)
    if encrypted_left:
        # enc (M, K) or (K,) @ W (K, J) or (K,)
        c3 = c if enc.ndim == 2 else c[None]
        e3 = mabs if w.ndim == 2 else mabs[:, None]
        n3 = neg if w.ndim == 2 else neg[:, None]
        if c3.shape[1] != e3.shape[0]:
            raise ValueError(f"matmul: mismatch in core dimension ({c3.shape[1]} vs {e3.shape[0]})")
        out_shape = (c3.shape[0], e3.shape[1])
        squeeze = [enc.ndim == 1, w.ndim == 1]
    else:
        # W (M, K) or (K,) @ enc (K, J) or (K,): out[m, j] = prod_k enc[k, j]^W[m, k]
        cT = np.swapaxes(c if enc.ndim == 2 else c[:, None], 0, 1)  # (J, K, width)
        c3 = np.ascontiguousarray(cT)
        wm = mabs if w.ndim == 2 else mabs[None]
        e3 = np.swapaxes(wm, 0, 1)  # (K, M, L)
        n3 = np.swapaxes(neg if w.ndim == 2 else neg[None], 0, 1)
        if c3.shape[1] != e3.shape[0]:
            raise ValueError(f"matmul: mismatch in core dimension ({e3.shape[0]} vs {c3.shape[1]})")
        out_shape = (c3.shape[0], e3.shape[1])  # (J, M): transposed below
        squeeze = [w.ndim == 1, enc.ndim == 1]
    out = np.empty((*out_shape, width), np.uint64)
    bad = np.zeros(out_shape, np.uint8)
    if out.size:
        nbad = _k.matpow(
            np.ascontiguousarray(c3),
            np.ascontiguousarray(e3),
            np.ascontiguousarray(n3, dtype=np.uint8),
            pk._limb("n2"),
            out,
            bad,
            _threads(),
        )
        if nbad:
            raise ValueError("a ciphertext is not invertible mod n**2 (not coprime to n)")
    if not encrypted_left:
        out = np.ascontiguousarray(np.swapaxes(out, 0, 1))
    exps = np.full(out.shape[:2], target + wexp, np.int64)
    res_shape = tuple(s for s, drop in zip(out.shape[:2], squeeze, strict=True) if not drop)
    out = out.reshape(*res_shape, width)
    if not res_shape:
        return EncryptedNumber._make(
            pk, _from_limbs(out.reshape(1, width))[0], target + wexp, False
        )
    return EncryptedArray._wrap(pk, out, exps.reshape(res_shape), False)
