"""Accountant factory, composition of events, noise calibration and inverse queries.

:func:`create_accountant` and :func:`compose` pick an accountant by Opacus' name
(``"rdp"`` or ``"prv"``); :func:`get_noise_multiplier` is Opacus' calibration (the
smallest σ whose ε meets a target) and :func:`get_max_steps` the inverse query (the most
steps whose ε meets a target). Both searches evaluate ε exactly as the accountant's
``get_epsilon`` does, so their answers never overshoot the target under that accountant.
"""

from __future__ import annotations

import math
from typing import Any

from .._validation import NON_NEGATIVE, POSITIVE, PROBABILITY, check_int, check_scalar
from .events import _HistoryMixin
from .prv import PRVAccountant
from .rdp import (
    _DEFAULT_ORDERS,
    MAX_STEPS,
    RDPAccountant,
    _check_delta,
    _privacy_spent_quiet,
    _rdp_step,
)

__all__ = ["compose", "create_accountant", "get_max_steps", "get_noise_multiplier"]

#: get_noise_multiplier gives up above this noise multiplier (as Opacus does).
MAX_SIGMA = 1e6

_ACCOUNTANTS: dict[str, type[_HistoryMixin]] = {"rdp": RDPAccountant, "prv": PRVAccountant}


def create_accountant(mechanism: str) -> RDPAccountant | PRVAccountant:
    """A fresh accountant: ``"rdp"`` or ``"prv"`` (Opacus' names).

    Parameters
    ----------
    mechanism : {"rdp", "prv"}
        Which accountant.

    Returns
    -------
    RDPAccountant or PRVAccountant
        A new accountant with nothing recorded.

    Raises
    ------
    TypeError
        If ``mechanism`` is not a str.
    ValueError
        If ``mechanism`` is not one of the names.
    """
    if not isinstance(mechanism, str):
        raise TypeError(f"accountant must be a str, got {type(mechanism).__name__}")
    if mechanism not in _ACCOUNTANTS:
        raise ValueError(f"accountant must be one of {sorted(_ACCOUNTANTS)}, got {mechanism!r}")
    acc = _ACCOUNTANTS[mechanism]()
    assert isinstance(acc, (RDPAccountant, PRVAccountant))
    return acc


def compose(events: Any, *, delta: float, accountant: str = "prv", **kwargs: Any) -> float:
    """ε (an upper bound) at ``delta`` of a list of events or (event, count) pairs.

    Parameters
    ----------
    events : Event or iterable of Event or (Event, int)
        What was run; a pair ``(event, k)`` stands for ``k`` runs.
    delta : float
        Target δ, in (0, 1).
    accountant : {"prv", "rdp"}, default "prv"
        Which accountant composes the events.
    **kwargs
        Passed to the accountant's ``get_epsilon`` (``eps_error`` / ``delta_error`` for
        PRV, ``alphas`` for RDP).

    Returns
    -------
    float
        The accountant's upper bound on ε.

    Raises
    ------
    TypeError
        If ``events`` holds something that is not an event or an (event, count) pair.
    ValueError
        If ``delta`` or a count is out of range, or ``accountant`` is unknown.

    Examples
    --------
    >>> from ppml_fast.accounting import compose, GaussianEvent, LaplaceEvent
    >>> eps = compose([(GaussianEvent(2.0), 10), (LaplaceEvent(20.0), 5)], delta=1e-6)
    """
    acc = create_accountant(accountant)
    acc.compose(events)
    return acc.get_epsilon(_check_delta(delta), **kwargs)


def _check_calibration(
    target_epsilon: Any, target_delta: Any, sample_rate: Any, epsilon_tolerance: Any
) -> tuple[float, float, float, float]:
    return (
        check_scalar(target_epsilon, "target_epsilon", POSITIVE),
        _check_delta(target_delta, "target_delta"),
        check_scalar(sample_rate, "sample_rate", PROBABILITY),
        check_scalar(epsilon_tolerance, "epsilon_tolerance", POSITIVE),
    )


