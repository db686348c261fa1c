"""Scalar surface of ``ppml_fast.paillier``: keys, encoding, EncryptedNumber, errors.

Checked against the textbook oracle ``ppml_fast.reference.paillier`` (encryption
(n+1)^m r^n mod n^2, lambda/mu decryption, Fraction encoding) and, where installed, against
python-paillier (``phe``): for the same key and r the ciphertext integers must be equal,
and ciphertexts must decrypt across the two libraries. The batch API (EncryptedArray) is
in ``test_paillier_batch.py``.

Keys are small (tiny hand-made ones, 256 and 512 bits) so the file runs in seconds. The
key n = 126869 = 293 * 433 is only ever used with a fixed r: a random r in [1, n) shares a
factor with such a small n about once in 175 draws.

Random cases run on fixed seeds and one fresh seed per run (FRESH, printed in assertion
messages; rerun with ``PPML_TEST_SEED=<seed>``). All comparisons are exact.
"""

from __future__ import annotations

import math
import operator
import os
import pickle
import sys
from fractions import Fraction

import gmpy2
import numpy as np
import pytest

import ppml_fast
from ppml_fast import paillier as pl
from ppml_fast._errors import PPMLError
from ppml_fast.reference import paillier as ref

from .conftest import TOY_N, TOY_P, TOY_Q  # the classic toy key: n = 293 * 433

FRESH = int(os.environ.get("PPML_TEST_SEED") or np.random.SeedSequence().entropy % 2**63)
SEEDS = [0, 1, 20240601, FRESH]

# numpy warnings escaping the API (overflow in scalar arithmetic, ...) are bugs
pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")


FLOATS = [
    0.0,
    -0.0,
    1.0,
    -1.0,
    0.5,
    1.5,
    -2.25,
    math.pi,
    -1 / 3,
    1e-300,
    -1e-300,
    1e300,
    -1e300,
    5e-324,
    -5e-324,
    sys.float_info.min,
    sys.float_info.max,
    -sys.float_info.max,
    2.0**-1074 * 3,
    123456789.123,
    2.0**53 + 2,
    1e15 + 0.3,
    0.1,
    1e-5,
    65536.0,
]


# --- fixtures ------------------------------------------------------------------------------


# toy, k256, k512, other256: tests/conftest.py


@pytest.fixture(scope="module", params=["k256", "k512"])
def keys(request):
    return request.getfixturevalue(request.param)


def _gen(seed):
    return np.random.default_rng(seed)


def _rand_below(gen, bound):
    """A uniform int in [0, bound) for a big bound (from numpy's generator, reproducible)."""
    nbytes = (bound.bit_length() + 7) // 8 + 8
    return int.from_bytes(gen.bytes(nbytes), "little") % bound


def _rand_unit(gen, n):
    """A uniform r in [1, n) coprime to n."""
    while True:
        r = _rand_below(gen, n)
        if r and math.gcd(r, n) == 1:
            return r


def _value_eq(got, want):
    """Same value and same kind (int vs float) as python-paillier would return."""
    return (
        type(got) is type(want)
        and got == want
        and (
            not isinstance(want, float)
            or math.copysign(1, got) == math.copysign(1, want)
            or want == 0
        )
    )


# --- known answers -----------------------------------------------------------------------


def test_toy_known_answers(toy):
    pk, sk = toy
    assert pk.n == TOY_N and pk.g == TOY_N + 1 and pk.nsquare == TOY_N**2
    assert pk.max_int == TOY_N // 3 - 1
    assert pk.raw_encrypt(10100, 74384) == 935906717
    assert sk.raw_decrypt(935906717) == 10100
    assert pk.encrypt(1, r_value=1).ciphertext(False) == 126870
    assert pk.encrypt(0, r_value=1).ciphertext(False) == 1
    assert sk.decrypt(pl.EncryptedNumber(pk, 126870)) == 1
    assert sk.p == TOY_P and sk.q == TOY_Q


def test_toy_all_plaintexts_one_r(toy):
    """Every plaintext of the toy key through raw_encrypt/raw_decrypt with a fixed r."""
    pk, sk = toy
    r = 74384
    rn = pow(r, TOY_N, TOY_N**2)
    for m in range(0, TOY_N, 97):
        c = pk.raw_encrypt(m, r)
        assert c == (1 + TOY_N * m) * rn % TOY_N**2, m
        assert c == ref.encrypt(TOY_N, m, r), m
        assert sk.raw_decrypt(c) == m, m


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("which", ["toy", "k256", "k512"])
def test_raw_encrypt_matches_oracle(request, which, seed):
    pk, sk = request.getfixturevalue(which)
    gen = _gen(seed)
    for i in range(25):
        m = _rand_below(gen, pk.n)
        r = _rand_unit(gen, pk.n)
        c = pk.raw_encrypt(m, r)
        msg = f"seed={seed} key={which} i={i} m={m} r={r}"
        assert c == ref.encrypt(pk.n, m, r), msg
        assert sk.raw_decrypt(c) == m, msg
        assert ref.decrypt(sk.p, sk.q, c) == m, msg
        # plaintexts are taken mod n, negative ones included (python-paillier wraps too)
        assert pk.raw_encrypt(m - pk.n, r) == c, msg
        assert pk.raw_encrypt(m + 3 * pk.n, r) == c, msg


@pytest.mark.parametrize("seed", SEEDS)
def test_encrypt_r_value_matches_oracle(k256, seed):
    pk, sk = k256
    gen = _gen(seed)
    values = [int(v) for v in gen.integers(-(2**62), 2**62, 10)] + [
        float(v) for v in gen.standard_normal(10) * 10.0 ** gen.integers(-30, 30, 10)
    ]
    for v in values:
        r = _rand_unit(gen, pk.n)
        enc = pk.encrypt(v, r_value=r)
        encoding, exponent = ref.encode(pk.n, v)
        msg = f"seed={seed} v={v!r} r={r}"
        assert enc.exponent == exponent, msg
        assert enc.ciphertext(False) == ref.encrypt(pk.n, encoding, r), msg
        assert (
            ref.decode(pk.n, ref.decrypt(sk.p, sk.q, enc.ciphertext(False)), enc.exponent) == v
        ), msg
        assert sk.decrypt(enc) == v, msg


