"""The Paillier kernels themselves: GMP path and AVX-512 IFMA Montgomery path against
Python's big integers, on random odd moduli of many sizes (fresh seeds each run, the seed
in every message), plus the DJN table walk (on awkward alphas too) and CRT encryption
through the public API at the avx512 level (IFMA) and below (GMP).
"""

from __future__ import annotations

import secrets
from functools import reduce

import numpy as np
import pytest

import ppml_fast
from ppml_fast import paillier
from ppml_fast._native import _cpu
from ppml_fast._native import paillier as kernels
from ppml_fast.paillier._limbs import from_limbs, nlimbs, to_limbs, vec
from ppml_fast.reference import paillier as ref

# The IFMA kernels run at the avx512 level on a CPU with IFMA; the GMP path at any other.
HAVE_IFMA = "avx512" in ppml_fast.available_isas() and _cpu.cpu_features()["avx512ifma"]
PATHS = [False, True] if HAVE_IFMA else [False]
# moduli around the digit (52-bit) and limb (64-bit) boundaries, up to the IFMA limit
# (8192 bits) and past it (GMP only)
BITS = [
    3,
    52,
    60,
    64,
    65,
    104,
    130,
    511,
    512,
    513,
    1024,
    2046,
    2048,
    2050,
    4095,
    4096,
    4097,
    6000,
    8190,
    8192,
    8256,
]


@pytest.fixture(params=PATHS, ids=lambda p: "ifma" if p else "gmp")
def path(request):
    with ppml_fast.isa("avx512" if request.param else "generic"):
        assert kernels.ifma_in_use() == request.param
        yield request.param


def _modulus(bits: int) -> int:
    return secrets.randbits(bits) | (1 << (bits - 1)) | 1


def _below(m: int, count: int) -> list[int]:
    return [secrets.randbelow(m) for _ in range(count)]


@pytest.mark.parametrize("bits", BITS)
def test_mulmod_rows(path, bits):
    m = _modulus(bits)
    a = [*_below(m, 37), 0, m - 1, 1]
    b = [*_below(m, 37), m - 1, m - 1, 0]
    width = nlimbs(m)
    out = np.empty((len(a), width), np.uint64)
    kernels.mulmod(to_limbs(a, width), to_limbs(b, width), vec(m), out, 2)
    assert from_limbs(out) == [x * y % m for x, y in zip(a, b, strict=True)], (
        f"bits={bits} path={path} m={m:#x}"
    )


@pytest.mark.parametrize("bits", [64, 513, 2048, 4096, 8192, 8256])
@pytest.mark.parametrize(
    "groups,count", [(1, 0), (1, 1), (1, 7), (1, 8), (1, 300), (3, 9), (5, 64)]
)
def test_prod_groups(path, bits, groups, count):
    m = _modulus(bits)
    width = nlimbs(m)
    vals = [_below(m, count) for _ in range(groups)]
    a = to_limbs([v for row in vals for v in row], width).reshape(groups, count, width)
    out = np.empty((groups, width), np.uint64)
    kernels.prod_groups(np.ascontiguousarray(a), vec(m), out, 2)
    want = [reduce(lambda x, y: x * y % m, row, 1 % m) for row in vals]
    assert from_limbs(out) == want, f"bits={bits} path={path}"


