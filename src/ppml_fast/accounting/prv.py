"""Privacy accounting: Opacus-compatible RDP, a PRV accountant with stated error bounds,
noise calibration, inverse queries and privacy budgets.

Drop-in surface (Opacus semantics, the same numbers)
-----------------------------------------------------
``compute_rdp``, ``get_privacy_spent``, ``RDPAccountant`` and ``get_noise_multiplier``
return what ``opacus.accountants.analysis.rdp`` / ``opacus.accountants`` return: the RDP
of each order is the double Opacus computes, bit for bit (the kernel performs the same
operations with the same special functions), and the conversion and the bisection are
the same. A user replaces ``from opacus.accountants.analysis.rdp import compute_rdp,
get_privacy_spent`` with ``from ppml_fast.accounting import ...`` and every figure stays
the same. Differences, all in the direction of refusing nonsense: bad input raises
``ValueError`` naming the parameter (Opacus computes garbage or raises deep inside), a
numerical breakdown of the fractional-order series gives ``+inf`` for that order (Opacus
raises, returns NaN, or a negative RDP below -1e-9 at large fractional orders), a noise
multiplier below 1e-150 counts as 0, and ``steps = 0`` gives zeros (Opacus: NaN when the
RDP is infinite).

Maths
-----
A mechanism M is (α, ρ)-RDP when D_α(M(D) ‖ M(D')) <= ρ for neighbours D, D' (Mironov
2017). RDP composes additively. The Poisson-subsampled Gaussian (each record in a batch
with probability q, Gaussian noise of standard deviation σ times the L2 sensitivity) has
ρ(α) = log(A_α) / (α - 1), A_α given by the series of Mironov, Talwar & Zhang (2019),
Section 3.3 (see :mod:`ppml_fast._native.accounting`). Conversion to (ε, δ)-DP uses
Balle et al. (2020), "Hypothesis Testing Interpretations and Renyi Differential
Privacy", Theorem 21:

    ε = ρ(α) + log((α - 1)/α) - (log δ + log α)/(α - 1),   minimised over the orders.

The PRV accountant (Gopi, Lee & Wutschitz 2021, "Numerical Composition of Differential
Privacy") discretises the privacy loss random variable Y = log(P(X)/Q(X)), X ~ P, of each
mechanism's dominating pair on a grid of mesh h, matches its mean, composes by FFT and
reads δ(ε) = E[(1 - e^{ε - Y})_+] off the result. With h = ε_err / sqrt(k log(12/δ_err)/2)
and a domain [-L, L] from an RDP tail bound, the true curve satisfies (their Theorem 5.5)

    δ̃(ε + ε_err) - δ_err <= δ(ε) <= δ̃(ε - ε_err) + δ_err,

which is what ``get_epsilon_bounds`` / ``get_delta_bounds`` report. For the
Poisson-subsampled Gaussian the pair is P = (1-q) N(0, σ²) + q N(1, σ²), Q = N(0, σ²)
(the "remove" direction, as in Opacus; it dominates the "add" direction for this
mechanism, which the tests check against dp_accounting's two-sided PLD).

Security notes
--------------
An accountant bounds the privacy loss of mechanisms *as described to it*: the guarantee
holds only if the noise really is Gaussian/Laplace from a secure source, sampling really
is Poisson with the stated rate, and every release is recorded. RDP and PRV upper bounds
are conservative; the PRV *estimate* and *lower* bound are not guarantees.
"""

from __future__ import annotations

import functools
import math
import numbers
import os
import threading
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
from scipy import fft as _fft

from .. import _config
from .budget import PrivacyBudget
from .._errors import PrivacyBudgetExhausted
from .._native import accounting as _kern
from .._validation import NON_NEGATIVE, OPEN_UNIT, POSITIVE, PROBABILITY, check_int, check_scalar

__all__ = [
    "DEFAULT_ALPHAS",
    "DeltaBounds",
    "EpsilonBounds",
    "GaussianEvent",
    "LaplaceEvent",
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
]

#: Opacus' default RDP orders: 1.1, 1.2, ..., 10.9 and 12, 13, ..., 63 (151 orders).
DEFAULT_ALPHAS: list[float] = [1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64))
_DEFAULT_ORDERS = np.array(DEFAULT_ALPHAS, dtype=np.float64)
_DEFAULT_ORDERS.setflags(write=False)

#: Largest finite RDP order accepted (the integer-order series has alpha + 1 terms).
MAX_ORDER = float(2**20)
#: get_noise_multiplier gives up above this noise multiplier (as Opacus does).
MAX_SIGMA = 1e6
#: Largest PRV grid (points) before the accountant asks for a larger eps_error.
MAX_GRID = 2**26

Number = int | float


# ---------------------------------------------------------------------------------------
# Validation helpers
# ---------------------------------------------------------------------------------------


