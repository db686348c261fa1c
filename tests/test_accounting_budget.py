"""PrivacyBudget: basic sums equal math.fsum, advanced composition against a 50-digit mpmath
oracle, counts against brute-force loops, refusals leave the state unchanged, threads never
overspend, and every bad argument raises the right error naming the parameter.

No randomness: the "random" histories use fixed seeds.
"""

from __future__ import annotations

import math
import random
import sys
import threading
from fractions import Fraction

import mpmath
import numpy as np
import pytest

import ppml_fast
from ppml_fast.accounting.budget import PrivacyBudget

mp = mpmath.mp.clone()
mp.dps = 50


def adv_eps(epsilons, slack):
    """ε of heterogeneous advanced composition (DRV 2010), at 50 digits from the exact floats."""
    e = [mp.mpf(x) for x in epsilons]
    return mp.sqrt(2 * mp.log(1 / mp.mpf(slack)) * mp.fsum(x * x for x in e)) + mp.fsum(
        x * mp.expm1(x) for x in e
    )


def advanced(epsilon=1.0, delta=1e-5, slack=1e-6):
    return PrivacyBudget(epsilon, delta, composition="advanced", delta_slack=slack)


def state(budget):
    return budget.spent, budget.remaining, budget.history, len(budget), repr(budget)


def spend_until_refused(budget, epsilon, delta=0.0, limit=100_000):
    n = 0
    while n < limit:
        try:
            budget.spend(epsilon, delta)
        except ppml_fast.PrivacyBudgetExhausted:
            return n
        n += 1
    raise AssertionError(f"still spending after {limit} spends")


# --- basic composition -------------------------------------------------------------------


def test_basic_sums_history_and_len():
    b = PrivacyBudget(2.0, 1e-5)
    assert b.spend(0.3, 1e-6) is None
    b.spend(0.2)
    b.spend(np.float32(0.5), np.float64(2e-6))
    assert len(b) == 3
    assert b.history == [(0.3, 1e-6), (0.2, 0.0), (float(np.float32(0.5)), 2e-6)]
    assert b.spent == (math.fsum([0.3, 0.2, 0.5]), math.fsum([1e-6, 2e-6]))
    assert b.remaining == (2.0 - b.spent[0], 1e-5 - b.spent[1])
    history = b.history
    history.append((9.0, 0.0))
    assert len(b.history) == 3  # a copy


@pytest.mark.parametrize("composition", ["basic", "advanced"])
def test_spent_equals_fsum_of_history(composition):
    rng = random.Random(12345)
    b = PrivacyBudget(
        1e6, 0.5, composition=composition, delta_slack=0.1 if composition == "advanced" else None
    )
    eps = [rng.uniform(0, 10) * 10 ** rng.randint(-12, 2) for _ in range(2000)]
    dlt = [rng.uniform(0, 1e-4) * 10 ** -rng.randint(0, 12) for _ in range(2000)]
    for e, d in zip(eps, dlt, strict=True):
        b.spend(e, d)
    assert b.spent == (math.fsum(eps), math.fsum(dlt))
    assert b.history == list(zip(eps, dlt, strict=True))


def test_ten_tenths_fit_and_an_eleventh_spend_does_not():
    b = PrivacyBudget(1.0)
    for _ in range(10):
        b.spend(0.1)
    assert b.spent == (1.0, 0.0)
    assert b.remaining == (0.0, 0.0)
    for eps in (0.1, 1e-9, 2e-16):
        assert not b.can_spend(eps)
        with pytest.raises(ppml_fast.PrivacyBudgetExhausted):
            b.spend(eps)
    assert len(b) == 10
    b.spend(0.0)  # zero-ε releases are free but counted
    assert len(b) == 11 and b.spent == (1.0, 0.0)


