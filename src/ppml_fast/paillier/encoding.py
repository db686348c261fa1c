"""Encoding signed ints and floats as Paillier plaintexts: :class:`EncodedNumber`, and the
same rule vectorised over arrays for :class:`~ppml_fast.paillier.EncryptedArray`.

A value x is ``mantissa * BASE**exponent`` with BASE = 16 and the mantissa stored mod n:
encodings in ``[0, max_int]`` are non-negative, ``[n - max_int, n)`` negative, and those in
between mean overflow (max_int = n // 3 - 1). This is python-paillier's encoding, so
encodings and the ciphertexts made from them move between the two libraries unchanged.
"""

from __future__ import annotations

import decimal
import fractions
import math
import sys
from typing import TYPE_CHECKING, Any

import numpy as np

from .._errors import EncodingOverflowError
from ._limbs import INTS, from_limbs, nlimbs, to_limbs

if TYPE_CHECKING:
    from .keys import PaillierPublicKey


class EncodedNumber:
    """A signed int or float as ``mantissa * BASE**exponent``, the mantissa stored mod n.

    Encodings in ``[0, max_int]`` are non-negative, ``[n - max_int, n)`` negative, and
    anything in between signals overflow. Subclass and change ``BASE``/``LOG2_BASE`` for
    another base (as in python-paillier).

    Parameters
    ----------
    public_key : PaillierPublicKey
        The key whose n the mantissa is reduced by.
    encoding : int
        The mantissa mod n, in ``[0, n)``.
    exponent : int
        The power of ``BASE`` the mantissa is scaled by.

    Attributes
    ----------
    BASE : int
        16.
    LOG2_BASE : float
        ``log2(BASE)``.
    FLOAT_MANTISSA_BITS : int
        53 (the mantissa bits of a float64).
    public_key, encoding, exponent
        As given.
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

        Parameters
        ----------
        public_key : PaillierPublicKey
            The key to encode for.
        scalar : int or float
            The value (Python or numpy int or float).
        precision : float, optional
            The absolute precision to keep: the exponent becomes
            ``floor(log_BASE(precision))`` and the value is rounded (half to even) to a
            multiple of ``BASE**exponent``.
        max_exponent : int, optional
            An upper bound on the exponent.

        Returns
        -------
        EncodedNumber
            An instance of ``cls``.

        Raises
        ------
        TypeError
            ``scalar`` is not an int or float.
        EncodingOverflowError
            ``|mantissa| > max_int`` (a ``ValueError`` and an ``OverflowError``).

        Notes
        -----
        With ``precision=None`` ints get exponent 0 and floats the exponent that holds
        their 53-bit mantissa exactly, ``floor((frexp(x)[1] - 53) / log2(BASE))``.
        """
        max_int, n = _key_ints(public_key)
        scalar = _check_scalar(scalar, "scalar", exact=precision is not None)
        if precision is None:
            if isinstance(scalar, int):
                prec_exponent = 0
            else:
                bin_flt_exponent = math.frexp(scalar)[1]
                bin_lsb_exponent = bin_flt_exponent - cls.FLOAT_MANTISSA_BITS
                prec_exponent = math.floor(bin_lsb_exponent / cls.LOG2_BASE)
        else:
            prec_exponent = math.floor(math.log(_check_precision(precision), cls.BASE))
        if max_exponent is not None:
            max_exponent = _check_exponent(max_exponent, "max_exponent")
        exponent = prec_exponent if max_exponent is None else min(max_exponent, prec_exponent)
        # scalar = num / den exactly (ints, floats, Fractions and Decimals all say so).
        # |scalar| * BASE**-exponent has about log2|scalar| - exponent*log2(BASE) bits: a
        # mantissa certain to exceed max_int is refused before BASE**-exponent is built.
        num, den = scalar.as_integer_ratio()
        approx_bits = num.bit_length() - den.bit_length() - exponent * cls.LOG2_BASE
        if num and approx_bits > max_int.bit_length() + 2:
            raise EncodingOverflowError(_overflow_message(max_int, scalar, exponent, max_exponent))
        int_rep = _round_scaled(num, den, cls.BASE, exponent) if num else 0
        if abs(int_rep) > max_int:
            raise EncodingOverflowError(_overflow_message(max_int, scalar, exponent, max_exponent))
        return cls(public_key, int_rep % n, exponent)

    def decode(self) -> int | float:
        """The encoded value.

        Returns
        -------
        int or float
            An int when ``exponent >= 0``, else a float.

        Raises
        ------
        ValueError
            The encoding is ``>= n`` (corrupted).
        OverflowError
            The encoding is in the overflow band, or the value is too large for a float.
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
            value: int = mantissa * self.BASE**self.exponent
            return value
        try:
            quotient: float = mantissa / self.BASE**-self.exponent
        except OverflowError as e:
            raise OverflowError("decoded result too large for a float") from e
        return quotient

    def decrease_exponent_to(self, new_exp: int) -> EncodedNumber:
        """The same value at a lower exponent.

        Parameters
        ----------
        new_exp : int
            The new exponent, at most the current one.

        Returns
        -------
        EncodedNumber
            The mantissa times ``BASE**(exponent - new_exp)`` (mod n), at ``new_exp``.

        Raises
        ------
        ValueError
            ``new_exp`` is above the current exponent, or below it by more than
            :data:`MAX_EXPONENT_SPREAD` (``BASE**spread`` alone would take minutes and
            gigabytes; lower in steps if that is intended).
        """
        _check_lower(new_exp, self.exponent)
        _check_spread(self.exponent - new_exp, "decrease_exponent_to")
        factor = pow(self.BASE, self.exponent - new_exp)
        new_enc = self.encoding * factor % self.public_key.n
        return self.__class__(self.public_key, new_enc, new_exp)


def _negated_encoding(encoded: Any) -> Any:
    """The encoding of minus the value (same class, key and exponent)."""
    return encoded.__class__(
        encoded.public_key, (-encoded.encoding) % encoded.public_key.n, encoded.exponent
    )


def _round_scaled(num: int, den: int, base: int, exponent: int) -> int:
    """``round(num / den * base**-exponent)``, halves to even, in exact integer arithmetic
    (``den > 0``): what ``round(Fraction(num, den) * Fraction(base) ** -exponent)`` gives,
    without building Fractions."""
    scale: int = base ** abs(exponent)
    if exponent <= 0:
        p, q = num * scale, den
    else:
        p, q = num, den * scale
    if q == 1:
        return p
    quo, rem = divmod(p, q)  # floor: p / q = quo + rem / q with 0 <= rem < q
    twice = 2 * rem
    if twice > q or (twice == q and quo & 1):
        quo += 1
    return quo


#: The bound on an encoding exponent's magnitude. Exponents that hold an int or a float
#: lie within about +-300; ciphertext products add exponents. Beyond this bound
#: ``BASE**-exponent`` alone would need more memory than a machine has.
MAX_EXPONENT = 2**31

#: The largest exponent difference that aligning two operands will bridge. Aligning
#: lowers the higher exponent: a ciphertext is raised to ``BASE**spread`` (``4 * spread``
#: modular squarings mod n^2), so exponents a hostile sender sets far apart (say one
#: element at ``-2**22`` in an array from bytes) would cost tens of seconds per element.
#: Honest data stays far inside the bound: an exactly encoded float has an exponent in
#: [-282, 242] (``floor((e2 - 53) / 4)`` for the binary exponents e2 of float64, subnormals
#: included), so two encoded floats differ by at most 524 and a product of two (exponents
#: add) lies within [-564, 484]; 4096 leaves room for chains of several such products
#: while one alignment step costs at most 16384 squarings.
MAX_EXPONENT_SPREAD = 4096


def _key_ints(public_key: Any) -> tuple[int, int]:
    """``(max_int, n)`` of a Paillier public key (ours, or one duck-typed like it).

    Raises ``TypeError`` naming ``public_key`` for anything else.
    """
    max_int = getattr(public_key, "max_int", None)
    n = getattr(public_key, "n", None)
    ok = (
        isinstance(max_int, INTS)
        and isinstance(n, INTS)
        and not isinstance(max_int, (bool, np.bool_))
        and not isinstance(n, (bool, np.bool_))
    )
    if not ok:
        raise TypeError(f"public_key must be a PaillierPublicKey, got {type(public_key).__name__}")
    return int(max_int), int(n)  # type: ignore[arg-type]


def _check_scalar(x: Any, name: str, *, exact: bool = False) -> Any:
    """``x`` as a Python int or finite float (numpy scalars converted).

    With ``exact`` (a ``precision`` is given, so the value is rounded as a fraction),
    :class:`fractions.Fraction` and finite :class:`decimal.Decimal` values pass as well.

    Raises
    ------
    TypeError
        ``x`` is not a real number (named ``name``).
    ValueError
        ``x`` is NaN or infinite.
    """
    if isinstance(x, np.bool_):
        x = bool(x)
    elif isinstance(x, np.integer):
        x = int(x)
    elif isinstance(x, np.floating):
        x = float(x)
    if isinstance(x, (int, float)) or (
        exact and isinstance(x, (fractions.Fraction, decimal.Decimal))
    ):
        if isinstance(x, float) and not math.isfinite(x):
            raise ValueError(f"{name} must be finite, got {x!r}")
        if isinstance(x, decimal.Decimal) and not x.is_finite():
            raise ValueError(f"{name} must be finite, got {x!r}")
        return x
    raise TypeError(
        f"{name} must be an int or float, got {type(x).__name__} "
        f"(Don't know the precision of type {type(x)}.)"
    )


def _check_precision(precision: Any) -> Any:
    """``precision`` if it is a finite real number > 0 (numpy ones as Python), else
    ``TypeError`` / ``ValueError`` naming it."""
    if isinstance(precision, (bool, np.bool_)) or not isinstance(
        precision, (int, float, np.integer, np.floating)
    ):
        raise TypeError(f"precision must be a number, got {type(precision).__name__}")
    precision = precision.item() if isinstance(precision, np.generic) else precision
    if not ((isinstance(precision, int) or math.isfinite(precision)) and precision > 0):
        raise ValueError(f"precision must be a finite number > 0, got {precision!r}")
    return precision


def _check_exponent(e: Any, name: str) -> int:
    """``e`` as an int within ``+-MAX_EXPONENT`` (numpy ints too), else Type/ValueError."""
    if isinstance(e, (bool, np.bool_)) or not isinstance(e, INTS):
        raise TypeError(f"{name} must be an int, got {type(e).__name__}")
    v = int(e)
    if not -MAX_EXPONENT < v < MAX_EXPONENT:
        raise ValueError(f"{name} must be within +/-{MAX_EXPONENT}, got {v}")
    return v


def _overflow_message(max_int: int, scalar: Any, exponent: int, max_exponent: Any) -> str:
    """The message of an :class:`EncodingOverflowError` from :meth:`EncodedNumber.encode`."""
    why = "max_exponent or precision" if max_exponent is not None else "precision"
    # a huge int is described, not printed (repr refuses ints beyond 4300 digits)
    shown = (
        f"<int of {scalar.bit_length()} bits>"
        if isinstance(scalar, int) and scalar.bit_length() > 1024
        else repr(scalar)
    )
    return (
        f"Integer needs to be within +/- {max_int}: the mantissa of scalar {shown} at "
        f"exponent {exponent} is too large (coarser {why}, or a larger key)"
    )


def _check_lower(new_exp: int, exponent: int) -> None:
    """Raise ``ValueError`` unless ``new_exp <= exponent``."""
    if new_exp > exponent:
        raise ValueError(
            f"New exponent {new_exp} should be more negative than old exponent {exponent}"
        )


def _check_spread(spread: int, operation: str) -> None:
    """Raise ``ValueError`` naming ``operation`` when aligning exponents would lower one by
    more than :data:`MAX_EXPONENT_SPREAD` (checked before any modular power)."""
    if spread > MAX_EXPONENT_SPREAD:
        raise ValueError(
            f"{operation}: cannot align exponents that differ by {spread}, more than "
            f"MAX_EXPONENT_SPREAD = {MAX_EXPONENT_SPREAD} (encoded ints and floats never "
            "differ by that much; lower the exponents explicitly in smaller steps if this "
            "is intended)"
        )


def _float_exponents(x: np.ndarray, base_log2: float = 4.0) -> np.ndarray:
    """python-paillier's exact-float exponents ``floor((frexp(x)[1] - 53) / log2(BASE))``.

    Parameters
    ----------
    x : numpy.ndarray
        Finite floats.
    base_log2 : float, default 4.0
        ``log2(BASE)``.

    Returns
    -------
    numpy.ndarray
        int64 exponents of ``x``'s shape.
    """
    _, e2 = np.frexp(x)
    exps: np.ndarray = np.floor(
        (e2.astype(np.int64) - EncodedNumber.FLOAT_MANTISSA_BITS) / base_log2
    ).astype(np.int64)
    return exps


def _encode_array(
    pk: PaillierPublicKey,
    x: np.ndarray,
    *,
    precision: float | None = None,
    max_exponent: np.ndarray | int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Encode a flat array as :meth:`EncodedNumber.encode` would encode each element.

    Parameters
    ----------
    pk : PaillierPublicKey
        The key to encode for.
    x : numpy.ndarray
        A flat int64, uint64, float64 or object (Python int) array.
    precision : float, optional
        As in :meth:`EncodedNumber.encode`.
    max_exponent : int or numpy.ndarray, optional
        Upper bounds on the exponents (one, or one per element).

    Returns
    -------
    mabs : numpy.ndarray
        ``(N, L)`` uint64 limbs of the mantissas' absolute values.
    neg : numpy.ndarray
        ``(N,)`` uint8, 1 where the mantissa is negative.
    exps : numpy.ndarray
        ``(N,)`` int64 exponents.

    Raises
    ------
    TypeError
        ``precision`` is not a number.
    ValueError
        NaN or infinite values, or ``precision`` not finite and > 0.
    EncodingOverflowError
        A mantissa beyond ``+-max_int``.

    Notes
    -----
    Mantissas that fit 62 bits are computed in numpy; the rest (big ints, large floats)
    element by element with exact ``Fraction`` arithmetic.
    """
    count = x.size
    if x.dtype.kind == "f" and count and not np.isfinite(x).all():
        raise ValueError("values must be finite (NaN or inf found)")
    if precision is not None:
        precision = _check_precision(precision)
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
    width = nlimbs(pk.n)
    mags, negs = [], np.zeros(count, np.uint8)
    base = fractions.Fraction(EncodedNumber.BASE)
    limit_bits = pk.max_int.bit_length() + 2
    for i, v in enumerate(x.tolist()):
        frac, e = fractions.Fraction(v), int(exps[i])
        # as in EncodedNumber.encode: a mantissa certain to exceed max_int is refused before
        # BASE**-e is built (an exponent near -2**31 would make it gigabytes), and zero
        # needs no power at all
        approx_bits = frac.numerator.bit_length() - frac.denominator.bit_length() - 4 * e
        if frac and approx_bits > limit_bits:
            raise EncodingOverflowError(
                f"value at flat index {i} needs a mantissa within +/- {pk.max_int} at "
                f"exponent {e} (it would have about {approx_bits} bits)"
            )
        int_rep = round(frac * base**-e) if frac else 0
        if abs(int_rep) > pk.max_int:
            raise EncodingOverflowError(
                f"value at flat index {i} needs a mantissa within +/- {pk.max_int} at "
                f"exponent {e} (it has {int_rep.bit_length()} bits)"
            )
        negs[i] = int_rep < 0
        mags.append(abs(int_rep))
    return to_limbs(mags, width), negs, exps


