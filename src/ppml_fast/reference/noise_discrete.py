"""Pure-Python oracle for the exact discrete samplers: Python ints and ``Fraction`` only.

Canonne, Kamath & Steinke (2020), "The Discrete Gaussian for Differential Privacy"
(NeurIPS 2020; arXiv:2004.00010), Algorithms 1-3, written as plainly as possible. The
random bits are read from the raw 64-bit words of a numpy bit generator in exactly the
order the native kernel (``ppml_fast._native.noise_discrete``) reads them for one block, so
for fewer than ``ppml_fast.rng.BLOCK`` samples the two agree bit for bit:

- one :class:`BitSource` per call; bits leave each word least significant first;
- ``k`` bits at once (a uniform draw) take the buffered bits as the low part and the
  low bits of the next word above them;
- Bernoulli(p) for p = num/den compares lazily drawn bits with p's binary expansion and
  stops at the first difference (p = 0 or p >= 1 costs no bits, and a remainder of 0
  means p's expansion has ended, so the answer is 0);
- Bernoulli(γ/K) is Bernoulli(1/K) (skipped for K = 1) and then Bernoulli(γ).

Truncation (the only departure from the paper, shared with the kernel): outputs are
conditioned on ``|Y| <= ymax``; see :func:`laplace_bounds` and :func:`gaussian_bounds`.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import numpy as np

__all__ = [
    "BitSource",
    "bernoulli",
    "bernoulli_exp",
    "dgauss",
    "discrete_gaussian",
    "discrete_laplace",
    "dlap",
    "gaussian_bounds",
    "gaussian_pmf",
    "laplace_bounds",
    "laplace_pmf",
    "uniform",
]

YCAP = 1 << 62


class BitSource:
    """Random bits from a bit generator's raw 64-bit words, lowest bit first."""

    def __init__(self, bit_generator: np.random.BitGenerator) -> None:
        self.bg = bit_generator
        self.buf = 0
        self.avail = 0
        self.words = 0  # words consumed (for tests of bit economy)

    def _word(self) -> int:
        self.words += 1
        return int(self.bg.random_raw())

    def bit(self) -> int:
        if self.avail == 0:
            self.buf = self._word()
            self.avail = 64
        b = self.buf & 1
        self.buf >>= 1
        self.avail -= 1
        return b

    def bits(self, k: int) -> int:
        """``k`` bits (1 <= k <= 63) as an integer."""
        if self.avail >= k:
            r = self.buf & ((1 << k) - 1)
            self.buf >>= k
            self.avail -= k
            return r
        need = k - self.avail
        w = self._word()
        r = self.buf | ((w & ((1 << need) - 1)) << self.avail)
        self.buf = w >> need
        self.avail = 64 - need
        return r


def bernoulli(p: Fraction, src: BitSource) -> bool:
    """Bernoulli(p), p >= 0 rational: compare uniform bits with p's binary expansion."""
    if p >= 1:
        return True
    num, den = p.numerator, p.denominator
    while num != 0:
        num *= 2
        digit = 1 if num >= den else 0
        num -= digit * den
        if src.bit() != digit:
            return digit == 1  # uniform bit 0 under a digit 1: U < p
    return False


def bernoulli_exp(gamma: Fraction, src: BitSource) -> bool:
    """Bernoulli(exp(-γ)) for rational γ >= 0 (CKS 2020, Algorithm 1)."""
    if gamma > 1:
        whole = math.floor(gamma)
        for _ in range(whole):
            if not bernoulli_exp(Fraction(1), src):
                return False
        gamma -= whole
    k = 1
    while True:
        if k > 1 and not bernoulli(Fraction(1, k), src):
            break
        if not bernoulli(gamma, src):
            break
        k += 1
    return k % 2 == 1


def uniform(t: int, src: BitSource) -> int:
    """Uniform on {0, ..., t-1} by rejection of bit_length(t-1) bits."""
    if t == 1:
        return 0
    k = (t - 1).bit_length()
    while True:
        x = src.bits(k)
        if x < t:
            return x