def _check_orders(orders: Any, name: str = "orders") -> tuple[np.ndarray, bool]:
    """Orders as a read-only float64 vector (and whether a scalar was given)."""
    if isinstance(orders, np.ndarray) and orders.dtype == np.float64 and orders.ndim == 1:
        arr = orders
        scalar = False
    else:
        if isinstance(orders, (str, bytes)) or isinstance(orders, (bool, np.bool_)):
            raise TypeError(f"{name} must be a real number or a sequence of them")
        try:
            arr = np.asarray(orders)
        except Exception as exc:  # pragma: no cover - numpy's own message is clear
            raise TypeError(f"{name} must be a real number or a sequence of them") from exc
        if arr.dtype == object or arr.dtype.kind not in "iuf":
            raise TypeError(f"{name} must be real numbers, got dtype {arr.dtype}")
        scalar = arr.ndim == 0
        if arr.ndim > 1:
            raise ValueError(f"{name} must be a scalar or 1-D, got shape {arr.shape}")
        arr = np.atleast_1d(arr).astype(np.float64)
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty")
    if np.isnan(arr).any():
        raise ValueError(f"{name} must not contain NaN")
    if not (arr > 1).all():
        raise ValueError(f"{name} must all be > 1, got {float(arr.min())}")
    finite = arr[np.isfinite(arr)]
    if finite.size and finite.max() > MAX_ORDER:
        raise ValueError(f"{name} must be <= {MAX_ORDER:g} or inf, got {float(finite.max())}")
    return arr, scalar


def _check_steps(steps: Any, name: str = "steps") -> Number:
    if isinstance(steps, (bool, np.bool_)) or not isinstance(steps, numbers.Real):
        raise TypeError(f"{name} must be a non-negative number, got {type(steps).__name__}")
    if isinstance(steps, numbers.Integral):
        if steps < 0:
            raise ValueError(f"{name} must be >= 0, got {steps}")
        return int(steps)
    return check_scalar(steps, name, NON_NEGATIVE)


def _check_delta(delta: Any, name: str = "delta") -> float:
    return check_scalar(delta, name, OPEN_UNIT)


def _threads() -> int:
    return max(1, min(_config.get_num_threads(), 8))


# The PRV kernels run on one thread: two threads saved ~3 ms of ~24 ms on an idle
# machine, but an OpenMP barrier stalls for a scheduler slice whenever another process
# holds the second core (measured 25-57 ms instead of 24.7 ms steady on one thread).
_PRV_THREADS = 1


# ---------------------------------------------------------------------------------------
# RDP: Opacus-compatible functions
# ---------------------------------------------------------------------------------------


def _rdp_threads(n_orders: int) -> int:
    """Threads for the RDP kernel: parallel only when the other cores look idle.

    Opacus' 151 orders take 0.17 ms on two idle cores and 0.3 ms on one; but when another
    process holds a core, OpenMP's barrier stalls each call for a scheduler slice (measured
    4-8 ms per call). The 1-minute load average (below cores - 0.5) is the cheap signal.
    """
    nt = _threads()
    if nt == 1 or n_orders < 32:
        return 1
    try:
        load = os.getloadavg()[0]
    except OSError:  # pragma: no cover - platforms without a load average
        return 1
    return nt if load < (os.cpu_count() or 1) - 0.5 else 1


@functools.lru_cache(maxsize=256)
def _rdp_cached(q: float, sigma: float, orders_key: bytes) -> np.ndarray:
    orders = np.frombuffer(orders_key, dtype=np.float64)
    out = np.empty(orders.shape[0], dtype=np.float64)
    if q == 0:
        out[:] = 0.0
    elif sigma < 1e-150:
        # sigma = 0 is no privacy; below 1e-150, (i^2 - i)/(2 sigma^2) overflows and the
        # true RDP exceeds 1e299 anyway (Opacus raises ZeroDivisionError or loops on NaN)
        out[:] = np.inf
    else:
        _kern.rdp_sgm(q, sigma, orders, out, _rdp_threads(orders.shape[0]))
    out.setflags(write=False)
    return out


def _rdp_step(q: float, sigma: float, orders: np.ndarray) -> np.ndarray:
    """RDP of one step of the sampled Gaussian at each order (read-only, cached)."""
    return _rdp_cached(q, sigma, orders.tobytes())


def compute_rdp(
    q: float,
    noise_multiplier: float,
    steps: Number,
    orders: float | Sequence[float] | npt.ArrayLike,
) -> np.ndarray | float:
    """RDP of ``steps`` compositions of the Poisson-subsampled Gaussian mechanism.

    Mironov, Talwar & Zhang (2019), Section 3.3: ``rdp[k] = steps * log(A_α) / (α - 1)``
    for ``α = orders[k]`` (integer orders by the finite binomial sum, fractional orders
    by the two-sided series). Same values as
    ``opacus.accountants.analysis.rdp.compute_rdp`` (bit for bit per order), which
    this replaces; the arguments may be given by keyword as in Opacus.

    Parameters
    ----------
    q : float
        Sampling rate, in [0, 1]. ``q = 0`` gives 0; ``q = 1`` the plain Gaussian,
        ``α / (2 σ²)``.
    noise_multiplier : float
        σ, the ratio of the noise standard deviation to the L2 sensitivity, >= 0.
        σ = 0 gives ``inf`` (no privacy).
    steps : int or float
        Number of compositions, >= 0.
    orders : float or sequence of float
        Rényi orders, each > 1 (``inf`` allowed, giving ``inf`` unless q = 0 or 1).

    Returns
    -------
    numpy.ndarray or float
        One value per order (a float when ``orders`` is a scalar); may contain ``inf``.

    Raises
    ------
    ValueError
        q outside [0, 1], σ < 0, steps < 0, NaN anywhere, empty orders, an order <= 1.
    """
    q = check_scalar(q, "q", PROBABILITY)
    sigma = check_scalar(noise_multiplier, "noise_multiplier", NON_NEGATIVE)
    steps = _check_steps(steps)
    arr, scalar = _check_orders(orders)
    one = _rdp_step(q, sigma, arr)
    rdp = np.zeros_like(one) if steps == 0 else one * steps
    return float(rdp[0]) if scalar else rdp