def test_total_is_rounded_once_like_fsum():
    # The exact total of ten 0.1s is 1 + 5.55e-17; a spend that leaves it below the rounding
    # tie 1 + 2**-53 (which rounds to even, 1.0) still composes to 1.0 and fits.
    b = PrivacyBudget(1.0)
    for _ in range(10):
        b.spend(0.1)
    exact = sum(Fraction(0.1) for _ in range(10))
    brute = math.floor((1 + Fraction(1, 2**53) - exact) * 2**1074)
    assert b.max_spends(5e-324) == brute
    assert math.fsum([0.1] * 10 + [5e-324]) == 1.0 and b.can_spend(5e-324)


def test_rounded_total_is_compared_without_tolerance():
    # fsum(3 × 0.1) = 0.30000000000000004 > 0.3: refused although the decimal sum is 0.3.
    b = PrivacyBudget(0.3)
    b.spend(0.1)
    b.spend(0.1)
    assert not b.can_spend(0.1)
    assert b.can_spend(0.3 - 0.2)  # the float that rounds the total to 0.3 exactly


def test_max_spends_rounds_the_exact_total_once():
    # k × 2**-1074 rounds to 1.0 up to k = 2**1074 + 2**1021 (the tie 1 + 2**-53 goes to even)
    assert PrivacyBudget(1.0).max_spends(5e-324) == 2**1074 + 2**1021


def test_overflowing_total_is_refused_not_an_error():
    b = PrivacyBudget(1.7e308)
    b.spend(1.7e308)
    assert not b.can_spend(1.7e308)
    with pytest.raises(ppml_fast.PrivacyBudgetExhausted):
        b.spend(1.7e308)
    assert b.spent == (1.7e308, 0.0)


# --- refusal leaves state unchanged ------------------------------------------------------


@pytest.mark.parametrize("composition", ["basic", "advanced"])
def test_refused_spend_leaves_state_unchanged(composition):
    b = advanced() if composition == "advanced" else PrivacyBudget(1.0, 1e-5)
    for _ in range(40):
        b.spend(0.02, 1e-7)
    before = state(b)
    for eps, delta in [(0.9, 0.0), (0.0, 1e-5), (5.0, 0.5)]:
        assert not b.can_spend(eps, delta)
        with pytest.raises(ppml_fast.PrivacyBudgetExhausted):
            b.spend(eps, delta)
        assert state(b) == before
    assert b.max_spends(0.02, 1e-7) >= 1
    assert state(b) == before


def test_refusal_message_says_asked_left_and_rule():
    b = PrivacyBudget(1.0)
    b.spend(0.75)
    with pytest.raises(ppml_fast.PrivacyBudgetExhausted) as info:
        b.spend(0.5)
    msg = str(info.value)
    assert "epsilon=0.5" in msg and "remaining (epsilon=0.25, delta=0.0)" in msg
    assert "basic composition" in msg and "(1.25, 0.0)" in msg
    a = advanced()
    with pytest.raises(ppml_fast.PrivacyBudgetExhausted, match=r"advanced composition"):
        a.spend(2.0)


def test_exhausted_is_a_ppml_error():
    assert issubclass(ppml_fast.PrivacyBudgetExhausted, ppml_fast.PPMLError)
    with pytest.raises(ppml_fast.PPMLError):
        PrivacyBudget(1.0).spend(2.0)


# --- δ handling --------------------------------------------------------------------------


def test_pure_dp_budget_refuses_any_delta():
    b = PrivacyBudget(1.0)
    for delta in (1e-300, 1e-10, 0.5):
        assert not b.can_spend(0.0, delta)
        with pytest.raises(ppml_fast.PrivacyBudgetExhausted):
            b.spend(0.1, delta)
    assert b.max_spends(0.1, 1e-9) == 0
    assert len(b) == 0


def test_delta_is_summed_and_bounded():
    b = PrivacyBudget(100.0, 1e-5)
    brute = max(k for k in range(100) if math.fsum([1e-6] * k) <= 1e-5)
    assert b.max_spends(0.0, 1e-6) == brute
    assert spend_until_refused(b, 0.0, 1e-6) == brute
    assert b.spent == (0.0, math.fsum([1e-6] * brute))


