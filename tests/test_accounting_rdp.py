"""RDP accounting: ``compute_rdp`` bit for bit against the pure-Python reference (and
Opacus when installed), against 50-digit mpmath sums and integrals, Opacus 1.6's golden
ε, ``get_privacy_spent`` against the reference and Opacus, and ``RDPAccountant``'s
history, events and state.

Random cases run on a fixed seed and on one fresh seed per run (see
:mod:`tests.accounting_oracles`; rerun a failure with ``PPML_TEST_SEED=<printed seed>``).

Bugs found while writing these tests are kept as regression tests (their docstrings say
what went wrong): negative RDP at large fractional orders, the pow(σ, 2.0) fold, rounding-
level negatives turned into inf and the 10^7-term loop at tiny σ.
"""

from __future__ import annotations

import math
import time
import warnings

import mpmath
import numpy as np
import pytest

from ppml_fast.accounting import (
    DEFAULT_ALPHAS,
    GaussianEvent,
    LaplaceEvent,
    PoissonSampledEvent,
    PRVAccountant,
    RDPAccountant,
    compute_rdp,
    create_accountant,
    get_privacy_spent,
)
from ppml_fast.reference import accounting as ref

from .accounting_oracles import (
    EPS,
    FRESH,
    SEEDS,
    clear_rdp_cache,
    mp,
    mp_laplace_rdp,
    mp_log_a_integral,
    mp_log_a_sum,
    random_rdp_cases,
    rdp_epsilon,
)

pytestmark = [
    pytest.mark.filterwarnings("ignore:the optimal RDP order:UserWarning"),
    pytest.mark.filterwarnings("ignore:Optimal order is the:UserWarning"),  # Opacus' wording
]


# --- compute_rdp: native == reference == Opacus, bit for bit -----------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_compute_rdp_native_equals_reference_bit_for_bit(seed):
    for q, sigma, steps, orders in random_rdp_cases(seed):
        got = compute_rdp(q, sigma, steps, orders)
        want = ref.compute_rdp(q, sigma, steps, orders)
        np.testing.assert_array_equal(
            got, want, err_msg=f"seed={seed} q={q!r} sigma={sigma!r} steps={steps} {orders!r}"
        )


def test_compute_rdp_default_orders_and_scalar_order_equal_reference():
    for q, sigma in [(0.01, 1.1), (1e-4, 0.7), (0.3, 4.0), (0.999, 2.0)]:
        np.testing.assert_array_equal(
            compute_rdp(q, sigma, 10_000, DEFAULT_ALPHAS),
            ref.compute_rdp(q, sigma, 10_000, DEFAULT_ALPHAS),
        )
    got = compute_rdp(0.01, 1.1, 3, 2.5)
    assert isinstance(got, float)
    assert got == ref.compute_rdp(0.01, 1.1, 3, 2.5)
    assert compute_rdp(q=0.01, noise_multiplier=1.1, steps=1, orders=[32]).shape == (1,)


@pytest.mark.parametrize("seed", SEEDS)
def test_compute_rdp_equals_opacus_bit_for_bit(seed):
    opacus_rdp = pytest.importorskip("opacus.accountants.analysis.rdp")
    for q, sigma, steps, orders in random_rdp_cases(seed):
        want = opacus_rdp.compute_rdp(
            q=q, noise_multiplier=sigma, steps=steps, orders=[float(a) for a in orders]
        )
        # documented deviation: where Opacus' fractional series cancels into a clearly
        # negative RDP (< -1e-9, large fractional orders), ppml_fast answers inf
        want = np.where(want < -1e-9, np.inf, want)
        got = compute_rdp(q=q, noise_multiplier=sigma, steps=steps, orders=orders)
        np.testing.assert_array_equal(
            got, want, err_msg=f"seed={seed} q={q!r} sigma={sigma!r} steps={steps} {orders!r}"
        )
    scalar = opacus_rdp.compute_rdp(q=0.02, noise_multiplier=0.9, steps=7, orders=3.5)
    assert compute_rdp(0.02, 0.9, 7, 3.5) == scalar


