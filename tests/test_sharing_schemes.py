"""Additive and Shamir secret sharing (ppml_fast.sharing).

Round trips for every sharing, any ``threshold`` Shamir shares, the consistency check,
bad input, and (marked slow) the uniformity of shares: a chi-square test on the top bits
of shares of a constant secret. False-alarm rate of each statistical assertion: 1e-6
(the chi-square quantile used below), with fresh seeds each run.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from ppml_fast import sharing

pytestmark = pytest.mark.filterwarnings("ignore::ppml_fast.InsecureRandomnessWarning")

P61 = sharing.MERSENNE61
P62 = 4611686018427387847
FIELDS = [2, 3, 65537, P61, P62]


def _seed() -> int:
    return int(np.random.SeedSequence().entropy % 2**63)


@pytest.mark.parametrize("modulus", [None, *FIELDS])
@pytest.mark.parametrize("n", [1, 2, 3, 7])
def test_additive_round_trip(modulus, n):
    seed = _seed()
    gen = np.random.default_rng(seed)
    hi = 2**64 if modulus is None else modulus
    x = gen.integers(0, hi, size=(4, 5), dtype=np.uint64)
    shares = sharing.additive_share(x, n, modulus=modulus, rng=seed)
    assert shares.shape == (n, 4, 5) and shares.dtype == np.uint64
    if modulus is not None:
        assert int(shares.max()) < modulus
    np.testing.assert_array_equal(
        sharing.additive_reconstruct(shares, modulus=modulus), x, err_msg=f"seed={seed}"
    )
    # the sum of the shares, by Python ints
    m = 2**64 if modulus is None else modulus
    total = [sum(int(shares[k].flat[i]) for k in range(n)) % m for i in range(x.size)]
    assert total == [int(v) for v in x.flat]


def test_additive_ring_accepts_signed_and_scalars():
    x = np.array([-1, 0, 5], dtype=np.int64)
    s = sharing.additive_share(x, 3, rng=1)
    np.testing.assert_array_equal(sharing.additive_reconstruct(s), x.astype(np.uint64))
    s0 = sharing.additive_share(7, 2, modulus=11, rng=2)
    assert s0.shape == (2,) and int(sharing.additive_reconstruct(s0, modulus=11)) == 7


def test_additive_shares_differ_between_calls_by_default():
    x = np.zeros(16, dtype=np.uint64)
    a = sharing.additive_share(x, 2)
    b = sharing.additive_share(x, 2)
    assert not np.array_equal(a, b)  # secure stream: fresh randomness each call


def test_additive_seeded_is_reproducible():
    x = np.arange(10, dtype=np.uint64)
    np.testing.assert_array_equal(
        sharing.additive_share(x, 3, rng=5), sharing.additive_share(x, 3, rng=5)
    )


@pytest.mark.parametrize("p", [P61, P62, 65537])
@pytest.mark.parametrize(("n", "t"), [(1, 1), (3, 1), (3, 2), (5, 3), (6, 6)])
def test_shamir_any_threshold_subset(p, n, t):
    seed = _seed()
    x = np.random.default_rng(seed).integers(0, p, size=(3, 2), dtype=np.uint64)
    shares = sharing.shamir_share(x, n, t, p=p, rng=seed)
    assert shares.shape == (n, 3, 2)
    for subset in itertools.combinations(range(n), t):
        got = sharing.shamir_reconstruct(shares[list(subset)], [i + 1 for i in subset], p=p)
        np.testing.assert_array_equal(got, x, err_msg=f"seed={seed} subset={subset}")


def test_shamir_shares_are_polynomial_values():
    """Share i is f(i) for a degree t-1 polynomial through the secret: with Python ints,
    the t-1 coefficients recovered from t shares reproduce every other share."""
    p, n, t = 65537, 6, 3
    x = np.array([123], dtype=np.uint64)
    s = [int(v) for v in sharing.shamir_share(x, n, t, p=p, rng=9)[:, 0]]
    # interpolate through points 1..t, evaluate at t+1..n
    for z in range(t + 1, n + 1):
        val = 0
        for j in range(1, t + 1):
            num = den = 1
            for m in range(1, t + 1):
                if m != j:
                    num = num * (z - m) % p
                    den = den * (j - m) % p
            val = (val + s[j - 1] * num * pow(den, -1, p)) % p
        assert val == s[z - 1]


def test_shamir_fewer_than_threshold_does_not_reconstruct():
    x = np.arange(1, 50, dtype=np.uint64)
    s = sharing.shamir_share(x, 5, 3, rng=4)
    wrong = sharing.shamir_reconstruct(s[:2], [1, 2])  # a degree-1 fit: not the secret
    assert not np.array_equal(wrong, x)


def test_shamir_check_detects_a_tampered_share():
    x = np.arange(20, dtype=np.uint64)
    s = sharing.shamir_share(x, 6, 3, rng=6)
    np.testing.assert_array_equal(
        sharing.shamir_reconstruct(s, list(range(1, 7)), threshold=3, check=True), x
    )
    bad = s.copy()
    bad[5, 7] = (int(bad[5, 7]) + 1) % P61
    with pytest.raises(ValueError, match="inconsistent shares: share 5"):
        sharing.shamir_reconstruct(bad, list(range(1, 7)), threshold=3, check=True)
    # without the check the first three shares still give the secret
    np.testing.assert_array_equal(
        sharing.shamir_reconstruct(bad, list(range(1, 7)), threshold=3), x
    )


def test_shamir_points_in_any_order():
    x = np.array([5, 6, 7], dtype=np.uint64)
    s = sharing.shamir_share(x, 5, 3, rng=7)
    order = [4, 0, 2]
    got = sharing.shamir_reconstruct(s[order], [i + 1 for i in order])
    np.testing.assert_array_equal(got, x)


@pytest.mark.parametrize(
    ("kwargs", "err", "match"),
    [
        ({"n_parties": 3, "threshold": 4}, ValueError, "threshold must be <= n_parties"),
        ({"n_parties": 0, "threshold": 1}, ValueError, "n_parties"),
        ({"n_parties": 3, "threshold": 0}, ValueError, "threshold"),
        ({"n_parties": 3, "threshold": 2, "p": 15}, ValueError, "prime"),
        ({"n_parties": 5, "threshold": 2, "p": 5}, ValueError, "n_parties must be < p"),
        ({"n_parties": 3, "threshold": 2, "p": 2.5}, TypeError, "modulus"),
    ],
)
def test_shamir_share_bad_arguments(kwargs, err, match):
    with pytest.raises(err, match=match):
        sharing.shamir_share(np.array([1], dtype=np.uint64), **kwargs)


def test_shamir_share_secret_out_of_range():
    with pytest.raises(ValueError, match="x must"):
        sharing.shamir_share(np.array([P61], dtype=np.uint64), 3, 2)


@pytest.mark.parametrize(
    ("points", "match"),
    [
        ([1, 1, 2], "distinct"),
        ([0, 1, 2], r"\[1, p\)"),
        ([1, 2], "points has 2 entries"),
        ([1, 2, P61], r"\[1, p\)"),
    ],
)
def test_shamir_reconstruct_bad_points(points, match):
    s = sharing.shamir_share(np.array([1, 2], dtype=np.uint64), 3, 2, rng=1)
    with pytest.raises(ValueError, match=match):
        sharing.shamir_reconstruct(s, points)


def test_shamir_reconstruct_threshold_above_shares():
    s = sharing.shamir_share(np.array([1], dtype=np.uint64), 3, 2, rng=1)
    with pytest.raises(ValueError, match="threshold"):
        sharing.shamir_reconstruct(s[:2], [1, 2], threshold=3)


def test_additive_bad_arguments():
    with pytest.raises(ValueError, match="n_parties"):
        sharing.additive_share(np.array([1]), 0)
    with pytest.raises(ValueError, match="x must"):
        sharing.additive_share(np.array([7]), 2, modulus=7)
    with pytest.raises(ValueError, match="shares"):
        sharing.additive_reconstruct(np.uint64(3))
    with pytest.raises(TypeError):
        sharing.additive_share(np.array([1.5]), 2)


def _chi2_top_bits(values: np.ndarray, bits: int, modulus: int | None) -> float:
    """p-value of a chi-square test that the top ``bits`` bits are uniform. For a prime
    field the top bits of a uniform value in [0, p) are uniform only approximately; the
    test uses p's bit length and the exact cell probabilities."""
    v = values.astype(np.uint64).reshape(-1)
    if modulus is None:
        cells = (v >> np.uint64(64 - bits)).astype(np.int64)
        expected = np.full(2**bits, v.size / 2**bits)
    else:
        k = modulus.bit_length()
        cells = (v >> np.uint64(k - bits)).astype(np.int64)
        width = 2 ** (k - bits)
        counts = [min(width, max(0, modulus - c * width)) for c in range(2**bits)]
        expected = v.size * np.array(counts, dtype=float) / modulus
    observed = np.bincount(cells, minlength=2**bits).astype(float)
    keep = expected > 0
    chi2 = float(np.sum((observed[keep] - expected[keep]) ** 2 / expected[keep]))
    return float(stats.chi2.sf(chi2, int(keep.sum()) - 1))


