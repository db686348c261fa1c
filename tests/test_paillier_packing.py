"""Packed Paillier encryption (``ppml_fast.paillier.packing``): encrypt_packed, sum_packed,
decrypt_packed and EncryptedPackedArray.

The oracle is the fixed-point sum in numpy integers: each client's values clipped to
``[-clip, clip]``, quantised with ``np.rint(v * 2**frac_bits)`` and summed as int64; a
decrypted packed sum must equal it exactly. Keys are 256 bits (258 where a layout must
fill the plaintext exactly) plus one 1024-bit case. Random cases run on a fixed seed and
one fresh seed per run (FRESH, printed in assertion messages; rerun with
``PPML_TEST_SEED=<seed>``).
"""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from ppml_fast import paillier as pl
from ppml_fast.paillier import packing

FRESH = int(os.environ.get("PPML_TEST_SEED") or np.random.SeedSequence().entropy % 2**63)
SEEDS = [20261207, FRESH]


@pytest.fixture(scope="module")
def keys():
    return pl.generate_paillier_keypair(n_length=256)


@pytest.fixture(scope="module")
def other_keys():
    return pl.generate_paillier_keypair(n_length=256)


def fixed_point(values: np.ndarray, clip: float | None, frac_bits: int) -> np.ndarray:
    """The oracle's quantisation: clip, scale by 2**frac_bits, round to nearest even."""
    v = np.asarray(values, np.float64)
    if clip is not None:
        v = np.clip(v, -clip, clip)
    return np.rint(v * 2.0**frac_bits).astype(np.int64)


# -- the aggregate ------------------------------------------------------------------------
@pytest.mark.parametrize("seed", SEEDS)
def test_sum_of_100_clients_is_the_exact_fixed_point_sum(keys, seed):
    pk, sk = keys
    rng = np.random.default_rng(seed)
    clients, size, clip = 100, 37, 1.0
    updates = rng.normal(0.0, 0.6, (clients, size))  # some beyond the clip
    updates[0, :3] = [clip, -clip, 0.0]
    enc = [pl.encrypt_packed(pk, u, bits=16, clients=clients, clip=clip) for u in updates]
    f = enc[0].frac_bits
    assert f == 14  # rint(1.0 * 2**14) = 16384 <= 2**15 - 1 < 2**15
    total = pl.sum_packed(enc)
    assert total.count == clients
    want = fixed_point(updates, clip, f).sum(axis=0)
    got_int = pl.decrypt_packed(sk, total, integers=True)
    assert got_int.dtype == np.int64
    np.testing.assert_array_equal(got_int, want, err_msg=f"seed={seed}")
    got = pl.decrypt_packed(sk, total)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, want * 2.0**-f)
    # within clients x half a quantisation step of the float sum of the clipped updates
    exact = np.clip(updates, -clip, clip).sum(axis=0)
    bound = clients * 2.0**-f / 2
    assert np.abs(got - exact).max() <= bound * (1 + 1e-9), f"seed={seed}"
    # built-in sum() and a chain of + agree
    np.testing.assert_array_equal(pl.decrypt_packed(sk, sum(enc), integers=True), want)
    chain = enc[0]
    for e in enc[1:]:
        chain = chain + e
    np.testing.assert_array_equal(pl.decrypt_packed(sk, chain, integers=True), want)


