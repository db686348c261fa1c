"""Paillier keys: generation, the public key (encryption, DJN obfuscation and its fixed-base
table), the private key (CRT decryption) and a keyring.

The classes have python-paillier's attributes and methods; the batch methods
(``encrypt_batch`` and ``decrypt_batch``) hand over to :mod:`ppml_fast.paillier.array`.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import gmpy2
import numpy as np

from .._errors import KeyMismatchError
from .._forksafe import ForkSafeLock
from .._native import paillier as _kernels
from .._types import ArrayLike
from .._validation import check_int
from ._limbs import (
    INTS,
    UNIT_CHECK_BITS,
    from_limbs,
    nlimbs,
    random_bits_rows,
    random_units_rows,
    threads,
    vec,
)
from .encoding import EncodedNumber, _check_precision, _check_scalar

if TYPE_CHECKING:
    from .array import EncryptedArray
    from .number import EncryptedNumber

DEFAULT_KEYSIZE = 3072
"""Default modulus length in bits: 3072 (about 128-bit security), as in python-paillier."""

_DJN_MIN_BITS = 512  # below this, keys obfuscate with classic r^n (alpha would be tiny)
_MAX_BITS = 65536  # the kernels keep a few rows of n^2 on the stack
# Single DJN encryptions on one key before its table is built. The table costs about as
# much as 3 to 7 encryptions by powmod_sec (1024 to 3072 bits) and makes each later one
# 5 to 10 times cheaper, so a program that encrypts number by number gets it early.
_TABLE_AFTER = 4
_TABLE_MAX_BYTES = 64 << 20
_OBFUSCATIONS = ("djn", "classic")


def _random_prime(bits: int) -> int:
    """A prime of exactly ``bits`` bits: a random start from the OS CSPRNG, then GMP's
    next prime, re-checked with 40 Miller-Rabin rounds."""
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
    """A new key pair whose modulus n has exactly ``n_length`` bits.

    Parameters
    ----------
    private_keyring : PaillierPrivateKeyring, optional
        A keyring the new private key is added to.
    n_length : int, default DEFAULT_KEYSIZE
        The bit length of n, in ``[8, 65536]``.

    Returns
    -------
    public_key : PaillierPublicKey
        The public key; it carries the DJN base h_s for keys of 512 bits and more.
    private_key : PaillierPrivateKey
        The matching private key.

    Raises
    ------
    TypeError
        ``n_length`` is not an int, or ``private_keyring`` not a keyring.
    ValueError
        ``n_length`` outside ``[8, 65536]``.

    Notes
    -----
    p and q have ``n_length // 2`` and ``n_length - n_length // 2`` bits, p != q and
    ``gcd(n, (p-1)(q-1)) = 1``.

    Security
    --------
    Each prime starts from a random value drawn from the operating system's CSPRNG (top
    two bits set); GMP finds the next prime (Baillie-PSW plus Miller-Rabin) and 40 more
    Miller-Rabin rounds re-check it.
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


