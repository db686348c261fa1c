"""Ring Z_2^64 and prime-field kernels of ``ppml_fast.sharing`` (``add``, ``sub``,
``neg``, ``mul``, ``sum``, ``inv``, ``pow``, ``matmul``) against the Python-int oracle
``ppml_fast.reference.sharing``; the oracle's own primality test and known answers; and
the pure-numpy benchmark baselines (``numpy_mulmod``, ``numpy_matmul_mod``).

Moduli: None (Z_2^64), the small primes 2, 3 and 65537, the Mersenne prime 2^61 - 1 and
P62 = 2^62 - 57, the largest prime below 2^62 (a general prime with no special form).
Random operands are drawn with a quarter of their entries replaced by edge values (0, 1,
p - 1, 2^63, 2^64 - 1, ...).

Any RuntimeWarning (numpy overflow warnings from scalar arithmetic) is an error here.

Random cases run on fixed seeds and on one fresh seed per run (FRESH, printed in every
assertion message; rerun a failure with ``PPML_TEST_SEED=<printed seed>``). Every
comparison is exact (integers), so a failure on the fresh seed is a real disagreement.
"""

from __future__ import annotations

import math
import os
import warnings

import numpy as np
import pytest

import ppml_fast
from ppml_fast import sharing as sh
from ppml_fast.reference import sharing as ref

# numpy overflow warnings from the API (e.g. numpy-scalar arithmetic) are bugs: the maths
# wraps on purpose and the user should not see warnings about it
pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

FRESH = int(os.environ.get("PPML_TEST_SEED") or np.random.SeedSequence().entropy % 2**63)
SEEDS = [0, 1, 20240601, FRESH]
RING = 2**64
M61 = 2**61 - 1
P62 = 2**62 - 57  # checked to be the largest prime below 2**62 in test_p62
MODULI = [None, 2, 3, 65537, M61, P62]
MOD_IDS = ["ring", "p2", "p3", "p65537", "m61", "p62"]
# primes next to the limb and word boundaries of the kernels (21-bit limbs, 32-bit halves,
# 2**53 float64 mantissas, 2**61)
BOUNDARY_PRIMES = [
    5,
    251,
    2**21 - 9,
    2**21 + 17,
    2**31 - 1,
    2**32 - 5,
    2**32 + 15,
    2**42 - 11,
    2**42 + 15,
    2**53 - 111,
    2**53 + 5,
    2**61 + 15,
    2**62 - 87,
]
FIELDS = [2, 3, 65537, M61, P62]
FIELD_IDS = MOD_IDS[1:]
BINARY = {"add": (sh.add, ref.add), "sub": (sh.sub, ref.sub), "mul": (sh.mul, ref.mul)}


# --- helpers -----------------------------------------------------------------------------


def _m(modulus):
    return RING if modulus is None else modulus