# sigma values (found by random search) where glibc's pow(sigma, 2.0) != sigma * sigma
POW_MISROUNDED = [4.535013583942007, 28.69106150083858, 6.611857705545143, 14.721180431432925]


def test_compute_rdp_squares_sigma_like_opacus():
    """Regression: the kernel's pow(sigma, 2.0) was folded by GCC into sigma*sigma, which
    differs from Python's sigma**2 (libm pow, what Opacus uses) by one ulp for ~0.08% of
    sigma, e.g. compute_rdp(0.9390439158147291, 4.535013583942007, 1, [90.0]) was
    2.125308494747904 instead of Opacus' 2.1253084947479035."""
    orders = [2.5, 7.0, 90.0, 233.0]
    for sigma in POW_MISROUNDED:
        if sigma**2 == sigma * sigma:  # another libm: nothing to distinguish
            continue
        for q in (0.9390439158147291, 0.01, 1.0):
            np.testing.assert_array_equal(
                compute_rdp(q, sigma, 1, orders),
                ref.compute_rdp(q, sigma, 1, orders),
                err_msg=f"q={q!r} sigma={sigma!r}",
            )


def test_compute_rdp_special_cases():
    orders = [1.5, 2.0, 32.0, 100.5, np.inf]
    for impl in (compute_rdp, ref.compute_rdp):
        np.testing.assert_array_equal(impl(0.0, 1.0, 5, orders), np.zeros(5))  # q = 0
        np.testing.assert_array_equal(impl(0.0, 0.0, 5, orders), np.zeros(5))  # q = 0 wins
        np.testing.assert_array_equal(impl(0.1, 0.0, 5, orders), np.full(5, np.inf))  # σ = 0
        np.testing.assert_array_equal(  # q = 1
            impl(1.0, 2.0, 3, orders), np.array(orders) / (2 * 2.0**2) * 3
        )
        out = impl(0.5, 1.0, 1, orders)
        assert np.isfinite(out[:4]).all() and out[4] == np.inf  # α = inf
        np.testing.assert_array_equal(impl(0.1, 0.0, 0, orders), np.zeros(5))  # steps = 0
        # documented: σ whose square underflows is no noise at all
        np.testing.assert_array_equal(impl(0.5, 1e-170, 1, [2.0, 2.5]), [np.inf, np.inf])
        # documented: a NaN from the series (here inf - inf in the integer sum) is +inf
        assert impl(0.3, 1e-155, 1, [100.0])[0] == np.inf
        # documented: a negative value (cancellation at a large fractional order) is +inf
        assert impl(0.3, 10.0, 1, [100.5])[0] == np.inf


def test_compute_rdp_documented_deviations_from_opacus():
    """Where Opacus raises or returns NaN, ppml_fast returns inf (or 0 for steps = 0)."""
    opacus_rdp = pytest.importorskip("opacus.accountants.analysis.rdp")
    with pytest.raises(ZeroDivisionError):
        opacus_rdp.compute_rdp(q=0.5, noise_multiplier=1e-170, steps=1, orders=[2.0])
    assert compute_rdp(0.5, 1e-170, 1, [2.0])[0] == np.inf
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert np.isnan(
            opacus_rdp.compute_rdp(q=0.3, noise_multiplier=1e-155, steps=1, orders=[100.0])[0]
        )
        assert np.isnan(
            opacus_rdp.compute_rdp(q=0.1, noise_multiplier=0.0, steps=0, orders=[2.0])[0]
        )
    assert compute_rdp(0.3, 1e-155, 1, [100.0])[0] == np.inf
    assert compute_rdp(0.1, 0.0, 0, [2.0])[0] == 0.0