def test_slack_equal_to_delta_leaves_no_delta_for_advanced():
    b = advanced(delta=1e-6, slack=1e-6)
    for _ in range(150):  # basic fits for the first 100 releases only; then advanced, δ = δ'
        b.spend(0.01)
    assert b.spent[1] == 1e-6
    assert b.can_spend(0.01)
    assert not b.can_spend(0.01, 1e-12)
    assert PrivacyBudget(1.0, 1e-6).can_spend(0.01, 1e-12)


# --- advanced composition ----------------------------------------------------------------


def test_advanced_reports_basic_while_basic_fits():
    b = advanced()
    b.spend(0.5, 1e-6)
    assert b.spent == (0.5, 1e-6)


@pytest.mark.parametrize("slack", [1e-6, 1e-9, 0.3])
@pytest.mark.parametrize("eps", [0.01, 0.03, 0.1])
def test_advanced_homogeneous_against_mpmath(eps, slack):
    b = advanced(delta=0.5, slack=slack)
    k = b.max_spends(eps)
    for _ in range(k):
        b.spend(eps)
    oracle = adv_eps([eps] * k, slack)
    if math.fsum([eps] * k) <= 1.0:  # basic fits and is reported
        assert b.spent == (math.fsum([eps] * k), 0.0)
    else:
        assert b.spent[0] == pytest.approx(float(oracle), rel=1e-14)
        assert b.spent[1] == slack
        assert oracle <= 1 + 1e-14
    assert adv_eps([eps] * (k + 1), slack) > 1 - 1e-14
    assert math.fsum([eps] * (k + 1)) > 1.0


def test_advanced_heterogeneous_against_mpmath():
    rng = random.Random(7)
    b = advanced(delta=1e-5, slack=1e-7)
    eps = [rng.uniform(0, 0.02) for _ in range(150)]
    dlt = [rng.choice([0.0, 1e-8]) for _ in range(150)]
    for e, d in zip(eps, dlt, strict=True):
        b.spend(e, d)
    assert math.fsum(eps) > 1.0  # basic does not fit
    assert b.spent[0] == pytest.approx(float(adv_eps(eps, 1e-7)), rel=1e-14)
    assert b.spent[1] == math.fsum([*dlt, 1e-7])
    assert b.remaining == (1.0 - b.spent[0], 1e-5 - b.spent[1])


def test_advanced_allows_more_small_spends_than_basic():
    eps, slack = 0.01, 1e-6

    def fits(k):  # independent: mpmath at 50 digits, basic or advanced
        return mp.mpf(eps) * k <= 1 or adv_eps([eps] * k, slack) <= 1

    brute = 0
    while fits(brute + 1):
        brute += 1
    assert brute > 100
    # the boundary is far from rounding, so the float computation must agree exactly
    assert abs(adv_eps([eps] * brute, slack) - 1) > 1e-10
    assert abs(adv_eps([eps] * (brute + 1), slack) - 1) > 1e-10
    assert PrivacyBudget(1.0, 1e-5).max_spends(eps) == 100
    assert spend_until_refused(PrivacyBudget(1.0, 1e-5), eps) == 100
    assert advanced().max_spends(eps) == brute
    assert spend_until_refused(advanced(), eps) == brute


def test_tiny_epsilons_do_not_underflow_to_a_free_advanced_bound():
    # ε_i² = 1e-340 underflows in floats; the bound must still grow like √k.
    eps, slack = 1e-170, 1e-6
    b = advanced(epsilon=40e-170, slack=slack)
    brute = 0
    while mp.mpf(eps) * (brute + 1) <= mp.mpf(40e-170) or adv_eps(
        [eps] * (brute + 1), slack
    ) <= mp.mpf(40e-170):
        brute += 1
    assert brute > 40
    assert b.max_spends(eps) == brute
    assert spend_until_refused(b, eps) == brute
    assert b.spent[0] == pytest.approx(float(adv_eps([eps] * brute, slack)), rel=1e-14)
    assert 0 < b.spent[0] <= 40e-170
    # k identical spends: a·s² + b·s = 1 at the boundary, with s = √k, a = ε(e^ε − 1) and
    # b = ε√(2 ln(1/δ')); k ≈ 3.4e338, so compare relatively
    a = mp.mpf(eps) * mp.expm1(mp.mpf(eps))
    b_ = mp.mpf(eps) * mp.sqrt(2 * mp.log(1 / mp.mpf(slack)))
    root = (-b_ + mp.sqrt(b_**2 + 4 * a)) / (2 * a)
    assert abs(advanced().max_spends(eps) / root**2 - 1) < 1e-12


