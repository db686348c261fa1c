"""Batch surface of ``ppml_fast.paillier``: ``encrypt_batch``, ``decrypt_batch`` and
``EncryptedArray`` (arithmetic, reductions, matmul, indexing, serialisation, threads).

Every decrypted result is compared exactly with the value computed in Fractions: each
homomorphic operation here is exact on the encoded mantissas, so a decrypted float must be
the correctly rounded exact result, and a decrypted int the exact int. Ciphertext-level
checks compare against the oracle ``ppml_fast.reference.paillier`` (add = c1 c2, mul =
c^k, matmul = prod c^w, all mod n^2), against the scalar EncryptedNumber operations and,
where installed, against python-paillier (``phe``).

Keys are 64..1024 bits (milliseconds to generate). Random cases run on fixed seeds and one
fresh seed per run (FRESH, printed in assertion messages; rerun with
``PPML_TEST_SEED=<seed>``).
"""

from __future__ import annotations

import json
import math
import operator
import os
import pickle
import threading
import time
from fractions import Fraction
from functools import reduce

import numpy as np
import pytest

import ppml_fast
from ppml_fast import _config
from ppml_fast import paillier as pl
from ppml_fast._errors import PPMLError
from ppml_fast.reference import paillier as ref

FRESH = int(os.environ.get("PPML_TEST_SEED") or np.random.SeedSequence().entropy % 2**63)
SEEDS = [0, 1, 20240601, FRESH]
MODES = ["djn", "classic", "crt"]  # crt: the private key's encrypt_batch with classic r^n

# numpy warnings escaping the API (overflow in scalar arithmetic, ...) are bugs
pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")


# --- fixtures and helpers ------------------------------------------------------------------


def _with_hs(pk, sk, obfuscation):
    """The key pair again, with a DJN base computed here (so DJN works on any size)."""
    n = pk.n
    x = 2
    while math.gcd(x, n) != 1:
        x += 1
    hs = pow((-x * x) % n, n, n * n)
    pk2 = pl.PaillierPublicKey(n, hs, obfuscation=obfuscation)
    return pk2, pl.PaillierPrivateKey(pk2, sk.p, sk.q)


# toy, k256, k512, other256: tests/conftest.py


@pytest.fixture(
    scope="module", params=[64, 65, 127, 128, 129, 130, 256, 512, 1024], ids=lambda b: f"n{b}"
)
def sized(request):
    """Keys around the limb boundaries of n and n^2, DJN on every size."""
    pk, sk = pl.generate_paillier_keypair(n_length=request.param)
    return _with_hs(pk, sk, "djn")


def _gen(seed):
    return np.random.default_rng(seed)


def _encrypt(pk, sk, values, mode, **kw):
    if mode == "crt":
        return sk.encrypt_batch(values, obfuscation="classic", **kw)
    return pk.encrypt_batch(values, obfuscation=mode, **kw)


def _fr(x):
    """An object array of Fractions (exact values) of a numeric array-like."""
    a = np.asarray(x)
    out = np.empty(a.shape, dtype=object)
    out.reshape(-1)[:] = [Fraction(v) for v in a.reshape(-1).tolist()] if a.size else []
    return out


def _ints(gen, shape, bound=2**40):
    x = np.asarray(gen.integers(-bound, bound, size=shape))
    if x.size:
        x.reshape(-1)[: min(3, x.size)] = [0, 1, -1][: min(3, x.size)]
    return x


def _floats(gen, shape):
    x = np.asarray(gen.standard_normal(shape) * 10.0 ** gen.integers(-3, 4, size=shape))
    if x.size:
        specials = [0.0, -0.5, 3.0, 1e-3]
        x.reshape(-1)[: min(4, x.size)] = specials[: min(4, x.size)]
    return x


def _check(sk, enc, want, msg):
    """decrypt_batch(enc) equals ``want`` (Fractions): exact ints when every exponent is
    >= 0, else float64 values equal to the correctly rounded exact results."""
    got = sk.decrypt_batch(enc)
    want = np.asarray(want, dtype=object)
    assert isinstance(got, np.ndarray), msg
    assert got.shape == enc.shape == want.shape, f"{msg}: shapes {got.shape} {want.shape}"
    exps = enc.exponents
    if exps.size and exps.min() < 0:
        assert got.dtype == np.float64, f"{msg}: dtype {got.dtype}"
        expect = np.array([float(v) for v in want.reshape(-1)], np.float64).reshape(want.shape)
        np.testing.assert_array_equal(got, expect, err_msg=msg)
    else:
        assert got.dtype in (np.int64, object), f"{msg}: dtype {got.dtype}"
        flat = got.reshape(-1).tolist()
        assert all(isinstance(v, int) for v in flat), msg
        assert flat == [int(v) for v in want.reshape(-1)], msg
        fits = all(-(2**63) <= v < 2**63 for v in flat)
        assert got.dtype == (np.int64 if fits else object), f"{msg}: dtype {got.dtype}"
    return got


def _cts(enc):
    """The un-obfuscated ciphertext ints in C order (does not obfuscate)."""
    return [int(c) for c in enc.ciphertexts(be_secure=False).reshape(-1).tolist()]


def _mixed(pk, gen, shape):
    """An EncryptedArray of mixed exponents (ints: 0, floats: < 0, coarse ints: > 0) and the
    exact values it holds."""
    size = int(np.prod(shape))
    nums, vals = [], []
    for i in range(size):
        kind = i % 3
        if kind == 0:
            v = int(gen.integers(-(2**30), 2**30))
            e = pk.encrypt(v)
        elif kind == 1:
            v = float(gen.standard_normal() * 100)
            e = pk.encrypt(v)
        else:
            v = int(gen.integers(-(2**20), 2**20)) * 256
            e = pk.encrypt(v, precision=256)  # exponent 2
        nums.append(e)
        vals.append(Fraction(v))
    arr = np.empty(size, dtype=object)
    arr[:] = nums
    enc = pl.EncryptedArray.from_numbers(arr.reshape(shape))
    return enc, _fr(np.array(vals, dtype=object).reshape(shape))


def _raises(exc, fn, msg):
    """fn() raises ``exc`` (anything else propagates); ``msg`` names the case."""
    try:
        fn()
    except exc:
        return
    pytest.fail(f"{msg}: {exc.__name__} not raised")


# --- encrypt_batch / decrypt_batch round trips ------------------------------------------------