def _decode_array(mabs: np.ndarray, sign: np.ndarray, exps: np.ndarray) -> np.ndarray:
    """Signed mantissas times ``16**exps``, as :meth:`EncodedNumber.decode` decodes each.

    Parameters
    ----------
    mabs : numpy.ndarray
        ``(N, L)`` uint64 limbs of the mantissas' absolute values.
    sign : numpy.ndarray
        ``(N,)`` uint8, 1 where the mantissa is negative.
    exps : numpy.ndarray
        ``(N,)`` int64 exponents.

    Returns
    -------
    numpy.ndarray
        ``(N,)`` values: int64 when every exponent is >= 0 and every value fits (an
        object array of Python ints when one does not), else float64.

    Raises
    ------
    OverflowError
        A value too large for a float.
    """
    count = exps.size
    if count == 0:
        return np.zeros(0, np.int64)
    small = count == 0 or (not mabs[:, 1:].any() and int(mabs[:, 0].max()) < 2**53)
    if count and exps.min() >= 0:  # integers
        if small and exps.max() * 4 + 53 < 63:
            m = mabs[:, 0].astype(np.int64)
            m = np.where(sign == 1, -m, m)
            shifted: np.ndarray = m << (4 * exps)
            return shifted
        vals = [
            (-v if s else v) * 16 ** int(e)
            for v, s, e in zip(from_limbs(mabs), sign.tolist(), exps.tolist(), strict=True)
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
    triples = zip(from_limbs(mabs), sign.tolist(), exps.tolist(), strict=True)
    for i, (v, s, e) in enumerate(triples):
        mant = -v if s else v
        try:
            out[i] = mant * 16**e if e >= 0 else mant / 16**-e
        except OverflowError as err:
            raise OverflowError("decoded result too large for a float") from err
    return out