def laplace_bounds(t: int, s: int) -> tuple[int, int]:
    """``(vmax, ymax)`` for scale t/s: outputs satisfy |Y| <= ymax = min(2**62, 2**62·t//s);
    a count V > vmax = ceil(s·(ymax+1)/t) - 1 already forces Y > ymax."""
    ymax = min(YCAP, (YCAP * t) // s)
    vmax = -(-s * (ymax + 1) // t) - 1
    return vmax, ymax


def gaussian_bounds(t: int) -> tuple[int, int]:
    """``(vmax, ymax)`` for the proposal DLap(t): ymax = min(2**62, 2**20·t) >= 2**20·σ."""
    ymax = min(YCAP, t << 20)
    vmax = -(-(ymax + 1) // t) - 1
    return vmax, ymax


def dlap(t: int, s: int, src: BitSource, vmax: int, ymax: int) -> int:
    """Discrete Laplace of scale t/s (CKS 2020, Algorithm 2), conditioned on |Y| <= ymax."""
    while True:
        u = uniform(t, src)
        if not bernoulli_exp(Fraction(u, t), src):
            continue
        v = 0
        while v <= vmax and bernoulli_exp(Fraction(1), src):
            v += 1
        if v > vmax:
            continue
        y = (u + t * v) // s
        if y > ymax:
            continue
        if src.bit():
            if y == 0:
                continue
            return -y
        return y


def dgauss(sigma: Fraction, src: BitSource) -> int:
    """Discrete Gaussian N_Z(0, σ²) for rational σ > 0 (CKS 2020, Algorithm 3)."""
    t = math.floor(sigma) + 1
    vmax, ymax = gaussian_bounds(t)
    sigma2 = sigma * sigma
    while True:
        y = dlap(t, 1, src, vmax, ymax)
        gamma = (abs(y) - sigma2 / t) ** 2 / (2 * sigma2)
        if bernoulli_exp(gamma, src):
            return y


def _stream(rng: Any) -> np.random.BitGenerator:
    if isinstance(rng, np.random.BitGenerator):
        return rng
    from ..rng import default_rng

    return default_rng(rng).bit_generator


def _shape(size: Any) -> tuple[int, ...]:
    if size is None:
        return ()
    if isinstance(size, (int, np.integer)):
        return (int(size),)
    return tuple(int(d) for d in size)


def discrete_laplace(scale: Any, size: Any = None, *, rng: Any = None) -> np.ndarray:
    """``size`` discrete Laplace draws of scale ``scale`` (converted exactly to a Fraction)
    from one bit source on ``rng`` (a seed, Generator or BitGenerator), as int64."""
    q = Fraction(scale)
    shape = _shape(size)
    n = math.prod(shape)
    if q == 0:
        return np.zeros(shape, dtype=np.int64)
    src = BitSource(_stream(rng))
    t, s = q.numerator, q.denominator
    vmax, ymax = laplace_bounds(t, s)
    return np.array([dlap(t, s, src, vmax, ymax) for _ in range(n)], dtype=np.int64).reshape(shape)


def discrete_gaussian(sigma: Any, size: Any = None, *, rng: Any = None) -> np.ndarray:
    """``size`` discrete Gaussian draws of ``sigma`` (exactly as a Fraction), as int64."""
    q = Fraction(sigma)
    shape = _shape(size)
    n = math.prod(shape)
    if q == 0:
        return np.zeros(shape, dtype=np.int64)
    src = BitSource(_stream(rng))
    return np.array([dgauss(q, src) for _ in range(n)], dtype=np.int64).reshape(shape)


def laplace_pmf(scale: Any, support: np.ndarray) -> np.ndarray:
    """Exact-to-double pmf of the discrete Laplace: (1-e^{-1/b})/(1+e^{-1/b}) · e^{-|x|/b}."""
    from decimal import Decimal, localcontext

    b = Fraction(scale)
    with localcontext() as ctx:
        ctx.prec = 50
        lam = (Decimal(b.denominator) / Decimal(b.numerator)).exp()  # e^{1/b}
        c = (lam - 1) / (lam + 1)
        return np.array([float(c / lam ** abs(int(x))) for x in support])


def gaussian_pmf(sigma: Any, support: np.ndarray, width: int | None = None) -> np.ndarray:
    """Discrete Gaussian pmf exp(-x²/2σ²)/Z with Z summed in 50-digit decimal arithmetic
    over |x| <= width (default 60σ + 60, where the neglected tail is below 1e-700)."""
    from decimal import Decimal, localcontext

    s = Fraction(sigma)
    s2 = s * s
    if width is None:
        width = int(60 * s) + 60
    with localcontext() as ctx:
        ctx.prec = 50
        two_s2 = Decimal(2 * s2.numerator) / Decimal(s2.denominator)

        def w(x: int) -> Decimal:
            return (-(Decimal(x * x) / two_s2)).exp()

        z = w(0) + 2 * sum(w(x) for x in range(1, width + 1))
        return np.array([float(w(int(x)) / z) for x in support])
