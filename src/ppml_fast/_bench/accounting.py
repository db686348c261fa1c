"""Benchmark cases for :mod:`ppml_fast.accounting` at a typical DP-SGD setting: sampling
rate q = 0.01, noise multiplier σ = 1.1, 10,000 steps, δ = 1e-5.

Native is ppml_fast; the reference is the pure-Python oracle
``ppml_fast.reference.accounting`` when it is there (its ``compute_rdp`` /
``get_privacy_spent``, and its ``prv_epsilon`` / ``prv_delta`` on the same grid; it has no
noise calibration, so that row has no reference); peers are Opacus (``compute_rdp`` /
``get_privacy_spent``, ``get_noise_multiplier``, ``PRVAccountant``) and dp_accounting's
``PLDAccountant`` (a different discretisation of the same privacy loss) when installed.

dp_accounting runs at the same stated error as the PRV accountant, not at its default.
ppml_fast's ``get_epsilon(delta, eps_error=0.01)`` certifies ``lower <= ε <= upper`` with
``upper - lower`` about ``2 eps_error`` and returns ``upper``: it overstates ε by at most
about ``2 eps_error`` (Gopi et al. 2021, Theorem 5.5). dp_accounting's pessimistic PLD
rounds each of the k composed privacy losses up to the next multiple of the interval
``Δ`` (its connect-the-dots discretisation is the tightest pessimistic one on that grid,
so no worse); the composed loss is overstated by less than ``k Δ``, and so is its ε
(``δ_PLD(ε) <= δ(ε - k Δ)``). The same certified overstatement, ``k Δ = 2 eps_error``,
gives ``Δ = 2 eps_error / k`` (:data:`PLD_INTERVAL`, 2e-6 here, against the default
1e-4, whose certified bound is ``k Δ = 1``); the default runs too, as the peer
"dp_accounting Δ=1e-4 (default)". At 2e-6 one dp_accounting call takes about a minute,
so it is timed once (``LONG_CALL``).

Every call does the whole computation. ``compute_rdp`` caches the RDP of each (q, σ,
orders), so each native RDP call nudges q by a relative 2^-40 (a new cache key, the same
work); the PRV rows build a fresh accountant per call (it keeps its discretisation). The
optimal-order ``UserWarning`` is silenced inside the timed calls. One setting; ``full``
adds the PRV ``get_delta`` row.
"""

from __future__ import annotations

import importlib
import itertools
import warnings
from collections.abc import Callable
from functools import partial
from types import ModuleType
from typing import Any

from .. import accounting
from . import Case, Target, select

_ref: ModuleType | None
try:  # the oracle is optional here: without it the rows have no reference column
    _ref = importlib.import_module("ppml_fast.reference.accounting")
except ImportError:
    _ref = None

Q, SIGMA, STEPS, DELTA = 0.01, 1.1, 10_000, 1e-5
TARGET_EPSILON = 8.0
EPSILON = 5.19  # for the get_delta row: about the ε of this setting at δ = 1e-5
SIZE = "q=0.01 σ=1.1 T=1e4 δ=1e-5"
EPS_ERROR = 0.01  # the PRV accountant's default stated error, used by the PRV rows
#: dp_accounting's interval with the same certified overstatement: k Δ = 2 eps_error.
PLD_INTERVAL = 2 * EPS_ERROR / STEPS
PLD_DEFAULT = 1e-4

Call = Callable[[], Any]


def _quiet(fn: Call) -> Call:
    """``fn`` with UserWarnings (the optimal-order warning of the RDP conversion) silenced."""

    def call() -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return fn()

    return call


def _fresh_q() -> Callable[[], float]:
    """q, nudged by a relative 2^-40 on each call: a new key of ``compute_rdp``'s cache."""
    counter = itertools.count(1)
    return lambda: Q * (1.0 + next(counter) * 2.0**-40)


def _rdp_epsilon(mod: Any, q: Callable[[], float] = lambda: Q) -> tuple[float, float]:
    """compute_rdp + get_privacy_spent over Opacus' 151 default orders, Opacus' keywords."""
    orders = accounting.DEFAULT_ALPHAS
    rdp = mod.compute_rdp(q=q(), noise_multiplier=SIGMA, steps=STEPS, orders=orders)
    return mod.get_privacy_spent(orders=orders, rdp=rdp, delta=DELTA)


def _calibrate(get_noise_multiplier: Callable[..., float], q: Callable[[], float]) -> Call:
    return lambda: get_noise_multiplier(
        target_epsilon=TARGET_EPSILON, target_delta=DELTA, sample_rate=q(), steps=STEPS
    )


def _prv(accountant: Any, query: str, value: float) -> float:
    """A fresh Opacus-style accountant with one history entry, then ``query(value)``."""
    acc = accountant()
    acc.history = [(SIGMA, Q, STEPS)]
    return float(getattr(acc, query)(value))


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