def get_privacy_spent(
    *,
    orders: float | Sequence[float] | npt.ArrayLike,
    rdp: float | Sequence[float] | npt.ArrayLike,
    delta: float,
) -> tuple[float, float]:
    """Convert RDP at several orders to (ε, δ)-DP: ``(eps, best_order)``.

    Balle et al. (2020), Theorem 21: ``ε(α) = rdp(α) - (log δ + log α)/(α - 1) +
    log((α - 1)/α)``, minimised over the orders (NaN entries are ignored; if all are NaN
    the answer is ``(inf, nan)``). Warns (``UserWarning``) when the best order is the
    smallest or largest given, because a wider range may give a smaller ε. Same values
    as Opacus' ``get_privacy_spent``.

    Raises
    ------
    ValueError
        delta outside (0, 1), orders and rdp of different lengths, an order <= 1,
        a negative rdp value.
    """
    orders_vec, _ = _check_orders(orders)
    rdp_arr = np.asarray(rdp)
    if rdp_arr.dtype == object or rdp_arr.dtype.kind not in "iuf":
        raise TypeError(f"rdp must be real numbers, got dtype {rdp_arr.dtype}")
    rdp_vec = np.atleast_1d(rdp_arr.astype(np.float64))
    if rdp_vec.ndim != 1:
        raise ValueError(f"rdp must be a scalar or 1-D, got shape {rdp_vec.shape}")
    if rdp_vec.shape[0] != orders_vec.shape[0]:
        raise ValueError(
            f"orders and rdp must have the same length, got {orders_vec.shape[0]} "
            f"and {rdp_vec.shape[0]}"
        )
    if (rdp_vec < -1e-6).any():  # compute_rdp may return rounding-level negatives
        raise ValueError(f"rdp must be >= 0, got {float(np.nanmin(rdp_vec))}")
    delta = _check_delta(delta)
    return _privacy_spent(orders_vec, rdp_vec, delta)


def _privacy_spent(
    orders_vec: np.ndarray, rdp_vec: np.ndarray, delta: float
) -> tuple[float, float]:
    eps = (
        rdp_vec
        - (np.log(delta) + np.log(orders_vec)) / (orders_vec - 1)
        + np.log((orders_vec - 1) / orders_vec)
    )
    if np.isnan(eps).all():
        return math.inf, math.nan
    idx = int(np.nanargmin(eps))
    if idx == 0 or idx == len(eps) - 1:
        which = "smallest" if idx == 0 else "largest"
        warnings.warn(
            f"the optimal RDP order is the {which} one given ({orders_vec[idx]:g}); "
            "a wider range of orders may give a smaller epsilon",
            UserWarning,
            stacklevel=3,
        )
    return float(eps[idx]), float(orders_vec[idx])


# ---------------------------------------------------------------------------------------
# Mechanism events (a small model in the spirit of dp_accounting's DpEvent)
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GaussianEvent:
    """Gaussian mechanism with noise standard deviation ``noise_multiplier`` × Δ₂."""

    noise_multiplier: float

    def __post_init__(self) -> None:
        object.__setattr__(
            self,
            "noise_multiplier",
            check_scalar(self.noise_multiplier, "noise_multiplier", NON_NEGATIVE),
        )


@dataclass(frozen=True)
class LaplaceEvent:
    """Laplace mechanism with noise scale ``noise_multiplier`` × Δ₁ (ε = 1/noise_multiplier)."""

    noise_multiplier: float

    def __post_init__(self) -> None:
        object.__setattr__(
            self,
            "noise_multiplier",
            check_scalar(self.noise_multiplier, "noise_multiplier", POSITIVE),
        )


@dataclass(frozen=True)
class PoissonSampledEvent:
    """``event`` run on a Poisson sample: each record included with ``sample_rate``."""

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
    out: list[tuple[Event, int]] = []
    for item in events:
        if isinstance(item, _EVENT_TYPES):
            out.append((item, 1))
            continue
        if not (isinstance(item, tuple) and len(item) == 2):
            raise TypeError(f"events items must be events or (event, count) pairs, got {item!r}")
        ev, count = item
        if not isinstance(ev, _EVENT_TYPES):
            raise TypeError(f"unknown event type {type(ev).__name__}")
        out.append((ev, check_int(count, "count", 0)))
    return out


def _laplace_rdp(b: float, orders: np.ndarray) -> np.ndarray:
    """RDP of the Laplace mechanism of scale b (Mironov 2017, Table II):
    (1/(α-1)) log(α/(2α-1) e^{(α-1)/b} + (α-1)/(2α-1) e^{-α/b}); 1/b at α = inf."""
    out = np.full(orders.shape, 1.0 / b)
    fin = np.isfinite(orders)
    a = orders[fin]
    t1 = np.log(a / (2 * a - 1)) + (a - 1) / b
    t2 = np.log((a - 1) / (2 * a - 1)) - a / b
    out[fin] = np.logaddexp(t1, t2) / (a - 1)
    return out