def test_1024_bit_key_roundtrip_and_sum():
    pk, sk = pl.generate_paillier_keypair(n_length=1024)
    rng = np.random.default_rng(7)
    x = rng.uniform(-3, 3, (5, 60)).astype(np.float32)
    enc = [pl.encrypt_packed(pk, row, bits=20, clients=5, clip=2.5) for row in x]
    assert enc[0].slots == (1024 - 2) // (20 + 3)
    assert enc[0].n_ciphertexts == -(-60 // enc[0].slots)
    want = fixed_point(x.astype(np.float64), 2.5, enc[0].frac_bits).sum(axis=0)
    got = pl.decrypt_packed(sk, pl.sum_packed(enc), integers=True)
    np.testing.assert_array_equal(got, want)


def test_float32_and_float64_inputs_and_shape(keys):
    pk, sk = keys
    x = np.array([[0.5, -0.25], [0.125, -1.0], [1.0, 0.0]])
    for dtype in (np.float32, np.float64):
        enc = pl.encrypt_packed(pk, x.astype(dtype), bits=12, clients=3, frac_bits=8)
        assert enc.shape == (3, 2) and enc.size == 6 and len(enc) == 3
        got = pl.decrypt_packed(sk, enc)
        assert got.shape == (3, 2)
        np.testing.assert_array_equal(got, x)  # all exact at frac_bits=8


def test_empty_array(keys):
    pk, sk = keys
    enc = pl.encrypt_packed(pk, np.zeros((0, 4)), bits=8, clients=2, clip=1.0)
    assert enc.shape == (0, 4) and enc.n_ciphertexts == 0
    out = pl.decrypt_packed(sk, enc + enc)
    assert out.shape == (0, 4)


# -- quantisation edges -------------------------------------------------------------------
def test_edges_clip_zero_and_beyond_clip_are_clipped(keys):
    pk, sk = keys
    clip = 0.75
    x = np.array([clip, -clip, 0.0, 5.0, -5.0, 1e300, -1e300, np.nextafter(clip, 1)])
    enc = pl.encrypt_packed(pk, x, bits=10, clients=4, clip=clip)
    f = enc.frac_bits
    assert round(clip * 2**f) <= 2**9 - 1 < round(clip * 2 ** (f + 1))
    got = pl.decrypt_packed(sk, enc)
    np.testing.assert_array_equal(got, [clip, -clip, 0, clip, -clip, clip, -clip, clip])
    # four clients at +clip and four at -clip: the extreme sums stay exact
    top = pl.sum_packed([enc] * 4)
    np.testing.assert_array_equal(pl.decrypt_packed(sk, top)[:2], [4 * clip, -4 * clip])


def test_without_clip_values_beyond_the_range_are_refused(keys):
    pk, sk = keys
    # bits=8, frac_bits=4: |rint(v * 16)| <= 127; 7.96 * 16 = 127.36 rounds to 127, and
    # 7.97 * 16 = 127.52 to 128
    ok = pl.encrypt_packed(pk, [7.9375, -7.9375, 7.96], bits=8, clients=2, frac_bits=4)
    np.testing.assert_array_equal(pl.decrypt_packed(sk, ok), [7.9375, -7.9375, 7.9375])
    with pytest.raises(ValueError, match=r"values\[1\].*clip"):
        pl.encrypt_packed(pk, [0.0, 7.97], bits=8, clients=2, frac_bits=4)
    with pytest.raises(ValueError, match="values"):
        pl.encrypt_packed(pk, [-1e308], bits=8, clients=2, frac_bits=4)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_are_refused(keys, bad):
    pk, _ = keys
    with pytest.raises(ValueError, match=r"values.*finite"):
        pl.encrypt_packed(pk, [0.0, bad], bits=8, clients=2, clip=1.0)


def test_slot_exactly_full_and_plaintext_exactly_full():
    # |n| = 258: 256 = 16 slots x 16 bits (12-bit values + 4 bits of headroom for 16
    # clients) fill the plaintext to its last bit; 16 clients at +clip fill each slot to
    # 16 * (2**12 - 1) = 2**16 - 16, the highest sum a slot can hold.
    pk, sk = pl.generate_paillier_keypair(n_length=258)
    clip = 1.0
    x = np.full(32, clip)
    x[1::2] = -clip
    enc = pl.encrypt_packed(pk, x, bits=12, clients=16, clip=clip)
    assert (enc.slot_bits, enc.slots, enc.n_ciphertexts) == (16, 16, 2)
    assert enc.slots * enc.slot_bits == pk.n.bit_length() - 2
    assert enc.frac_bits == 10  # rint(2**10) = 1024 <= 2047 < 2048 = rint(2**11)
    full = pl.sum_packed([enc] * 16)
    got = pl.decrypt_packed(sk, full, integers=True)
    np.testing.assert_array_equal(got, np.where(x > 0, 16 * 1024, -16 * 1024))
    # the same with the largest quantised value itself: frac_bits=11 would round 1.0 to
    # 2048 > 2**11 - 1, so put 2047 / 2**11 in every slot
    qmax = (2**11 - 1) / 2**11
    enc2 = pl.encrypt_packed(pk, np.full(16, qmax), bits=12, clients=16, frac_bits=11)
    s16 = pl.sum_packed([enc2] * 16)
    np.testing.assert_array_equal(pl.decrypt_packed(sk, s16, integers=True), 16 * 2047)
    s16x = enc2 * 16
    np.testing.assert_array_equal(pl.decrypt_packed(sk, s16x, integers=True), 16 * 2047)


# -- the contribution budget ----------------------------------------------------------------
def test_the_clients_plus_first_addition_is_refused(keys):
    pk, sk = keys
    enc = [pl.encrypt_packed(pk, [0.5, -0.5], bits=8, clients=5, clip=1.0) for _ in range(6)]
    total = enc[0]
    for e in enc[1:5]:
        total = total + e
    assert total.count == 5
    with pytest.raises(ValueError, match=r"6 contributions.*clients=5"):
        total + enc[5]
    with pytest.raises(ValueError, match=r"6 contributions.*clients=5"):
        pl.sum_packed(enc)
    with pytest.raises(ValueError, match=r"6 contributions.*clients=5"):
        sum(enc)
    with pytest.raises(ValueError, match=r"6 contributions.*clients=5"):
        enc[0] * 6
    with pytest.raises(ValueError, match=r"10 contributions.*clients=5"):
        (enc[0] + enc[1]) * 5
    # what was refused left its operands as they were
    np.testing.assert_array_equal(pl.decrypt_packed(sk, total), [2.5, -2.5])


def test_scalar_multiplication(keys):
    pk, sk = keys
    enc = pl.encrypt_packed(pk, [0.25, -0.75, 0.0], bits=8, clients=8, frac_bits=4)
    for k in (1, 3, np.int64(8)):
        out = enc * k
        assert out.count == int(k)
        np.testing.assert_array_equal(pl.decrypt_packed(sk, out), np.array([0.25, -0.75, 0]) * k)
    np.testing.assert_array_equal(pl.decrypt_packed(sk, 2 * (enc + enc)), [1.0, -3.0, 0.0])
    for bad in (0, -1):
        with pytest.raises(ValueError, match="multiplier"):
            enc * bad
    for bad in (2.0, True, np.float64(2), np.array([2])):
        with pytest.raises(TypeError):
            enc * bad
    with pytest.raises(TypeError):
        enc * enc


def test_adding_other_types(keys):
    pk, _ = keys
    enc = pl.encrypt_packed(pk, [0.5], bits=8, clients=2, clip=1.0)
    assert 0 + enc is enc  # the start of built-in sum()
    with pytest.raises(TypeError):
        enc + 1
    with pytest.raises(TypeError):
        enc + 0.5
    with pytest.raises(TypeError):
        enc + pk.encrypt_batch([1])


# -- mismatches -----------------------------------------------------------------------------
def test_mismatched_layouts_keys_and_shapes_are_refused(keys, other_keys):
    pk, _ = keys
    x = [0.5, -0.5, 0.25]
    base = pl.encrypt_packed(pk, x, bits=8, clients=4, clip=1.0)
    cases = {
        "bits": pl.encrypt_packed(pk, x, bits=9, clients=4, clip=1.0, frac_bits=6),
        "clients": pl.encrypt_packed(pk, x, bits=8, clients=3, clip=1.0),
        "frac_bits": pl.encrypt_packed(pk, x, bits=8, clients=4, clip=1.0, frac_bits=5),
        "clip": pl.encrypt_packed(pk, x, bits=8, clients=4, clip=0.9, frac_bits=6),
    }
    assert base.frac_bits == 6
    for name, other in cases.items():
        with pytest.raises(ValueError, match=f"layout.*{name}"):
            base + other
        with pytest.raises(ValueError, match=f"arrays\\[1\\].*layout.*{name}"):
            pl.sum_packed([base, other])
    with pytest.raises(ValueError, match="shape"):
        base + pl.encrypt_packed(pk, x[:2], bits=8, clients=4, clip=1.0)
    foreign = pl.encrypt_packed(other_keys[0], x, bits=8, clients=4, clip=1.0)
    with pytest.raises(pl.KeyMismatchError):
        base + foreign
    with pytest.raises(pl.KeyMismatchError):
        pl.sum_packed([base, foreign])
    with pytest.raises(pl.KeyMismatchError):
        pl.decrypt_packed(other_keys[1], base)


def test_a_wrong_layout_at_decryption_is_detected(keys):
    # a plaintext with bits above the top slot is not a packed sum: refused, not misread
    pk, sk = keys
    enc = pl.encrypt_packed(pk, np.zeros(3), bits=8, clients=2, clip=1.0)
    arr = pk.encrypt_batch([1 << 253])  # 28 slots of 9 bits end at bit 252
    fake = packing.EncryptedPackedArray._wrap(pk, enc._layout, arr._c, (3,), 1, False)
    with pytest.raises(ValueError, match="top slot"):
        pl.decrypt_packed(sk, fake)
    neg = pk.encrypt_batch([-1])  # decrypts to n - 1
    fake = packing.EncryptedPackedArray._wrap(pk, enc._layout, neg._c, (3,), 1, False)
    with pytest.raises(ValueError, match="top slot"):
        pl.decrypt_packed(sk, fake)
    big = pk.encrypt_batch([300])  # slot 0 (9 bits) holds 300 > count * (2**8 - 1) = 255
    fake = packing.EncryptedPackedArray._wrap(pk, enc._layout, big._c, (3,), 1, False)
    with pytest.raises(ValueError, match="count"):
        pl.decrypt_packed(sk, fake)


# -- arguments ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "err", "match"),
    [
        ({"bits": 1, "clients": 2, "clip": 1.0}, ValueError, "bits must be >= 2"),
        ({"bits": 54, "clients": 2, "clip": 1.0}, ValueError, "bits must be <= 53"),
        ({"bits": 8.0, "clients": 2, "clip": 1.0}, TypeError, "bits"),
        ({"bits": True, "clients": 2, "clip": 1.0}, TypeError, "bits"),
        ({"bits": 8, "clients": 0, "clip": 1.0}, ValueError, "clients must be >= 1"),
        ({"bits": 8, "clients": "4", "clip": 1.0}, TypeError, "clients"),
        ({"bits": 50, "clients": 2**15, "clip": 1.0}, ValueError, r"<= 64.*clients"),
        ({"bits": 8, "clients": 2, "clip": 0.0}, ValueError, "clip must be > 0"),
        ({"bits": 8, "clients": 2, "clip": -1.0}, ValueError, "clip must be > 0"),
        ({"bits": 8, "clients": 2, "clip": np.nan}, ValueError, "clip must be finite"),
        ({"bits": 8, "clients": 2, "clip": "1"}, TypeError, "clip"),
        ({"bits": 8, "clients": 2}, ValueError, "clip, frac_bits or both"),
        ({"bits": 8, "clients": 2, "frac_bits": 1.5}, TypeError, "frac_bits"),
        ({"bits": 8, "clients": 2, "frac_bits": 1024}, ValueError, "frac_bits must be <= 1023"),
        ({"bits": 8, "clients": 2, "frac_bits": -1024}, ValueError, "frac_bits must be >= "),
        ({"bits": 8, "clients": 2, "clip": 1.0, "frac_bits": 7}, ValueError, r"clip \* 2\*\*"),
        ({"bits": 8, "clients": 2, "clip": 1e-9, "frac_bits": 3}, ValueError, "rounds to 0"),
        ({"bits": 8, "clients": 2, "clip": 1.0, "rounding": "up"}, ValueError, "rounding"),
        ({"bits": 8, "clients": 2, "clip": 1.0, "rng": "seed"}, TypeError, "rng"),
        ({"bits": 8, "clients": 2, "clip": 1e-320}, ValueError, "rounds to 0"),
        ({"bits": 8, "clients": 2, "clip": 1.0, "obfuscation": "x"}, ValueError, "obfuscation"),
    ],
)
def test_bad_arguments_are_named(keys, kwargs, err, match):
    pk, _ = keys
    with pytest.raises(err, match=match):
        pl.encrypt_packed(pk, [0.5], **kwargs)


