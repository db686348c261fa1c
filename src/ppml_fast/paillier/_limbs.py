"""Big integers as limb arrays for the Paillier kernels, and uniform random limb rows.

A batch of big integers is a C-contiguous ``(N, L)`` uint64 array, one integer per row,
least significant 64-bit limb first (GMP's limb order on a little-endian machine). The
kernels in :mod:`ppml_fast._native.paillier` read and write this layout; the helpers here
convert Python ints to and from it and draw random rows from the package's secure
AES-CTR stream.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import gmpy2
import numpy as np

from .. import _config
from .._native import paillier as _kernels

_MPZ = type(gmpy2.mpz(0))
INTS = (int, np.integer, _MPZ)
"""The types accepted wherever a big integer is expected (Python, numpy and gmpy2 ints)."""


def threads() -> int:
    """The thread count the kernels run with (:func:`ppml_fast.set_num_threads`)."""
    return _config.omp_threads()


def nlimbs(x: int) -> int:
    """The number of 64-bit limbs that hold ``x`` (at least 1).

    Parameters
    ----------
    x : int
        A non-negative integer.

    Returns
    -------
    int
        ``max(1, ceil(bit_length(x) / 64))``.
    """
    return max(1, (int(x).bit_length() + 63) // 64)


def to_limbs(values: Iterable[int], width: int) -> np.ndarray:
    """Non-negative ints as the rows of a limb array.

    Parameters
    ----------
    values : iterable of int
        Integers in ``[0, 2**(64 * width))``.
    width : int
        Limbs per row.

    Returns
    -------
    numpy.ndarray
        A writable ``(N, width)`` uint64 array, one value per row.
    """
    nbytes = 8 * width
    buf = b"".join(int(v).to_bytes(nbytes, "little") for v in values)
    rows: np.ndarray = np.frombuffer(bytearray(buf), dtype="<u8").reshape(-1, width)
    return rows


def vec(x: int, width: int | None = None) -> np.ndarray:
    """One int as a 1-D limb vector.

    Parameters
    ----------
    x : int
        A non-negative integer.
    width : int, optional
        Limbs in the vector (default: :func:`nlimbs` of ``x``).

    Returns
    -------
    numpy.ndarray
        A ``(width,)`` uint64 vector.
    """
    row: np.ndarray = to_limbs([x], width or nlimbs(x))[0]
    return row


def from_limbs(a: np.ndarray) -> list[int]:
    """The rows of a limb array as Python ints.

    Parameters
    ----------
    a : numpy.ndarray
        An ``(N, L)`` array of 64-bit limbs.

    Returns
    -------
    list of int
        The N integers, in row order.
    """
    a = np.ascontiguousarray(a, dtype="<u8")
    step = 8 * a.shape[-1]
    buf = a.tobytes()
    return [int.from_bytes(buf[i : i + step], "little") for i in range(0, len(buf), step)]


def _random_words(count: int) -> np.ndarray:
    """``count`` uniform 64-bit words from the package's secure AES-CTR stream."""
    from ..rng import resolve  # on first use: keys and single encryptions never load it

    if count == 0:
        return np.zeros(0, np.uint64)
    return np.asarray(resolve(None).bit_generator.random_raw(count), dtype=np.uint64)


def random_bits_rows(n_rows: int, bits: int) -> np.ndarray:
    """Uniform random integers below ``2**bits``, one per row.

    Parameters
    ----------
    n_rows : int
        Number of integers.
    bits : int
        Their bit length bound (> 0).

    Returns
    -------
    numpy.ndarray
        An ``(n_rows, ceil(bits / 64))`` uint64 limb array.

    Security
    --------
    The words come from the package's secure stream (:func:`ppml_fast.rng.resolve` with
    ``None``), keyed from the operating system's CSPRNG.
    """
    width = max(1, (bits + 63) // 64)
    words = _random_words(n_rows * width).reshape(n_rows, width)
    top = bits - 64 * (width - 1)
    if top < 64:
        words[:, -1] &= np.uint64((1 << top) - 1)
    return words


def random_below_rows(n_rows: int, bound: int, bound_limbs: np.ndarray) -> np.ndarray:
    """Uniform random integers in ``[1, bound)``, one per row, by rejection sampling.

    Parameters
    ----------
    n_rows : int
        Number of integers.
    bound : int
        The exclusive upper bound (> 1).
    bound_limbs : numpy.ndarray
        ``bound`` as a limb vector (:func:`vec`).

    Returns
    -------
    numpy.ndarray
        An ``(n_rows, ceil(bit_length(bound) / 64))`` uint64 limb array.

    Notes
    -----
    Each row is drawn below ``2**bit_length(bound)`` and accepted with probability above
    1/2; rejected rows (``>= bound`` or zero) are drawn again.
    """
    bits = bound.bit_length()
    out = random_bits_rows(n_rows, bits)
    todo = np.arange(n_rows)
    while todo.size:
        rows = out[todo]
        ok = np.empty(todo.size, np.uint8)
        _kernels.rows_below(np.ascontiguousarray(rows), bound_limbs, ok)
        ok &= rows.any(axis=1)
        todo = todo[ok == 0]
        if todo.size:
            out[todo] = random_bits_rows(todo.size, bits)
    return out


#: Moduli of this many bits and more skip the gcd(r, n) = 1 check on random r (see
#: :func:`random_units_rows`).
UNIT_CHECK_BITS = 512


def random_units_rows(n_rows: int, n: int, n_limbs: np.ndarray) -> np.ndarray:
    """Uniform random elements of Z_n^* (r in ``[1, n)`` with ``gcd(r, n) = 1``), one per row.

    Parameters
    ----------
    n_rows : int
        Number of elements.
    n : int
        The modulus.
    n_limbs : numpy.ndarray
        ``n`` as a limb vector (:func:`vec`).

    Returns
    -------
    numpy.ndarray
        An ``(n_rows, L)`` uint64 limb array.

    Notes
    -----
    A multiple of p or q is drawn with probability about 1/p + 1/q: common with toy keys,
    whose ciphertexts must still decrypt, so below :data:`UNIT_CHECK_BITS` such rows are
    drawn again. From that size on (primes of 256 bits and more: probability below
    2^-254) nothing is checked, so no variable-time gcd ever runs on the secret r.
    """
    out = random_below_rows(n_rows, n, n_limbs)
    if n.bit_length() >= UNIT_CHECK_BITS:
        return out
    while True:
        bad = [i for i, r in enumerate(from_limbs(out)) if math.gcd(r, n) != 1]
        if not bad:
            return out
        out[bad] = random_below_rows(len(bad), n, n_limbs)