@pytest.mark.slow
@pytest.mark.parametrize("modulus", [None, P61, P62])
def test_additive_shares_are_uniform(modulus):
    """Every one of the n shares of a constant secret is uniform (any n-1 of them carry
    nothing about the secret): chi-square on the top 8 bits, 2e5 shares per party."""
    x = np.full(200_000, 12345, dtype=np.uint64)
    s = sharing.additive_share(x, 3, modulus=modulus)
    for k in range(3):
        assert _chi2_top_bits(s[k], 8, modulus) > 1e-6, k


@pytest.mark.slow
def test_shamir_shares_are_uniform():
    """Each Shamir share (t >= 2) of a constant secret is uniform in Z_p."""
    x = np.zeros(200_000, dtype=np.uint64)
    s = sharing.shamir_share(x, 4, 2)
    for k in range(4):
        assert _chi2_top_bits(s[k], 8, P61) > 1e-6, k


@pytest.mark.slow
def test_additive_share_independent_of_secret():
    """The first share's distribution does not depend on the secret: two-sample KS test
    of the first share (scaled to [0, 1)) for secrets 0 and 2**63."""
    a = sharing.additive_share(np.zeros(100_000, dtype=np.uint64), 2)[0]
    b = sharing.additive_share(np.full(100_000, 2**63, dtype=np.uint64), 2)[0]
    res = stats.ks_2samp(a.astype(float) / 2**64, b.astype(float) / 2**64)
    assert res.pvalue > 1e-6
    assert math.isfinite(res.statistic)


