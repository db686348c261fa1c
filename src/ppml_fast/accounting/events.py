"""Descriptions of the mechanisms that an accountant composes, and the history it keeps.

An event names a mechanism and its noise, in the spirit of dp_accounting's ``DpEvent``:
:class:`GaussianEvent` (Gaussian noise calibrated to the L2 sensitivity),
:class:`LaplaceEvent` (Laplace noise calibrated to the L1 sensitivity) and
:class:`PoissonSampledEvent` (a Gaussian event run on a Poisson sample). The accountants of
:mod:`.rdp` and :mod:`.prv` record them through ``compose`` next to Opacus' history of
DP-SGD steps; both keep that record in the base class defined here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .._validation import NON_NEGATIVE, POSITIVE, PROBABILITY, check_int, check_scalar

__all__ = ["Event", "GaussianEvent", "LaplaceEvent", "PoissonSampledEvent"]


@dataclass(frozen=True)
class GaussianEvent:
    """Gaussian mechanism with noise standard deviation ``noise_multiplier`` × Δ₂.

    Parameters
    ----------
    noise_multiplier : float
        σ, the ratio of the noise standard deviation to the L2 sensitivity Δ₂, finite
        and >= 0 (σ = 0 is no privacy).

    Raises
    ------
    TypeError
        If ``noise_multiplier`` is not a real number.
    ValueError
        If ``noise_multiplier`` is negative, NaN or infinite.
    """

    noise_multiplier: float

    def __post_init__(self) -> None:
        object.__setattr__(
            self,
            "noise_multiplier",
            check_scalar(self.noise_multiplier, "noise_multiplier", NON_NEGATIVE),
        )


@dataclass(frozen=True)
class LaplaceEvent:
    """Laplace mechanism with noise scale ``noise_multiplier`` × Δ₁ (ε = 1/noise_multiplier).

    Parameters
    ----------
    noise_multiplier : float
        b, the ratio of the Laplace scale to the L1 sensitivity Δ₁, finite and > 0.

    Raises
    ------
    TypeError
        If ``noise_multiplier`` is not a real number.
    ValueError
        If ``noise_multiplier`` is not > 0, or is NaN or infinite.
    """

    noise_multiplier: float

    def __post_init__(self) -> None:
        object.__setattr__(
            self,
            "noise_multiplier",
            check_scalar(self.noise_multiplier, "noise_multiplier", POSITIVE),
        )


@dataclass(frozen=True)
class PoissonSampledEvent:
    """``event`` run on a Poisson sample: each record included with ``sample_rate``.

    Parameters
    ----------
    sample_rate : float
        q, the probability with which each record is included, in [0, 1].
    event : GaussianEvent
        The mechanism run on the sample (Poisson sampling is supported for the Gaussian
        mechanism).

    Raises
    ------
    TypeError
        If ``sample_rate`` is not a real number or ``event`` is not a
        :class:`GaussianEvent`.
    ValueError
        If ``sample_rate`` is outside [0, 1] or NaN.
    """

    sample_rate: float
    event: GaussianEvent

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "sample_rate", check_scalar(self.sample_rate, "sample_rate", PROBABILITY)
        )
        if not isinstance(self.event, GaussianEvent):
            raise TypeError(
                "event must be a GaussianEvent (Poisson sampling is supported for the "
                f"Gaussian mechanism), got {type(self.event).__name__}"
            )


Event = GaussianEvent | LaplaceEvent | PoissonSampledEvent
_EVENT_TYPES = (GaussianEvent, LaplaceEvent, PoissonSampledEvent)


def _event_entries(events: Any) -> list[tuple[Event, int]]:
    """Normalise an event, or a list of events / (event, count) pairs, to pairs."""
    if isinstance(events, _EVENT_TYPES):
        return [(events, 1)]
    if isinstance(events, (str, bytes)) or not isinstance(events, Iterable):
        raise TypeError("events must be an event or a list of events / (event, count) pairs")
    try:
        items = list(events)
    except TypeError:  # e.g. a 0-d array
        raise TypeError(
            "events must be an event or a list of events / (event, count) pairs"
        ) from None
    out: list[tuple[Event, int]] = []
    for i, item in enumerate(items):
        if isinstance(item, _EVENT_TYPES):
            out.append((item, 1))
            continue
        if not (isinstance(item, tuple) and len(item) == 2):
            raise TypeError(f"events items must be events or (event, count) pairs, got {item!r}")
        ev, count = item
        if not isinstance(ev, _EVENT_TYPES):
            raise TypeError(f"events[{i}]: unknown event type {type(ev).__name__}")
        out.append((ev, check_int(count, f"events[{i}] count", 0)))
    return out


class _HistoryMixin:
    """Opacus-style history of (noise_multiplier, sample_rate, steps) plus other events.

    The base of :class:`~ppml_fast.accounting.RDPAccountant` and
    :class:`~ppml_fast.accounting.PRVAccountant`: ``history`` is Opacus' list of
    ``(noise_multiplier, sample_rate, steps)`` and ``events`` the list of
    ``(event, count)`` pairs recorded by :meth:`compose`.
    """

    history: list[tuple[float, float, int]]
    events: list[tuple[Event, int]]

    def __init__(self) -> None:
        self.history = []
        self.events = []

    def step(self, *, noise_multiplier: float, sample_rate: float) -> None:
        """Record one step of the Poisson-subsampled Gaussian (consecutive equal steps merge).

        Parameters
        ----------
        noise_multiplier : float
            σ of the step, finite and >= 0.
        sample_rate : float
            q of the step, in [0, 1].

        Raises
        ------
        TypeError, ValueError
            If an argument is not a real number or is out of range.
        """
        noise_multiplier = check_scalar(noise_multiplier, "noise_multiplier", NON_NEGATIVE)
        sample_rate = check_scalar(sample_rate, "sample_rate", PROBABILITY)
        if self.history:
            last_sigma, last_q, n = self.history[-1]
            if last_sigma == noise_multiplier and last_q == sample_rate:
                self.history[-1] = (last_sigma, last_q, n + 1)
                return
        self.history.append((noise_multiplier, sample_rate, 1))

    def compose(self, event: Any, count: int = 1) -> None:
        """Record ``count`` runs of ``event`` (or a list of events / (event, count) pairs).

        Parameters
        ----------
        event : Event or iterable of Event or (Event, int)
            What was run; a pair ``(event, k)`` stands for ``k`` runs.
        count : int, default 1
            How many times the whole of ``event`` was run, >= 0.

        Raises
        ------
        TypeError
            If ``event`` is not an event, or an item is neither an event nor an
            ``(event, count)`` pair.
        ValueError
            If a count is negative.
        """
        count = check_int(count, "count", 0)
        for ev, c in _event_entries(event):
            if c * count:
                self.events.append((ev, c * count))

    def __len__(self) -> int:
        """The number of entries recorded (history entries plus event entries)."""
        return len(self.history) + len(self.events)

    @classmethod
    def mechanism(cls) -> str:  # pragma: no cover - overridden
        """The accountant's name (``"rdp"`` or ``"prv"``)."""
        raise NotImplementedError

    def state_dict(self, destination: dict[str, Any] | None = None) -> dict[str, Any]:
        """The accountant's state (Opacus' ``IAccountant.state_dict``).

        Parameters
        ----------
        destination : dict, optional
            Where to write the state; a new dict when omitted.

        Returns
        -------
        dict
            ``destination`` with a copy of ``history``, of the events (key ``"events"``,
            only when some were recorded) and ``mechanism``.
        """
        if destination is None:
            destination = {}
        destination["history"] = list(self.history)
        if self.events:
            destination["events"] = list(self.events)
        destination["mechanism"] = self.mechanism()
        return destination

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a state from :meth:`state_dict`.

        Parameters
        ----------
        state_dict : dict
            A state written by :meth:`state_dict` of an accountant of the same kind.

        Raises
        ------
        TypeError
            If ``state_dict`` is not a mapping, or an entry of its history or events has
            the wrong type (e.g. a float step count).
        ValueError
            If ``state_dict`` is empty, lacks ``history`` or ``mechanism``, belongs to
            another kind of accountant, or holds an out-of-range entry. Nothing is
            loaded when it raises.
        """
        if state_dict is not None and not isinstance(state_dict, Mapping):
            raise TypeError(f"state_dict must be a dict, got {type(state_dict).__name__}")
        if not state_dict:
            raise ValueError("state_dict is None or empty; nothing to load")
        for key in ("history", "mechanism"):
            if key not in state_dict:
                raise ValueError(f"state_dict has no {key!r} key")
        if state_dict["mechanism"] != self.mechanism():
            raise ValueError(
                f"state_dict of a {state_dict['mechanism']!r} accountant cannot be loaded "
                f"into a {self.mechanism()!r} accountant"
            )
        history = _check_history(state_dict["history"])
        events = _check_events(state_dict.get("events", []))
        self.history = history
        self.events = events


def _check_history(history: Any) -> list[tuple[float, float, int]]:
    """Validated ``(noise_multiplier, sample_rate, steps)`` entries of a saved history.

    Checked on load, not on use: a corrupt state must fail where it enters, not when
    ε is next asked for (or, worse, be composed into a wrong ε).
    """
    if isinstance(history, (str, bytes)) or not isinstance(history, Iterable):
        raise TypeError(f"state_dict['history'] must be a list, got {type(history).__name__}")
    out = []
    for i, entry in enumerate(history):
        name = f"state_dict['history'][{i}]"
        if isinstance(entry, (str, bytes)) or not isinstance(entry, Iterable):
            raise TypeError(f"{name} must be (noise_multiplier, sample_rate, steps)")
        items = list(entry)
        if len(items) != 3:
            raise ValueError(
                f"{name} must be (noise_multiplier, sample_rate, steps), got {len(items)} items"
            )
        sigma, q, steps = items
        out.append(
            (
                check_scalar(sigma, f"{name}[0] (noise_multiplier)", NON_NEGATIVE),
                check_scalar(q, f"{name}[1] (sample_rate)", PROBABILITY),
                check_int(steps, f"{name}[2] (steps)", 0, 2**63 - 1),
            )
        )
    return out


def _check_events(events: Any) -> list[tuple[Event, int]]:
    """Validated ``(event, count)`` entries of a saved state."""
    if isinstance(events, (str, bytes)) or not isinstance(events, Iterable):
        raise TypeError(f"state_dict['events'] must be a list, got {type(events).__name__}")
    out: list[tuple[Event, int]] = []
    for i, entry in enumerate(events):
        name = f"state_dict['events'][{i}]"
        if not (isinstance(entry, (tuple, list)) and len(entry) == 2):
            raise TypeError(f"{name} must be an (event, count) pair, got {entry!r}")
        ev, count = entry
        if not isinstance(ev, _EVENT_TYPES):
            raise TypeError(f"{name}[0] must be an event, got {type(ev).__name__}")
        out.append((ev, check_int(count, f"{name}[1] (count)", 0)))
    return out