def test_rdp_is_non_negative_at_default_orders():
    rng = np.random.default_rng(FRESH)
    for _ in range(100):
        q, sigma = float(10 ** rng.uniform(-6, 0)), float(10 ** rng.uniform(-1, 3))
        r = compute_rdp(q, sigma, 1, DEFAULT_ALPHAS)
        assert (r >= -1e-12).all(), f"seed={FRESH} q={q!r} sigma={sigma!r} min={r.min()}"


def test_rdp_large_fractional_order_is_never_negative():
    """Regression: the fractional-order series (Opacus' too) cancels catastrophically at
    large fractional orders (alpha >~ 30, q >~ 0.05, sigma >~ 1): compute_rdp(0.3, 10.0,
    1, [100.5]) was -0.36026 (the 50-digit integral gives 0.058063) and RDPAccountant with
    alphas=[2, 100.5] reported epsilon = -360.2. Now such an order is inf."""
    got = compute_rdp(0.3, 10.0, 1, [100.5])[0]
    want = float(mp_log_a_integral(0.3, 10.0, 100.5) / mp.mpf(99.5))
    assert got >= 0.0
    assert got == np.inf or got == pytest.approx(want, rel=1e-8)
    assert ref.compute_rdp(0.3, 10.0, 1, [100.5])[0] == got
    acc = RDPAccountant()
    acc.history = [(10.0, 0.3, 1000)]
    eps = acc.get_epsilon(1e-5, alphas=[2.0, 100.5])
    assert eps == acc.get_epsilon(1e-5, alphas=[2.0]) > 0.0


def test_rounding_level_negative_rdp_is_not_inf():
    """Regression: with "r < 0 -> inf", rounding-level negatives (-3e-16 where the true RDP
    is ~1e-20) made 143 of the 151 default orders inf at sigma = 1e4, q = 1e-6, and
    epsilon(1e-5) after 1000 steps was 11.33 instead of 0.10287."""
    r = compute_rdp(1e-6, 1e4, 1, DEFAULT_ALPHAS)
    assert np.isfinite(r).all() and (np.abs(r) < 1e-12).all()
    np.testing.assert_array_equal(r, ref.compute_rdp(1e-6, 1e4, 1, DEFAULT_ALPHAS))
    acc = RDPAccountant()
    acc.history = [(1e4, 1e-6, 1000)]
    # the true RDP is <= 1000 * 1e-12 * 64 / 1e8 ~ 1e-15 at every default order, so epsilon
    # is that of an all-zero RDP to ~1e-14
    zero, _ = get_privacy_spent(
        orders=DEFAULT_ALPHAS, rdp=np.zeros(len(DEFAULT_ALPHAS)), delta=1e-5
    )
    assert acc.get_epsilon(1e-5) == pytest.approx(zero, abs=1e-9)
    # get_privacy_spent accepts them (rounding), refuses clearly negative values
    assert get_privacy_spent(orders=DEFAULT_ALPHAS, rdp=r * 1000, delta=1e-5)[0] == pytest.approx(
        zero, abs=1e-9
    )


def test_compute_rdp_tiny_sigma_is_fast():
    """Regression: for sigma in ~[2.2e-162, 7.5e-155] sigma**2 did not underflow to 0 but
    (i*i - i) / (2 sigma**2) overflowed, the fractional-order terms were NaN and the series
    ran to its 10**7-term cap before returning inf: ~2 s per fractional order, ~92 s for
    compute_rdp(0.01, 1e-160, 1, DEFAULT_ALPHAS). Now sigma < 1e-150 is inf at once."""
    clear_rdp_cache()
    t = time.perf_counter()
    for sigma in (1e-160, 1e-155, 5e-151):
        np.testing.assert_array_equal(
            compute_rdp(0.01, sigma, 1, DEFAULT_ALPHAS), np.full(len(DEFAULT_ALPHAS), np.inf)
        )
    assert time.perf_counter() - t < 0.5
    assert np.isfinite(compute_rdp(0.01, 1e-149, 1, [2.0]))[0]