class PaillierPublicKey:
    """A Paillier public key: n, g = n + 1, nsquare = n**2 and max_int = n // 3 - 1.

    Parameters
    ----------
    n : int
        The modulus: an odd int >= 3 of at most 65536 bits, the product of two distinct
        primes.
    hs : int, optional
        The DJN base ``h_s = h^n mod n^2`` (an n-th residue coprime to n) as published
        with the key by its owner. When missing and DJN obfuscation is used, the
        encryptor draws its own from the secure stream.
    obfuscation : {"djn", "classic"}, optional
        The default obfuscation of this key's encryptions (default: ``"djn"`` when n has
        512 bits or more, else ``"classic"``).

    Attributes
    ----------
    n, g, nsquare, max_int : int
        As in python-paillier.
    obfuscation : str
        The default obfuscation of this key's encryptions.

    Raises
    ------
    TypeError
        ``n`` or ``hs`` is not an int.
    ValueError
        ``n`` is even, below 3 or too long; ``hs`` is outside ``(0, n**2)``, shares a
        factor with n or has tiny order; ``obfuscation`` is unknown.

    Security
    --------
    Accept ``hs`` only over an authenticated channel: a bad h_s cannot be detected
    without the factorisation, beyond the check done here that its order exceeds 64.
    ``"djn"`` relies on the short-exponent assumption as well as on decisional composite
    residuosity (see :mod:`ppml_fast.paillier`); ``"classic"`` on DCR alone.
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
        # precompute() holds it and may draw hs. Fork-safe: a child forked while another
        # thread held it gets a free lock; a table or hs that thread was building was never
        # stored (each is assigned whole, at the end), so the child builds its own.
        self._lock = ForkSafeLock(reentrant=True)
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
        type(self).__init__(self, state["n"], state["hs"], obfuscation=state["obfuscation"])

    def get_random_lt_n(self) -> int:
        """A random int in ``[1, n)``.

        Returns
        -------
        int
            Drawn with :mod:`secrets` (the operating system's CSPRNG).
        """
        return secrets.randbelow(self.n - 1) + 1

    def raw_encrypt(self, plaintext: int, r_value: int | None = None) -> int:
        """Paillier encryption of an int plaintext: ``(1 + n m) r^n mod n^2``.

        Parameters
        ----------
        plaintext : int
            The plaintext m, taken mod n (``g^m`` depends on m mod n only).
        r_value : int, optional
            A fixed r (python-paillier's ciphertext for the same r); by default the key's
            obfuscation draws fresh randomness.

        Returns
        -------
        int
            The ciphertext, in ``[0, n**2)``.

        Raises
        ------
        TypeError
            ``plaintext`` is not an int.
        """
        if not isinstance(plaintext, INTS):
            raise TypeError(f"Expected int type plaintext but got: {type(plaintext)}")
        _check_r_value(r_value)
        plaintext = int(plaintext) % self.n  # g^m depends on m mod n only (phe wraps too)
        nude = self.n * plaintext + 1  # < n**2, as plaintext < n
        if r_value == 1:  # 1^n = 1: the bare ciphertext (encrypt obfuscates it afterwards)
            return nude
        if r_value:
            obf = gmpy2.powmod(int(r_value), self.n, self.nsquare)
        else:
            obf = self._obfuscator()
        return int(gmpy2.f_mod(gmpy2.mul(nude, obf), self.nsquare))

    def encrypt(
        self, value: Any, precision: float | None = None, r_value: int | None = None
    ) -> EncryptedNumber:
        """Encode and encrypt an int or float.

        Parameters
        ----------
        value : int, float or EncodedNumber
            The value; numbers are encoded with :meth:`EncodedNumber.encode`.
        precision : float, optional
            As in :meth:`EncodedNumber.encode`.
        r_value : int, optional
            As in python-paillier: a given r gives phe's exact ciphertext and leaves it
            un-obfuscated; ``None`` obfuscates with fresh randomness.

        Returns
        -------
        EncryptedNumber
            The encryption under this key.

        Raises
        ------
        TypeError
            ``value`` is not a number.
        EncodingOverflowError
            The value's mantissa exceeds max_int.
        """
        from .number import _is_encoded  # number builds on this module: imported on use

        _check_r_value(r_value)
        if _is_encoded(value):
            encoding = value
        else:
            _check_scalar(value, "value", exact=precision is not None)
            if precision is not None:
                _check_precision(precision)
            encoding = EncodedNumber.encode(self, value, precision)
        return self.encrypt_encoded(encoding, r_value)

    def encrypt_encoded(self, encoding: Any, r_value: int | None) -> EncryptedNumber:
        """Encrypt an :class:`EncodedNumber`.

        Parameters
        ----------
        encoding : EncodedNumber
            An encoding for this key (python-paillier's are accepted too).
        r_value : int or None
            As in :meth:`encrypt`.

        Returns
        -------
        EncryptedNumber
            The encryption, at the encoding's exponent.

        Raises
        ------
        KeyMismatchError
            The encoding was made for another key.
        """
        from .number import EncryptedNumber  # number builds on this module: imported on use

        _check_r_value(r_value)
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
        """The DJN base ``h_s = h^n mod n^2`` (drawn on first use when the key came without)."""
        if self._hs is None:
            with self._lock:
                if self._hs is None:
                    self._hs = self._draw_hs(None)
        return self._hs

    def _draw_hs(self, private_key: PaillierPrivateKey | None) -> int:
        """A fresh DJN base ``(-x^2)^n mod n^2`` for a random unit x (by CRT with the key)."""
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
        """The default table window: 5 bits when the table fits 64 MiB, else narrower.

        The constant-time walk reads all 2^w entries of every window, so wider windows
        (fewer multiplications, more reads) stop paying off beyond w = 5.
        """
        abits = self._alpha_bits()
        entry = 8 * nlimbs(self.nsquare)
        for w in (5, 4, 3, 2):
            if -(-abits // w) * (1 << w) * entry <= _TABLE_MAX_BYTES:
                return w
        return 1

    def precompute(self, window: int | None = None) -> None:
        """Build the DJN fixed-base table now (else it is built on first batch use).

        Parameters
        ----------
        window : int, optional
            The window width w in bits, 1 to 10 (default: 5, or less when the table
            would exceed 64 MiB).

        Notes
        -----
        The table holds ``h_s^(d 2^(w j))`` for every w-bit digit d and window j of alpha,
        in Montgomery form (times ``2^(64 L) mod n^2`` for n^2 of L limbs, or in 52-bit
        digits where AVX-512 IFMA runs): 3.4 MB for a 2048-bit key with w = 5 (4.2 MB in
        the IFMA form), and
        makes one DJN obfuscation cost ``ceil(n_length / 2 / w)`` modular multiplications.
        Single :meth:`encrypt` calls build the table themselves after 4 encryptions with
        this key.

        Security
        --------
        alpha is secret, so the walk is constant-time: each window reads all 2^w entries
        and keeps one by masks, and multiplies even for a zero digit. Without IFMA the
        products are Montgomery multiplications, four alphas at a time in the AVX2 lanes
        at the avx2 level (batches), or on GMP's ``mpn_addmul_1`` (the primitive of its
        ``mpn_sec_*`` functions), with a final subtraction chosen by masks.
        """
        w = self._window() if window is None else check_int(window, "window", minimum=1, maximum=10)
        l2 = self._limb("n2")
        mont = int(_kernels.mont_width(l2))
        with self._lock:
            if (
                self._table is not None
                and self._table[1] == w
                and (self._table[0].shape[2] == (mont or l2.size))
            ):
                return
            nwin = -(-self._alpha_bits() // w)
            table = np.empty((nwin, 1 << w, l2.size), np.uint64)
            _kernels.fixed_base_table(vec(self.hs, l2.size), l2, w, table, threads())
            if mont:  # AVX-512 IFMA: keep the entries in Montgomery form, 52-bit digits
                mtable = np.empty((nwin, 1 << w, mont), np.uint64)
                _kernels.table_to_mont(table.reshape(-1, l2.size), l2, mtable, threads())
                table = mtable
            else:  # Montgomery form in 64-bit limbs (times 2^(64 L) mod n^2)
                _kernels.table_to_mont64(table, l2, threads())
            self._table = (table, w)

    def _ensure_table(self) -> None:
        """Build the table, or rebuild it for the kernel path now in use (IFMA or not)."""
        table = self._table
        width = int(_kernels.mont_width(self._limb("n2"))) or self._limb("n2").size
        if table is None or table[0].shape[2] != width:
            self.precompute(None if table is None else table[1])

    def _alpha_bits(self) -> int:
        """The bit length of the DJN exponent alpha: ``n_length // 2``."""
        return max(self.n.bit_length() // 2, 1)

    def _limb(self, name: str) -> np.ndarray:
        """``n``, ``n2`` (n^2) or ``max_int`` as a cached read-only limb vector."""
        cached = self._limbs.get(name)
        if cached is None:
            if name == "n":
                cached = vec(self.n)
            elif name == "n2":
                cached = vec(self.nsquare)
            elif name == "max_int":
                cached = vec(max(self.max_int, 0), nlimbs(self.n))
            else:  # pragma: no cover
                raise KeyError(name)
            cached.setflags(write=False)
            self._limbs[name] = cached
        return cached

    def _ct_power(self, alpha: int) -> int:
        """``h_s^alpha mod n^2`` in constant time without the table: the MULX/ADX power at
        the avx2 level on a CPU with ADX, else GMP's ``powmod_sec``."""
        n2 = self._limb("n2")
        if _kernels.adx_in_use((n2.size + 3) // 4 * 4):
            out = np.empty(n2.size, np.uint64)
            a = vec(alpha, -(-self._alpha_bits() // 64))
            if _kernels.adx_powm(vec(self.hs, n2.size), a, n2, out) == 0:
                return from_limbs(out[None, :])[0]
        return int(gmpy2.powmod_sec(self.hs, alpha, self.nsquare))

    def _obfuscator(self, obfuscation: str | None = None) -> int:
        """One fresh obfuscator mod n^2: ``r^n`` (classic) or ``h_s^alpha`` (DJN).

        Security
        --------
        alpha is secret: before the key has its table, ``h_s^alpha`` is computed by a
        constant-time power (the MULX/ADX kernel at the avx2 level, else ``powmod_sec``);
        afterwards by the constant-time table walk.
        """
        mode = self.obfuscation if obfuscation is None else obfuscation
        if mode == "classic":
            r = self.get_random_lt_n()
            # toy keys only: a gcd on the secret r takes variable time, and for real keys
            # (random_units_rows) a multiple of p or q has probability below 2^-254
            while self.n.bit_length() < UNIT_CHECK_BITS and math.gcd(r, self.n) != 1:
                r = self.get_random_lt_n()
            return int(gmpy2.powmod(r, self.n, self.nsquare))
        alpha = 0
        while alpha == 0:  # alpha = 0 would leave the ciphertext bare (tiny keys only)
            alpha = secrets.randbits(self._alpha_bits())
        if self._table is None:
            self._djn_single += 1
            if self._djn_single <= _TABLE_AFTER:  # alpha is secret: constant-time power
                return self._ct_power(alpha)
            self.precompute()  # a loop of single encryptions: the table pays off now
        one = np.ones((1, 1), np.uint64)
        out = self._obfuscate_rows(
            one, False, mode="djn", rnd=vec(alpha)[None, :], private_key=None
        )
        return from_limbs(out)[0]

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
        """Rows of ``base`` times fresh obfuscators mod n^2, on all cores.

        Parameters
        ----------
        base : numpy.ndarray
            ``(N, L)`` limbs: plaintext magnitudes |m| (``is_msg``; encryption) or
            ciphertexts (re-randomisation).
        is_msg : bool
            Whether ``base`` holds plaintexts, encrypted as ``g^(+-|m|)`` first.
        neg : numpy.ndarray, optional
            ``(N,)`` uint8 signs of the plaintexts.
        mode : {"djn", "classic"}
            The obfuscation.
        rnd : numpy.ndarray, optional
            The randomness (alpha rows for DJN, r rows for classic); drawn fresh when
            missing.
        private_key : PaillierPrivateKey, optional
            With ``"classic"``: compute r^n by CRT mod p^2 and q^2.

        Returns
        -------
        numpy.ndarray
            ``(N, limbs of n^2)`` uint64 ciphertext rows.
        """
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
                rnd = random_bits_rows(nrows, self._alpha_bits())
                while True:  # alpha = 0 would leave a ciphertext bare (tiny keys only)
                    zero = np.flatnonzero(~rnd.any(axis=1))
                    if zero.size == 0:
                        break
                    rnd[zero] = random_bits_rows(zero.size, self._alpha_bits())
            code = 0
        else:
            if rnd is None:
                rnd = random_units_rows(nrows, self.n, n_l)
            if private_key is not None:
                crt = private_key._enc_crt_limbs()
                code = 2
            else:
                code = 1
        _kernels.encrypt(
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
            threads(),
        )
        return out

    # -- batch ----------------------------------------------------------------------------
    def encrypt_batch(
        self, values: ArrayLike, *, precision: float | None = None, obfuscation: str | None = None
    ) -> EncryptedArray:
        """Encrypt an array of ints or floats into an :class:`EncryptedArray`.

        Each element is encoded as :meth:`EncodedNumber.encode` would encode it (its own
        exponent: 0 for ints, the exact float exponent for floats, or from
        ``precision``) and encrypted with fresh randomness on all cores (GIL released).

        Parameters
        ----------
        values : array_like
            Ints (any integer dtype, or Python ints of any size) or floats (float32 or
            float64; float32 values are encoded exactly).
        precision : float, optional
            As in :meth:`EncodedNumber.encode`.
        obfuscation : {"djn", "classic"}, optional
            ``"djn"`` (fixed-base ``h_s^alpha``; the table is built on first use) or
            ``"classic"`` (``r^n``); default: the key's.

        Returns
        -------
        EncryptedArray
            The ciphertexts, of ``values``' shape.

        Raises
        ------
        TypeError
            ``values`` are not numbers.
        ValueError
            NaN or infinite values, a bad ``precision`` or ``obfuscation``.
        EncodingOverflowError
            A value's mantissa exceeds max_int.
        """
        from .array import _encrypt_array  # array builds on this module: imported on use

        return _encrypt_array(self, values, precision, obfuscation, None)

    # -- key files ------------------------------------------------------------------------
    def to_json(self) -> str:
        """The key as a JSON key file, python-paillier's format.

        Returns
        -------
        str
            ``{"kty": "DAJ", "alg": "PAI-GN1", "key_ops": ["encrypt"], "n", "bits"}``
            (and ``"hs"`` when the key has a DJN base), n in base64url; see
            :mod:`ppml_fast.paillier.keyfile`.
        """
        from . import keyfile

        return keyfile.public_to_json(self)

    @classmethod
    def from_json(cls, text: str | bytes) -> PaillierPublicKey:
        """The public key in a JSON key file (:meth:`to_json`'s, or python-paillier's).

        Parameters
        ----------
        text : str or bytes
            The key file's text.

        Returns
        -------
        PaillierPublicKey
            The key.

        Raises
        ------
        TypeError
            ``text`` is not a str or bytes, or a field has the wrong JSON type.
        ValueError
            Malformed JSON, a missing field, a wrong ``kty``/``alg``/``key_ops``, a
            ``bits`` that is not n's bit length, or an unusable ``n``/``hs``; the message
            names the field (see :mod:`ppml_fast.paillier.keyfile`).
        """
        from . import keyfile

        return keyfile.public_from_json(text)


def _check_hs_order(hs: int, n2: int) -> None:
    """Reject a DJN base of tiny order (``h_s^k = 1`` for some k <= 64, e.g. 1 or -1).

    Such a base would leave ciphertexts nearly bare. Whether h_s is an n-th residue cannot
    be checked without the factorisation: a supplied hs must come from the key owner over
    a trusted channel.
    """
    x = 1
    for k in range(1, 65):
        x = x * hs % n2
        if x == 1:
            raise ValueError(f"hs has order {k} mod n**2: not a usable DJN base")


def _check_r_value(r_value: Any) -> None:
    """Raise ``TypeError`` naming ``r_value`` unless it is ``None`` or an int."""
    if r_value is not None and (isinstance(r_value, np.bool_) or not isinstance(r_value, INTS)):
        raise TypeError(f"r_value must be an int or None, got {type(r_value).__name__}")


def _check_obfuscation(value: Any) -> str:
    """``value`` if it names an obfuscation (``"djn"``, ``"classic"``), else ``TypeError`` /
    ``ValueError`` naming ``obfuscation``."""
    if not isinstance(value, str):
        raise TypeError(f"obfuscation must be one of {_OBFUSCATIONS}, got {type(value).__name__}")
    if value not in _OBFUSCATIONS:
        raise ValueError(f"obfuscation must be one of {_OBFUSCATIONS}, got {value!r}")
    return str(value)


class PaillierPrivateKey:
    """A Paillier private key (p, q) with CRT decryption.

    Parameters
    ----------
    public_key : PaillierPublicKey
        The matching public key.
    p, q : int
        The distinct prime factors of ``public_key.n`` (stored with p < q).

    Attributes
    ----------
    public_key, p, q, psquare, qsquare, p_inverse, hp, hq
        As in python-paillier (``p_inverse`` is p^-1 mod q; ``hp``, ``hq`` the CRT
        decryption constants of :meth:`h_function`).

    Raises
    ------
    TypeError
        ``p`` or ``q`` is not an int.
    ValueError
        ``p * q != n``, ``p == q`` or a factor below 2.
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
        """The private key from the totient phi(n) = (p-1)(q-1).

        Parameters
        ----------
        public_key : PaillierPublicKey
            The public key.
        totient : int
            phi(n) of its n.

        Returns
        -------
        PaillierPrivateKey
            The key with the p and q that solve ``p + q = n - phi + 1``, ``p q = n``.

        Raises
        ------
        ValueError
            The totient does not belong to ``public_key``.
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
        return bool(self.p == other.p and self.q == other.q)

    def __hash__(self) -> int:
        return hash((self.p, self.q))

    def __getstate__(self) -> dict[str, Any]:
        return {"public_key": self.public_key, "p": self.p, "q": self.q}

    def __setstate__(self, state: dict[str, Any]) -> None:
        type(self).__init__(self, state["public_key"], state["p"], state["q"])

    # -- python-paillier surface --------------------------------------------------------
    def decrypt(self, encrypted_number: EncryptedNumber) -> int | float:
        """The int or float that ``encrypted_number`` holds.

        Parameters
        ----------
        encrypted_number : EncryptedNumber
            A ciphertext under this key.

        Returns
        -------
        int or float
            As :meth:`EncodedNumber.decode` decodes it.

        Raises
        ------
        TypeError
            Not an :class:`EncryptedNumber`.
        KeyMismatchError
            Encrypted under another key (a ``ValueError``).
        ValueError
            An invalid ciphertext (see :meth:`raw_decrypt`).
        OverflowError
            The decrypted mantissa is in the overflow band.
        """
        value: int | float = self.decrypt_encoded(encrypted_number).decode()
        return value

    def decrypt_encoded(
        self, encrypted_number: EncryptedNumber, Encoding: type | None = None
    ) -> Any:
        """The encoding that ``encrypted_number`` holds.

        Parameters
        ----------
        encrypted_number : EncryptedNumber
            A ciphertext under this key.
        Encoding : type, optional
            The class to build (default :class:`EncodedNumber`), called as
            ``Encoding(public_key, encoding, exponent)``.

        Returns
        -------
        EncodedNumber or Encoding
            The decrypted encoding at the ciphertext's exponent.

        Raises
        ------
        TypeError
            Not an :class:`EncryptedNumber`.
        KeyMismatchError
            Encrypted under another key.
        """
        from .number import EncryptedNumber  # number builds on this module: imported on use

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
        """Decrypt a raw ciphertext int by CRT.

        Parameters
        ----------
        ciphertext : int
            A ciphertext in ``[1, n**2)`` coprime to n.

        Returns
        -------
        int
            The plaintext, in ``[0, n)``.

        Raises
        ------
        TypeError
            ``ciphertext`` is not an int.
        ValueError
            ``ciphertext`` is outside ``[1, n**2)`` or shares a factor with n.

        Notes
        -----
        ``m_p = L_p(c^(p-1) mod p^2) h_p mod p`` and likewise mod q, joined by
        :meth:`crt`.

        Security
        --------
        The secret exponents p - 1 and q - 1 go through a constant-time power in the
        native kernel: ppml_fast's MULX/ADX power at the avx2 level on a CPU with ADX
        (fixed windows, entries chosen by masks, masked final subtraction, the reductions
        by ``mpn_sec_div_r``), else GMP's ``mpz_powm_sec``; the two halves run on two
        threads when :func:`ppml_fast.get_num_threads` allows.
        """
        if not isinstance(ciphertext, INTS):
            raise TypeError(f"Expected ciphertext to be an int, not: {type(ciphertext)}")
        c = int(ciphertext)
        if not 0 < c < self.public_key.nsquare:
            raise ValueError("ciphertext must be in [1, n**2)")
        if c % self.p == 0 or c % self.q == 0:
            raise ValueError("ciphertext is not coprime to n (not a valid ciphertext)")
        # the batch kernel on one row: its two halves (mod p^2, mod q^2) on two threads
        pk = self.public_key
        row = vec(c, pk._limb("n2").size)[None, :]
        mabs = np.empty((1, pk._limb("n").size), np.uint64)
        sign = np.empty(1, np.uint8)
        _kernels.decrypt(self._dec_limbs(), row, mabs, sign, threads())
        m = from_limbs(mabs)[0]
        return pk.n - m if sign[0] == 1 else m  # the kernel signs m above n - max_int

    def h_function(self, x: int, xsquare: int) -> int:
        """Paillier's CRT decryption constant ``h(x) = L_x(g^(x-1) mod x^2)^-1 mod x``.

        Parameters
        ----------
        x : int
            p or q.
        xsquare : int
            ``x**2``.

        Returns
        -------
        int
            h(x), in ``[0, x)``.
        """
        g = self.public_key.g
        return int(
            gmpy2.invert(self.l_function(int(gmpy2.powmod_sec(g % xsquare, x - 1, xsquare)), x), x)
        )

    def l_function(self, x: int, p: int) -> int:
        """Paillier's ``L(x, p) = (x - 1) // p``.

        Parameters
        ----------
        x : int
            A value congruent to 1 mod p.
        p : int
            The divisor.

        Returns
        -------
        int
            ``(x - 1) // p``.
        """
        return (x - 1) // p

    def crt(self, mp: int, mq: int) -> int:
        """The residue mod n = pq with the given residues mod p and mod q.

        Parameters
        ----------
        mp, mq : int
            Residues mod p and mod q.

        Returns
        -------
        int
            ``mp + p ((mq - mp) p^-1 mod q)``, in ``[0, n)``.
        """
        u = int(gmpy2.f_mod((mq - mp) * self.p_inverse, self.q))
        return mp + u * self.p

    # -- CRT helpers for the kernels ------------------------------------------------------
    def _crt_pow_n(self, h: int) -> int:
        """``h^n mod n^2`` by CRT (``powmod_sec`` on the secret moduli and exponents)."""
        n = self.public_key.n
        xp = int(gmpy2.powmod_sec(h % self.psquare, n % (self.p * (self.p - 1)), self.psquare))
        xq = int(gmpy2.powmod_sec(h % self.qsquare, n % (self.q * (self.q - 1)), self.qsquare))
        u = int(gmpy2.invert(self.psquare, self.qsquare))
        return xp + self.psquare * (((xq - xp) * u) % self.qsquare)

    def _enc_crt_limbs(self) -> tuple[np.ndarray, ...]:
        """The CRT encryption constants as limb vectors (p^2, q^2, the reduced exponents
        n mod p(p-1) and n mod q(q-1), p^-2 mod q^2), cached."""
        if self._enc is None:
            n = self.public_key.n
            width = nlimbs(max(self.psquare, self.qsquare))
            vals = (
                self.psquare,
                self.qsquare,
                n % (self.p * (self.p - 1)),
                n % (self.q * (self.q - 1)),
                int(gmpy2.invert(self.psquare, self.qsquare)),
            )
            self._enc = tuple(vec(v, width) for v in vals)
        return self._enc

    def _dec_limbs(self) -> tuple[np.ndarray, ...]:
        """The CRT decryption constants as limb vectors, in the decrypt kernel's order, cached."""
        if self._dec is None:
            pk = self.public_key
            wh = nlimbs(self.q)
            w2 = nlimbs(self.qsquare)
            small = (self.p, self.q)
            self._dec = (
                *(vec(v, wh) for v in small),
                vec(self.psquare, w2),
                vec(self.qsquare, w2),
                *(vec(v, wh) for v in (self.p - 1, self.q - 1, self.hp, self.hq, self.p_inverse)),
                pk._limb("n"),
                pk._limb("n2"),
                pk._limb("max_int"),
            )
        return self._dec

    # -- batch ----------------------------------------------------------------------------
    def decrypt_batch(self, enc: EncryptedArray | Iterable[EncryptedNumber]) -> np.ndarray:
        """Decrypt an :class:`EncryptedArray` (or a sequence of EncryptedNumber) by CRT.

        Parameters
        ----------
        enc : EncryptedArray or sequence of EncryptedNumber
            Ciphertexts under this key.

        Returns
        -------
        numpy.ndarray
            The values, of ``enc``'s shape: int64 when every exponent is >= 0 and every
            value fits (an object array of Python ints when one does not), else float64
            (each value decoded as python-paillier's ``decode`` would, then as a double).

        Raises
        ------
        TypeError
            ``enc`` is not an EncryptedArray or a sequence of EncryptedNumber.
        KeyMismatchError
            Encrypted under another key.
        ValueError
            An invalid ciphertext (0, ``>= n**2`` or not coprime to n).
        OverflowError
            A decrypted mantissa in the overflow band.

        Security
        --------
        The secret exponents p - 1 and q - 1 go through constant-time code, on all cores
        with the GIL released: at the avx2 level and above, two ciphertexts at a time in
        the four AVX2 lanes of ppml_fast's own power (fixed windows, entries chosen by
        masks, masked final subtraction, reductions by ``mpn_sec_div_r``; see the package
        notes), a lone ciphertext's halves on the MULX/ADX power (as :meth:`raw_decrypt`);
        the generic level uses GMP's ``mpz_powm_sec``.
        """
        from .array import _decrypt_array  # array builds on this module: imported on use

        return _decrypt_array(self, enc)

    def encrypt_batch(
        self, values: ArrayLike, *, precision: float | None = None, obfuscation: str | None = None
    ) -> EncryptedArray:
        """:meth:`PaillierPublicKey.encrypt_batch` with the private key's CRT shortcut.

        Parameters
        ----------
        values, precision, obfuscation
            As in :meth:`PaillierPublicKey.encrypt_batch`.

        Returns
        -------
        EncryptedArray
            The ciphertexts, of ``values``' shape.

        Notes
        -----
        With ``obfuscation="classic"``, r^n is computed by CRT mod p^2 and q^2, faster
        than the public-key path; DJN obfuscation is the same as the public key's.

        Security
        --------
        The secret exponents (n mod p(p-1), n mod q(q-1)) go through ``mpz_powm_sec``;
        with AVX-512 IFMA, r is raised to n itself modulo the secret p^2 and q^2 with
        Montgomery multiplications whose timing depends on no value.
        """
        from .array import _encrypt_array  # array builds on this module: imported on use

        return _encrypt_array(self.public_key, values, precision, obfuscation, self)

    # -- key files ------------------------------------------------------------------------
    def to_json(self) -> str:
        """The key as a JSON key file, python-paillier's format.

        Returns
        -------
        str
            ``{"kty": "DAJ", "key_ops": ["decrypt"], "p", "q", "pub": {public key}}``,
            p and q in base64url; see :mod:`ppml_fast.paillier.keyfile`.

        Security
        --------
        The text holds the secret primes p and q in plain text: whoever reads it can
        decrypt everything encrypted under this key. Protect it as a secret (file
        permissions, encryption at rest); this package never logs it.
        """
        from . import keyfile

        return keyfile.private_to_json(self)

    @classmethod
    def from_json(
        cls, text: str | bytes, public_key: PaillierPublicKey | None = None
    ) -> PaillierPrivateKey:
        """The private key in a JSON key file (:meth:`to_json`'s, or python-paillier's).

        Parameters
        ----------
        text : str or bytes
            The key file's text.
        public_key : PaillierPublicKey, optional
            The public key the file must belong to; it becomes the key's public key.

        Returns
        -------
        PaillierPrivateKey
            The key.

        Raises
        ------
        TypeError
            ``text`` or ``public_key`` has the wrong type, or a field has the wrong JSON
            type.
        ValueError
            Malformed JSON, a missing field, a wrong ``kty``/``alg``/``key_ops``, a bad
            public part (``pub``), p or q not prime, ``p == q``, ``p * q != n``, or an
            ``hs`` that is not an n-th residue; the message names the field and never
            quotes a secret (see :mod:`ppml_fast.paillier.keyfile`).
        KeyMismatchError
            The file's public part differs from ``public_key`` (a ``ValueError``).

        Security
        --------
        p and q are checked with GMP's Baillie-PSW test plus 40 Miller-Rabin rounds.
        """
        from . import keyfile

        return keyfile.private_from_json(text, public_key)


class PaillierPrivateKeyring(Mapping[PaillierPublicKey, PaillierPrivateKey]):
    """Private keys by public key; decrypts with whichever key matches.

    Acts like a read-only dict keyed by :class:`PaillierPublicKey`; add keys with
    :meth:`add`, remove them with ``del``.

    Parameters
    ----------
    private_keys : iterable of PaillierPrivateKey, optional
        The initial keys.

    Raises
    ------
    TypeError
        An element of ``private_keys`` is not a :class:`PaillierPrivateKey`.
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
        """Add a key (replacing the key for the same public key).

        Parameters
        ----------
        private_key : PaillierPrivateKey
            The key to add.

        Raises
        ------
        TypeError
            ``private_key`` is not a :class:`PaillierPrivateKey`.
        """
        if not isinstance(private_key, PaillierPrivateKey):
            raise TypeError(
                f"private_key should be of type PaillierPrivateKey, not {type(private_key)}"
            )
        self.__keyring[private_key.public_key] = private_key

    def decrypt(self, encrypted_number: EncryptedNumber) -> int | float:
        """Decrypt with the matching key (:meth:`PaillierPrivateKey.decrypt`).

        Raises
        ------
        KeyError
            The keyring has no key for ``encrypted_number``'s public key.
        """
        return self.__keyring[encrypted_number.public_key].decrypt(encrypted_number)

    def decrypt_batch(self, enc: EncryptedArray) -> np.ndarray:
        """Decrypt with the matching key (:meth:`PaillierPrivateKey.decrypt_batch`).

        Raises
        ------
        KeyError
            The keyring has no key for ``enc``'s public key.
        """
        return self.__keyring[enc.public_key].decrypt_batch(enc)
