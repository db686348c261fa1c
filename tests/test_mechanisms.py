"""DP mechanisms: calibration against the papers' formulas and a scipy oracle, selection
frequencies against exact softmax probabilities, empirical privacy checks, contracts.

Statistical tests use fixed seeds (deterministic) and p-value thresholds of 1e-4 or
bounds of >= 5 standard errors; on the one fresh seed per run the threshold is 1e-6, so a
fresh-seed test has a false-alarm rate of at most 1e-6 per assertion (chi-square/KS) or
6e-7 (a 5-sigma bound) per run.
"""

import math
import warnings
from fractions import Fraction

import numpy as np
import pytest
import scipy.special as sp
import scipy.stats as st

import ppml_fast
from ppml_fast import mechanisms as mech
from ppml_fast import noise
from ppml_fast.reference import mechanisms as ref
from ppml_fast.rng import BLOCK, _reset_dp_warning, default_rng

from .thresholds import FRESH, p_min

pytestmark = pytest.mark.filterwarnings("ignore::ppml_fast.InsecureRandomnessWarning")


def exact_log_delta(sigma, epsilon, sensitivity=1.0):
    """log δ(σ) of Balle & Wang (2018) Thm. 8 from scipy (an independent oracle).

    With a = Δ/(2σ), b = εσ/Δ and ab = ε/2, e^ε Φ(-a-b) = e^{-(b-a)²/2} erfcx((a+b)/√2)/2,
    so δ = e^{-(b-a)²/2} (erfcx((b-a)/√2) - erfcx((b+a)/√2)) / 2 with no e^ε to overflow
    and no cancellation between large logarithms (scipy's log_ndtr form loses ~1e-9).
    """
    a = sensitivity / (2 * sigma)
    b = epsilon * sigma / sensitivity
    r2 = math.sqrt(2)
    return -0.5 * (b - a) ** 2 + math.log(0.5 * (sp.erfcx((b - a) / r2) - sp.erfcx((b + a) / r2)))


# --- Laplace / Gaussian mechanisms -------------------------------------------------------


@pytest.mark.parametrize("name", ["laplace", "gaussian"])
def test_additive_shapes_and_dtypes(name):
    f = (
        (lambda v, **kw: mech.laplace_mechanism(v, 1.0, 1.0, **kw))
        if name == "laplace"
        else (lambda v, **kw: mech.gaussian_mechanism(v, 1.0, 1.0, 1e-5, **kw))
    )
    s = f(3.0, rng=1)
    assert isinstance(s, np.float64)
    assert isinstance(f(np.float32(3.0), rng=1), np.float32)
    assert f([1, 2, 3], rng=1).dtype == np.float64
    assert f(np.arange(6, dtype=np.int32).reshape(2, 3), rng=1).shape == (2, 3)
    x32 = np.ones((4, 5), dtype=np.float32)
    r32 = f(x32, rng=1)
    assert r32.dtype == np.float32 and r32.shape == (4, 5)
    assert f(np.empty((0, 3)), rng=1).shape == (0, 3)
    x = np.arange(24.0).reshape(4, 6)
    before = x.copy()
    view = x[:, ::2]  # non-contiguous input
    r = f(view, rng=1)
    assert r.shape == (4, 3) and r.flags.c_contiguous
    assert np.array_equal(x, before)  # input untouched
    r = f(x, rng=1)
    assert r is not x and np.array_equal(x, before)


@pytest.mark.parametrize("seed", [0, FRESH])
def test_laplace_mechanism_is_value_plus_sampler_noise(seed):
    x = np.linspace(-5, 5, 1001)
    got = mech.laplace_mechanism(x, 2.0, 0.5, rng=seed)
    assert np.array_equal(got, x + noise.laplace(4.0, x.size, rng=seed))
    g32 = mech.laplace_mechanism(x.astype(np.float32), 2.0, 0.5, rng=seed)
    assert np.allclose(g32, got, rtol=1e-6, atol=1e-5)