def test_huge_epsilon_makes_advanced_infinite_not_an_error():
    b = advanced(epsilon=1e300)
    b.spend(800.0)  # e^800 overflows: the advanced bound is inf, basic still fits
    assert b.spent == (800.0, 0.0)
    brute = max(k for k in range(20) if math.fsum([800.0] + [1e299] * k) <= 1e300)
    assert b.max_spends(1e299) == brute
    assert spend_until_refused(b, 1e299) == brute


# --- max_spends --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "history", "eps", "delta"),
    [
        (lambda: PrivacyBudget(1.0), [], 0.1, 0.0),
        (lambda: PrivacyBudget(1.0), [(0.35, 0.0)], 0.07, 0.0),
        (lambda: PrivacyBudget(3.0, 1e-4), [(0.5, 1e-5)], 0.05, 3e-6),
        (lambda: PrivacyBudget(1.0, 1e-5), [], 0.0, 1e-7),
        (lambda: advanced(), [], 0.005, 0.0),
        (lambda: advanced(), [(0.3, 1e-6)], 0.004, 1e-8),
        (lambda: advanced(2.0, 1e-3, 1e-4), [(1.0, 0.0)], 0.2, 1e-5),
        (lambda: advanced(), [(1.0, 0.0)], 0.1, 0.0),
    ],
)
def test_max_spends_agrees_with_spending_until_refused(make, history, eps, delta):
    b = make()
    for e, d in history:
        b.spend(e, d)
    k = b.max_spends(eps, delta)
    assert spend_until_refused(b, eps, delta) == k
    assert b.max_spends(eps, delta) == 0


def test_max_spends_rejects_free_spends():
    with pytest.raises(ValueError, match=r"epsilon and delta cannot both be 0"):
        PrivacyBudget(1.0).max_spends(0.0, 0.0)


# --- threads -----------------------------------------------------------------------------


