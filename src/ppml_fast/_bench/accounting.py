"""Benchmark rows for :mod:`ppml_fast.accounting` at the issue's DP-SGD setting: sampling
rate q = 0.01, noise multiplier σ = 1.1, 10,000 steps, δ = 1e-5.

Native is ppml_fast; the reference is the pure-Python oracle
``ppml_fast.reference.accounting`` when it is there (its ``compute_rdp`` /
``get_privacy_spent``, and its ``prv_epsilon`` / ``prv_delta`` on the same grid; it has no
noise calibration, so that row has no reference); peers are Opacus (``compute_rdp`` /
``get_privacy_spent``, ``get_noise_multiplier``, ``PRVAccountant``) and dp_accounting's
``PLDAccountant`` when installed.

Every call does the whole computation: the native RDP rows clear the per-(q, σ, orders)
cache of ``compute_rdp`` first, and the PRV rows build a fresh accountant (it keeps its
discretisation). The optimal-order ``UserWarning`` is silenced inside the timed calls.

The PRV ``get_epsilon`` query has two targets, one per peer, and a case carries one
target, so it has two rows: one against Opacus' PRV accountant and one against
dp_accounting's PLD accountant (a different discretisation of the same privacy loss,
with its default ``value_discretization_interval`` of 1e-4).
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable
from functools import partial
from types import ModuleType
from typing import Any

from .. import accounting
from ..accounting import rdp as accounting_rdp
from . import Case, Target

_ref: ModuleType | None
try:  # the oracle is optional here: without it the rows have no reference column
    _ref = importlib.import_module("ppml_fast.reference.accounting")
except ImportError:
    _ref = None

Q, SIGMA, STEPS, DELTA = 0.01, 1.1, 10_000, 1e-5
TARGET_EPSILON = 8.0
EPSILON = 5.19  # for the get_delta row: about the ε of this setting at δ = 1e-5
SIZE = "q=0.01 σ=1.1 T=1e4 δ=1e-5"

Call = Callable[[], Any]


def _quiet(fn: Call) -> Call:
    """``fn`` with UserWarnings (the optimal-order warning of the RDP conversion) silenced."""

    def call() -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return fn()

    return call


def _clearing(fn: Call) -> Call:
    """``fn`` after clearing ppml_fast's RDP cache, so that each call computes the RDP."""

    def call() -> Any:
        accounting_rdp._rdp_cached.cache_clear()
        return fn()

    return call


def _rdp_epsilon(mod: Any) -> tuple[float, float]:
    """compute_rdp + get_privacy_spent over Opacus' 151 default orders, Opacus' keywords."""
    orders = accounting.DEFAULT_ALPHAS
    rdp = mod.compute_rdp(q=Q, noise_multiplier=SIGMA, steps=STEPS, orders=orders)
    return mod.get_privacy_spent(orders=orders, rdp=rdp, delta=DELTA)


def _calibrate(get_noise_multiplier: Callable[..., float]) -> Call:
    return partial(
        get_noise_multiplier,
        target_epsilon=TARGET_EPSILON,
        target_delta=DELTA,
        sample_rate=Q,
        steps=STEPS,
    )


def _prv(accountant: Any, query: str, value: float) -> float:
    """A fresh Opacus-style accountant with one history entry, then ``query(value)``."""
    acc = accountant()
    acc.history = [(SIGMA, Q, STEPS)]
    return getattr(acc, query)(value)


def _opacus() -> dict[str, Any]:
    """Opacus' RDP module, its ``get_noise_multiplier`` and ``PRVAccountant``, if installed."""
    try:
        from opacus.accountants import PRVAccountant
        from opacus.accountants.analysis import rdp
        from opacus.accountants.utils import get_noise_multiplier
    except ImportError:
        return {}
    return {
        "rdp": rdp,
        "get_noise_multiplier": get_noise_multiplier,
        "PRVAccountant": PRVAccountant,
    }


def _pld(query: str, value: float) -> Call | None:
    """dp_accounting's PLD accountant on the same composition, fresh each call."""
    try:
        import dp_accounting
        from dp_accounting.pld.pld_privacy_accountant import PLDAccountant
    except ImportError:
        return None
    event = dp_accounting.SelfComposedDpEvent(
        dp_accounting.PoissonSampledDpEvent(Q, dp_accounting.GaussianDpEvent(SIGMA)), STEPS
    )

    def call() -> float:
        acc = PLDAccountant()
        acc.compose(event)
        return float(getattr(acc, query)(value))

    return call


def _reference(name: str) -> Callable[..., Any] | None:
    """The oracle's function ``name``, when the oracle is there and has it."""
    return None if _ref is None else getattr(_ref, name, None)


def cases(full: bool) -> list[Case]:
    """The five rows (the same with and without ``full``: one setting, the issue's)."""
    opacus = _opacus()
    ref_rdp = _ref if _reference("compute_rdp") and _reference("get_privacy_spent") else None
    out = [
        Case(
            "compute_rdp + get_privacy_spent (151 orders)",
            SIZE,
            native=_quiet(_clearing(partial(_rdp_epsilon, accounting))),
            reference=None if ref_rdp is None else _quiet(partial(_rdp_epsilon, ref_rdp)),
            reference_name="Python oracle",
            peers={"opacus": _quiet(partial(_rdp_epsilon, opacus["rdp"]))} if opacus else {},
            target=Target("vs opacus", 20, "≥20× Opacus"),
        )
    ]

    out.append(
        Case(
            "get_noise_multiplier(target ε=8)",
            SIZE,
            native=_quiet(_clearing(_calibrate(accounting.get_noise_multiplier))),
            peers={"opacus": _quiet(_calibrate(opacus["get_noise_multiplier"]))} if opacus else {},
            target=Target("vs opacus", 30, "≥30× Opacus"),
        )
    )

    def prv(accountant: Any, query: str, value: float) -> Call:
        return _quiet(partial(_prv, accountant, query, value))

    ref_epsilon, ref_delta = _reference("prv_epsilon"), _reference("prv_delta")
    native_epsilon = prv(accounting.PRVAccountant, "get_epsilon", DELTA)
    out.append(
        Case(
            "PRV get_epsilon (eps_error 0.01)",
            SIZE,
            native=native_epsilon,
            reference=None if ref_epsilon is None else partial(ref_epsilon, Q, SIGMA, STEPS, DELTA),
            reference_name="Python oracle",
            peers={"opacus": prv(opacus["PRVAccountant"], "get_epsilon", DELTA)} if opacus else {},
            target=Target("vs opacus", 10, "≥10× Opacus PRV"),
        )
    )
    pld_epsilon = _pld("get_epsilon", DELTA)
    out.append(
        Case(
            "PLD/PRV get_epsilon vs dp_accounting",
            SIZE,
            native=native_epsilon,
            peers={} if pld_epsilon is None else {"dp_accounting": _quiet(pld_epsilon)},
            target=Target("vs dp_accounting", 10, "≥10× dp_accounting PLD"),
        )
    )

    pld_delta = _pld("get_delta", EPSILON)
    out.append(
        Case(
            f"PRV get_delta(ε={EPSILON})",
            SIZE,
            native=prv(accounting.PRVAccountant, "get_delta", EPSILON),
            reference=None if ref_delta is None else partial(ref_delta, Q, SIGMA, STEPS, EPSILON),
            reference_name="Python oracle",
            peers={} if pld_delta is None else {"dp_accounting": _quiet(pld_delta)},
        )
    )
    return out