# --- golden values -----------------------------------------------------------------------


def _mp_epsilon_at(q, sigma, steps, delta, alpha):
    """Opacus' RDP -> (ε, δ) conversion at one order, from 50-digit RDP (mpmath)."""
    log_a = mp_log_a_sum(q, sigma, int(alpha)) if alpha == int(alpha) else None
    if log_a is None:
        log_a = mp_log_a_integral(q, sigma, alpha)
    a = mp.mpf(alpha)
    rdp = steps * log_a / (a - 1)
    return rdp - (mp.log(delta) + mp.log(a)) / (a - 1) + mp.log((a - 1) / a)


def test_golden_rdp_epsilon():
    """The classic DP-SGD example (q 0.01, σ 1.1, 10,000 steps, δ 1e-5; ε ≈ 5.63).

    Checked against Opacus computed now (the README's bit-for-bit claim) when it is
    installed, and always against a 50-digit mpmath evaluation of the same bound: the
    returned order is a local minimum of the mpmath ε over its neighbours in the order
    grid, and the returned ε equals the mpmath ε at that order within the series' stated
    accuracy (see ``_check_fractional``: the fractional-order series stops at terms below
    e^-30 ~ 1e-13 in A, rel 1e-8 + 1e-12/(α-1) per step, times the steps). No digits of
    one peer run are pinned: a peer's last digits move with its CPU's SIMD paths and its
    library versions.
    """
    q, sigma, steps, delta = 0.01, 1.1, 10_000, 1e-5
    eps = rdp_epsilon(q, sigma, steps, delta)
    e2, order = get_privacy_spent(
        orders=DEFAULT_ALPHAS, rdp=compute_rdp(q, sigma, steps, DEFAULT_ALPHAS), delta=delta
    )
    assert e2 == eps
    assert (
        order
        == ref.get_privacy_spent(
            DEFAULT_ALPHAS, ref.compute_rdp(q, sigma, steps, DEFAULT_ALPHAS), delta
        )[1]
    )
    want = float(_mp_epsilon_at(q, sigma, steps, delta, order))
    rdp1 = float(compute_rdp(q, sigma, 1, [order])[0])  # only sizes the tolerance
    tol = steps * (1e-8 * rdp1 + 1e-12 / (order - 1))
    assert abs(eps - want) <= tol, (eps, want, tol)
    i = DEFAULT_ALPHAS.index(order)
    for j in (i - 1, i + 1):
        assert _mp_epsilon_at(q, sigma, steps, delta, DEFAULT_ALPHAS[j]) > want - tol, j
    try:
        from opacus.accountants import RDPAccountant as OpacusRDP
    except ImportError:
        return
    theirs = OpacusRDP()
    theirs.history = [(sigma, q, steps)]
    assert theirs.get_epsilon(delta) == eps  # computed now, on this CPU and these versions


# --- mpmath oracles ----------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_integer_orders_against_mpmath_sum(seed):
    rng = np.random.default_rng(seed)
    cases = [(0.01, 1.1, 2), (0.01, 1.1, 63), (1e-3, 0.5, 256), (0.5, 2.0, 128), (0.9, 5.0, 7)]
    for _ in range(25):
        cases.append(
            (
                float(10 ** rng.uniform(-3, 0)),
                float(rng.uniform(0.3, 10)),
                int(rng.integers(2, 257)),
            )
        )
    for q, sigma, alpha in cases:
        want = mp_log_a_sum(q, sigma, alpha) / (alpha - 1)
        got = compute_rdp(q, sigma, 1, [float(alpha)])[0]
        # rel 1e-10; plus the rounding of a log-sum-exp of alpha + 1 terms of size O(1)
        # (absolute ~(alpha + 1) eps in log A), which dominates when A - 1 is tiny
        tol = 1e-10 * abs(float(want)) + 4 * (alpha + 1) * EPS / (alpha - 1)
        assert abs(got - float(want)) <= tol, (
            f"seed={seed} q={q!r} sigma={sigma!r} alpha={alpha}: {got!r} vs {want}"
        )


