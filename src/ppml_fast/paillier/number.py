"""One Paillier ciphertext: :class:`EncryptedNumber`, with python-paillier's semantics.

``E(a) E(b) = E(a + b)`` and ``E(a)^k = E(k a)`` mod n^2, so ciphertexts add to
ciphertexts and plaintexts, and multiply by plaintexts; operands at different exponents
are first aligned to the lower one.
"""

from __future__ import annotations

from typing import Any

import gmpy2
import numpy as np

from .._errors import KeyMismatchError
from ._limbs import INTS
from .encoding import EncodedNumber, _check_lower, _check_spread, _negated_encoding
from .keys import PaillierPublicKey


def _scalar_ok(x: Any) -> bool:
    """Whether ``x`` is a plaintext scalar operand (Python or numpy int, float or bool)."""
    return (
        isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, np.bool_)
    ) or isinstance(x, bool)


def _is_encoded(x: Any) -> bool:
    """Whether ``x`` is an EncodedNumber, ours or python-paillier's (duck-typed)."""
    return isinstance(x, EncodedNumber) or (
        not isinstance(x, EncryptedNumber)
        and hasattr(x, "encoding")
        and hasattr(x, "exponent")
        and hasattr(x, "public_key")
        and hasattr(x, "decrease_exponent_to")
    )


