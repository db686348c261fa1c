"""The accounting API's contract: every bad argument is refused with an exception that
names the parameter, unexpected keywords are refused, and the package re-exports its
public names (and the budget's).

Bugs found while writing these tests are kept as regression tests: non-numeric ``rdp``.
"""

from __future__ import annotations

import math

import pytest

import ppml_fast
from ppml_fast import accounting
from ppml_fast.accounting import (
    GaussianEvent,
    LaplaceEvent,
    PoissonSampledEvent,
    PRVAccountant,
    RDPAccountant,
    compose,
    compute_rdp,
    create_accountant,
    get_max_steps,
    get_noise_multiplier,
    get_privacy_spent,
)

pytestmark = [
    pytest.mark.filterwarnings("ignore:the optimal RDP order:UserWarning"),
    pytest.mark.filterwarnings("ignore:Optimal order is the:UserWarning"),  # Opacus' wording
]


# --- bad input ---------------------------------------------------------------------------


G = GaussianEvent(1.0)

BAD_INPUT = [
    # compute_rdp
    (lambda: compute_rdp(1.5, 1.0, 1, [2.0]), ValueError, "q"),
    (lambda: compute_rdp(-0.1, 1.0, 1, [2.0]), ValueError, "q"),
    (lambda: compute_rdp(math.nan, 1.0, 1, [2.0]), ValueError, "q"),
    (lambda: compute_rdp("0.1", 1.0, 1, [2.0]), TypeError, "q"),
    (lambda: compute_rdp(0.1, -1.0, 1, [2.0]), ValueError, "noise_multiplier"),
    (lambda: compute_rdp(0.1, math.nan, 1, [2.0]), ValueError, "noise_multiplier"),
    (lambda: compute_rdp(0.1, math.inf, 1, [2.0]), ValueError, "noise_multiplier"),
    (lambda: compute_rdp(0.1, None, 1, [2.0]), TypeError, "noise_multiplier"),
    (lambda: compute_rdp(0.1, 1.0, -1, [2.0]), ValueError, "steps"),
    (lambda: compute_rdp(0.1, 1.0, math.nan, [2.0]), ValueError, "steps"),
    (lambda: compute_rdp(0.1, 1.0, "3", [2.0]), TypeError, "steps"),
    (lambda: compute_rdp(0.1, 1.0, True, [2.0]), TypeError, "steps"),
    (lambda: compute_rdp(0.1, 1.0, 1, []), ValueError, "orders"),
    (lambda: compute_rdp(0.1, 1.0, 1, [1.0]), ValueError, "orders"),
    (lambda: compute_rdp(0.1, 1.0, 1, [0.5, 2.0]), ValueError, "orders"),
    (lambda: compute_rdp(0.1, 1.0, 1, [2.0, math.nan]), ValueError, "orders"),
    (lambda: compute_rdp(0.1, 1.0, 1, [-math.inf]), ValueError, "orders"),
    (lambda: compute_rdp(0.1, 1.0, 1, [[2.0, 3.0]]), ValueError, "orders"),
    (lambda: compute_rdp(0.1, 1.0, 1, "23"), TypeError, "orders"),
    (lambda: compute_rdp(0.1, 1.0, 1, ["2"]), TypeError, "orders"),
    (lambda: compute_rdp(0.1, 1.0, 1, [2 + 1j]), TypeError, "orders"),
    (lambda: compute_rdp(0.1, 1.0, 1, None), TypeError, "orders"),
    # get_privacy_spent
    (lambda: get_privacy_spent(orders=[2.0], rdp=[1.0], delta=0.0), ValueError, "delta"),
    (lambda: get_privacy_spent(orders=[2.0], rdp=[1.0], delta=1.0), ValueError, "delta"),
    (lambda: get_privacy_spent(orders=[2.0], rdp=[1.0], delta=math.nan), ValueError, "delta"),
    (lambda: get_privacy_spent(orders=[2.0], rdp=[1.0], delta="1e-5"), TypeError, "delta"),
    (lambda: get_privacy_spent(orders=[2.0, 3.0], rdp=[1.0], delta=1e-5), ValueError, "rdp"),
    (lambda: get_privacy_spent(orders=[1.0], rdp=[1.0], delta=1e-5), ValueError, "orders"),
    (lambda: get_privacy_spent(orders=[], rdp=[], delta=1e-5), ValueError, "orders"),
    (lambda: get_privacy_spent(orders=[2.0], rdp=[-1.0], delta=1e-5), ValueError, "rdp"),
    (lambda: get_privacy_spent(orders=[2.0], rdp=[[1.0]], delta=1e-5), ValueError, "rdp"),
    (lambda: get_privacy_spent(orders="2", rdp=[1.0], delta=1e-5), TypeError, "orders"),
    # RDPAccountant / PRVAccountant recording
    (
        lambda: RDPAccountant().step(noise_multiplier=-1.0, sample_rate=0.1),
        ValueError,
        "noise_multiplier",
    ),
    (
        lambda: RDPAccountant().step(noise_multiplier=math.nan, sample_rate=0.1),
        ValueError,
        "noise_multiplier",
    ),
    (
        lambda: RDPAccountant().step(noise_multiplier=1.0, sample_rate=1.5),
        ValueError,
        "sample_rate",
    ),
    (lambda: RDPAccountant().step(noise_multiplier=1.0, sample_rate="a"), TypeError, "sample_rate"),
    (
        lambda: PRVAccountant().step(noise_multiplier=1.0, sample_rate=-0.5),
        ValueError,
        "sample_rate",
    ),
    (lambda: RDPAccountant().get_epsilon(0.0), ValueError, "delta"),
    (lambda: RDPAccountant().compose(G, -1), ValueError, "count"),
    (lambda: RDPAccountant().compose([(G, 1.5)]), TypeError, "count"),
    (lambda: RDPAccountant().compose("x"), TypeError, "events"),
    (lambda: RDPAccountant().compose([(LaplaceEvent(1.0),)]), TypeError, "events"),
    # get_noise_multiplier
    (
        lambda: get_noise_multiplier(
            target_epsilon=0.0, target_delta=1e-5, sample_rate=0.1, steps=10
        ),
        ValueError,
        "target_epsilon",
    ),
    (
        lambda: get_noise_multiplier(
            target_epsilon=math.nan, target_delta=1e-5, sample_rate=0.1, steps=10
        ),
        ValueError,
        "target_epsilon",
    ),
    (
        lambda: get_noise_multiplier(
            target_epsilon=1.0, target_delta=1.0, sample_rate=0.1, steps=10
        ),
        ValueError,
        "target_delta",
    ),
    (
        lambda: get_noise_multiplier(
            target_epsilon=1.0, target_delta=1e-5, sample_rate=1.5, steps=10
        ),
        ValueError,
        "sample_rate",
    ),
    (
        lambda: get_noise_multiplier(
            target_epsilon=1.0, target_delta=1e-5, sample_rate=0.0, steps=10
        ),
        ValueError,
        "sample_rate",
    ),
    (
        lambda: get_noise_multiplier(
            target_epsilon=1.0, target_delta=1e-5, sample_rate=0.1, steps=0
        ),
        ValueError,
        "steps",
    ),
    (
        lambda: get_noise_multiplier(
            target_epsilon=1.0, target_delta=1e-5, sample_rate=0.1, steps=2.5
        ),
        TypeError,
        "steps",
    ),
    (
        lambda: get_noise_multiplier(
            target_epsilon=1.0, target_delta=1e-5, sample_rate=0.1, epochs=-1
        ),
        ValueError,
        "epochs",
    ),
    (
        lambda: get_noise_multiplier(
            target_epsilon=1.0, target_delta=1e-5, sample_rate=0.1, steps=10, epsilon_tolerance=0
        ),
        ValueError,
        "epsilon_tolerance",
    ),
    (
        lambda: get_noise_multiplier(
            target_epsilon=1.0, target_delta=1e-5, sample_rate=0.1, steps=10, accountant="gdp"
        ),
        ValueError,
        "accountant",
    ),
    # get_max_steps
    (
        lambda: get_max_steps(
            target_epsilon=-1.0, target_delta=1e-5, sample_rate=0.1, noise_multiplier=1.0
        ),
        ValueError,
        "target_epsilon",
    ),
    (
        lambda: get_max_steps(
            target_epsilon=1.0, target_delta=0.0, sample_rate=0.1, noise_multiplier=1.0
        ),
        ValueError,
        "target_delta",
    ),
    (
        lambda: get_max_steps(
            target_epsilon=1.0, target_delta=1e-5, sample_rate=-0.1, noise_multiplier=1.0
        ),
        ValueError,
        "sample_rate",
    ),
    (
        lambda: get_max_steps(
            target_epsilon=1.0, target_delta=1e-5, sample_rate=0.1, noise_multiplier=-1.0
        ),
        ValueError,
        "noise_multiplier",
    ),
    (
        lambda: get_max_steps(
            target_epsilon=1.0,
            target_delta=1e-5,
            sample_rate=0.1,
            noise_multiplier=1.0,
            max_steps=0,
        ),
        ValueError,
        "max_steps",
    ),
    # PRVAccountant queries
    (lambda: PRVAccountant().get_epsilon(0.0), ValueError, "delta"),
    (lambda: PRVAccountant().get_epsilon(1.5), ValueError, "delta"),
    (lambda: PRVAccountant().get_epsilon(math.nan), ValueError, "delta"),
    (lambda: PRVAccountant().get_epsilon("1e-5"), TypeError, "delta"),
    (lambda: PRVAccountant().get_epsilon(1e-5, eps_error=0.0), ValueError, "eps_error"),
    (lambda: PRVAccountant().get_epsilon(1e-5, eps_error=-0.1), ValueError, "eps_error"),
    (lambda: PRVAccountant().get_epsilon(1e-5, delta_error=1e-5), ValueError, "delta_error"),
    (lambda: PRVAccountant().get_epsilon(1e-5, delta_error=0.0), ValueError, "delta_error"),
    (lambda: PRVAccountant().get_delta(-1.0), ValueError, "epsilon"),
    (lambda: PRVAccountant().get_delta(math.nan), ValueError, "epsilon"),
    (lambda: PRVAccountant().get_delta(math.inf), ValueError, "epsilon"),
    (lambda: PRVAccountant().get_delta("1"), TypeError, "epsilon"),
    (lambda: PRVAccountant().get_delta(1.0, delta_error=1.0), ValueError, "delta_error"),
    (lambda: PRVAccountant().get_delta(1.0, eps_error=0), ValueError, "eps_error"),
    (lambda: compose([G], delta=2.0), ValueError, "delta"),
    (lambda: create_accountant("gdp"), ValueError, "accountant"),
    # events
    (lambda: GaussianEvent(-1.0), ValueError, "noise_multiplier"),
    (lambda: GaussianEvent(math.nan), ValueError, "noise_multiplier"),
    (lambda: GaussianEvent("1"), TypeError, "noise_multiplier"),
    (lambda: LaplaceEvent(0.0), ValueError, "noise_multiplier"),
    (lambda: LaplaceEvent(math.inf), ValueError, "noise_multiplier"),
    (lambda: PoissonSampledEvent(1.5, G), ValueError, "sample_rate"),
    (lambda: PoissonSampledEvent(math.nan, G), ValueError, "sample_rate"),
    (lambda: PoissonSampledEvent(0.5, LaplaceEvent(1.0)), TypeError, "event"),
]