@pytest.mark.parametrize("bits", [60, 65, 512, 2048, 4096, 8192, 8256])
@pytest.mark.parametrize("ebits", [0, 1, 5, 16, 17, 96, 97, 640, 641, 2048])
def test_powm_public_and_negative(path, bits, ebits):
    m = _modulus(bits)
    base = _below(m, 9)
    exps = [secrets.randbits(ebits) | (1 << (ebits - 1)) if ebits else 0 for _ in base]
    neg = np.array([secrets.randbits(1) for _ in base], np.uint8)
    width = nlimbs(m)
    ewidth = max(1, (ebits + 63) // 64)
    out = np.empty((len(base), width), np.uint64)
    bad = np.zeros(len(base), np.uint8)
    nbad = kernels.powm(
        to_limbs(base, width), to_limbs(exps, ewidth), neg, vec(m), False, out, bad, 2
    )
    want, want_bad = [], []
    for x, e, s in zip(base, exps, neg.tolist(), strict=True):
        try:
            want.append(pow(x, -e if s else e, m))
            want_bad.append(0)
        except ValueError:  # not invertible
            want.append(0)
            want_bad.append(1)
    assert from_limbs(out) == want, f"bits={bits} ebits={ebits} path={path}"
    assert bad.tolist() == want_bad
    assert nbad == sum(want_bad)


def test_powm_secure_matches(path):
    m = _modulus(2048)
    base = _below(m, 6)
    exps = [secrets.randbits(1024) | 1 for _ in base]
    out = np.empty((6, 32), np.uint64)
    kernels.powm(to_limbs(base, 32), to_limbs(exps, 16), None, vec(m), True, out, None, 2)
    assert from_limbs(out) == [pow(x, e, m) for x, e in zip(base, exps, strict=True)]


@pytest.mark.parametrize("n_length", [512, 1024, 2048])
def test_djn_table_and_crt_paths(path, n_length):
    pk, sk = paillier.generate_paillier_keypair(n_length=n_length)
    x = np.random.default_rng().integers(-(10**9), 10**9, 40)
    for obf in ("djn", "classic"):
        for enc in (pk.encrypt_batch(x, obfuscation=obf), sk.encrypt_batch(x, obfuscation=obf)):
            cts = enc.ciphertexts(be_secure=False).tolist()
            few = 3 if n_length >= 2048 else 40  # the textbook oracle is slow (lambda powers)
            got = [ref.decrypt(sk.p, sk.q, c) for c in cts[:few]]
            assert got == [int(v) % pk.n for v in x[:few]], f"{obf} path={path}"
            assert np.array_equal(sk.decrypt_batch(enc), x)


def test_table_rebuilt_when_path_changes():
    if not HAVE_IFMA:
        pytest.skip("no AVX-512 IFMA on this CPU")
    pk, sk = paillier.generate_paillier_keypair(n_length=512)
    x = np.arange(-5, 5)
    for level in ("avx512", "avx2", "avx512"):  # the GMP walk must not use the IFMA table
        with ppml_fast.isa(level):
            assert kernels.ifma_in_use() == (level == "avx512")
            assert np.array_equal(sk.decrypt_batch(pk.encrypt_batch(x)), x)


def test_fixed_base_table_entries(path):
    m = _modulus(1030)
    h = secrets.randbelow(m)
    width = nlimbs(m)
    w, nwin = 3, 5
    table = np.empty((nwin, 8, width), np.uint64)
    kernels.fixed_base_table(vec(h, width), vec(m), w, table, 2)
    got = from_limbs(table.reshape(-1, width))
    want = [pow(h, d << (w * j), m) for j in range(nwin) for d in range(8)]  # d = 0: 1
    assert got == want


def test_rows_below():
    m = _modulus(200)
    vals = [0, 1, m - 1, m, m + 1, 2**256 - 1, *_below(m, 5)]
    lt = np.empty(len(vals), np.uint8)
    kernels.rows_below(to_limbs(vals, 4), vec(m, 4), lt)
    assert lt.tolist() == [int(v < m) for v in vals]


# --- the DJN fixed-base walk ---------------------------------------------------------------


@pytest.fixture(scope="module")
def k640():
    return paillier.generate_paillier_keypair(n_length=640)


def _alphas(bits: int) -> list[int]:
    ones = (1 << bits) - 1
    return [
        0,
        1,
        ones,
        1 << (bits - 1),
        int("f0" * (bits // 8), 16),
        0x10001,
        secrets.randbits(bits),
        secrets.randbits(bits) & ~0xFFFF0000FFFF,
    ]


def _djn_kernel(pk, rnd, mabs, threads: int) -> list[int]:
    """The DJN encryption kernel (mode 0, the key's table) on alpha rows and |m| rows."""
    table, w = pk._table
    out = np.empty((rnd.shape[0], nlimbs(pk.nsquare)), np.uint64)
    kernels.encrypt(
        0, pk._limb("n"), pk._limb("n2"), rnd, mabs, None, True, out, table, w, None, threads
    )
    return from_limbs(out)


def _djn_want(pk, msgs, alphas) -> list[int]:
    """The DJN ciphertexts (1 + n m) h_s^alpha mod n^2, by Python's pow."""
    return [
        (1 + pk.n * m) * pow(pk.hs, a, pk.nsquare) % pk.nsquare
        for m, a in zip(msgs, alphas, strict=True)
    ]


@pytest.mark.parametrize("window", [1, 3, 4, 5])
def test_djn_walk_matches_pow_for_awkward_alphas(k640, path, window):
    """The constant-time table walk gives h_s^alpha for zero, all-ones, single-bit and
    patterned alphas, at every window width and on both kernel paths."""
    pk, sk = k640
    pk.precompute(window)
    alphas = _alphas(pk._alpha_bits())
    msgs = [secrets.randbelow(pk.n) for _ in alphas]
    abits = pk._alpha_bits()
    rnd = to_limbs(alphas, (abits + 63) // 64)
    mabs = to_limbs(msgs, nlimbs(pk.n))
    assert pk._table[1] == window
    want = _djn_want(pk, msgs, alphas)
    assert _djn_kernel(pk, rnd, mabs, 2) == want
    assert [sk.raw_decrypt(c) for c in want] == msgs


def test_single_encrypts_switch_to_the_table(k640):
    pk, sk = k640
    fresh = paillier.PaillierPublicKey(pk.n, pk.hs)
    vals = list(range(-20, 20))
    encs = [fresh.encrypt(v) for v in vals]  # the first 4 use powmod_sec, then the table
    assert fresh._table is not None
    assert [sk.decrypt(e) for e in encs] == vals


# --- Montgomery form of the table (the walk without IFMA), single-row decryption ---------


@pytest.mark.parametrize("bits", [130, 1030, 4096])
def test_table_to_mont64_multiplies_by_r(bits):
    m = _modulus(bits)
    width = nlimbs(m)
    rows = [0, 1, m - 1, *_below(m, 5)]
    table = to_limbs(rows, width).reshape(1, len(rows), width).copy()
    kernels.table_to_mont64(table, vec(m), 2)
    r = 1 << (64 * width)
    assert from_limbs(table.reshape(-1, width)) == [x * r % m for x in rows]


@pytest.mark.parametrize("n_length", [520, 1024])
@pytest.mark.parametrize("threads", [1, 2, 4])
def test_raw_decrypt_on_one_or_two_threads(n_length, threads):
    """One ciphertext per call (its halves on two threads when allowed) and batches with
    fewer rows than threads decrypt like the textbook formula, invalid rows included."""
    pk, sk = paillier.generate_paillier_keypair(n_length=n_length)
    msgs = [0, 1, pk.max_int, pk.n - 1, pk.n - pk.max_int, *_below(pk.n, 4)]
    with ppml_fast.num_threads(threads):
        cts = [pk.raw_encrypt(m) for m in msgs]
        assert [sk.raw_decrypt(c) for c in cts] == msgs
        assert [ref.decrypt(sk.p, sk.q, c) for c in cts[:3]] == msgs[:3]
        for bad in (0, pk.nsquare, sk.p * 7):
            with pytest.raises(ValueError, match="ciphertext"):
                sk.raw_decrypt(bad)
        rows = to_limbs([cts[0], 0, cts[2]], nlimbs(pk.nsquare))
        mabs = np.empty((3, nlimbs(pk.n)), np.uint64)
        sign = np.empty(3, np.uint8)
        assert kernels.decrypt(sk._dec_limbs(), rows, mabs, sign, threads) == 1
        assert sign.tolist() == [0, 3, 0]
        assert from_limbs(mabs) == [msgs[0], 0, msgs[2]]


@pytest.mark.parametrize("threads", [1, 2, 4])
def test_djn_walk_split_between_threads(threads):
    """Fewer rows than threads with a long walk (n^2 of 48 limbs and more): each walk runs
    on two threads, half of the windows each; the result is still h_s^alpha."""
    pk, sk = paillier.generate_paillier_keypair(n_length=1536)
    assert nlimbs(pk.nsquare) >= 48
    pk.precompute()
    alphas = _alphas(pk._alpha_bits())[:3]
    msgs = [secrets.randbelow(pk.n) for _ in alphas]
    rnd = to_limbs(alphas, (pk._alpha_bits() + 63) // 64)
    with ppml_fast.num_threads(threads):
        for rows in (1, 3):  # one row; three rows (fewer than 4 threads)
            got = _djn_kernel(pk, rnd[:rows], to_limbs(msgs[:rows], nlimbs(pk.n)), threads)
            want = _djn_want(pk, msgs[:rows], alphas[:rows])
            assert got == want, f"threads={threads} rows={rows}"
        assert sk.decrypt(pk.encrypt(-2.5)) == -2.5


# The four-lane AVX2 constant-time power runs at the avx2 level and above (x86-64 builds).
HAVE_V4 = "avx2" in ppml_fast.available_isas()
V4_BITS = [64, 65, 100, 127, 511, 512, 1000, 2046, 2048, 2050, 3072, 4095, 4096, 6000, 8192]


@pytest.mark.skipif(not HAVE_V4, reason="no avx2 level on this machine")
@pytest.mark.parametrize("bits", V4_BITS)
def test_v4_powm_matches_powm_sec(bits):
    """Four lanes with four moduli (two equal), random bases wider than the moduli and
    random exponents, plus edge lanes: exponent 0, 1, all ones; base 0, 1, m - 1, m."""
    import gmpy2

    with ppml_fast.isa("avx2"):
        assert kernels.v4_in_use(bits)
        lm = (bits + 63) // 64
        for trial in range(3):
            ms = [_modulus(bits) for _ in range(4)]
            ms[2] = ms[0]
            if bits > 140:  # a lane whose modulus is shorter than the others (zero-padded)
                ms[3] = _modulus(bits - 70)
            ebits = secrets.choice([1, 63, 64, 65, bits // 2, bits])
            es = [secrets.randbits(ebits) for _ in range(4)]
            xs = [secrets.randbits(bits + 70) for _ in range(4)]
            if trial == 1:
                es = [0, 1, (1 << ebits) - 1, secrets.randbits(ebits)]
                xs = [0, 1, ms[2] - 1, ms[3]]
            if trial == 2:
                es = [(1 << ebits) - 1] * 4
                xs = [ms[0] - 1, ms[1] - 1, 2, ms[3] + 1]
            le = max(1, (max(e.bit_length() for e in es) + 63) // 64)
            out = np.full((4, lm), 7, np.uint64)
            rc = kernels.v4_powm4(to_limbs(xs, lm + 2), to_limbs(es, le), to_limbs(ms, lm), out)
            assert rc == 0
            want = [
                int(gmpy2.powmod_sec(x % m, e, m)) if e else 1 % m
                for x, e, m in zip(xs, es, ms, strict=True)
            ]
            assert from_limbs(out) == want, f"bits={bits} trial={trial}"


@pytest.mark.skipif(not HAVE_V4, reason="no avx2 level on this machine")
@pytest.mark.parametrize("n_length", [520, 1024, 1090, 2048, 2049])
@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("rows", [2, 3, 7])
def test_v4_decrypt_rows_match_generic(n_length, threads, rows):
    """Batches of two rows and more decrypt in pairs on the four-lane power at the avx2
    level: the same plaintexts, signs and invalid-row codes as the generic level (GMP's
    mpz_powm_sec), odd row counts and invalid rows included."""
    pk, sk = paillier.generate_paillier_keypair(n_length=n_length)
    msgs = [0, 1, pk.max_int, pk.n - 1, pk.n - pk.max_int, *_below(pk.n, rows)][:rows]
    cts = [pk.raw_encrypt(m) for m in msgs]
    if rows >= 3:
        cts[1] = 0  # invalid: zero
        cts[-1] = sk.p * 5  # invalid: shares a factor with n
    width = nlimbs(pk.nsquare)
    got = {}
    for level in ("avx2", "generic"):
        with ppml_fast.isa(level), ppml_fast.num_threads(threads):
            mabs = np.full((rows, nlimbs(pk.n)), 9, np.uint64)
            sign = np.full(rows, 9, np.uint8)
            nbad = kernels.decrypt(sk._dec_limbs(), to_limbs(cts, width), mabs, sign, threads)
            got[level] = (nbad, sign.tolist(), from_limbs(mabs))
    assert got["avx2"] == got["generic"]
    nbad, sign, mabs = got["avx2"]
    assert nbad == (2 if rows >= 3 else 0)
    for i, (m, c) in enumerate(zip(msgs, cts, strict=True)):
        if sign[i] == 3:
            assert mabs[i] == 0
        else:
            assert ref.decrypt(sk.p, sk.q, c) == m
            assert (pk.n - mabs[i] if sign[i] == 1 else mabs[i]) == m


@pytest.mark.skipif(not HAVE_V4, reason="no avx2 level on this machine")
@pytest.mark.parametrize("n_length", [520, 1024, 2048])
@pytest.mark.parametrize("window", [1, 4, 5])
@pytest.mark.parametrize(("rows", "threads"), [(4, 1), (5, 1), (9, 2), (12, 3)])
def test_v4_djn_groups_match_pow(n_length, window, rows, threads):
    """At the avx2 level, batches of DJN walks run four at a time in the AVX2 lanes (a
    partial last group included): h_s^alpha for awkward alphas, the same as the generic
    level's walk and as Python's pow."""
    pk, _ = paillier.generate_paillier_keypair(n_length=n_length)
    pk.precompute(window)
    abits = pk._alpha_bits()
    alphas = (_alphas(abits) * 2)[:rows]
    msgs = [secrets.randbelow(pk.n) for _ in alphas]
    rnd = to_limbs(alphas, (abits + 63) // 64)
    mabs = to_limbs(msgs, nlimbs(pk.n))
    got = {}
    for level in ("avx2", "generic"):
        with ppml_fast.isa(level):
            got[level] = _djn_kernel(pk, rnd, mabs, threads)
    want = _djn_want(pk, msgs, alphas)
    assert got["avx2"] == want
    assert got["generic"] == want


HAVE_ADX = HAVE_V4 and bool(
    kernels.adx_powm(vec(3, 1), vec(1, 1), vec(5, 1), np.zeros(1, np.uint64)) == 0
)


@pytest.mark.skipif(not HAVE_ADX, reason="no BMI2/ADX on this CPU")
@pytest.mark.parametrize("bits", [64, 65, 127, 256, 511, 520, 1024, 1030, 2048, 2050, 4096, 8192])
def test_adx_powm_matches_powm_sec(bits):
    """The MULX/ADX power (a lone ciphertext's CRT half) equals GMP's mpz_powm_sec for
    random and edge bases and exponents, moduli padded to a multiple of 4 limbs."""
    import gmpy2

    lm = (bits + 63) // 64
    m = _modulus(bits)
    cases = [
        (secrets.randbits(bits + 80), secrets.randbits(bits // 2)),
        (0, secrets.randbits(100)),
        (1, (1 << 200) - 1),
        (m - 1, (1 << bits) - 1),
        (m, 5),
        (secrets.randbits(bits), 0),
        (secrets.randbits(bits), 1),
    ]
    for x, e in cases:
        le = max(1, (e.bit_length() + 63) // 64)
        out = np.full(lm, 3, np.uint64)
        assert kernels.adx_powm(vec(x, lm + 2), vec(e, le), vec(m, lm), out) == 0
        want = int(gmpy2.powmod_sec(x % m, e, m)) if e else 1 % m
        assert from_limbs(out[None, :])[0] == want, f"bits={bits} x={x % 1000} e={e % 1000}"


@pytest.mark.skipif(not HAVE_ADX, reason="no BMI2/ADX on this CPU")
@pytest.mark.parametrize("n_length", [520, 1024, 1090, 2048, 2049])
def test_single_row_decrypt_adx_matches_generic(n_length):
    """A lone ciphertext at the avx2 level decrypts on the MULX/ADX power, with one thread
    and with its halves on two: the same as the generic level (mpz_powm_sec)."""
    pk, sk = paillier.generate_paillier_keypair(n_length=n_length)
    with ppml_fast.isa("avx2"):
        assert kernels.adx_in_use((nlimbs(sk.p * sk.p) + 3) // 4 * 4)
    msgs = [0, 1, pk.max_int, pk.n - 1, *_below(pk.n, 3)]
    cts = [pk.raw_encrypt(m) for m in msgs]
    for threads in (1, 2):
        for level in ("avx2", "generic"):
            with ppml_fast.isa(level), ppml_fast.num_threads(threads):
                assert [sk.raw_decrypt(c) for c in cts] == msgs, (level, threads)


@pytest.mark.skipif(not HAVE_ADX, reason="no BMI2/ADX on this CPU")
def test_ct_power_before_the_table_matches_generic(k640):
    """h_s^alpha before a key has its table: the MULX/ADX power at the avx2 level and
    powmod_sec at the generic level give the same value as pow."""
    pk, _ = k640
    for alpha in _alphas(pk._alpha_bits())[1:]:  # alpha = 0 is never drawn
        want = pow(pk.hs, alpha, pk.nsquare)
        for level in ("avx2", "generic"):
            with ppml_fast.isa(level):
                assert pk._ct_power(alpha) == want, (level, alpha % 1000)


@pytest.mark.skipif(not HAVE_V4, reason="no avx2 level on this machine")
def test_kernel_test_entries_refuse_bad_shapes():
    """The kernel-test entries refuse shapes the kernels cannot take, without writing."""
    m4 = to_limbs([_modulus(130) for _ in range(4)], 3)
    x4 = to_limbs([5] * 4, 3)
    out4 = np.full((4, 3), 7, np.uint64)
    assert kernels.v4_powm4(x4, np.zeros((4, 0), np.uint64), m4, out4) == -1  # no limbs
    assert kernels.v4_powm4(x4[:, :2].copy(), to_limbs([3] * 4, 1), m4, out4) == -1  # Lx < Lm
    even = m4.copy()
    even[1, 0] ^= 1
    assert kernels.v4_powm4(x4, to_limbs([3] * 4, 1), even, out4) == -1
    assert (out4 == 7).all()
    with pytest.raises(ValueError, match="v4_powm4"):
        kernels.v4_powm4(x4[:3], to_limbs([3] * 4, 1), m4, out4)
    if HAVE_ADX:
        out = np.full(3, 7, np.uint64)
        m = m4[0].copy()
        assert kernels.adx_powm(vec(5, 3), np.zeros(0, np.uint64), m, out) == -1
        assert kernels.adx_powm(vec(5, 2), vec(3, 1), m, out) == -1
        top0 = m.copy()
        top0[2] = 0
        assert kernels.adx_powm(vec(5, 3), vec(3, 1), top0, out) == -1
        assert (out == 7).all()
        with pytest.raises(ValueError, match="adx_powm"):
            kernels.adx_powm(vec(5, 3), vec(3, 1), m, np.zeros(2, np.uint64))