def _event_rdp(event: Event, orders: np.ndarray) -> np.ndarray:
    if isinstance(event, LaplaceEvent):
        return _laplace_rdp(event.noise_multiplier, orders)
    if isinstance(event, GaussianEvent):
        return _rdp_step(1.0, event.noise_multiplier, orders)
    return _rdp_step(event.sample_rate, event.event.noise_multiplier, orders)


# ---------------------------------------------------------------------------------------
# RDP accountant
# ---------------------------------------------------------------------------------------


class _HistoryMixin:
    """Opacus-style history of (noise_multiplier, sample_rate, steps) plus other events."""

    history: list[tuple[float, float, int]]
    events: list[tuple[Event, int]]

    def __init__(self) -> None:
        self.history = []
        self.events = []

    def step(self, *, noise_multiplier: float, sample_rate: float) -> None:
        """Record one step of the Poisson-subsampled Gaussian (consecutive equal steps merge)."""
        check_scalar(noise_multiplier, "noise_multiplier", NON_NEGATIVE)
        check_scalar(sample_rate, "sample_rate", PROBABILITY)
        if self.history:
            last_sigma, last_q, n = self.history[-1]
            if last_sigma == noise_multiplier and last_q == sample_rate:
                self.history[-1] = (last_sigma, last_q, n + 1)
                return
        self.history.append((noise_multiplier, sample_rate, 1))

    def compose(self, event: Any, count: int = 1) -> None:
        """Record ``count`` runs of ``event`` (or a list of events / (event, count) pairs)."""
        count = check_int(count, "count", 0)
        for ev, c in _event_entries(event):
            if c * count:
                self.events.append((ev, c * count))

    def __len__(self) -> int:
        return len(self.history) + len(self.events)

    @classmethod
    def mechanism(cls) -> str:  # pragma: no cover - overridden
        raise NotImplementedError

    def state_dict(self, destination: dict[str, Any] | None = None) -> dict[str, Any]:
        """The accountant's state (a copy of ``history``, the events, and ``mechanism``),
        into ``destination`` when given (Opacus' ``IAccountant.state_dict``)."""
        if destination is None:
            destination = {}
        destination["history"] = list(self.history)
        if self.events:
            destination["events"] = list(self.events)
        destination["mechanism"] = self.mechanism()
        return destination

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a state from :meth:`state_dict`; ``ValueError`` if it is empty, lacks
        ``history`` or ``mechanism``, or belongs to another kind of accountant."""
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
        self.history = list(state_dict["history"])
        self.events = list(state_dict.get("events", []))


class RDPAccountant(_HistoryMixin):
    """Rényi-DP accountant with Opacus' interface and values.

    ``step(noise_multiplier=σ, sample_rate=q)`` records a step of DP-SGD; ``compose``
    records other mechanisms (``GaussianEvent``, ``LaplaceEvent``,
    ``PoissonSampledEvent``); ``get_epsilon(delta)`` composes additively in RDP and
    converts with Balle et al. (2020). ``history`` is Opacus' list of
    ``(noise_multiplier, sample_rate, steps)``.
    """

    DEFAULT_ALPHAS = DEFAULT_ALPHAS

    @classmethod
    def mechanism(cls) -> str:
        return "rdp"

    def get_rdp(self, alphas: npt.ArrayLike | None = None) -> np.ndarray:
        """Total RDP at each order of everything recorded."""
        orders = _DEFAULT_ORDERS if alphas is None else _check_orders(alphas, "alphas")[0]
        total: Any = 0
        for sigma, q, steps in self.history:  # the same order of additions as Opacus
            total = total + compute_rdp(q, sigma, steps, orders)
        for ev, count in self.events:
            total = total + _event_rdp(ev, orders) * count
        if isinstance(total, int):
            return np.zeros(orders.shape[0])
        return np.asarray(total, dtype=np.float64)

    def get_privacy_spent(
        self, *, delta: float, alphas: Sequence[float] | None = None
    ) -> tuple[float, float]:
        """(ε, best order) for ``delta``; ``(0.0, 0.0)`` when nothing was recorded."""
        delta = _check_delta(delta)
        if not len(self):
            return 0.0, 0.0
        orders = _DEFAULT_ORDERS if alphas is None else _check_orders(alphas, "alphas")[0]
        return _privacy_spent(orders, self.get_rdp(orders), delta)

    def get_epsilon(
        self, delta: float, alphas: Sequence[float] | None = None, **kwargs: Any
    ) -> float:
        """ε spent so far at ``delta`` (an upper bound)."""
        if kwargs:
            raise TypeError(f"unexpected arguments {sorted(kwargs)}")
        eps, _ = self.get_privacy_spent(delta=delta, alphas=alphas)
        return eps


# ---------------------------------------------------------------------------------------
# PRV accountant (Gopi, Lee & Wutschitz 2021)
# ---------------------------------------------------------------------------------------


class EpsilonBounds(NamedTuple):
    """ε with the PRV accountant's stated error: lower <= true ε <= upper."""

    lower: float
    estimate: float
    upper: float


