"""Rényi-DP accounting with Opacus' interface and values: ``compute_rdp``,
``get_privacy_spent`` and ``RDPAccountant``.

Maths
-----
A mechanism M is (α, ρ)-RDP when D_α(M(D) ‖ M(D')) <= ρ for neighbours D, D' (Mironov
2017). RDP composes additively. The Poisson-subsampled Gaussian (each record in a batch
with probability q, Gaussian noise of standard deviation σ times the L2 sensitivity) has
ρ(α) = log(A_α) / (α - 1), A_α given by the series of Mironov, Talwar & Zhang (2019),
Section 3.3 (see :mod:`ppml_fast._native.accounting`); the Laplace mechanism of scale b
has the closed form of Mironov (2017), Table II. Conversion to (ε, δ)-DP uses Balle et
al. (2020), "Hypothesis Testing Interpretations and Renyi Differential Privacy",
Theorem 21:

    ε = ρ(α) + log((α - 1)/α) - (log δ + log α)/(α - 1),   minimised over the orders.

The RDP of each order is the double Opacus computes, bit for bit (the kernel performs
the same operations with the same special functions), and the conversion is the same.
"""

from __future__ import annotations

import functools
import math
import os
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from .. import _config
from .._native import accounting as _kernels
from .._types import ArrayLike
from .._validation import NON_NEGATIVE, OPEN_UNIT, PROBABILITY, check_int, check_scalar
from .events import Event, GaussianEvent, LaplaceEvent, _HistoryMixin

__all__ = ["DEFAULT_ALPHAS", "RDPAccountant", "compute_rdp", "get_privacy_spent"]

#: Opacus' default RDP orders: 1.1, 1.2, ..., 10.9 and 12, 13, ..., 63 (151 orders).
DEFAULT_ALPHAS: list[float] = [1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64))
_DEFAULT_ORDERS = np.array(DEFAULT_ALPHAS, dtype=np.float64)
_DEFAULT_ORDERS.setflags(write=False)

#: Largest finite RDP order accepted (the integer-order series has alpha + 1 terms).
MAX_ORDER = float(2**20)

Number = int | float


# ---------------------------------------------------------------------------------------
# Validation helpers
# ---------------------------------------------------------------------------------------


def _check_orders(orders: Any, name: str = "orders") -> tuple[npt.NDArray[np.float64], bool]:
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


#: Largest step count accepted: an int64, far beyond any training run, and small enough
#: that ``steps * rdp`` stays a float (a Python int past 1e308 cannot be converted).
MAX_STEPS = 2**63 - 1


def _check_steps(steps: Any, name: str = "steps") -> int:
    """A step count: an int (numpy integers too) in ``[0, MAX_STEPS]``.

    Floats are refused (``TypeError``), integral or not: a fractional count of
    compositions has no meaning, and ``steps=2.5`` is a bug upstream (e.g. ``epochs / q``
    not rounded); NaN and inf are ``ValueError``, as for every other parameter.
    """
    if isinstance(steps, (float, np.floating)) and not math.isfinite(steps):
        raise ValueError(f"{name} must be finite, got {float(steps)}")
    return check_int(steps, name, 0, MAX_STEPS)


def _check_rdp(rdp: Any, n_orders: int) -> npt.NDArray[np.float64]:
    """RDP values: real, 1-D (or a scalar), one per order, >= 0 or inf, no NaN."""
    if isinstance(rdp, (str, bytes)):
        raise TypeError("rdp must be real numbers, got str")
    try:
        rdp_arr = np.asarray(rdp)
    except (RuntimeError, TypeError, ValueError) as exc:  # ragged nesting
        raise TypeError(f"rdp must be a real number or a sequence of them: {exc}") from None
    if rdp_arr.dtype == object or rdp_arr.dtype.kind not in "iuf":
        raise TypeError(f"rdp must be real numbers, got dtype {rdp_arr.dtype}")
    rdp_vec = np.atleast_1d(rdp_arr.astype(np.float64))
    if rdp_vec.ndim != 1:
        raise ValueError(f"rdp must be a scalar or 1-D, got shape {rdp_vec.shape}")
    if rdp_vec.shape[0] != n_orders:
        raise ValueError(
            f"orders and rdp must have the same length, got {n_orders} and {rdp_vec.shape[0]}"
        )
    if np.isnan(rdp_vec).any():
        # an order whose RDP is unknown must not be skipped: the minimum over the
        # others would look like a guarantee that was never computed for that order
        raise ValueError(f"rdp must not contain NaN (at index {int(np.argmax(np.isnan(rdp_vec)))})")
    if (rdp_vec < -1e-6).any():  # compute_rdp may return rounding-level negatives
        raise ValueError(f"rdp must be >= 0, got {float(rdp_vec.min())}")
    return rdp_vec


