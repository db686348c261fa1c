"""Reference modular arithmetic for secret sharing: a Python-int oracle, and the numpy
baselines the benchmarks compare against.

The oracle (:func:`add`, :func:`sub`, :func:`neg`, :func:`mul`, :func:`sum`, :func:`inv`,
:func:`pow`, :func:`matmul`) converts every operand to an object array of Python ints,
computes the exact integer result with numpy's object loops (unbounded Python ints,
so nothing can overflow) and reduces it once mod m, where m is ``2**64`` for
``modulus=None`` (the ring Z_2^64) or the prime p. It validates like the public API:
the modulus must be a prime int in [2, 2**62); field operands must lie in [0, p); ring
operands may be any integer dtype (signed values are read as their two's-complement
uint64 value) or Python ints in [-2**63, 2**64).

The baselines (:func:`numpy_mulmod`, :func:`numpy_matmul_mod`) are plain vectorised
numpy, exact for every prime p < 2**62: a 32-bit split of the 128-bit product with a
Mersenne fold (p = 2**61 - 1) or float64-estimated quotients with an exact integer
correction (any other p), and a matrix product from 21-bit limbs in float64 BLAS
(exact: every partial sum is an integer below 2**53).
"""

from __future__ import annotations

import builtins
import numbers
import operator
from typing import Any

import numpy as np

MERSENNE61 = 2**61 - 1
RING = 2**64
_MAX_MODULUS = 2**62
# Deterministic Miller–Rabin for n < 3.3 * 10**24 (so every n < 2**64): the first twelve
# primes as bases (Sorenson & Webster 2015).
_MR_BASES = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37)


def is_prime(n: int) -> bool:
    """Deterministic primality test for 0 <= n < 2**64 (Miller–Rabin, bases 2..37).

    Larger n are tested with the same bases, which is then only probabilistic.
    """
    n = operator.index(n)
    if n < 2:
        return False
    for q in _MR_BASES:
        if n % q == 0:
            return n == q
    d, s = n - 1, 0
    while d % 2 == 0:
        d //= 2
        s += 1
    for a in _MR_BASES:
        x = builtins.pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


# --------------------------------------------------------------------------- validation


def _modulus(modulus: Any) -> int:
    """The modulus m as a Python int: 2**64 for None, else a prime p in [2, 2**62)."""
    if modulus is None:
        return RING
    if isinstance(modulus, (bool, np.bool_)) or not isinstance(modulus, numbers.Integral):
        raise TypeError(f"modulus must be None or an int, got {type(modulus).__name__}")
    p = int(modulus)
    if not 2 <= p < _MAX_MODULUS:
        raise ValueError(f"modulus must be a prime in [2, 2**62), got {p}")
    if not is_prime(p):
        raise ValueError(f"modulus must be a prime in [2, 2**62), got {p} (composite)")
    return p


def _operand(x: Any, name: str, m: int) -> np.ndarray:
    """``x`` as an object array of Python ints in [0, m)."""
    if isinstance(x, (bool, np.bool_)):
        raise TypeError(f"{name} must be an integer array or int, got bool")
    if isinstance(x, numbers.Integral) and not isinstance(x, np.integer):
        arr = np.empty((), dtype=object)
        arr[()] = int(x)
    else:
        arr = np.asarray(x)
        if arr.dtype.kind in "iu":
            arr = arr.astype(object)
        elif arr.dtype == object:
            flat = arr.reshape(-1)
            if not all(
                isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_))
                for v in flat
            ):
                raise TypeError(f"{name} must hold integers only")
            arr = np.array([int(v) for v in flat], dtype=object).reshape(arr.shape)
        else:
            raise TypeError(f"{name} must be an integer array or int, got dtype {arr.dtype}")
    if m == RING:
        if arr.size and (min(arr.flat) < -(2**63) or max(arr.flat) >= RING):
            raise ValueError(f"{name} must hold values in [-2**63, 2**64)")
        return np.asarray(arr % RING, dtype=object)
    if arr.size and (min(arr.flat) < 0 or max(arr.flat) >= m):
        raise ValueError(f"{name} must hold values in [0, p) with p = {m}")
    return arr