def test_mpmath_integral_oracle_equals_exact_sum():
    for q, sigma, alpha in [(0.01, 1.1, 8), (0.3, 2.0, 20), (0.05, 0.7, 3)]:
        assert mpmath.almosteq(
            mp_log_a_integral(q, sigma, alpha), mp_log_a_sum(q, sigma, alpha), rel_eps=mp.mpf(1e-25)
        )


def _check_fractional(q, sigma, alpha, context):
    want = float(mp_log_a_integral(q, sigma, alpha) / (mp.mpf(alpha) - 1))
    got = compute_rdp(q, sigma, 1, [alpha])[0]
    # rel 1e-8; the series stops once both new terms are < e^-30 ~ 1e-13 (absolute in A)
    tol = 1e-8 * abs(want) + 1e-12 / (alpha - 1)
    assert abs(got - want) <= tol, (
        f"{context} q={q!r} sigma={sigma!r} alpha={alpha!r}: {got!r} vs {want!r}"
    )


def test_fractional_orders_against_mpmath_integral():
    for q, sigma, alpha in [
        (0.01, 1.1, 1.5),
        (0.01, 1.1, 10.9),
        (0.5, 2.0, 5.5),
        (1e-3, 0.7, 3.3),
        (0.3, 5.0, 40.5),
    ]:
        _check_fractional(q, sigma, alpha, "fixed")


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
def test_fractional_orders_against_mpmath_integral_random(seed):
    # q >= 1e-3 and alpha <= 20.9 keep the series well-conditioned (see
    # test_rdp_large_fractional_order_is_never_negative for large fractional orders)
    rng = np.random.default_rng(seed)
    for _ in range(8):
        q, sigma = float(10 ** rng.uniform(-3, 0)), float(rng.uniform(0.5, 10))
        alpha = float(1 + 10 ** rng.uniform(-2, math.log10(19.9)))
        _check_fractional(q, sigma, alpha, f"seed={seed}")


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
def test_large_fractional_orders_are_inf_or_right(seed):
    # where the series cancels (large fractional orders, q >~ 0.05) the kernel answers inf;
    # every finite answer must still be the integral's value (a wrong finite value would be
    # silently small or large; 0 of 132 seen when this test was written)
    rng = np.random.default_rng(seed)
    for _ in range(6):
        q, sigma = float(rng.uniform(0.02, 0.95)), float(10 ** rng.uniform(-0.3, 1.5))
        alpha = float(rng.uniform(20, 256))
        if alpha == int(alpha):
            continue
        got = compute_rdp(q, sigma, 1, [alpha])[0]
        if got != np.inf:
            _check_fractional(q, sigma, alpha, f"seed={seed}")


def test_laplace_rdp_against_mpmath():
    orders = [1.1, 1.5, 2.0, 3.7, 10.0, 63.0]
    for b in (0.5, 1.0, 3.0, 20.0):
        acc = RDPAccountant()
        acc.compose(LaplaceEvent(b), 3)
        got = acc.get_rdp(orders)
        want = [3 * float(mp_laplace_rdp(b, a)) for a in orders]
        np.testing.assert_allclose(got, want, rtol=1e-10, err_msg=f"b={b}")


# --- monotonicity ------------------------------------------------------------------------