# ---------------------------------------------------------------------- fixed point


@pytest.mark.parametrize("modulus", [None, P61, P62])
@pytest.mark.parametrize("frac_bits", [0, 8, 16, 24])
def test_fixed_point_round_trip(modulus, frac_bits):
    seed = _seed()
    x = np.random.default_rng(seed).normal(0, 1000, size=200)
    e = sharing.encode_fixed(x, frac_bits=frac_bits, modulus=modulus)
    assert e.dtype == np.uint64
    d = sharing.decode_fixed(e, frac_bits=frac_bits, modulus=modulus)
    # round to nearest: error at most half a unit in the last place
    assert np.all(np.abs(d - x) <= 2.0 ** -(frac_bits + 1)), seed
    np.testing.assert_array_equal(d, np.rint(x * 2.0**frac_bits) / 2.0**frac_bits)


def test_fixed_point_known_answers():
    assert int(sharing.encode_fixed(1.5)) == 3 * 2**15
    assert int(sharing.encode_fixed(-1.0)) == 2**64 - 2**16
    assert int(sharing.encode_fixed(-1.0, modulus=P61)) == P61 - 2**16
    assert sharing.decode_fixed(np.uint64(2**64 - 2**15)) == -0.5
    assert sharing.decode_fixed(np.uint64(P61 - 2**15), modulus=P61) == -0.5