def _result(exact: Any, m: int, out: np.ndarray | None) -> Any:
    """Reduce mod m to uint64; into ``out`` when given; a 0-d result as a numpy scalar."""
    res = np.asarray(np.asarray(exact, dtype=object) % m, dtype=object).astype(np.uint64)
    if out is not None:
        if not isinstance(out, np.ndarray):
            raise TypeError(f"out must be a numpy.ndarray, got {type(out).__name__}")
        if out.dtype != np.uint64:
            raise TypeError(f"out must have dtype uint64, got {out.dtype}")
        if out.shape != res.shape:
            raise ValueError(f"out must have shape {res.shape}, got {out.shape}")
        if not out.flags.writeable:
            raise ValueError("out must be writeable")
        out[...] = res
        return out
    return res[()] if res.ndim == 0 else res


# --------------------------------------------------------------------------- the oracle


def add(a: Any, b: Any, *, modulus: Any = None, out: np.ndarray | None = None) -> Any:
    """(a + b) mod m, elementwise with broadcasting."""
    m = _modulus(modulus)
    return _result(_operand(a, "a", m) + _operand(b, "b", m), m, out)


def sub(a: Any, b: Any, *, modulus: Any = None, out: np.ndarray | None = None) -> Any:
    """(a - b) mod m, elementwise with broadcasting."""
    m = _modulus(modulus)
    return _result(_operand(a, "a", m) - _operand(b, "b", m), m, out)


def neg(a: Any, *, modulus: Any = None, out: np.ndarray | None = None) -> Any:
    """(-a) mod m."""
    m = _modulus(modulus)
    return _result(-_operand(a, "a", m), m, out)


def mul(a: Any, b: Any, *, modulus: Any = None, out: np.ndarray | None = None) -> Any:
    """(a * b) mod m, elementwise with broadcasting."""
    m = _modulus(modulus)
    return _result(_operand(a, "a", m) * _operand(b, "b", m), m, out)


def sum(a: Any, axis: int | None = None, *, modulus: Any = None) -> Any:
    """The exact sum of ``a`` along ``axis`` (None: all elements), mod m."""
    m = _modulus(modulus)
    arr = _operand(a, "a", m)
    if axis is None:
        return _result(builtins.sum(arr.flat, 0), m, None)
    exact = np.sum(arr, axis=axis, dtype=object)
    if isinstance(exact, np.ndarray) and exact.size == 0:
        exact = np.zeros(exact.shape, dtype=object)
    return _result(exact, m, None)


def inv(a: Any, *, modulus: Any = None) -> Any:
    """The elementwise inverse mod m; ValueError for a non-invertible element (0 mod p,
    even values mod 2**64)."""
    m = _modulus(modulus)
    arr = _operand(a, "a", m)
    flat = list(arr.flat)
    res = []
    for v in flat:
        try:
            res.append(builtins.pow(v, -1, m))
        except ValueError:
            what = "0" if m != RING else "even values"
            raise ValueError(
                f"a must be invertible mod {'2**64' if m == RING else m}: "
                f"{what} have no inverse (got {v})"
            ) from None
    return _result(np.array(res, dtype=object).reshape(arr.shape), m, None)


def pow(a: Any, e: Any, *, modulus: Any = None, out: np.ndarray | None = None) -> Any:
    """a**e mod m elementwise (0**0 = 1); ``e`` a non-negative int or integer array."""
    m = _modulus(modulus)
    base = _operand(a, "a", m)
    if isinstance(e, (bool, np.bool_)):
        raise TypeError("e must be a non-negative integer or integer array, got bool")
    if isinstance(e, numbers.Integral) and not isinstance(e, np.integer):
        ex = np.empty((), dtype=object)
        ex[()] = int(e)
    else:
        earr = np.asarray(e)
        if earr.dtype.kind not in "iu":
            raise TypeError(f"e must be a non-negative integer or integer array, got {earr.dtype}")
        ex = earr.astype(object)
    if ex.size and min(ex.flat) < 0:
        raise ValueError("e must be >= 0")
    power = np.frompyfunc(lambda x, k: builtins.pow(x, k, m), 2, 1)
    return _result(power(base, ex), m, out)