def test_rdp_epsilon_monotone():
    d = 1e-5
    by_steps = [rdp_epsilon(0.01, 1.0, k, d) for k in (1, 10, 100, 1000, 10_000)]
    by_q = [rdp_epsilon(q, 1.0, 1000, d) for q in (1e-4, 1e-3, 0.01, 0.1, 0.5)]
    by_sigma = [rdp_epsilon(0.01, s, 1000, d) for s in (0.5, 0.8, 1.0, 2.0, 5.0)]
    assert np.all(np.diff(by_steps) > 0), by_steps
    assert np.all(np.diff(by_q) > 0), by_q
    assert np.all(np.diff(by_sigma) < 0), by_sigma
    assert np.all(np.diff(compute_rdp(0.01, 1.0, 1, DEFAULT_ALPHAS)) > 0)  # ρ(α) increasing


# --- get_privacy_spent -------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_get_privacy_spent_equals_reference(seed):
    rng = np.random.default_rng(seed)
    for _ in range(50):
        m = int(rng.integers(1, 40))
        orders = np.unique(
            np.concatenate(
                [1 + 10 ** rng.uniform(-2, 2.4, m), rng.integers(2, 257, m).astype(np.float64)]
            )
        )
        rdp = compute_rdp(
            float(10 ** rng.uniform(-4, 0)),
            float(rng.uniform(0.3, 10)),
            int(rng.integers(1, 10_000)),
            orders,
        )
        delta = float(10 ** rng.uniform(-12, -1))
        got = get_privacy_spent(orders=orders, rdp=rdp, delta=delta)
        assert got == ref.get_privacy_spent(orders, rdp, delta), f"seed={seed}"
        assert all(isinstance(x, float) for x in got)


def test_get_privacy_spent_equals_opacus():
    opacus_rdp = pytest.importorskip("opacus.accountants.analysis.rdp")
    rng = np.random.default_rng(FRESH)
    for _ in range(30):
        orders = list(
            np.unique(
                np.concatenate(
                    [1 + 10 ** rng.uniform(-2, 1.3, 10), rng.integers(2, 257, 10).astype(float)]
                )
            )
        )
        rdp = compute_rdp(float(10 ** rng.uniform(-4, 0)), float(rng.uniform(0.3, 10)), 100, orders)
        e, o = opacus_rdp.get_privacy_spent(orders=orders, rdp=rdp, delta=1e-6)
        assert get_privacy_spent(orders=orders, rdp=rdp, delta=1e-6) == (e, o), f"seed={FRESH}"