class DeltaBounds(NamedTuple):
    """δ(ε) with the PRV accountant's stated error: lower <= true δ <= upper."""

    lower: float
    estimate: float
    upper: float


@dataclass(frozen=True)
class _Term:
    kind: str  # "sgm" (sampled Gaussian, q = 1 plain Gaussian) or "lap"
    q: float
    scale: float  # σ for sgm, b for lap
    count: int


_GL_X, _GL_W = np.polynomial.legendre.leggauss(20)


def _sgm_x_of_t(t: float, q: float, sigma: float) -> float:
    """x with L(x) = t for the sampled-Gaussian loss L(x) = log(1 - q + q e^{(2x-1)/(2σ²)})."""
    if q == 1.0:
        return sigma * sigma * t + 0.5
    if t <= math.log1p(-q):
        return -math.inf
    z = (
        math.log1p(math.expm1(t) / q)
        if t <= 0
        else t - math.log(q) + math.log1p(-(1 - q) * math.exp(-t))
    )
    return sigma * sigma * z + 0.5


def _sgm_partial_mean(q: float, sigma: float, t_lo: float, t_hi: float) -> tuple[float, float]:
    """(E[Y; t_lo < Y <= t_hi], P(t_lo < Y <= t_hi)) for the sampled-Gaussian PRV,
    by composite 20-point Gauss-Legendre in x (panels of at most min(σ, σ²)/4)."""
    x_hi = _sgm_x_of_t(t_hi, q, sigma)
    x_lo = _sgm_x_of_t(t_lo, q, sigma)
    x_lo = max(x_lo, min(0.0, x_hi) - 40.0 * sigma - 1.0)
    if not x_hi > x_lo:
        return 0.0, 0.0
    width = min(sigma, sigma * sigma) / 4
    panels = max(1, math.ceil((x_hi - x_lo) / width))
    edges = np.linspace(x_lo, x_hi, panels + 1)
    half = np.diff(edges)[:, None] / 2
    x = (edges[:-1, None] + half) + half * _GL_X[None, :]
    w = half * _GL_W[None, :]
    s2 = sigma * sigma
    norm = 1.0 / (sigma * math.sqrt(2 * math.pi))
    dens = (1 - q) * np.exp(-x * x / (2 * s2)) + q * np.exp(-((x - 1) ** 2) / (2 * s2))
    dens *= norm
    loss = (2 * x - 1) / (2 * s2) if q == 1.0 else np.log1p(q * np.expm1((2 * x - 1) / (2 * s2)))
    return float(np.sum(w * loss * dens)), float(np.sum(w * dens))


class _Grid(NamedTuple):
    h: float
    j_lo: int
    j_hi: int
    n: int


def _discretise(term: _Term, grid: _Grid, floor_mass: float) -> tuple[np.ndarray, int, float]:
    """Cell masses of one step's PRV on cells [(j-1/2)h, (j+1/2)h), j from j_start.

    Returns (masses, j_start, mean shift). Mass below the first cell's left edge joins
    the first cell and mass above the last computed edge joins the last cell; the
    shift makes the discrete mean equal the continuous mean of that same distribution.
    """
    h = grid.h
    if term.kind == "lap":
        b = term.scale
        j0 = max(grid.j_lo, math.floor(-1.0 / (b * h) + 0.5) - 1)
        j1 = min(grid.j_hi, math.ceil(1.0 / (b * h) + 0.5) + 1)
        edges = (np.arange(j0, j1 + 2, dtype=np.float64) - 0.5) * h
        surv = np.where(
            edges < -1.0 / b,
            1.0,
            np.where(edges >= 1.0 / b, 0.0, 1.0 - 0.5 * np.exp(-(1.0 - b * edges) / (2 * b))),
        )
        surv[0], surv[-1] = 1.0, 0.0
        masses = surv[:-1] - surv[1:]
        mean_c = 1.0 / b + math.expm1(-1.0 / b)
        centres = np.arange(j0, j1 + 1, dtype=np.float64) * h
        return masses, j0, mean_c - float(centres @ masses)

    q, sigma = term.q, term.scale
    if q < 1.0:
        j0 = max(grid.j_lo, math.floor(math.log1p(-q) / h + 0.5))
    else:
        j0 = grid.j_lo
    n_cells = grid.j_hi - j0 + 1
    masses = np.zeros(n_cells, dtype=np.float64)
    start = (j0 - 0.5) * h
    filled = _kern.sgm_cells(q, sigma, start, h, n_cells, floor_mass, masses, _PRV_THREADS)
    filled = max(filled, 1)
    masses = masses[:filled]
    stop = (j0 + filled - 0.5) * h
    probe = np.array([start, stop])
    s = np.empty(2)
    _kern.sgm_survival(q, sigma, probe, s, 1)
    below, above = 1.0 - s[0], s[1]
    masses[0] += below
    masses[-1] += above
    part_mean, _ = _sgm_partial_mean(q, sigma, start, stop)
    mean_c = part_mean + below * (j0 * h) + above * ((j0 + filled - 1) * h)
    centres = np.arange(j0, j0 + filled, dtype=np.float64) * h
    return masses, j0, mean_c - float(centres @ masses)