def test_gaussian_mechanism_is_value_plus_sampler_noise():
    x = np.linspace(-5, 5, 1001)
    sigma = mech.gaussian_sigma(0.7, 1e-6, 3.0)
    got = mech.gaussian_mechanism(x, 3.0, 0.7, 1e-6, rng=5)
    assert np.array_equal(got, x + noise.gaussian(sigma, x.size, rng=5))
    sigma = mech.gaussian_sigma(0.7, 1e-6, 3.0, analytic=False)
    got = mech.gaussian_mechanism(x, 3.0, 0.7, 1e-6, analytic=False, rng=5)
    assert np.array_equal(got, x + noise.gaussian(sigma, x.size, rng=5))


@pytest.mark.parametrize("seed", [3, FRESH])
def test_mechanism_noise_distribution(seed):
    n = 200_000
    x = np.full(n, 7.0)
    lap = mech.laplace_mechanism(x, 3.0, 1.5, rng=seed) - 7.0
    assert st.kstest(lap, st.laplace(scale=2.0).cdf).pvalue > p_min(seed)
    sigma = mech.gaussian_sigma(1.0, 1e-5, 2.0)
    gau = mech.gaussian_mechanism(x, 2.0, 1.0, 1e-5, rng=seed) - 7.0
    assert st.kstest(gau, st.norm(scale=sigma).cdf).pvalue > p_min(seed)


def test_same_seed_same_output_on_any_thread_count():
    x = np.arange(3 * BLOCK + 17, dtype=np.float64)
    with ppml_fast.num_threads(1):
        a = mech.laplace_mechanism(x, 1.0, 1.0, rng=11)
    with ppml_fast.num_threads(2):
        b = mech.laplace_mechanism(x, 1.0, 1.0, rng=11)
    assert np.array_equal(a, b)


def test_unseeded_calls_differ():
    x = np.zeros(64)
    assert not np.array_equal(mech.laplace_mechanism(x, 1, 1), mech.laplace_mechanism(x, 1, 1))
    u = np.zeros((64, 50))
    a, b = mech.exponential_mechanism(u, 1, 1), mech.exponential_mechanism(u, 1, 1)
    assert not np.array_equal(a, b)


# --- gaussian_sigma ----------------------------------------------------------------------


def test_gaussian_sigma_published_value():
    # Balle & Wang (2018): ε = 1, δ = 1e-5, Δ = 1 gives σ ≈ 3.73 (classic bound: 4.84).
    assert mech.gaussian_sigma(1.0, 1e-5) == pytest.approx(3.7306, abs=1e-4)
    assert mech.gaussian_sigma(1.0, 1e-5, analytic=False) == pytest.approx(
        math.sqrt(2 * math.log(1.25e5)), rel=1e-15
    )


@pytest.mark.parametrize("epsilon", [0.01, 0.1, 0.5, 1.0])
@pytest.mark.parametrize("delta", [1e-3, 1e-5, 1e-8, 1e-12])
def test_gaussian_sigma_matches_reference_and_beats_classic(epsilon, delta):
    s = mech.gaussian_sigma(epsilon, delta, 2.5)
    assert s == pytest.approx(ref.gaussian_sigma(epsilon, delta, 2.5), rel=1e-8)
    assert s < mech.gaussian_sigma(epsilon, delta, 2.5, analytic=False)


@pytest.mark.parametrize("epsilon", [0.01, 0.3, 1.0, 3.0, 20.0, 200.0, 5000.0])
@pytest.mark.parametrize("delta", [0.5, 1e-5, 1e-15, 1e-100, 1e-300])
@pytest.mark.parametrize("sensitivity", [1.0, 1e-3, 1e4])
def test_gaussian_sigma_is_tight_and_never_undershoots(epsilon, delta, sensitivity):
    s = mech.gaussian_sigma(epsilon, delta, sensitivity)
    assert math.isfinite(s) and s > 0
    log_delta = math.log(delta)
    assert exact_log_delta(s, epsilon, sensitivity) <= log_delta
    assert exact_log_delta(s, epsilon, sensitivity) >= log_delta + math.log1p(-1e-6)
    assert exact_log_delta(s * (1 - 1e-9), epsilon, sensitivity) > log_delta + math.log1p(-1e-8)