def test_slot_wider_than_the_key_is_refused():
    pk, _ = pl.generate_paillier_keypair(n_length=32)  # 30 bits per plaintext
    with pytest.raises(ValueError, match="does not fit a 32-bit key"):
        pl.encrypt_packed(pk, [0.5], bits=28, clients=8, clip=1.0)
    assert pl.encrypt_packed(pk, [0.5], bits=27, clients=8, clip=1.0).slots == 1


def test_bad_values_and_keys(keys):
    pk, sk = keys
    for bad in (["a"], [1 + 2j], None):
        with pytest.raises(TypeError, match="values"):
            pl.encrypt_packed(pk, bad, bits=8, clients=2, clip=1.0)
    with pytest.raises(TypeError, match="public_key"):
        pl.encrypt_packed(sk, [0.5], bits=8, clients=2, clip=1.0)
    enc = pl.encrypt_packed(pk, [0.5], bits=8, clients=2, clip=1.0)
    with pytest.raises(TypeError, match="private_key"):
        pl.decrypt_packed(pk, enc)
    with pytest.raises(TypeError, match="packed"):
        pl.decrypt_packed(sk, pk.encrypt_batch([1]))
    with pytest.raises(TypeError, match="integers"):
        pl.decrypt_packed(sk, enc, integers="yes")
    with pytest.raises(TypeError, match="arrays"):
        pl.sum_packed(enc)
    with pytest.raises(TypeError, match=r"arrays\[1\]"):
        pl.sum_packed([enc, 3])
    with pytest.raises(ValueError, match="empty"):
        pl.sum_packed([])
    with pytest.raises(TypeError, match="arrays"):  # a 0-d array is not an iterable
        pl.sum_packed(np.array(0.0))
    with pytest.raises(TypeError, match="encrypt_packed"):
        pl.EncryptedPackedArray()