class _ComposedPRV:
    """The composed discrete PRV; answers suffix sums d1(i), d2(i) over sorted cells.

    Cell i (0 <= i < n) sits at t_i = t0 + i h. d1(i) = sum_{m >= i} p_m and
    d2(i) = sum_{m >= i} p_m e^{-t_m}; δ̃(t) = d1(i) - e^t d2(i) for t in [t_{i-1}, t_i].
    When the composed characteristic function is negligible beyond F << n frequencies
    (the usual case: the composed PRV is smooth), the sums come straight from the first
    F Fourier coefficients by geometric series (O(F) per query, no inverse FFT).
    """

    def __init__(
        self, spectra: list[tuple[np.ndarray, int]], grid: _Grid, shift: float, tol: float
    ) -> None:
        n = grid.n
        self.n, self.h = n, grid.h
        self.t0 = grid.j_lo * grid.h + shift
        nt = _PRV_THREADS
        nfreq = n // 2 + 1
        mags = np.ones(nfreq)
        for spec, k in spectra:
            _kern.abs_pow_into(spec, k, mags, nt)
        # |error of any d1, e^t d2| <= 2 * sum_{f >= F} |Y_f| (both halves of the spectrum)
        big_f = _kern.tail_start(mags, tol / 2)
        self.spectral = big_f <= nfreq // 8
        if self.spectral:
            big_f = max(big_f, 2)
            y = np.ones(big_f, dtype=np.complex128)
            for spec, k in spectra:
                part = np.ascontiguousarray(spec[:big_f])
                _kern.power_inplace(part, k, nt)
                y *= part
            f = np.arange(big_f, dtype=np.int64)
            phase = (f * (grid.j_lo % n)) % n
            self._pref = y * np.exp(2j * np.pi * phase / n)
            self._f = f
            # 1 - w and w^i - 1 are computed as expm1 of an angle, never as a difference
            # of two numbers near 1: at n ~ 1e7 the difference would lose ~7 digits.
            self._w_inv = np.empty(big_f, dtype=np.complex128)
            self._w_inv[0] = 0.0
            self._w_inv[1:] = -1.0 / _expm1_i(2 * np.pi * f[1:] / n)
            zlog = -grid.h + 2j * np.pi * f / n
            self._z_inv = 1.0 / (-np.expm1(zlog))
            self._zn = math.exp(-grid.h * n)
            self._zlog_re = -grid.h
        else:
            y = np.ones(nfreq, dtype=np.complex128)
            for spec, k in spectra:
                part = spec.copy()
                _kern.power_inplace(part, k, nt)
                y *= part
            circ = _fft.irfft(y, n=n, workers=nt)
            pmf = np.roll(circ, -(grid.j_lo % n))
            self._d1 = np.empty(n)
            self._d2 = np.empty(n)
            _kern.tail_sums(pmf, self.t0, grid.h, 0, self._d1, self._d2)

    def sums(self, i: int) -> tuple[float, float]:
        if i >= self.n:
            return 0.0, 0.0
        i = max(i, 0)
        if not self.spectral:
            return float(self._d1[i]), float(self._d2[i])
        n = self.n
        phase = 2 * np.pi * ((self._f * i) % n) / n
        ang_m1 = _expm1_i(phase)  # w^i - 1
        g1 = ang_m1 * self._w_inv  # sum_{m=i}^{n-1} w^m
        g1[0] = n - i
        zi = math.exp(self._zlog_re * i) * (ang_m1 + 1.0)  # z^i
        g2 = (zi - self._zn) * self._z_inv
        t1 = self._pref * g1
        t2 = self._pref * g2
        d1 = (t1[0].real + 2.0 * t1[1:].real.sum()) / n
        d2 = (t2[0].real + 2.0 * t2[1:].real.sum()) / n * math.exp(-self.t0)
        return d1, d2

    def delta(self, eps: float) -> float:
        """δ̃(eps) = sum over cells above eps of p (1 - e^{eps - t})."""
        i = math.floor((eps - self.t0) / self.h) + 1
        d1, d2 = self.sums(i)
        return max(0.0, d1 - math.exp(eps) * d2)

    def epsilon(self, delta: float) -> float:
        """Smallest ε >= 0 with δ̃(ε) <= delta (Opacus' read-out, by bisection on cells)."""
        lo = max(0, math.ceil(-self.t0 / self.h))  # first cell with t >= 0
        hi = self.n - 1

        def excess(i: int) -> bool:  # δ̃(t_i) > delta ?
            d1, d2 = self.sums(i)
            return d1 - math.exp(self.t0 + i * self.h) * d2 > delta

        if not excess(lo):
            i = lo
        else:
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if excess(mid):
                    lo = mid
                else:
                    hi = mid
            i = hi
        d1, d2 = self.sums(i)
        if d1 - delta <= 0 or d2 <= 0:
            return max(0.0, self.t0 + (i - 1) * self.h)
        return max(0.0, math.log((d1 - delta) / d2))


def _expm1_i(theta: np.ndarray) -> np.ndarray:
    """e^{i theta} - 1 to full relative precision: -2 sin^2(theta/2) + i sin(theta)."""
    s = np.sin(theta / 2)
    return -2 * s * s + 1j * np.sin(theta)