def test_gaussian_sigma_scales_with_sensitivity():
    assert mech.gaussian_sigma(0.8, 1e-6, 7.0) == pytest.approx(7 * mech.gaussian_sigma(0.8, 1e-6))


def test_classic_sigma_rejects_epsilon_above_one():
    with pytest.raises(ValueError, match=r"epsilon must be <= 1 .*got 2\.0"):
        mech.gaussian_sigma(2.0, 1e-5, analytic=False)
    with pytest.raises(ValueError, match="epsilon must be <= 1"):
        mech.gaussian_mechanism(1.0, 1.0, 2.0, 1e-5, analytic=False, rng=1)


# --- exponential mechanism ----------------------------------------------------------------


def test_exponential_shapes_axis_and_dtypes():
    u = np.random.default_rng(0).normal(size=(3, 7, 5))
    r = mech.exponential_mechanism(u, 1.0, 1.0, rng=2)
    assert r.shape == (3, 7) and r.dtype == np.int64 and r.min() >= 0 and r.max() < 5
    assert mech.exponential_mechanism(u, 1.0, 1.0, rng=2, axis=1).shape == (3, 5)
    # moving the candidates' axis is the same as transposing the input
    a = mech.exponential_mechanism(u, 1.0, 1.0, rng=4, axis=1)
    b = mech.exponential_mechanism(np.moveaxis(u, 1, -1), 1.0, 1.0, rng=4)
    assert np.array_equal(a, b)
    one = mech.exponential_mechanism([1.0, 2.0, 3.0], 1.0, 1.0, rng=1)
    assert isinstance(one, np.int64)
    r32 = mech.exponential_mechanism(u.astype(np.float32), 1.0, 1.0, rng=2)
    assert r32.shape == (3, 7)
    assert mech.exponential_mechanism([[1, 2], [3, 4]], 1, 1, rng=1).dtype == np.int64
    assert mech.exponential_mechanism(np.empty((0, 4)), 1, 1, rng=1).shape == (0,)


def test_exponential_huge_utilities_do_not_overflow():
    rows = np.array([[1e300, 0.0, -1e300]] * 200)
    assert (mech.exponential_mechanism(rows, 1.0, 1.0, rng=1) == 0).all()
    ties = np.array([[1e300, 1e300]] * 4000)
    picks = mech.exponential_mechanism(ties, 1.0, 1.0, rng=2)
    assert abs(picks.mean() - 0.5) < 5 * 0.5 / math.sqrt(4000)
    extreme = np.array([[-1.7e308, 1.7e308, 1.6e308]] * 100)
    assert (mech.exponential_mechanism(extreme, 1.0, 1.0, rng=3) == 1).all()
    # ε/(2Δ) u overflows for these, the shifted form does not
    near = np.array([[1e300, 1e300 + 2e284]] * 2000)
    picks = mech.exponential_mechanism(near, 1e-284, 1.0, rng=4)
    p1 = ref.softmax_probabilities(near[0], 1e-284, 1.0)[1]
    assert abs(picks.mean() - p1) < 5 * math.sqrt(p1 * (1 - p1) / 2000)


def test_exponential_large_epsilon_picks_the_max():
    u = np.random.default_rng(1).normal(size=(500, 40))
    assert np.array_equal(mech.exponential_mechanism(u, 1e6, 1.0, rng=1), u.argmax(-1))


