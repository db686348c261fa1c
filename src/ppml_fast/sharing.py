"""Secret sharing: ring Z_2^64 and prime-field Z_p arithmetic on uint64 arrays.

The modular-arithmetic kernels every sharing scheme is made of -- :func:`add`,
:func:`sub`, :func:`neg`, :func:`mul`, :func:`sum`, :func:`inv`, :func:`pow` and
:func:`matmul` -- additive (:func:`additive_share`) and Shamir (:func:`shamir_share`)
sharing, fixed point (:func:`encode_fixed`, :func:`truncate_2pc`, :func:`truncate`),
a trusted dealer's Beaver triples (:func:`beaver_triples`, :func:`beaver_mul`,
:func:`beaver_matmul`) and :class:`SecretTensor`, an n-party simulation.

Security
--------
Shares are uniform only if their randomness is: ``rng=None`` (the default) draws from the
process's cryptographically secure stream (AES-CTR keyed from the OS). A seed or a numpy
Generator makes every share predictable to anyone who knows it -- for tests only; a
warning says so once per process.

Moduli
------
``modulus=None`` is the ring Z_2^64: uint64 arithmetic with wraparound, the ring that
additive sharing in CrypTen-style MPC uses. Signed integer inputs are read as their
two's-complement uint64 value (so -1 is 2**64 - 1).

``modulus=p`` is the prime field Z_p for any prime ``2 <= p < 2**62`` (checked with a
deterministic Miller–Rabin test): every operand must already be reduced, in ``[0, p)``,
or ``ValueError`` is raised -- never a silently wrong result. Products are formed in 128
bits and reduced by Barrett's method; for the Mersenne prime :data:`MERSENNE61`
``= 2**61 - 1`` a shift-and-add fold replaces it.

Results are uint64 arrays (a numpy uint64 scalar when every operand is a scalar); ``out=``
takes a writeable uint64 array of the result's shape. Kernels use every core and release
the GIL; results do not depend on the thread count (modular arithmetic is exact).
"""

from __future__ import annotations

import builtins
import functools
import math
import operator
from typing import Any, NamedTuple

import numpy as np

from . import _config
from ._errors import ResultOverflowError
from ._native import sharing as _kernels
from ._streams import split
from ._types import ArrayLike, RngLike
from ._validation import (
    asarray,
    check_allocation,
    check_axes,
    check_bool,
    check_choice,
    check_int,
    normalize_size,
)
from .rng import resolve_for_dp

__all__ = [
    "MERSENNE61",
    "BeaverTriple",
    "SecretTensor",
    "add",
    "additive_reconstruct",
    "additive_share",
    "beaver_matmul",
    "beaver_mul",
    "beaver_triples",
    "decode_fixed",
    "encode_fixed",
    "inv",
    "matmul",
    "mul",
    "neg",
    "pow",
    "shamir_reconstruct",
    "shamir_share",
    "sub",
    "sum",
    "truncate",
    "truncate_2pc",
]

MERSENNE61 = 2**61 - 1
_P_LIMIT = 2**62
_U64 = np.dtype(np.uint64)


# ------------------------------------------------------------------------- moduli


@functools.lru_cache(maxsize=64)
def _is_prime(n: int) -> bool:
    """GMP's primality test (Baillie-PSW, exact below 2**64) through gmpy2, imported on
    first use so ``import ppml_fast.sharing`` does not pay for it."""
    import gmpy2

    return n >= 2 and bool(gmpy2.is_prime(n))


def _modulus(modulus: Any) -> int:
    """0 for the ring Z_2^64, else the prime p (validated)."""
    if modulus is None:
        return 0
    if isinstance(modulus, (bool, np.bool_)):
        raise TypeError("modulus must be None or an int prime, got bool")
    try:
        p = operator.index(modulus)
    except TypeError:
        raise TypeError(
            f"modulus must be None or an int prime, got {type(modulus).__name__}"
        ) from None
    if not 2 <= p < _P_LIMIT:
        raise ValueError(f"modulus must be a prime in [2, 2**62), got {p}")
    if not _is_prime(p):
        raise ValueError(f"modulus must be prime, got {p} (composite)")
    return p


# ------------------------------------------------------------------------ operands


def _operand(x: Any, name: str, p: int, *, check: bool = True) -> np.ndarray:
    """``x`` as a uint64 array (0-d for a scalar), checked to lie in [0, p) for a field
    (arrays: unless ``check`` is false -- the elementwise kernels check as they go)."""
    if isinstance(x, (bool, np.bool_)):
        raise TypeError(f"{name} must be an integer or an integer array, got bool")
    if isinstance(x, (int, np.integer)):
        v = int(x)
        if p:
            if not 0 <= v < p:
                raise ValueError(f"{name} must be in [0, p) = [0, {p}), got {v}")
        elif not -(2**63) <= v < 2**64:
            raise ValueError(f"{name} must be in [-2**63, 2**64) for the ring, got {v}")
        return np.array(v % 2**64, dtype=_U64)
    a = asarray(x, name)
    if a.dtype.kind not in "iu":
        raise TypeError(f"{name} must be an integer array, got dtype {a.dtype}")
    u = a.astype(_U64, copy=False)  # a negative value becomes >= 2**63 > p
    if p and check and u.size:
        flat = np.ascontiguousarray(u).reshape(-1)
        if _kernels.any_ge(flat, p, _config.omp_threads()):
            _range_error(a, name, p)
    return u


def _range_error(a: np.ndarray, name: str, p: int) -> None:
    """Raise the ValueError for an operand ``a`` with a value outside [0, p)."""
    a = np.asarray(a)
    if a.dtype.kind == "i" and a.size and a.min() < 0:
        raise ValueError(f"{name} must hold values in [0, p) = [0, {p}), found a negative")
    raise ValueError(f"{name} must hold values in [0, p) = [0, {p}), found {a.max()}")


def _fresh(shape: Any) -> np.ndarray:
    """An uninitialised uint64 array whose pages are already mapped: large outputs are
    touched once per 4 KiB page from this thread first. Two kernel threads first-touching a
    fresh array of tens of megabytes contend in the operating system's page-fault path,
    which costs several times this one sequential touch."""
    a = np.empty(shape, dtype=_U64)
    if a.size >= 1 << 20:
        a.reshape(-1)[::512] = 0
    return a