@pytest.mark.parametrize("composition", ["basic", "advanced"])
def test_threads_never_overspend(composition):
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        b = advanced() if composition == "advanced" else PrivacyBudget(1.0)
        eps = 1 / 64 if composition == "basic" else 0.01
        expected = b.max_spends(eps)
        n_threads, attempts = 8, 100
        assert n_threads * attempts > expected
        successes = [0] * n_threads
        barrier = threading.Barrier(n_threads)

        def worker(i):
            barrier.wait()
            for _ in range(attempts):
                try:
                    b.spend(eps)
                except ppml_fast.PrivacyBudgetExhausted:
                    continue
                successes[i] += 1

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(n_threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(old)
    assert sum(successes) == expected == len(b)
    assert b.spent[0] <= 1.0
    assert not b.can_spend(eps)


# --- configuration, repr -----------------------------------------------------------------


def test_properties_and_repr():
    b = advanced(1.5, 1e-5, 1e-6)
    assert (b.epsilon, b.delta, b.composition, b.delta_slack) == (1.5, 1e-5, "advanced", 1e-6)
    b.spend(0.25)
    assert repr(b) == (
        "PrivacyBudget(epsilon=1.5, delta=1e-05, composition='advanced', "
        "delta_slack=1e-06; spent=(0.25, 0.0), spends=1)"
    )
    assert PrivacyBudget(2).delta_slack is None
    assert "composition='basic'; spent=(0.0, 0.0), spends=0" in repr(PrivacyBudget(2))


# --- bad input ---------------------------------------------------------------------------

BAD_EPSILON = [
    ("1.0", TypeError, r"^epsilon must be a real number"),
    (None, TypeError, r"^epsilon must be a real number"),
    (True, TypeError, r"^epsilon must be a real number"),
    (1j, TypeError, r"^epsilon must be a real number"),
    (math.nan, ValueError, r"^epsilon must be finite"),
    (math.inf, ValueError, r"^epsilon must be finite"),
    (-1.0, ValueError, r"^epsilon must be (>|>=) 0, got -1.0"),
]
BAD_DELTA = [
    ("0", TypeError, r"^delta must be a real number"),
    (None, TypeError, r"^delta must be a real number"),
    (math.nan, ValueError, r"^delta must be finite"),
    (-math.inf, ValueError, r"^delta must be finite"),
    (-0.1, ValueError, r"^delta must be in \[0, 1\), got -0.1"),
    (1.0, ValueError, r"^delta must be in \[0, 1\), got 1.0"),
]


@pytest.mark.parametrize(("value", "error", "match"), BAD_EPSILON)
def test_bad_budget_epsilon(value, error, match):
    with pytest.raises(error, match=match):
        PrivacyBudget(value)


def test_zero_budget_epsilon():
    with pytest.raises(ValueError, match=r"^epsilon must be > 0, got 0.0"):
        PrivacyBudget(0.0)


@pytest.mark.parametrize(("value", "error", "match"), BAD_DELTA)
def test_bad_budget_delta(value, error, match):
    with pytest.raises(error, match=match):
        PrivacyBudget(1.0, value)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"composition": 1}, TypeError, r"^composition must be a str, got int"),
        ({"composition": "rdp"}, ValueError, r"^composition must be 'basic' or 'advanced'"),
        ({"composition": "advanced"}, ValueError, r"^delta_slack is required"),
        ({"delta_slack": 1e-6}, ValueError, r"^delta_slack must be None"),
        ({"composition": "advanced", "delta_slack": "x"}, TypeError, r"^delta_slack must be a"),
        ({"composition": "advanced", "delta_slack": math.nan}, ValueError, r"^delta_slack must"),
        ({"composition": "advanced", "delta_slack": 0.0}, ValueError, r"^delta_slack .* \(0, 1\)"),
        ({"composition": "advanced", "delta_slack": -1e-6}, ValueError, r"^delta_slack .* \(0,"),
        ({"composition": "advanced", "delta_slack": 1.0}, ValueError, r"^delta_slack .* \(0, 1"),
        (
            {"composition": "advanced", "delta_slack": 2e-5},
            ValueError,
            r"^delta_slack must be <= delta \(1e-05\), got 2e-05",
        ),
    ],
)
def test_bad_composition_or_slack(kwargs, error, match):
    with pytest.raises(error, match=match):
        PrivacyBudget(1.0, 1e-5, **kwargs)


def test_pure_dp_budget_cannot_use_advanced_composition():
    with pytest.raises(ValueError, match=r"^delta_slack must be <= delta \(0.0\)"):
        PrivacyBudget(1.0, composition="advanced", delta_slack=1e-6)


@pytest.mark.parametrize("method", ["spend", "can_spend", "max_spends"])
@pytest.mark.parametrize(("value", "error", "match"), BAD_EPSILON)
def test_bad_spend_epsilon(method, value, error, match):
    b = PrivacyBudget(1.0, 1e-5)
    with pytest.raises(error, match=match):
        getattr(b, method)(value)
    assert len(b) == 0


@pytest.mark.parametrize("method", ["spend", "can_spend", "max_spends"])
@pytest.mark.parametrize(("value", "error", "match"), BAD_DELTA)
def test_bad_spend_delta(method, value, error, match):
    b = PrivacyBudget(1.0, 1e-5)
    with pytest.raises(error, match=match):
        getattr(b, method)(0.1, value)
    assert len(b) == 0