def matmul(a: Any, b: Any, *, modulus: Any = None, out: np.ndarray | None = None) -> Any:
    """The matrix product (n, k) @ (k, m) with exact Python-int dot products, mod m."""
    mod = _modulus(modulus)
    x, y = _operand(a, "a", mod), _operand(b, "b", mod)
    if x.ndim != 2 or y.ndim != 2:
        raise ValueError(f"a and b must be 2-D, got shapes {x.shape} and {y.shape}")
    if x.shape[1] != y.shape[0]:
        raise ValueError(f"a and b have mismatched inner dimensions: {x.shape} @ {y.shape}")
    exact = np.zeros((x.shape[0], y.shape[1]), dtype=object)
    if x.shape[1]:
        exact = np.matmul(x, y)
    return _result(exact, mod, out)


# ------------------------------------------------------------------ benchmark baselines

_U32 = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)


def _split_product(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, ...]:
    """a * b = hh * 2**64 + mid * 2**32 + ll exactly, for a, b < 2**62 (uint64 arrays):
    hh < 2**60, mid < 2**63, ll < 2**64."""
    ah, al = a >> _S32, a & _U32
    bh, bl = b >> _S32, b & _U32
    mid = ah * bl
    mid += al * bh
    ah *= bh
    al *= bl
    return ah, mid, al