@pytest.mark.slow
@pytest.mark.parametrize("seed", [7, FRESH])
def test_exponential_frequencies_match_softmax(seed):
    # chi-square goodness of fit, false alarm 1e-4 per (seed, row)
    u = np.array([0.0, 1.0, 2.0, 3.0, 3.5, -2.0, 10.0, 4.0])
    eps, sens = 0.9, 1.3
    n = 200_000
    p = ref.softmax_probabilities(u, eps, sens)
    picks = mech.exponential_mechanism(np.broadcast_to(u, (n, u.size)), eps, sens, rng=seed)
    assert p.min() * 20_000 >= 5  # every cell large enough for the chi-square approximation
    counts = np.bincount(picks, minlength=u.size)
    assert st.chisquare(counts, p * n).pvalue > p_min(seed)
    # the reference (explicit softmax + Generator.choice) passes the same test
    m = 20_000
    r = ref.exponential_mechanism(np.broadcast_to(u, (m, u.size)), eps, sens, rng=seed)
    assert st.chisquare(np.bincount(r, minlength=u.size), p * m).pvalue > p_min(seed)


# --- randomized response ------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [bool, np.int8, np.int64, np.uint8])
def test_randomized_response_dtype_shape(dtype):
    b = (np.arange(12).reshape(3, 4) % 2).astype(dtype)
    r = mech.randomized_response(b, 1.0, rng=1)
    assert r.dtype == np.dtype(dtype) and r.shape == (3, 4)
    assert set(np.unique(r.astype(int))) <= {0, 1}
    assert np.ndim(mech.randomized_response(True, 1.0, rng=1)) == 0


@pytest.mark.parametrize("epsilon", [0.1, 1.0, 3.0])
@pytest.mark.parametrize("seed", [2, FRESH])
def test_randomized_response_flip_rate_and_estimator(epsilon, seed):
    n = 400_000
    gen = np.random.default_rng(seed)
    bits = gen.random(n) < 0.3
    r = mech.randomized_response(bits, epsilon, rng=seed)
    q = 1 / (1 + math.exp(epsilon))
    flips = np.mean(r != bits)
    assert abs(flips - q) < 5 * math.sqrt(q * (1 - q) / n)
    p = 1 - q
    est = mech.randomized_response_estimate(r, epsilon)
    sd = math.sqrt(p * q / n) / (p - q)
    assert abs(est - bits.mean()) < 5 * sd
    assert est == pytest.approx(ref.randomized_response_estimate(r, epsilon), rel=1e-12)
    cols = mech.randomized_response_estimate(r.reshape(-1, 4), epsilon, axis=0)
    assert cols.shape == (4,)


def test_randomized_response_huge_epsilon_keeps_bits():
    b = np.random.default_rng(0).random(10_000) < 0.5
    assert np.array_equal(mech.randomized_response(b, 1000.0, rng=1), b)
    assert mech.randomized_response_estimate(b, 1000.0) == pytest.approx(b.mean())


@pytest.mark.slow
@pytest.mark.parametrize("epsilon", [0.5, 2.0])
def test_empirical_privacy_randomized_response(epsilon):
    # neighbours: one respondent's bit 0 vs 1; the log-ratio of report frequencies must be
    # <= ε (+ 5 standard errors) and, as RR is tight, close to ε.
    n = 1_000_000
    r0 = mech.randomized_response(np.zeros(n, dtype=bool), epsilon, rng=10)
    r1 = mech.randomized_response(np.ones(n, dtype=bool), epsilon, rng=11)
    for v in (0, 1):
        c0, c1 = np.sum(r0 == v), np.sum(r1 == v)
        se = math.sqrt(1 / c0 + 1 / c1)
        assert abs(math.log(c0 / c1)) <= epsilon + 5 * se
        assert abs(math.log(c0 / c1)) >= epsilon - 5 * se