INT_DTYPES = [
    np.int8,
    np.int16,
    np.int32,
    np.int64,
    np.uint8,
    np.uint16,
    np.uint32,
    np.uint64,
    np.bool_,
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", INT_DTYPES, ids=lambda d: np.dtype(d).name)
def test_int_dtypes_round_trip(k512, mode, dtype):
    pk, sk = k512
    gen = _gen(FRESH)
    info = np.iinfo(dtype) if dtype is not np.bool_ else None
    if info is None:
        x = gen.integers(0, 2, 40).astype(np.bool_)
    else:
        x = gen.integers(info.min, info.max, 40, dtype=dtype, endpoint=True)
        x[:2] = [info.min, info.max]
    enc = _encrypt(pk, sk, x, mode)
    assert enc.shape == x.shape and enc.public_key == pk
    assert (enc.exponents == 0).all()
    _check(
        sk,
        enc,
        _fr(x.astype(object) if dtype is not np.bool_ else x.astype(int)),
        f"mode={mode} dtype={dtype} seed={FRESH}",
    )


@pytest.mark.parametrize("mode", MODES)
def test_float_round_trip(k512, mode):
    pk, sk = k512
    x = np.array(
        [
            0.0,
            -0.0,
            1.5,
            -2.25,
            math.pi,
            1e-300,
            -1e-300,
            5e-324,
            -5e-324,
            2.2250738585072014e-308,
            1e-5,
            0.1,
            123456.789,
            -1e15,
            2.0**60,
            7.0,
        ]
    )
    enc = _encrypt(pk, sk, x, mode)
    got = _check(sk, enc, _fr(x), f"mode={mode}")
    for i, v in enumerate(x):
        e = pl.EncodedNumber.encode(pk, float(v))
        assert enc.exponents[i] == e.exponent, v
        assert got[i] == sk.decrypt(enc[i]) == v


def test_huge_floats_positive_exponents(k512):
    """1e300 has exponent > 0: python-paillier decodes it as an int, so the batch gives an
    object array of ints (all exponents >= 0) or a float64 array (mixed)."""
    pk, sk = k512
    x = np.array([1e300, -1.7976931348623157e308, 2.0**100])
    enc = pk.encrypt_batch(x)
    assert (enc.exponents > 0).all()
    got = sk.decrypt_batch(enc)
    assert got.dtype == object and got.tolist() == [int(v) for v in x]
    assert [sk.decrypt(e) for e in enc] == got.tolist()
    mixed = pk.encrypt_batch(np.array([1e300, 0.5]))
    got = sk.decrypt_batch(mixed)
    assert got.dtype == np.float64 and got.tolist() == [1e300, 0.5]


@pytest.mark.parametrize("seed", SEEDS)
def test_random_float_round_trip(sized, seed):
    pk, sk = sized
    gen = _gen(seed)
    bits = min(50, pk.max_int.bit_length() - 1)
    # floats whose exact mantissas fit this key: bits-bit integers scaled by powers of two
    mant = gen.integers(-(2**bits), 2**bits, 30).astype(np.float64)
    x = np.ldexp(mant, gen.integers(-60, 0, 30).astype(np.int32) * 4)
    enc = pk.encrypt_batch(x)
    _check(sk, enc, _fr(x), f"seed={seed} n_bits={pk.n.bit_length()}")


@pytest.mark.parametrize("seed", SEEDS)
def test_random_int_round_trip(sized, seed):
    pk, sk = sized
    gen = _gen(seed)
    m = pk.max_int
    vals = [
        int.from_bytes(gen.bytes(len(str(m))), "little") % (2 * m + 1) - m for _ in range(30)
    ] + [m, -m, 0, 1, -1]
    enc = pk.encrypt_batch(np.array(vals, dtype=object))
    _check(sk, enc, _fr(np.array(vals, dtype=object)), f"seed={seed} n={pk.n}")
    # Python lists of ints work the same
    _check(sk, pk.encrypt_batch(vals), _fr(np.array(vals, dtype=object)), f"seed={seed}")


@pytest.mark.parametrize("mode", MODES)
def test_sized_keys_all_modes(sized, mode):
    """Round trips and a few ops on keys whose p, q, p^2, q^2, n, n^2 sit on or next to
    64-bit limb boundaries (p and q of different limb counts for 129 bits)."""
    pk, sk = sized
    gen = _gen(FRESH)
    x = _ints(gen, (4, 5), min(2**40, pk.max_int // 2**20))
    e = _encrypt(pk, sk, x, mode)
    msg = f"mode={mode} n_bits={pk.n.bit_length()} seed={FRESH}"
    _check(sk, e, _fr(x), msg)
    for c, v in zip(_cts(e), x.reshape(-1).tolist(), strict=True):
        assert ref.decrypt(sk.p, sk.q, c) == v % pk.n, msg
    _check(sk, e + e, 2 * _fr(x), msg + " E+E")
    _check(sk, e * -3, -3 * _fr(x), msg + " E*-3")
    _check(sk, e.sum(axis=0), _fr(x).sum(axis=0), msg + " sum")
    w = gen.integers(-50, 50, (5, 2))
    _check(sk, e @ w, _fr(x) @ _fr(w), msg + " matmul")
    e.obfuscate()
    _check(sk, e, _fr(x), msg + " obfuscated")


def test_default_key_size():
    pk, sk = pl.generate_paillier_keypair()
    assert pk.n.bit_length() == pl.DEFAULT_KEYSIZE == 3072 and pk.obfuscation == "djn"
    x = _floats(_gen(FRESH), 16)
    e = pk.encrypt_batch(x)
    _check(sk, e * 2 + 1, _fr(x) * 2 + 1, f"seed={FRESH}")
    phe = pytest.importorskip("phe")
    ppk = phe.paillier.PaillierPublicKey(pk.n)
    psk = phe.paillier.PaillierPrivateKey(ppk, sk.p, sk.q)
    for c, ex, v in zip(
        e.ciphertexts().tolist()[:4], e.exponents.tolist(), x.tolist(), strict=False
    ):
        assert psk.decrypt(phe.paillier.EncryptedNumber(ppk, c, ex)) == v


@pytest.mark.parametrize("level", ppml_fast.available_isas())
def test_paths_agree_at_every_level(k512, level):
    """The DJN table walk at every ISA level this CPU has (at avx512 on a CPU with IFMA:
    the IFMA kernels; elsewhere GMP): ciphertexts decrypt the same, and deterministic ops
    give the same ints as at the generic level."""
    from ppml_fast._native import _cpu
    from ppml_fast._native import paillier as kernels

    pk0, sk = k512
    pk, sk = _with_hs(pk0, sk, "djn")
    x = _ints(_gen(FRESH), 20)
    outs = []
    for lv in ("generic", level):
        with ppml_fast.isa(lv):
            assert ppml_fast.get_isa() == lv
            assert kernels._get_isa() == ppml_fast.available_isas().index(lv)
            want_ifma = lv == "avx512" and _cpu.cpu_features()["avx512ifma"]
            assert kernels.ifma_in_use() == want_ifma
            e = pk.encrypt_batch(x)
            _check(sk, e, _fr(x), f"{lv}")
            e.obfuscate()
            _check(sk, e, _fr(x), f"{lv} obfuscated")
            base = pl.EncryptedArray.from_ciphertexts(pk, [ref.encrypt(pk.n, int(v), 3) for v in x])
            outs.append((_cts(base * 5 + 7), _cts(base @ np.arange(20).reshape(20, 1))))
    assert outs[0] == outs[1]


def test_shared_key_from_python_threads(k512):
    """Several Python threads encrypting and decrypting with one fresh key at once (the
    DJN table is built under the key's lock by whichever thread comes first)."""
    pk0, sk = k512
    pk, sk = _with_hs(pk0, sk, "djn")
    errors, results = [], {}

    def work(i):
        try:
            x = np.arange(30) * (i + 1) - 7
            e = pk.encrypt_batch(x)
            results[i] = (sk.decrypt_batch(e + e).tolist(), (2 * x).tolist())
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and len(results) == 6
    assert all(got == want for got, want in results.values())


def test_subnormal_results_round_once(k512):
    pk, sk = k512
    x = np.array([5e-324, 1.5e-323, 1e-310, -2.5e-323, 2.2250738585072014e-308])
    e = pk.encrypt_batch(x)
    for k in (0.5, 0.25, 3.0, -0.75, 1 / 3):
        _check(sk, e * k, _fr(x) * Fraction(k), f"k={k}")
    _check(sk, e + e[::-1], _fr(x) + _fr(x[::-1]), "E+E")
    _check(sk, e - 1e-320, _fr(x) - Fraction(1e-320), "E-s")


def test_float32_encoded_exactly(k256):
    pk, sk = k256
    x = (np.arange(-20, 20) * np.float32(0.1)).astype(np.float32)
    x[0] = np.float32(1e-40)  # subnormal float32
    enc = pk.encrypt_batch(x)
    got = sk.decrypt_batch(enc)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, x.astype(np.float64))
    for i, v in enumerate(x.tolist()):
        assert enc.exponents[i] == pl.EncodedNumber.encode(pk, v).exponent


def test_decrypt_batch_dtype_rules(k256):
    pk, sk = k256
    assert sk.decrypt_batch(pk.encrypt_batch([1, -2, 3])).dtype == np.int64
    assert sk.decrypt_batch(pk.encrypt_batch([0.5, 2.0])).dtype == np.float64
    assert sk.decrypt_batch(pk.encrypt_batch([1, 2.5])).dtype == np.float64  # list -> floats
    big = sk.decrypt_batch(pk.encrypt_batch(np.array([2**63, 1], dtype=object)))
    assert big.dtype == object and big.tolist() == [2**63, 1]
    assert all(type(v) is int for v in big.tolist())
    neg = sk.decrypt_batch(pk.encrypt_batch([-(2**63), 2**63 - 1]))
    assert neg.dtype == np.int64 and neg.tolist() == [-(2**63), 2**63 - 1]
    below = sk.decrypt_batch(pk.encrypt_batch([-(2**63) - 1]))
    assert below.dtype == object and below.tolist() == [-(2**63) - 1]
    # positive exponents (precision 256 -> exponent 2) decode to ints
    coarse = pk.encrypt_batch(np.array([512, -1024, 300]), precision=256)
    assert (coarse.exponents == 2).all()
    got = sk.decrypt_batch(coarse)
    assert got.dtype == np.int64 and got.tolist() == [512, -1024, 256]
    # a big positive exponent: ints too large for int64
    got = sk.decrypt_batch(pk.encrypt_batch(np.array([3, 5]), precision=16.0**20))
    assert got.dtype == np.int64 and got.tolist() == [0, 0]  # rounded to 0 * 16**20
    got = sk.decrypt_batch(pk.encrypt_batch(np.array([3.0 * 16**20]), precision=16.0**20))
    assert got.dtype == object and got.tolist() == [3 * 16**20]


def test_decrypt_batch_matches_scalar_decode(k512):
    """Each element of decrypt_batch is python-paillier's decode of that element."""
    pk, sk = k512
    gen = _gen(FRESH)
    enc, want = _mixed(pk, gen, (4, 5))
    got = _check(sk, enc, want, f"seed={FRESH}")
    for idx in np.ndindex(enc.shape):
        e = enc[idx]
        assert isinstance(e, pl.EncryptedNumber)
        assert e.exponent == enc.exponents[idx]
        scalar = sk.decrypt_encoded(e).decode()
        assert float(scalar) == got[idx], (idx, scalar, got[idx])
    # a sequence of EncryptedNumber is accepted too
    seq = [pk.encrypt(1), pk.encrypt(-2.5), pk.encrypt(2**70)]
    got = sk.decrypt_batch(seq)
    assert got.dtype == np.float64 and got.tolist() == [1.0, -2.5, 2.0**70]


@pytest.mark.parametrize("shape", [(1,), (7,), (3, 4), (2, 3, 4), (1, 1, 1, 5)])
def test_shapes_preserved(k256, shape):
    pk, sk = k256
    x = _ints(_gen(FRESH), shape)
    enc = pk.encrypt_batch(x)
    assert enc.shape == shape and enc.ndim == len(shape) and enc.size == x.size
    assert enc.exponents.shape == shape
    _check(sk, enc, _fr(x), f"shape={shape} seed={FRESH}")


def test_non_contiguous_inputs(k256):
    pk, sk = k256
    gen = _gen(FRESH)
    base = _ints(gen, (6, 8))
    fbase = _floats(gen, (6, 8))
    views = {
        "slice": base[::2, 1::3],
        "T": base.T,
        "neg-stride": base[::-1, ::-2],
        "fortran": np.asfortranarray(base),
        "fslice": fbase[1::2, ::3],
        "fT": fbase.T,
        "column": base[:, 3],
        "bcast": np.broadcast_to(base[0], (3, 8)),
    }
    for name, v in views.items():
        before = v.copy()
        enc = pk.encrypt_batch(v)
        _check(sk, enc, _fr(np.ascontiguousarray(v)), f"{name} seed={FRESH}")
        np.testing.assert_array_equal(v, before)  # the input is left alone
        enc2 = sk.encrypt_batch(v)
        _check(sk, enc2, _fr(np.ascontiguousarray(v)), f"{name} (crt) seed={FRESH}")


def test_nested_lists_and_scalars_types(k256):
    pk, sk = k256
    enc = pk.encrypt_batch([[1, 2], [3, -4]])
    _check(sk, enc, _fr([[1, 2], [3, -4]]), "nested list")
    enc = pk.encrypt_batch([np.int64(3), np.float64(0.5)])
    _check(sk, enc, _fr([3.0, 0.5]), "numpy scalars in a list")
    enc = pk.encrypt_batch(np.array([1, 2], dtype=object))
    _check(sk, enc, _fr([1, 2]), "object ints")


@pytest.mark.parametrize("precision", [1e-2, 1e-6, 0.5, 16.0, 1000.0])
def test_precision_matches_scalar_encode(k256, precision):
    pk, sk = k256
    gen = _gen(FRESH)
    x = np.concatenate([_floats(gen, 10), [0.0, 1.0, -7.0, 1234.5678]])
    enc = pk.encrypt_batch(x, precision=precision)
    got = sk.decrypt_batch(enc)
    want = []
    for i, v in enumerate(x.tolist()):
        enc_i, exp_i = ref.encode(pk.n, v, precision=precision)
        assert enc.exponents[i] == exp_i, (v, precision)
        want.append(ref.decode(pk.n, enc_i, exp_i))
        assert sk.decrypt(enc[i]) == want[-1]
    assert got.tolist() == want, f"precision={precision} seed={FRESH}"
    ints = pk.encrypt_batch(np.array([1000, -77, 5]), precision=precision)
    for i, v in enumerate([1000, -77, 5]):
        assert sk.decrypt(ints[i]) == ref.decode(pk.n, *ref.encode(pk.n, v, precision=precision))


@pytest.mark.parametrize("mode", MODES)
def test_ciphertexts_decrypt_under_oracle(k512, mode):
    pk, sk = k512
    x = _ints(_gen(FRESH), 12)
    enc = _encrypt(pk, sk, x, mode)
    for c, v in zip(_cts(enc), x.tolist(), strict=True):
        assert 0 < c < pk.nsquare and math.gcd(c, pk.n) == 1
        assert ref.decrypt(sk.p, sk.q, c) == v % pk.n, (mode, v)
    # the private key's encrypt_batch with its default (djn for 512 bits) and with djn
    for other in (sk.encrypt_batch(x), sk.encrypt_batch(x, obfuscation="djn")):
        assert [ref.decrypt(sk.p, sk.q, c) for c in _cts(other)] == [v % pk.n for v in x.tolist()]


# --- randomisation ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_encryptions_are_randomised(k512, mode):
    pk, sk = k512
    x = np.zeros(50, np.int64)
    a = _encrypt(pk, sk, x, mode)
    b = _encrypt(pk, sk, x, mode)
    ca, cb = _cts(a), _cts(b)
    assert len(set(ca)) == 50 and len(set(cb)) == 50 and not set(ca) & set(cb)
    assert a.ciphertexts().tolist() == ca  # fresh encryptions count as obfuscated
    np.testing.assert_array_equal(sk.decrypt_batch(a), x)


@pytest.mark.parametrize("mode", ["djn", "classic"])
def test_obfuscate_changes_ciphertexts_not_values(k512, mode):
    pk, sk = k512
    x = _floats(_gen(FRESH), (3, 4))
    enc = pk.encrypt_batch(x)
    before = _cts(enc)
    enc.obfuscate(mode)
    after = _cts(enc)
    assert all(u != v for u, v in zip(before, after, strict=True))
    _check(sk, enc, _fr(x), f"mode={mode}")
    with pytest.raises(ValueError):
        enc.obfuscate("none")
    assert _cts(enc) == after


def test_op_results_not_obfuscated_until_asked(k256):
    pk, sk = k256
    a = pk.encrypt_batch([1, 2, 3])
    b = pk.encrypt_batch([10, 20, 30])
    n = pk.n
    for res, want in [
        (a + b, [ref.add(n, x, y) for x, y in zip(_cts(a), _cts(b), strict=True)]),
        (a * 3, [ref.mul(n, x, 3) for x in _cts(a)]),
    ]:
        raw = _cts(res)
        assert raw == want
        assert _cts(res) == raw  # be_secure=False leaves them alone
        # indexing gives a not-yet-obfuscated EncryptedNumber
        elem = res[0]
        assert elem.ciphertext(False) == raw[0]
        assert elem.ciphertext() != raw[0]
        secure = res.ciphertexts().reshape(-1).tolist()
        assert all(s != r for s, r in zip(secure, raw, strict=True))
        assert res.ciphertexts().reshape(-1).tolist() == secure  # only once
        assert _cts(res) == secure
    s = a.sum()
    assert isinstance(s, pl.EncryptedNumber)
    assert s.ciphertext(False) == ref.sum_ciphertexts(n, _cts(a))
    assert s.ciphertext() != ref.sum_ciphertexts(n, _cts(a)) and sk.decrypt(s) == 6


def test_serialisation_obfuscates_op_results(k256):
    pk, sk = k256
    a = pk.encrypt_batch([1, 2, 3])
    for dump in (lambda r: r.to_bytes(), lambda r: r.to_json()):
        r = a + a
        raw = _cts(r)
        data = dump(r)
        assert all(u != v for u, v in zip(raw, _cts(r), strict=True))
        back = (
            pl.EncryptedArray.from_bytes(data, pk)
            if isinstance(data, bytes)
            else pl.EncryptedArray.from_json(data, pk)
        )
        assert _cts(back) == _cts(r)
        _check(sk, back, _fr([2, 4, 6]), "serialised op result")
    for dump in (lambda r: r.to_bytes(be_secure=False), lambda r: r.to_json(be_secure=False)):
        r = a + a
        raw = _cts(r)
        data = dump(r)
        assert _cts(r) == raw
        back = (
            pl.EncryptedArray.from_bytes(data, pk)
            if isinstance(data, bytes)
            else pl.EncryptedArray.from_json(data, pk)
        )
        assert _cts(back) == raw


# --- arithmetic ------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("kind", ["int", "float"])
def test_add_sub_neg(k512, seed, kind):
    pk, sk = k512
    gen = _gen(seed)
    make = _ints if kind == "int" else _floats
    a, b = make(gen, (3, 4)), make(gen, (3, 4))
    s = float(gen.standard_normal()) if kind == "float" else int(gen.integers(-99, 99))
    ea, eb = pk.encrypt_batch(a), pk.encrypt_batch(b)
    fa, fb, fs = _fr(a), _fr(b), Fraction(s)
    msg = f"seed={seed} kind={kind}"
    _check(sk, ea + eb, fa + fb, msg + " E+E")
    _check(sk, ea - eb, fa - fb, msg + " E-E")
    _check(sk, ea + b, fa + fb, msg + " E+b")
    _check(sk, b + ea, fa + fb, msg + " b+E")
    _check(sk, ea - b, fa - fb, msg + " E-b")
    _check(sk, b - ea, fb - fa, msg + " b-E")
    _check(sk, -ea, -fa, msg + " -E")
    _check(sk, ea + s, fa + fs, msg + " E+s")
    _check(sk, s + ea, fa + fs, msg + " s+E")
    _check(sk, ea - s, fa - fs, msg + " E-s")
    _check(sk, s - ea, fs - fa, msg + " s-E")
    _check(sk, ea + b.tolist(), fa + fb, msg + " E+list")
    # an EncryptedNumber operand broadcasts like a scalar
    en = pk.encrypt(s)
    _check(sk, ea + en, fa + fs, msg + " E+EncryptedNumber")
    _check(sk, en + ea, fa + fs, msg + " EncryptedNumber+E")
    _check(sk, ea - en, fa - fs, msg + " E-EncryptedNumber")
    # numpy scalars
    _check(sk, ea + np.float64(s), fa + fs, msg + " E+np.float64")
    _check(sk, ea + np.int32(7), fa + 7, msg + " E+np.int32")


def test_add_mixed_exponents(k512):
    pk, sk = k512
    gen = _gen(FRESH)
    ea, fa = _mixed(pk, gen, (2, 6))
    eb, fb = _mixed(pk, gen, (2, 6))
    msg = f"seed={FRESH}"
    _check(sk, ea + eb, fa + fb, msg)
    _check(sk, ea - eb, fa - fb, msg)
    _check(sk, ea + eb[:, ::-1], fa + fb[:, ::-1], msg + " reversed")
    xi, xf = _ints(gen, (2, 6)), _floats(gen, (2, 6))
    _check(sk, pk.encrypt_batch(xi) + pk.encrypt_batch(xf), _fr(xi) + _fr(xf), msg)
    x = _floats(gen, (2, 6))
    _check(sk, ea + x, fa + _fr(x), msg + " +floats")
    _check(sk, ea - x, fa - _fr(x), msg + " -floats")
    y = _ints(gen, (2, 6))
    _check(sk, ea + y, fa + _fr(y), msg + " +ints")
    # result exponents are the elementwise minimum (as phe aligns each pair)
    r = ea + eb
    np.testing.assert_array_equal(r.exponents, np.minimum(ea.exponents, eb.exponents))


@pytest.mark.parametrize(
    "shapes", [((4,), (3, 1)), ((3, 1, 4), (5, 1)), ((1,), (2, 3)), ((2, 3), ()), ((2, 1), (1, 3))]
)
def test_broadcasting(k256, shapes):
    pk, sk = k256
    sa, sb = shapes
    gen = _gen(FRESH)
    a, b = _ints(gen, sa), _ints(gen, sb)
    ea, eb = pk.encrypt_batch(a), (pk.encrypt_batch(b) if sb else None)
    want_shape = np.broadcast_shapes(sa, sb)
    msg = f"shapes={shapes} seed={FRESH}"
    if eb is not None:
        r = ea + eb
        assert r.shape == want_shape
        _check(sk, r, _fr(a) + _fr(b), msg + " E+E")
        _check(sk, eb - ea, _fr(b) - _fr(a), msg + " E-E")
    _check(sk, ea + b, _fr(a) + _fr(b), msg + " E+b")
    _check(sk, b - ea, _fr(b) - _fr(a), msg + " b-E")
    _check(sk, ea * b, _fr(a) * _fr(b), msg + " E*b")
    _check(sk, b * ea, _fr(a) * _fr(b), msg + " b*E")
    if sa != (1,):
        with pytest.raises(ValueError):
            ea + np.zeros((7, 9), np.int64)


@pytest.mark.parametrize("seed", SEEDS)
def test_mul_div(k512, seed):
    pk, sk = k512
    gen = _gen(seed)
    a, fl = _ints(gen, (3, 5), 2**30), _floats(gen, (3, 5))
    ea, ef = pk.encrypt_batch(a), pk.encrypt_batch(fl)
    fa, ff = _fr(a), _fr(fl)
    k = int(gen.integers(-1000, 1000))
    kf = float(gen.standard_normal())
    kv = _ints(gen, (3, 5), 2**20)
    kfv = _floats(gen, (3, 5))
    kfv_nz = np.where(kfv == 0, 2.0, kfv)
    msg = f"seed={seed} k={k} kf={kf!r}"
    for e, f, name in ((ea, fa, "int"), (ef, ff, "float")):
        m = f"{msg} {name}"
        _check(sk, e * k, f * k, m + " *k")
        _check(sk, k * e, f * k, m + " k*")
        _check(sk, e * -k, f * -k, m + " *-k")
        _check(sk, e * 0, f * 0, m + " *0")
        _check(sk, e * 1, f, m + " *1")
        _check(sk, e * -1, -f, m + " *-1")
        _check(sk, e * kf, f * Fraction(kf), m + " *kf")
        _check(sk, e * kv, f * _fr(kv), m + " *array")
        _check(sk, kfv * e, f * _fr(kfv), m + " array*")
        _check(sk, e * kv.tolist(), f * _fr(kv), m + " *list")
        _check(sk, e * np.int64(k), f * k, m + " *np.int64")
        _check(sk, e * np.float32(0.5), f * Fraction(1, 2), m + " *np.float32")
        _check(sk, e / kf, f * Fraction(1 / kf), m + " /kf")
        _check(sk, e / 4, f * Fraction(1, 4), m + " /4")
        _check(sk, e / -3, f * Fraction(1 / -3), m + " /-3")
        _check(sk, e / kfv_nz, f * _fr(1 / kfv_nz), m + " /array")
    big = 2**100 + 12345
    _check(sk, ea * big, fa * big, msg + " *big")
    _check(sk, ea * -big, fa * -big, msg + " *-big")
    _check(sk, ea * np.uint64(2**64 - 1), fa * (2**64 - 1), msg + " *uint64 max")
    _check(sk, ea * np.array([-(2**63)]), fa * -(2**63), msg + " *int64 min")
    # mul by an EncodedNumber
    enc = pl.EncodedNumber.encode(pk, -2.5)
    _check(sk, ea * enc, fa * Fraction(-5, 2), msg + " *Encoded")
    _check(sk, enc * ea, fa * Fraction(-5, 2), msg + " Encoded*")


def test_add_encoded_number(k512):
    pk, sk = k512
    gen = _gen(FRESH)
    ea, fa = _mixed(pk, gen, (9,))
    for v in (0.125, -3, 2**40, -1e-4):
        enc = pl.EncodedNumber.encode(pk, v)
        _check(sk, ea + enc, fa + Fraction(v), f"v={v}")
        _check(sk, enc + ea, fa + Fraction(v), f"v={v}")
        _check(sk, ea - enc, fa - Fraction(v), f"v={v}")
        _check(sk, enc - ea, Fraction(v) - fa, f"v={v}")
    coarse = pl.EncodedNumber.encode(pk, 4096, precision=4096)  # exponent 3
    _check(sk, ea + coarse, fa + 4096, "coarse")


def test_int64_min_operands(k256):
    pk, sk = k256
    e = pk.encrypt_batch([0, 5])
    lo = -(2**63)
    _check(sk, e - np.array([lo, lo]), _fr([2**63, 2**63 + 5]), "E - int64 min array")
    _check(sk, e - lo, _fr([2**63, 2**63 + 5]), "E - int64 min python int")
    _check(sk, np.array([lo, lo]) - e, _fr([lo, lo - 5]), "int64 min - E")
    _check(sk, e + np.array([lo, lo]), _fr([lo, lo + 5]), "E + int64 min")
    _check(sk, -pk.encrypt_batch(np.array([lo])), _fr([2**63]), "-E(int64 min)")
    _check(sk, e - np.array([2**64 - 1, 1], np.uint64), _fr([1 - 2**64, 4]), "E - uint64")


@pytest.mark.parametrize("seed", SEEDS)
def test_sum(k512, seed):
    pk, sk = k512
    gen = _gen(seed)
    x = _floats(gen, (3, 4, 5))
    e = pk.encrypt_batch(x)
    f = _fr(x)
    msg = f"seed={seed}"
    total = e.sum()
    assert isinstance(total, pl.EncryptedNumber)
    assert sk.decrypt(total) == float(f.sum()), msg
    for axis in (0, 1, 2, -1, (0, 1), (0, 2), (2, 0), (1, 2)):
        _check(sk, e.sum(axis=axis), f.sum(axis=axis), f"{msg} axis={axis}")
    xi = _ints(gen, (6, 7))
    ei = pk.encrypt_batch(xi)
    _check(sk, ei.sum(axis=0), _fr(xi).sum(axis=0), msg + " ints axis 0")
    _check(sk, ei.sum(axis=1), _fr(xi).sum(axis=1), msg + " ints axis 1")
    assert sk.decrypt(ei.sum()) == int(xi.sum())
    # mixed exponents
    em, fm = _mixed(pk, gen, (3, 4))
    _check(sk, em.sum(axis=1), fm.sum(axis=1), msg + " mixed")
    assert sk.decrypt(em.sum()) == float(fm.sum())
    # a long 1-D sum (split over threads) and a reduction to one group
    long = _ints(gen, 200)
    assert sk.decrypt(pk.encrypt_batch(long).sum()) == int(long.sum())
    with pytest.raises(np.exceptions.AxisError):
        e.sum(axis=3)
    with pytest.raises(ValueError):
        e.sum(axis=(0, 0))


def test_sum_of_empty_slices_is_zero(k256):
    pk, sk = k256
    e = pk.encrypt_batch(np.arange(6).reshape(2, 3))
    empty = e[:, :0]
    assert empty.shape == (2, 0) and empty.size == 0
    assert sk.decrypt(empty.sum()) == 0
    got = sk.decrypt_batch(empty.sum(axis=1))
    assert got.tolist() == [0, 0]
    assert sk.decrypt_batch(empty.sum(axis=0)).shape == (0,)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("wkind", ["int", "negint", "float"])
def test_matmul(k512, seed, wkind):
    pk, sk = k512
    gen = _gen(seed)
    x = _floats(gen, (3, 4))
    if wkind == "int":
        w = gen.integers(0, 50, (4, 2))
    elif wkind == "negint":
        w = gen.integers(-50, 50, (4, 2))
    else:
        w = _floats(gen, (4, 2))
    e, f, fw = pk.encrypt_batch(x), _fr(x), _fr(w)
    msg = f"seed={seed} W={wkind}"
    _check(sk, e @ w, f @ fw, msg + " E@W")
    _check(sk, e.dot(w), f @ fw, msg + " E.dot(W)")
    _check(sk, e[0] @ w, f[0] @ fw, msg + " e1@W")
    _check(sk, e @ w[:, 0], f @ fw[:, 0], msg + " E@w1")
    one = e[0] @ w[:, 0]
    assert isinstance(one, pl.EncryptedNumber)
    assert sk.decrypt(one) == float(f[0] @ fw[:, 0]), msg
    # plaintext on the left: W^T (2, 4) @ E^T (4, 3), numpy deferring to __rmatmul__
    wt = np.ascontiguousarray(w.T)
    _check(sk, wt @ e.T, fw.T @ f.T, msg + " W@E")
    _check(sk, wt[0] @ e.T, fw.T[0] @ f.T, msg + " w1@E")
    _check(sk, wt @ e[1], fw.T @ f[1], msg + " W@e1")
    _check(sk, wt.tolist() @ e.T, fw.T @ f.T, msg + " list@E")
    _check(sk, e @ w.tolist(), f @ fw, msg + " E@list")
    # mixed exponents on the encrypted side
    em, fm = _mixed(pk, gen, (2, 4))
    _check(sk, em @ w, fm @ fw, msg + " mixed@W")
    _check(sk, wt @ em.T, fw.T @ fm.T, msg + " W@mixed")


def test_matmul_ciphertexts_match_oracle(k256):
    pk, sk = k256
    gen = _gen(FRESH)
    x = _ints(gen, (3, 4), 2**20)
    e = pk.encrypt_batch(x)
    cs = np.array(_cts(e), dtype=object).reshape(3, 4).tolist()
    w = gen.integers(0, 1000, (4, 5))
    assert _cts(e @ w) == [c for row in ref.matmul(pk.n, cs, w.tolist()) for c in row]
    wn = gen.integers(-1000, 1000, (4, 5))
    want = [
        reduce(
            lambda acc, k: acc * pow(cs[i][k], int(wn[k, j]), pk.nsquare) % pk.nsquare, range(4), 1
        )
        for i in range(3)
        for j in range(5)
    ]
    assert _cts(e @ wn) == want
    _check(sk, e @ wn, _fr(x) @ _fr(wn), f"seed={FRESH}")
    # the transposed product on the left: (W^T @ E^T)^T == E @ W
    assert _cts((wn.T @ e.T).T) == want


def test_matmul_errors(k256, other256):
    pk, _ = k256
    e = pk.encrypt_batch(np.zeros((3, 4), np.int64))
    with pytest.raises(ValueError):
        e @ np.zeros((5, 2))
    with pytest.raises(ValueError):
        np.zeros((2, 5)) @ e
    with pytest.raises(ValueError):
        e @ np.zeros(3)
    with pytest.raises(ValueError):
        e @ np.zeros((4, 2, 2))
    with pytest.raises(ValueError):
        e.reshape(3, 2, 2) @ np.zeros((2, 2))
    with pytest.raises(ValueError):
        e @ np.array([[1.0], [np.nan], [0.0], [0.0]])
    with pytest.raises(ValueError):
        e @ np.array([[1.0], [np.inf], [0.0], [0.0]])
    for bad in (e, pk.encrypt(1), "ab", np.array([["a"]] * 4)):
        with pytest.raises(TypeError):
            e @ bad
    with pytest.raises(pl.KeyMismatchError):
        other256[1].decrypt_batch(e @ np.ones((4, 2), np.int64))


def test_scalar_and_batch_ops_same_ciphertexts(k512):
    """EncryptedArray operations give exactly the ciphertexts of the same EncryptedNumber
    operations element by element (both are un-obfuscated)."""
    pk, sk = k512
    gen = _gen(FRESH)
    ea, _ = _mixed(pk, gen, (9,))
    eb, _ = _mixed(pk, gen, (9,))
    a, b = list(ea), list(eb)  # iteration gives EncryptedNumbers
    assert all(isinstance(v, pl.EncryptedNumber) for v in a)
    x = _floats(gen, 9)
    x[x == 0] = 0.75
    k = int(gen.integers(-9, 9))
    cases = {
        "E+E": (ea + eb, [u + v for u, v in zip(a, b, strict=True)]),
        "E-E": (ea - eb, [u - v for u, v in zip(a, b, strict=True)]),
        "E+x": (ea + x, [u + float(v) for u, v in zip(a, x, strict=True)]),
        "x-E": (x - ea, [float(v) - u for u, v in zip(a, x, strict=True)]),
        "E*x": (ea * x, [u * float(v) for u, v in zip(a, x, strict=True)]),
        "E*k": (ea * k, [u * k for u in a]),
        "E/x": (ea / x, [u / float(v) for u, v in zip(a, x, strict=True)]),
        "-E": (-ea, [-u for u in a]),
        "E+2.5": (ea + 2.5, [u + 2.5 for u in a]),
    }
    for name, (batch, scalars) in cases.items():
        msg = f"{name} seed={FRESH}"
        assert batch.exponents.tolist() == [s.exponent for s in scalars], msg
        assert _cts(batch) == [s.ciphertext(False) for s in scalars], msg
    total = reduce(operator.add, a)
    s = ea.sum()
    assert (s.exponent, s.ciphertext(False)) == (total.exponent, total.ciphertext(False))
    w = gen.integers(-5, 5, 9)
    dot = reduce(operator.add, [u * int(v) for u, v in zip(a, w, strict=True)])
    m = ea @ w
    assert sk.decrypt(m) == sk.decrypt(dot)
    if len(set(ea.exponents.tolist())) == 1:
        assert m.ciphertext(False) == dot.ciphertext(False)


def test_raw_oracle_ciphertexts(k256):
    """from_ciphertexts of oracle ciphertexts: + is c1 c2, * k is c^k, sum the product."""
    pk, sk = k256
    gen = _gen(FRESH)
    n, n2 = pk.n, pk.nsquare
    ms = [int(v) for v in gen.integers(0, 2**50, 8)]
    rs = [int(v) for v in gen.integers(2, 2**60, 8)]
    cs = ref.encrypt_loop(n, ms, rs)
    ks = [int(v) for v in gen.integers(-(2**40), 2**40, 8)]
    e = pl.EncryptedArray.from_ciphertexts(pk, cs)
    assert _cts(e) == cs
    e2 = pl.EncryptedArray.from_ciphertexts(pk, cs[::-1])
    assert _cts(e + e2) == ref.add_loop(n, cs, cs[::-1])
    assert _cts(e * np.array(ks)) == ref.mul_loop(n, cs, ks)
    assert _cts(e * 7) == [pow(c, 7, n2) for c in cs]
    assert e.sum().ciphertext(False) == ref.sum_ciphertexts(n, cs)
    assert _cts(e + 5) == [c * (1 + 5 * n) % n2 for c in cs]
    assert _cts(e - 5) == [c * (1 + (n - 5) * n) % n2 for c in cs]
    assert sk.decrypt_batch(e).tolist() == ms
    assert ref.decrypt_loop(sk.p, sk.q, _cts(e * np.array(ks))) == [
        m * k % n for m, k in zip(ms, ks, strict=True)
    ]


def test_decrease_exponent_to(k256):
    pk, sk = k256
    x = np.array([1.5, -2.0, 3, 0.0])
    e = pk.encrypt_batch(x)
    low = e.decrease_exponent_to(-20)
    assert (low.exponents == -20).all()
    _check(sk, low, _fr(x), "scalar target")
    target = e.exponents - np.array([0, 1, 2, 3])
    low2 = e.decrease_exponent_to(target)
    np.testing.assert_array_equal(low2.exponents, target)
    _check(sk, low2, _fr(x), "array target")
    assert _cts(low2)[0] == _cts(e)[0]
    assert _cts(low2)[1] == pow(_cts(e)[1], 16, pk.nsquare)
    with pytest.raises(ValueError):
        e.decrease_exponent_to(e.exponents + np.array([0, 0, 1, 0]))
    with pytest.raises(ValueError):
        e.decrease_exponent_to(0)


# --- the array container -----------------------------------------------------------------------


def test_indexing_and_views(k256):
    pk, sk = k256
    x = np.arange(24).reshape(2, 3, 4) - 10
    e = pk.encrypt_batch(x)
    assert len(e) == 2
    assert isinstance(e[1, 2, 3], pl.EncryptedNumber)
    assert sk.decrypt(e[1, 2, 3]) == x[1, 2, 3]
    assert sk.decrypt(e[-1, -1, -1]) == x[-1, -1, -1]
    for idx in [
        (0,),
        (slice(None), 1),
        (Ellipsis, 2),
        (slice(None, None, -1),),
        (1, slice(0, 3, 2)),
        ([1, 0],),
        (x > 0,),
        (np.array([0, 0, 1]),),
        (slice(None), None, 0),
    ]:
        sub = e[idx if len(idx) > 1 else idx[0]]
        want = x[idx if len(idx) > 1 else idx[0]]
        assert isinstance(sub, pl.EncryptedArray), idx
        assert sub.shape == want.shape, idx
        _check(sk, sub, _fr(want), f"index {idx}")
    rows = list(e)
    assert len(rows) == 2 and all(r.shape == (3, 4) for r in rows)
    _check(sk, rows[1], _fr(x[1]), "iter")
    with pytest.raises(IndexError):
        e[2]
    assert e.reshape(4, 6).shape == (4, 6)
    _check(sk, e.reshape(4, -1), _fr(x.reshape(4, -1)), "reshape")
    _check(sk, e.reshape((6, 4)), _fr(x.reshape(6, 4)), "reshape tuple")
    _check(sk, e.ravel(), _fr(x.ravel()), "ravel")
    _check(sk, e.T, _fr(x.T), "T")
    _check(sk, e.T.T, _fr(x), "T.T")
    _check(sk, e[:, 1].T, _fr(x[:, 1].T), "T of slice")
    with pytest.raises(ValueError):
        e.reshape(5, 5)
    ex = e.exponents
    ex[...] = 99
    assert (e.exponents == 0).all()  # a copy
    assert "EncryptedArray" in repr(e)
    nums = e.to_numbers()
    assert nums.shape == x.shape and nums.dtype == object
    assert sk.decrypt(nums[1, 0, 2]) == x[1, 0, 2]
    lst = e.tolist()
    assert len(lst) == 2 and len(lst[0]) == 3 and sk.decrypt(lst[1][2][1]) == x[1, 2, 1]


def test_copy_is_independent(k256):
    pk, sk = k256
    e = pk.encrypt_batch([1, 2, 3])
    before = _cts(e)
    c = e.copy()
    c.obfuscate()
    assert _cts(e) == before and _cts(c) != before
    _check(sk, c, _fr([1, 2, 3]), "copy")
    v = e[1:]
    v.obfuscate()
    assert _cts(e) == before  # slices do not write through


def test_direct_construction_is_refused(k256):
    with pytest.raises(TypeError):
        pl.EncryptedArray()
    with pytest.raises(TypeError):
        pl.EncryptedArray(k256[0], [1, 2])


def test_from_numbers(k256, other256):
    pk, sk = k256
    nums = [pk.encrypt(v) for v in (1, -2.5, 3)]
    e = pl.EncryptedArray.from_numbers(nums)
    assert e.shape == (3,) and e.public_key == pk
    assert _cts(e) == [x.ciphertext(False) for x in nums]
    _check(sk, e, _fr([1, -2.5, 3]), "list")
    e2 = pl.EncryptedArray.from_numbers([nums[:2], nums[1:]])
    assert e2.shape == (2, 2)
    _check(sk, e2, _fr([[1, -2.5], [-2.5, 3]]), "nested")
    arr = np.empty((3, 1), dtype=object)
    arr[:, 0] = nums
    _check(sk, pl.EncryptedArray.from_numbers(arr), _fr([[1], [-2.5], [3]]), "object array")
    assert pl.EncryptedArray.from_numbers(e) is e
    _check(sk, pl.EncryptedArray.from_numbers(iter(nums)), _fr([1, -2.5, 3]), "iterator")
    with pytest.raises(ValueError):
        pl.EncryptedArray.from_numbers([])
    with pytest.raises(TypeError):
        pl.EncryptedArray.from_numbers([nums[0], 5])
    with pytest.raises(pl.KeyMismatchError):
        pl.EncryptedArray.from_numbers([nums[0], other256[0].encrypt(1)])


def test_from_ciphertexts(k256):
    pk, sk = k256
    x = pk.encrypt_batch([[1.5, 2], [3, -4]])
    cts, exps = x.ciphertexts(), x.exponents
    y = pl.EncryptedArray.from_ciphertexts(pk, cts, exps)
    assert _cts(y) == _cts(x) and y.exponents.tolist() == exps.tolist()
    _check(sk, y, _fr([[1.5, 2], [3, -4]]), "round trip")
    z = pl.EncryptedArray.from_ciphertexts(pk, cts.tolist(), exps.tolist())
    assert _cts(z) == _cts(x)
    one = pl.EncryptedArray.from_ciphertexts(pk, [1, 1, 1], -3)
    assert one.exponents.tolist() == [-3, -3, -3]
    assert sk.decrypt_batch(one).tolist() == [0.0, 0.0, 0.0]
    # from_ciphertexts accepts [0, n^2) (0 is rejected only at decryption)
    zero = pl.EncryptedArray.from_ciphertexts(pk, [0, pk.nsquare - 1])
    assert _cts(zero) == [0, pk.nsquare - 1]
    for bad in ([pk.nsquare], [-1], [1, pk.nsquare + 5]):
        with pytest.raises(ValueError):
            pl.EncryptedArray.from_ciphertexts(pk, bad)
    for bad in ([1.0], ["1"], [None], [True]):
        with pytest.raises(TypeError):
            pl.EncryptedArray.from_ciphertexts(pk, bad)
    with pytest.raises(TypeError):
        pl.EncryptedArray.from_ciphertexts(pk.n, [1])
    with pytest.raises(TypeError):
        pl.EncryptedArray.from_ciphertexts(pk, [1, 1], [0.5, 0.5])
    with pytest.raises(ValueError):
        pl.EncryptedArray.from_ciphertexts(pk, [1, 1], [0, 0, 0])


# --- bad inputs ------------------------------------------------------------------------------


def test_decrypt_batch_rejects_invalid_ciphertexts(k256):
    pk, sk = k256
    good = _cts(pk.encrypt_batch([5]))[0]
    for bad in ([0], [sk.p], [sk.q * 7], [good, sk.p * sk.p], [pk.n], [good, 0, good]):
        e = pl.EncryptedArray.from_ciphertexts(pk, bad)
        before = _cts(e)
        with pytest.raises(ValueError):
            sk.decrypt_batch(e)
        assert _cts(e) == before
    with pytest.raises(ValueError):
        sk.decrypt_batch([pl.EncryptedNumber(pk, 0)])
    with pytest.raises(ValueError):
        sk.decrypt_batch([])
    with pytest.raises(TypeError):
        sk.decrypt_batch([1, 2])
    # negative multipliers need an inverse mod n^2
    bad = pl.EncryptedArray.from_ciphertexts(pk, [good, sk.p])
    with pytest.raises(ValueError):
        bad * -1
    with pytest.raises(ValueError):
        bad * np.array([1, -2])
    with pytest.raises(ValueError):
        bad - bad
    with pytest.raises(ValueError):
        bad @ np.array([1, -1])
    with pytest.raises(ValueError):
        np.array([[1, -1]]) @ bad
    assert _cts(bad) == [good, sk.p]
    # non-negative multipliers are fine (decryption rejects the result later)
    assert _cts(bad * 2)[0] == good * good % pk.nsquare


def test_key_mismatch_batch(k256, other256):
    pk, sk = k256
    pk2, sk2 = other256
    a, b = pk.encrypt_batch([1, 2]), pk2.encrypt_batch([3, 4])
    ca, cb = _cts(a), _cts(b)
    cases = [
        lambda: sk2.decrypt_batch(a),
        lambda: sk.decrypt_batch(b),
        lambda: a + b,
        lambda: a - b,
        lambda: b + a,
        lambda: a + pk2.encrypt(1),
        lambda: a - pk2.encrypt(1),
        lambda: a + pl.EncodedNumber.encode(pk2, 1),
        lambda: a * pl.EncodedNumber.encode(pk2, 2),
        lambda: a - pl.EncodedNumber.encode(pk2, 2),
        lambda: sk2.decrypt_batch(a @ np.ones((2, 2), np.int64)),
        lambda: sk2.decrypt_batch(np.ones((2, 2), np.int64) @ a),
        lambda: sk2.decrypt_batch(a.sum(axis=0)),
        lambda: sk.decrypt_batch([pk.encrypt(1), pk2.encrypt(1)]),
    ]
    for i, case in enumerate(cases):
        with pytest.raises(pl.KeyMismatchError) as info:
            case()
        assert isinstance(info.value, ValueError) and isinstance(info.value, PPMLError), i
    assert _cts(a) == ca and _cts(b) == cb
    ring = pl.PaillierPrivateKeyring([sk])
    assert ring.decrypt_batch(a).tolist() == [1, 2]
    with pytest.raises(KeyError):
        ring.decrypt_batch(b)


def test_encoding_overflow_batch(toy, k256):
    pk, _ = toy  # max_int = 42288
    m = pk.max_int
    for values in (
        np.array([0, m + 1]),
        np.array([-m - 1]),
        [m + 1],
        np.array([1e10]),
        np.array([2**62]),
        np.array([2**64 - 1], np.uint64),
        np.array([m + 1], np.uint32),
    ):
        before = np.array(values, copy=True)
        with pytest.raises(pl.EncodingOverflowError):
            pk.encrypt_batch(values)
        with pytest.raises(ValueError):
            pk.encrypt_batch(values)
        with pytest.raises(OverflowError):
            pk.encrypt_batch(values)
        np.testing.assert_array_equal(np.asarray(values), before)
    with pytest.raises(pl.EncodingOverflowError):
        pk.encrypt_batch(np.array([1.0]), precision=1e-10)
    pk2, sk2 = k256
    for big in ([pk2.max_int + 1], [2**300], [-(2**300), 1]):
        with pytest.raises(pl.EncodingOverflowError):
            pk2.encrypt_batch(big)
        with pytest.raises(pl.EncodingOverflowError):
            pk2.encrypt_batch(np.array(big, dtype=object))
    e = pk2.encrypt_batch([1, 2])
    before = _cts(e)
    with pytest.raises(pl.EncodingOverflowError):
        e + np.array([2**300, 0], dtype=object)
    with pytest.raises(pl.EncodingOverflowError):
        e * (2**300)
    assert _cts(e) == before
    # the edges fit
    ok = pk2.encrypt_batch([pk2.max_int, -pk2.max_int])
    assert sk2.decrypt_batch(ok).tolist() == [pk2.max_int, -pk2.max_int]


def test_decrypt_batch_overflow_band(k256):
    pk, sk = k256
    e = pk.encrypt_batch([pk.max_int, 1])
    with pytest.raises(OverflowError):
        sk.decrypt_batch(e + e)
    with pytest.raises(OverflowError):
        sk.decrypt_batch(e * 2)
    assert sk.decrypt_batch(e - e).tolist() == [0, 0]


def test_non_finite_and_non_numeric_inputs(k256):
    pk, sk = k256
    for bad in (
        np.array([1.0, np.nan]),
        np.array([np.inf]),
        [-np.inf, 1.0],
        np.array([np.nan], np.float32),
    ):
        before = np.array(bad, copy=True)
        with pytest.raises(ValueError):
            pk.encrypt_batch(bad)
        with pytest.raises(ValueError):
            sk.encrypt_batch(bad)
        np.testing.assert_array_equal(np.asarray(bad), before)
    for bad in (
        ["a", "b"],
        np.array(["1"]),
        [object()],
        np.array([1 + 2j]),
        [None],
        [b"1"],
        [1, "a"],
        np.array([1], dtype=np.longdouble) if np.dtype(np.longdouble).itemsize > 8 else ["x"],
    ):
        with pytest.raises(TypeError):
            pk.encrypt_batch(bad)
    e = pk.encrypt_batch([1.0, 2.0])
    before = _cts(e)
    with pytest.raises(ValueError):
        e + np.array([np.nan, 1.0])
    with pytest.raises(ValueError):
        e * np.inf
    with pytest.raises(ValueError):
        e - np.array([1.0, np.inf])
    for op in (
        lambda: e + "a",
        lambda: "a" + e,
        lambda: e - "a",
        lambda: e * "a",
        lambda: e * e,
        lambda: e * pk.encrypt(1),
        lambda: pk.encrypt(1) * e,
        lambda: e / e,
        lambda: e / pk.encrypt(1),
        lambda: e + None,
        lambda: operator.add(e, [1, "a"]),
        lambda: e + object(),
        lambda: e / "a",
        lambda: 1 / e,
        lambda: e @ e,
    ):
        with pytest.raises(TypeError):
            op()
    assert _cts(e) == before


def test_bad_obfuscation_and_precision(k256):
    pk, sk = k256
    for bad in ("bogus", "DJN", "", 1):
        err = ValueError if isinstance(bad, str) else TypeError
        with pytest.raises(err, match="obfuscation"):
            pk.encrypt_batch([1], obfuscation=bad)
        with pytest.raises(err, match="obfuscation"):
            sk.encrypt_batch([1], obfuscation=bad)
    e = pk.encrypt_batch([1])
    with pytest.raises(ValueError):
        e.obfuscate("bogus")
    for bad in (0, -1.0, np.nan, np.inf):
        with pytest.raises(ValueError):
            pk.encrypt_batch([1.5], precision=bad)
    with pytest.raises(TypeError, match="precision"):
        pk.encrypt_batch([1.0], precision="x")
    with pytest.raises(ValueError, match="precision"):
        pk.encrypt_batch([1.0], precision=-1.0)


def test_decrypt_batch_rejects_non_arrays(k256):
    _, sk = k256
    with pytest.raises(TypeError, match="enc must be"):
        sk.decrypt_batch(5)
    with pytest.raises(TypeError, match="enc must be"):
        sk.decrypt_batch("abc")


def test_exponents_are_bounded(k512):
    """Exponents from outside (ciphertext lists, numbers, bytes, JSON) stay within
    +-2**31, and an alignment whose multiplier 16**difference would be gigantic is
    refused, not attempted."""
    pk, sk = k512
    cts = [pk.encrypt(3).ciphertext(), pk.encrypt(5).ciphertext()]
    with pytest.raises(ValueError, match="exponents"):
        pl.EncryptedArray.from_ciphertexts(pk, cts, exponents=[2**62, -(2**62)])
    with pytest.raises(ValueError):
        pl.EncryptedArray.from_numbers([pl.EncryptedNumber(pk, cts[0], 2**40)])
    data = bytearray(pk.encrypt_batch([1]).to_bytes())
    hlen = int.from_bytes(data[8:12], "little")
    data[12 + hlen : 20 + hlen] = (2**62).to_bytes(8, "little")
    with pytest.raises(ValueError):
        pl.EncryptedArray.from_bytes(bytes(data))
    obj = json.loads(pk.encrypt_batch([1]).to_json())
    with pytest.raises(ValueError):
        pl.EncryptedArray.from_json(json.dumps({**obj, "exponents": [2**31]}))
    a = pl.EncryptedArray.from_ciphertexts(pk, cts, exponents=[2**30, -(2**30)])
    with pytest.raises(ValueError, match="align"):
        a.sum()
    b = pl.EncryptedArray.from_ciphertexts(pk, cts, exponents=[5, -5])
    assert sk.decrypt(b.sum()) == 3 * 16.0**5 + 5 * 16.0**-5


# --- threads ---------------------------------------------------------------------------------


def test_thread_count_does_not_change_results(k512):
    pk, sk = k512
    gen = _gen(FRESH)
    x = _floats(gen, (5, 7))
    xi = _ints(gen, (5, 7))
    e, ei = pk.encrypt_batch(x), pk.encrypt_batch(xi)
    w = gen.integers(-9, 9, (7, 3))
    em, _ = _mixed(pk, gen, (5, 7))
    old = ppml_fast.get_num_threads()
    results = []
    for k in (1, 2, 3):
        with _config.num_threads(k):
            assert ppml_fast.get_num_threads() == k
            r = {
                "dec": sk.decrypt_batch(e).tolist(),
                "deci": sk.decrypt_batch(ei).tolist(),
                "add": _cts(e + ei),
                "addm": _cts(em + e),
                "sub": _cts(e - 2.5),
                "mul": _cts(e * -3),
                "mulv": _cts(ei * xi),
                "sum": e.sum().ciphertext(False),
                "sum0": _cts(em.sum(axis=0)),
                "sum1": _cts(ei.sum(axis=1)),
                "matmul": _cts(ei @ w),
                "rmatmul": _cts(w.T @ em.T),
                "lower": _cts(e.decrease_exponent_to(-40)),
            }
        assert ppml_fast.get_num_threads() == old
        results.append(r)
    for k, r in zip((2, 3), results[1:], strict=True):
        for name in r:
            assert r[name] == results[0][name], f"{name} differs with {k} threads"
    ppml_fast.set_num_threads(2)
    try:
        assert ppml_fast.get_num_threads() == 2
        assert _cts(ei @ w) == results[0]["matmul"]
        # encryption under other thread counts still decrypts
        np.testing.assert_array_equal(sk.decrypt_batch(pk.encrypt_batch(xi)), xi)
        np.testing.assert_array_equal(sk.decrypt_batch(sk.encrypt_batch(xi)), xi)
    finally:
        ppml_fast.set_num_threads(old)


# --- serialisation -----------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["1d", "2d", "mixed", "transposed", "empty-slice", "one"])
def test_serialisation_round_trips(k512, case):
    pk, sk = k512
    gen = _gen(FRESH)
    if case == "1d":
        e = pk.encrypt_batch(_floats(gen, 9))
    elif case == "2d":
        e = pk.encrypt_batch(_ints(gen, (3, 4)))
    elif case == "mixed":
        e, _ = _mixed(pk, gen, (2, 3))
    elif case == "transposed":
        e = pk.encrypt_batch(_floats(gen, (3, 4))).T
    elif case == "empty-slice":
        e = pk.encrypt_batch(_ints(gen, (3, 4)))[:, :0]
    else:
        e = pk.encrypt_batch([7])
    want = sk.decrypt_batch(e)
    cts, exps = _cts(e), e.exponents.tolist()
    copies = {
        "bytes": pl.EncryptedArray.from_bytes(e.to_bytes()),
        "bytes+key": pl.EncryptedArray.from_bytes(e.to_bytes(), pk),
        "bytearray": pl.EncryptedArray.from_bytes(bytearray(e.to_bytes()), pk),
        "json": pl.EncryptedArray.from_json(e.to_json()),
        "json+key": pl.EncryptedArray.from_json(e.to_json(), pk),
        "json-bytes": pl.EncryptedArray.from_json(e.to_json().encode(), pk),
        "pickle": pickle.loads(pickle.dumps(e)),
    }
    for name, c in copies.items():
        msg = f"{case} {name}"
        assert c.shape == e.shape and c.public_key == pk, msg
        assert _cts(c) == cts and c.exponents.tolist() == exps, msg
        got = sk.decrypt_batch(c)
        assert got.dtype == want.dtype and got.tolist() == want.tolist(), msg
    assert copies["bytes+key"].public_key is pk
    obj = json.loads(e.to_json())
    assert obj["shape"] == list(e.shape) and int(obj["public_key"]["n"]) == pk.n
    assert [int(c) for c in obj["ciphertexts"]] == cts
    assert obj["exponents"] == e.exponents.reshape(-1).tolist()


def test_pickled_op_results_stay_unobfuscated(k256):
    pk, sk = k256
    r = pk.encrypt_batch([1, 2]) + 1
    raw = _cts(r)
    c = pickle.loads(pickle.dumps(r))
    assert _cts(c) == raw
    assert c.ciphertexts().tolist() != raw  # still obfuscates on demand
    assert sk.decrypt_batch(c).tolist() == [2, 3]


def test_deserialisation_rejects_other_key(k256, other256):
    pk, _ = k256
    pk2, _ = other256
    e = pk.encrypt_batch([1, 2])
    with pytest.raises(pl.KeyMismatchError):
        pl.EncryptedArray.from_bytes(e.to_bytes(), pk2)
    with pytest.raises(pl.KeyMismatchError):
        pl.EncryptedArray.from_json(e.to_json(), pk2)
    with pytest.raises(ValueError):
        pl.EncryptedArray.from_json(e.to_json(), pk2)
    with pytest.raises(TypeError):
        pl.EncryptedArray.from_bytes(e.to_bytes(), pk.n)


def test_from_bytes_rejects_malformed(k256):
    pk, _ = k256
    e = pk.encrypt_batch([[1, 2], [3, 4]])
    data = e.to_bytes()
    hlen = int.from_bytes(data[8:12], "little")
    header = json.loads(data[12 : 12 + hlen])

    def rebuild(hdr, body=None):
        h = json.dumps(hdr).encode()
        return (
            data[:8]
            + len(h).to_bytes(4, "little")
            + h
            + (data[12 + hlen :] if body is None else body)
        )

    bad = {
        "empty": b"",
        "magic": b"XXXXXXXX" + data[8:],
        "short": data[:10],
        "truncated": data[:-1],
        "extra": data + b"\0",
        "hlen": data[:8] + (hlen + 5).to_bytes(4, "little") + data[12:],
        "not-json": data[:8] + (3).to_bytes(4, "little") + b"{{{" + data[12 + hlen :],
        "no-n": rebuild({k: v for k, v in header.items() if k != "n"}),
        "n-not-hex": rebuild({**header, "n": "zz"}),
        "n-int": rebuild({**header, "n": 5}),
        "n-even": rebuild({**header, "n": format(pk.n + 1, "x")}),
        "shape": rebuild({**header, "shape": [4, 2, 1, 3]}),
        "neg-shape": rebuild({**header, "shape": [-2, -2]}),
        "limbs": rebuild({**header, "limbs": header["limbs"] + 1}),
        "header-list": rebuild([1, 2, 3]),
        "big-ct": rebuild(
            header, data[12 + hlen : 12 + hlen + 32] + b"\xff" * (len(data) - 12 - hlen - 32)
        ),
    }
    for name, blob in bad.items():
        _raises(ValueError, lambda b=blob: pl.EncryptedArray.from_bytes(b), name)
        _raises(ValueError, lambda b=blob: pl.EncryptedArray.from_bytes(b, pk), name)


def test_from_json_rejects_malformed(k256):
    pk, _ = k256
    e = pk.encrypt_batch([1, 2])
    obj = json.loads(e.to_json())
    cts = obj["ciphertexts"]
    bad = {
        "garbage": "not json",
        "empty": "",
        "list": "[1, 2]",
        "no-key": json.dumps({k: v for k, v in obj.items() if k not in ("public_key", "n")}),
        "n-differs": json.dumps({**obj, "n": str(pk.n + 2)}),
        "no-shape": json.dumps({k: v for k, v in obj.items() if k != "shape"}),
        "no-cts": json.dumps({k: v for k, v in obj.items() if k != "ciphertexts"}),
        "count": json.dumps({**obj, "ciphertexts": cts[:1]}),
        "exp-count": json.dumps({**obj, "exponents": [0]}),
        "shape": json.dumps({**obj, "shape": [3]}),
        "neg-shape": json.dumps({**obj, "shape": [-2]}),
        "big-ct": json.dumps({**obj, "ciphertexts": [cts[0], str(pk.nsquare)]}),
        "neg-ct": json.dumps({**obj, "ciphertexts": [cts[0], "-1"]}),
        "text-ct": json.dumps({**obj, "ciphertexts": [cts[0], "abc"]}),
        "null-ct": json.dumps({**obj, "ciphertexts": [cts[0], None]}),
        "n-bad": json.dumps({**obj, "public_key": {"n": "abc"}}),
        "n-even": json.dumps({**obj, "public_key": {"n": str(pk.n + 1)}}),
        "exp-text": json.dumps({**obj, "exponents": ["a", 0]}),
    }
    for name, text in bad.items():
        _raises(ValueError, lambda t=text: pl.EncryptedArray.from_json(t), name)
        _raises(ValueError, lambda t=text: pl.EncryptedArray.from_json(t, pk), name)


def test_nbytes_is_the_serialised_length(k256):
    pk, _ = k256
    for values in ([1, 2, 3], np.zeros((2, 0)), 7.5, np.arange(12.0).reshape(3, 4)):
        e = pk.encrypt_batch(values)
        assert e.nbytes == len(e.to_bytes())


# --- python-paillier interoperability ----------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_phe_decrypts_batch_ciphertexts(k512, phe_pair, mode):
    phe, ppk, psk = phe_pair
    pk, sk = k512
    x = np.array([0, -3, 2**40, 1.5, -0.001, 1e-30, 7.0], dtype=object)
    e = _encrypt(pk, sk, np.array(x.tolist(), dtype=np.float64), mode)
    for c, ex, v in zip(e.ciphertexts().tolist(), e.exponents.tolist(), x.tolist(), strict=True):
        assert psk.decrypt(phe.paillier.EncryptedNumber(ppk, c, ex)) == v, (mode, v)
    r = e * 3 + 1
    for c, ex, v in zip(r.ciphertexts().tolist(), r.exponents.tolist(), x.tolist(), strict=True):
        assert psk.decrypt(phe.paillier.EncryptedNumber(ppk, c, ex)) == float(
            Fraction(v) * 3 + 1
        ), (mode, v)


def test_phe_ciphertexts_into_batch(k512, phe_pair):
    phe, ppk, psk = phe_pair
    pk, sk = k512
    gen = _gen(FRESH)
    vals = [float(v) for v in _floats(gen, 6)] + [3, -(2**50)]
    others = [float(v) for v in _floats(gen, 8)]
    ta = [ppk.encrypt(v) for v in vals]
    tb = [ppk.encrypt(v) for v in others]
    ea = pl.EncryptedArray.from_ciphertexts(
        pk, [t.ciphertext() for t in ta], [t.exponent for t in ta]
    )
    eb = pl.EncryptedArray.from_ciphertexts(
        pk, [t.ciphertext() for t in tb], [t.exponent for t in tb]
    )
    got = sk.decrypt_batch(ea)
    assert got.tolist() == [float(psk.decrypt(t)) for t in ta]
    k, kf = -7, 0.375
    x = np.array(others)
    cases = {
        "E+E": (ea + eb, [u + v for u, v in zip(ta, tb, strict=True)]),
        "E-E": (ea - eb, [u - v for u, v in zip(ta, tb, strict=True)]),
        "E*k": (ea * k, [u * k for u in ta]),
        "E*kf": (ea * kf, [u * kf for u in ta]),
        "E+x": (ea + x, [u + float(v) for u, v in zip(ta, x, strict=True)]),
        "x-E": (x - ea, [float(v) - u for u, v in zip(ta, x, strict=True)]),
        "E/4": (ea / 4, [u / 4 for u in ta]),
    }
    for name, (batch, theirs) in cases.items():
        msg = f"{name} seed={FRESH}"
        assert batch.exponents.tolist() == [t.exponent for t in theirs], msg
        assert _cts(batch) == [t.ciphertext(False) for t in theirs], msg
        assert sk.decrypt_batch(batch).tolist() == [float(psk.decrypt(t)) for t in theirs], msg
    total = reduce(operator.add, ta)
    s = ea.sum()
    assert (s.exponent, s.ciphertext(False)) == (total.exponent, total.ciphertext(False))
    # and back: our EncryptedArray ciphertexts into phe
    back = [
        phe.paillier.EncryptedNumber(ppk, c, ex)
        for c, ex in zip(ea.ciphertexts().tolist(), ea.exponents.tolist(), strict=True)
    ]
    assert [psk.decrypt(t) for t in back] == [psk.decrypt(t) for t in ta]


def test_phe_encoded_number_with_batch(k512, phe_pair):
    phe, ppk, _ = phe_pair
    pk, sk = k512
    e = pk.encrypt_batch([1.5, 2, -3.25])
    enc = phe.paillier.EncodedNumber.encode(ppk, 0.25)
    _check(sk, e + enc, _fr([1.75, 2.25, -3.0]), "phe encoded +")
    _check(sk, e * enc, _fr([0.375, 0.5, -0.8125]), "phe encoded *")
    _check(sk, e - enc, _fr([1.25, 1.75, -3.5]), "phe encoded -")


# --- edge cases ------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(0,), (0, 3), (2, 0)])
def test_empty_encrypt_batch_round_trip(k256, shape):
    pk, sk = k256
    e = pk.encrypt_batch(np.zeros(shape, np.int64))
    assert e.shape == shape and e.size == 0
    got = sk.decrypt_batch(e)
    assert got.shape == shape and got.dtype == np.int64


def test_ops_on_empty_arrays(k256):
    pk, sk = k256
    empty = pk.encrypt_batch(np.arange(6).reshape(2, 3))[:, :0]
    assert (empty + 1).shape == (2, 0)
    assert (empty * 2).shape == (2, 0)
    assert (empty - empty).shape == (2, 0)
    out = empty @ np.zeros((0, 4), np.int64)
    assert out.shape == (2, 4)
    assert sk.decrypt_batch(out).tolist() == [[0] * 4] * 2


def test_reshape_empty_array(k256):
    pk, sk = k256
    empty = pk.encrypt_batch(np.arange(6).reshape(2, 3))[:, :0]
    assert empty.ravel().shape == (0,)
    assert empty.reshape(0, 5).shape == (0, 5)
    _check(sk, empty.ravel(), np.zeros(0, dtype=object), "ravel of empty")
    _check(sk, empty.reshape(0, 5), np.zeros((0, 5), dtype=object), "reshape of empty")


def test_zero_d_encrypt_batch(k256):
    pk, sk = k256
    e = pk.encrypt_batch(np.float64(2.5))
    assert e.shape == () and e.ndim == 0 and e.size == 1
    got = sk.decrypt_batch(e)
    assert got.shape == () and got == 2.5


def test_zero_d_transpose_and_sum(k256):
    pk, sk = k256
    e = pk.encrypt_batch(np.int64(7))
    assert sk.decrypt(e.sum()) == 7
    assert sk.decrypt_batch(e.T).tolist() == 7


def test_sum_all_axes_explicitly_is_zero_d(k256):
    pk, sk = k256
    x = np.arange(6).reshape(2, 3) - 1
    e = pk.encrypt_batch(x)
    assert e.sum(axis=(0, 1)).shape == ()
    assert e[0].sum(axis=0).shape == ()
    # the values: decrypted, the sums of the plaintexts
    _check(sk, e.sum(axis=(0, 1)), np.array(_fr(x.sum()), dtype=object), "sum over (0, 1)")
    _check(sk, e[0].sum(axis=0), np.array(_fr(x[0].sum()), dtype=object), "row sum")


def test_encrypted_number_minus_array(k256):
    pk, sk = k256
    got = pk.encrypt(5) - pk.encrypt_batch([1, 2])
    assert sk.decrypt_batch(got).tolist() == [4, 3]


def test_from_json_huge_exponent_is_value_error(k256):
    pk, _ = k256
    obj = json.loads(pk.encrypt_batch([1]).to_json())
    text = json.dumps({**obj, "exponents": [2**70]})
    with pytest.raises(ValueError):
        pl.EncryptedArray.from_json(text)


def test_djn_batch_on_key_without_hs(k512, k256):
    """Three ways to reach it, run side by side (each a few ms of work when it works)."""
    pk512, sk512 = k512
    pk256, sk256 = k256
    data = pk512.encrypt_batch([1, 2, 3]).to_bytes()

    def bare_512():  # default obfuscation for 512 bits: djn
        return sk512.decrypt_batch(pl.PaillierPublicKey(pk512.n).encrypt_batch([1, 2, 3]))

    def small_djn():
        pk = pl.PaillierPublicKey(pk256.n, obfuscation="djn")
        return sk256.decrypt_batch(pk.encrypt_batch([1, 2, 3]))

    def from_bytes_obfuscate():  # from_bytes without a key builds one from n alone
        e = pl.EncryptedArray.from_bytes(data)
        e.obfuscate()
        return sk512.decrypt_batch(e)

    cases = {f.__name__: f for f in (bare_512, small_djn, from_bytes_obfuscate)}
    boxes = {name: {} for name in cases}
    threads = []
    for name, fn in cases.items():

        def target(fn=fn, box=boxes[name]):
            box["value"] = fn().tolist()

        t = threading.Thread(target=target, daemon=True, name=name)
        t.start()
        threads.append(t)
    deadline = time.monotonic() + 3.0
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    stuck = [t.name for t in threads if t.is_alive()]
    assert not stuck, f"deadlocked (no result after 3 s): {stuck}"
    assert all(box.get("value") == [1, 2, 3] for box in boxes.values()), boxes


@pytest.mark.parametrize("private", [False, True], ids=["public", "crt"])
def test_classic_batch_round_trip_small_key(toy, private):
    pk, sk = toy
    x = np.zeros(5000, np.int64)  # P(all 5000 r coprime to 293 * 433) < 1e-12
    e = (
        sk.encrypt_batch(x, obfuscation="classic")
        if private
        else pk.encrypt_batch(x, obfuscation="classic")
    )
    np.testing.assert_array_equal(sk.decrypt_batch(e), x)


def test_python_int_list_beyond_int64_is_exact(k256):
    pk, sk = k256
    vals = [2**63 + 1, 1]
    got = sk.decrypt_batch(pk.encrypt_batch(vals))
    assert got.tolist() == vals and all(type(v) is int for v in got.tolist())
    e = pk.encrypt_batch([0, 0])
    assert sk.decrypt_batch(e + vals).tolist() == vals


def test_empty_decrypt_dtype(k256):
    pk, sk = k256
    empty = pk.encrypt_batch(np.arange(4))[:0]
    assert sk.decrypt_batch(empty).dtype == np.int64


@pytest.mark.parametrize("which", ["negative", "huge"])
def test_decrypt_batch_out_of_range_numbers(k256, which):
    pk, sk = k256
    c = -5 if which == "negative" else 2 ** (64 * ((pk.nsquare.bit_length() + 63) // 64))
    with pytest.raises(ValueError):
        sk.decrypt(pl.EncryptedNumber(pk, c))
    with pytest.raises(ValueError):
        sk.decrypt_batch([pl.EncryptedNumber(pk, c)])


# --- pickle states are checked as from_bytes checks its input -------------------------------


class _CraftedPickle:
    """Pickles as an EncryptedArray with the given state (what a hostile sender can send)."""

    def __init__(self, state):
        self.state = state

    def __reduce__(self):
        import copyreg

        # object.__new__(EncryptedArray), then __setstate__(state): what loads calls
        return (copyreg._reconstructor, (pl.EncryptedArray, object, None), self.state)


def _crafted_states(pk, other_pk):
    e = pk.encrypt_batch([[1, -2, 3], [4, 5, -6]])
    good = e.__getstate__()
    c, exp = good["c"], good["exp"]
    width = c.shape[-1]
    big = c.copy()
    big[1, 2] = np.uint64(2**64 - 1)  # every limb set: >= n**2
    fortran = np.asfortranarray(c.reshape(-1, width)).reshape(2, 3, width, order="F")
    return [
        ("one limb per ciphertext", {**good, "c": c[..., :1].copy()}, ValueError, "limbs"),
        (
            "a limb too many",
            {**good, "c": np.concatenate([c, c[..., :1]], -1)},
            ValueError,
            "limbs",
        ),
        ("no limb axis", {**good, "c": np.uint64(1), "exp": np.int64(0)}, TypeError, "dtype"),
        ("0-d limbs", {**good, "c": np.array(1, np.uint64), "exp": exp[0, 0]}, TypeError, "exp"),
        ("int64 limbs", {**good, "c": c.astype(np.int64)}, TypeError, "c must"),
        ("byte-swapped limbs", {**good, "c": c.astype(">u8")}, TypeError, "c must"),
        ("limbs as a list", {**good, "c": c.tolist()}, TypeError, "c must"),
        ("strided limbs", {**good, "c": np.repeat(c, 2, -1)[..., ::2]}, ValueError, "contiguous"),
        ("Fortran-order limbs", {**good, "c": fortran}, ValueError, "contiguous"),
        ("shapes differ", {**good, "exp": exp[:1]}, ValueError, "shape"),
        ("float exponents", {**good, "exp": exp.astype(np.float64)}, TypeError, "exp must"),
        ("int32 exponents", {**good, "exp": exp.astype(np.int32)}, TypeError, "exp must"),
        ("huge exponent", {**good, "exp": exp + 2**40}, ValueError, "exponents"),
        ("ciphertext >= n**2", {**good, "c": big}, ValueError, r"n\*\*2"),
        ("no key", {**good, "public_key": pk.n}, TypeError, "public_key"),
        ("limbs of another key", {**good, "public_key": other_pk}, ValueError, "limbs"),
        ("missing field", {k: v for k, v in good.items() if k != "exp"}, ValueError, "missing"),
        ("obfuscated not a bool", {**good, "obfuscated": "yes"}, TypeError, "obfuscated"),
        ("not a dict", [good["public_key"], c, exp, True], TypeError, "dict"),
    ]


# numpy pickles these arrays as native-endian and C-contiguous: only a direct
# __setstate__ call (or a hand-written pickle stream) can hand them over
_NORMALISED_BY_PICKLE = ("byte-swapped limbs", "strided limbs")


def test_setstate_refuses_crafted_states(k256, k512):
    """A pickle is untrusted input: a state the kernels cannot trust (a row narrower than
    n**2 would be written past its end by the next ``+``) is refused before anything is
    assigned, with an error naming what is wrong."""
    pk, sk = k256
    for case, state, exc, match in _crafted_states(pk, k512[0]):
        if case not in _NORMALISED_BY_PICKLE:
            with pytest.raises(exc, match=match):
                pickle.loads(pickle.dumps(_CraftedPickle(state)))
        obj = object.__new__(pl.EncryptedArray)
        with pytest.raises(exc, match=match):
            obj.__setstate__(state)
        for slot in ("_c", "_exp", "public_key"):  # nothing was assigned
            assert not hasattr(obj, slot), case
    # the honest state still loads and computes
    e = pk.encrypt_batch([[1, -2, 3], [4, 5, -6]])
    back = pickle.loads(pickle.dumps(_CraftedPickle(e.__getstate__())))
    assert sk.decrypt_batch(back + back).tolist() == [[2, -4, 6], [8, 10, -12]]


# --- exponent alignment is bounded (MAX_EXPONENT_SPREAD) ------------------------------------


def _far_apart(pk, low=-(2**22)):
    """An array from bytes (a sender's data) with one exponent far below the others."""
    e = pk.encrypt_batch([1, 2, 3, 4])
    obj = pl.EncryptedArray.from_bytes(e.to_bytes(), pk)
    state = obj.__getstate__()
    exp = state["exp"].copy()
    exp[2] = low
    return pl.EncryptedArray.from_bytes(
        pl.EncryptedArray.from_ciphertexts(pk, _cts(obj), exp).to_bytes(be_secure=False), pk
    )


def test_alignment_spread_refused_before_any_power(k512):
    """One element at exponent -2**22 would make sum / + / @ raise every other element to
    16**(2**22) (tens of seconds each on real keys): refused at once, naming the
    operation and the bound."""
    from ppml_fast.paillier.encoding import MAX_EXPONENT_SPREAD

    pk, _ = k512
    bad = _far_apart(pk)
    calls = {
        "sum": lambda: bad.sum(),
        "add": lambda: bad + pk.encrypt_batch([1, 1, 1, 1]),
        "add (reflected)": lambda: pk.encrypt_batch([1, 1, 1, 1]) + bad,
        "add encoded": lambda: bad + pl.EncodedNumber.encode(pk, 7),
        "matmul": lambda: bad @ np.ones(4, np.int64),
        "dot": lambda: bad.dot(np.ones((4, 2))),
        "decrease_exponent_to": lambda: bad.decrease_exponent_to(-(2**22)),
        "number decrease_exponent_to": lambda: bad[0].decrease_exponent_to(-(2**22)),
        "number add": lambda: bad[0] + bad[2],
        "number add (reflected)": lambda: bad[2] + bad[0],
        "number add encoded": lambda: bad[2] + pl.EncodedNumber.encode(pk, 3),
    }
    for name, call in calls.items():
        t0 = time.perf_counter()
        with pytest.raises(ValueError, match="MAX_EXPONENT_SPREAD = 4096") as info:
            call()
        assert time.perf_counter() - t0 < 1.0, name
        op = name.split(" (")[0].replace("number ", "").replace(" scalar", "")
        op = {"add encoded": "add", "dot": "matmul"}.get(op, op)
        assert str(info.value).startswith(op + ":"), (name, str(info.value))
    assert MAX_EXPONENT_SPREAD == 4096


def test_alignment_at_the_spread_bound_is_exact(k256):
    """A spread of exactly MAX_EXPONENT_SPREAD is aligned (c**(16**spread)); one more is
    refused. Checked against the plain-int oracle on the ciphertexts."""
    from ppml_fast.paillier.encoding import MAX_EXPONENT_SPREAD as S

    pk, _ = k256
    n2 = pk.nsquare
    e = pk.encrypt_batch([5, 6])
    c0, c1 = _cts(e)
    arr = pl.EncryptedArray.from_ciphertexts(pk, [c0, c1], [S, 0])
    got = arr.sum()
    assert got.exponent == 0 and got.ciphertext(False) == pow(c0, 16**S, n2) * c1 % n2
    # EncryptedNumber lowers by multiplying with the plaintext BASE**spread, as
    # python-paillier does, so on this small key it overflows first (by name, quickly)
    with pytest.raises(pl.EncodingOverflowError, match="int of 16385 bits"):
        pl.EncryptedNumber(pk, c0, S) + pl.EncryptedNumber(pk, c1, 0)
    low = arr.decrease_exponent_to(0)
    assert low.exponents.tolist() == [0, 0] and _cts(low) == [pow(c0, 16**S, n2), c1]
    with pytest.raises(ValueError, match="decrease_exponent_to"):
        arr.decrease_exponent_to(-1)
    over = pl.EncryptedArray.from_ciphertexts(pk, [c0, c1], [S + 1, 0])
    with pytest.raises(ValueError, match="sum"):
        over.sum()
    with pytest.raises(ValueError, match="add"):
        pl.EncryptedNumber(pk, c0, S + 1) + pl.EncryptedNumber(pk, c1, 0)
    # lowering in steps stays possible
    step = over.decrease_exponent_to([1, 0]).decrease_exponent_to(0)
    assert _cts(step) == [pow(c0, 16 ** (S + 1), n2), c1]


def test_plain_add_to_far_exponent_is_refused_quickly(k256):
    """``enc + x`` encodes x at each element's exponent: an element at exponent near
    -2**31 must not make the encoder build 16**(2**31) (a gigabyte) before it refuses."""
    pk, sk = k256
    e = pk.encrypt_batch([1, 2])
    far = pl.EncryptedArray.from_ciphertexts(pk, _cts(e), [0, -(2**31) + 1])
    for x in (0.5, 3, [2**70, 1], np.array([0.25, 1e300])):
        t0 = time.perf_counter()
        with pytest.raises(pl.EncodingOverflowError, match="flat index 1"):
            far + x
        assert time.perf_counter() - t0 < 1.0, x
    # zero needs no power of 16 at all: adding it keeps the exponents and the values
    z = far + np.array([0, 0], dtype=object)
    assert z.exponents.tolist() == [0, -(2**31) + 1]
    assert sk.decrypt_batch(z[:1]).tolist() == [1]
