"""The sharing kernels at every ISA level this CPU has (``ppml_fast.available_isas()``):
each level is really selected (the package's and the extension's view), each result equals
the Python-int oracle ``ppml_fast.reference.sharing``, and all levels give identical bits.

Kernels with variants: ``mul`` mod 2^61 - 1 and mod a general prime, the range check
(``any_ge``, run when ``out=`` is given), ``matmul`` mod 2^64, Shamir sharing (Horner) and
reconstruction (Lagrange sums). Sizes that are not multiples of the vector widths or of
the matmul's block sizes (0, 1, 3, 7, 33, ...), non-contiguous inputs, and edge values
(0, 1, p - 1, 2^64 - 1, ...). Random cases run on fixed seeds and on one fresh seed per
run (rerun a failure with ``PPML_TEST_SEED=<printed seed>``).
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import ppml_fast
from ppml_fast import sharing as sh
from ppml_fast._native import sharing as kernels
from ppml_fast.reference import sharing as ref

FRESH = int(os.environ.get("PPML_TEST_SEED") or np.random.SeedSequence().entropy % 2**63)
SEEDS = [0, 7, FRESH]
# seeded share streams are what the cross-level comparison needs
pytestmark = pytest.mark.filterwarnings("ignore::ppml_fast.InsecureRandomnessWarning")
LEVELS = ppml_fast.available_isas()
INDEX = {"generic": 0, "avx2": 1, "avx512": 2}
M61 = 2**61 - 1
P62 = 2**62 - 57
PRIMES = [M61, P62, 65537, 2**31 - 1, 2**61 + 15]
SIZES = [0, 1, 3, 7, 33, 100, 1031]
MATMUL_SHAPES = [
    (1, 1, 1),
    (3, 5, 7),
    (33, 65, 17),
    (0, 4, 3),
    (4, 0, 3),
    (4, 3, 0),
    (2, 300, 9),
    (70, 257, 41),
    (97, 31, 130),
]


def _edges(m):
    if m is None:
        return [0, 1, 2**32 - 1, 2**32, 2**63, 2**64 - 2, 2**64 - 1]
    return [0, 1, m - 1, m - 2, m // 2, min(2**32, m - 1)]


def _rand(gen, shape, m):
    hi = 2**64 if m is None else m
    x = gen.integers(0, hi, size=shape, dtype=np.uint64)
    mask = gen.random(x.shape) < 0.25
    x[mask] = gen.choice(np.array(_edges(m), dtype=np.uint64), size=int(mask.sum()))
    return x


def _at_each_level(fn):
    """``fn()`` at every level, the level asserted; returns {level: result}."""
    out = {}
    for level in LEVELS:
        with ppml_fast.isa(level):
            assert ppml_fast.get_isa() == level
            assert kernels._get_isa() == INDEX[level]
            out[level] = fn()
    return out


def _same_everywhere(results, want, msg):
    for level, got in results.items():
        got = np.asarray(got)
        assert got.dtype == np.uint64, f"{msg} at {level}: dtype {got.dtype}"
        np.testing.assert_array_equal(got, want, err_msg=f"{msg} at {level}")


def test_levels_listed_and_selectable():
    assert LEVELS[0] == "generic"
    assert ppml_fast.get_isa() in LEVELS
    _at_each_level(lambda: None)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("p", PRIMES)
@pytest.mark.parametrize("n", SIZES)
def test_mul_levels(n, p, seed):
    gen = np.random.default_rng([seed, n, p % 2**32])
    a, b = _rand(gen, n, p), _rand(gen, n, p)
    want = ref.mul(a, b, modulus=p)
    msg = f"n={n} p={p} seed={seed}"
    _same_everywhere(_at_each_level(lambda: sh.mul(a, b, modulus=p)), want, msg)
    # out= given: the range check runs first
    _same_everywhere(
        _at_each_level(lambda: sh.mul(a, b, modulus=p, out=np.empty(n, np.uint64))), want, msg
    )
    if n:  # scalar operands (stride 0) on either side
        _same_everywhere(
            _at_each_level(lambda: sh.mul(a[:1].copy(), b, modulus=p)),
            ref.mul(a[:1], b, modulus=p),
            msg,
        )
        _same_everywhere(
            _at_each_level(lambda: sh.mul(a, b[-1], modulus=p)), ref.mul(a, b[-1], modulus=p), msg
        )


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("p", [M61, P62])
def test_mul_levels_noncontiguous_and_large(p, seed):
    gen = np.random.default_rng([seed, p % 2**32])
    a, b = _rand(gen, (2, 40001), p), _rand(gen, (40001, 2), p)
    x, y = a[1, ::2], b[::2, 0]  # strided views
    want = ref.mul(x, y, modulus=p)
    _same_everywhere(_at_each_level(lambda: sh.mul(x, y, modulus=p)), want, f"seed={seed}")


@pytest.mark.parametrize("p", [M61, P62, 65537])
@pytest.mark.parametrize("n", [1, 7, 33, 70001])
def test_range_check_levels(p, n):
    """A value >= p anywhere (first, last, 2^64 - 1, exactly p) is caught at every level."""
    gen = np.random.default_rng(n)
    for pos, bad in ((0, p), (n - 1, 2**64 - 1), (n // 2, 2**63), (n - 1, p + 1)):
        a, b = _rand(gen, n, p), _rand(gen, n, p)
        a[pos] = bad
        for level in LEVELS:
            with ppml_fast.isa(level):
                for out in (None, np.empty(n, np.uint64)):
                    with pytest.raises(ValueError, match="a"):
                        sh.mul(a, b, modulus=p, out=out)
                    with pytest.raises(ValueError):
                        sh.mul(b, a, modulus=p, out=out)


def _prime_below(n):
    n -= 1
    while not ref.is_prime(n):
        n -= 1
    return n


# general primes (the Barrett path, not 2^61 - 1): small ones, both sides of 2^32 (the
# avx2 body shortcuts Barrett's shifts for k >= 33), and up to just below 2^62
BARRETT_PRIMES = [
    2,
    3,
    65537,
    2**31 - 1,
    _prime_below(2**32),
    2**32 + 15,
    _prime_below(2**33),
    2**61 + 15,
    _prime_below(M61),  # 2^61 - 1 itself has its own path
    2**62 - 57,
]
BARRETT_SIZES = [0, 1, 3, 4, 5, 7, 16, 17, 33, 1000, 100003]


def test_barrett_primes_are_prime():
    assert all(ref.is_prime(p) for p in BARRETT_PRIMES)
    assert not any(ref.is_prime(n) for n in (1, 4, 2**61 - 3, 2**62 - 1, 561, 3215031751))


def _barrett_oracle(a, b, p):
    """(a b) mod p elementwise with Python ints."""
    a, b = np.broadcast_arrays(np.asarray(a), np.asarray(b))
    flat = [
        int(x) * int(y) % p for x, y in zip(a.ravel().tolist(), b.ravel().tolist(), strict=True)
    ]
    return np.array(flat, dtype=np.uint64).reshape(a.shape)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("p", BARRETT_PRIMES)
@pytest.mark.parametrize("n", BARRETT_SIZES)
def test_mul_barrett_levels(n, p, seed):
    """mul mod a general prime at every level against Python ints: contiguous operands,
    broadcast scalars on either side (and both), ``out=``, strided views."""
    gen = np.random.default_rng([seed, n, p % 2**32, p >> 32])
    a, b = _rand(gen, n, p), _rand(gen, n, p)
    msg = f"n={n} p={p} seed={seed}"
    want = _barrett_oracle(a, b, p)
    _same_everywhere(_at_each_level(lambda: sh.mul(a, b, modulus=p)), want, msg)
    out = np.empty(n, np.uint64)
    got = _at_each_level(lambda: sh.mul(a, b, modulus=p, out=out).copy())
    _same_everywhere(got, want, msg + " out=")
    for s in {0, 1, p - 1, p - 2, int(gen.integers(0, p))}:
        if s >= p:
            continue
        s_arr = np.uint64(s)
        _same_everywhere(
            _at_each_level(lambda s_arr=s_arr: sh.mul(s_arr, b, modulus=p)),
            _barrett_oracle(s_arr, b, p),
            f"{msg} scalar a={s}",
        )
        _same_everywhere(
            _at_each_level(lambda s_arr=s_arr: sh.mul(a, s_arr, modulus=p, out=out).copy()),
            _barrett_oracle(a, s_arr, p),
            f"{msg} scalar b={s}",
        )
    # strided views (every other element of a wider array; a reversed view)
    wa, wb = _rand(gen, 2 * n, p), _rand(gen, n, p)
    x, y = wa[::2], wb[::-1]
    _same_everywhere(
        _at_each_level(lambda: sh.mul(x, y, modulus=p)), _barrett_oracle(x, y, p), msg + " strided"
    )


@pytest.mark.parametrize("p", [3, 65537, 2**32 + 15, 2**62 - 57])
def test_mul_barrett_all_edges(p):
    """Every pair of edge operands (0, 1, 2, p - 1, p - 2, p // 2, 2^32 - 1 ...)."""
    edges = sorted(
        {v for v in (0, 1, 2, p - 1, p - 2, p // 2, p // 2 + 1, 2**32 - 1, 2**32) if v < p}
    )
    a = np.array([x for x in edges for _ in edges], dtype=np.uint64)
    b = np.array([y for _ in edges for y in edges], dtype=np.uint64)
    _same_everywhere(
        _at_each_level(lambda: sh.mul(a, b, modulus=p)), _barrett_oracle(a, b, p), f"p={p}"
    )


@pytest.mark.parametrize("p", [3, 65537, 2**32 + 15, 2**62 - 57])
@pytest.mark.parametrize("n", [4, 5, 33, 1000, 100003])
@pytest.mark.parametrize("side", ["a", "b", "scalar-a", "scalar-b"])
def test_mul_barrett_range_error_levels(p, n, side):
    """An operand >= p (p itself, p + 1, 2^63, 2^64 - 1; anywhere, a broadcast scalar too)
    raises the same error at every level, with and without ``out=``, and ``out`` is left
    untouched."""
    gen = np.random.default_rng([n, p % 2**32])
    for pos, bad in ((0, p), (n - 1, 2**64 - 1), (n // 2, 2**63), (n - 2, p + 1), (3, 2**62)):
        if bad < p:
            continue
        a, b = _rand(gen, n, p), _rand(gen, n, p)
        if side == "a":
            a[pos] = bad
        elif side == "b":
            b[pos] = bad
        elif side == "scalar-a":
            a = np.uint64(bad)
        else:
            b = np.uint64(bad)
        name = side[-1]
        msgs = {}
        for level in LEVELS:
            with ppml_fast.isa(level):
                assert ppml_fast.get_isa() == level
                for out in (None, np.full(n, 5, np.uint64)):
                    with pytest.raises(ValueError) as err:
                        sh.mul(a, b, modulus=p, out=out)
                    msgs.setdefault(out is None, set()).add(str(err.value))
                    assert name in str(err.value)
                    if out is not None:
                        assert (out == 5).all()
        assert all(len(v) == 1 for v in msgs.values()), msgs


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("shape", MATMUL_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_matmul_ring_levels(shape, seed):
    n, k, m = shape
    gen = np.random.default_rng([seed, n, k, m])
    a, b = _rand(gen, (n, k), None), _rand(gen, (k, m), None)
    want = ref.matmul(a, b)
    _same_everywhere(_at_each_level(lambda: sh.matmul(a, b)), want, f"{shape} seed={seed}")


@pytest.mark.parametrize("n", [1, 5, 64])
def test_matmul_ring_all_ones_bits(n):
    """Every operand 2^64 - 1 (= -1): each entry is k mod 2^64, carries everywhere."""
    a = np.full((n, 2 * n + 3), 2**64 - 1, dtype=np.uint64)
    b = np.full((2 * n + 3, n + 1), 2**64 - 1, dtype=np.uint64)
    want = np.full((n, n + 1), 2 * n + 3, dtype=np.uint64)
    _same_everywhere(_at_each_level(lambda: sh.matmul(a, b)), want, f"n={n}")


def test_matmul_ring_levels_large_noncontiguous():
    """Larger than one K block and one column block of the packed kernel, with
    non-contiguous operands (the API makes them contiguous)."""
    gen = np.random.default_rng(FRESH)
    a = _rand(gen, (260, 1100), None)[:, ::2]  # 260 x 550
    b = _rand(gen, (550, 211), None).T.copy().T  # Fortran order
    want = (a.view(np.int64) @ b.view(np.int64)).view(np.uint64)  # numpy wraps mod 2^64
    _same_everywhere(_at_each_level(lambda: sh.matmul(a, b)), want, f"seed={FRESH}")


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("p", [M61, P62, 65537])
@pytest.mark.parametrize("n", [0, 1, 3, 33, 1029])
def test_shamir_levels(n, p, seed):
    x = _rand(np.random.default_rng([seed, n]), n, p)
    shares = _at_each_level(lambda: sh.shamir_share(x, 7, 4, p=p, rng=seed))
    first = shares[LEVELS[0]]
    _same_everywhere(shares, first, f"shares n={n} p={p} seed={seed}")
    assert first.shape == (7, n)
    for pts in ([1, 2, 3, 4], [7, 5, 3, 2], [2, 3, 4, 5, 6, 7]):
        sub = first[[q - 1 for q in pts]]
        got = _at_each_level(lambda sub=sub, pts=pts: sh.shamir_reconstruct(sub, pts, p=p))
        _same_everywhere(got, x, f"reconstruct n={n} p={p} points={pts}")
        # the Lagrange sums against the oracle on the same shares
        lam = [1] * len(pts)
        for j, xj in enumerate(pts):
            for q in pts:
                if q != xj:
                    lam[j] = lam[j] * q * pow(q - xj, -1, p) % p
        want = np.zeros(n, dtype=object)
        for j in range(len(pts)):
            want = (want + lam[j] * sub[j].astype(object)) % p
        np.testing.assert_array_equal(x.astype(object), want)


@pytest.mark.parametrize("p", [M61, P62])
def test_mul_levels_past_the_streaming_size(p):
    """2^21 + 13 products (the avx2 Mersenne kernel streams its stores past 2^21), into an
    ``out`` that starts off any 32-byte boundary; the pure-numpy reference (itself checked
    against the oracle in test_sharing.py) as the expected values, and a value >= p near
    the end caught."""
    n = 2**21 + 13
    gen = np.random.default_rng(FRESH)
    a, b = _rand(gen, n, p), _rand(gen, n, p)
    want = ref.numpy_mulmod(a, b, p)
    np.testing.assert_array_equal(want[:500], ref.mul(a[:500], b[:500], modulus=p))
    _same_everywhere(_at_each_level(lambda: sh.mul(a, b, modulus=p)), want, f"p={p}")
    for level in LEVELS:
        with ppml_fast.isa(level):
            out = np.empty(n + 1, dtype=np.uint64)[1:]
            sh.mul(a, b, modulus=p, out=out)
            np.testing.assert_array_equal(out, want, err_msg=level)
    b[n - 3] = p
    for level in LEVELS:
        with ppml_fast.isa(level), pytest.raises(ValueError):
            sh.mul(a, b, modulus=p)


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("where", [0, 5, 37, 38])  # vector lanes and the scalar tail of 39
@pytest.mark.parametrize("bad", [M61, M61 + 1, 2**61, 2**64 - 1])
def test_shamir_reconstruct_rejects_out_of_range_shares_at_each_level(level, where, bad):
    shares = sh.shamir_share(np.arange(39, dtype=np.uint64), 5, 3, p=M61, rng=1)
    shares[1, where] = bad
    with ppml_fast.isa(level):
        assert ppml_fast.get_isa() == level
        with pytest.raises(ValueError, match="shares"):
            sh.shamir_reconstruct(shares[:3], [1, 2, 3], p=M61)