def _check_delta(delta: Any, name: str = "delta") -> float:
    return check_scalar(delta, name, OPEN_UNIT)


# ---------------------------------------------------------------------------------------
# RDP of one step
# ---------------------------------------------------------------------------------------


def _rdp_threads(n_orders: int) -> int:
    """Threads for the RDP kernel: parallel only when the other cores look idle.

    Splitting the orders over threads pays off only on idle cores: when another process
    holds a core, OpenMP's barrier stalls each call for a scheduler slice, far longer
    than the whole computation. The 1-minute load average (below cores - 0.5) is the
    cheap signal.
    """
    nt = max(1, min(_config.omp_threads(), 8))
    if nt == 1 or n_orders < 32:
        return 1
    try:
        load = os.getloadavg()[0]
    except OSError:  # pragma: no cover - platforms without a load average
        return 1
    return nt if load < (os.cpu_count() or 1) - 0.5 else 1


@functools.lru_cache(maxsize=256)
def _rdp_cached(q: float, sigma: float, orders_key: bytes) -> npt.NDArray[np.float64]:
    orders = np.frombuffer(orders_key, dtype=np.float64)
    out = np.empty(orders.shape[0], dtype=np.float64)
    if q == 0:
        out[:] = 0.0
    elif sigma < 1e-150:
        # sigma = 0 is no privacy; below 1e-150, (i^2 - i)/(2 sigma^2) overflows and the
        # true RDP exceeds 1e299 anyway (Opacus raises ZeroDivisionError or loops on NaN)
        out[:] = np.inf
    else:
        _kernels.rdp_sgm(q, sigma, orders, out, _rdp_threads(orders.shape[0]))
    out.setflags(write=False)
    return out


