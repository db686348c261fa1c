"""Arrays of Paillier ciphertexts: :class:`EncryptedArray`, whose operations run as
batched GMP kernels, and the batch encryption and decryption behind the keys'
``encrypt_batch`` and ``decrypt_batch``.

Ciphertexts are stored as rows of 64-bit limbs (``shape + (limbs of n^2,)``), exponents
as an int64 array of the same shape. Every operation is one native kernel call over all
rows (OpenMP, GIL released): ``+`` multiplies ciphertexts (or a ciphertext by
``g^m = 1 + n m``) mod n^2, ``*`` and ``@`` raise ciphertexts to plaintext powers, and
exponents are aligned per element, as python-paillier aligns each pair.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from .._errors import EncodingOverflowError, KeyMismatchError
from .._native import paillier as _kernels
from .._types import ArrayLike
from . import _codec
from ._limbs import from_limbs, nlimbs, threads, to_limbs, vec
from .encoding import (
    _check_spread,
    _decode_array,
    _encode_array,
    _float_exponents,
    _negated_encoding,
)
from .keys import PaillierPrivateKey, PaillierPublicKey, _check_obfuscation
from .number import EncryptedNumber, _is_encoded, _scalar_ok


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
    * :meth:`to_bytes` / :meth:`from_bytes`, :meth:`to_json` / :meth:`from_json`, pickle.

    Build one with :meth:`PaillierPublicKey.encrypt_batch`, :meth:`from_numbers` or
    :meth:`from_ciphertexts`; the constructor itself raises ``TypeError``.

    Attributes
    ----------
    public_key : PaillierPublicKey
        The key every element is encrypted under.

    Security
    --------
    As in python-paillier, results of operations are not re-randomised: call
    :meth:`obfuscate`, or serialise with ``be_secure=True`` (the default), before they
    leave this machine.
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
        """An instance around ciphertext limbs and exponents of matching shapes."""
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
        cls, public_key: PaillierPublicKey, ciphertexts: ArrayLike, exponents: ArrayLike = 0
    ) -> EncryptedArray:
        """An array from ciphertext ints and their exponents.

        Parameters
        ----------
        public_key : PaillierPublicKey
            The key they are encrypted under.
        ciphertexts : array_like of int
            The ciphertexts, in ``[0, n**2)``, in any nesting numpy accepts.
        exponents : array_like of int, default 0
            The exponents, broadcast to the ciphertexts' shape, within ``+-2**31``.

        Returns
        -------
        EncryptedArray
            Of the ciphertexts' shape; not marked obfuscated.

        Raises
        ------
        TypeError
            Ciphertexts or exponents that are not ints, or not a PaillierPublicKey.
        ValueError
            A ciphertext outside ``[0, n**2)``, exponents of another shape or beyond
            ``+-2**31``.
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
        _codec.check_exponents(exps, "exponents")
        width = nlimbs(n2)
        c = to_limbs(flat, width).reshape(*arr.shape, width)
        return cls._wrap(public_key, c, exps.astype(np.int64), obfuscated=False)

    @classmethod
    def from_numbers(cls, numbers: Any) -> EncryptedArray:
        """An array from EncryptedNumber objects under one key.

        Parameters
        ----------
        numbers : EncryptedNumber, sequence of EncryptedNumber or object array
            The numbers (nested sequences give more dimensions); an EncryptedArray is
            returned as it is.

        Returns
        -------
        EncryptedArray
            Of the input's shape; marked obfuscated when every number is.

        Raises
        ------
        TypeError
            An element is not an EncryptedNumber.
        ValueError
            Empty input (the key is unknown), an invalid ciphertext or an exponent beyond
            ``+-2**31``.
        KeyMismatchError
            Numbers under different keys.
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
        obf = all(v._is_obfuscated() for v in flat)
        width = nlimbs(pk.nsquare)
        cts = [v.ciphertext(False) for v in flat]
        if any(not 0 <= c < pk.nsquare for c in cts):
            raise ValueError("numbers hold a ciphertext outside [0, n**2) (not a valid ciphertext)")
        c = to_limbs(cts, width).reshape(*arr.shape, width)
        try:
            exps = np.array([v.exponent for v in flat], np.int64).reshape(arr.shape)
        except OverflowError as e:
            raise ValueError(f"an exponent is beyond +/-{_codec.MAX_EXP}") from e
        _codec.check_exponents(exps, "numbers")
        return cls._wrap(pk, c, exps, obfuscated=obf)

    def tolist(self) -> Any:
        """The elements as nested lists of EncryptedNumber (as ``ndarray.tolist`` nests).

        Returns
        -------
        list or EncryptedNumber
            Nested lists, or one EncryptedNumber for a 0-d array.
        """
        return np.asarray(self.to_numbers()).tolist() if self.ndim else self.to_numbers()[()]

    def to_numbers(self) -> np.ndarray:
        """The elements as EncryptedNumber objects.

        Returns
        -------
        numpy.ndarray
            An object array of the same shape.
        """
        flat = self._c.reshape(-1, self._c.shape[-1])
        out = np.empty(flat.shape[0], dtype=object)
        pairs = zip(from_limbs(flat), self._exp.reshape(-1).tolist(), strict=True)
        for i, (c, e) in enumerate(pairs):
            out[i] = EncryptedNumber._make(self.public_key, c, e, self._obfuscated)
        return out.reshape(self.shape)

    def ciphertexts(self, be_secure: bool = True) -> np.ndarray:
        """The ciphertext ints.

        Parameters
        ----------
        be_secure : bool, default True
            Obfuscate first when the values came out of operations.

        Returns
        -------
        numpy.ndarray
            An object array of ints, of the array's shape.
        """
        if be_secure and not self._obfuscated:
            self.obfuscate()
        out = np.empty(self.size, dtype=object)
        out[:] = from_limbs(self._c.reshape(-1, self._c.shape[-1])) if self.size else []
        return out.reshape(self.shape)

    @property
    def exponents(self) -> np.ndarray:
        """A copy of the per-element exponents (int64, the array's shape)."""
        return self._exp.copy()

    @property
    def shape(self) -> tuple[int, ...]:
        """The array's shape."""
        return tuple(self._exp.shape)

    @property
    def ndim(self) -> int:
        """The number of dimensions."""
        return self._exp.ndim

    @property
    def size(self) -> int:
        """The number of ciphertexts."""
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
                self.public_key, from_limbs(flat[i : i + 1])[0], int(exps[i]), self._obfuscated
            )
        pos = np.asarray(pos)
        return EncryptedArray._wrap(
            self.public_key,
            flat[pos.reshape(-1)].reshape(*pos.shape, flat.shape[1]),
            exps[pos],
            self._obfuscated,
        )

    def reshape(self, *shape: Any) -> EncryptedArray:
        """The same ciphertexts in another shape.

        Parameters
        ----------
        *shape : int or tuple of int
            The new shape, as ``numpy.ndarray.reshape`` takes it.

        Returns
        -------
        EncryptedArray
            The same ciphertexts and exponents in the new shape.
        """
        try:
            exp = self._exp.reshape(*shape)
        except (TypeError, ValueError, OverflowError) as e:
            # numpy's messages do not say which argument was wrong
            err = TypeError if isinstance(e, TypeError) else ValueError
            raise err(f"cannot reshape an array of size {self.size} into shape {shape!r}") from e
        width = self._c.shape[-1]
        return EncryptedArray._wrap(
            self.public_key, self._c.reshape(*exp.shape, width), exp, self._obfuscated
        )

    def ravel(self) -> EncryptedArray:
        """The array flattened to 1-D (C order)."""
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
        """A copy with its own ciphertext and exponent arrays."""
        return EncryptedArray._wrap(
            self.public_key, self._c.copy(), self._exp.copy(), self._obfuscated
        )

    # -- randomisation --------------------------------------------------------------------
    def obfuscate(self, obfuscation: str | None = None) -> None:
        """Re-randomise every ciphertext in place.

        Parameters
        ----------
        obfuscation : {"djn", "classic"}, optional
            Fresh ``h_s^alpha`` or ``r^n`` factors (default: the key's obfuscation).

        Raises
        ------
        ValueError
            An unknown ``obfuscation``.

        Security
        --------
        Every ciphertext gets its own factor drawn from the package's secure stream, on
        all cores with the GIL released.
        """
        pk = self.public_key
        mode = pk.obfuscation if obfuscation is None else _check_obfuscation(obfuscation)
        flat = self._c.reshape(-1, self._c.shape[-1])
        self._c = pk._obfuscate_rows(flat, False, mode=mode).reshape(self._c.shape)
        self._obfuscated = True

    # -- helpers ----------------------------------------------------------------------------
    def _flat(self) -> np.ndarray:
        """The ciphertext rows as an ``(N, L)`` array."""
        return self._c.reshape(-1, self._c.shape[-1])

    def _check_key(self, other_key: Any) -> None:
        """Raise KeyMismatchError unless ``other_key`` is this array's key."""
        if other_key != self.public_key:
            raise KeyMismatchError(
                "Attempted to combine numbers encrypted against different public keys!"
            )

    def _lowered(self, target: np.ndarray, operation: str) -> np.ndarray:
        """Flat ciphertext rows with each exponent lowered to ``target`` (<= current)."""
        return _lower(
            self.public_key, self._flat(), self._exp.reshape(-1), target.reshape(-1), operation
        )

    def decrease_exponent_to(self, new_exp: ArrayLike) -> EncryptedArray:
        """The same values at lower exponents.

        Parameters
        ----------
        new_exp : int or array_like of int
            The new exponents, broadcast to the array's shape, each at most the current.

        Returns
        -------
        EncryptedArray
            Each ciphertext raised to ``BASE**(exponent - new_exp)``; not obfuscated.

        Raises
        ------
        ValueError
            Some ``new_exp`` is above the current exponent, or below it by more than
            :data:`~ppml_fast.paillier.encoding.MAX_EXPONENT_SPREAD` (lower in steps).
        """
        target_in = _exponent_array(new_exp, "new_exp")
        try:
            target = np.broadcast_to(target_in, self.shape)
        except ValueError as e:
            raise ValueError(
                f"new_exp of shape {target_in.shape} does not broadcast to {self.shape}"
            ) from e
        if (target > self._exp).any():
            raise ValueError("new_exp: new exponents should be more negative than the old ones")
        c = self._lowered(np.array(target, dtype=np.int64), "decrease_exponent_to")
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
            if ea.size:  # both sides checked before either is lowered
                _check_spread(int(np.abs(ea - eb).max()), "add")
            ca = _lower(pk, _bcast_rows(self, shape), ea, target, "add")
            cb = _lower(pk, _bcast_rows(other, shape), eb, target, "add")
            out = np.empty_like(ca)
            if out.shape[0]:
                _kernels.mulmod(ca, cb, pk._limb("n2"), out, threads())
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
            if ea.size:  # before the encoding or a ciphertext is lowered
                _check_spread(int(np.abs(ea - eb).max()), "add")
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
        ca = _lower(pk, _bcast_rows(self, shape), ea, target, "add")
        out = _times_plain_factor(pk, ca, mabs, neg)
        return EncryptedArray._wrap(
            pk, out.reshape(*shape, out.shape[1]), target.reshape(shape), False
        )

    def __radd__(self, other: Any) -> Any:
        return self.__add__(other)

    def __neg__(self) -> EncryptedArray:
        result: EncryptedArray = self * -1
        return result

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
            nbad = _kernels.powm(
                ca,
                np.ascontiguousarray(mabs),
                np.ascontiguousarray(neg),
                pk._limb("n2"),
                False,
                out,
                bad,
                threads(),
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
        """The encrypted sum over ``axis``: the product of the ciphertexts mod n^2.

        Parameters
        ----------
        axis : int or tuple of int, optional
            The axes to sum over (default: all).

        Returns
        -------
        EncryptedNumber or EncryptedArray
            An EncryptedNumber when summing over all axes, else an array of the remaining
            axes. Each sum is at the minimum exponent of its terms (the others are
            lowered to it first); an empty sum is E(0) = 1. Not obfuscated.

        Raises
        ------
        numpy.exceptions.AxisError
            An axis out of range.
        ValueError
            A repeated axis, or the exponents of one sum more than
            :data:`~ppml_fast.paillier.encoding.MAX_EXPONENT_SPREAD` apart.
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
            pk,
            np.ascontiguousarray(c).reshape(-1, width),
            e2.reshape(-1),
            np.repeat(target, k),
            "sum",
        )
        out = np.empty((groups, width), np.uint64)
        if groups:
            _kernels.prod_groups(
                np.ascontiguousarray(rows).reshape(groups, k, width),
                pk._limb("n2"),
                out,
                threads(),
            )
        if axis is None:
            return EncryptedNumber._make(pk, from_limbs(out)[0], int(target[0]), False)
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

    def dot(self, other: ArrayLike) -> Any:
        """The product ``self @ other`` with a plaintext matrix or vector.

        Parameters
        ----------
        other : array_like
            A 1-D or 2-D plaintext array of ints or floats.

        Returns
        -------
        EncryptedArray or EncryptedNumber
            As numpy's ``matmul`` shapes it (an EncryptedNumber for two 1-D operands).

        Raises
        ------
        ValueError
            Operand shapes numpy's ``matmul`` refuses, non-finite values, or exponents of
            ``self`` more than :data:`~ppml_fast.paillier.encoding.MAX_EXPONENT_SPREAD`
            apart (they are aligned to their minimum first).
        """
        return self.__matmul__(other)

    # -- serialisation ------------------------------------------------------------------------
    def to_bytes(self, be_secure: bool = True) -> bytes:
        """A compact binary form.

        Parameters
        ----------
        be_secure : bool, default True
            Obfuscate first when the values came out of operations.

        Returns
        -------
        bytes
            :attr:`nbytes` bytes: the magic ``PPMLPAI1``, the header length (4 bytes), a
            JSON header ``{"n": hex, "shape", "limbs"}``, the int64 exponents and the
            64-bit limbs of the ciphertexts, little-endian and in C order.
        """
        if be_secure and not self._obfuscated:
            self.obfuscate()
        return _codec.to_bytes(self.public_key.n, self._exp, self._c)

    @property
    def nbytes(self) -> int:
        """The length of :meth:`to_bytes`' output (what sending the array costs)."""
        return _codec.nbytes(self.public_key.n, self._exp, self._c)

    @classmethod
    def from_bytes(cls, data: bytes, public_key: PaillierPublicKey | None = None) -> EncryptedArray:
        """The inverse of :meth:`to_bytes`.

        Parameters
        ----------
        data : bytes
            :meth:`to_bytes`' output.
        public_key : PaillierPublicKey, optional
            The expected key, checked against the data's n (default: a new key with
            that n).

        Returns
        -------
        EncryptedArray
            Marked obfuscated.

        Raises
        ------
        ValueError
            Malformed data, exponents beyond ``+-2**31`` or a ciphertext ``>= n**2``.
        KeyMismatchError
            ``public_key`` has another n.
        """
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data must be bytes, got {type(data).__name__}")
        pk, exps, c = _codec.from_bytes(data, public_key)
        return cls._wrap(pk, c, exps, obfuscated=True)

    def to_json(self, be_secure: bool = True) -> str:
        """A JSON form with big integers as decimal strings.

        Parameters
        ----------
        be_secure : bool, default True
            Obfuscate first when the values came out of operations.

        Returns
        -------
        str
            ``{"n", "public_key": {"g", "n"}, "shape", "exponents", "ciphertexts"}`` with
            flat lists in C order (the public-key object as in python-paillier's
            serialisation examples; ``n`` also at the top level).
        """
        cts = self.ciphertexts(be_secure=be_secure).reshape(-1).tolist()
        return _codec.to_json(self.public_key, self._exp, cts)

    @classmethod
    def from_json(
        cls, text: str | bytes, public_key: PaillierPublicKey | None = None
    ) -> EncryptedArray:
        """The inverse of :meth:`to_json`.

        Parameters
        ----------
        text : str or bytes
            :meth:`to_json`'s output.
        public_key : PaillierPublicKey, optional
            The expected key, checked against the text's n (default: a new key with that
            n).

        Returns
        -------
        EncryptedArray
            Marked obfuscated.

        Raises
        ------
        ValueError
            Malformed JSON, exponents beyond ``+-2**31`` or a ciphertext outside
            ``[0, n**2)``.
        KeyMismatchError
            ``public_key`` has another n.
        """
        pk, cts, exps = _codec.from_json(text, public_key)
        out = cls.from_ciphertexts(pk, cts, exps)
        out._obfuscated = True
        return out

    def __getstate__(self) -> dict[str, Any]:
        """The pickle state: the key, the limbs, the exponents and the obfuscated flag."""
        return {
            "public_key": self.public_key,
            "c": self._c,
            "exp": self._exp,
            "obfuscated": self._obfuscated,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Restore :meth:`__getstate__`'s state, checked as :meth:`from_bytes` checks its
        input (a pickle may come from anyone).

        Raises
        ------
        TypeError
            A state that is not a dict, or a field of the wrong type or dtype.
        ValueError
            A missing field, ciphertext limbs that are not C-contiguous or not as wide as
            the key's n^2, shapes that differ, exponents beyond ``+-2**31`` or a
            ciphertext ``>= n**2``.
        """
        pk, c, exp, obfuscated = _codec.check_state(state)
        self.public_key = pk
        self._c = c
        self._exp = exp
        self._obfuscated = obfuscated


def _as_number_array(values: Any, name: str) -> np.ndarray:
    """Plaintext operands as an int64, uint64, float64 or object (Python int) array.

    Parameters
    ----------
    values : array_like
        Ints (bools count as ints) or floats up to float64 (float32 is widened); lists of
        Python ints stay exact.
    name : str
        The argument's name, for messages.

    Returns
    -------
    numpy.ndarray
        The values, of their shape.

    Raises
    ------
    TypeError
        Encrypted values, or values that are not ints or floats.
    EncodingOverflowError
        An object array holding an int too large for a float among floats.
    """
    if isinstance(values, (EncryptedArray, EncryptedNumber)):
        raise TypeError(f"{name} must hold plaintext numbers, got {type(values).__name__}")
    if isinstance(values, (list, tuple)):
        # numpy would turn [2**63 + 1, -1] into float64; keep Python ints exact
        try:
            obj = np.asarray(values, dtype=object)
        except ValueError as e:
            raise ValueError(f"{name} must be a rectangular array of numbers: {e}") from e
        flat = obj.reshape(-1).tolist()
        if flat and all(
            isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in flat
        ):
            if all(-(2**63) <= int(v) < 2**63 for v in flat):
                return np.asarray(obj, dtype=np.int64)
            return obj
    try:
        arr = np.asarray(values)
    except (ValueError, OverflowError) as e:
        raise ValueError(f"{name} must be a rectangular array of numbers: {e}") from e
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


def _exponent_array(value: Any, name: str) -> np.ndarray:
    """``value`` (an int or array_like of ints) as int64 exponents within ``+-MAX_EXP``.

    Raises ``TypeError`` (not ints) or ``ValueError`` (ragged, or beyond the bound)
    naming ``name``.
    """
    try:
        arr = np.asarray(value)
    except (ValueError, OverflowError) as e:
        raise ValueError(f"{name} must be an int or an array of ints: {e}") from e
    items = arr.reshape(-1).tolist() if arr.dtype.kind == "O" else None
    if items is not None and all(
        isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in items
    ):
        bad = [v for v in items if not -_codec.MAX_EXP < v < _codec.MAX_EXP]
        if bad:
            raise ValueError(f"{name} must be within +/-{_codec.MAX_EXP}, got {bad[0]}")
        arr = arr.astype(np.int64)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must be ints, got {type(value).__name__} of dtype {arr.dtype}")
    if arr.size and (int(arr.max()) >= _codec.MAX_EXP or int(arr.min()) <= -_codec.MAX_EXP):
        raise ValueError(f"{name} must be within +/-{_codec.MAX_EXP}")
    return arr.astype(np.int64)


def _norm_axes(axis: Any, ndim: int) -> tuple[int, ...]:
    """``axis`` (an int or a tuple) as distinct non-negative axes of an ``ndim``-d array."""

    def _is_int(a: Any) -> bool:
        return isinstance(a, (int, np.integer)) and not isinstance(a, (bool, np.bool_))

    if _is_int(axis):
        axes: tuple[Any, ...] = (axis,)
    elif isinstance(axis, (tuple, list)) and all(_is_int(a) for a in axis):
        axes = tuple(axis)
    else:
        raise TypeError(f"axis must be None, an int or a tuple of ints, got {axis!r:.80}")
    out = []
    for a in axes:
        a = int(a)
        if not -ndim <= a < ndim:
            raise np.exceptions.AxisError(a, ndim)
        out.append(a % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"repeated axis in axis={axis!r}")
    return tuple(out)


def _bcast_rows(a: EncryptedArray, shape: tuple[int, ...]) -> np.ndarray:
    """``a``'s ciphertext rows broadcast to ``shape``, as a flat C-contiguous ``(N, L)``."""
    width = a._c.shape[-1]
    if a.shape == tuple(shape):
        return a._c.reshape(-1, width)
    return np.ascontiguousarray(np.broadcast_to(a._c, (*shape, width))).reshape(-1, width)


def _lower(
    pk: PaillierPublicKey, rows: np.ndarray, exps: np.ndarray, target: np.ndarray, operation: str
) -> np.ndarray:
    """Ciphertext rows with their exponents lowered: ``c^(16^(e - t))`` where ``e > t``.

    Parameters
    ----------
    pk : PaillierPublicKey
        The key.
    rows : numpy.ndarray
        ``(N, L)`` ciphertext limbs.
    exps, target : numpy.ndarray
        ``(N,)`` current and target exponents (``target <= exps``).
    operation : str
        The operation aligning, for the error message.

    Returns
    -------
    numpy.ndarray
        ``rows`` itself when nothing changes, else a new ``(N, L)`` array.

    Raises
    ------
    ValueError
        An exponent to lower by more than
        :data:`~ppml_fast.paillier.encoding.MAX_EXPONENT_SPREAD`, before any power is
        computed.

    Notes
    -----
    The multiplier is public (a power of 16), so the variable-time power is used.
    """
    diff = np.asarray(exps, np.int64) - np.asarray(target, np.int64)
    sel = np.flatnonzero(diff > 0)
    if sel.size == 0:
        return rows
    _check_spread(int(diff[sel].max()), operation)
    bits = 4 * diff[sel]
    width = int(bits.max()) // 64 + 1
    e = np.zeros((sel.size, width), np.uint64)
    e[np.arange(sel.size), bits // 64] = np.left_shift(np.uint64(1), (bits % 64).astype(np.uint64))
    out = np.array(rows, dtype=np.uint64, copy=True, order="C")
    sub = np.empty((sel.size, rows.shape[1]), np.uint64)
    _kernels.powm(
        np.ascontiguousarray(rows[sel]), e, None, pk._limb("n2"), False, sub, None, threads()
    )
    out[sel] = sub
    return out


def _signed_encoding(pk: PaillierPublicKey, encoded: Any) -> tuple[np.ndarray, np.ndarray]:
    """An EncodedNumber's mantissa as ``(|m|`` limbs ``(1, L)``, sign ``(1,))``.

    Encodings at or above ``n - max_int`` are negative (python-paillier's rule).

    Raises
    ------
    KeyMismatchError
        Encoded for another key.
    ValueError
        An encoding outside ``[0, n)``.
    """
    if encoded.public_key != pk:
        raise KeyMismatchError(
            "Attempted to combine numbers encoded against different public keys!"
        )
    enc = int(encoded.encoding)
    if not 0 <= enc < pk.n:
        raise ValueError(f"Scalar out of bounds: {enc}")
    if enc >= pk.n - pk.max_int:
        return vec(pk.n - enc)[None, :], np.ones(1, np.uint8)
    return vec(enc)[None, :], np.zeros(1, np.uint8)


def _plain_operand(pk: PaillierPublicKey, other: Any) -> tuple[np.ndarray, Any] | None:
    """Classify a plaintext operand.

    Returns
    -------
    tuple or None
        ``(values, None)`` for numbers and arrays of them (``values`` as
        :func:`_as_number_array` returns it), ``(0-d placeholder, encoding)`` for an
        EncodedNumber, ``None`` for unsupported operands.
    """
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
    """``rows * g^(+-|m|) mod n^2``: the homomorphic addition of plaintexts.

    No randomness is added: the result is as (un)obfuscated as ``rows``.
    """
    out = np.empty((rows.shape[0], pk._limb("n2").size), np.uint64)
    if out.shape[0]:  # mode 3: the "obfuscator" is the existing ciphertext row
        _kernels.encrypt(
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
            threads(),
        )
    return out


def _matmul(enc: EncryptedArray, other: Any, *, encrypted_left: bool) -> Any:
    """``enc @ other`` (``encrypted_left``) or ``other @ enc`` for a plaintext ``other``.

    The encrypted side is lowered to its minimum exponent and the plaintext encoded at one
    common exponent, so every output is ``prod_k c_k^(w_k)`` at the sum of the two.
    Returns ``NotImplemented`` for unsupported operands.

    Raises
    ------
    ValueError
        0-d or more than 2-d operands, mismatched core dimensions, non-finite W, or a
        ciphertext that is not invertible (for negative weights).
    """
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
    rows = _lower(
        pk, enc._flat(), enc._exp.reshape(-1), np.full(enc.size, target, np.int64), "matmul"
    )
    wflat = w.reshape(-1)
    if wflat.size:
        if w.dtype.kind == "f":
            if not np.isfinite(wflat).all():
                raise ValueError("the plaintext operand (other) must be finite (NaN or inf found)")
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
        nbad = _kernels.matpow(
            np.ascontiguousarray(c3),
            np.ascontiguousarray(e3),
            np.ascontiguousarray(n3, dtype=np.uint8),
            pk._limb("n2"),
            out,
            bad,
            threads(),
        )
        if nbad:
            raise ValueError("a ciphertext is not invertible mod n**2 (not coprime to n)")
    if not encrypted_left:
        out = np.ascontiguousarray(np.swapaxes(out, 0, 1))
    exps = np.full(out.shape[:2], target + wexp, np.int64)
    res_shape = tuple(s for s, drop in zip(out.shape[:2], squeeze, strict=True) if not drop)
    out = out.reshape(*res_shape, width)
    if not res_shape:
        return EncryptedNumber._make(pk, from_limbs(out.reshape(1, width))[0], target + wexp, False)
    return EncryptedArray._wrap(pk, out, exps.reshape(res_shape), False)


def _encrypt_array(
    pk: PaillierPublicKey,
    values: ArrayLike,
    precision: float | None,
    obfuscation: str | None,
    private_key: PaillierPrivateKey | None,
) -> EncryptedArray:
    """:meth:`PaillierPublicKey.encrypt_batch` (and the private key's, with ``private_key``).

    Encodes every element (:func:`~ppml_fast.paillier.encoding._encode_array`), then
    encrypts all rows in one kernel call with fresh obfuscators; with ``"classic"`` and a
    private key, r^n is computed by CRT.
    """
    mode = pk.obfuscation if obfuscation is None else _check_obfuscation(obfuscation)
    arr = _as_number_array(values, "values")
    mabs, neg, exps = _encode_array(pk, arr.reshape(-1), precision=precision)
    cipher = pk._obfuscate_rows(
        mabs, True, neg, mode=mode, private_key=private_key if mode == "classic" else None
    )
    return EncryptedArray._wrap(
        pk,
        cipher.reshape(*arr.shape, cipher.shape[1]),
        exps.reshape(arr.shape),
        obfuscated=True,
    )


def _decrypt_array(
    sk: PaillierPrivateKey, enc: EncryptedArray | Iterable[EncryptedNumber]
) -> np.ndarray:
    """:meth:`PaillierPrivateKey.decrypt_batch`: CRT decryption of every row in one kernel
    call, then :func:`~ppml_fast.paillier.encoding._decode_array`."""
    if not isinstance(enc, EncryptedArray):
        if isinstance(enc, (str, bytes)) or not isinstance(enc, (Iterable, EncryptedNumber)):
            raise TypeError(
                "enc must be an EncryptedArray or a sequence of "
                f"EncryptedNumber, got {type(enc).__name__}"
            )
        try:
            enc = EncryptedArray.from_numbers(enc)
        except (TypeError, ValueError) as e:  # name the argument the caller passed
            raise type(e)(f"enc: {e}") from e
    if enc.public_key != sk.public_key:
        raise KeyMismatchError("enc was encrypted against a different key")
    flat = enc._c.reshape(-1, enc._c.shape[-1])
    n_l = sk.public_key._limb("n")
    mabs = np.empty((flat.shape[0], n_l.size), np.uint64)
    sign = np.empty(flat.shape[0], np.uint8)
    nbad = _kernels.decrypt(sk._dec_limbs(), np.ascontiguousarray(flat), mabs, sign, threads())
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