class PRVAccountant(_HistoryMixin):
    """Privacy-loss-random-variable accountant (Gopi, Lee & Wutschitz 2021) with stated
    error bounds, Opacus' ``PRVAccountant`` interface, and heterogeneous events.

    ``get_epsilon(delta, eps_error=0.01)`` returns the upper bound ``ε̃(δ - δ_err) +
    ε_err`` (as Opacus does); ``get_epsilon_bounds`` returns (lower, estimate, upper) and
    the true ε lies between lower and upper. ``get_delta`` / ``get_delta_bounds`` answer
    the other way round. ``delta_error`` defaults to ``delta / 1000`` for ε queries and
    to 1e-10 for δ queries.

    Cost: one real FFT of about ``2L / h`` points with ``h = ε_err / sqrt(k log(12 /
    δ_err) / 2)`` (k the total number of compositions, L an RDP tail bound); halving
    ``eps_error`` doubles it.
    """

    def __init__(self) -> None:
        super().__init__()
        self._cache: dict[tuple[Any, ...], tuple[_ComposedPRV | None, float]] = {}
        self._lock = threading.Lock()

    @classmethod
    def mechanism(cls) -> str:
        return "prv"

    def _terms(self) -> list[_Term] | None:
        """Merged terms, or None when some term has no privacy (σ = 0 with q > 0)."""
        counts: dict[tuple[str, float, float], int] = {}
        for sigma, q, steps in self.history:
            if q == 0 or steps == 0:
                continue
            if sigma == 0:
                return None
            key = ("sgm", float(q), float(sigma))
            counts[key] = counts.get(key, 0) + int(steps)
        for ev, c in self.events:
            if c == 0:
                continue
            if isinstance(ev, LaplaceEvent):
                key = ("lap", 1.0, ev.noise_multiplier)
            elif isinstance(ev, GaussianEvent):
                key = ("sgm", 1.0, ev.noise_multiplier)
            else:
                if ev.sample_rate == 0:
                    continue
                key = ("sgm", ev.sample_rate, ev.event.noise_multiplier)
            if key[0] == "sgm" and key[2] == 0:
                return None
            counts[key] = counts.get(key, 0) + c
        return [_Term(kind, q, s, c) for (kind, q, s), c in counts.items()]

    def _rdp_epsilon(self, terms: list[_Term], delta: float, single: bool) -> float:
        """RDP tail bound used to size the domain (Gopi et al., Remark 5.6)."""
        orders = _DEFAULT_ORDERS
        best = 0.0
        if single:
            for t in terms:
                best = max(best, _privacy_spent_quiet(orders, _term_rdp(t, orders), delta))
            return best
        total = sum(_term_rdp(t, orders) * t.count for t in terms)
        return _privacy_spent_quiet(orders, np.asarray(total), delta)

    def _composed(self, eps_error: float, delta_error: float) -> tuple[_ComposedPRV | None, float]:
        key = (tuple(self.history), tuple(self.events), eps_error, delta_error)
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None:
            return hit
        result = self._build(eps_error, delta_error)
        with self._lock:
            if len(self._cache) > 8:
                self._cache.clear()
            self._cache[key] = result
        return result

    def _build(self, eps_error: float, delta_error: float) -> tuple[_ComposedPRV | None, float]:
        terms = self._terms()
        if terms is None:
            return None, math.inf
        if not terms:
            return None, 0.0
        k_total = sum(t.count for t in terms)
        big_l = max(
            self._rdp_epsilon(terms, delta_error / 4, single=False),
            self._rdp_epsilon(terms, delta_error / (8 * k_total), single=True),
        )
        if not math.isfinite(big_l):
            return None, math.inf
        big_l = max(big_l, eps_error) + 3
        for t in terms:
            if t.kind == "lap":
                big_l = max(big_l, 1.0 / t.scale + 1.0)
        h = eps_error / math.sqrt(k_total * math.log(12 / delta_error) / 2)
        j_lo = math.floor(-big_l / h)
        j_hi = math.ceil(big_l / h)
        n = _fft.next_fast_len(j_hi - j_lo + 1, real=True)
        while n % 2:
            n = _fft.next_fast_len(n + 1, real=True)
        if n > MAX_GRID:
            raise ValueError(
                f"the PRV grid would need {n} points (> {MAX_GRID}); increase eps_error "
                f"(got {eps_error}) or use the RDP accountant"
            )
        j_hi = j_lo + n - 1
        grid = _Grid(h, j_lo, j_hi, n)
        floor_mass = 1e-3 * delta_error / k_total
        spectra: list[tuple[np.ndarray, int]] = []
        shift = 0.0
        nt = _PRV_THREADS
        for t in terms:
            masses, j0, sh = _discretise(t, grid, floor_mass)
            if abs(sh) >= h / 2:
                raise RuntimeError("discrete mean differs from the continuous mean by >= h/2")
            circ = np.zeros(n)
            start = j0 % n
            first = min(masses.shape[0], n - start)
            circ[start : start + first] = masses[:first]
            circ[: masses.shape[0] - first] = masses[first:]
            spectra.append((_fft.rfft(circ, workers=nt), t.count))
            shift += sh * t.count
        composed = _ComposedPRV(spectra, grid, shift, tol=1e-3 * delta_error)
        # probability mass moved down by the early stop (floor_mass per step)
        return composed, k_total * floor_mass

    def _errors(
        self, delta: float | None, eps_error: Any, delta_error: Any, default_delta_error: float
    ) -> tuple[float, float]:
        eps_error = check_scalar(eps_error, "eps_error", POSITIVE)
        if delta_error is None:
            delta_error = default_delta_error
        delta_error = check_scalar(delta_error, "delta_error", OPEN_UNIT)
        if delta is not None and delta_error >= delta:
            raise ValueError(f"delta_error must be < delta ({delta}), got {delta_error}")
        return eps_error, delta_error

    def get_epsilon_bounds(
        self, delta: float, *, eps_error: float = 0.01, delta_error: float | None = None
    ) -> EpsilonBounds:
        """(lower, estimate, upper) of ε at ``delta``; the true ε is within the bounds."""
        delta = _check_delta(delta)
        eps_error, delta_error = self._errors(delta, eps_error, delta_error, delta / 1000)
        composed, extra = self._composed(eps_error, delta_error)
        if composed is None:
            return EpsilonBounds(extra, extra, extra)
        if np.finfo(np.longdouble).eps * composed.n > delta - delta_error:
            raise ValueError(
                f"delta is too small for this grid (floating-point error would dominate); "
                f"got delta={delta}"
            )
        upper = composed.epsilon(delta - delta_error - extra) + eps_error
        lower = max(0.0, composed.epsilon(delta + delta_error) - eps_error)
        estimate = composed.epsilon(delta)
        return EpsilonBounds(lower, estimate, upper)

    def get_epsilon(
        self,
        delta: float,
        *,
        eps_error: float = 0.01,
        delta_error: float | None = None,
        **kwargs: Any,
    ) -> float:
        """Upper bound on ε at ``delta`` (Opacus' ``PRVAccountant.get_epsilon``)."""
        if kwargs:
            raise TypeError(f"unexpected arguments {sorted(kwargs)}")
        return self.get_epsilon_bounds(delta, eps_error=eps_error, delta_error=delta_error).upper

    def get_delta_bounds(
        self, epsilon: float, *, eps_error: float = 0.01, delta_error: float | None = None
    ) -> DeltaBounds:
        """(lower, estimate, upper) of δ at ``epsilon``; the true δ is within the bounds."""
        epsilon = check_scalar(epsilon, "epsilon", NON_NEGATIVE)
        eps_error, delta_error = self._errors(None, eps_error, delta_error, 1e-10)
        composed, extra = self._composed(eps_error, delta_error)
        if composed is None:
            value = 1.0 if math.isinf(extra) else 0.0
            return DeltaBounds(value, value, value)
        upper = min(1.0, composed.delta(epsilon - eps_error) + delta_error + extra)
        lower = max(0.0, composed.delta(epsilon + eps_error) - delta_error)
        return DeltaBounds(lower, composed.delta(epsilon), upper)

    def get_delta(
        self, epsilon: float, *, eps_error: float = 0.01, delta_error: float | None = None
    ) -> float:
        """Upper bound on δ at ``epsilon``."""
        return self.get_delta_bounds(epsilon, eps_error=eps_error, delta_error=delta_error).upper