def _rdp_step(q: float, sigma: float, orders: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """RDP of one step of the sampled Gaussian at each order (read-only, cached)."""
    return _rdp_cached(q, sigma, orders.tobytes())


def _laplace_rdp(b: float, orders: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """RDP of the Laplace mechanism of scale b (Mironov 2017, Table II).

    (1/(α-1)) log(α/(2α-1) e^{(α-1)/b} + (α-1)/(2α-1) e^{-α/b}); 1/b at α = inf.
    """
    out = np.full(orders.shape, 1.0 / b)
    fin = np.isfinite(orders)
    a = orders[fin]
    t1 = np.log(a / (2 * a - 1)) + (a - 1) / b
    t2 = np.log((a - 1) / (2 * a - 1)) - a / b
    out[fin] = np.logaddexp(t1, t2) / (a - 1)
    return out


def _event_rdp(event: Event, orders: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """RDP of one run of ``event`` at each order."""
    if isinstance(event, LaplaceEvent):
        return _laplace_rdp(event.noise_multiplier, orders)
    if isinstance(event, GaussianEvent):
        return _rdp_step(1.0, event.noise_multiplier, orders)
    return _rdp_step(event.sample_rate, event.event.noise_multiplier, orders)


# ---------------------------------------------------------------------------------------
# Opacus-compatible functions
# ---------------------------------------------------------------------------------------


def compute_rdp(
    q: float,
    noise_multiplier: float,
    steps: int,
    orders: float | Sequence[float] | ArrayLike,
) -> npt.NDArray[np.float64] | float:
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
    steps : int
        Number of compositions, an int in ``[0, 2**63 - 1]`` (floats, even integral ones,
        and bools raise ``TypeError``).
    orders : float or sequence of float
        Rényi orders, each > 1 (``inf`` allowed, giving ``inf`` unless q = 0 or 1).

    Returns
    -------
    numpy.ndarray or float
        One value per order (a float when ``orders`` is a scalar); may contain ``inf``.

    Raises
    ------
    TypeError
        An argument of the wrong type: steps not an int, orders not real numbers.
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
    orders: float | Sequence[float] | ArrayLike,
    rdp: float | Sequence[float] | ArrayLike,
    delta: float,
) -> tuple[float, float]:
    """Convert RDP at several orders to (ε, δ)-DP: ``(eps, best_order)``.

    Balle et al. (2020), Theorem 21: ``ε(α) = rdp(α) - (log δ + log α)/(α - 1) +
    log((α - 1)/α)``, minimised over the orders. Same values as Opacus'
    ``get_privacy_spent``.

    Parameters
    ----------
    orders : float or sequence of float
        Rényi orders, each > 1 (``inf`` allowed).
    rdp : float or sequence of float
        The RDP at each order, >= 0 (rounding-level negatives down to -1e-6 pass);
        ``inf`` is allowed (no guarantee at that order), NaN is not (``ValueError``:
        ignoring it would report ε from the other orders as if it were known there).
    delta : float
        Target δ, in (0, 1).

    Returns
    -------
    tuple of (float, float)
        ``(eps, best_order)``: the smallest ε over the orders and the order giving it;
        ``(inf, nan)`` when no order gives a finite ε (e.g. only ``inf`` orders).

    Raises
    ------
    TypeError
        If ``orders`` or ``rdp`` is not real numbers, or ``delta`` is not a real number.
    ValueError
        delta outside (0, 1), orders and rdp of different lengths, an order <= 1,
        a negative or NaN rdp value.

    Warns
    -----
    UserWarning
        When the best order is the smallest or largest given, because a wider range
        may give a smaller ε.
    """
    orders_vec, _ = _check_orders(orders)
    rdp_vec = _check_rdp(rdp, orders_vec.shape[0])
    delta = _check_delta(delta)
    return _privacy_spent(orders_vec, rdp_vec, delta)


def _privacy_spent(
    orders_vec: npt.NDArray[np.float64], rdp_vec: npt.NDArray[np.float64], delta: float
) -> tuple[float, float]:
    """Balle et al. (2020), Theorem 21, on validated vectors (the caller's caller is warned)."""
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


def _privacy_spent_quiet(
    orders: npt.NDArray[np.float64], rdp: npt.NDArray[np.float64], delta: float
) -> float:
    """ε of :func:`_privacy_spent` without the optimal-order warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return _privacy_spent(orders, rdp, delta)[0]


# ---------------------------------------------------------------------------------------
# RDP accountant
# ---------------------------------------------------------------------------------------


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
        """``"rdp"``."""
        return "rdp"

    def get_rdp(self, alphas: ArrayLike | None = None) -> npt.NDArray[np.float64]:
        """Total RDP at each order of everything recorded.

        Parameters
        ----------
        alphas : sequence of float, optional
            Rényi orders, each > 1; :data:`DEFAULT_ALPHAS` when omitted.

        Returns
        -------
        numpy.ndarray
            The RDP at each order (zeros when nothing was recorded).
        """
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
        """(ε, best order) of everything recorded, at ``delta``.

        Parameters
        ----------
        delta : float
            Target δ, in (0, 1).
        alphas : sequence of float, optional
            Rényi orders, each > 1; :data:`DEFAULT_ALPHAS` when omitted.

        Returns
        -------
        tuple of (float, float)
            As :func:`get_privacy_spent`; ``(0.0, 0.0)`` when nothing was recorded.
        """
        delta = _check_delta(delta)
        if not len(self):
            return 0.0, 0.0
        orders = _DEFAULT_ORDERS if alphas is None else _check_orders(alphas, "alphas")[0]
        return _privacy_spent(orders, self.get_rdp(orders), delta)

    def get_epsilon(
        self, delta: float, alphas: Sequence[float] | None = None, **kwargs: Any
    ) -> float:
        """ε spent so far at ``delta`` (an upper bound).

        Parameters
        ----------
        delta : float
            Target δ, in (0, 1).
        alphas : sequence of float, optional
            Rényi orders, each > 1; :data:`DEFAULT_ALPHAS` when omitted.
        **kwargs
            None accepted (a ``TypeError`` names any given).

        Returns
        -------
        float
            The ε of :meth:`get_privacy_spent`.
        """
        if kwargs:
            raise TypeError(f"unexpected arguments {sorted(kwargs)}")
        eps, _ = self.get_privacy_spent(delta=delta, alphas=alphas)
        return eps
