"""Reference privacy accounting in plain Python ``math`` and numpy/scipy: the oracle for
:mod:`ppml_fast.accounting` in tests (Opacus is not installed in CI) and the baseline for
benchmarks. Slow on purpose; no ppml_fast native code.

RDP of the Poisson-subsampled Gaussian
--------------------------------------
Mironov, Talwar & Zhang (2019), "Renyi Differential Privacy of the Sampled Gaussian
Mechanism", Section 3.3. With X ~ N(0, σ²), RDP(α) = log(A_α) / (α - 1) where

    A_α = E[((1 - q) + q exp((2X - 1) / (2σ²)))^α].

- Integer α: expand the power binomially; E[exp(i(2X - 1)/(2σ²))] = exp((i² - i)/(2σ²)),
  so A_α = Σ_{i=0}^{α} C(α, i) q^i (1 - q)^(α-i) exp((i² - i)/(2σ²)).
- Fractional α: split the expectation at z0 = σ² log(1/q - 1) + 1/2, where the two
  terms of the base are equal; below z0 expand in powers of q e^{...}/(1 - q), above in
  powers of (1 - q)/(q e^{...}). Each term is a binomial coefficient times a Gaussian tail
  integral, giving two series in i >= 0 (A_α = a0 + a1) that are summed in log space until
  both new terms fall below e^-30.

:func:`compute_rdp` does this with ``math.log``/``exp``/``log1p``/``expm1`` and SciPy's
``binom``/``log_ndtr``, in the order the native kernel uses (which is also Opacus'), so
its doubles equal :func:`ppml_fast.accounting.compute_rdp`'s bit for bit. Where Python's
``math`` raises and C returns a value (log(0), expm1 or pow overflow), the helpers below
return C's value. Conservative answers, as documented by :mod:`ppml_fast.accounting`:
σ < 1e-150 gives ``inf`` without running the series, and so do a negative log-space
difference, a NaN result, a result below -1e-9 (RDP is >= 0; large fractional orders can
cancel catastrophically; rounding-level negatives are kept, as in Opacus) and a series
that has not stopped after 10^7 terms.

Conversion to (ε, δ)
--------------------
Balle et al. (2020), Theorem 21: ε = min_α ρ(α) + log((α - 1)/α) - (log δ + log α)/(α - 1).

PRV accountant
--------------
Gopi, Lee & Wutschitz (2021), "Numerical Composition of Differential Privacy", done the
slow, obvious way: survival function of the privacy loss on every grid edge (erfc), cell
masses by differences, mean matching by ``scipy.integrate.quad``, k-fold composition by
one full-length rfft, complex power and irfft, and Opacus' read-out (reversed cumulative
sums, ``searchsorted``). The grid (domain from an RDP tail bound, mesh h = ε_err /
sqrt(k log(12/δ_err)/2), even FFT length) is the one ``PRVAccountant._build`` uses.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import fft as sfft
from scipy import integrate, special

#: Opacus' default RDP orders (151): 1.1, ..., 10.9 and 12, ..., 63.
DEFAULT_ALPHAS: list[float] = [1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64))

#: A fractional-order series that has not stopped after this many terms counts as inf.
MAX_TERMS = 10_000_000
#: Noise multipliers below this count as no noise: (i² - i)/(2σ²) would overflow.
SIGMA_MIN = 1e-150
#: An RDP below this is a breakdown of the series (inf); above it, rounding (kept).
NEGATIVE_BREAKDOWN = -1e-9


# ---------------------------------------------------------------------------------------
# C semantics for the few places where Python's math raises
# ---------------------------------------------------------------------------------------


def _log(x: float) -> float:
    """C ``log``: -inf at 0, NaN below 0."""
    if x == 0:
        return -math.inf
    if x < 0:
        return math.nan
    return math.log(x)


def _square(sigma: float) -> float:
    """C ``pow(sigma, 2.0)``: inf on overflow (Python's ``**`` raises)."""
    try:
        return sigma**2.0
    except OverflowError:
        return math.inf


# ---------------------------------------------------------------------------------------
# RDP of the sampled Gaussian (Mironov, Talwar & Zhang 2019, Section 3.3)
# ---------------------------------------------------------------------------------------


def _log_add(logx: float, logy: float) -> float:
    """log(e^x + e^y)."""
    a, b = min(logx, logy), max(logx, logy)
    if a == -math.inf:
        return b
    return math.log1p(math.exp(a - b)) + b


class _Negative(Exception):
    """A log-space difference would be negative."""


def _log_sub(logx: float, logy: float) -> float:
    """log(e^x - e^y) for x >= y."""
    if logx < logy:
        raise _Negative
    if logy == -math.inf:
        return logx
    if logx == logy:
        return -math.inf
    try:
        return math.log(math.expm1(logx - logy)) + logy
    except OverflowError:  # e^(x - y) overflows: e^x - e^y is e^x to double precision
        return logx


def _log_erfc(x: float) -> float:
    """log(erfc(x)) = log 2 + log Φ(-x √2)."""
    return math.log(2.0) + float(special.log_ndtr(-x * math.sqrt(2.0)))


def _log_a_integer(q: float, sigma: float, alpha: int) -> float:
    """log A_α for integer α: the finite binomial sum."""
    s2 = _square(sigma)
    log_a = -math.inf
    for i in range(alpha + 1):
        log_coef_i = (
            _log(float(special.binom(float(alpha), float(i))))
            + i * math.log(q)
            + (alpha - i) * math.log(1 - q)
        )
        s = log_coef_i + (i * i - i) / (2 * s2)
        log_a = _log_add(log_a, s)
    return log_a


def _log_a_fractional(q: float, sigma: float, alpha: float) -> float:
    """log A_α for fractional α: the two series split at z0, until both terms < e^-30."""
    s2 = _square(sigma)
    z0 = s2 * _log(1 / q - 1) + 0.5
    log_a0 = log_a1 = -math.inf
    i = 0
    while True:
        coef = float(special.binom(alpha, float(i)))
        log_coef = _log(abs(coef))
        j = alpha - i
        log_t0 = log_coef + i * math.log(q) + j * math.log(1 - q)
        log_t1 = log_coef + j * math.log(q) + i * math.log(1 - q)
        log_e0 = math.log(0.5) + _log_erfc((i - z0) / (math.sqrt(2.0) * sigma))
        log_e1 = math.log(0.5) + _log_erfc((z0 - j) / (math.sqrt(2.0) * sigma))
        log_s0 = log_t0 + (i * i - i) / (2 * s2) + log_e0
        log_s1 = log_t1 + (j * j - j) / (2 * s2) + log_e1
        try:
            if coef > 0:
                log_a0 = _log_add(log_a0, log_s0)
                log_a1 = _log_add(log_a1, log_s1)
            else:
                log_a0 = _log_sub(log_a0, log_s0)
                log_a1 = _log_sub(log_a1, log_s1)
        except _Negative:
            return math.inf
        i += 1
        if max(log_s0, log_s1) < -30:
            break
        if i > MAX_TERMS:
            return math.inf
    return _log_add(log_a0, log_a1)


def rdp_one_step(q: float, sigma: float, alpha: float) -> float:
    """RDP at order ``alpha`` of one step of the sampled Gaussian (rate q, noise σ)."""
    if q == 0:
        return 0.0
    if sigma < SIGMA_MIN:  # σ = 0 is no privacy; below 1e-150 the RDP exceeds 1e299
        return math.inf
    if q == 1.0:
        return alpha / (2 * _square(sigma))
    if math.isinf(alpha):
        return math.inf
    if float(alpha).is_integer():
        r = _log_a_integer(q, sigma, int(alpha)) / (alpha - 1)
    else:
        r = _log_a_fractional(q, sigma, alpha) / (alpha - 1)
    # RDP is >= 0: NaN (a breakdown) or a clearly negative value (the fractional series
    # cancelling catastrophically at large fractional orders) is answered conservatively;
    # rounding-level negatives (true RDP ~1e-20 at huge σ) are kept, as Opacus returns them
    return math.inf if math.isnan(r) or r < NEGATIVE_BREAKDOWN else r


def compute_rdp(
    q: float, noise_multiplier: float, steps: float, orders: float | Sequence[float]
) -> Any:
    """RDP of ``steps`` steps of the sampled Gaussian at each order (a float for a scalar
    order). ``steps = 0`` gives zeros. No argument checks."""
    scalar = np.ndim(orders) == 0
    orders_vec = np.atleast_1d(np.asarray(orders, dtype=np.float64))
    one = np.array(
        [rdp_one_step(float(q), float(noise_multiplier), float(a)) for a in orders_vec],
        dtype=np.float64,
    )
    rdp = np.zeros_like(one) if steps == 0 else one * steps
    return float(rdp[0]) if scalar else rdp


def get_privacy_spent(
    orders: float | Sequence[float], rdp: float | Sequence[float], delta: float
) -> tuple[float, float]:
    """(ε, best order) by Balle et al. (2020), Thm 21, minimised over the orders
    (NaN ignored; all NaN gives (inf, nan)). No warnings, no argument checks."""
    a = np.atleast_1d(np.asarray(orders, dtype=np.float64))
    r = np.atleast_1d(np.asarray(rdp, dtype=np.float64))
    if a.shape != r.shape:
        raise ValueError("orders and rdp must have the same length")
    eps = r - (np.log(delta) + np.log(a)) / (a - 1) + np.log((a - 1) / a)
    if np.isnan(eps).all():
        return math.inf, math.nan
    k = int(np.nanargmin(eps))
    return float(eps[k]), float(a[k])


# ---------------------------------------------------------------------------------------
# PRV accountant (Gopi, Lee & Wutschitz 2021) for k steps of the sampled Gaussian
# ---------------------------------------------------------------------------------------


def _rdp_epsilon(q: float, sigma: float, steps: int, delta: float) -> float:
    orders = [float(a) for a in DEFAULT_ALPHAS]
    return get_privacy_spent(orders, list(compute_rdp(q, sigma, steps, orders)), delta)[0]


def prv_grid(
    sample_rate: float, noise_multiplier: float, steps: int, eps_error: float, delta_error: float
) -> tuple[float, int, int]:
    """(h, j_lo, n): the grid t_j = j h, j_lo <= j < j_lo + n, of ``PRVAccountant._build``.

    L = max(ε_RDP(k steps, δ_err/4), ε_RDP(1 step, δ_err/(8k))) (Gopi et al., Remark 5.6,
    as Opacus), widened to max(L, ε_err) + 3; h = ε_err / sqrt(k log(12/δ_err) / 2);
    n the first even fast FFT length covering [-L, L].
    """
    k = steps
    big_l = max(
        _rdp_epsilon(sample_rate, noise_multiplier, k, delta_error / 4),
        max(0.0, _rdp_epsilon(sample_rate, noise_multiplier, 1, delta_error / (8 * k))),
    )
    if not math.isfinite(big_l):
        raise ValueError("the RDP tail bound is infinite")
    big_l = max(big_l, eps_error) + 3
    h = eps_error / math.sqrt(k * math.log(12 / delta_error) / 2)
    j_lo = math.floor(-big_l / h)
    j_hi = math.ceil(big_l / h)
    n = sfft.next_fast_len(j_hi - j_lo + 1, real=True)
    while n % 2:
        n = sfft.next_fast_len(n + 1, real=True)
    return h, j_lo, n


def _x_of_t(t: np.ndarray, q: float, sigma: float) -> np.ndarray:
    """The x with L(x) = t for L(x) = log(1 - q + q exp((2x - 1)/(2σ²))) (-inf where
    t <= log(1 - q))."""
    t = np.asarray(t, dtype=np.float64)
    if q == 1.0:
        return sigma * sigma * t + 0.5
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        # z = log((e^t - (1 - q)) / q), kept accurate near t = 0 and for large t
        z = np.where(
            t <= 0,
            np.log1p(np.expm1(t) / q),
            t - math.log(q) + np.log1p(-(1 - q) * np.exp(-t)),
        )
    x = sigma * sigma * z + 0.5
    return np.where(t > math.log1p(-q), x, -np.inf)


def sgm_survival(t: Any, q: float, sigma: float) -> np.ndarray:
    """P(Y > t) for Y = L(X), X ~ (1 - q) N(0, σ²) + q N(1, σ²): since L is increasing,
    P(X > x(t)) = (1 - q)/2 erfc(x/(√2 σ)) + q/2 erfc((x - 1)/(√2 σ))."""
    x = _x_of_t(t, q, sigma)
    r = math.sqrt(2.0) * sigma
    return (1 - q) / 2 * special.erfc(x / r) + q / 2 * special.erfc((x - 1) / r)


def _partial_mean(q: float, sigma: float, t_lo: float, t_hi: float) -> float:
    """E[Y; t_lo < Y <= t_hi] by ``quad``, component by component in standard units."""
    x_lo, x_hi = (float(v) for v in _x_of_t(np.array([t_lo, t_hi]), q, sigma))
    s2 = sigma * sigma
    log1mq = math.log1p(-q) if q < 1 else -math.inf

    def loss(x: float) -> float:
        u = (2 * x - 1) / (2 * s2)
        return u if q == 1.0 else float(np.logaddexp(log1mq, math.log(q) + u))

    total = 0.0
    for weight, mu in ((1 - q, 0.0), (q, 1.0)):
        if weight == 0:
            continue
        lo = max((x_lo - mu) / sigma, -40.0)
        hi = min((x_hi - mu) / sigma, 40.0)
        if not hi > lo:
            continue
        pts = [p for p in (-8.0, -4.0, -2.0, 0.0, 2.0, 4.0, 8.0) if lo < p < hi]
        val, _ = integrate.quad(
            lambda u, mu=mu: loss(mu + sigma * u) * math.exp(-u * u / 2),
            lo,
            hi,
            points=pts or None,
            limit=500,
            epsabs=1e-15,
            epsrel=1e-12,
        )
        total += weight * val / math.sqrt(2 * math.pi)
    return total


def composed_pmf(
    sample_rate: float, noise_multiplier: float, steps: int, eps_error: float, delta_error: float
) -> tuple[np.ndarray, np.ndarray]:
    """(t, pmf) of the k-fold composition of the discretised PRV on the accountant's grid.

    Cell j covers [(j - 1/2)h, (j + 1/2)h); mass outside the grid joins the end cells.
    The cells sit at j h + shift, with the shift chosen so that the discrete mean equals
    the continuous mean of that same (end-clamped) distribution; composing adds indices
    modulo n (the FFT is circular) and the shifts.
    """
    q, sigma, k = float(sample_rate), float(noise_multiplier), int(steps)
    h, j_lo, n = prv_grid(q, sigma, k, eps_error, delta_error)
    j = j_lo + np.arange(n)
    edges = (np.arange(j_lo, j_lo + n + 1) - 0.5) * h
    surv = sgm_survival(edges, q, sigma)
    masses = surv[:-1] - surv[1:]
    below, above = 1.0 - surv[0], surv[-1]
    masses[0] += below
    masses[-1] += above
    mean_c = (
        _partial_mean(q, sigma, edges[0], edges[-1])
        + below * (j_lo * h)
        + above * ((j_lo + n - 1) * h)
    )
    centres = j * h
    shift = mean_c - float(np.dot(centres, masses))
    if abs(shift) >= h / 2:
        raise RuntimeError("discrete mean differs from the continuous mean by >= h/2")

    circ = np.zeros(n)
    circ[j % n] = masses
    composed = np.fft.irfft(np.fft.rfft(circ) ** k, n=n)
    pmf = composed[j % n]  # the composed mass at index j (mod n)
    return centres + k * shift, pmf


def _find_epsilon(t: np.ndarray, pmf: np.ndarray, delta: float) -> float:
    """Opacus' read-out: the ε with δ̃(ε) = delta, δ̃(ε) = Σ_{t_i >= ε} p_i (1 - e^{ε - t_i})."""
    d1 = np.flip(np.cumsum(np.flip(pmf)))
    d2 = np.flip(np.cumsum(np.flip(pmf * np.exp(-t))))
    ndelta = np.exp(t) * d2 - d1
    i = int(np.searchsorted(ndelta, -delta, side="left"))
    if i <= 0 or i >= len(t):
        raise RuntimeError("epsilon is outside the grid")
    return math.log((d1[i] - delta) / d2[i])


def prv_epsilon(
    sample_rate: float,
    noise_multiplier: float,
    steps: int,
    delta: float,
    eps_error: float = 0.01,
    delta_error: float | None = None,
) -> tuple[float, float, float]:
    """(lower, estimate, upper) of ε(δ) for ``steps`` steps of the sampled Gaussian:
    lower = ε̃(δ + δ_err) - ε_err (at least 0), estimate = ε̃(δ), upper = ε̃(δ - δ_err) +
    ε_err (Gopi et al., Thm 5.5); δ_err defaults to δ/1000 as in Opacus."""
    if delta_error is None:
        delta_error = delta / 1000
    t, pmf = composed_pmf(sample_rate, noise_multiplier, steps, eps_error, delta_error)
    lower = max(0.0, _find_epsilon(t, pmf, delta + delta_error) - eps_error)
    estimate = _find_epsilon(t, pmf, delta)
    upper = _find_epsilon(t, pmf, delta - delta_error) + eps_error
    return lower, estimate, upper


def prv_delta(
    sample_rate: float,
    noise_multiplier: float,
    steps: int,
    epsilon: float,
    eps_error: float = 0.01,
    delta_error: float = 1e-10,
) -> float:
    """The estimate δ̃(ε) = Σ_{t_i >= ε} p_i (1 - e^{ε - t_i}) on the same grid."""
    t, pmf = composed_pmf(sample_rate, noise_multiplier, steps, eps_error, delta_error)
    above = t >= epsilon
    return float(np.sum(pmf[above] * -np.expm1(epsilon - t[above])))