@pytest.mark.parametrize(("call", "exc", "name"), BAD_INPUT)
def test_bad_input_names_the_parameter(call, exc, name):
    with pytest.raises(exc, match=rf"\b{name}\b"):
        call()


@pytest.mark.parametrize("rdp", ["x", None, [1 + 1j]])
def test_get_privacy_spent_rejects_non_numeric_rdp(rdp):
    # regression: rdp='x' raised numpy's "could not convert string to float" and rdp=None
    # silently became NaN, returning (inf, nan)
    with pytest.raises((TypeError, ValueError), match="rdp"):
        get_privacy_spent(orders=[2.0], rdp=rdp, delta=1e-5)


def test_unexpected_keyword_arguments_are_refused():
    with pytest.raises(TypeError):
        RDPAccountant().get_epsilon(1e-5, eps_error=0.01)
    with pytest.raises(TypeError):
        PRVAccountant().get_epsilon(1e-5, alphas=[2.0])


# --- re-exports --------------------------------------------------------------------------


def test_budget_reexports():
    from ppml_fast.accounting import PrivacyBudget, PrivacyBudgetExhausted

    assert PrivacyBudgetExhausted is ppml_fast.PrivacyBudgetExhausted
    assert PrivacyBudget(1.0).remaining[0] == 1.0


PUBLIC_NAMES = {
    "DEFAULT_ALPHAS",
    "DeltaBounds",
    "EpsilonBounds",
    "Event",
    "GaussianEvent",
    "LaplaceEvent",
    "MAX_GRID",
    "MAX_ORDER",
    "MAX_SIGMA",
    "Number",
    "PRVAccountant",
    "PoissonSampledEvent",
    "PrivacyBudget",
    "PrivacyBudgetExhausted",
    "RDPAccountant",
    "compose",
    "compute_rdp",
    "create_accountant",
    "get_max_steps",
    "get_noise_multiplier",
    "get_privacy_spent",
}


def test_every_public_name_is_importable_from_the_package():
    assert PUBLIC_NAMES <= set(dir(accounting)), PUBLIC_NAMES - set(dir(accounting))
    assert set(accounting.__all__) <= PUBLIC_NAMES
    assert accounting.RDPAccountant.DEFAULT_ALPHAS is accounting.DEFAULT_ALPHAS