def _edges(modulus):
    if modulus is None:
        return [
            0,
            1,
            2,
            3,
            2**32 - 1,
            2**32,
            2**61 - 1,
            2**63 - 1,
            2**63,
            2**63 + 1,
            2**64 - 2,
            2**64 - 1,
        ]
    p = modulus
    return sorted({0, 1, p - 1, max(p - 2, 0), p // 2, (p + 1) // 2 % p, min(2**32, p - 1)})


def _rand(gen, shape, modulus, edge_frac=0.25):
    """Uniform uint64 values in [0, m), with ``edge_frac`` of them edge values."""
    x = gen.integers(0, _m(modulus), size=shape, dtype=np.uint64)
    mask = gen.random(x.shape) < edge_frac
    edges = np.array(_edges(modulus), dtype=np.uint64)
    x[mask] = gen.choice(edges, size=int(mask.sum()))
    return x


def _check(got, want, msg):
    """``got`` is a uint64 array (or numpy uint64 scalar) equal to ``want``, shapes too."""
    g, w = np.asarray(got), np.asarray(want)
    assert g.dtype == np.uint64, f"{msg}: dtype {g.dtype}, expected uint64"
    assert g.shape == w.shape, f"{msg}: shape {g.shape}, expected {w.shape}"
    np.testing.assert_array_equal(g, w, err_msg=msg)


def _gen(seed):
    return np.random.default_rng(seed)


def _readonly(x):
    x = np.array(x, dtype=np.uint64)
    x.flags.writeable = False
    return x


# --- the oracle and its primality test ---------------------------------------------------


def test_mersenne_constant():
    assert sh.MERSENNE61 == 2**61 - 1 and isinstance(sh.MERSENNE61, int)
    assert ref.MERSENNE61 == 2**61 - 1


def test_is_prime_small_against_trial_division():
    def trial(n):
        return n >= 2 and all(n % d for d in range(2, math.isqrt(n) + 1))

    for n in range(5000):
        assert ref.is_prime(n) == trial(n), n


def test_is_prime_known_values():
    primes = [
        2,
        3,
        5,
        65537,
        2**31 - 1,
        2**32 - 5,
        2**32 + 15,
        M61,
        P62,
        2**64 - 59,
        1000000007,
        998244353,
    ]
    composites = [
        0,
        1,
        4,
        561,
        1105,
        2047,
        1373653,
        25326001,
        3215031751,
        2152302898747,
        3474749660383,
        341550071728321,
        3825123056546413051,  # strong pseudoprimes
        2**61 + 1,
        2**62 - 1,
        2**64 - 1,
        (2**31 - 1) ** 2,
        4294967291 * 4294967279,
        65537 * 65539,
        M61 * 2,
    ]
    for n in primes:
        assert ref.is_prime(n), n
    for n in composites:
        assert not ref.is_prime(n), n


def test_p62():
    assert ref.is_prime(P62)
    assert not any(ref.is_prime(n) for n in range(P62 + 1, 2**62))


def test_oracle_known_answers():
    assert int(ref.mul(2**64 - 1, 2**64 - 1)) == 1
    assert int(ref.add(2**64 - 1, 1)) == 0
    assert int(ref.sub(0, 1)) == 2**64 - 1
    assert int(ref.neg(np.int64(-5))) == 5
    assert int(ref.add(-(2**63), 0)) == 2**63
    assert int(ref.mul(M61 - 1, M61 - 1, modulus=M61)) == 1
    assert int(ref.inv(2, modulus=P62)) == (P62 + 1) // 2
    assert int(ref.inv(3)) * 3 % RING == 1
    assert int(ref.pow(3, 2**64 - 1)) == pow(3, 2**64 - 1, RING)
    assert int(ref.pow(0, 0, modulus=7)) == 1
    assert int(ref.sum(np.full(10, 2**64 - 1, np.uint64))) == RING - 10
    a = np.array([[1, 2], [3, 4]], np.uint64)
    _check(ref.matmul(a, a, modulus=5), [[2, 0], [0, 2]], "oracle matmul")
    _check(ref.matmul(a, a), a @ a, "oracle matmul ring")
    with pytest.raises(ValueError):
        ref.add(5, 0, modulus=5)
    with pytest.raises(ValueError):
        ref.inv(0, modulus=5)
    with pytest.raises(ValueError):
        ref.mul(1, 1, modulus=15)


# --- the numpy baselines -----------------------------------------------------------------


BASELINE_PRIMES = [
    2,
    3,
    65537,
    2**31 - 1,
    2**32 - 5,
    2**32 + 15,
    2**40 - 87,
    2**60 - 93,
    2**61 - 1,
    2**61 + 15,
    P62,
]


@pytest.mark.parametrize("p", BASELINE_PRIMES)
@pytest.mark.parametrize("seed", SEEDS)
def test_numpy_mulmod_baseline(p, seed):
    assert ref.is_prime(p)
    gen = _gen(seed)
    a, b = _rand(gen, 5000, p), _rand(gen, 5000, p)
    msg = f"p={p} seed={seed}"
    _check(ref.numpy_mulmod(a, b, p), ref.mul(a, b, modulus=p), msg)
    e = np.array(_edges(p), np.uint64)
    _check(
        ref.numpy_mulmod(e[:, None], e[None, :], p),
        ref.mul(e[:, None], e[None, :], modulus=p),
        msg + " edges",
    )
    _check(ref.numpy_mulmod(a, np.uint64(p - 1), p), ref.mul(a, p - 1, modulus=p), msg)


@pytest.mark.parametrize("seed", SEEDS)
def test_numpy_mulmod_random_primes(seed):
    gen = _gen(seed)
    for _ in range(30):
        bits = int(gen.integers(2, 63))
        p = int(gen.integers(2 ** (bits - 1), 2**bits))
        while not (ref.is_prime(p) and p < 2**62):
            p = p - 1 if p > 2 else 2
        a, b = _rand(gen, 500, p), _rand(gen, 500, p)
        _check(ref.numpy_mulmod(a, b, p), ref.mul(a, b, modulus=p), f"p={p} seed={seed}")


@pytest.mark.parametrize("p", [2, 65537, 2**32 + 15, M61, P62])
@pytest.mark.parametrize(
    "shape", [(1, 1, 1), (3, 5, 2), (64, 64, 64), (4, 4200, 3)], ids=lambda s: "x".join(map(str, s))
)
def test_numpy_matmul_mod_baseline(p, shape):
    n, k, m = shape
    seed = FRESH
    gen = _gen(seed)
    a, b = _rand(gen, (n, k), p), _rand(gen, (k, m), p)
    msg = f"p={p} shape={shape} seed={seed}"
    _check(ref.numpy_matmul_mod(a, b, p), ref.matmul(a, b, modulus=p), msg)
    # all p - 1: the largest partial sums, across the 2048-row float64 blocks
    full_a = np.full((n, k), p - 1, np.uint64)
    full_b = np.full((k, m), p - 1, np.uint64)
    _check(
        ref.numpy_matmul_mod(full_a, full_b, p), np.full((n, m), k % p, np.uint64), msg + " all p-1"
    )


# --- elementwise add / sub / mul / neg ----------------------------------------------------


@pytest.mark.parametrize("op", list(BINARY))
@pytest.mark.parametrize("modulus", MODULI, ids=MOD_IDS)
@pytest.mark.parametrize("seed", SEEDS)
def test_binary_random(op, modulus, seed):
    f, g = BINARY[op]
    gen = _gen(seed)
    a, b = _rand(gen, 3000, modulus), _rand(gen, 3000, modulus)
    _check(
        f(a, b, modulus=modulus), g(a, b, modulus=modulus), f"{op} modulus={modulus} seed={seed}"
    )


@pytest.mark.parametrize("op", list(BINARY))
@pytest.mark.parametrize("modulus", MODULI, ids=MOD_IDS)
def test_binary_all_edge_pairs(op, modulus):
    f, g = BINARY[op]
    e = np.array(_edges(modulus), np.uint64)
    _check(
        f(e[:, None], e[None, :], modulus=modulus),
        g(e[:, None], e[None, :], modulus=modulus),
        f"{op} modulus={modulus} edges",
    )


@pytest.mark.parametrize("p", [2, 3, 5, 7, 251])
def test_small_fields_exhaustive(p):
    """Every pair of a small field against plain Python arithmetic (not the oracle)."""
    a = np.repeat(np.arange(p, dtype=np.uint64), p)
    b = np.tile(np.arange(p, dtype=np.uint64), p)
    ai, bi = [int(v) for v in a], [int(v) for v in b]
    _check(sh.add(a, b, modulus=p), [(x + y) % p for x, y in zip(ai, bi, strict=True)], "add")
    _check(sh.sub(a, b, modulus=p), [(x - y) % p for x, y in zip(ai, bi, strict=True)], "sub")
    _check(sh.mul(a, b, modulus=p), [x * y % p for x, y in zip(ai, bi, strict=True)], "mul")
    _check(sh.neg(a, modulus=p), [-x % p for x in ai], "neg")


@pytest.mark.parametrize("modulus", MODULI, ids=MOD_IDS)
@pytest.mark.parametrize("seed", SEEDS)
def test_neg_random(modulus, seed):
    a = _rand(_gen(seed), 3000, modulus)
    _check(
        sh.neg(a, modulus=modulus),
        ref.neg(a, modulus=modulus),
        f"neg modulus={modulus} seed={seed}",
    )


@pytest.mark.parametrize("seed", SEEDS)
def test_ring_matches_numpy_wrapping(seed):
    """Mod 2^64 is numpy's wrapping uint64 arithmetic."""
    gen = _gen(seed)
    a, b = _rand(gen, 3000, None), _rand(gen, 3000, None)
    msg = f"seed={seed}"
    _check(sh.add(a, b), a + b, msg)
    _check(sh.sub(a, b), a - b, msg)
    _check(sh.mul(a, b), a * b, msg)
    _check(sh.neg(a), np.uint64(0) - a, msg)


@pytest.mark.parametrize("op", [*BINARY, "neg"])
@pytest.mark.parametrize("seed", SEEDS)
def test_ring_signed_inputs(op, seed):
    """int64 operands are read as their two's-complement uint64 values."""
    gen = _gen(seed)
    edges = np.array([0, 1, -1, -2, 2**63 - 1, -(2**63), -(2**32), 2**32], np.int64)
    a = gen.integers(-(2**63), 2**63, 1000, dtype=np.int64)
    b = gen.integers(-(2**63), 2**63, 1000, dtype=np.int64)
    a[:8], b[:8] = edges, edges[::-1]
    msg = f"{op} seed={seed}"
    if op == "neg":
        _check(sh.neg(a), ref.neg(a), msg)
        _check(sh.neg(a), np.uint64(0) - a.view(np.uint64), msg)
        return
    f, g = BINARY[op]
    want = g(a, b)
    _check(f(a, b), want, msg)
    _check(f(a.view(np.uint64), b.view(np.uint64)), want, msg + " as uint64")
    _check(f(a, b.view(np.uint64)), want, msg + " int64 with uint64")
    _check(f(a.view(np.uint64), b), want, msg + " uint64 with int64")


@pytest.mark.parametrize(
    "dtype", [np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.uint64]
)
@pytest.mark.parametrize("op", list(BINARY))
def test_other_integer_dtypes(dtype, op):
    f, g = BINARY[op]
    seed = FRESH
    gen = _gen(seed)
    info = np.iinfo(dtype)
    a = gen.integers(info.min, info.max, 500, dtype=dtype, endpoint=True)
    b = gen.integers(info.min, info.max, 500, dtype=dtype, endpoint=True)
    a[:2], b[:2] = [info.min, info.max], [info.max, info.min]
    msg = f"{op} {np.dtype(dtype)} seed={seed}"
    _check(f(a, b), g(a, b), msg + " ring")
    for p in (65537, P62):
        hi = min(int(info.max), p - 1)
        x = gen.integers(0, hi, 500, dtype=dtype, endpoint=True)
        y = gen.integers(0, hi, 500, dtype=dtype, endpoint=True)
        x[:2], y[:2] = [0, hi], [hi, 0]
        _check(f(x, y, modulus=p), g(x, y, modulus=p), msg + f" p={p}")
        _check(sh.neg(x, modulus=p), ref.neg(x, modulus=p), msg + f" neg p={p}")


@pytest.mark.parametrize("op", list(BINARY))
@pytest.mark.parametrize("modulus", MODULI, ids=MOD_IDS)
def test_scalar_operands(op, modulus):
    f, g = BINARY[op]
    seed = FRESH
    m = _m(modulus)
    a = _rand(_gen(seed), 200, modulus)
    msg = f"{op} modulus={modulus} seed={seed}"
    for s in {0, 1, m - 1, m // 2, 2 % m}:
        for scalar in (s, np.uint64(s)):
            _check(f(a, scalar, modulus=modulus), g(a, s, modulus=modulus), f"{msg} b={scalar!r}")
            _check(f(scalar, a, modulus=modulus), g(s, a, modulus=modulus), f"{msg} a={scalar!r}")
            for t in {0, 1, m - 1}:
                res = f(scalar, t, modulus=modulus)
                _check(res, np.uint64(int(g(s, t, modulus=modulus))), f"{msg} {s} {t}")
    if modulus is None:
        for s in (-1, -(2**63), np.int64(-3), np.int64(-(2**63)), 2**64 - 1, np.int32(-7)):
            _check(f(a, s), g(a, s), f"{msg} b={s!r}")
            _check(f(s, a), g(s, a), f"{msg} a={s!r}")
    else:
        for s in (np.int64(m - 1), np.uint32(min(m - 1, 2**32 - 1)), np.int8(1)):
            _check(f(a, s, modulus=modulus), g(a, s, modulus=modulus), f"{msg} b={s!r}")


def test_scalar_results_exact():
    """Known answers for scalar operands (0-d results, as numpy scalars or 0-d arrays)."""
    cases = [
        (sh.add, 2**64 - 1, 1, None, 0),
        (sh.add, -1, -1, None, 2**64 - 2),
        (sh.sub, 0, 1, None, 2**64 - 1),
        (sh.sub, -(2**63), 1, None, 2**63 - 1),
        (sh.mul, 2**64 - 1, 2**64 - 1, None, 1),
        (sh.mul, 2**63, 2, None, 0),
        (sh.mul, 2**32, 2**32, None, 0),
        (sh.mul, M61 - 1, M61 - 1, M61, 1),
        (sh.mul, P62 - 1, P62 - 1, P62, 1),
        (sh.mul, P62 - 1, 2, P62, P62 - 2),
        (sh.add, P62 - 1, P62 - 1, P62, P62 - 2),
        (sh.sub, 0, P62 - 1, P62, 1),
        (sh.add, 1, 1, 2, 0),
    ]
    for f, a, b, mod, want in cases:
        res = np.asarray(f(a, b, modulus=mod))
        assert res.shape == () and res.dtype == np.uint64, (f.__name__, a, b, mod, res)
        assert int(res) == want, (f.__name__, a, b, mod, int(res))
    assert int(np.asarray(sh.neg(1))) == 2**64 - 1
    assert int(np.asarray(sh.neg(0, modulus=P62))) == 0
    assert int(np.asarray(sh.neg(1, modulus=P62))) == P62 - 1


def test_ring_python_int_range():
    a = np.arange(4, dtype=np.uint64)
    for s in (-(2**63), 2**64 - 1, 2**63):
        _check(sh.add(a, s), ref.add(a, s), f"b={s}")
    for bad in (2**64, -(2**63) - 1, 2**70, -(2**64)):
        for f in (sh.add, sh.sub, sh.mul):
            with pytest.raises(ValueError, match="b"):
                f(a, bad)
            with pytest.raises(ValueError, match="a"):
                f(bad, a)
        with pytest.raises(ValueError, match="a"):
            sh.neg(bad)


@pytest.mark.parametrize("op", list(BINARY))
@pytest.mark.parametrize("modulus", MODULI, ids=MOD_IDS)
def test_broadcasting(op, modulus):
    f, g = BINARY[op]
    seed = FRESH
    gen = _gen(seed)
    for sa, sb in [
        ((3, 1, 4), (5, 4)),
        ((1,), (6,)),
        ((6,), (1,)),
        ((2, 1), (1, 7)),
        ((4, 3, 2), ()),
        ((2, 0), (1,)),
        ((0,), (0,)),
    ]:
        a, b = _rand(gen, sa, modulus), _rand(gen, sb, modulus)
        _check(
            f(a, b, modulus=modulus),
            g(a, b, modulus=modulus),
            f"{op} modulus={modulus} {sa} {sb} seed={seed}",
        )
    with pytest.raises(ValueError):
        f(np.zeros(3, np.uint64), np.zeros(4, np.uint64), modulus=modulus)


@pytest.mark.parametrize("op", list(BINARY))
@pytest.mark.parametrize("modulus", MODULI, ids=MOD_IDS)
def test_noncontiguous(op, modulus):
    f, g = BINARY[op]
    seed = FRESH
    gen = _gen(seed)
    big_a, big_b = _rand(gen, (40, 30), modulus), _rand(gen, (40, 30), modulus)
    views = [
        (big_a[::2], big_b[1::2]),
        (big_a[:, ::3], big_b[:, 1::3]),
        (big_a[:30].T, big_b[10:].T),
        (np.asfortranarray(big_a), big_b),
        (big_a[::-1, ::-2], big_b[:, ::-2]),
        (big_a[5], big_b[:, 7][:30]),
        (big_a.T[::2, :14], big_b[::3, ::2].T),
    ]
    for i, (a, b) in enumerate(views):
        _check(
            f(a, b, modulus=modulus),
            g(a, b, modulus=modulus),
            f"{op} modulus={modulus} view {i} seed={seed}",
        )
    _check(
        sh.neg(big_a[::-3, 1::2], modulus=modulus),
        ref.neg(big_a[::-3, 1::2], modulus=modulus),
        f"neg modulus={modulus} seed={seed}",
    )


@pytest.mark.parametrize("modulus", MODULI, ids=MOD_IDS)
def test_readonly_broadcast_and_byteswapped_inputs(modulus):
    gen = _gen(FRESH)
    a, b = _rand(gen, (5, 8), modulus), _rand(gen, (5, 8), modulus)
    msg = f"modulus={modulus} seed={FRESH}"
    ra, rb = _readonly(a), np.broadcast_to(b[0], (5, 8))
    for name, (f, g) in BINARY.items():
        _check(f(ra, rb, modulus=modulus), g(a, b[0], modulus=modulus), f"{name} readonly {msg}")
        _check(
            f(a.astype(">u8"), b.astype(">u8"), modulus=modulus),
            g(a, b, modulus=modulus),
            f"{name} big-endian {msg}",
        )
    _check(sh.neg(ra, modulus=modulus), ref.neg(a, modulus=modulus), "neg " + msg)
    _check(
        sh.sum(a.astype(">u8"), 1, modulus=modulus),
        ref.sum(a, 1, modulus=modulus),
        "sum big-endian " + msg,
    )
    _check(sh.pow(ra, rb, modulus=modulus), ref.pow(a, b[0], modulus=modulus), "pow " + msg)
    _check(
        sh.matmul(ra, rb.T, modulus=modulus),
        ref.matmul(a, b[0:1].repeat(5, 0).T, modulus=modulus),
        "matmul " + msg,
    )
    _check(
        sh.matmul(a.astype(">u8"), b.T.astype(">u8"), modulus=modulus),
        ref.matmul(a, b.T, modulus=modulus),
        "matmul big-endian " + msg,
    )


@pytest.mark.parametrize("modulus", MODULI, ids=MOD_IDS)
def test_inputs_unchanged_and_fresh_result(modulus):
    gen = _gen(FRESH)
    a, b = _rand(gen, (7, 9), modulus), _rand(gen, (7, 9), modulus)
    a0, b0 = a.copy(), b.copy()
    results = [f(a, b, modulus=modulus) for f, _ in BINARY.values()]
    results += [
        sh.neg(a, modulus=modulus),
        sh.pow(a, 3, modulus=modulus),
        sh.pow(a, b, modulus=modulus),
        sh.matmul(a, b.T, modulus=modulus),
    ]
    nz = a | np.uint64(1) if modulus is None else np.where(a == 0, np.uint64(1), a)
    nz0 = nz.copy()
    results.append(sh.inv(nz, modulus=modulus))
    results.append(sh.sum(a, axis=0, modulus=modulus))
    np.testing.assert_array_equal(a, a0)
    np.testing.assert_array_equal(b, b0)
    np.testing.assert_array_equal(nz, nz0)
    for r in results:
        assert not np.shares_memory(np.asarray(r), a) and not np.shares_memory(np.asarray(r), b)


# --- out= ---------------------------------------------------------------------------------


@pytest.mark.parametrize("op", list(BINARY))
@pytest.mark.parametrize("modulus", MODULI, ids=MOD_IDS)
def test_out(op, modulus):
    f, g = BINARY[op]
    seed = FRESH
    gen = _gen(seed)
    a, b = _rand(gen, (6, 5), modulus), _rand(gen, (6, 5), modulus)
    want = g(a, b, modulus=modulus)
    msg = f"{op} modulus={modulus} seed={seed}"
    out = np.full((6, 5), 12345, np.uint64)
    res = f(a, b, modulus=modulus, out=out)
    assert res is out, msg
    _check(out, want, msg)
    # broadcast into out
    out = np.empty((6, 5), np.uint64)
    assert f(a, b[2], modulus=modulus, out=out) is out
    _check(out, g(a, b[2], modulus=modulus), msg + " broadcast")
    assert f(a, 1, modulus=modulus, out=out) is out
    _check(out, g(a, 1, modulus=modulus), msg + " scalar")
    # out aliasing an input
    x = a.copy()
    assert f(x, b, modulus=modulus, out=x) is x
    _check(x, want, msg + " out=a")
    y = b.copy()
    assert f(a, y, modulus=modulus, out=y) is y
    _check(y, want, msg + " out=b")
    z = a.copy()
    assert f(z, z, modulus=modulus, out=z) is z
    _check(z, g(a, a, modulus=modulus), msg + " out=a=b")
    z = a.copy()
    assert f(z, z[0], modulus=modulus, out=z) is z
    _check(z, g(a, a[0], modulus=modulus), msg + " out=a, b a row of a")
    # a non-contiguous view of a bigger array as out=a
    big = _rand(gen, (12, 5), modulus)
    view = big[::2]
    a2 = view.copy()
    assert f(view, b, modulus=modulus, out=view) is view
    _check(view, g(a2, b, modulus=modulus), msg + " out=strided a")


@pytest.mark.parametrize("modulus", MODULI, ids=MOD_IDS)
def test_noncontiguous_out(modulus):
    gen = _gen(FRESH)
    a, b = _rand(gen, (6, 5), modulus), _rand(gen, (6, 5), modulus)
    msg = f"modulus={modulus} seed={FRESH}"
    for name, (f, g) in BINARY.items():
        big = np.full((12, 10), 5, np.uint64)
        for out in (big[::2, ::2], np.empty((5, 6), np.uint64).T, big[1::2, :5][::-1]):
            assert f(a, b, modulus=modulus, out=out) is out
            _check(out, g(a, b, modulus=modulus), f"{name} {msg}")
        assert (big[1::2, 5:] == 5).all() and (big[::2, 1::2] == 5).all(), "wrote outside out"
    out = np.empty((5, 6), np.uint64).T
    assert sh.pow(a, b, modulus=modulus, out=out) is out
    _check(out, ref.pow(a, b, modulus=modulus), "pow " + msg)
    out = np.empty((12, 10), np.uint64)[::2, ::2]
    assert sh.matmul(a[:, :5], b[:5], modulus=modulus, out=out) is out
    _check(out, ref.matmul(a[:, :5], b[:5], modulus=modulus), "matmul " + msg)


@pytest.mark.parametrize("modulus", MODULI, ids=MOD_IDS)
def test_neg_out(modulus):
    a = _rand(_gen(FRESH), (4, 6), modulus)
    want = ref.neg(a, modulus=modulus)
    out = np.empty_like(a)
    assert sh.neg(a, modulus=modulus, out=out) is out
    _check(out, want, f"modulus={modulus} seed={FRESH}")
    x = a.copy()
    assert sh.neg(x, modulus=modulus, out=x) is x
    _check(x, want, f"out=a modulus={modulus} seed={FRESH}")


@pytest.mark.parametrize("op", list(BINARY))
def test_out_partial_overlap_not_silently_wrong(op):
    """out overlapping an input at an offset: the right answer, or a ValueError."""
    f, g = BINARY[op]
    gen = _gen(FRESH)
    for modulus in (None, P62):
        buf = _rand(gen, 1001, modulus)
        b = _rand(gen, 1000, modulus)
        for src, dst in ((slice(0, 1000), slice(1, 1001)), (slice(1, 1001), slice(0, 1000))):
            x = buf.copy()
            want = g(x[src], b, modulus=modulus)
            try:
                f(x[src], b, modulus=modulus, out=x[dst])
            except ValueError:
                continue
            _check(x[dst], want, f"{op} modulus={modulus} src={src} dst={dst} seed={FRESH}")


def test_out_errors():
    a = np.arange(12, dtype=np.uint64).reshape(3, 4)
    ro = np.zeros((3, 4), np.uint64)
    ro.flags.writeable = False
    for f in (sh.add, sh.sub, sh.mul):
        for modulus in (None, 65537):
            with pytest.raises(ValueError, match="out"):
                f(a, a, modulus=modulus, out=np.empty((4, 3), np.uint64))
            with pytest.raises(ValueError, match="out"):
                f(a, a, modulus=modulus, out=np.empty(12, np.uint64))
            with pytest.raises(ValueError, match="out"):
                f(a, a[0], modulus=modulus, out=np.empty(4, np.uint64))
            for dt in (np.int64, np.float64, np.uint32):
                with pytest.raises(TypeError, match="out"):
                    f(a, a, modulus=modulus, out=np.empty((3, 4), dt))
            with pytest.raises(ValueError, match="out"):
                f(a, a, modulus=modulus, out=ro)
    with pytest.raises(ValueError, match="out"):
        sh.neg(a, out=np.empty((3, 3), np.uint64))
    with pytest.raises(TypeError, match="out"):
        sh.neg(a, out=np.empty((3, 4), np.int64))
    with pytest.raises(ValueError, match="out"):
        sh.neg(a, out=ro)
    with pytest.raises(ValueError, match="out"):
        sh.pow(a, 2, out=np.empty((3, 3), np.uint64))
    with pytest.raises(ValueError, match="out"):
        sh.matmul(a, a.T, out=np.empty((4, 4), np.uint64))
    with pytest.raises(TypeError, match="out"):
        sh.matmul(a, a.T, out=np.empty((3, 3), np.float64))


# --- field ranges, dtypes and the modulus --------------------------------------------------


def _calls(a_val, b_val, modulus):
    """(name of the bad operand, thunk) for every function with a / b as given."""
    return [
        ("a", lambda: sh.add(a_val, b_val, modulus=modulus)),
        ("a", lambda: sh.sub(a_val, b_val, modulus=modulus)),
        ("a", lambda: sh.mul(a_val, b_val, modulus=modulus)),
        ("a", lambda: sh.sum(a_val, modulus=modulus)),
        ("a", lambda: sh.sum(a_val, axis=0, modulus=modulus)),
        ("a", lambda: sh.inv(a_val, modulus=modulus)),
        ("a", lambda: sh.pow(a_val, 2, modulus=modulus)),
        ("b", lambda: sh.add(b_val, a_val, modulus=modulus)),
        ("b", lambda: sh.sub(b_val, a_val, modulus=modulus)),
        ("b", lambda: sh.mul(b_val, a_val, modulus=modulus)),
    ]


@pytest.mark.parametrize("p", FIELDS, ids=FIELD_IDS)
def test_field_range_errors(p):
    good = np.ones((2, 3), np.uint64)
    bads = [
        np.array([[0, 1, p], [1, 1, 1]], np.uint64),
        np.array([[1, 1, 1], [1, 1, 2**64 - 1]], np.uint64),
        np.array([[1, -1, 1], [1, 1, 1]], np.int64),
        np.array([[1, 1, 1], [1, 1, -(2**63)]], np.int64),
        np.array([[1, 1, 1], [1, 1, -1]], np.int8),
        np.full((2, 3), p, np.uint64),
    ]
    scalars = [p, p + 1, -1, 2**64 - 1, 2**64, np.uint64(p), np.int64(-1)]
    for bad in bads:
        for name, call in _calls(bad, good, p):
            with pytest.raises(ValueError, match=f"{name} must"):
                call()
        with pytest.raises(ValueError, match="a must"):
            sh.matmul(bad, good.T, modulus=p)
        with pytest.raises(ValueError, match="b must"):
            sh.matmul(good.T, bad, modulus=p)
    for s in scalars:
        for name, call in _calls(s, good, p):
            with pytest.raises(ValueError, match=f"{name} must"):
                call()


@pytest.mark.parametrize("p", FIELDS, ids=FIELD_IDS)
def test_neg_range_error_names_a(p):
    for bad in (np.array([0, p], np.uint64), np.array([1, -1], np.int64), p, -1):
        with pytest.raises(ValueError, match="a must"):
            sh.neg(bad, modulus=p)


@pytest.mark.parametrize("p", FIELDS, ids=FIELD_IDS)
def test_field_range_error_does_not_write_out(p):
    a = np.array([1, 0, p], np.uint64)
    out = np.full(3, 7, np.uint64)
    with pytest.raises(ValueError, match="a must"):
        sh.add(a, 1, modulus=p, out=out)
    np.testing.assert_array_equal(out, np.full(3, 7, np.uint64))


def test_float_inputs_rejected():
    f64 = np.ones(3)
    f32 = np.ones(3, np.float32)
    u = np.ones(3, np.uint64)
    for modulus in (None, 65537):
        for bad in (f64, f32, 1.0, np.float64(1.0), np.ones((3, 3)), 1 + 0j):
            with pytest.raises(TypeError):
                sh.add(bad, u, modulus=modulus)
            with pytest.raises(TypeError):
                sh.sub(u, bad, modulus=modulus)
            with pytest.raises(TypeError):
                sh.mul(bad, u, modulus=modulus)
            with pytest.raises(TypeError):
                sh.neg(bad, modulus=modulus)
            with pytest.raises(TypeError):
                sh.sum(bad, modulus=modulus)
            with pytest.raises(TypeError):
                sh.inv(bad, modulus=modulus)
            with pytest.raises(TypeError):
                sh.pow(bad, 2, modulus=modulus)
        with pytest.raises(TypeError):
            sh.matmul(np.ones((3, 3)), np.ones((3, 3), np.uint64), modulus=modulus)
        with pytest.raises(TypeError):
            sh.matmul(np.ones((3, 3), np.uint64), np.ones((3, 3), np.float32), modulus=modulus)
        with pytest.raises(TypeError):
            sh.add(np.array(["1", "2"]), u[:2], modulus=modulus)


BAD_MODULUS_TYPES = [7.0, "7", True, False, np.float64(7.0), 7.5, [7], 1j]
BAD_MODULUS_VALUES = [
    1,
    0,
    -1,
    -7,
    2**62,
    2**62 + 135,
    2**64 - 59,
    2**64,
    2**80,
    4,
    9,
    15,
    65535,
    2**61 + 1,
    2**62 - 1,
    M61 * 3,
    4294967291 * 1000003,
    3825123056546413051,
    2152302898747,
]


def _modulus_calls(modulus):
    a = np.array([[1, 0], [1, 1]], np.uint64)
    return [
        lambda: sh.add(a, a, modulus=modulus),
        lambda: sh.sub(a, a, modulus=modulus),
        lambda: sh.mul(a, a, modulus=modulus),
        lambda: sh.neg(a, modulus=modulus),
        lambda: sh.sum(a, modulus=modulus),
        lambda: sh.sum(a, axis=0, modulus=modulus),
        lambda: sh.inv(np.ones(2, np.uint64), modulus=modulus),
        lambda: sh.pow(a, 3, modulus=modulus),
        lambda: sh.matmul(a, a, modulus=modulus),
    ]


@pytest.mark.parametrize("modulus", BAD_MODULUS_TYPES, ids=repr)
def test_modulus_type_errors(modulus):
    for call in _modulus_calls(modulus):
        with pytest.raises(TypeError, match="modulus"):
            call()


@pytest.mark.parametrize("modulus", BAD_MODULUS_VALUES)
def test_modulus_value_errors(modulus):
    assert not (ref.is_prime(modulus) and 2 <= modulus < 2**62)
    for call in _modulus_calls(modulus):
        with pytest.raises(ValueError, match="modulus"):
            call()


@pytest.mark.parametrize("modulus", [2, 3, 5, 65537, 2**31 - 1, M61, P62])
def test_modulus_extremes_accepted(modulus):
    for call in _modulus_calls(modulus):
        call()


# --- sum -----------------------------------------------------------------------------------


@pytest.mark.parametrize("modulus", MODULI, ids=MOD_IDS)
@pytest.mark.parametrize("seed", SEEDS)
def test_sum_axes(modulus, seed):
    gen = _gen(seed)
    a = _rand(gen, (4, 5, 6), modulus)
    msg = f"modulus={modulus} seed={seed}"
    res = sh.sum(a, modulus=modulus)
    assert np.asarray(res).shape == (), msg
    _check(res, ref.sum(a, modulus=modulus), msg + " axis=None")
    for axis in (0, 1, 2, -1, -3, (0, 2), (2, -3), (0, 1, 2), (1,), ()):
        _check(
            sh.sum(a, axis, modulus=modulus),
            ref.sum(a, axis, modulus=modulus),
            f"{msg} axis={axis}",
        )
        _check(
            sh.sum(a, axis=axis, modulus=modulus),
            ref.sum(a, axis, modulus=modulus),
            f"{msg} axis={axis}",
        )
    for view in (a[:, ::2], a.T, a[::-1, 1:, ::3], np.asfortranarray(a)):
        for axis in (None, 0, 1, 2):
            _check(
                sh.sum(view, axis, modulus=modulus),
                ref.sum(view, axis, modulus=modulus),
                f"{msg} view axis={axis}",
            )
    v = _rand(gen, 1, modulus)
    _check(sh.sum(v, modulus=modulus), ref.sum(v, modulus=modulus), msg + " one element")
    _check(sh.sum(v, 0, modulus=modulus), ref.sum(v, 0, modulus=modulus), msg + " 1-D axis 0")


@pytest.mark.parametrize("modulus", MODULI, ids=MOD_IDS)
def test_sum_wraps(modulus):
    m = _m(modulus)
    n = 100_003
    a = np.full(n, m - 1, np.uint64)
    assert int(np.asarray(sh.sum(a, modulus=modulus))) == -n % m
    _check(sh.sum(a.reshape(1, n), 1, modulus=modulus), np.array([-n % m], np.uint64), "axis 1")
    b = np.full((n, 2), m - 1, np.uint64)
    _check(sh.sum(b, 0, modulus=modulus), np.full(2, -n % m, np.uint64), "axis 0")


@pytest.mark.parametrize("modulus", [None, M61, P62], ids=["ring", "m61", "p62"])
def test_sum_large_random(modulus):
    seed = FRESH
    gen = _gen(seed)
    a = _rand(gen, 400_001, modulus)
    want = sum(int(v) for v in a) % _m(modulus)
    assert int(np.asarray(sh.sum(a, modulus=modulus))) == want, f"seed={seed}"
    b = a[:400_000].reshape(800, 500)
    _check(sh.sum(b, 0, modulus=modulus), ref.sum(b, 0, modulus=modulus), f"axis 0 seed={seed}")
    _check(sh.sum(b, 1, modulus=modulus), ref.sum(b, 1, modulus=modulus), f"axis 1 seed={seed}")


def test_sum_ring_signed_and_dtypes():
    a = np.array([-1, -1, -(2**63), 5], np.int64)
    assert int(np.asarray(sh.sum(a))) == (-2 - 2**63 + 5) % RING
    b = np.array([[-128, 127], [-1, 3]], np.int8)
    _check(sh.sum(b, 0), ref.sum(b, 0), "int8 axis 0")
    c = np.array([[0, 2**32 - 1], [65536, 1]], np.uint32) % np.uint32(65537)
    _check(sh.sum(c, 1, modulus=65537), ref.sum(c, 1, modulus=65537), "uint32")


@pytest.mark.parametrize("modulus", MODULI, ids=MOD_IDS)
def test_sum_empty(modulus):
    z = np.zeros((3, 0), np.uint64)
    _check(sh.sum(np.zeros(0, np.uint64), modulus=modulus), np.uint64(0), "empty")
    _check(sh.sum(z, modulus=modulus), np.uint64(0), "(3, 0) axis None")
    _check(sh.sum(z, 1, modulus=modulus), np.zeros(3, np.uint64), "(3, 0) axis 1")
    _check(sh.sum(z, 0, modulus=modulus), np.zeros(0, np.uint64), "(3, 0) axis 0")
    _check(
        sh.sum(np.zeros((2, 0, 4), np.uint64), 1, modulus=modulus),
        np.zeros((2, 4), np.uint64),
        "(2, 0, 4) axis 1",
    )


def test_sum_errors():
    a = np.ones((2, 3), np.uint64)
    for axis in (2, -3):
        with pytest.raises(ValueError):
            sh.sum(a, axis)
    with pytest.raises(TypeError):
        sh.sum(a, 0.5)


@pytest.mark.parametrize("modulus", MODULI, ids=MOD_IDS)
def test_scalars_emit_no_warnings(modulus):
    """Scalar operands (0-d arithmetic, where numpy warns on wraparound) give no warnings."""
    m = _m(modulus)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for s in {1, m - 1, m // 2 + 1 if modulus is None else m - 2, 3 % m}:
            for f in (sh.add, sh.sub, sh.mul):
                f(s, m - 1, modulus=modulus)
                f(np.uint64(s), np.uint64(m - 1), modulus=modulus)
            sh.neg(s, modulus=modulus)
            sh.pow(s, 2**64 - 1, modulus=modulus)
            sh.sum(np.full(3, s, np.uint64), modulus=modulus)
            if (modulus is None and s % 2) or (modulus is not None and s % m):
                sh.inv(s, modulus=modulus)
                sh.inv(np.uint64(s), modulus=modulus)
                sh.inv(np.array([s], np.uint64), modulus=modulus)


# --- inv -------------------------------------------------------------------------------------


@pytest.mark.parametrize("p", [2, 3, 5, 7, 251, 65537])
def test_inv_every_element_of_small_field(p):
    a = np.arange(1, p, dtype=np.uint64)
    r = sh.inv(a, modulus=p)
    _check(r, ref.inv(a, modulus=p), f"p={p}")
    np.testing.assert_array_equal(a * np.asarray(r) % np.uint64(p), np.ones(p - 1, np.uint64))
    # in a shuffled order and as a 2-D array (the batch must not depend on the order)
    perm = _gen(FRESH).permutation(p - 1)
    if (p - 1) % 2 == 0:
        _check(
            sh.inv(a[perm].reshape(2, -1), modulus=p),
            np.asarray(r)[perm].reshape(2, -1),
            f"p={p} shuffled seed={FRESH}",
        )


@pytest.mark.parametrize("modulus", MODULI, ids=MOD_IDS)
@pytest.mark.parametrize("seed", SEEDS)
def test_inv_random(modulus, seed):
    gen = _gen(seed)
    a = _rand(gen, 2000, modulus)
    if modulus is None:
        a |= np.uint64(1)
    else:
        a[a == 0] = 1
    msg = f"modulus={modulus} seed={seed}"
    r = sh.inv(a, modulus=modulus)
    _check(r, ref.inv(a, modulus=modulus), msg)
    _check(ref.mul(a, r, modulus=modulus), np.ones(2000, np.uint64), msg + " a*inv(a)")
    if modulus is None:
        np.testing.assert_array_equal(a * np.asarray(r), np.ones(2000, np.uint64), msg)
    # 2-D, non-contiguous
    b = a.reshape(40, 50)[::3, 1::2]
    _check(sh.inv(b, modulus=modulus), ref.inv(b, modulus=modulus), msg + " strided")


def test_inv_known_values():
    with warnings.catch_warnings():  # warnings are test_scalars_emit_no_warnings' business
        warnings.simplefilter("ignore", RuntimeWarning)
        _inv_known_values()


def _inv_known_values():
    for modulus in (None, 2, 3, 65537, M61, P62):
        m = _m(modulus)
        e = np.array([1, m - 1], np.uint64)
        _check(sh.inv(e, modulus=modulus), e, f"modulus={modulus}")  # 1 and -1 are self-inverse
        assert int(np.asarray(sh.inv(1, modulus=modulus))) == 1
    assert int(np.asarray(sh.inv(3))) == pow(3, -1, RING)
    assert int(np.asarray(sh.inv(2**63 + 1))) == pow(2**63 + 1, -1, RING)
    assert int(np.asarray(sh.inv(np.int64(-3)))) == pow(-3, -1, RING)
    assert int(np.asarray(sh.inv(2, modulus=P62))) == (P62 + 1) // 2
    assert int(np.asarray(sh.inv(P62 - 2, modulus=P62))) == pow(P62 - 2, -1, P62)
    _check(sh.inv(np.zeros(0, np.uint64), modulus=P62), np.zeros(0, np.uint64), "empty")
    x = np.array([[3, 5, 7]], np.int64)
    _check(sh.inv(x), ref.inv(x), "int64 2-D")


@pytest.mark.parametrize("modulus", FIELDS, ids=FIELD_IDS)
def test_inv_zero_raises(modulus):
    gen = _gen(FRESH)
    with pytest.raises(ValueError):
        sh.inv(0, modulus=modulus)
    with pytest.raises(ValueError):
        sh.inv(np.zeros(5, np.uint64), modulus=modulus)
    for pos in (0, 1, 500, 999, 1023, 1024, 1025, 2047, 2999):
        a = _rand(gen, 3000, modulus)
        a[a == 0] = 1
        a[pos] = 0
        a0 = a.copy()
        with pytest.raises(ValueError):
            sh.inv(a, modulus=modulus)
        np.testing.assert_array_equal(a, a0)


def test_inv_even_raises_in_ring():
    gen = _gen(FRESH)
    for bad in (0, 2, 2**63, 2**64 - 2, np.int64(-2)):
        with pytest.raises(ValueError):
            sh.inv(bad)
    for pos in (0, 1, 500, 999):
        for even in (0, 2, 2**63, 6):
            a = _rand(gen, 1000, None) | np.uint64(1)
            a[pos] = even
            with pytest.raises(ValueError):
                sh.inv(a)


# --- pow -------------------------------------------------------------------------------------


@pytest.mark.parametrize("modulus", MODULI, ids=MOD_IDS)
@pytest.mark.parametrize("seed", SEEDS)
def test_pow_scalar_exponents(modulus, seed):
    gen = _gen(seed)
    a = _rand(gen, 300, modulus)
    m = _m(modulus)
    exps = [
        0,
        1,
        2,
        3,
        5,
        17,
        64,
        65,
        2**32 + 1,
        2**63 - 1,
        2**63 + 5,
        2**64 - 1,
        int(gen.integers(0, 2**63)),
    ]
    if modulus is not None:
        exps += [m - 2, m - 1, m, m + 1]
    for e in exps:
        _check(
            sh.pow(a, e, modulus=modulus),
            ref.pow(a, e, modulus=modulus),
            f"e={e} modulus={modulus} seed={seed}",
        )
    for e in (np.uint64(2**64 - 1), np.int64(7), np.uint8(3)):
        _check(
            sh.pow(a, e, modulus=modulus),
            ref.pow(a, int(e), modulus=modulus),
            f"e={e!r} modulus={modulus} seed={seed}",
        )


@pytest.mark.parametrize("modulus", MODULI, ids=MOD_IDS)
def test_pow_known_values(modulus):
    m = _m(modulus)
    zeros = np.zeros(3, np.uint64)
    _check(sh.pow(zeros, 0, modulus=modulus), np.ones(3, np.uint64), "0**0")
    _check(sh.pow(zeros, np.zeros(3, np.int64), modulus=modulus), np.ones(3, np.uint64), "0**0")
    _check(sh.pow(zeros, 5, modulus=modulus), zeros, "0**5")
    assert int(np.asarray(sh.pow(0, 0, modulus=modulus))) == 1
    for base in {1, 2 % m, m - 1}:
        for e in (0, 1, 2, 63, 64, 2**64 - 1):
            res = np.asarray(sh.pow(base, e, modulus=modulus))
            assert res.dtype == np.uint64 and int(res) == pow(base, e, m), (base, e, modulus)


@pytest.mark.parametrize("modulus", MODULI, ids=MOD_IDS)
@pytest.mark.parametrize("seed", SEEDS)
def test_pow_array_exponents(modulus, seed):
    gen = _gen(seed)
    a = _rand(gen, (6, 50), modulus)
    msg = f"modulus={modulus} seed={seed}"
    e = gen.integers(0, 2**64, (6, 50), dtype=np.uint64)
    e[0, :6] = [0, 1, 2, 2**63, 2**64 - 1, 2**64 - 2]
    _check(sh.pow(a, e, modulus=modulus), ref.pow(a, e, modulus=modulus), msg + " uint64 e")
    e64 = gen.integers(0, 2**63, (6, 50), dtype=np.int64)
    _check(sh.pow(a, e64, modulus=modulus), ref.pow(a, e64, modulus=modulus), msg + " int64 e")
    small = gen.integers(0, 200, (6, 1), dtype=np.int32)
    _check(
        sh.pow(a, small, modulus=modulus),
        ref.pow(a, small, modulus=modulus),
        msg + " broadcast e (6, 1)",
    )
    _check(
        sh.pow(a[0], e[:, :1], modulus=modulus),
        ref.pow(a[0], e[:, :1], modulus=modulus),
        msg + " broadcast a (50,) e (6, 1)",
    )
    _check(
        sh.pow(a[:, ::3], e[::-1, ::3], modulus=modulus),
        ref.pow(a[:, ::3], e[::-1, ::3], modulus=modulus),
        msg + " strided",
    )
    _check(
        sh.pow(a[0, 0], e, modulus=modulus),
        ref.pow(a[0, 0], e, modulus=modulus),
        msg + " scalar base",
    )
    base = int(a[0, 1])
    _check(
        sh.pow(base, e[0], modulus=modulus), ref.pow(base, e[0], modulus=modulus), msg + " int base"
    )
    out = np.empty((6, 50), np.uint64)
    assert sh.pow(a, e, modulus=modulus, out=out) is out
    _check(out, ref.pow(a, e, modulus=modulus), msg + " out")
    x = a.copy()
    assert sh.pow(x, e, modulus=modulus, out=x) is x
    _check(x, ref.pow(a, e, modulus=modulus), msg + " out=a")
    ee = e.copy()
    if modulus is None:  # e and the result are both uint64 here: out aliasing e
        assert sh.pow(a, ee, modulus=modulus, out=ee) is ee
        _check(ee, ref.pow(a, e, modulus=modulus), msg + " out=e")


@pytest.mark.parametrize("seed", SEEDS)
def test_pow_fermat_and_inverse(seed):
    gen = _gen(seed)
    for p in (65537, M61, P62):
        a = _rand(gen, 500, p)
        a[a == 0] = 1
        msg = f"p={p} seed={seed}"
        _check(sh.pow(a, p - 1, modulus=p), np.ones(500, np.uint64), msg + " a**(p-1)")
        _check(sh.pow(a, p - 2, modulus=p), sh.inv(a, modulus=p), msg + " a**(p-2)")
        _check(sh.pow(a, p, modulus=p), a, msg + " a**p")


def test_pow_errors():
    a = np.arange(4, dtype=np.uint64)
    for modulus in (None, P62):
        for bad in (-1, -(2**63), np.int64(-1)):
            with pytest.raises(ValueError, match="e"):
                sh.pow(a, bad, modulus=modulus)
        with pytest.raises(ValueError, match="e"):
            sh.pow(a, np.array([1, 2, -1, 3], np.int64), modulus=modulus)
        with pytest.raises(ValueError, match="e"):
            sh.pow(a, np.array([[0], [-5]], np.int8), modulus=modulus)
        for bad in (2.0, np.ones(4), 0.5, np.float32(1)):
            with pytest.raises(TypeError):
                sh.pow(a, bad, modulus=modulus)
        with pytest.raises(ValueError):
            sh.pow(a, np.ones(3, np.uint64), modulus=modulus)


# --- matmul ------------------------------------------------------------------------------


MATMUL_SHAPES = [(1, 1, 1), (3, 5, 2), (64, 64, 64), (100, 37, 129)]


@pytest.mark.parametrize("modulus", MODULI, ids=MOD_IDS)
@pytest.mark.parametrize("shape", MATMUL_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_matmul_against_oracle(modulus, shape):
    n, k, m = shape
    seed = FRESH
    gen = _gen(seed)
    a, b = _rand(gen, (n, k), modulus), _rand(gen, (k, m), modulus)
    msg = f"modulus={modulus} shape={shape} seed={seed}"
    res = sh.matmul(a, b, modulus=modulus)
    _check(res, ref.matmul(a, b, modulus=modulus), msg)
    if modulus is None:
        _check(res, a @ b, msg + " numpy wrapping matmul")
    else:
        assert (np.asarray(res) < np.uint64(modulus)).all(), msg


@pytest.mark.parametrize("seed", SEEDS)
def test_matmul_ring_bit_identical_to_numpy(seed):
    gen = _gen(seed)
    for n, k, m in [(1, 1, 1), (3, 5, 2), (64, 64, 64), (100, 37, 129), (65, 130, 67)]:
        msg = f"shape={(n, k, m)} seed={seed}"
        a, b = _rand(gen, (n, k), None), _rand(gen, (k, m), None)
        _check(sh.matmul(a, b), a @ b, msg)
        x = gen.integers(-(2**63), 2**63, (n, k), dtype=np.int64)
        y = gen.integers(-(2**63), 2**63, (k, m), dtype=np.int64)
        want = x.astype(np.uint64) @ y.astype(np.uint64)
        np.testing.assert_array_equal(want.view(np.int64), x @ y)  # numpy wraps both ways
        _check(sh.matmul(x, y), want, msg + " int64")
        _check(sh.matmul(x, b), x.astype(np.uint64) @ b, msg + " int64 @ uint64")
        s = gen.integers(-(2**31), 2**31, (n, k), dtype=np.int32)
        _check(sh.matmul(s, b), s.astype(np.int64).astype(np.uint64) @ b, msg + " int32")


@pytest.mark.parametrize("modulus", MODULI, ids=MOD_IDS)
def test_matmul_extreme_accumulation(modulus):
    """All entries m - 1 with a long inner dimension: the largest possible partial sums."""
    m = _m(modulus)
    for k in (1, 2, 3, 1000, 5003):
        a = np.full((3, k), m - 1, np.uint64)
        b = np.full((k, 4), m - 1, np.uint64)
        _check(
            sh.matmul(a, b, modulus=modulus),
            np.full((3, 4), k % m, np.uint64),
            f"modulus={modulus} k={k}",
        )


@pytest.mark.parametrize("modulus", MODULI, ids=MOD_IDS)
def test_matmul_long_inner_random(modulus):
    seed = FRESH
    gen = _gen(seed)
    a, b = _rand(gen, (3, 5003), modulus, 0.5), _rand(gen, (5003, 4), modulus, 0.5)
    _check(
        sh.matmul(a, b, modulus=modulus),
        ref.matmul(a, b, modulus=modulus),
        f"modulus={modulus} seed={seed}",
    )


@pytest.mark.parametrize("modulus", [None, 65537, M61, P62], ids=["ring", "p65537", "m61", "p62"])
def test_matmul_medium_against_baselines(modulus):
    """Sizes past any tile or thread threshold, odd on purpose; checked against numpy's
    wrapping matmul (ring) or the numpy baseline (field, itself checked against the oracle
    above)."""
    seed = FRESH
    gen = _gen(seed)
    for n, k, m in [(257, 129, 263), (300, 200, 250), (68, 600, 97)]:
        a, b = _rand(gen, (n, k), modulus), _rand(gen, (k, m), modulus)
        msg = f"modulus={modulus} {(n, k, m)} seed={seed}"
        res = sh.matmul(a, b, modulus=modulus)
        if modulus is None:
            _check(res, a @ b, msg)
            continue
        _check(res, ref.numpy_matmul_mod(a, b, modulus), msg)
        # Freivalds with Python ints (independent of the limb method the baseline shares
        # with the kernel): res @ r == a @ (b @ r) mod p for random vectors r
        for _ in range(2):
            r = _rand(gen, (m, 1), modulus)
            _check(
                ref.matmul(res, r, modulus=modulus),
                ref.matmul(a, ref.matmul(b, r, modulus=modulus), modulus=modulus),
                msg + " Freivalds",
            )


@pytest.mark.parametrize("modulus", MODULI, ids=MOD_IDS)
def test_matmul_noncontiguous(modulus):
    seed = FRESH
    gen = _gen(seed)
    big_a, big_b = _rand(gen, (40, 60), modulus), _rand(gen, (60, 40), modulus)
    cases = [
        (big_a.T, big_b.T),
        (big_a[::2, ::3], big_b[::3, 1::2]),
        (np.asfortranarray(big_a), big_b),
        (big_a[::-1], big_b[:, ::-1]),
        (big_a[:, :20], big_a[:20].T[:, :20].T),
    ]
    for i, (a, b) in enumerate(cases):
        _check(
            sh.matmul(a, b, modulus=modulus),
            ref.matmul(a, b, modulus=modulus),
            f"modulus={modulus} case {i} seed={seed}",
        )


@pytest.mark.parametrize("modulus", MODULI, ids=MOD_IDS)
def test_matmul_out(modulus):
    gen = _gen(FRESH)
    a, b = _rand(gen, (5, 7), modulus), _rand(gen, (7, 3), modulus)
    out = np.full((5, 3), 99, np.uint64)
    assert sh.matmul(a, b, modulus=modulus, out=out) is out
    _check(out, ref.matmul(a, b, modulus=modulus), f"modulus={modulus} seed={FRESH}")
    sq = _rand(gen, (6, 6), modulus)
    want = ref.matmul(sq, sq, modulus=modulus)
    x = sq.copy()
    res = sh.matmul(x, x, modulus=modulus, out=x)
    assert res is x
    _check(x, want, f"out=a=b modulus={modulus} seed={FRESH}")


def test_matmul_empty_and_errors():
    _check(
        sh.matmul(np.zeros((3, 0), np.uint64), np.zeros((0, 2), np.uint64)),
        np.zeros((3, 2), np.uint64),
        "k=0",
    )
    _check(
        sh.matmul(np.zeros((0, 4), np.uint64), np.ones((4, 2), np.uint64), modulus=P62),
        np.zeros((0, 2), np.uint64),
        "n=0",
    )
    a = np.ones((3, 4), np.uint64)
    for modulus in (None, P62):
        with pytest.raises(ValueError):
            sh.matmul(a, np.ones((5, 2), np.uint64), modulus=modulus)
        with pytest.raises(ValueError):
            sh.matmul(a, a, modulus=modulus)
        with pytest.raises(ValueError):
            sh.matmul(a.T, np.ones((4, 2), np.uint64), modulus=modulus)


# --- big arrays (threaded paths) --------------------------------------------------------


@pytest.mark.parametrize("modulus", [None, 3, M61, P62], ids=["ring", "p3", "m61", "p62"])
def test_large_elementwise(modulus):
    """300 001 elements (past any threading threshold), against numpy formulas and the
    numpy baseline (checked against the oracle above)."""
    seed = FRESH
    gen = _gen(seed)
    n = 300_001
    a, b = _rand(gen, n, modulus), _rand(gen, n, modulus)
    msg = f"modulus={modulus} seed={seed}"
    if modulus is None:
        _check(sh.mul(a, b), a * b, msg)
        _check(sh.add(a, b), a + b, msg)
        _check(sh.sub(a, b), a - b, msg)
        _check(sh.neg(a), np.uint64(0) - a, msg)
        return
    p = np.uint64(modulus)
    _check(sh.mul(a, b, modulus=modulus), ref.numpy_mulmod(a, b, modulus), msg)
    s = a + b  # < 2**63: no wrap
    _check(sh.add(a, b, modulus=modulus), np.where(s >= p, s - p, s), msg)
    _check(sh.sub(a, b, modulus=modulus), np.where(a >= b, a - b, a + (p - b)), msg)
    _check(sh.neg(a, modulus=modulus), np.where(a == 0, a, p - a), msg)
    c = a[:3000].copy()
    c[c == 0] = 1
    r = sh.inv(c, modulus=modulus)
    _check(ref.numpy_mulmod(c, np.asarray(r), modulus), np.ones(3000, np.uint64), msg + " inv")


# --- other primes, thread counts -----------------------------------------------------------


def _random_primes(gen, count):
    primes = []
    while len(primes) < count:
        bits = int(gen.integers(2, 63))
        p = int(gen.integers(2 ** (bits - 1), 2**bits))
        while not ref.is_prime(p):
            p -= 1
        primes.append(p)
    return primes


def _all_ops_against_oracle(p, gen, msg):
    a, b = _rand(gen, 300, p), _rand(gen, 300, p)
    for name, (f, g) in BINARY.items():
        _check(f(a, b, modulus=p), g(a, b, modulus=p), f"{name} {msg}")
    e = np.array(_edges(p), np.uint64)
    _check(
        sh.mul(e[:, None], e[None, :], modulus=p),
        ref.mul(e[:, None], e[None, :], modulus=p),
        f"mul edges {msg}",
    )
    _check(sh.neg(a, modulus=p), ref.neg(a, modulus=p), f"neg {msg}")
    _check(
        sh.sum(a.reshape(10, 30), 1, modulus=p),
        ref.sum(a.reshape(10, 30), 1, modulus=p),
        f"sum {msg}",
    )
    ex = gen.integers(0, 2**64, 300, dtype=np.uint64)
    _check(sh.pow(a, ex, modulus=p), ref.pow(a, ex, modulus=p), f"pow {msg}")
    nz = a.copy()
    nz[nz == 0] = 1
    _check(sh.inv(nz, modulus=p), ref.inv(nz, modulus=p), f"inv {msg}")
    x, y = _rand(gen, (9, 31), p), _rand(gen, (31, 7), p)
    _check(sh.matmul(x, y, modulus=p), ref.matmul(x, y, modulus=p), f"matmul {msg}")


@pytest.mark.parametrize("p", BOUNDARY_PRIMES)
def test_boundary_primes(p):
    assert ref.is_prime(p)
    seed = FRESH
    _all_ops_against_oracle(p, _gen(seed), f"p={p} seed={seed}")
    k = 4099
    full_a, full_b = np.full((2, k), p - 1, np.uint64), np.full((k, 3), p - 1, np.uint64)
    _check(
        sh.matmul(full_a, full_b, modulus=p),
        np.full((2, 3), k % p, np.uint64),
        f"matmul all p-1 p={p}",
    )


@pytest.mark.parametrize("seed", SEEDS)
def test_random_primes(seed):
    gen = _gen(seed)
    for p in _random_primes(gen, 12):
        _all_ops_against_oracle(p, gen, f"p={p} seed={seed}")


@pytest.mark.parametrize("modulus", [None, M61, P62], ids=["ring", "m61", "p62"])
def test_thread_count_independent(modulus):
    seed = FRESH
    gen = _gen(seed)
    a, b = _rand(gen, 200_001, modulus), _rand(gen, 200_001, modulus)
    x, y = _rand(gen, (130, 70), modulus), _rand(gen, (70, 90), modulus)
    nz = a | np.uint64(1) if modulus is None else np.where(a == 0, np.uint64(1), a)
    runs = []
    for nt in (1, 2, 3):
        with ppml_fast.num_threads(nt):
            runs.append(
                [
                    sh.mul(a, b, modulus=modulus),
                    sh.add(a, b, modulus=modulus),
                    sh.pow(a[:5000], b[:5000], modulus=modulus),
                    sh.sum(a, modulus=modulus),
                    sh.sum(a[:200_000].reshape(400, 500), 0, modulus=modulus),
                    sh.inv(nz, modulus=modulus),
                    sh.matmul(x, y, modulus=modulus),
                ]
            )
    for nt, run in zip((2, 3), runs[1:], strict=True):
        for i, (r1, r) in enumerate(zip(runs[0], run, strict=True)):
            _check(r, r1, f"op {i} with {nt} threads vs 1, modulus={modulus} seed={seed}")
