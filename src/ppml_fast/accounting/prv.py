"""The PRV accountant of Gopi, Lee & Wutschitz (2021), with stated error bounds.

Maths
-----
Gopi, Lee & Wutschitz (2021), "Numerical Composition of Differential Privacy",
discretise the privacy loss random variable Y = log(P(X)/Q(X)), X ~ P, of each
mechanism's dominating pair on a grid of mesh h, match its mean, compose by FFT and read
δ(ε) = E[(1 - e^{ε - Y})_+] off the result. With h = ε_err / sqrt(k log(12/δ_err)/2)
and a domain [-L, L] from an RDP tail bound, the true curve satisfies (their Theorem 5.5)

    δ̃(ε + ε_err) - δ_err <= δ(ε) <= δ̃(ε - ε_err) + δ_err,

which is what ``get_epsilon_bounds`` / ``get_delta_bounds`` report. For the
Poisson-subsampled Gaussian the pair is P = (1-q) N(0, σ²) + q N(1, σ²), Q = N(0, σ²)
(the "remove" direction, as in Opacus; it dominates the "add" direction for this
mechanism, which the tests check against dp_accounting's two-sided PLD). For the Laplace
mechanism of scale b the pair is P = Lap(0, b), Q = Lap(1, b).

Security
--------
The upper bounds are guarantees (for the mechanisms as described to the accountant);
the *estimate* and the *lower* bound are not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
from scipy import fft as _fft

from .._forksafe import ForkSafeLock
from .._native import accounting as _kernels
from .._validation import NON_NEGATIVE, OPEN_UNIT, POSITIVE, check_scalar
from .events import GaussianEvent, LaplaceEvent, _HistoryMixin
from .rdp import _DEFAULT_ORDERS, _check_delta, _laplace_rdp, _privacy_spent_quiet, _rdp_step

__all__ = ["DeltaBounds", "EpsilonBounds", "PRVAccountant"]

#: Largest PRV grid (points) before the accountant asks for a larger eps_error.
MAX_GRID = 2**26

# The PRV kernels run on one thread: the FFT-sized loops are short, and an OpenMP
# barrier stalls for a scheduler slice whenever another process holds a core, which
# costs more than a second thread saves.
_PRV_THREADS = 1


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
    """``count`` compositions of one mechanism, as the PRV accountant merges them."""

    kind: str  # "sgm" (sampled Gaussian, q = 1 plain Gaussian) or "lap"
    q: float
    scale: float  # σ for sgm, b for lap
    count: int


def _term_rdp(t: _Term, orders: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """RDP of one step of ``t`` at each order (for the RDP tail bound on the domain)."""
    if t.kind == "lap":
        return _laplace_rdp(t.scale, orders)
    return _rdp_step(t.q, t.scale, orders)


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
    """Cells j_lo..j_hi of mesh h (cell j centred at j h); n = j_hi - j_lo + 1 points."""

    h: float
    j_lo: int
    j_hi: int
    n: int


def _discretise(
    term: _Term, grid: _Grid, floor_mass: float
) -> tuple[npt.NDArray[np.float64], int, float]:
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
    filled = _kernels.sgm_cells(q, sigma, start, h, n_cells, floor_mass, masses, _PRV_THREADS)
    filled = max(filled, 1)
    masses = masses[:filled]
    stop = (j0 + filled - 0.5) * h
    probe = np.array([start, stop])
    s = np.empty(2)
    _kernels.sgm_survival(q, sigma, probe, s, 1)
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
        self,
        spectra: list[tuple[npt.NDArray[np.complex128], int]],
        grid: _Grid,
        shift: float,
        tol: float,
    ) -> None:
        n = grid.n
        self.n, self.h = n, grid.h
        self.t0 = grid.j_lo * grid.h + shift
        nt = _PRV_THREADS
        nfreq = n // 2 + 1
        mags = np.ones(nfreq)
        for spec, k in spectra:
            _kernels.abs_pow_into(spec, k, mags, nt)
        # |error of any d1, e^t d2| <= 2 * sum_{f >= F} |Y_f| (both halves of the spectrum)
        big_f = _kernels.tail_start(mags, tol / 2)
        self.spectral = big_f <= nfreq // 8
        if self.spectral:
            big_f = max(big_f, 2)
            y = np.ones(big_f, dtype=np.complex128)
            for spec, k in spectra:
                part = np.ascontiguousarray(spec[:big_f])
                _kernels.power_inplace(part, k, nt)
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
                _kernels.power_inplace(part, k, nt)
                y *= part
            circ = _fft.irfft(y, n=n, workers=nt)
            pmf = np.roll(circ, -(grid.j_lo % n))
            self._d1 = np.empty(n)
            self._d2 = np.empty(n)
            _kernels.tail_sums(pmf, self.t0, grid.h, 0, self._d1, self._d2)

    def sums(self, i: int) -> tuple[float, float]:
        """(d1(i), d2(i)); (0, 0) past the last cell, cell 0's sums before the first."""
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