@pytest.mark.slow
def test_empirical_privacy_laplace_mechanism():
    # neighbours: answers 0 and Δ = 1, ε = 1; histogram the outputs of 2e6 runs each
    eps, n = 1.0, 2_000_000
    a = mech.laplace_mechanism(np.zeros(n), 1.0, eps, rng=20)
    b = mech.laplace_mechanism(np.ones(n), 1.0, eps, rng=21)
    edges = np.linspace(-6, 7, 53)
    ca, _ = np.histogram(a, edges)
    cb, _ = np.histogram(b, edges)
    ok = (ca > 2000) & (cb > 2000)
    lr = np.abs(np.log(ca[ok] / cb[ok]))
    se = np.sqrt(1 / ca[ok] + 1 / cb[ok])
    assert np.all(lr <= eps + 5 * se)
    assert lr.max() >= 0.8 * eps  # the calibration is tight, not over-noised


# --- geometric mechanism ------------------------------------------------------------------


def test_geometric_mechanism_shapes_and_values():
    x = np.arange(10).reshape(2, 5)
    r = mech.geometric_mechanism(x, 1, 1.0, rng=1)
    assert r.dtype == np.int64 and r.shape == (2, 5)
    # the values: x plus exactly the discrete Laplace noise of scale Δ/ε on the same seed
    # (a stub, a no-noise or a wrong-scale version differs)
    np.testing.assert_array_equal(r - x, noise.discrete_laplace(Fraction(1), (2, 5), rng=1))
    s = mech.geometric_mechanism(5, Fraction(1), Fraction(1, 2), rng=1)
    assert np.ndim(s) == 0 and np.asarray(s).dtype == np.int64
    assert s - 5 == noise.discrete_laplace(Fraction(2), (), rng=1)
    assert (
        mech.geometric_mechanism(np.arange(5, dtype=np.int32), 2, Fraction(3, 2), rng=1).dtype
        == np.int64
    )


@pytest.mark.parametrize("seed", [5, FRESH])
def test_geometric_mechanism_distribution(seed):
    n = 200_000
    eps, sens = Fraction(1, 2), 1
    z = mech.geometric_mechanism(np.full(n, 100), sens, eps, rng=seed) - 100
    alpha = math.exp(-float(eps) / sens)
    ks = np.arange(-15, 16)  # every bin expects >= 27 counts; the tails are pooled
    p = (1 - alpha) / (1 + alpha) * alpha ** np.abs(ks)
    counts = np.array([np.sum(z == k) for k in ks])
    obs = np.append(counts, n - counts.sum())
    exp = np.append(p * n, (1 - p.sum()) * n)
    assert st.chisquare(obs, exp).pvalue > p_min(seed)


def test_geometric_mechanism_overflow():
    big = np.full(1000, np.iinfo(np.int64).max)
    with pytest.raises(OverflowError, match="int64"):
        mech.geometric_mechanism(big, 1, 1.0, rng=1)


# --- bad inputs ---------------------------------------------------------------------------

BAD_POSITIVE = [
    (0.0, ValueError, "must be > 0, got 0.0"),
    (-1.0, ValueError, r"must be > 0, got -1\.0"),
    (float("nan"), ValueError, "must be finite"),
    (float("inf"), ValueError, "must be finite"),
    ("1", TypeError, "must be a real number"),
    (True, TypeError, "must be a real number"),
]


def _calls(param, bad):
    kw = {"sensitivity": 1.0, "epsilon": 1.0, param: bad}
    yield lambda: mech.laplace_mechanism(1.0, kw["sensitivity"], kw["epsilon"], rng=1)
    yield lambda: mech.gaussian_mechanism(1.0, kw["sensitivity"], kw["epsilon"], 1e-5, rng=1)
    yield lambda: mech.gaussian_sigma(kw["epsilon"], 1e-5, kw["sensitivity"])
    yield lambda: mech.exponential_mechanism([1.0, 2.0], kw["epsilon"], kw["sensitivity"], rng=1)
    if param == "epsilon":
        yield lambda: mech.randomized_response([0, 1], bad, rng=1)
        yield lambda: mech.randomized_response_estimate([0, 1], bad)