class EncryptedNumber:
    """The Paillier encryption of an encoded int or float (python-paillier semantics).

    Supports ``+`` and ``-`` with EncryptedNumber, EncodedNumber, int and float, ``*``
    and ``/`` by EncodedNumber, int and float, and :meth:`ciphertext`,
    :meth:`obfuscate`, :meth:`decrease_exponent_to`. Unsupported operands (another
    EncryptedNumber for ``*``, strings, ...) return ``NotImplemented``, so Python raises
    ``TypeError``.

    Parameters
    ----------
    public_key : PaillierPublicKey
        The key it is encrypted under.
    ciphertext : int
        The ciphertext (in ``[0, n**2)`` for a valid one).
    exponent : int, default 0
        The encoding exponent.

    Raises
    ------
    TypeError
        ``ciphertext`` or ``exponent`` is not an int, or ``public_key`` not a
        :class:`PaillierPublicKey`.

    Security
    --------
    Results of operations are not re-randomised until :meth:`ciphertext` (with
    ``be_secure=True``) or :meth:`obfuscate`: re-randomise before sending one to anyone.
    """

    def __init__(self, public_key: PaillierPublicKey, ciphertext: int, exponent: int = 0):
        if isinstance(ciphertext, EncryptedNumber) or not isinstance(ciphertext, INTS):
            raise TypeError("ciphertext should be an integer")
        if not isinstance(public_key, PaillierPublicKey):
            raise TypeError("public_key should be a PaillierPublicKey")
        self.public_key = public_key
        self.__ciphertext = int(ciphertext)
        if not isinstance(exponent, INTS) or isinstance(exponent, np.bool_):
            raise TypeError(f"exponent should be an int, got {type(exponent).__name__}")
        self.exponent = int(exponent)
        self.__is_obfuscated = False

    @classmethod
    def _make(
        cls, public_key: PaillierPublicKey, ciphertext: int, exponent: int, obfuscated: bool
    ) -> EncryptedNumber:
        """An instance with its obfuscated flag set (for arrays handing out elements)."""
        x = cls(public_key, ciphertext, exponent)
        x.__is_obfuscated = obfuscated
        return x

    def _is_obfuscated(self) -> bool:
        """Whether the ciphertext has been re-randomised since it was last computed."""
        return self.__is_obfuscated

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
        result: EncryptedNumber = self * -1
        return result

    def __truediv__(self, scalar: Any) -> Any:
        if not _scalar_ok(scalar):
            return NotImplemented
        return self.__mul__(1 / scalar)

    def ciphertext(self, be_secure: bool = True) -> int:
        """The ciphertext int.

        Parameters
        ----------
        be_secure : bool, default True
            Obfuscate first when the ciphertext has not been re-randomised since it was
            computed.

        Returns
        -------
        int
            The ciphertext, in ``[0, n**2)`` for a valid one.
        """
        if be_secure and not self.__is_obfuscated:
            self.obfuscate()
        return self.__ciphertext

    def decrease_exponent_to(self, new_exp: int) -> EncryptedNumber:
        """The same value at a lower exponent.

        Parameters
        ----------
        new_exp : int
            The new exponent, at most the current one.

        Returns
        -------
        EncryptedNumber
            This ciphertext raised to ``BASE**(exponent - new_exp)``, at ``new_exp``.

        Raises
        ------
        ValueError
            ``new_exp`` is above the current exponent, or below it by more than
            :data:`~ppml_fast.paillier.encoding.MAX_EXPONENT_SPREAD` (lower in steps).
        """
        _check_lower(new_exp, self.exponent)
        _check_spread(self.exponent - new_exp, "decrease_exponent_to")
        multiplied: EncryptedNumber = self * pow(EncodedNumber.BASE, self.exponent - new_exp)
        multiplied.exponent = new_exp
        return multiplied

    def obfuscate(self) -> None:
        """Re-randomise: multiply the ciphertext by a fresh obfuscator (r^n or h_s^alpha).

        Security
        --------
        The obfuscator is the key's (:class:`PaillierPublicKey`, ``obfuscation``), drawn
        from the operating system's CSPRNG.
        """
        pk = self.public_key
        obf = pk._obfuscator()
        self.__ciphertext = int(gmpy2.f_mod(gmpy2.mul(self.__ciphertext, obf), pk.nsquare))
        self.__is_obfuscated = True

    def _add_scalar(self, scalar: Any) -> EncryptedNumber:
        """E(self + scalar), the scalar encoded at no more than this exponent."""
        encoded = EncodedNumber.encode(self.public_key, scalar, max_exponent=self.exponent)
        return self._add_encoded(encoded)

    def _add_encoded(self, encoded: Any) -> EncryptedNumber:
        """E(self + encoded), at the lower of the two exponents."""
        if self.public_key != encoded.public_key:
            raise KeyMismatchError(
                "Attempted to add numbers encoded against different public keys!"
            )
        a, b = self._aligned(encoded)
        encrypted_scalar = a.public_key.raw_encrypt(b.encoding, 1)
        sum_ciphertext = a._raw_add(a.ciphertext(False), encrypted_scalar)
        return EncryptedNumber(a.public_key, sum_ciphertext, a.exponent)

    def _add_encrypted(self, other: EncryptedNumber) -> EncryptedNumber:
        """E(self + other), at the lower of the two exponents."""
        if self.public_key != other.public_key:
            raise KeyMismatchError(
                "Attempted to add numbers encrypted against different public keys!"
            )
        a, b = self._aligned(other)
        sum_ciphertext = a._raw_add(a.ciphertext(False), b.ciphertext(False))
        return EncryptedNumber(a.public_key, sum_ciphertext, a.exponent)

    def _aligned(self, other: Any) -> tuple[EncryptedNumber, Any]:
        """self and other (encrypted or encoded) at the lower of their two exponents.

        Raises ``ValueError`` when they are more than ``MAX_EXPONENT_SPREAD`` apart, before
        either is lowered.
        """
        _check_spread(abs(self.exponent - other.exponent), "add")
        if self.exponent > other.exponent:
            return self.decrease_exponent_to(other.exponent), other
        if self.exponent < other.exponent:
            return self, other.decrease_exponent_to(self.exponent)
        return self, other

    def _raw_add(self, e_a: int, e_b: int) -> int:
        """``e_a e_b mod n^2``: the ciphertext of the sum."""
        return int(gmpy2.f_mod(gmpy2.mul(e_a, e_b), self.public_key.nsquare))

    def _raw_mul(self, plaintext: int) -> int:
        """E(a * plaintext) for an encoding ``plaintext`` in ``[0, n)``.

        Encodings of negative numbers raise the inverse ciphertext to ``n - plaintext``.
        Plaintext multipliers use variable-time powers (their time depends on the caller's
        own plaintext, as in python-paillier).
        """
        if not isinstance(plaintext, INTS):
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