def test_get_privacy_spent_warns_at_extreme_orders():
    orders = [2.0, 4.0, 8.0]
    with pytest.warns(UserWarning, match="smallest"):
        get_privacy_spent(orders=orders, rdp=[0.0, 50.0, 100.0], delta=1e-5)
    with pytest.warns(UserWarning, match="largest"):
        get_privacy_spent(orders=orders, rdp=[100.0, 50.0, 0.0], delta=1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        eps, order = get_privacy_spent(orders=orders, rdp=[10.0, 0.1, 10.0], delta=1e-5)
    assert order == 4.0
    assert eps == pytest.approx(0.1 - (math.log(1e-5) + math.log(4)) / 3 + math.log(3 / 4))


def test_get_privacy_spent_nan_handling():
    # NaN RDP is refused (an epsilon from the other orders would hide it); an infinite
    # order, whose conversion is NaN, is skipped
    with pytest.raises(ValueError, match="rdp must not contain NaN"):
        get_privacy_spent(orders=[2, 3], rdp=[np.nan, 1.0], delta=1e-5)
    eps, order = get_privacy_spent(orders=[np.inf], rdp=[1.0], delta=1e-5)
    assert eps == math.inf and math.isnan(order)


# --- RDPAccountant -----------------------------------------------------------------------


def _random_step_sequence(seed, n=60):
    rng = np.random.default_rng(seed)
    choices = [(1.0, 0.01), (1.5, 0.01), (1.0, 0.02), (0.8, 0.005)]
    seq = []
    while len(seq) < n:
        seq += [choices[int(rng.integers(len(choices)))]] * int(rng.integers(1, 6))
    return seq[:n]


def _run_lengths(seq):
    out = []
    for sigma, q in seq:
        if out and out[-1][:2] == (sigma, q):
            out[-1] = (sigma, q, out[-1][2] + 1)
        else:
            out.append((sigma, q, 1))
    return out


@pytest.mark.parametrize("seed", SEEDS)
def test_rdp_accountant_merges_consecutive_equal_steps(seed):
    seq = _random_step_sequence(seed)
    acc = RDPAccountant()
    for sigma, q in seq:
        acc.step(noise_multiplier=sigma, sample_rate=q)
    assert acc.history == _run_lengths(seq), f"seed={seed}"
    assert len(acc) == len(acc.history)
    want = sum(compute_rdp(q, s, n, DEFAULT_ALPHAS) for s, q, n in acc.history)
    np.testing.assert_array_equal(acc.get_rdp(), want)


@pytest.mark.parametrize("seed", SEEDS)
def test_rdp_accountant_equals_opacus_on_random_histories(seed):
    accountants = pytest.importorskip("opacus.accountants")
    seq = _random_step_sequence(seed)
    ours, theirs = RDPAccountant(), accountants.RDPAccountant()
    for sigma, q in seq:
        ours.step(noise_multiplier=sigma, sample_rate=q)
        theirs.step(noise_multiplier=sigma, sample_rate=q)
    assert ours.history == theirs.history, f"seed={seed}"
    for delta in (1e-3, 1e-5, 1e-9):
        assert ours.get_epsilon(delta) == theirs.get_epsilon(delta), f"seed={seed}"
    alphas = [1.5, 2, 4, 8.5, 16, 32, 64, 128]
    assert ours.get_epsilon(1e-5, alphas=alphas) == theirs.get_epsilon(1e-5, alphas=alphas)
    assert ours.get_privacy_spent(delta=1e-5) == theirs.get_privacy_spent(delta=1e-5)


def test_rdp_accountant_mixed_events_compose_additively():
    acc = RDPAccountant()
    acc.history = [(1.0, 0.01, 100), (2.0, 0.05, 30)]
    acc.compose([(GaussianEvent(4.0), 5), (PoissonSampledEvent(0.02, GaussianEvent(1.2)), 7)])
    acc.compose(LaplaceEvent(10.0), 2)
    orders = np.array(DEFAULT_ALPHAS)
    lap = np.array([float(mp_laplace_rdp(10.0, a)) for a in (orders[0], orders[50], 63.0)])
    want = (
        compute_rdp(0.01, 1.0, 100, orders)
        + compute_rdp(0.05, 2.0, 30, orders)
        + compute_rdp(1.0, 4.0, 5, orders)
        + compute_rdp(0.02, 1.2, 7, orders)
    )
    got = acc.get_rdp()
    lap_got = got - want
    np.testing.assert_allclose(lap_got[[0, 50, -1]], 2 * lap, rtol=1e-9)
    assert len(acc) == 5
    eps = acc.get_epsilon(1e-5)
    assert eps == get_privacy_spent(orders=orders, rdp=got, delta=1e-5)[0]


def test_rdp_accountant_empty_and_state_dict():
    acc = RDPAccountant()
    assert acc.get_epsilon(1e-5) == 0.0
    assert acc.get_privacy_spent(delta=1e-5) == (0.0, 0.0)
    np.testing.assert_array_equal(acc.get_rdp([2.0, 3.0]), [0.0, 0.0])
    assert create_accountant("rdp").mechanism() == "rdp"
    assert create_accountant("prv").mechanism() == "prv"
    acc.step(noise_multiplier=1.0, sample_rate=0.01)
    acc.compose(LaplaceEvent(5.0))
    clone = RDPAccountant()
    clone.load_state_dict(acc.state_dict())
    assert clone.get_epsilon(1e-5) == acc.get_epsilon(1e-5)
    with pytest.raises(ValueError, match="accountant"):
        PRVAccountant().load_state_dict(acc.state_dict())