def _mersenne_mulmod(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a * b mod 2**61 - 1 (a, b < 2**61): 32-bit split, then 2**61 ≡ 1 folds."""
    p = np.uint64(MERSENNE61)
    s61 = np.uint64(61)
    s, mid, ll = _split_product(a, b)
    # 2**64 ≡ 8; mid * 2**32 = (mid >> 29) * 2**61 + (mid mod 2**29) * 2**32
    s <<= np.uint64(3)
    s += mid >> np.uint64(29)
    mid &= np.uint64(2**29 - 1)
    mid <<= _S32
    s += mid
    s += ll >> s61
    ll &= p
    s += ll  # < 2**61 + 2**34 + 2**61 + 8 + 2**61: no overflow
    t = s >> s61
    s &= p
    s += t  # < 2**61 + 4
    return np.minimum(s, s - p, out=s)  # s - p wraps to > s when s < p


def _step_mod(r: np.ndarray, low: np.ndarray, p: int) -> np.ndarray:
    """(r * 2**32 + low) mod p for r < p and 2**32 <= p < 2**62, low < 2**64.

    The quotient q is estimated in float64: (r * 2**32 + low) / p < 2**33 with a relative
    error of a few 2**-53, so q is off by at most 1 and the remainder
    r * 2**32 + low - q * p lies in [-p, 2p): plus p, it is in [0, 3p) ⊂ [0, 2**64), so
    wrapping uint64 arithmetic computes it exactly; two conditional subtractions finish.
    """
    pu = np.uint64(p)
    est = r.astype(np.float64)
    est *= 2.0**32
    est += low.astype(np.float64)
    est /= float(p)
    q = np.floor(est, out=est).astype(np.uint64)
    q *= pu
    r <<= _S32
    r += low
    r += pu
    r -= q
    np.minimum(r, r - pu, out=r)
    return np.minimum(r, r - pu, out=r)


def numpy_mulmod(a: Any, b: Any, p: int) -> np.ndarray:
    """a * b mod p in pure numpy for uint64 arrays with values < p < 2**62 (exact).

    p < 2**32: the product fits in uint64. p = 2**61 - 1: 32-bit split and Mersenne fold.
    Any other p: 32-bit split a * b = (hh * 2**32 + mid) * 2**32 + ll, reduced by two
    Horner steps with float64-estimated quotients and exact integer corrections.
    """
    p = int(p)
    x, y = np.broadcast_arrays(np.asarray(a, dtype=np.uint64), np.asarray(b, dtype=np.uint64))
    shape = x.shape
    x, y = np.ascontiguousarray(x).reshape(-1), np.ascontiguousarray(y).reshape(-1)
    if p < 2**32:
        return ((x * y) % np.uint64(p)).reshape(shape)
    if p == MERSENNE61:
        return _mersenne_mulmod(x, y).reshape(shape)
    hh, mid, ll = _split_product(x, y)
    r = hh % np.uint64(p)
    r = _step_mod(r, mid, p)
    return _step_mod(r, ll, p).reshape(shape)


_LIMB = 21
_MAX_K = 2**53 // 2 ** (2 * _LIMB)  # rows of one float64 block: partial sums < 2**53


def numpy_matmul_mod(a: np.ndarray, b: np.ndarray, p: int) -> np.ndarray:
    """(a @ b) mod p for uint64 matrices with values < p < 2**62, exact, in numpy.

    Each operand is cut into three 21-bit limbs; the nine limb products come from one
    float64 BLAS matmul of the stacked limbs per block of at most 2048 inner indices
    (each entry a sum of <= 2048 products < 2**42: an exact integer < 2**53). The limb
    sums S_k (k = 0..4) are reduced mod p in uint64 and recombined as
    sum_k S_k * (2**(21 k) mod p) with :func:`numpy_mulmod`.
    """
    p = int(p)
    x, y = np.asarray(a, dtype=np.uint64), np.asarray(b, dtype=np.uint64)
    n, kdim = x.shape
    mcols = y.shape[1]
    mask = np.uint64(2**_LIMB - 1)
    pu = np.uint64(p)
    acc = np.zeros((5, n, mcols), dtype=np.uint64)
    for k0 in range(0, kdim, _MAX_K):
        xs, ys = x[:, k0 : k0 + _MAX_K], y[k0 : k0 + _MAX_K]
        xl = np.concatenate(
            [((xs >> np.uint64(_LIMB * i)) & mask).astype(np.float64) for i in range(3)], axis=0
        )
        yl = np.concatenate(
            [((ys >> np.uint64(_LIMB * j)) & mask).astype(np.float64) for j in range(3)], axis=1
        )
        prod = (xl @ yl).astype(np.uint64)  # (3n, 3m): block (i, j) = x_i @ y_j
        for i in range(3):
            for j in range(3):
                block = prod[i * n : (i + 1) * n, j * mcols : (j + 1) * mcols]
                acc[i + j] = (acc[i + j] + block) % pu  # < 2**62 + 2**53
    res = acc[0]
    for k in range(1, 5):
        term = numpy_mulmod(acc[k], np.uint64(builtins.pow(2, _LIMB * k, p)), p)
        res = (res + term) % pu
    return res


def numpy_shamir_share(
    x: np.ndarray, n: int, t: int, p: int, gen: np.random.Generator
) -> np.ndarray:
    """Shamir shares of the uint64 secrets ``x`` (< p) in pure numpy: random coefficients
    from ``gen``, then Horner's rule per point with :func:`numpy_mulmod` -- the baseline
    the native sharing is measured against."""
    coef = gen.integers(0, p, size=(t - 1, *x.shape), dtype=np.uint64)
    pu = np.uint64(p)
    shares = np.empty((n, *x.shape), dtype=np.uint64)
    for i in range(1, n + 1):
        acc = coef[-1] if t > 1 else x
        for j in range(t - 3, -2, -1):
            acc = numpy_mulmod(acc, np.uint64(i), p)
            acc += coef[j] if j >= 0 else x
            acc = np.minimum(acc, acc - pu)  # acc < 2p: one conditional subtraction
        shares[i - 1] = acc
    return shares


def numpy_shamir_reconstruct(shares: np.ndarray, points: list[int], p: int) -> np.ndarray:
    """Lagrange interpolation at 0 with Python-int coefficients and numpy products."""
    pu = np.uint64(p)
    acc = np.zeros(shares.shape[1:], dtype=np.uint64)
    for j, xj in enumerate(points):
        num = den = 1
        for m, xm in enumerate(points):
            if m != j:
                num = num * xm % p
                den = den * (xm - xj) % p
        lam = num * builtins.pow(den, -1, p) % p
        acc += numpy_mulmod(shares[j], np.uint64(lam), p)
        acc = np.minimum(acc, acc - pu)
    return acc


def numpy_beaver_matmul(
    xs: np.ndarray, ys: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray
) -> np.ndarray:
    """Beaver matmul over additive shares in Z_2^64 with numpy's wrapping uint64 arithmetic
    (the online phase: open ε = x - a and δ = y - b, then c_i + ε b_i + a_i δ, plus ε δ
    for party 0) -- the baseline for ``ppml_fast.sharing.beaver_matmul``."""
    with np.errstate(over="ignore"):
        eps = (xs - a).sum(axis=0, dtype=np.uint64)
        dlt = (ys - b).sum(axis=0, dtype=np.uint64)
        z = np.empty(c.shape, dtype=np.uint64)
        for i in range(xs.shape[0]):
            z[i] = c[i] + eps @ b[i] + a[i] @ dlt
        z[0] += eps @ dlt
    return z