def test_fixed_point_sums_are_exact_in_the_ring_and_field():
    x, y = np.array([1.25, -3.5, 7.0]), np.array([-0.75, 2.0, -7.0])
    for m in (None, P61):
        s = sharing.add(
            sharing.encode_fixed(x, modulus=m), sharing.encode_fixed(y, modulus=m), modulus=m
        )
        np.testing.assert_array_equal(sharing.decode_fixed(s, modulus=m), x + y)


@pytest.mark.parametrize(
    ("value", "modulus"), [(2.0**46, None), (-(2.0**46), None), (2.0**45, P61), (1e300, None)]
)
def test_fixed_point_overflow(value, modulus):
    with pytest.raises(OverflowError, match="encode"):
        sharing.encode_fixed(np.array([0.0, value]), modulus=modulus)


def test_fixed_point_bad_input():
    with pytest.raises(ValueError, match="finite"):
        sharing.encode_fixed(np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="frac_bits"):
        sharing.encode_fixed(1.0, frac_bits=41)
    with pytest.raises(ValueError, match="frac_bits"):
        sharing.encode_fixed(1.0, frac_bits=-1)


def test_truncate_2pc_products_within_one_ulp():
    """x*y with 32 fractional bits, shared, truncated locally by 2**16: reconstructs to
    floor(x*y / 2**16) or one more (SecureML), values far below the failure bound."""
    seed = _seed()
    gen = np.random.default_rng(seed)
    x, y = gen.uniform(-100, 100, 5000), gen.uniform(-100, 100, 5000)
    ex, ey = sharing.encode_fixed(x), sharing.encode_fixed(y)
    prod = sharing.mul(ex, ey)  # 2f = 32 fractional bits, |value| < 2**46
    shares = sharing.additive_share(prod, 2)
    t = sharing.additive_reconstruct(sharing.truncate_2pc(shares))
    exact = prod.view(np.int64) >> 16  # floor division of the signed value
    diff = t.view(np.int64) - exact
    assert set(np.unique(diff).tolist()) <= {0, 1}, seed
    got = sharing.decode_fixed(t)
    want = sharing.decode_fixed(ex) * sharing.decode_fixed(ey)
    assert np.max(np.abs(got - want)) <= 2.0**-15, seed


def test_truncate_2pc_rejects_other_party_counts():
    with pytest.raises(ValueError, match="two parties"):
        sharing.truncate_2pc(np.zeros((3, 4), dtype=np.uint64))


# ------------------------------------------------------------------ Beaver triples


@pytest.mark.parametrize("modulus", [None, P61, 65537])
@pytest.mark.parametrize("n", [2, 3, 5])
def test_beaver_triples_are_consistent(modulus, n):
    t = sharing.beaver_triples((4, 3), n, modulus=modulus, rng=_seed())
    a, b, c = (sharing.additive_reconstruct(v, modulus=modulus) for v in t)
    np.testing.assert_array_equal(c, sharing.mul(a, b, modulus=modulus))
    tm = sharing.beaver_triples((4, 3), n, op="matmul", shape_b=(3, 2), modulus=modulus)
    a, b, c = (sharing.additive_reconstruct(v, modulus=modulus) for v in tm)
    np.testing.assert_array_equal(c, sharing.matmul(a, b, modulus=modulus))