def _pld(query: str, value: float) -> dict[str, Call]:
    """dp_accounting's PLD accountant on the same composition, fresh each call: at
    :data:`PLD_INTERVAL` (peer "dp_accounting") and at its default interval."""
    try:
        import dp_accounting
        from dp_accounting.pld.pld_privacy_accountant import PLDAccountant
    except ImportError:
        return {}
    event = dp_accounting.SelfComposedDpEvent(
        dp_accounting.PoissonSampledDpEvent(Q, dp_accounting.GaussianDpEvent(SIGMA)), STEPS
    )

    def at(interval: float) -> Call:
        def call() -> float:
            acc = PLDAccountant(value_discretization_interval=interval)
            acc.compose(event)
            return float(getattr(acc, query)(value))

        return _quiet(call)

    return {
        "dp_accounting": at(PLD_INTERVAL),
        "dp_accounting Δ=1e-4 (default)": at(PLD_DEFAULT),
    }


def _reference(name: str) -> Callable[..., Any] | None:
    """The oracle's function ``name``, when the oracle is there and has it."""
    return None if _ref is None else getattr(_ref, name, None)


def _against(peers: dict[str, Call], target: Target) -> list[Target]:
    """``[target]`` when the peer it names is one of ``peers`` (installed), else ``[]``."""
    return [target] if target.metric.removeprefix("vs ") in peers else []


def _epsilon(result: Any) -> float:
    """ε from what an RDP conversion (ε, order) or a PRV query (a float) returned."""
    return float(result[0] if isinstance(result, tuple) else result)


def cases(full: bool) -> list[Case]:
    """The accounting rows, all at that DP-SGD setting.

    Parameters
    ----------
    full : bool
        Include the rows marked ``full``.

    Returns
    -------
    list of Case
        compute_rdp + get_privacy_spent, get_noise_multiplier and PRV get_epsilon;
        ``full`` adds PRV get_delta.
    """
    opacus = _opacus()
    ref_rdp = _ref if _reference("compute_rdp") and _reference("get_privacy_spent") else None
    rdp_peers: dict[str, Call] = {}
    calibrate_peers: dict[str, Call] = {}
    if opacus:
        rdp_peers["opacus"] = _quiet(partial(_rdp_epsilon, opacus["rdp"]))
        calibrate_peers["opacus"] = _quiet(_calibrate(opacus["get_noise_multiplier"], lambda: Q))
    out = [
        Case(
            "compute_rdp + get_privacy_spent (151 orders)",
            SIZE,
            native=_quiet(partial(_rdp_epsilon, accounting, _fresh_q())),
            reference=None if ref_rdp is None else _quiet(partial(_rdp_epsilon, ref_rdp)),
            reference_name="Python oracle",
            peers=rdp_peers,
            more_targets=_against(rdp_peers, Target("vs opacus", 20, "≥20× Opacus")),
            check=lambda r: 0 < _epsilon(r) < 10,
        ),
        Case(
            "get_noise_multiplier(target ε=8)",
            SIZE,
            native=_quiet(_calibrate(accounting.get_noise_multiplier, _fresh_q())),
            peers=calibrate_peers,
            more_targets=_against(calibrate_peers, Target("vs opacus", 30, "≥30× Opacus")),
            check=lambda sigma: 0.5 < sigma < 2,
        ),
    ]

    def prv(accountant: Any, query: str, value: float) -> Call:
        return _quiet(partial(_prv, accountant, query, value))

    ref_epsilon, ref_delta = _reference("prv_epsilon"), _reference("prv_delta")
    peers = {"opacus": prv(opacus["PRVAccountant"], "get_epsilon", DELTA)} if opacus else {}
    peers.update(_pld("get_epsilon", DELTA))
    out.append(
        Case(
            f"PRV get_epsilon (eps_error {EPS_ERROR}; dp_accounting: PLD at "
            f"Δ={PLD_INTERVAL:g}, the same certified error)",
            SIZE,
            native=prv(accounting.PRVAccountant, "get_epsilon", DELTA),
            reference=None if ref_epsilon is None else partial(ref_epsilon, Q, SIGMA, STEPS, DELTA),
            reference_name="Python oracle",
            peers=peers,
            more_targets=_against(peers, Target("vs opacus", 10, "≥10× Opacus PRV"))
            + _against(peers, Target("vs dp_accounting", 10, "≥10× dp_accounting PLD")),
            check=lambda r: 4 < _epsilon(r[2] if isinstance(r, tuple) else r) < 7,
        )
    )
    out.append(
        Case(
            f"PRV get_delta(ε={EPSILON}) (dp_accounting: PLD at Δ={PLD_INTERVAL:g})",
            SIZE,
            native=prv(accounting.PRVAccountant, "get_delta", EPSILON),
            reference=None if ref_delta is None else partial(ref_delta, Q, SIGMA, STEPS, EPSILON),
            reference_name="Python oracle",
            peers=_pld("get_delta", EPSILON),
            full=True,
            check=lambda delta: 0 < delta < 1e-3,
        )
    )
    return select(out, full)
