"""A privacy budget that composes (ε, δ)-DP releases and refuses a spend before it overdraws.

:class:`PrivacyBudget` is re-exported by :mod:`ppml_fast.accounting`. Composition follows
Dwork & Roth (2014), "The Algorithmic Foundations of Differential Privacy": basic
composition (Thm. 3.16) and the advanced composition of Dwork, Rothblum & Vadhan (2010),
"Boosting and Differential Privacy" (Thm. III.3; Dwork & Roth Thm. 3.20).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from .._errors import PrivacyBudgetExhausted
from .._forksafe import ForkSafeLock
from .._validation import HALF_OPEN_UNIT, NON_NEGATIVE, OPEN_UNIT, POSITIVE, check_scalar

Composition = Literal["basic", "advanced"]
_COMPOSITIONS = ("basic", "advanced")


def _to_float(q: Fraction) -> float:
    """``q`` correctly rounded to a float (``math.fsum`` of any terms summing to ``q``).

    Beyond the float range the result is ``inf``, so an overflowing total never fits.
    """
    try:
        return float(q)
    except OverflowError:
        return math.inf


def _sqrt(q: Fraction) -> float:
    """√q for an exact rational ``q >= 0``, within one unit in the last place; ``inf`` on overflow.

    Works on the exact value through an integer square root with at least 64 significant
    bits, so a sum of squares far below the float range (ε_i < 1e-162) does not underflow
    to a bound of 0.
    """
    if q == 0:
        return 0.0
    n, d = q.numerator, q.denominator
    shift = max(0, 64 + (d.bit_length() - n.bit_length()) // 2 + 1)
    return _to_float(Fraction(math.isqrt((n << (2 * shift)) // d), 1 << shift))


@dataclass(frozen=True)
class _Sums:
    """Exact running sums over the recorded spends (every float is an exact dyadic rational).

    ``eps`` = Σε_i, ``delta`` = Σδ_i, ``sq`` = Σε_i², ``drift`` = Σε_i·m_i with m_i the
    float ``math.expm1(ε_i)`` (``None`` once some m_i overflowed: the drift is infinite).
    """

    eps: Fraction = Fraction(0)
    delta: Fraction = Fraction(0)
    sq: Fraction = Fraction(0)
    drift: Fraction | None = Fraction(0)

    @staticmethod
    def of(epsilon: float, delta: float) -> _Sums:
        """The terms that one (ε, δ) spend adds."""
        e = Fraction(epsilon)
        try:
            drift: Fraction | None = e * Fraction(math.expm1(epsilon))
        except OverflowError:  # ε > 709.78: e^ε − 1 is beyond the float range
            drift = None
        return _Sums(e, Fraction(delta), e * e, drift)

    def plus(self, terms: _Sums, k: int = 1) -> _Sums:
        """These sums with ``k`` more spends whose terms are ``terms`` (exact, no rounding)."""
        if k == 0:
            return self
        drift = None if self.drift is None or terms.drift is None else self.drift + k * terms.drift
        return _Sums(
            self.eps + k * terms.eps, self.delta + k * terms.delta, self.sq + k * terms.sq, drift
        )


class PrivacyBudget:
    r"""A total (ε, δ) privacy budget that records releases and refuses to overspend.

    Each :meth:`spend` records one (ε_i, δ_i)-differentially private release about the same
    dataset, under the neighbouring relation that the mechanisms were calibrated for (all
    spends must share one). A spend is refused with :class:`~ppml_fast.PrivacyBudgetExhausted`
    *before* anything is recorded when the composed guarantee of all releases so far plus
    this one would exceed the budget; a refused spend leaves the budget unchanged. The
    composition theorems hold for adaptively chosen mechanisms.

    Parameters
    ----------
    epsilon : float
        Total ε, finite and > 0.
    delta : float, default 0.0
        Total δ, in [0, 1). A pure-DP budget (δ = 0) refuses every spend with δ_i > 0.
    composition : {"basic", "advanced"}, default "basic"
        How releases compose (below).
    delta_slack : float, optional
        The δ' of advanced composition, in (0, 1) and <= ``delta``; required when
        ``composition="advanced"`` and must be ``None`` for ``"basic"``.

    Raises
    ------
    TypeError
        If a number is not a real number or ``composition`` is not a string.
    ValueError
        If a number is out of range, NaN or infinite; if ``composition`` is unknown; if
        ``delta_slack`` is missing for ``"advanced"``, given for ``"basic"``, or > ``delta``.

    Notes
    -----
    **Basic composition** (Dwork & Roth 2014, Thm. 3.16): releases that are
    (ε_1, δ_1)-, …, (ε_k, δ_k)-DP are jointly (Σε_i, Σδ_i)-DP.

    **Advanced composition**, in the heterogeneous form that the Azuma argument of Dwork,
    Rothblum & Vadhan (2010, Thm. III.3; Dwork & Roth 2014, Thm. 3.20) gives — the privacy
    loss of release i lies in [-ε_i, ε_i] and has mean at most ε_i(e^{ε_i} − 1) — for every
    δ' > 0 the releases are jointly (ε_adv, Σδ_i + δ')-DP with

    .. math::

        ε_{adv} = \sqrt{2 \ln(1/δ') \textstyle\sum_i ε_i^2} + \sum_i ε_i (e^{ε_i} - 1).

    Both bounds are valid, so under ``"advanced"`` a spend is allowed when *either* fits
    the budget, i.e. (Σε_i <= ε and Σδ_i <= δ) or (ε_adv <= ε and Σδ_i + δ' <= δ); for
    many small ε_i the advanced bound, which grows like √k rather than k, admits more
    releases. Under ``"basic"`` only the first pair counts.

    :attr:`spent` is the basic pair (Σε_i, Σδ_i) when it fits the budget, else (under
    ``"advanced"``) the advanced pair (ε_adv, Σδ_i + δ'); one of them always fits.
    :attr:`remaining` is the budget minus :attr:`spent`, each part clipped at 0. Because
    advanced composition is not additive, ``remaining`` is a summary: ask
    :meth:`can_spend` or :meth:`max_spends` whether a release fits.

    **Numerics.** Sums are exact (floats are dyadic rationals, summed as ``Fraction``) and
    rounded once, so Σε_i and Σδ_i equal ``math.fsum`` of the history: ten spends of 0.1
    compose to exactly 1.0 and fit a budget of 1.0, and an eleventh spend of 1e-9 does not.
    Totals are compared with the budget with no extra tolerance, so a spend too small to
    move the rounded total (here below about 5.5e-17, half an ulp of 1.0 minus the 5.55e-17
    by which ten 0.1s exceed 1) still fits: the overdraft is under half an ulp. ε_adv uses
    ``math.expm1`` and exact sums of ε_i² and ε_i·(e^{ε_i} − 1), so it is within a few units
    in the last place of the formula, does not underflow to 0 for tiny ε_i, and is ``inf``
    (never fits) when it overflows.

    **Threads.** :meth:`spend` checks and records under a lock, so concurrent spends never
    jointly exceed the budget; the properties read a consistent snapshot.

    Examples
    --------
    >>> budget = PrivacyBudget(1.0)
    >>> for _ in range(10):
    ...     budget.spend(0.1)
    >>> budget.spent, budget.can_spend(1e-9)
    ((1.0, 0.0), False)
    """

    def __init__(
        self,
        epsilon: float,
        delta: float = 0.0,
        *,
        composition: Composition = "basic",
        delta_slack: float | None = None,
    ) -> None:
        self._epsilon = check_scalar(epsilon, "epsilon", POSITIVE)
        self._delta = check_scalar(delta, "delta", HALF_OPEN_UNIT)
        if not isinstance(composition, str):
            raise TypeError(f"composition must be a str, got {type(composition).__name__}")
        if composition not in _COMPOSITIONS:
            raise ValueError(f"composition must be 'basic' or 'advanced', got {composition!r}")
        self._composition: Composition = composition
        self._delta_slack: float | None = None
        if composition == "basic":
            if delta_slack is not None:
                raise ValueError(
                    f"delta_slack must be None when composition is 'basic', got {delta_slack!r}"
                )
        else:
            if delta_slack is None:
                raise ValueError(
                    "delta_slack is required when composition is 'advanced' "
                    "(the δ' of advanced composition, in (0, 1) and <= delta)"
                )
            slack = check_scalar(delta_slack, "delta_slack", OPEN_UNIT)
            if slack > self._delta:
                raise ValueError(f"delta_slack must be <= delta ({self._delta}), got {slack}")
            self._delta_slack = slack
            self._log_inv_slack = Fraction(-math.log(slack))
        self._sums = _Sums()
        self._history: list[tuple[float, float]] = []
        self._lock = ForkSafeLock(on_fork=self._resync_after_fork)

    # --- configuration ---------------------------------------------------------------------

    @property
    def epsilon(self) -> float:
        """The total ε of the budget."""
        return self._epsilon

    @property
    def delta(self) -> float:
        """The total δ of the budget."""
        return self._delta

    @property
    def composition(self) -> Composition:
        """``"basic"`` or ``"advanced"``."""
        return self._composition

    @property
    def delta_slack(self) -> float | None:
        """The δ' of advanced composition (``None`` under basic composition)."""
        return self._delta_slack

    # --- composition -----------------------------------------------------------------------

    def _basic(self, sums: _Sums) -> tuple[float, float]:
        """(Σε_i, Σδ_i), each rounded once (Dwork & Roth 2014, Thm. 3.16)."""
        return _to_float(sums.eps), _to_float(sums.delta)

    def _advanced(self, sums: _Sums) -> tuple[float, float]:
        """(ε_adv, Σδ_i + δ') of Dwork, Rothblum & Vadhan (2010, Thm. III.3), heterogeneous."""
        assert self._delta_slack is not None
        root = _sqrt(2 * self._log_inv_slack * sums.sq)
        drift = math.inf if sums.drift is None else _to_float(sums.drift)
        return root + drift, _to_float(sums.delta + Fraction(self._delta_slack))

    def _within(self, pair: tuple[float, float]) -> bool:
        return pair[0] <= self._epsilon and pair[1] <= self._delta

    def _guarantee(self, sums: _Sums) -> tuple[float, float] | None:
        """The guarantee reported for ``sums``: basic if it fits, else advanced if it fits.

        ``None`` when no allowed bound fits the budget. The one feasibility rule behind
        :meth:`spend`, :meth:`can_spend`, :meth:`max_spends` and :attr:`spent`.
        """
        basic = self._basic(sums)
        if self._within(basic):
            return basic
        if self._composition == "advanced":
            advanced = self._advanced(sums)
            if self._within(advanced):
                return advanced
        return None

    # --- spending --------------------------------------------------------------------------

    def spend(self, epsilon: float, delta: float = 0.0) -> None:
        """Record one (ε, δ)-DP release, or raise without recording if it does not fit.

        Parameters
        ----------
        epsilon : float
            ε of the release, finite and >= 0 (0 is allowed and counted).
        delta : float, default 0.0
            δ of the release, in [0, 1).

        Raises
        ------
        PrivacyBudgetExhausted
            If the composition of every recorded release and this one exceeds the budget
            (see the class Notes); the budget is then unchanged.
        TypeError, ValueError
            If ``epsilon`` or ``delta`` is not a real number or is out of range.
        """
        eps = check_scalar(epsilon, "epsilon", NON_NEGATIVE)
        dlt = check_scalar(delta, "delta", HALF_OPEN_UNIT)
        terms = _Sums.of(eps, dlt)
        with self._lock:
            after = self._sums.plus(terms)
            if self._guarantee(after) is None:
                raise PrivacyBudgetExhausted(self._refusal(eps, dlt, after))
            self._history.append((eps, dlt))
            self._sums = after

    def can_spend(self, epsilon: float, delta: float = 0.0) -> bool:
        """Whether :meth:`spend` would accept this (ε, δ) release now; records nothing.

        Raises ``TypeError`` / ``ValueError`` for invalid arguments, as :meth:`spend` does.
        Another thread may spend between this call and a later :meth:`spend`, so to reserve
        budget call :meth:`spend` and handle :class:`~ppml_fast.PrivacyBudgetExhausted`.
        """
        terms = _Sums.of(
            check_scalar(epsilon, "epsilon", NON_NEGATIVE),
            check_scalar(delta, "delta", HALF_OPEN_UNIT),
        )
        with self._lock:
            return self._guarantee(self._sums.plus(terms)) is not None

    def max_spends(self, epsilon: float, delta: float = 0.0) -> int:
        """How many more identical (ε, δ) releases fit, by the rule of :meth:`spend`.

        Calling ``spend(epsilon, delta)`` that many times succeeds and the next call is
        refused (if no other thread spends meanwhile). Found by doubling then bisection on
        the count, which is valid because the composed bounds only grow with it; the sums
        for ``k`` releases are exact, so this is fast even for counts far beyond 2**64.

        Raises
        ------
        ValueError
            If ``epsilon`` and ``delta`` are both 0: such releases fit without limit.
        TypeError, ValueError
            If ``epsilon`` or ``delta`` is not a real number or is out of range.
        """
        eps = check_scalar(epsilon, "epsilon", NON_NEGATIVE)
        dlt = check_scalar(delta, "delta", HALF_OPEN_UNIT)
        if eps == 0 and dlt == 0:
            raise ValueError("epsilon and delta cannot both be 0 (every such spend fits)")
        terms = _Sums.of(eps, dlt)
        with self._lock:
            sums = self._sums

        def fits(k: int) -> bool:
            return self._guarantee(sums.plus(terms, k)) is not None

        fitting, failing = 0, 1
        while fits(failing):
            fitting, failing = failing, 2 * failing
        while failing - fitting > 1:
            middle = (fitting + failing) // 2
            if fits(middle):
                fitting = middle
            else:
                failing = middle
        return fitting

    def _refusal(self, epsilon: float, delta: float, after: _Sums) -> str:
        remaining = self._remaining(self._sums)
        if self._composition == "basic":
            would = f"basic composition gives {self._basic(after)}"
            rule = "basic composition"
        else:
            would = (
                f"basic composition gives {self._basic(after)} and advanced composition "
                f"gives {self._advanced(after)}"
            )
            rule = f"advanced composition (delta_slack={self._delta_slack})"
        return (
            f"cannot spend epsilon={epsilon}, delta={delta}: {would}, over the budget "
            f"(epsilon={self._epsilon}, delta={self._delta}); remaining "
            f"(epsilon={remaining[0]}, delta={remaining[1]}) after {len(self._history)} "
            f"spends under {rule}"
        )

    # --- state -----------------------------------------------------------------------------

    def _spent(self, sums: _Sums) -> tuple[float, float]:
        guarantee = self._guarantee(sums)
        assert guarantee is not None, "recorded spends always fit the budget"
        return guarantee

    def _remaining(self, sums: _Sums) -> tuple[float, float]:
        eps, dlt = self._spent(sums)
        return max(self._epsilon - eps, 0.0), max(self._delta - dlt, 0.0)

    @property
    def spent(self) -> tuple[float, float]:
        """(ε, δ) of the composition of every recorded release (see the class Notes)."""
        with self._lock:
            return self._spent(self._sums)

    @property
    def remaining(self) -> tuple[float, float]:
        """(budget ε − spent ε, budget δ − spent δ), each clipped at 0.0."""
        with self._lock:
            return self._remaining(self._sums)

    @property
    def history(self) -> list[tuple[float, float]]:
        """The recorded (ε_i, δ_i) releases in order (a copy)."""
        with self._lock:
            return list(self._history)

    def __len__(self) -> int:
        """The number of recorded releases."""
        with self._lock:
            return len(self._history)

    def __repr__(self) -> str:
        with self._lock:
            spent, n = self._spent(self._sums), len(self._history)
        slack = "" if self._delta_slack is None else f", delta_slack={self._delta_slack!r}"
        return (
            f"PrivacyBudget(epsilon={self._epsilon!r}, delta={self._delta!r}, "
            f"composition={self._composition!r}{slack}; spent={spent}, spends={n})"
        )

    def _resync_after_fork(self) -> None:
        """In a child forked while another thread was inside :meth:`spend`: that spend may
        be in the history but not yet in the sums. The history is appended first, so the
        sums rebuilt from it count every release it shows (never fewer than were made)."""
        sums = _Sums()
        for eps, dlt in self._history:
            sums = sums.plus(_Sums.of(eps, dlt))
        self._sums = sums