@pytest.mark.parametrize("param", ["epsilon", "sensitivity"])
@pytest.mark.parametrize(("bad", "exc", "msg"), BAD_POSITIVE)
def test_bad_privacy_parameters(param, bad, exc, msg):
    for call in _calls(param, bad):
        with pytest.raises(exc, match=f"{param} {msg}"):
            call()


@pytest.mark.parametrize("param", ["epsilon", "sensitivity"])
@pytest.mark.parametrize(
    ("bad", "exc", "msg"),
    [
        (0, ValueError, "must be > 0"),
        (-1, ValueError, "must be > 0"),
        (float("nan"), ValueError, "must be finite"),
        ("x", TypeError, "must be a real number"),
    ],
)
def test_geometric_bad_parameters(param, bad, exc, msg):
    kw = {"sensitivity": 1, "epsilon": 1, param: bad}
    with pytest.raises(exc, match=f"{param} {msg}"):
        mech.geometric_mechanism(3, kw["sensitivity"], kw["epsilon"], rng=1)


@pytest.mark.parametrize("delta", [0.0, 1.0, -0.1, 2.0, float("nan")])
def test_bad_delta(delta):
    with pytest.raises(ValueError, match="delta must be"):
        mech.gaussian_sigma(1.0, delta)
    with pytest.raises(ValueError, match="delta must be"):
        mech.gaussian_mechanism(0.0, 1.0, 1.0, delta, rng=1)


def test_bad_analytic_flag():
    with pytest.raises(TypeError, match="analytic must be a bool"):
        mech.gaussian_sigma(1.0, 1e-5, analytic="yes")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nonfinite_values_rejected(bad):
    with pytest.raises(ValueError, match="value must contain only finite values"):
        mech.laplace_mechanism([1.0, bad], 1.0, 1.0, rng=1)
    with pytest.raises(ValueError, match="value must contain only finite values"):
        mech.gaussian_mechanism(np.float32(bad), 1.0, 1.0, 1e-5, rng=1)
    with pytest.raises(ValueError, match="utilities must contain only finite values"):
        mech.exponential_mechanism([1.0, bad], 1.0, 1.0, rng=1)


def test_bad_value_types():
    with pytest.raises(TypeError, match="value must be a real numeric array"):
        mech.laplace_mechanism(["a"], 1.0, 1.0, rng=1)
    with pytest.raises(TypeError, match="value must be a real numeric array"):
        mech.laplace_mechanism(1 + 2j, 1.0, 1.0, rng=1)
    with pytest.raises(TypeError, match="value must be an integer array"):
        mech.geometric_mechanism(1.5, 1, 1, rng=1)
    with pytest.raises(TypeError, match="value must be an integer array"):
        mech.geometric_mechanism(np.array([1.0, 2.0]), 1, 1, rng=1)


def test_exponential_bad_shapes():
    with pytest.raises(ValueError, match="at least one dimension"):
        mech.exponential_mechanism(1.0, 1.0, 1.0, rng=1)
    with pytest.raises(ValueError, match="at least 1 candidate"):
        mech.exponential_mechanism(np.empty((3, 0)), 1.0, 1.0, rng=1)
    with pytest.raises(ValueError, match=r"axis must be in \[-2, 1\], got 2"):
        mech.exponential_mechanism(np.ones((3, 2)), 1.0, 1.0, rng=1, axis=2)
    with pytest.raises(TypeError, match="axis must be an int"):
        mech.exponential_mechanism(np.ones((3, 2)), 1.0, 1.0, rng=1, axis=1.0)
    with pytest.raises(ValueError, match="sensitivity / epsilon must be positive and finite"):
        mech.exponential_mechanism([1.0, 2.0], 1e-300, 1e300, rng=1)