@pytest.mark.parametrize("seed", SEEDS)
def test_raw_homomorphisms_against_oracle(k256, seed):
    """c1 c2 mod n^2 decrypts to a + b and c^k to k a (k negative too), for our
    ciphertexts, and EncryptedNumber ops produce exactly the oracle's ciphertexts."""
    pk, sk = k256
    gen = _gen(seed)
    n = pk.n
    for i in range(10):
        a = int(gen.integers(-(2**60), 2**60))
        b = int(gen.integers(-(2**60), 2**60))
        k = int(gen.integers(-(2**20), 2**20))
        ra, rb = _rand_unit(gen, n), _rand_unit(gen, n)
        ea, eb = pk.encrypt(a, r_value=ra), pk.encrypt(b, r_value=rb)
        ca, cb = ea.ciphertext(False), eb.ciphertext(False)
        msg = f"seed={seed} i={i} a={a} b={b} k={k}"
        assert sk.raw_decrypt(ref.add(n, ca, cb)) == (a + b) % n, msg
        assert sk.raw_decrypt(ref.mul(n, ca, k)) == (a * k) % n, msg
        assert (ea + eb).ciphertext(False) == ref.add(n, ca, cb), msg
        assert (ea * k).ciphertext(False) == ref.mul(n, ca, k), msg
        assert (ea + b).ciphertext(False) == ref.add(n, ca, ref.encrypt(n, b, 1)), msg
        assert sk.decrypt(ea + eb) == a + b, msg
        assert sk.decrypt(ea * k) == a * k, msg


# --- encoding ------------------------------------------------------------------------------


@pytest.mark.parametrize("v", [*FLOATS, 0, 1, -1, 7, -(2**70), 2**100, True])
def test_encode_matches_oracle(k256, v):
    pk, _ = k256
    e = pl.EncodedNumber.encode(pk, v)
    assert (e.encoding, e.exponent) == ref.encode(pk.n, v), v
    assert 0 <= e.encoding < pk.n
    assert e.decode() == v
    assert e.public_key is pk


@pytest.mark.parametrize("precision", [1e-3, 1e-10, 0.5, 1.0, 16.0, 300.0, 1e20])
def test_encode_precision_matches_oracle(k256, precision):
    pk, _ = k256
    for v in [0.0, 1.0, -2.5, math.pi, 12345.6789, -1e10, 7, -1000]:
        e = pl.EncodedNumber.encode(pk, v, precision=precision)
        assert (e.encoding, e.exponent) == ref.encode(pk.n, v, precision=precision), (v, precision)
        assert e.exponent == math.floor(math.log(precision, 16))
        # rounded to the nearest multiple of 16**exponent
        assert abs(Fraction(e.decode()) - Fraction(v)) <= Fraction(16) ** e.exponent / 2 + (
            abs(Fraction(v)) * Fraction(1, 2**52)
        ), (v, precision)


def test_encoding_constants():
    assert pl.EncodedNumber.BASE == 16 and pl.EncodedNumber.LOG2_BASE == 4
    assert pl.EncodedNumber.FLOAT_MANTISSA_BITS == 53


def test_encoding_subclass_with_other_base(k256):
    """As in python-paillier: a subclass may change BASE (and LOG2_BASE)."""
    pk, _ = k256

    class Base64(pl.EncodedNumber):
        BASE = 64
        LOG2_BASE = 6

    e = Base64.encode(pk, 2.75)
    assert type(e) is Base64
    assert (e.encoding, e.exponent) == ref.encode(pk.n, 2.75, base=64)
    assert e.decode() == 2.75
    e = Base64.encode(pk, 1.0, precision=1e-4)
    assert (e.encoding, e.exponent) == ref.encode(pk.n, 1.0, precision=1e-4, base=64)


def test_encode_max_exponent(k256):
    pk, _ = k256
    e = pl.EncodedNumber.encode(pk, 1.5, max_exponent=-20)
    assert e.exponent == -20 and e.decode() == 1.5
    assert (e.encoding, e.exponent) == ref.encode(pk.n, 1.5, max_exponent=-20)
    e = pl.EncodedNumber.encode(pk, 3, max_exponent=5)
    assert e.exponent == 0
    e = pl.EncodedNumber.encode(pk, 3, max_exponent=-1)
    assert e.exponent == -1 and e.encoding == 48 and e.decode() == 3.0


def test_encode_numpy_scalars(k256):
    pk, _ = k256
    for v in [
        np.int8(-5),
        np.int32(7),
        np.int64(-(2**62)),
        np.uint64(2**64 - 1),
        np.float32(0.1),
        np.float64(-2.5),
        np.float16(1.5),
    ]:
        e = pl.EncodedNumber.encode(pk, v)
        want = int(v) if isinstance(v, np.integer) else float(v)
        assert (e.encoding, e.exponent) == ref.encode(pk.n, want), repr(v)
        assert e.decode() == want


def test_encode_boundaries_and_overflow(toy, k256):
    for pk, _ in (toy, k256):
        m = pk.max_int
        assert pl.EncodedNumber.encode(pk, m).encoding == m
        assert pl.EncodedNumber.encode(pk, -m).encoding == pk.n - m
        assert pl.EncodedNumber.encode(pk, m).decode() == m
        assert pl.EncodedNumber.encode(pk, -m).decode() == -m
        for bad in (m + 1, -m - 1, 10 * m):
            with pytest.raises(pl.EncodingOverflowError):
                pl.EncodedNumber.encode(pk, bad)
            # both what phe raises and the overflow class
            with pytest.raises(ValueError):
                pl.EncodedNumber.encode(pk, bad)
            with pytest.raises(OverflowError):
                pk.encrypt(bad)
    pk, _ = toy
    with pytest.raises(pl.EncodingOverflowError):
        pl.EncodedNumber.encode(pk, 1e10)  # mantissa 1e10 * 16**5 > max_int
    with pytest.raises(pl.EncodingOverflowError):
        pl.EncodedNumber.encode(pk, 1.0, precision=1e-10)