# -- stochastic rounding --------------------------------------------------------------------
@pytest.mark.parametrize("seed", SEEDS)
def test_stochastic_rounding_is_unbiased(keys, seed):
    pk, sk = keys
    frac = 0.3  # 0.3 quantum above a multiple of the step: rounds up with probability 0.3
    n = 4000
    x = np.full(n, (5 + frac) / 16)
    enc = pl.encrypt_packed(pk, x, bits=8, clients=1, frac_bits=4, rounding="stochastic", rng=seed)
    q = pl.decrypt_packed(sk, enc, integers=True)
    assert set(np.unique(q).tolist()) <= {5, 6}
    ups = int((q == 6).sum())
    # two-sided binomial z-test; |z| > 5.3 has probability ~1e-7 (under p_min 1e-6)
    z = (ups - n * frac) / np.sqrt(n * frac * (1 - frac))
    assert abs(z) < 5.3, f"seed={seed} ups={ups}"
    # the same seed gives the same rounding
    again = pl.encrypt_packed(
        pk, x, bits=8, clients=1, frac_bits=4, rounding="stochastic", rng=seed
    )
    np.testing.assert_array_equal(pl.decrypt_packed(sk, again, integers=True), q)


# -- properties and serialisation -------------------------------------------------------------
def test_layout_properties_and_expansion(keys):
    pk, _ = keys
    enc = pl.encrypt_packed(pk, np.zeros(25), bits=16, clients=100, clip=1.0)
    assert (enc.bits, enc.clients, enc.clip, enc.count) == (16, 100, 1.0, 1)
    assert enc.slot_bits == 16 + 7
    assert enc.slots == (256 - 2) // 23 == 11
    assert enc.n_ciphertexts == 3
    assert enc.expansion == 3 * 512 / 25
    empty = pl.encrypt_packed(pk, [], bits=16, clients=100, clip=1.0)
    assert empty.expansion == 512 / 11
    assert "count=1/100" in repr(enc)