def test_randomized_response_bad_bits():
    with pytest.raises(ValueError, match="bits must contain only 0 and 1"):
        mech.randomized_response([0, 2], 1.0, rng=1)
    with pytest.raises(ValueError, match="bits must contain only 0 and 1"):
        mech.randomized_response([-1, 0], 1.0, rng=1)
    with pytest.raises(TypeError, match="bits must be an array of bools or 0/1 integers"):
        mech.randomized_response([0.0, 1.0], 1.0, rng=1)
    with pytest.raises(ValueError, match="reports must not be empty"):
        mech.randomized_response_estimate(np.array([], dtype=bool), 1.0)


# --- the insecure-randomness warning ------------------------------------------------------


def test_seeded_stream_warns_once():
    _reset_dp_warning()
    with pytest.warns(ppml_fast.InsecureRandomnessWarning, match="seed"):
        mech.laplace_mechanism(1.0, 1.0, 1.0, rng=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mech.laplace_mechanism(1.0, 1.0, 1.0, rng=1)
        mech.exponential_mechanism([1.0, 2.0], 1.0, 1.0, rng=2)
    _reset_dp_warning()
    with pytest.warns(ppml_fast.InsecureRandomnessWarning):
        mech.exponential_mechanism([1.0, 2.0], 1.0, 1.0, rng=np.random.default_rng(3))


def test_secure_stream_does_not_warn():
    _reset_dp_warning()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mech.laplace_mechanism(1.0, 1.0, 1.0)
        mech.gaussian_mechanism([1.0], 1.0, 1.0, 1e-5, rng=default_rng())
        mech.randomized_response([0, 1], 1.0)
        mech.exponential_mechanism([1.0, 2.0], 1.0, 1.0)
    _reset_dp_warning()


def test_bad_input_raises_without_warning():
    _reset_dp_warning()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError):
            mech.laplace_mechanism([np.nan], 1.0, 1.0, rng=1)
    _reset_dp_warning()


def test_overflowing_release_raises_instead_of_returning_inf():
    with pytest.raises(OverflowError, match="overflows float32"):
        mech.laplace_mechanism(np.full(100, 3.3e38, dtype=np.float32), 1.0, 1e-38, rng=1)
    with pytest.raises(ValueError, match="value must contain only finite values"):
        mech.laplace_mechanism(np.array([1.0, np.inf]), 1.0, 1.0, rng=1)


def test_geometric_scale_errors_name_the_parameters():
    with pytest.raises(ValueError, match="sensitivity / epsilon"):
        mech.geometric_mechanism(5, 1, 1e30, rng=1)
    with pytest.raises(ValueError, match="sensitivity / epsilon"):
        mech.geometric_mechanism(5, 1e30, 1, rng=1)


def test_report_noisy_max_is_the_exponential_mechanism():
    u = np.random.default_rng(0).random((50, 7))
    assert np.array_equal(
        mech.report_noisy_max(u, 1.0, 1.0, rng=3), mech.exponential_mechanism(u, 1.0, 1.0, rng=3)
    )


@pytest.mark.parametrize(
    "eps, delta",
    [
        (1e-8, 1e-10),
        (1e-12, 1e-15),
        (1e-14, 1e-20),
        (1e-6, 1e-30),
        (1.0, 1e-5),
        (0.1, 1e-6),
        (5.0, 1e-8),
        (1e-3, 0.5),
        (50.0, 1e-100),
    ],
)
def test_analytic_sigma_never_undershoots_high_precision(eps, delta):
    # Balle & Wang (2018) Thm 8 evaluated with 80 significant digits: the returned σ must
    # satisfy δ(σ) <= δ, and be tight (1.000001·δ is exceeded just below it). Tiny ε is
    # where the double-precision difference of two erfcx values used to cancel.
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 80

    def exact_delta(sigma):
        s, e = mpmath.mpf(sigma), mpmath.mpf(eps)
        a, b = 1 / (2 * s), e * s
        return mpmath.ncdf(a - b) - mpmath.e**e * mpmath.ncdf(-a - b)

    sigma = mech.gaussian_sigma(eps, delta)
    assert exact_delta(sigma) <= delta
    assert exact_delta(sigma * (1 - 1e-6)) > delta * (1 - 1e-6)