def _term_rdp(t: _Term, orders: np.ndarray) -> np.ndarray:
    if t.kind == "lap":
        return _laplace_rdp(t.scale, orders)
    return _rdp_step(t.q, t.scale, orders)


def _privacy_spent_quiet(orders: np.ndarray, rdp: np.ndarray, delta: float) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return _privacy_spent(orders, rdp, delta)[0]


# ---------------------------------------------------------------------------------------
# Accountant factory, composition of events, calibration and inverse queries
# ---------------------------------------------------------------------------------------

_ACCOUNTANTS: dict[str, type[_HistoryMixin]] = {"rdp": RDPAccountant, "prv": PRVAccountant}


def create_accountant(mechanism: str) -> RDPAccountant | PRVAccountant:
    """A fresh accountant: ``"rdp"`` or ``"prv"`` (Opacus' names)."""
    if mechanism not in _ACCOUNTANTS:
        raise ValueError(f"accountant must be one of {sorted(_ACCOUNTANTS)}, got {mechanism!r}")
    acc = _ACCOUNTANTS[mechanism]()
    assert isinstance(acc, (RDPAccountant, PRVAccountant))
    return acc


def compose(events: Any, *, delta: float, accountant: str = "prv", **kwargs: Any) -> float:
    """ε (an upper bound) at ``delta`` of a list of events or (event, count) pairs.

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
    Opacus' σ exactly; ``"prv"`` uses the PRV upper bound). Give exactly one of
    ``steps`` and ``epochs`` (steps = int(epochs / sample_rate)). ``kwargs`` go to the
    accountant's ``get_epsilon`` (``alphas`` for RDP, ``eps_error``/``delta_error`` for PRV).

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
        steps = int(check_scalar(epochs, "epochs", POSITIVE) / sample_rate)
    steps = check_int(steps, "steps", 1)
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
    is ``max_steps``). Returns 0 when even one step exceeds the target.
    """
    target_epsilon, target_delta, sample_rate, _ = _check_calibration(
        target_epsilon, target_delta, sample_rate, 1.0
    )
    sigma = check_scalar(noise_multiplier, "noise_multiplier", NON_NEGATIVE)
    max_steps = check_int(max_steps, "max_steps", 1)
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