def test_bytes_roundtrip_and_checks(keys, other_keys):
    pk, sk = keys
    a = pl.encrypt_packed(pk, [[0.5, -0.25], [1.0, 0.125]], bits=12, clients=4, clip=1.5)
    total = a + a
    data = total.to_bytes()
    assert total.nbytes == len(data)
    back = pl.EncryptedPackedArray.from_bytes(data, pk)
    assert (back.shape, back.count, back.clip, back.frac_bits) == ((2, 2), 2, 1.5, total.frac_bits)
    np.testing.assert_array_equal(pl.decrypt_packed(sk, back), [[1.0, -0.5], [2.0, 0.25]])
    back2 = pl.EncryptedPackedArray.from_bytes(data)  # a new key with the same n
    np.testing.assert_array_equal(pl.decrypt_packed(sk, back2), pl.decrypt_packed(sk, back))
    back + back  # count 4 = clients: allowed
    with pytest.raises(ValueError, match="clients"):
        back + back + a
    with pytest.raises(pl.KeyMismatchError):
        pl.EncryptedPackedArray.from_bytes(data, other_keys[0])
    with pytest.raises(ValueError, match="magic"):
        pl.EncryptedPackedArray.from_bytes(b"PPMLPAI1" + data[8:])
    with pytest.raises(ValueError, match="length"):
        pl.EncryptedPackedArray.from_bytes(data[:-1])
    with pytest.raises(TypeError, match="data"):
        pl.EncryptedPackedArray.from_bytes("text")
    hlen = int.from_bytes(data[8:12], "little")
    header = data[12 : 12 + hlen]
    for old, new in [(b'"count": 2', b'"count": 9'), (b'"bits": 12', b'"bits": 99')]:
        bad = header.replace(old, new)
        assert bad != header
        blob = data[:8] + len(bad).to_bytes(4, "little") + bad + data[12 + hlen :]
        with pytest.raises(ValueError):
            pl.EncryptedPackedArray.from_bytes(blob, pk)
    # a ciphertext >= n**2
    raw = bytearray(data)
    raw[-8:] = b"\xff" * 8
    with pytest.raises(ValueError, match="n\\*\\*2"):
        pl.EncryptedPackedArray.from_bytes(bytes(raw), pk)


def test_to_bytes_rerandomises_results_of_operations(keys):
    pk, sk = keys
    a = pl.encrypt_packed(pk, [0.5], bits=8, clients=2, clip=1.0)
    s = a + a
    before = s._c.copy()
    s.to_bytes(be_secure=False)
    np.testing.assert_array_equal(s._c, before)
    s.to_bytes()
    assert not np.array_equal(s._c, before)
    np.testing.assert_array_equal(pl.decrypt_packed(sk, s), [1.0])


def test_pickle_of_the_key_roundtrip_keeps_working(keys):
    pk, sk = keys
    pk2 = pickle.loads(pickle.dumps(pk))
    a = pl.encrypt_packed(pk, [0.5], bits=8, clients=2, clip=1.0)
    b = pl.encrypt_packed(pk2, [0.25], bits=8, clients=2, clip=1.0)
    np.testing.assert_array_equal(pl.decrypt_packed(sk, a + b), [0.75])


def test_public_names():
    for name in ("encrypt_packed", "decrypt_packed", "sum_packed", "EncryptedPackedArray"):
        assert name in pl.__all__
        assert getattr(pl, name) is getattr(packing, name)