def _out(out: Any, shape: tuple[int, ...]) -> np.ndarray | None:
    if out is None:
        return None
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy.ndarray, got {type(out).__name__}")
    if out.dtype != _U64:
        raise TypeError(f"out must have dtype uint64, got {out.dtype}")
    if out.shape != shape:
        raise ValueError(f"out must have shape {shape}, got {out.shape}")
    if not out.flags.writeable:
        raise ValueError("out must be writeable")
    return out


def _result(res: np.ndarray, out: np.ndarray | None, scalar: bool) -> Any:
    if out is not None:
        return out
    return res[()] if scalar and res.ndim == 0 else res


def _flat(a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A contiguous 1-D view of ``a`` broadcast to ``shape`` (size 1 stays size 1)."""
    if a.size == 1:
        return np.ascontiguousarray(a.reshape(1))
    return np.ascontiguousarray(np.broadcast_to(a, shape)).reshape(-1)


def _native_binop(
    op: int, a: np.ndarray, b: np.ndarray, p: int, out: Any, names: tuple[str, str] = ("a", "b")
) -> Any:
    shape = np.broadcast_shapes(a.shape, b.shape)
    dest = _out(out, shape)
    # Write straight into out when it is contiguous and either apart from the operands
    # or exactly one of them (element i depends only on element i); else through a copy.
    direct = (
        dest is not None
        and dest.flags.c_contiguous
        and all(
            not np.may_share_memory(dest, v)
            or (v.flags.c_contiguous and v.shape == shape and _same_buffer(dest, v))
            for v in (a, b)
        )
    )
    res = dest if direct else _fresh(shape)
    assert res is not None
    nthreads = _config.omp_threads()
    fa, fb = _flat(a, shape), _flat(b, shape)
    checked = [(fa, names[0])] + ([(fb, names[1])] if op != _kernels.POW else [])  # not exponents
    if p and dest is not None:
        # about to write into the caller's array: check the ranges first, so that an
        # error leaves out (and an operand it aliases) untouched
        for v, name in checked:
            if _kernels.any_ge(v, p, nthreads):
                _range_error(v, name, p)
    if res.size and _kernels.binop(op, fa, fb, res.reshape(-1), p, nthreads):
        for v, name in checked:  # the kernel saw a value >= p: name the operand
            if _kernels.any_ge(v, p, nthreads):
                _range_error(v, name, p)
        raise ValueError(f"an operand holds a value outside [0, p) = [0, {p})")
    if dest is not None and not direct:
        np.copyto(dest, res)
    return _result(res, dest, a.ndim == 0 and b.ndim == 0)


def _same_buffer(u: np.ndarray, v: np.ndarray) -> bool:
    return bool(u.__array_interface__["data"][0] == v.__array_interface__["data"][0])


def _ring_ufunc(ufunc: Any, a: np.ndarray, b: np.ndarray, out: Any) -> Any:
    shape = np.broadcast_shapes(a.shape, b.shape)
    dest = _out(out, shape)
    with np.errstate(over="ignore"):  # uint64 arithmetic wraps modulo 2**64 (by design)
        res = ufunc(a, b, out=dest)
    return _result(np.asarray(res), dest, a.ndim == 0 and b.ndim == 0)


# ------------------------------------------------------------------------- public


def _elementwise(ufunc: Any, op: int, a: Any, b: Any, modulus: Any, out: Any) -> Any:
    """a (op) b: numpy's wrapping ufunc in the ring, the native kernel in a field (whose
    loop checks the operands' range as it reads them)."""
    p = _modulus(modulus)
    x, y = _operand(a, "a", p, check=False), _operand(b, "b", p, check=False)
    if not p:
        return _ring_ufunc(ufunc, x, y, out)
    return _native_binop(op, x, y, p, out)


def add(
    a: ArrayLike, b: ArrayLike, *, modulus: int | None = None, out: np.ndarray | None = None
) -> Any:
    """``(a + b) mod m`` elementwise (m = 2**64 or the prime ``modulus``), broadcasting."""
    return _elementwise(np.add, _kernels.ADD, a, b, modulus, out)


def sub(
    a: ArrayLike, b: ArrayLike, *, modulus: int | None = None, out: np.ndarray | None = None
) -> Any:
    """``(a - b) mod m`` elementwise, broadcasting."""
    return _elementwise(np.subtract, _kernels.SUB, a, b, modulus, out)


def neg(a: ArrayLike, *, modulus: int | None = None, out: np.ndarray | None = None) -> Any:
    """``-a mod m`` elementwise (the additive inverse; 0 stays 0)."""
    p = _modulus(modulus)
    x = _operand(a, "a", p, check=False)
    zero = np.array(0, dtype=_U64)
    if not p:
        return _ring_ufunc(np.subtract, zero, x, out)
    return _native_binop(_kernels.SUB, zero, x, p, out, names=("0", "a"))


def mul(
    a: ArrayLike, b: ArrayLike, *, modulus: int | None = None, out: np.ndarray | None = None
) -> Any:
    """``(a * b) mod m`` elementwise, broadcasting.

    In a field the 124-bit product is reduced by Barrett's method (or the Mersenne fold
    for 2**61 - 1) on all cores.
    """
    return _elementwise(np.multiply, _kernels.MUL, a, b, modulus, out)


def pow(
    a: ArrayLike, e: ArrayLike, *, modulus: int | None = None, out: np.ndarray | None = None
) -> Any:
    """``a ** e mod m`` elementwise (square and multiply); ``e`` a non-negative int below
    2**64 or an integer array broadcastable with ``a``; ``0 ** 0 = 1``."""
    p = _modulus(modulus)
    x = _operand(a, "a", p)
    if isinstance(e, (bool, np.bool_)):
        raise TypeError("e must be a non-negative integer or integer array, got bool")
    if isinstance(e, (int, np.integer)):
        if not 0 <= int(e) < 2**64:
            raise ValueError(f"e must be in [0, 2**64), got {int(e)}")
        ex = np.array(int(e), dtype=_U64)
    else:
        ea = np.asarray(e)
        if ea.dtype.kind not in "iu":
            raise TypeError(f"e must be an integer array, got dtype {ea.dtype}")
        if ea.dtype.kind == "i" and ea.size and ea.min() < 0:
            raise ValueError("e must be non-negative")
        ex = ea.astype(_U64, copy=False)
    return _native_binop(_kernels.POW, x, ex, p, out)


def sum(
    a: ArrayLike, axis: int | tuple[int, ...] | None = None, *, modulus: int | None = None
) -> Any:
    """Sum of ``a`` along ``axis`` (an int or a tuple of ints; ``None``: all elements)
    modulo m."""
    p = _modulus(modulus)
    x = _operand(a, "a", p)
    checked = check_axes(axis, x.ndim)
    axes = (checked,) if isinstance(checked, int) else checked
    if not p:
        with np.errstate(over="ignore"):
            return np.sum(x, axis=axes, dtype=_U64)  # wraps modulo 2**64
    if axes is None:
        rows = np.ascontiguousarray(x.reshape(1, x.size))
        res = np.zeros(1, dtype=_U64)
        if x.size:
            _kernels.sum_rows(rows, res, p, _config.omp_threads())
        return res[0]
    # the summed axes moved last and flattened into one: one row per kept position
    moved = np.moveaxis(x, axes, tuple(range(x.ndim - len(axes), x.ndim)))
    kept = moved.shape[: x.ndim - len(axes)]
    nrows = int(np.prod(kept, dtype=np.int64))
    rows = np.ascontiguousarray(moved.reshape(nrows, -1) if nrows else moved.reshape(0, 0))
    res = np.zeros(nrows, dtype=_U64)
    if res.size and rows.shape[1]:
        _kernels.sum_rows(rows, res, p, _config.omp_threads())
    return res.reshape(kept)


def inv(a: ArrayLike, *, modulus: int | None = None) -> Any:
    """Elementwise multiplicative inverse: mod p (every element nonzero), or mod 2**64
    for ``modulus=None`` (every element odd). Batched by Montgomery's trick in a field:
    one exponentiation per block of 1024 elements."""
    p = _modulus(modulus)
    x = _operand(a, "a", p)
    scalar = x.ndim == 0
    if not p:
        if x.size and not np.all(x & np.uint64(1)):
            raise ValueError("a must hold odd values: only they are invertible mod 2**64")
        y = np.atleast_1d(x).copy()
        xs = np.atleast_1d(x)
        two = np.uint64(2)
        with np.errstate(over="ignore"):  # wrapping is the arithmetic mod 2**64
            for _ in range(6):  # Newton: y <- y (2 - a y), 3 -> 6 -> ... -> 96 correct bits
                y = y * (two - xs * y)
        return y[0] if scalar else y
    if x.size and not np.all(x):
        raise ValueError("a must hold nonzero values: 0 has no inverse mod p")
    flat = np.ascontiguousarray(x.reshape(-1))
    res = _fresh(flat.shape)
    if flat.size:
        _kernels.inv_field(flat, res, p, _config.omp_threads())
    res = res.reshape(x.shape)
    return res[()] if scalar else res


def matmul(
    a: ArrayLike, b: ArrayLike, *, modulus: int | None = None, out: np.ndarray | None = None
) -> np.ndarray:
    """Matrix product ``a @ b`` modulo m, for 2-D (n, k) @ (k, m) operands.

    Mod 2**64: a native register-blocked kernel on all cores, bit-identical to numpy's
    wrapping integer matmul. At the avx512 ISA level it multiplies with AVX-512DQ
    ``vpmullq``; at avx2 (no 64-bit multiply-low) each product is
    ``a_lo b_lo + 2**32 (a_lo b_hi + a_hi b_lo)``, the low part from ``vpmuludq`` and both
    cross terms, needed only mod 2**32, from one ``vpmulld`` against ``b`` with its halves
    swapped, over packed panels; the generic level is portable C. Mod p: the
    operands are split into 21-bit limbs, whose products are exact float64 matrix
    products (BLAS) while a partial sum stays below 2**53 (k split in blocks of 2048),
    then recombined mod p with each limb product weighted by 2**(21 (i+j)) mod p.
    """
    p = _modulus(modulus)
    x, y = _operand(a, "a", p), _operand(b, "b", p)
    if x.ndim != 2 or y.ndim != 2:
        raise ValueError(f"a and b must be 2-D, got {x.ndim}-D and {y.ndim}-D")
    n, kk = x.shape
    k2, m = y.shape
    if kk != k2:
        raise ValueError(f"a has {kk} columns but b has {k2} rows: shapes {x.shape} @ {y.shape}")
    dest = _out(out, (n, m))
    res = np.zeros((n, m), dtype=_U64)
    if res.size and kk:
        nthreads = _config.omp_threads()
        if not p:
            _kernels.matmul_ring(np.ascontiguousarray(x), np.ascontiguousarray(y), res, nthreads)
        else:
            _matmul_field(x, y, p, res, nthreads)
    if dest is not None:
        np.copyto(dest, res)
        return dest
    return res


_LIMB = 21
_KBLOCK = 2048  # 2048 * (2**21 - 1)**2 < 2**53: every partial sum is exact in float64


def _matmul_field(x: np.ndarray, y: np.ndarray, p: int, res: np.ndarray, nthreads: int) -> None:
    nlimbs = -(-p.bit_length() // _LIMB)
    coef = np.array([builtins.pow(2, _LIMB * s, p) for s in range(2 * nlimbs - 1)], dtype=_U64)
    mask = np.uint64((1 << _LIMB) - 1)
    for k0 in range(0, x.shape[1], _KBLOCK):
        xs, ys = x[:, k0 : k0 + _KBLOCK], y[k0 : k0 + _KBLOCK]
        # stacked limbs: one BLAS product gives every block x_i @ y_j at once
        xl = np.concatenate(
            [((xs >> np.uint64(_LIMB * i)) & mask).astype(np.float64) for i in range(nlimbs)]
        )
        yl = np.concatenate(
            [((ys >> np.uint64(_LIMB * j)) & mask).astype(np.float64) for j in range(nlimbs)],
            axis=1,
        )
        prod = np.ascontiguousarray(xl @ yl)
        _kernels.combine_blocks(prod, nlimbs, coef, res, p, nthreads)


# ------------------------------------------------------------------------ sharing


def _uniform(gen: np.random.Generator, shape: tuple[int, ...], p: int) -> np.ndarray:
    """Uniform elements of Z_p (p = 0: of Z_2^64), exactly: raw 64-bit words of the
    stream masked to p's bit length, values >= p drawn again (rejection sampling, no
    modulo bias). The stream is split into fixed blocks filled on all cores, so a seed
    gives the same elements on any number of threads."""
    out = _fresh(shape)
    flat = out.reshape(-1)
    if flat.size:
        with split(gen, flat.size) as (bit_generators, block):
            _kernels.uniform_fill(bit_generators, block, p, flat, _config.omp_threads())
    return out


def additive_share(
    x: ArrayLike, n_parties: int, *, modulus: int | None = None, rng: RngLike = None
) -> np.ndarray:
    """Split ``x`` into ``n_parties`` additive shares: uniform ``s_1 .. s_{n-1}`` and
    ``s_n = x - (s_1 + ... + s_{n-1})`` mod m; any ``n - 1`` of them are independent of
    ``x``. Returns shape ``(n_parties, *x.shape)``, uint64.

    ``modulus=None`` shares in Z_2^64 (``x`` any integers, read mod 2**64); a prime
    ``modulus`` needs ``x`` in [0, p).
    """
    p = _modulus(modulus)
    n = check_int(n_parties, "n_parties", minimum=1)
    v = _operand(x, "x", p)
    check_allocation(2 * 8 * n * max(v.size, 1), "n_parties", "the shares")
    gen = resolve_for_dp(rng)
    shares = np.empty((n, *v.shape), dtype=_U64)
    if n > 1:
        shares[:-1] = _uniform(gen, (n - 1, *v.shape), p)
        total = sum(shares[:-1], axis=0, modulus=modulus)
        shares[-1] = sub(v, total, modulus=modulus)
    else:
        shares[0] = v
    return shares


def additive_reconstruct(shares: ArrayLike, *, modulus: int | None = None) -> Any:
    """``x = s_1 + ... + s_n`` mod m from the stacked shares (shape ``(n, ...)``)."""
    p = _modulus(modulus)
    s = _operand(shares, "shares", p)
    if s.ndim < 1 or s.shape[0] < 1:
        raise ValueError("shares must have shape (n_parties, ...) with n_parties >= 1")
    return sum(s, axis=0, modulus=modulus)


def shamir_share(
    x: ArrayLike, n_parties: int, threshold: int, *, p: int = MERSENNE61, rng: RngLike = None
) -> np.ndarray:
    """Shamir's (t, n) sharing over Z_p: shares ``f(1), ..., f(n)`` of a uniformly random
    polynomial ``f`` of degree ``t - 1`` with ``f(0) = x``, one polynomial per secret.

    Any ``threshold`` shares determine ``x`` (:func:`shamir_reconstruct`); fewer reveal
    nothing about it. Returns shape ``(n_parties, *x.shape)``; ``x`` in [0, p);
    ``1 <= threshold <= n_parties < p``. Evaluated by Horner's rule, vectorised over the
    secrets.
    """
    q = _modulus(p)
    n = check_int(n_parties, "n_parties", minimum=1)
    t = check_int(threshold, "threshold", minimum=1)
    if t > n:
        raise ValueError(f"threshold must be <= n_parties = {n}, got {t}")
    if n >= q:
        raise ValueError(f"n_parties must be < p = {q} (the points 1..n must be distinct)")
    if n >= 2**32:  # the kernel multiplies by the points as 32-bit numbers
        raise ValueError(f"n_parties must be < 2**32, got {n}")
    v = np.ascontiguousarray(_operand(x, "x", q)).reshape(-1)
    check_allocation(2 * 8 * n * max(v.size, 1), "n_parties", "the shares")
    gen = resolve_for_dp(rng)
    shares = _fresh((n, v.size))
    if v.size:
        # coefficients drawn inside the kernel, per block of secrets, from fixed blocks of
        # the stream: never a (t - 1) x N array in memory
        with split(gen, v.size) as (bit_generators, block):
            _kernels.shamir_fill(v, t, n, q, bit_generators, block, shares, _config.omp_threads())
    return shares.reshape((n, *np.shape(x)))


@functools.lru_cache(maxsize=256)
def _lagrange_at_zero(points: tuple[int, ...], p: int) -> tuple[int, ...]:
    """λ_j = Π_{m != j} x_m / (x_m - x_j) mod p: f(0) = Σ λ_j f(x_j)."""
    out = []
    for j, xj in enumerate(points):
        num, den = 1, 1
        for m, xm in enumerate(points):
            if m != j:
                num = num * xm % p
                den = den * (xm - xj) % p
        out.append(num * builtins.pow(den, -1, p) % p)
    return tuple(out)


def shamir_reconstruct(
    shares: ArrayLike,
    points: Any,
    *,
    p: int = MERSENNE61,
    threshold: int | None = None,
    check: bool = False,
) -> Any:
    """The secrets from Shamir shares ``shares[j] = f(points[j])`` by Lagrange
    interpolation at 0 (coefficients computed once per point set, then one weighted sum
    vectorised over the secrets).

    With ``threshold`` given, the first ``threshold`` shares are interpolated; with
    ``check`` the others must lie on the same polynomial (else ``ValueError``: an
    inconsistent or tampered share set). Without ``threshold`` every share is used.
    """
    q = _modulus(p)
    check = check_bool(check, "check")
    s = _operand(shares, "shares", q, check=False)  # range-checked by the kernel
    if s.ndim < 1:
        raise ValueError("shares must have shape (n_shares, ...)")
    try:
        pts = tuple(operator.index(v) for v in points)
    except TypeError:
        raise TypeError("points must be a sequence of ints") from None
    if len(pts) != s.shape[0]:
        raise ValueError(f"points has {len(pts)} entries but there are {s.shape[0]} shares")
    if len(set(pts)) != len(pts) or any(not 0 < v < q for v in pts):
        raise ValueError(f"points must be distinct and in [1, p) = [1, {q})")
    k = len(pts) if threshold is None else check_int(threshold, "threshold", minimum=1)
    if k > len(pts):
        raise ValueError(f"threshold = {k} shares are needed, got {len(pts)}")
    secret = _combine(s[:k], _lagrange_at_zero(pts[:k], q), q)
    if check and k < len(pts):
        for j in range(k, len(pts)):
            # the polynomial through the first k shares, evaluated at point j: the
            # Lagrange basis at x_j, computed the same way with the points shifted
            shifted = tuple((v - pts[j]) % q for v in pts[:k])
            if 0 in shifted:  # pragma: no cover - excluded by distinct points
                continue
            if not np.array_equal(_combine(s[:k], _lagrange_at_zero(shifted, q), q), s[j]):
                raise ValueError(
                    f"inconsistent shares: share {j} (point {pts[j]}) does not lie on the "
                    f"degree-{k - 1} polynomial through the first {k}"
                )
    return secret


def _combine(s: np.ndarray, lam: tuple[int, ...], q: int) -> Any:
    """Σ_j lam[j] * s[j] mod q over the stacked shares (already range-checked)."""
    rows = np.ascontiguousarray(s.reshape(s.shape[0], -1))
    res = _fresh(rows.shape[1])
    if res.size and _kernels.lincomb(
        rows, np.array(lam, dtype=_U64), res, q, _config.omp_threads()
    ):
        _range_error(rows, "shares", q)
    out = res.reshape(s.shape[1:])
    return out[()] if out.ndim == 0 else out


# --------------------------------------------------------------------- fixed point


def _frac_bits(frac_bits: Any) -> int:
    return check_int(frac_bits, "frac_bits", minimum=0, maximum=40)


def encode_fixed(x: ArrayLike, *, frac_bits: int = 16, modulus: int | None = None) -> Any:
    """Fixed-point encoding of real ``x``: ``round(x * 2**frac_bits)`` as an element of
    Z_2^64 (two's complement) or of Z_p (negatives as ``p - |v|``), CrypTen-style.

    The encoded integer must satisfy ``|v| < 2**62`` in the ring or ``|v| < p / 2`` in a
    field; otherwise ``OverflowError``. NaN or inf raise ``ValueError``. Rounding is to
    nearest, ties to even (``np.rint``).

    Range for products: ring products are exact modulo 2**64, but the product of two
    encodings (2 ``frac_bits`` fractional bits) is read as a signed 64-bit integer, so
    ``|x * y| * 2**(2 f)`` -- for ``@``, the accumulated sum -- must stay below 2**63:
    ``|x y| < 2**31`` with f = 16. Truncation also fails (a huge error) with probability
    about ``|x y| * 2**(2 f - 64)`` per element (see :func:`truncate_2pc`): keep values
    small (about 2**-19 per element for products near 100 with f = 16).
    """
    p = _modulus(modulus)
    f = _frac_bits(frac_bits)
    a = asarray(x, "x", np.float64)
    if a.size and not np.isfinite(a).all():
        raise ValueError("x must contain only finite values (found NaN or inf)")
    v = np.rint(np.ldexp(a, f))
    limit = float(2**62) if not p else float(p // 2)
    if v.size and float(np.max(np.abs(v))) >= limit:
        raise ResultOverflowError(
            f"x * 2**{f} must be below {'2**62' if not p else 'p/2'} in magnitude to encode, "
            f"found {float(np.max(np.abs(v))):.6g}"
        )
    iv = v.astype(np.int64)
    if not p:
        out = iv.view(np.uint64) if iv.ndim else np.array(iv).view(np.uint64)
    else:
        out = np.where(iv < 0, iv + p, iv).astype(np.uint64)
    return out[()] if out.ndim == 0 else out


def decode_fixed(v: ArrayLike, *, frac_bits: int = 16, modulus: int | None = None) -> Any:
    """Inverse of :func:`encode_fixed`: the signed integer (two's complement in the ring;
    ``v > p // 2`` negative in a field) divided by ``2**frac_bits``, as float64."""
    p = _modulus(modulus)
    f = _frac_bits(frac_bits)
    u = _operand(v, "v", p)
    if not p:
        signed = u.view(np.int64) if u.ndim else np.array(u).view(np.int64)
    else:
        iv = u.astype(np.int64)
        signed = np.where(iv > p // 2, iv - p, iv)
    out = np.ldexp(signed.astype(np.float64), -f)
    return out[()] if np.ndim(out) == 0 else out


def truncate_2pc(shares: ArrayLike, *, frac_bits: int = 16) -> np.ndarray:
    """Local truncation of two additive shares in Z_2^64 by ``2**frac_bits`` (SecureML,
    Mohassel & Zhang 2017, Theorem 1): party 0 keeps ``floor(s0 / 2**f)``, party 1 keeps
    ``2**64 - floor((2**64 - s1) / 2**f)``; no communication.

    For a shared value ``x`` with ``|x| < 2**l`` the result reconstructs to
    ``floor(x / 2**f)`` or that plus one (an error of one unit in the last fractional
    bit) except with probability at most ``2**(l + 1 - 64)`` over the sharing's
    randomness, when it is wrong by about ``2**(64 - f)``. Keep products of fixed-point
    encodings well below 2**63 (e.g. |x| < 2**40 gives a failure probability below
    2**-23 per element).
    """
    f = _frac_bits(frac_bits)
    s = _operand(shares, "shares", 0)
    if s.ndim < 1 or s.shape[0] != 2:
        raise ValueError(f"shares must have shape (2, ...) (two parties), got {s.shape}")
    sh = np.uint64(f)
    out = np.empty_like(s)
    out[0] = s[0] >> sh
    with np.errstate(over="ignore"):
        out[1] = np.uint64(0) - ((np.uint64(0) - s[1]) >> sh)
    return out


# ------------------------------------------------------------------ Beaver triples


class BeaverTriple(NamedTuple):
    """Additive shares (each of shape ``(n_parties, ...)``) of uniform ``a``, ``b`` and
    ``c = a * b`` (elementwise) or ``c = a @ b`` (matrix), from a trusted dealer."""

    a: np.ndarray
    b: np.ndarray
    c: np.ndarray


def beaver_triples(
    shape: Any,
    n_parties: int,
    *,
    op: str = "mul",
    shape_b: Any = None,
    modulus: int | None = None,
    rng: RngLike = None,
) -> BeaverTriple:
    """A trusted dealer's multiplication triple, shared additively among ``n_parties``.

    ``op="mul"``: ``a``, ``b`` of ``shape``, ``c = a * b``. ``op="matmul"``: ``a`` of
    ``shape`` (n, k), ``b`` of ``shape_b`` (k, m), ``c = a @ b``. Everything is uniform
    from the secure stream by default; a triple must be used for one multiplication only
    (reusing it leaks the difference of the two masked inputs).
    """
    p = _modulus(modulus)
    n = check_int(n_parties, "n_parties", minimum=1)
    sa = normalize_size(shape, "shape")
    if sa is None:
        raise TypeError("shape must be an int or a tuple of ints, got None")
    check_choice(op, "op", ("mul", "matmul"))
    if op == "mul":
        if shape_b is not None:
            raise ValueError("shape_b is only for op='matmul'")
        sb, sc = sa, sa
    else:
        if shape_b is None:
            raise ValueError("shape_b must be given for op='matmul'")
        sb_checked = normalize_size(shape_b, "shape_b")
        assert sb_checked is not None
        sb = sb_checked
        if len(sa) != 2 or len(sb) != 2 or sa[1] != sb[0]:
            raise ValueError(f"op='matmul' needs shapes (n, k) and (k, m), got {sa} and {sb}")
        sc = (sa[0], sb[1])
    # a, b, c and their shares, with room for the temporaries: refused by the size of
    # one party's triple first (the shape is too large for any number of parties), then
    # by the size of all of them
    elements = builtins.sum(max(math.prod(t), 1) for t in (sa, sb, sc))
    check_allocation(
        3 * 8 * elements, "shape" if op == "mul" else "shape and shape_b", "the triples"
    )
    check_allocation(3 * 8 * n * elements, "n_parties", "the triples")
    gen = resolve_for_dp(rng)
    a, b = _uniform(gen, sa, p), _uniform(gen, sb, p)
    c = mul(a, b, modulus=modulus) if op == "mul" else matmul(a, b, modulus=modulus)
    return BeaverTriple(*(additive_share(v, n, modulus=modulus, rng=gen) for v in (a, b, c)))


def _triple(triple: Any, p: int, op: str) -> BeaverTriple:
    """``triple`` checked: a :class:`BeaverTriple` (or any 3-tuple ``(a, b, c)``) of
    integer share arrays with one leading party axis, shaped for ``op``, with elements
    in [0, p) in a field."""
    if not isinstance(triple, tuple) or len(triple) != 3:
        raise TypeError(
            "triple must be a BeaverTriple (a, b, c) from beaver_triples, got "
            + (f"a tuple of {len(triple)}" if isinstance(triple, tuple) else type(triple).__name__)
        )
    a, b, c = (_operand(v, f"triple.{k}", p) for v, k in zip(triple, "abc", strict=True))
    if op == "mul":
        ok = a.ndim >= 1 and a.shape == b.shape == c.shape
        want = "a, b and c of one shape (n_parties, ...)"
    else:
        ok = (
            a.ndim == b.ndim == c.ndim == 3
            and a.shape[0] == b.shape[0] == c.shape[0]
            and a.shape[2] == b.shape[1]
            and c.shape[1:] == (a.shape[1], b.shape[2])
        )
        want = "a (n_parties, n, k), b (n_parties, k, m) and c (n_parties, n, m)"
    if not ok:
        raise ValueError(f"triple must hold {want}, got shapes {a.shape}, {b.shape} and {c.shape}")
    return BeaverTriple(a, b, c)


def _beaver_open(
    x_shares: Any, y_shares: Any, triple: Any, modulus: int | None, op: str
) -> tuple[Any, Any, BeaverTriple]:
    """Check the shares against the triple; open ε = x - a and δ = y - b."""
    p = _modulus(modulus)
    xs, ys = _operand(x_shares, "x_shares", p), _operand(y_shares, "y_shares", p)
    triple = _triple(triple, p, op)
    if xs.shape != triple.a.shape or ys.shape != triple.b.shape:
        raise ValueError(
            f"shares of shapes {xs.shape} and {ys.shape} do not match the triple's "
            f"{triple.a.shape} and {triple.b.shape}"
        )
    eps = additive_reconstruct(sub(xs, triple.a, modulus=modulus), modulus=modulus)
    dlt = additive_reconstruct(sub(ys, triple.b, modulus=modulus), modulus=modulus)
    return eps, dlt, triple


def beaver_mul(
    x_shares: ArrayLike, y_shares: ArrayLike, triple: BeaverTriple, *, modulus: int | None = None
) -> np.ndarray:
    """Shares of ``x * y`` (elementwise) from shares of ``x`` and ``y`` and a triple:
    the parties open ``ε = x - a`` and ``δ = y - b``; party i keeps
    ``c_i + ε b_i + δ a_i`` and party 0 adds ``ε δ`` (Beaver 1991). In fixed point the
    product has twice the fractional bits: truncate it (:func:`truncate_2pc`)."""
    eps, dlt, triple = _beaver_open(x_shares, y_shares, triple, modulus, "mul")
    z: np.ndarray = add(
        triple.c,
        add(
            mul(eps, triple.b, modulus=modulus),
            mul(dlt, triple.a, modulus=modulus),
            modulus=modulus,
        ),
        modulus=modulus,
    )
    z[0] = add(z[0], mul(eps, dlt, modulus=modulus), modulus=modulus)
    return z


def beaver_matmul(
    x_shares: ArrayLike, y_shares: ArrayLike, triple: BeaverTriple, *, modulus: int | None = None
) -> np.ndarray:
    """Shares of ``x @ y`` from shares of ``x`` (n, k) and ``y`` (k, m) and a matmul
    triple: open ``ε = x - a``, ``δ = y - b``; party i keeps ``c_i + ε @ b_i + a_i @ δ``
    and party 0 adds ``ε @ δ``."""
    eps, dlt, triple = _beaver_open(x_shares, y_shares, triple, modulus, "matmul")
    z = np.empty(triple.c.shape, dtype=_U64)
    for i in range(triple.c.shape[0]):
        t = add(
            matmul(eps, triple.b[i], modulus=modulus),
            matmul(triple.a[i], dlt, modulus=modulus),
            modulus=modulus,
        )
        z[i] = add(triple.c[i], t, modulus=modulus)
    z[0] = add(z[0], matmul(eps, dlt, modulus=modulus), modulus=modulus)
    return z


def truncate(shares: ArrayLike, *, frac_bits: int = 16, rng: RngLike = None) -> np.ndarray:
    """Probabilistic truncation of additive shares in Z_2^64 by ``2**frac_bits`` for any
    number of parties, with a trusted dealer's truncation pair (ABY3, Mohassel & Rindal
    2018, Section 5.1): the dealer shares a uniform ``r`` and ``r >> f`` (arithmetic
    shift of ``r`` read as signed); the parties open ``c = x - r`` (uniform: reveals
    nothing) and party 0 adds ``c >> f`` (signed) to its share of ``r >> f``.

    For a shared signed value ``|x| < 2**l`` the result is ``floor(x / 2**f)`` or one less,
    except with probability about ``2**(l + 1 - 64)``. Two parties can also use the
    dealer-free :func:`truncate_2pc`.
    """
    f = _frac_bits(frac_bits)
    s = _operand(shares, "shares", 0)
    if s.ndim < 1 or s.shape[0] < 1:
        raise ValueError("shares must have shape (n_parties, ...) with n_parties >= 1")
    n = s.shape[0]
    gen = resolve_for_dp(rng)
    r = _uniform(gen, s.shape[1:], 0)
    r_shift = (r.view(np.int64) >> np.int64(f)).view(np.uint64)
    r_sh = additive_share(r, n, rng=gen)
    rt_sh = additive_share(r_shift, n, rng=gen)
    c = additive_reconstruct(sub(s, r_sh))  # opened: x - r
    out = rt_sh
    c_shift = (np.asarray(c).view(np.int64) >> np.int64(f)).view(np.uint64)
    out[0] = add(out[0], c_shift)
    return out


# ----------------------------------------------------------------- SecretTensor


def _encode_plain(v: Any, frac_bits: int | None, modulus: int | None, name: str = "other") -> Any:
    if frac_bits is None:
        a = np.asarray(v)
        if a.dtype.kind == "f":
            raise TypeError(
                f"{name} must hold integers in an integer SecretTensor (frac_bits=None), "
                "got floats; give frac_bits for fixed-point reals"
            )
        p = _modulus(modulus)
        if p and a.dtype.kind == "i":
            a = np.where(a < 0, a % p, a).astype(np.uint64)  # negatives as p - |v|
        return _operand(a, name, p)
    return encode_fixed(v, frac_bits=frac_bits, modulus=modulus)


class SecretTensor:
    """An n-party additive secret sharing of a tensor, simulated in one process.

    ``shares`` has shape ``(n_parties, *shape)``; party i holds ``shares[i]``. With
    ``frac_bits`` (the default 16; only in the ring Z_2^64) the tensor holds fixed-point
    reals: products are truncated after every multiplication (:func:`truncate_2pc` for two
    parties, a dealer's truncation pair otherwise). ``frac_bits=None`` holds integers mod
    m (ring or field). Secret-times-secret products use a trusted dealer's Beaver triples
    (:func:`beaver_triples`), all randomness from the secure stream unless ``rng`` says
    otherwise.

    Fixed-point range: a product (or a matmul's accumulated sum) must stay below 2**31 in
    magnitude with 16 fractional bits, and each truncation fails with probability about
    ``|value| * 2**-32`` per element; see :func:`encode_fixed`. Nothing checks this on
    the shares (that would need to open them).

    Example -- one private logistic-regression step (linear approximation of the
    sigmoid, 0.5 + x / 4)::

        X = SecretTensor.share(features, 3)
        y = SecretTensor.share(labels, 3)
        w = SecretTensor.share(np.zeros(d), 3)
        p = X @ w * 0.25 + 0.5
        w = w - X.T @ (p - y) * (lr / len(labels))
        w.reveal()
    """

    __array_priority__ = 100  # numpy defers to SecretTensor's reflected operators

    def __init__(
        self,
        shares: Any,
        *,
        modulus: int | None = None,
        frac_bits: int | None = 16,
        rng: Any = None,
    ) -> None:
        self.modulus = modulus
        p = _modulus(modulus)
        if frac_bits is not None:
            frac_bits = _frac_bits(frac_bits)
            if p:
                raise ValueError(
                    "fixed point (frac_bits) is supported in the ring "
                    "(modulus=None) only; use frac_bits=None in a field"
                )
        self.frac_bits = frac_bits
        self.shares = _operand(shares, "shares", p)
        if self.shares.ndim < 1:
            raise ValueError("shares must have shape (n_parties, ...)")
        # resolved once: a seed must give one stream for every later triple and
        # truncation pair -- restarting it per operation would reuse them (and leak)
        self._rng = resolve_for_dp(rng)

    # construction and opening
    @classmethod
    def share(
        cls,
        x: ArrayLike,
        n_parties: int,
        *,
        modulus: int | None = None,
        frac_bits: int | None = 16,
        rng: RngLike = None,
    ) -> SecretTensor:
        """Share a plaintext (reals for fixed point, integers with ``frac_bits=None``)."""
        enc = _encode_plain(x, frac_bits, modulus, "x")
        gen = resolve_for_dp(rng)  # one stream for the shares and everything after
        return cls(
            additive_share(enc, n_parties, modulus=modulus, rng=gen),
            modulus=modulus,
            frac_bits=frac_bits,
            rng=gen,
        )

    def reveal(self) -> Any:
        """Open the tensor: the sum of the shares, decoded."""
        v = additive_reconstruct(self.shares, modulus=self.modulus)
        if self.frac_bits is None:
            return v
        return decode_fixed(v, frac_bits=self.frac_bits, modulus=self.modulus)

    @property
    def n_parties(self) -> int:
        return int(self.shares.shape[0])

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.shares.shape[1:])

    @property
    def T(self) -> SecretTensor:
        """The transpose (of a 1-D or 2-D tensor), share by share."""
        axes = (0, *range(self.shares.ndim - 1, 0, -1))
        return self._like(np.ascontiguousarray(self.shares.transpose(axes)))

    def _like(self, shares: np.ndarray) -> SecretTensor:
        return SecretTensor(shares, modulus=self.modulus, frac_bits=self.frac_bits, rng=self._rng)

    def _check_peer(self, other: SecretTensor) -> None:
        if (other.modulus, other.frac_bits, other.n_parties) != (
            self.modulus,
            self.frac_bits,
            self.n_parties,
        ):
            raise ValueError("SecretTensors must share modulus, frac_bits and n_parties")

    def _plain(self, other: Any) -> np.ndarray:
        return np.asarray(_encode_plain(other, self.frac_bits, self.modulus))

    def _expand(self, shape: tuple[int, ...]) -> np.ndarray:
        """The shares broadcast to ``(n_parties, *shape)``: new axes go after the
        parties' axis (numpy would align the parties' axis with a data axis)."""
        extra = len(shape) - len(self.shape)
        s = self.shares.reshape((self.n_parties, *(1,) * extra, *self.shape))
        return np.array(np.broadcast_to(s, (self.n_parties, *shape)))  # writeable copy

    def _truncate(self, shares: np.ndarray) -> SecretTensor:
        if self.frac_bits is None or self.frac_bits == 0:
            return self._like(shares)
        if self.n_parties == 2:
            return self._like(truncate_2pc(shares, frac_bits=self.frac_bits))
        return self._like(truncate(shares, frac_bits=self.frac_bits, rng=self._rng))

    # linear operations: local
    def __add__(self, other: Any) -> SecretTensor:
        m = self.modulus
        if isinstance(other, SecretTensor):
            self._check_peer(other)
            shape = np.broadcast_shapes(self.shape, other.shape)
            return self._like(add(self._expand(shape), other._expand(shape), modulus=m))
        plain = self._plain(other)
        z = self._expand(np.broadcast_shapes(self.shape, plain.shape))
        z[0] = add(z[0], plain, modulus=m)  # a public term: party 0 adds it
        return self._like(z)

    __radd__ = __add__

    def __neg__(self) -> SecretTensor:
        return self._like(neg(self.shares, modulus=self.modulus))

    def __sub__(self, other: Any) -> SecretTensor:
        return self + (-other if isinstance(other, SecretTensor) else _negate(other))

    def __rsub__(self, other: Any) -> SecretTensor:
        return (-self).__add__(other)

    def sum(self, axis: int | None = None) -> SecretTensor:
        """Sum over ``axis`` of the tensor (``None``: everything), share by share."""
        m = self.modulus
        if axis is None:
            flat = self.shares.reshape(self.n_parties, -1)
            return self._like(sum(flat, axis=1, modulus=m))
        ax = operator.index(axis)
        nd = len(self.shape)
        if not -nd <= ax < nd:  # never the parties' axis: that would open the secret
            raise ValueError(f"axis {ax} is out of bounds for a tensor of dimension {nd}")
        ax = ax + nd if ax < 0 else ax
        return self._like(sum(self.shares, axis=ax + 1, modulus=m))

    # products
    def __mul__(self, other: Any) -> SecretTensor:
        m = self.modulus
        if isinstance(other, SecretTensor):
            self._check_peer(other)
            shape = np.broadcast_shapes(self.shape, other.shape)
            t = beaver_triples(shape, self.n_parties, modulus=m, rng=self._rng)
            return self._truncate(
                beaver_mul(self._expand(shape), other._expand(shape), t, modulus=m)
            )
        plain = self._plain(other)
        shape = np.broadcast_shapes(self.shape, plain.shape)
        return self._truncate(mul(self._expand(shape), plain[None], modulus=m))

    __rmul__ = __mul__

    def __matmul__(self, other: Any) -> SecretTensor:
        m = self.modulus
        if isinstance(other, SecretTensor):
            self._check_peer(other)
            a, b = _as_2d(self.shares, left=True), _as_2d(other.shares, left=False)
            t = beaver_triples(
                a.shape[1:],
                self.n_parties,
                op="matmul",
                shape_b=b.shape[1:],
                modulus=m,
                rng=self._rng,
            )
            z = beaver_matmul(a, b, t, modulus=m)
        else:
            pb = _as_2d(self._plain(other)[None], left=False)[0]
            a = _as_2d(self.shares, left=True)
            z = np.stack([matmul(a[i], pb, modulus=m) for i in range(self.n_parties)])
            b_shape = np.shape(other)
            return self._truncate(_squeeze(z, len(self.shape), len(b_shape)))
        return self._truncate(_squeeze(z, len(self.shape), len(other.shape)))

    def __rmatmul__(self, other: Any) -> SecretTensor:
        m = self.modulus
        pa = _as_2d(self._plain(other)[None], left=True)[0]
        b = _as_2d(self.shares, left=False)
        z = np.stack([matmul(pa, b[i], modulus=m) for i in range(self.n_parties)])
        return self._truncate(_squeeze(z, len(np.shape(other)), len(self.shape)))

    def __repr__(self) -> str:
        kind = "integers" if self.frac_bits is None else f"fixed point, {self.frac_bits} bits"
        return f"SecretTensor(shape={self.shape}, n_parties={self.n_parties}, {kind})"


def _negate(v: Any) -> Any:
    a = np.asarray(v)
    if a.dtype.kind == "u":
        raise TypeError("subtract an unsigned plaintext via neg(); got an unsigned array")
    return -a


def _as_2d(shares: np.ndarray, *, left: bool) -> np.ndarray:
    """Stacked shares of a 1-D operand as a row (left) or column (right) matrix."""
    if shares.ndim == 2:
        return shares[:, None, :] if left else shares[:, :, None]
    if shares.ndim != 3:
        raise ValueError("@ needs 1-D or 2-D operands")
    return shares


def _squeeze(z: np.ndarray, nd_a: int, nd_b: int) -> np.ndarray:
    """Drop the axes _as_2d added for 1-D operands (as np.matmul does)."""
    if nd_a == 1:
        z = z[:, 0]
    if nd_b == 1:
        z = z[..., 0]
    return np.ascontiguousarray(z)