@pytest.mark.parametrize("modulus", [None, P61, P62])
@pytest.mark.parametrize("n", [2, 3])
def test_beaver_mul_and_matmul_equal_plaintext(modulus, n):
    seed = _seed()
    gen = np.random.default_rng(seed)
    hi = 2**64 if modulus is None else modulus
    x = gen.integers(0, hi, (5, 4), dtype=np.uint64)
    y = gen.integers(0, hi, (5, 4), dtype=np.uint64)
    xs, ys = (sharing.additive_share(v, n, modulus=modulus) for v in (x, y))
    z = sharing.beaver_mul(
        xs, ys, sharing.beaver_triples((5, 4), n, modulus=modulus), modulus=modulus
    )
    np.testing.assert_array_equal(
        sharing.additive_reconstruct(z, modulus=modulus),
        sharing.mul(x, y, modulus=modulus),
        err_msg=str(seed),
    )
    w = gen.integers(0, hi, (4, 6), dtype=np.uint64)
    ws = sharing.additive_share(w, n, modulus=modulus)
    tm = sharing.beaver_triples((5, 4), n, op="matmul", shape_b=(4, 6), modulus=modulus)
    zm = sharing.beaver_matmul(xs, ws, tm, modulus=modulus)
    np.testing.assert_array_equal(
        sharing.additive_reconstruct(zm, modulus=modulus),
        sharing.matmul(x, w, modulus=modulus),
        err_msg=str(seed),
    )


def test_beaver_fixed_point_matmul_two_parties():
    """Fixed point: encode, share, Beaver matmul, truncate (2 parties), decode: within
    the truncation error of the float product."""
    gen = np.random.default_rng(_seed())
    x, w = gen.uniform(-4, 4, (8, 5)), gen.uniform(-4, 4, (5, 3))
    xs = sharing.additive_share(sharing.encode_fixed(x), 2)
    ws = sharing.additive_share(sharing.encode_fixed(w), 2)
    t = sharing.beaver_triples((8, 5), 2, op="matmul", shape_b=(5, 3))
    z = sharing.truncate_2pc(sharing.beaver_matmul(xs, ws, t))
    got = sharing.decode_fixed(sharing.additive_reconstruct(z))
    xq = sharing.decode_fixed(sharing.encode_fixed(x))
    wq = sharing.decode_fixed(sharing.encode_fixed(w))
    assert np.max(np.abs(got - xq @ wq)) <= 2.0**-15


def test_beaver_bad_input():
    with pytest.raises(ValueError, match="op must be"):
        sharing.beaver_triples((2,), 2, op="add")
    with pytest.raises(ValueError, match="shape_b must be given"):
        sharing.beaver_triples((2, 2), 2, op="matmul")
    with pytest.raises(ValueError, match=r"\(n, k\) and \(k, m\)"):
        sharing.beaver_triples((2, 3), 2, op="matmul", shape_b=(2, 2))
    t = sharing.beaver_triples((3,), 2)
    with pytest.raises(ValueError, match="do not match"):
        sharing.beaver_mul(np.zeros((2, 4), np.uint64), np.zeros((2, 3), np.uint64), t)


# ------------------------------------------------------------ n-party truncation


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_truncate_n_parties_within_one_unit(n):
    seed = _seed()
    gen = np.random.default_rng(seed)
    x, y = gen.uniform(-100, 100, 4000), gen.uniform(-100, 100, 4000)
    prod = sharing.mul(sharing.encode_fixed(x), sharing.encode_fixed(y))
    t = sharing.additive_reconstruct(sharing.truncate(sharing.additive_share(prod, n)))
    diff = t.view(np.int64) - (prod.view(np.int64) >> 16)
    assert set(np.unique(diff).tolist()) <= {-1, 0}, seed


# ---------------------------------------------------------------- SecretTensor