def get_noise_multiplier(
    *,
    target_epsilon: float,
    target_delta: float,
    sample_rate: float,
    steps: int | None = None,
    epochs: float | None = None,
    accountant: str = "rdp",
    epsilon_tolerance: float = 0.01,
    **kwargs: Any,
) -> float:
    """Smallest noise multiplier σ (to within the tolerance) with ε(σ) <= target_epsilon.

    Opacus' search, step for step: double σ from 10 until ε <= target (giving up above
    σ = 1e6), then bisect on [0, σ_high] keeping the invariant ε(σ_high) <= target until
    ``target_epsilon - ε(σ_high) <= epsilon_tolerance``. The answer never overshoots: the
    returned σ has ε(σ) <= target_epsilon under the chosen accountant (``"rdp"`` gives
    Opacus' σ exactly; ``"prv"`` uses the PRV upper bound).

    Parameters
    ----------
    target_epsilon : float
        ε to reach, > 0.
    target_delta : float
        δ at which ε is measured, in (0, 1).
    sample_rate : float
        q of each step, in (0, 1].
    steps : int, optional
        Number of steps, an int in ``[1, 2**63 - 1]``. Give exactly one of ``steps`` and
        ``epochs``.
    epochs : float, optional
        Number of epochs, > 0: ``steps = int(epochs / sample_rate)``.
    accountant : {"rdp", "prv"}, default "rdp"
        Which accountant measures ε.
    epsilon_tolerance : float, default 0.01
        The search stops once ``target_epsilon - ε(σ) <= epsilon_tolerance``, > 0.
    **kwargs
        Passed to the accountant's ``get_epsilon`` (``alphas`` for RDP,
        ``eps_error``/``delta_error`` for PRV).

    Returns
    -------
    float
        σ with ε(σ) <= target_epsilon.

    Raises
    ------
    ValueError
        Both or neither of steps/epochs; bad targets; sample_rate outside (0, 1];
        no σ up to 1e6 reaches the target ("The privacy budget is too low").
    """
    target_epsilon, target_delta, sample_rate, tol = _check_calibration(
        target_epsilon, target_delta, sample_rate, epsilon_tolerance
    )
    if (steps is None) == (epochs is None):
        raise ValueError("give exactly one of steps and epochs")
    if sample_rate == 0:
        raise ValueError("sample_rate must be > 0 for calibration, got 0.0")
    if steps is None:
        n = check_scalar(epochs, "epochs", POSITIVE) / sample_rate
        if not 1 <= n <= MAX_STEPS:
            raise ValueError(
                f"epochs / sample_rate must give between 1 and {MAX_STEPS} steps, got {n:g}"
            )
        steps = int(n)
    steps = check_int(steps, "steps", 1, MAX_STEPS)
    acc = create_accountant(accountant)

    def eps_at(sigma: float) -> float:
        acc.history = [(sigma, sample_rate, steps)]
        if isinstance(acc, RDPAccountant) and not kwargs:
            # the accountant's own sum and conversion, without re-validating each step
            rdp = _rdp_step(sample_rate, sigma, _DEFAULT_ORDERS) * steps
            return _privacy_spent_quiet(_DEFAULT_ORDERS, rdp, target_delta)
        return acc.get_epsilon(delta=target_delta, **kwargs)

    eps_high = math.inf
    sigma_low, sigma_high = 0.0, 10.0
    while eps_high > target_epsilon:
        sigma_high = 2 * sigma_high
        eps_high = eps_at(sigma_high)
        if sigma_high > MAX_SIGMA:
            raise ValueError(
                f"The privacy budget is too low: no noise_multiplier up to {MAX_SIGMA:g} "
                f"reaches target_epsilon={target_epsilon}"
            )
    while target_epsilon - eps_high > tol:
        sigma = (sigma_low + sigma_high) / 2
        if sigma in (sigma_low, sigma_high):
            break  # the interval is one float wide: no σ in between to try
        eps = eps_at(sigma)
        if eps < target_epsilon:
            sigma_high, eps_high = sigma, eps
        else:
            sigma_low = sigma
    return sigma_high


def get_max_steps(
    *,
    target_epsilon: float,
    target_delta: float,
    sample_rate: float,
    noise_multiplier: float,
    accountant: str = "rdp",
    max_steps: int = 2**40,
    **kwargs: Any,
) -> int:
    """Largest number of steps (at most ``max_steps``) with ε <= target_epsilon.

    The inverse of the accounting query: ε grows with the number of steps, so an
    exponential then binary search over integers finds the boundary, evaluating ε the
    same way ``get_epsilon`` does (so ``steps + 1`` is over the target unless the answer
    is ``max_steps``).

    Parameters
    ----------
    target_epsilon : float
        ε not to exceed, > 0.
    target_delta : float
        δ at which ε is measured, in (0, 1).
    sample_rate : float
        q of each step, in [0, 1].
    noise_multiplier : float
        σ of each step, finite and >= 0.
    accountant : {"rdp", "prv"}, default "rdp"
        Which accountant measures ε.
    max_steps : int, default 2**40
        The largest answer, in ``[1, 2**63 - 1]``.
    **kwargs
        Passed to the accountant's ``get_epsilon``.

    Returns
    -------
    int
        The number of steps; 0 when even one step exceeds the target.

    Raises
    ------
    TypeError, ValueError
        If an argument is not of the right type or is out of range, or ``accountant``
        is unknown.
    """
    target_epsilon, target_delta, sample_rate, _ = _check_calibration(
        target_epsilon, target_delta, sample_rate, 1.0
    )
    sigma = check_scalar(noise_multiplier, "noise_multiplier", NON_NEGATIVE)
    max_steps = check_int(max_steps, "max_steps", 1, MAX_STEPS)
    acc = create_accountant(accountant)

    def fits(k: int) -> bool:
        acc.history = [(sigma, sample_rate, k)]
        return acc.get_epsilon(delta=target_delta, **kwargs) <= target_epsilon

    if not fits(1):
        return 0
    lo, hi = 1, 2
    while hi <= max_steps and fits(hi):
        lo, hi = hi, hi * 2
    if hi > max_steps:
        if fits(max_steps):
            return max_steps
        hi = max_steps
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid
    return lo