def test_error_classes():
    assert issubclass(pl.EncodingOverflowError, ValueError)
    assert issubclass(pl.EncodingOverflowError, OverflowError)
    assert issubclass(pl.EncodingOverflowError, PPMLError)
    assert issubclass(pl.KeyMismatchError, ValueError)
    assert issubclass(pl.KeyMismatchError, PPMLError)
    assert issubclass(PPMLError, Exception)
    assert ppml_fast.PPMLError is PPMLError


def test_decode_overflow_band_and_corrupt(k256):
    pk, _ = k256
    m = pk.max_int
    for enc in (m + 1, pk.n // 2, pk.n - m - 1):
        with pytest.raises(OverflowError):
            pl.EncodedNumber(pk, enc, 0).decode()
        with pytest.raises(OverflowError):
            pl.EncodedNumber(pk, enc, -3).decode()
    with pytest.raises(ValueError):
        pl.EncodedNumber(pk, pk.n, 0).decode()
    assert pl.EncodedNumber(pk, pk.n - 1, 0).decode() == -1
    assert pl.EncodedNumber(pk, 1, 2).decode() == 256
    assert pl.EncodedNumber(pk, 1, -2).decode() == 1 / 256
    assert pl.EncodedNumber(pk, m, -300).decode() == m / 16**300
    assert pl.EncodedNumber(pk, pk.n - m, 300).decode() == -m * 16**300


def test_encode_rejects_non_numbers(k256):
    pk, _ = k256
    for bad in ["1", b"1", None, [1], 1 + 2j, Fraction(1, 3), object()]:
        with pytest.raises(TypeError):
            pl.EncodedNumber.encode(pk, bad)
        with pytest.raises(TypeError):
            pk.encrypt(bad)


def test_decrease_exponent_to(k256):
    pk, sk = k256
    e = pl.EncodedNumber.encode(pk, -2.5)
    lower = e.decrease_exponent_to(e.exponent - 3)
    assert lower.exponent == e.exponent - 3 and lower.decode() == -2.5
    with pytest.raises(ValueError):
        e.decrease_exponent_to(e.exponent + 1)
    x = pk.encrypt(3.75)
    y = x.decrease_exponent_to(x.exponent - 5)
    assert y.exponent == x.exponent - 5 and sk.decrypt(y) == 3.75
    with pytest.raises(ValueError):
        x.decrease_exponent_to(x.exponent + 1)


# --- round trips -----------------------------------------------------------------------------


@pytest.mark.parametrize("v", FLOATS)
def test_float_round_trip(keys, v):
    pk, sk = keys
    got = sk.decrypt(pk.encrypt(v))
    want = ref.decode(pk.n, *ref.encode(pk.n, v))
    assert _value_eq(got, want), (v, got)
    assert got == v


def test_int_round_trip(keys):
    pk, sk = keys
    m = pk.max_int
    for v in [0, 1, -1, 2**63, -(2**63), 2**64 + 1, m, -m, m - 1, -m + 1, m // 7, -(m // 5)]:
        got = sk.decrypt(pk.encrypt(v))
        assert type(got) is int and got == v, v


@pytest.mark.parametrize("seed", SEEDS)
def test_random_round_trip(keys, seed):
    pk, sk = keys
    gen = _gen(seed)
    for _ in range(20):
        v = _rand_below(gen, 2 * pk.max_int + 1) - pk.max_int
        assert sk.decrypt(pk.encrypt(v)) == v, f"seed={seed} v={v}"
        f = float(gen.standard_normal() * 10.0 ** int(gen.integers(-200, 200)))
        assert sk.decrypt(pk.encrypt(f)) == f, f"seed={seed} f={f!r}"


def test_precision_round_trip(k256):
    pk, sk = k256
    for v in [math.pi, -math.e, 1e6 + 0.123456, 0.0]:
        for precision in [1e-2, 1e-6, 1e-12]:
            got = sk.decrypt(pk.encrypt(v, precision=precision))
            assert abs(got - v) <= precision, (v, precision, got)
            want = ref.decode(pk.n, *ref.encode(pk.n, v, precision=precision))
            assert got == want


def test_decrypt_encoded_and_custom_encoding(k256):
    pk, sk = k256

    class Enc(pl.EncodedNumber):
        pass

    x = pk.encrypt(-7.25)
    e = sk.decrypt_encoded(x)
    assert type(e) is pl.EncodedNumber and e.decode() == -7.25 and e.exponent == x.exponent
    e = sk.decrypt_encoded(x, Enc)
    assert type(e) is Enc and e.decode() == -7.25
    enc = pl.EncodedNumber.encode(pk, 42)
    assert sk.decrypt(pk.encrypt(enc)) == 42
    assert sk.decrypt(pk.encrypt_encoded(enc, None)) == 42


# --- homomorphic operations on EncryptedNumber ------------------------------------------------


def _exact_float(x):
    return float(Fraction(x))


@pytest.mark.parametrize("seed", SEEDS)
def test_scalar_ops_random(k256, seed):
    pk, sk = k256
    gen = _gen(seed)
    for i in range(8):
        a = int(gen.integers(-(2**40), 2**40))
        b = int(gen.integers(-(2**40), 2**40))
        fa = float(gen.standard_normal() * 10.0 ** int(gen.integers(-5, 5)))
        fb = float(gen.standard_normal() * 10.0 ** int(gen.integers(-5, 5)))
        k = int(gen.integers(-1000, 1000))
        msg = f"seed={seed} i={i} a={a} b={b} fa={fa!r} fb={fb!r} k={k}"
        ea, eb, efa, efb = (pk.encrypt(v) for v in (a, b, fa, fb))
        assert sk.decrypt(ea + eb) == a + b, msg
        assert sk.decrypt(ea + b) == a + b, msg
        assert sk.decrypt(b + ea) == a + b, msg
        assert sk.decrypt(ea - eb) == a - b, msg
        assert sk.decrypt(ea - b) == a - b, msg
        assert sk.decrypt(b - ea) == b - a, msg
        assert sk.decrypt(-ea) == -a, msg
        assert sk.decrypt(ea * k) == a * k, msg
        assert sk.decrypt(k * ea) == a * k, msg
        assert sk.decrypt(ea * 0) == 0, msg
        # floats: the exact sum/product, rounded once (= IEEE's a + b and a * b)
        assert sk.decrypt(efa + efb) == fa + fb, msg
        assert sk.decrypt(efa + b) == fa + b, msg
        assert sk.decrypt(efa - efb) == fa - fb, msg
        assert sk.decrypt(efa * fb) == fa * fb, msg
        assert sk.decrypt(ea * fb) == a * fb, msg
        assert sk.decrypt(efa * k) == fa * k, msg
        assert sk.decrypt(ea + efa) == float(Fraction(a) + Fraction(fa)), msg
        if k:
            assert sk.decrypt(ea / k) == a * (1 / k), msg
            assert sk.decrypt(efa / fb) == fa * (1 / fb), msg


def test_scalar_ops_numpy_scalars_and_encoded(k256):
    pk, sk = k256
    x = pk.encrypt(10)
    assert sk.decrypt(x + np.int64(5)) == 15
    assert sk.decrypt(x * np.int32(-3)) == -30
    assert sk.decrypt(x * np.float64(0.5)) == 5.0
    assert sk.decrypt(x - np.float32(0.25)) == 9.75
    assert sk.decrypt(np.int16(4) - x) == -6
    assert sk.decrypt(x / np.float64(4.0)) == 2.5
    enc = pl.EncodedNumber.encode(pk, 2.5)
    assert sk.decrypt(x + enc) == 12.5
    assert sk.decrypt(enc + x) == 12.5
    assert sk.decrypt(enc - x) == -7.5
    assert sk.decrypt(x * enc) == 25.0
    assert sk.decrypt(x + True) == 11


def test_encrypted_minus_encoded_number(k256):
    pk, sk = k256
    x = pk.encrypt(10)
    assert sk.decrypt(x - pl.EncodedNumber.encode(pk, 2.5)) == 7.5


def test_scalar_unsupported_operands(k256):
    pk, _ = k256
    x, y = pk.encrypt(1), pk.encrypt(2)
    for op in (
        lambda: x * y,
        lambda: x + "a",
        lambda: "a" + x,
        lambda: x - "a",
        lambda: x * "a",
        lambda: x / y,
        lambda: x / "a",
        lambda: x + None,
        lambda: operator.add(x, [1]),
        lambda: x * Fraction(1, 2),
        lambda: 1 / x,
        lambda: x @ y,
    ):
        with pytest.raises(TypeError):
            op()


def test_ops_results_not_obfuscated_until_asked(k256):
    pk, sk = k256
    x, y = pk.encrypt(5), pk.encrypt(7)
    s = x + y
    raw = s.ciphertext(False)
    assert raw == x.ciphertext(False) * y.ciphertext(False) % pk.nsquare
    assert s.ciphertext(False) == raw  # asking without be_secure does not change it
    secure = s.ciphertext()
    assert secure != raw
    assert s.ciphertext(False) == secure and s.ciphertext() == secure
    assert sk.decrypt(s) == 12
    # an r_value encryption is not obfuscated either (as in python-paillier)
    e = pk.encrypt(3, r_value=5)
    c0 = e.ciphertext(False)
    assert c0 == ref.encrypt(pk.n, 3, 5)
    assert e.ciphertext() != c0 and sk.decrypt(e) == 3
    # a fresh encryption is obfuscated already: ciphertext() does not change it again
    f = pk.encrypt(3)
    assert f.ciphertext() == f.ciphertext(False) == f.ciphertext()


@pytest.mark.parametrize("which", ["k256", "k512"])
def test_randomisation(request, which):
    pk, sk = request.getfixturevalue(which)
    cs = {pk.encrypt(1).ciphertext() for _ in range(20)}
    assert len(cs) == 20
    x = pk.encrypt(-3.5)
    before = x.ciphertext(False)
    x.obfuscate()
    after = x.ciphertext(False)
    assert after != before and sk.decrypt(x) == -3.5
    # obfuscation multiplies by an n-th residue: the same plaintext under the oracle too
    assert ref.decrypt(sk.p, sk.q, after) == ref.decrypt(sk.p, sk.q, before)


@pytest.mark.parametrize("mode", ["djn", "classic"])
def test_key_obfuscation_modes(k512, mode):
    pk0, sk = k512
    pk = pl.PaillierPublicKey(pk0.n, pk0.hs, obfuscation=mode)
    assert pk.obfuscation == mode and pk == pk0
    cs = [pk.encrypt(7).ciphertext() for _ in range(20)]  # > 16: DJN builds its table
    assert len(set(cs)) == 20
    assert all(sk.decrypt(pl.EncryptedNumber(pk0, c)) == 7 for c in cs)
    assert all(ref.decrypt(sk.p, sk.q, c) == 7 for c in cs)


def test_default_obfuscation_and_hs(k256, k512):
    assert k256[0].obfuscation == "classic"
    pk = k512[0]
    assert pk.obfuscation == "djn"
    hs = pk.hs
    assert 0 < hs < pk.nsquare and math.gcd(hs, pk.n) == 1
    # h_s is an n-th residue: it decrypts to 0
    assert k512[1].raw_decrypt(hs) == 0
    assert pl.DEFAULT_KEYSIZE == 3072


def test_hs_lazily_drawn_for_bare_key(k256):
    pk0, sk = k256
    pk = pl.PaillierPublicKey(pk0.n)
    hs = pk.hs
    assert hs == pk.hs and 0 < hs < pk.nsquare and sk.raw_decrypt(hs) == 0


def test_public_key_constructor_checks(k256):
    pk, _ = k256
    with pytest.raises(ValueError):
        pl.PaillierPublicKey(pk.n, obfuscation="bogus")
    with pytest.raises(ValueError):
        pl.PaillierPublicKey(pk.n, obfuscation="DJN")
    for bad_n in (0, 1, 2, 10, -15):
        with pytest.raises(ValueError):
            pl.PaillierPublicKey(bad_n)
    for bad_n in (15.0, "15", None):
        with pytest.raises(TypeError):
            pl.PaillierPublicKey(bad_n)
    for bad_hs in (0, pk.nsquare, pk.nsquare + 1):
        with pytest.raises(ValueError):
            pl.PaillierPublicKey(pk.n, bad_hs)
    with pytest.raises(TypeError):
        pl.PaillierPublicKey(pk.n, 3.0)
    with pytest.raises(ValueError, match="65536"):
        pl.PaillierPublicKey((1 << 65537) + 1)


def test_hs_of_tiny_order_rejected(k512):
    """A DJN base h_s with h_s^k = 1 for a small k (1, -1) would leave ciphertexts nearly
    bare: the public key refuses it."""
    pk, _ = k512
    for bad in (1, pk.nsquare - 1):
        with pytest.raises(ValueError, match="order"):
            pl.PaillierPublicKey(pk.n, hs=bad)
    assert pl.PaillierPublicKey(pk.n, hs=pk.hs).hs == pk.hs


def test_get_random_lt_n(toy):
    pk, _ = toy
    draws = {pk.get_random_lt_n() for _ in range(2000)}
    assert all(1 <= r < pk.n for r in draws)
    assert len(draws) > 1900


def test_precompute(k512):
    pk0, sk = k512
    pk = pl.PaillierPublicKey(pk0.n, pk0.hs)
    pk.precompute(4)
    pk.precompute(4)  # idempotent
    pk.precompute()
    assert sk.decrypt(pl.EncryptedNumber(pk0, pk.encrypt(11).ciphertext())) == 11
    for bad in (0, 11, -1):
        with pytest.raises(ValueError):
            pk.precompute(bad)
    with pytest.raises(TypeError):
        pk.precompute(4.0)


# --- bad inputs ------------------------------------------------------------------------------


def test_raw_decrypt_rejects_invalid_ciphertexts(k256):
    pk, sk = k256
    p, q = sk.p, sk.q
    for bad in (
        0,
        -1,
        -5,
        pk.nsquare,
        pk.nsquare + 1,
        p,
        q,
        2 * p,
        p * p,
        q * 12345,
        pk.n,
        pk.nsquare - pk.n,
    ):
        with pytest.raises(ValueError):
            sk.raw_decrypt(bad)
    for bad in (1.0, "1", None, [1]):
        with pytest.raises(TypeError):
            sk.raw_decrypt(bad)
    assert sk.raw_decrypt(1) == 0
    assert sk.raw_decrypt(np.int64(1)) == 0
    assert sk.raw_decrypt(gmpy2.mpz(1)) == 0
    assert sk.raw_decrypt(pk.nsquare - 1) == 0  # -1 = (-1)^n: E(0) with r = -1
    assert sk.raw_decrypt(pk.nsquare - pk.n + 1) == pk.n - 1  # 1 + n (n - 1)


def test_decrypt_invalid_encrypted_number(k256):
    pk, sk = k256
    for bad in (0, sk.p, pk.nsquare):
        with pytest.raises(ValueError):
            sk.decrypt(pl.EncryptedNumber(pk, bad))
    with pytest.raises(TypeError):
        sk.decrypt(5)
    with pytest.raises(TypeError):
        sk.decrypt_encoded(pl.EncodedNumber.encode(pk, 5))
    with pytest.raises(TypeError):
        pl.EncryptedNumber(pk, 5.0)
    with pytest.raises(TypeError):
        pl.EncryptedNumber(pk, pk.encrypt(1))
    with pytest.raises(TypeError):
        pl.EncryptedNumber(pk.n, 5)
    with pytest.raises(TypeError, match="exponent"):
        pl.EncryptedNumber(pk, 5, "1")


def test_negative_multiplier_on_non_invertible_ciphertext(k256):
    pk, sk = k256
    x = pl.EncryptedNumber(pk, sk.p * 3)
    with pytest.raises(ValueError):
        x * -2
    with pytest.raises(ValueError):
        x.__neg__()
    assert x.ciphertext(False) == sk.p * 3


def test_overflow_on_decrypt(k256):
    pk, sk = k256
    x = pk.encrypt(pk.max_int)
    with pytest.raises(OverflowError):
        sk.decrypt(x + x)
    with pytest.raises(OverflowError):
        sk.decrypt(x * 2)
    assert sk.decrypt(x + (-x)) == 0


def test_key_mismatch_scalar(k256, other256):
    pk, sk = k256
    pk2, sk2 = other256
    a, b = pk.encrypt(1), pk2.encrypt(2)
    cases = [
        lambda: sk2.decrypt(a),
        lambda: sk.decrypt(b),
        lambda: a + b,
        lambda: a - b,
        lambda: a + pl.EncodedNumber.encode(pk2, 3),
        lambda: a * pl.EncodedNumber.encode(pk2, 3),
        lambda: pk.encrypt(pl.EncodedNumber.encode(pk2, 3)),
        lambda: pk.encrypt_encoded(pl.EncodedNumber.encode(pk2, 3), None),
        lambda: sk.decrypt_encoded(b),
    ]
    for case in cases:
        with pytest.raises(pl.KeyMismatchError) as info:
            case()
        assert isinstance(info.value, ValueError) and isinstance(info.value, PPMLError)
    assert sk.decrypt(a) == 1 and sk2.decrypt(b) == 2  # operands intact


def test_private_key_constructor_checks(k256, other256):
    pk, sk = k256
    with pytest.raises(ValueError):
        pl.PaillierPrivateKey(pk, sk.p, sk.q + 2)
    with pytest.raises(ValueError):
        pl.PaillierPrivateKey(pk, other256[1].p, other256[1].q)
    with pytest.raises(ValueError):
        pl.PaillierPrivateKey(pk, 1, pk.n)
    with pytest.raises(ValueError):
        pl.PaillierPrivateKey(pl.PaillierPublicKey(49), 7, 7)
    with pytest.raises(TypeError):
        pl.PaillierPrivateKey(pk, float(sk.p), sk.q)
    # q < p is accepted and normalised to p < q
    swapped = pl.PaillierPrivateKey(pk, sk.q, sk.p)
    assert (swapped.p, swapped.q) == (sk.p, sk.q) and swapped == sk
    assert sk.p < sk.q
    assert sk.psquare == sk.p**2 and sk.qsquare == sk.q**2
    assert sk.p_inverse * sk.p % sk.q == 1


def test_from_totient(k256):
    pk, sk = k256
    tot = (sk.p - 1) * (sk.q - 1)
    sk2 = pl.PaillierPrivateKey.from_totient(pk, tot)
    assert sk2 == sk and (sk2.p, sk2.q) == (sk.p, sk.q)
    assert sk2.decrypt(pk.encrypt(-99)) == -99
    for bad in (tot + 2, tot - 2, 0, pk.n, 1, -tot):
        with pytest.raises(ValueError):
            pl.PaillierPrivateKey.from_totient(pk, bad)
    with pytest.raises(TypeError):
        pl.PaillierPrivateKey.from_totient(pk, float(tot))


def test_private_key_helpers(toy):
    pk, sk = toy
    assert sk.l_function(1 + 5 * TOY_P, TOY_P) == 5
    hp = sk.h_function(TOY_P, TOY_P**2)
    assert hp == sk.hp
    assert hp * sk.l_function(pow(pk.g, TOY_P - 1, TOY_P**2), TOY_P) % TOY_P == 1
    assert sk.hq * sk.l_function(pow(pk.g, TOY_Q - 1, TOY_Q**2), TOY_Q) % TOY_Q == 1
    for m in (0, 1, 12345, TOY_N - 1):
        x = sk.crt(m % TOY_P, m % TOY_Q)
        assert x == m


# --- keys: equality, hashing, pickling --------------------------------------------------------


def test_key_equality_hash_pickle(k512, k256):
    pk, sk = k512
    pk_b = pl.PaillierPublicKey(pk.n)
    assert pk == pk_b and hash(pk) == hash(pk_b) and pk != k256[0]
    assert pk != object() and (pk == 5) is False
    sk_b = pl.PaillierPrivateKey(pk_b, sk.q, sk.p)
    assert sk == sk_b and hash(sk) == hash(sk_b) and sk != k256[1]
    assert {pk: 1}[pk_b] == 1
    pk2 = pickle.loads(pickle.dumps(pk))
    sk2 = pickle.loads(pickle.dumps(sk))
    assert pk2 == pk and pk2.hs == pk.hs and pk2.obfuscation == pk.obfuscation
    assert pk2.max_int == pk.max_int and pk2.nsquare == pk.nsquare
    assert sk2 == sk and sk2.public_key == pk
    x = pk2.encrypt(-1.25)
    assert sk.decrypt(pl.EncryptedNumber(pk, x.ciphertext(), x.exponent)) == -1.25
    assert sk2.decrypt(pl.EncryptedNumber(pk2, pk.encrypt(3).ciphertext())) == 3
    assert "PaillierPublicKey" in repr(pk) and "PaillierPrivateKey" in repr(sk)
    assert "EncryptedNumber" in repr(pk.encrypt(1)) and "EncodedNumber" in repr(
        pl.EncodedNumber.encode(pk, 1)
    )


def test_encrypted_number_pickle(k256):
    pk, sk = k256
    x = pk.encrypt(2.5) + 1
    y = pickle.loads(pickle.dumps(x))
    assert y.ciphertext(False) == x.ciphertext(False) and y.exponent == x.exponent
    assert sk.decrypt(y) == 3.5


# --- key generation --------------------------------------------------------------------------


@pytest.mark.parametrize("n_length", [8, 9, 16, 17, 64, 127, 256, 512])
def test_keygen_properties(n_length):
    reps = 5 if n_length <= 256 else 2
    for _ in range(reps):
        pk, sk = pl.generate_paillier_keypair(n_length=n_length)
        p, q, n = sk.p, sk.q, pk.n
        assert n.bit_length() == n_length, (n_length, n)
        assert p != q and p * q == n
        assert gmpy2.is_prime(p, 50) and gmpy2.is_prime(q, 50), (p, q)
        assert math.gcd(n, (p - 1) * (q - 1)) == 1
        assert sorted([p.bit_length(), q.bit_length()]) == sorted(
            [n_length // 2, n_length - n_length // 2]
        ), (n_length, p, q)
        assert sk.public_key is pk
        assert pk.g == n + 1 and pk.max_int == n // 3 - 1
        assert pk.obfuscation == ("djn" if n_length >= 512 else "classic")
        # a fixed-r round trip (random r would hit a factor of a tiny n now and then)
        for m in (0, 1, pk.max_int, -pk.max_int):
            assert sk.decrypt(pk.encrypt(m, r_value=1)) == m
        assert ref.decrypt(p, q, pk.raw_encrypt(5, 1)) == 5 % n


def test_keygen_distinct_keys():
    ns = {pl.generate_paillier_keypair(n_length=128)[0].n for _ in range(10)}
    assert len(ns) == 10


def test_keygen_bad_arguments():
    for bad in (7, 0, -1, 1):
        with pytest.raises(ValueError):
            pl.generate_paillier_keypair(n_length=bad)
    for bad in (64.0, "64", None):
        with pytest.raises(TypeError):
            pl.generate_paillier_keypair(n_length=bad)
    with pytest.raises(TypeError):
        pl.generate_paillier_keypair(private_keyring={}, n_length=64)
    pk, _ = pl.generate_paillier_keypair(None, np.int64(64))
    assert pk.n.bit_length() == 64
    with pytest.raises(ValueError, match="n_length"):
        pl.generate_paillier_keypair(n_length=70000)


def test_keyring(k256, other256):
    ring = pl.PaillierPrivateKeyring()
    assert len(ring) == 0
    pk, sk = pl.generate_paillier_keypair(ring, n_length=128)
    assert len(ring) == 1 and pk in ring and ring[pk] is sk
    ring.add(k256[1])
    assert len(ring) == 2 and set(ring) == {pk, k256[0]}
    assert ring.decrypt(pk.encrypt(5)) == 5
    assert ring.decrypt(k256[0].encrypt(-2.5)) == -2.5
    with pytest.raises(KeyError):
        ring.decrypt(other256[0].encrypt(1))
    with pytest.raises(KeyError):
        ring[other256[0]]
    with pytest.raises(TypeError):
        ring.add(k256[0])
    # re-adding the same key replaces it; keys by equal public keys collapse
    ring.add(pl.PaillierPrivateKey(pl.PaillierPublicKey(pk.n), sk.p, sk.q))
    assert len(ring) == 2
    del ring[pk]
    assert len(ring) == 1 and pk not in ring
    with pytest.raises(KeyError):
        ring.decrypt(pk.encrypt(5))
    with pytest.raises(KeyError):
        del ring[pk]
    ring2 = pl.PaillierPrivateKeyring([k256[1], other256[1]])
    assert len(ring2) == 2 and ring2[other256[0]] is other256[1]
    with pytest.raises(TypeError):
        pl.PaillierPrivateKeyring([k256[0]])


# --- python-paillier interoperability ----------------------------------------------------------


# phe_pair: tests/conftest.py


INTEROP_VALUES = [
    0,
    1,
    -1,
    123456789,
    -(2**100),
    2.5,
    -0.125,
    math.pi,
    1e-300,
    1e300,
    5e-324,
    -1e20,
    0.1,
]


@pytest.mark.parametrize("v", INTEROP_VALUES)
def test_phe_same_ciphertext_for_same_r(k512, phe_pair, v):
    phe, ppk, _ = phe_pair
    pk, _ = k512
    for r in (1, 2, 987654321, pk.n - 1):
        ours = pk.encrypt(v, r_value=r)
        theirs = ppk.encrypt(v, r_value=r)
        assert ours.ciphertext(False) == theirs.ciphertext(False), (v, r)
        assert ours.exponent == theirs.exponent
    for precision in (1e-3, 1e-8) if abs(v) < 1e50 else (1e290,):
        ours = pk.encrypt(v, precision=precision, r_value=3)
        theirs = ppk.encrypt(v, precision=precision, r_value=3)
        assert (ours.ciphertext(False), ours.exponent) == (
            theirs.ciphertext(False),
            theirs.exponent,
        ), (v, precision)
    e1 = pl.EncodedNumber.encode(pk, v)
    e2 = phe.paillier.EncodedNumber.encode(ppk, v)
    assert (e1.encoding, e1.exponent) == (e2.encoding, e2.exponent)


@pytest.mark.parametrize("v", INTEROP_VALUES)
def test_phe_cross_decryption(k512, phe_pair, v):
    phe, ppk, psk = phe_pair
    pk, sk = k512
    theirs = ppk.encrypt(v)
    mine = pl.EncryptedNumber(pk, theirs.ciphertext(), theirs.exponent)
    got = sk.decrypt(mine)
    assert _value_eq(got, psk.decrypt(theirs)) and got == v
    ours = pk.encrypt(v)
    back = phe.paillier.EncryptedNumber(ppk, ours.ciphertext(), ours.exponent)
    got2 = psk.decrypt(back)
    assert _value_eq(got2, sk.decrypt(ours)) and got2 == v
    assert sk.raw_decrypt(theirs.ciphertext()) == psk.raw_decrypt(theirs.ciphertext())


def test_phe_keys_decrypt_ours_all_modes(k512, phe_pair):
    """Keys built from phe's n and the other way round; DJN and classic ciphertexts."""
    phe, ppk, psk = phe_pair
    pk, _ = k512
    for mode in ("djn", "classic"):
        key = pl.PaillierPublicKey(pk.n, pk.hs, obfuscation=mode)
        for _ in range(20):  # crosses the single-encryption table threshold for DJN
            x = key.encrypt(-17.5)
            assert (
                psk.decrypt(phe.paillier.EncryptedNumber(ppk, x.ciphertext(), x.exponent)) == -17.5
            ), mode
    pub, priv = phe.paillier.generate_paillier_keypair(n_length=256)
    mypk = pl.PaillierPublicKey(pub.n)
    mysk = pl.PaillierPrivateKey(mypk, priv.p, priv.q)
    x = pub.encrypt(2.75)
    assert mysk.decrypt(pl.EncryptedNumber(mypk, x.ciphertext(), x.exponent)) == 2.75
    y = mypk.encrypt(-11)
    assert priv.decrypt(phe.paillier.EncryptedNumber(pub, y.ciphertext(), y.exponent)) == -11
    assert mypk == pub  # equality by n across libraries


@pytest.mark.parametrize("seed", SEEDS)
def test_phe_same_op_ciphertexts(k512, phe_pair, seed):
    """Operations on identical ciphertexts give identical (un-obfuscated) ciphertexts."""
    _, ppk, psk = phe_pair
    pk, sk = k512
    gen = _gen(seed)
    for i in range(6):
        a = float(gen.standard_normal() * 100)
        b = int(gen.integers(-(2**30), 2**30))
        k = float(gen.standard_normal())
        ki = int(gen.integers(-50, 50))
        ra, rb = _rand_unit(gen, pk.n), _rand_unit(gen, pk.n)
        ma, mb = pk.encrypt(a, r_value=ra), pk.encrypt(b, r_value=rb)
        ta, tb = ppk.encrypt(a, r_value=ra), ppk.encrypt(b, r_value=rb)
        pairs = [
            (ma + mb, ta + tb),
            (ma - mb, ta - tb),
            (ma + b, ta + b),
            (b - ma, b - ta),
            (ma * k, ta * k),
            (ma * ki, ta * ki),
            (mb * -1, tb * -1),
            (ma + 0.5, ta + 0.5),
            (mb / 4, tb / 4),
        ]
        for j, (mine, theirs) in enumerate(pairs):
            msg = f"seed={seed} i={i} op={j} a={a!r} b={b} k={k!r} ki={ki}"
            assert mine.exponent == theirs.exponent, msg
            assert mine.ciphertext(False) == theirs.ciphertext(False), msg
            assert _value_eq(sk.decrypt(mine), psk.decrypt(theirs)), msg


def test_phe_encoded_number_operand(k512, phe_pair):
    """python-paillier EncodedNumbers are accepted (duck-typed) as plaintext operands."""
    phe, ppk, _ = phe_pair
    pk, sk = k512
    enc = phe.paillier.EncodedNumber.encode(ppk, 0.25)
    x = pk.encrypt(1.5)
    assert sk.decrypt(x + enc) == 1.75
    assert sk.decrypt(x * enc) == 0.375
    assert sk.decrypt(pk.encrypt(enc)) == 0.25


# --- small keys ------------------------------------------------------------------------------


def test_classic_encryption_round_trips_on_small_key(toy):
    pk, sk = toy
    bad = 0
    for _ in range(5000):  # P(no r sharing a factor with n) = (1 - 1/175)^5000 < 1e-12
        try:
            assert sk.decrypt(pk.encrypt(1)) == 1
        except ValueError:
            bad += 1
    assert bad == 0, f"{bad} of 5000 encryptions under n = 293 * 433 failed to decrypt"


# --- encoding: exact integer rounding against the Fraction formula -------------------------


class _Base64Encoding(pl.EncodedNumber):
    """A subclass with another base, as python-paillier's users write them."""

    BASE = 64
    LOG2_BASE = 6


def _encode_by_fractions(cls, pk, x, precision, max_exponent):
    """``round(Fraction(x) * BASE**-exponent)`` with phe's exponent rule: the definition."""
    if precision is None:
        if isinstance(x, int):
            pexp = 0
        else:
            pexp = math.floor((math.frexp(x)[1] - cls.FLOAT_MANTISSA_BITS) / cls.LOG2_BASE)
    else:
        pexp = math.floor(math.log(precision, cls.BASE))
    exp = pexp if max_exponent is None else min(max_exponent, pexp)
    rep = round(Fraction(x) * Fraction(cls.BASE) ** -exp)
    if abs(rep) > pk.max_int:
        return "overflow"
    return rep % pk.n, exp


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("cls", [pl.EncodedNumber, _Base64Encoding], ids=["base16", "base64"])
def test_encode_rounds_exactly_like_fractions(k256, cls, seed):
    pk, _ = k256
    gen = _gen(seed)
    halves = [0.5, -0.5, 1.5, -2.5, 2.5, 0.0, -0.0, 3, -7, 5e-324, 1e-300, 2.0**60 + 1]
    for _ in range(3000):
        kind = gen.integers(3)
        if kind == 0:
            x = float(gen.uniform(-1e6, 1e6))
        elif kind == 1:
            x = int(gen.integers(-(10**12), 10**12))
        else:
            x = halves[gen.integers(len(halves))] * [1, 16, 1 / 16, 64][gen.integers(4)]
        precision = [None, None, 1e-3, 0.5, 1, 16, 2.0**-20, 100.0][gen.integers(8)]
        max_exponent = [None, None, -5, 0, 3, -40][gen.integers(6)]
        want = _encode_by_fractions(cls, pk, x, precision, max_exponent)
        try:
            e = cls.encode(pk, x, precision, max_exponent)
            got = (e.encoding, e.exponent)
        except pl.EncodingOverflowError:
            got = "overflow"
        assert got == want, f"seed={seed} x={x!r} precision={precision} max_exp={max_exponent}"


def test_default_keysize_is_phes():
    """A drop-in must not quietly weaken keys: the default modulus is 3072 bits, phe's."""
    assert pl.DEFAULT_KEYSIZE == 3072
    assert pl.generate_paillier_keypair.__defaults__ == (None, 3072)
    phe_paillier = pytest.importorskip("phe.paillier")
    assert pl.DEFAULT_KEYSIZE == phe_paillier.DEFAULT_KEYSIZE


def test_encoded_number_lowering_is_bounded(k256):
    """Lowering a plaintext encoding's exponent by more than MAX_EXPONENT_SPREAD is refused
    at once (BASE**spread would take minutes); up to the bound it is exact."""
    import time

    pk, _ = k256
    enc = pl.EncodedNumber.encode(pk, 3)
    bound = pl.encoding.MAX_EXPONENT_SPREAD
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match="decrease_exponent_to"):
        enc.decrease_exponent_to(-bound - 1)
    with pytest.raises(ValueError, match="decrease_exponent_to"):
        enc.decrease_exponent_to(-(2**31) + 1)
    assert time.perf_counter() - t0 < 1.0
    low = enc.decrease_exponent_to(-bound)
    assert low.exponent == -bound
    assert low.encoding == 3 * pow(16, bound, pk.n) % pk.n