def _expm1_i(theta: npt.NDArray[np.float64]) -> npt.NDArray[np.complex128]:
    """e^{i theta} - 1 to full relative precision: -2 sin^2(theta/2) + i sin(theta)."""
    s = np.sin(theta / 2)
    out: npt.NDArray[np.complex128] = -2 * s * s + 1j * np.sin(theta)
    return out


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
        self._lock = ForkSafeLock()  # guards _cache; a child forked mid-update keeps a valid one

    @classmethod
    def mechanism(cls) -> str:
        """``"prv"``."""
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
        """:meth:`_build` for the current record, cached (a few entries, thread-safe)."""
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
        """The composed PRV and the mass its early stops moved down.

        ``(None, inf)`` when some term has no privacy and ``(None, 0.0)`` when nothing
        was recorded.
        """
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
        floor_mass = 1e-6 * delta_error / k_total
        spectra: list[tuple[npt.NDArray[np.complex128], int]] = []
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
        """Validated (eps_error, delta_error); delta_error defaults to ``default_delta_error``."""
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
        """(lower, estimate, upper) of ε at ``delta``; the true ε is within the bounds.

        Parameters
        ----------
        delta : float
            Target δ, in (0, 1).
        eps_error : float, default 0.01
            ε_err, the width of the stated error in ε, > 0; the cost grows like
            1 / eps_error.
        delta_error : float, optional
            δ_err, the stated error in δ, in (0, 1) and < ``delta``; ``delta / 1000`` when omitted.

        Returns
        -------
        EpsilonBounds
            ``lower = ε̃(δ + δ_err) - ε_err`` (at least 0), the estimate ``ε̃(δ)`` and
            ``upper = ε̃(δ - δ_err - m) + ε_err`` (Gopi et al. 2021, Theorem 5.5; m is
            the tiny mass that the truncation of the discretised PRVs moved down); all
            three are ``inf`` when some recorded mechanism has no privacy and 0 when
            nothing was recorded.

        Raises
        ------
        TypeError, ValueError
            If an argument is not a real number or is out of range.
        ValueError
            If the grid would exceed :data:`MAX_GRID` points, or ``delta`` is so small
            that floating-point error on the grid would dominate it.
        """
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
        """Upper bound on ε at ``delta`` (Opacus' ``PRVAccountant.get_epsilon``).

        Parameters
        ----------
        delta : float
            Target δ, in (0, 1).
        eps_error : float, default 0.01
            ε_err, the width of the stated error in ε, > 0; the cost grows like
            1 / eps_error.
        delta_error : float, optional
            δ_err, the stated error in δ, in (0, 1) and < ``delta``; ``delta / 1000`` when omitted.
        **kwargs
            None accepted (a ``TypeError`` names any given).

        Returns
        -------
        float
            The ``upper`` of :meth:`get_epsilon_bounds`.
        """
        if kwargs:
            raise TypeError(f"unexpected arguments {sorted(kwargs)}")
        return self.get_epsilon_bounds(delta, eps_error=eps_error, delta_error=delta_error).upper

    def get_delta_bounds(
        self, epsilon: float, *, eps_error: float = 0.01, delta_error: float | None = None
    ) -> DeltaBounds:
        """(lower, estimate, upper) of δ at ``epsilon``; the true δ is within the bounds.

        Parameters
        ----------
        epsilon : float
            ε, finite and >= 0.
        eps_error : float, default 0.01
            ε_err, the width of the stated error in ε, > 0; the cost grows like
            1 / eps_error.
        delta_error : float, optional
            δ_err, the stated error in δ, in (0, 1); 1e-10 when omitted.

        Returns
        -------
        DeltaBounds
            ``lower = δ̃(ε + ε_err) - δ_err`` (at least 0), the estimate ``δ̃(ε)`` and
            ``upper = δ̃(ε - ε_err) + δ_err + m`` (at most 1; Gopi et al. 2021, Theorem
            5.5, m as in :meth:`get_epsilon_bounds`); all three are 1 when some recorded
            mechanism has no privacy and 0 when nothing was recorded.

        Raises
        ------
        TypeError, ValueError
            If an argument is not a real number or is out of range.
        ValueError
            If the grid would exceed :data:`MAX_GRID` points.
        """
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
        """Upper bound on δ at ``epsilon``.

        Parameters
        ----------
        epsilon : float
            ε, finite and >= 0.
        eps_error : float, default 0.01
            ε_err, the width of the stated error in ε, > 0; the cost grows like
            1 / eps_error.
        delta_error : float, optional
            δ_err, the stated error in δ, in (0, 1); 1e-10 when omitted.

        Returns
        -------
        float
            The ``upper`` of :meth:`get_delta_bounds`.
        """
        return self.get_delta_bounds(epsilon, eps_error=eps_error, delta_error=delta_error).upper
