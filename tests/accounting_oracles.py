"""Oracles and random cases shared by the accounting test files.

Random cases run on a fixed seed and on one fresh seed per run (``FRESH``, printed in
every assertion message). The comparisons are deterministic functions of the drawn
parameters, so a failure on the fresh seed is a real disagreement, not a false alarm;
rerun it with ``PPML_TEST_SEED=<printed seed>``.
"""

from __future__ import annotations

import math
import os

import mpmath
import numpy as np
import pytest
from scipy import optimize, special

from ppml_fast.accounting import PRVAccountant, RDPAccountant
from ppml_fast.accounting import rdp as accounting_rdp

FRESH = int(os.environ.get("PPML_TEST_SEED") or np.random.SeedSequence().entropy % 2**63)
SEEDS = [20240601, FRESH]

mp = mpmath.mp.clone()
mp.dps = 50

EPS = np.finfo(np.float64).eps


def rdp_epsilon(q, sigma, steps, delta, alphas=None):
    acc = RDPAccountant()
    acc.history = [(sigma, q, steps)]
    return acc.get_epsilon(delta, alphas=alphas)


def prv_bounds(q, sigma, steps, delta, **kwargs):
    acc = PRVAccountant()
    acc.history = [(sigma, q, steps)]
    return acc.get_epsilon_bounds(delta, **kwargs)


def clear_rdp_cache():
    """compute_rdp memoises one step per (q, σ, orders); clear it so a kernel really runs."""
    accounting_rdp._rdp_cached.cache_clear()


def random_rdp_cases(seed, n=200):
    """(q, σ, steps, orders): q log-uniform in [1e-6, 1] or uniform in [0, 1), σ uniform in
    [0.05, 30], integer orders in [2, 256], fractional orders in (1, 256], sometimes inf."""
    rng = np.random.default_rng(seed)
    for k in range(n):
        q = float(10 ** rng.uniform(-6, 0)) if k % 2 else float(rng.uniform(0, 1))
        sigma = float(rng.uniform(0.05, 30))
        steps = int(rng.integers(1, 10_001))
        orders = np.concatenate(
            [
                rng.integers(2, 257, 2).astype(np.float64),
                1 + 10 ** rng.uniform(-3, math.log10(255), 3),
            ]
        )
        if k % 10 == 0:
            orders = np.append(orders, np.inf)
        yield q, sigma, steps, orders


def mp_log_a_sum(q, sigma, alpha):
    """log A_α = log Σ_i C(α,i) q^i (1-q)^(α-i) exp((i²-i)/(2σ²)), integer α, 50 digits."""
    q, s2 = mp.mpf(q), mp.mpf(sigma) ** 2
    terms = (
        mp.binomial(alpha, i) * q**i * (1 - q) ** (alpha - i) * mp.exp((i * i - i) / (2 * s2))
        for i in range(alpha + 1)
    )
    return mp.log(mp.fsum(terms))


def mp_log_a_integral(q, sigma, alpha):
    """log A_α = log E_{z~N(0,σ²)}[((1-q) + q exp((2z-1)/(2σ²)))^α] by 50-digit quadrature.

    The integrand is a mixture of bumps at z ~ 0 and z ~ α (width σ); the interval is
    split there and at z0 where the two terms of the base are equal.
    """
    q, s, a = mp.mpf(q), mp.mpf(sigma), mp.mpf(alpha)

    def f(z):
        return ((1 - q) + q * mp.exp((2 * z - 1) / (2 * s * s))) ** a * mp.npdf(z, 0, s)

    z0 = s * s * mp.log(1 / q - 1) + mp.mpf(1) / 2
    inner = {mp.mpf(0), z0, a}
    for c in (mp.mpf(0), a):
        for w in (5, 20, 60):
            inner |= {c - w * s, c + w * s}
    pts = [-mp.inf, *sorted(inner), mp.inf]
    return mp.log(mp.quad(f, pts))


def mp_laplace_rdp(b, alpha):
    """D_α(Lap(0, b) ‖ Lap(1, b)) by 50-digit quadrature of ∫ p^α p'^(1-α)."""
    b, a = mp.mpf(b), mp.mpf(alpha)

    def f(x):
        return mp.exp(-(a * abs(x) + (1 - a) * abs(x - 1)) / b) / (2 * b)

    return mp.log(mp.quad(f, [-mp.inf, 0, 1, mp.inf])) / (a - 1)


def gaussian_delta(eps, mu):
    """Exact δ(ε) of the Gaussian mechanism with μ = Δ/σ (Balle & Wang 2018, Thm 8)."""
    return special.ndtr(mu / 2 - eps / mu) - math.exp(eps) * special.ndtr(-mu / 2 - eps / mu)


def gaussian_epsilon(delta, sigma, k):
    """Exact ε(δ) of k compositions of the Gaussian mechanism (= one with σ/√k)."""
    mu = math.sqrt(k) / sigma
    return optimize.brentq(lambda e: gaussian_delta(e, mu) - delta, 0.0, 60.0, xtol=1e-13)


def pld_epsilon(events, delta):
    """dp_accounting's PLD accountant (default settings) on a list of (DpEvent, count)."""
    dpa = pytest.importorskip("dp_accounting")
    from dp_accounting.pld import PLDAccountant

    acc = PLDAccountant()
    acc.compose(dpa.ComposedDpEvent([dpa.SelfComposedDpEvent(e, c) for e, c in events]))
    return acc.get_epsilon(delta)


def random_prv_cases(seed, n):
    """(q, σ, steps, δ) with moderate ε: q log-uniform in [1e-3, 0.2], σ in [0.8, 3],
    steps up to 1000, δ log-uniform in [1e-9, 1e-3]."""
    rng = np.random.default_rng(seed)
    return [
        (
            float(10 ** rng.uniform(-3, math.log10(0.2))),
            float(rng.uniform(0.8, 3.0)),
            int(rng.integers(1, 1001)),
            float(10 ** rng.uniform(-9, -3)),
        )
        for _ in range(n)
    ]