@pytest.mark.parametrize("n", [2, 3])
def test_secret_tensor_fixed_point_arithmetic(n):
    gen = np.random.default_rng(_seed())
    a, b = gen.uniform(-10, 10, (3, 4)), gen.uniform(-10, 10, (3, 4))
    w = gen.uniform(-10, 10, (4, 2))
    A, B, W = (sharing.SecretTensor.share(v, n) for v in (a, b, w))
    tol = 2.0**-12
    np.testing.assert_allclose((A + B).reveal(), a + b, atol=2.0**-15)
    np.testing.assert_allclose((A - B).reveal(), a - b, atol=2.0**-15)
    np.testing.assert_allclose((A + 1.5).reveal(), a + 1.5, atol=2.0**-15)
    np.testing.assert_allclose((2.0 - A).reveal(), 2.0 - a, atol=2.0**-15)
    np.testing.assert_allclose((-A).reveal(), -a, atol=2.0**-15)
    np.testing.assert_allclose((A * B).reveal(), a * b, atol=tol * 20)
    np.testing.assert_allclose((A * 0.25).reveal(), a * 0.25, atol=tol)
    np.testing.assert_allclose((A @ W).reveal(), a @ w, atol=tol * 100)
    np.testing.assert_allclose((A @ w).reveal(), a @ w, atol=tol * 100)
    np.testing.assert_allclose((a.T @ A).reveal(), a.T @ a, atol=tol * 100)
    np.testing.assert_allclose(A.T.reveal(), a.T, atol=2.0**-15)
    np.testing.assert_allclose(A.sum().reveal(), a.sum(), atol=2.0**-10)
    np.testing.assert_allclose(A.sum(axis=0).reveal(), a.sum(axis=0), atol=2.0**-12)
    assert A.shape == (3, 4) and A.n_parties == n


def test_secret_tensor_integers_in_a_field():
    x, y = np.array([3, 5, 7]), np.array([10, 20, 30])
    X = sharing.SecretTensor.share(x, 3, modulus=P61, frac_bits=None)
    Y = sharing.SecretTensor.share(y, 3, modulus=P61, frac_bits=None)
    np.testing.assert_array_equal((X * Y).reveal(), x * y)
    np.testing.assert_array_equal((X + Y - 2).reveal(), x + y - 2)
    np.testing.assert_array_equal((X @ Y).reveal(), np.uint64(x @ y))
    with pytest.raises(ValueError, match="ring"):
        sharing.SecretTensor.share(np.array([1.0]), 2, modulus=P61)


def test_secret_tensor_logistic_regression_step():
    """The docstring's example: private steps track the plaintext ones within the
    fixed-point error."""
    gen = np.random.default_rng(_seed())
    features = gen.normal(size=(40, 3))
    labels = (features @ np.array([1.0, -2.0, 0.5]) > 0).astype(float)
    lr = 0.5
    X = sharing.SecretTensor.share(features, 3)
    y = sharing.SecretTensor.share(labels, 3)
    w = sharing.SecretTensor.share(np.zeros(3), 3)
    wp = np.zeros(3)
    for _ in range(5):
        p = X @ w * 0.25 + 0.5
        w = w - X.T @ (p - y) * (lr / len(labels))
        pp = features @ wp * 0.25 + 0.5
        wp = wp - features.T @ (pp - labels) * (lr / len(labels))
    np.testing.assert_allclose(w.reveal(), wp, atol=2e-3)


def test_secret_tensor_mismatch_errors():
    a = sharing.SecretTensor.share(np.ones(3), 2)
    b = sharing.SecretTensor.share(np.ones(3), 3)
    with pytest.raises(ValueError, match="n_parties"):
        _ = a + b
    with pytest.raises(TypeError, match="integer"):
        _ = sharing.SecretTensor.share(np.ones(2, dtype=np.int64), 2, frac_bits=None) + 0.5


@pytest.mark.parametrize("modulus", [None, P61, 65537])
def test_shares_do_not_depend_on_the_thread_count(modulus):
    """The shares' randomness is filled in fixed blocks of the seeded stream (several
    blocks here), whatever the thread count."""
    import ppml_fast

    x = np.zeros(300_000, dtype=np.uint64)
    runs = []
    for nt in (1, 2, 3):
        with ppml_fast.num_threads(nt):
            runs.append(
                (
                    sharing.additive_share(x, 3, modulus=modulus, rng=11),
                    sharing.shamir_share(x, 4, 3, rng=12),
                )
            )
    for a, s in runs[1:]:
        np.testing.assert_array_equal(a, runs[0][0])
        np.testing.assert_array_equal(s, runs[0][1])
