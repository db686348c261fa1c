# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Exact discrete Laplace and discrete Gaussian kernels (integer arithmetic only).

Canonne, Kamath & Steinke (2020), "The Discrete Gaussian for Differential Privacy",
Algorithms 1-3:

- Alg. 1, Bernoulli(exp(-γ)) for rational γ: for γ <= 1, K = 1; while Bernoulli(γ/K):
  K += 1; return K odd. For γ > 1: floor(γ) draws of Bernoulli(exp(-1)), all 1, then
  Bernoulli(exp(-(γ - floor γ))). Bernoulli(γ/K) is drawn as Bernoulli(1/K) AND
  Bernoulli(γ) (independent; 1/K first, and skipped for K = 1).
- Alg. 2, discrete Laplace of scale t/s: U uniform on {0..t-1} (rejection, no modulo
  bias); retry unless Bernoulli(exp(-U/t)); V = successes of Bernoulli(exp(-1)) before
  the first failure; Y = floor((U + tV) / s); sign bit B; retry when B = 1 and Y = 0.
- Alg. 3, discrete Gaussian of σ = n/d: t = floor(σ) + 1; repeat Y ~ DLap(t) until
  Bernoulli(exp(-γ)) with γ = (|Y| - σ²/t)² / (2σ²) = a² / Q, a = |Y|·t·d² - n²,
  Q = 2·n²·d²·t².

Bernoulli(p), p = num/den, compares a lazily drawn uniform 0.b1b2... with p's binary
expansion from long division (r = 2r; digit = r >= den; r -= den if so) and stops at the
first differing digit: about two random bits per draw, never a float. Random bits come
from 64-bit words of the block's bit generator, least significant bit first, through a
per-block buffer (`Bits`); the pure-Python oracle (ppml_fast.reference.noise_discrete) reads
the same words in the same order, so one block agrees bit for bit.

Integer widths: the Laplace kernel needs t, s <= 2**62 (U, tV in 64/128 bits). The
Gaussian kernel has two modes chosen per call: 128-bit (Q < 2**127 and every |a| < 2**64,
e.g. every integer σ up to ~2**31) and multi-limb (Q < 2**254, |a| < 2**256, four 64-bit
limbs, eight for a²; floor(a²/Q) is estimated in double precision from below and
completed by exact limb subtraction). The wrappers in ppml_fast.noise.discrete check the
bounds; nothing is validated here.

Outputs are conditioned on |Y| <= ymax (set by the wrapper; the excluded mass is below
exp(-2**20)): a proposal beyond it is rejected like any other, so the result is exactly
the truncated distribution.
"""
from cython.parallel cimport prange
from libc.stdint cimport int64_t, uint64_t
from libc.stdlib cimport free
from libc.string cimport memcpy, memset
from numpy.random cimport bitgen_t

from ._bitgen cimport bitgen_pointers

cdef extern from "_u128.h" nogil:
    # 128-bit unsigned integers: the compiler's where it has them, else two 64-bit limbs;
    # only ever handled through these functions (the member is never used).
    ctypedef struct u128 "ppml_u128":
        pass
    u128 u128_make(uint64_t hi, uint64_t lo)
    u128 u128_from(uint64_t x)
    uint64_t u128_lo(u128 x)
    uint64_t u128_hi(u128 x)
    u128 u128_mul64(uint64_t a, uint64_t b)
    u128 u128_add64(u128 x, uint64_t y)
    u128 u128_sub(u128 x, u128 y)
    u128 u128_mul(u128 x, u128 y)
    u128 u128_div(u128 x, u128 y)
    u128 u128_shl1(u128 x)
    u128 u128_shr(u128 x, int k)
    bint u128_ge(u128 x, u128 y)
    bint u128_is_zero(u128 x)

DEF LIMBS = 4  # multi-limb width of a, Q and the Bernoulli remainders (256 bits)



# --- random bits ------------------------------------------------------------------------

cdef struct Bits:
    bitgen_t* bg
    uint64_t buf   # unread bits, next one lowest; bits above `avail` are zero
    int avail


cdef inline uint64_t _bit(Bits* b) noexcept nogil:
    cdef uint64_t r
    if b.avail == 0:
        b.buf = b.bg.next_uint64(b.bg.state)
        b.avail = 64
    r = b.buf & 1
    b.buf >>= 1
    b.avail -= 1
    return r


cdef inline uint64_t _bits(Bits* b, int k) noexcept nogil:
    """k (1..63) bits as an integer: the buffered ones low, then the low bits of a new word."""
    cdef uint64_t r, w
    cdef int need
    if b.avail >= k:
        r = b.buf & ((<uint64_t>1 << k) - 1)
        b.buf >>= k
        b.avail -= k
        return r
    r = b.buf
    need = k - b.avail
    w = b.bg.next_uint64(b.bg.state)
    r |= (w & ((<uint64_t>1 << need) - 1)) << b.avail
    b.buf = w >> need
    b.avail = 64 - need
    return r


cdef inline uint64_t _uniform(Bits* b, uint64_t t, int k) noexcept nogil:
    """Uniform on {0..t-1} by rejection of k = bit_length(t-1) bits (t = 1: no bits)."""
    cdef uint64_t x
    if t == 1:
        return 0
    while True:
        x = _bits(b, k)
        if x < t:
            return x


# --- Bernoulli(num/den), lazily, in three widths -----------------------------------------

cdef inline bint _bern64(Bits* b, uint64_t num, uint64_t den) noexcept nogil:
    """Bernoulli(num/den) for den < 2**63; num >= den gives 1 and num = 0 gives 0, no bits."""
    if num >= den:
        return 1
    while num != 0:
        num <<= 1
        if num >= den:
            num -= den
            if _bit(b) == 0:
                return 1
        elif _bit(b) != 0:
            return 0
    return 0  # the rest of p's expansion is zeros: U > p with probability 1


cdef inline bint _bern128(Bits* b, u128 num, u128 den) noexcept nogil:
    """Bernoulli(num/den) for den < 2**127 (64-bit loop when den < 2**63)."""
    if u128_is_zero(u128_shr(den, 63)):
        return _bern64(b, u128_lo(num), u128_lo(den))
    if u128_ge(num, den):
        return 1
    while not u128_is_zero(num):
        num = u128_shl1(num)
        if u128_ge(num, den):
            num = u128_sub(num, den)
            if _bit(b) == 0:
                return 1
        elif _bit(b) != 0:
            return 0
    return 0


cdef inline int _cmp_limbs(const uint64_t* x, const uint64_t* y, int n) noexcept nogil:
    cdef int i
    for i in range(n - 1, -1, -1):
        if x[i] != y[i]:
            return 1 if x[i] > y[i] else -1
    return 0


cdef inline void _sub_limbs(uint64_t* x, const uint64_t* y, int n) noexcept nogil:
    """x -= y (x >= y), n limbs."""
    cdef int i
    cdef uint64_t borrow = 0, xi, d
    for i in range(n):
        xi = x[i]
        d = xi - y[i]
        x[i] = d - borrow
        borrow = (xi < y[i]) | (d < borrow)


cdef inline bint _bern_limbs(Bits* b, const uint64_t* num0, const uint64_t* den, int n) noexcept nogil:
    """Bernoulli(num/den) for num < den < 2**(64n - 1), n <= LIMBS limbs."""
    cdef uint64_t num[LIMBS]
    cdef uint64_t nz
    cdef int i
    memcpy(num, num0, n * sizeof(uint64_t))
    while True:
        nz = 0
        for i in range(n):
            nz |= num[i]
        if nz == 0:
            return 0
        for i in range(n - 1, 0, -1):
            num[i] = (num[i] << 1) | (num[i - 1] >> 63)
        num[0] <<= 1
        if _cmp_limbs(num, den, n) >= 0:
            _sub_limbs(num, den, n)
            if _bit(b) == 0:
                return 1
        elif _bit(b) != 0:
            return 0


# --- Bernoulli(exp(-γ)), CKS Algorithm 1 -------------------------------------------------

cdef inline bint _bexp1(Bits* b) noexcept nogil:
    """Bernoulli(exp(-1)): γ = 1, so Bernoulli(γ/K) = Bernoulli(1/K)."""
    cdef uint64_t k = 1
    while True:
        k += 1
        if not _bern64(b, 1, k):
            return k & 1


cdef inline bint _bexp64(Bits* b, uint64_t num, uint64_t den) noexcept nogil:
    """Bernoulli(exp(-num/den)) for num < den < 2**63."""
    cdef uint64_t k = 1
    while True:
        if not _bern64(b, num, den):
            return k & 1
        k += 1
        if not _bern64(b, 1, k):
            return k & 1


cdef inline bint _bexp128(Bits* b, u128 num, u128 den) noexcept nogil:
    """Bernoulli(exp(-num/den)) for num < den < 2**127."""
    cdef uint64_t k = 1
    while True:
        if not _bern128(b, num, den):
            return k & 1
        k += 1
        if not _bern64(b, 1, k):
            return k & 1


cdef inline bint _bexp_limbs(Bits* b, const uint64_t* num, const uint64_t* den, int n) noexcept nogil:
    """Bernoulli(exp(-num/den)) for num < den < 2**(64n - 1)."""
    cdef uint64_t k = 1
    while True:
        if not _bern_limbs(b, num, den, n):
            return k & 1
        k += 1
        if not _bern64(b, 1, k):
            return k & 1


# --- discrete Laplace, CKS Algorithm 2 ---------------------------------------------------

cdef struct Lap:
    uint64_t t       # scale t/s
    uint64_t s
    int k            # bit_length(t - 1)
    int shift        # log2(s) when s is a power of two, else -1
    uint64_t vmax    # V > vmax implies Y > ymax: stop counting and retry
    uint64_t ymax


cdef inline int64_t _dlap(Bits* b, const Lap* p) noexcept nogil:
    cdef uint64_t u, v, y
    cdef u128 x
    while True:
        u = _uniform(b, p.t, p.k)
        if not _bexp64(b, u, p.t):
            continue
        v = 0
        while v <= p.vmax and _bexp1(b):
            v += 1
        if v > p.vmax:
            continue
        x = u128_add64(u128_mul64(p.t, v), u)
        if p.s == 1:
            y = u128_lo(x)
        elif p.shift >= 0:
            y = u128_lo(u128_shr(x, p.shift))
        else:
            y = u128_lo(u128_div(x, u128_from(p.s)))
        if y > p.ymax:
            continue
        if _bit(b):
            if y == 0:
                continue
            return -<int64_t>y
        return <int64_t>y


# --- discrete Gaussian, CKS Algorithm 3 --------------------------------------------------

cdef struct Gauss:
    Lap lap          # DLap(t), s = 1
    bint big         # multi-limb mode
    uint64_t td      # t·d²   (128-bit mode)
    uint64_t nn      # n²
    u128 q           # 2·n²·d²·t²
    uint64_t tdl[LIMBS]   # the same as limbs (multi-limb mode)
    uint64_t nnl[LIMBS]
    uint64_t ql[LIMBS]
    int ntd          # limbs of t·d²
    int nq           # limbs for remainders of Q (holds 2Q)
    double qd        # Q as a double, for the floor estimate


cdef inline bint _accept128(Bits* b, const Gauss* p, uint64_t ay) noexcept nogil:
    """Bernoulli(exp(-a²/Q)) with a = |Y|·t·d² - n², all below 2**64 (Q < 2**127)."""
    cdef uint64_t m = ay * p.td
    cdef uint64_t a = m - p.nn if m >= p.nn else p.nn - m
    cdef u128 a2 = u128_mul64(a, a)
    cdef u128 g
    if u128_ge(a2, p.q):
        g = u128_div(a2, p.q)
        a2 = u128_sub(a2, u128_mul(g, p.q))
        while not u128_is_zero(g):
            if not _bexp1(b):
                return 0
            g = u128_sub(g, u128_from(1))
    return _bexp128(b, a2, p.q)


cdef inline bint _ge_limbs(const uint64_t* x, int nx, const uint64_t* y, int ny) noexcept nogil:
    """x >= y for x of nx limbs and y of ny <= nx limbs."""
    cdef int i
    for i in range(nx - 1, ny - 1, -1):
        if x[i] != 0:
            return 1
    return _cmp_limbs(x, y, ny) >= 0


cdef inline void _sub_limbs_ext(uint64_t* x, const uint64_t* y, int ny, int nx) noexcept nogil:
    """x -= y for x of nx limbs >= y of ny <= nx limbs."""
    cdef int i
    cdef uint64_t borrow = 0, xi, d, yi
    for i in range(nx):
        yi = y[i] if i < ny else 0
        xi = x[i]
        d = xi - yi
        x[i] = d - borrow
        borrow = (xi < yi) | (d < borrow)


cdef inline double _limbs_to_double(const uint64_t* x, int n) noexcept nogil:
    cdef double r = 0.0
    cdef int i
    for i in range(n - 1, -1, -1):
        r = r * 18446744073709551616.0 + <double>x[i]
    return r


cdef bint _accept_big(Bits* b, const Gauss* p, uint64_t ay) noexcept nogil:
    """Bernoulli(exp(-a²/Q)) in limbs: a < 2**256, Q < 2**254."""
    cdef uint64_t m[LIMBS + 1]
    cdef uint64_t r[2 * LIMBS + 1]
    cdef uint64_t lq[LIMBS + 2]
    cdef u128 acc
    cdef uint64_t carry, lo
    cdef int i, j, la, nr
    cdef double ad, ge
    cdef uint64_t low
    # m = |Y| · t·d²
    carry = 0
    for i in range(p.ntd):
        acc = u128_add64(u128_mul64(ay, p.tdl[i]), carry)
        m[i] = u128_lo(acc)
        carry = u128_hi(acc)
    m[p.ntd] = carry
    for i in range(p.ntd + 1, LIMBS + 1):
        m[i] = 0
    # a = |m - n²| (in m; both below 2**256, so four limbs)
    if _cmp_limbs(m, p.nnl, LIMBS) >= 0:
        _sub_limbs(m, p.nnl, LIMBS)
    else:
        for i in range(LIMBS):
            r[i] = p.nnl[i]
        _sub_limbs(r, m, LIMBS)
        for i in range(LIMBS):
            m[i] = r[i]
    la = LIMBS
    while la > 0 and m[la - 1] == 0:
        la -= 1
    # r = a² (2·la limbs, zero above)
    memset(r, 0, sizeof(r))
    for i in range(la):
        carry = 0
        for j in range(la):
            acc = u128_add64(u128_add64(u128_mul64(m[i], m[j]), r[i + j]), carry)
            r[i + j] = u128_lo(acc)
            carry = u128_hi(acc)
        r[i + la] = carry
    nr = 2 * la if 2 * la > p.nq else p.nq
    # floor(a²/Q) from below: L <= γe·(1 - 2**-40) - 1 < γ - 1 < floor(γ), since the
    # double estimate γe is within a relative 2**-50 of γ.
    ad = _limbs_to_double(m, la)
    ge = ad * ad / p.qd
    low = 0
    if ge >= 2.0:
        ge = ge * (1.0 - 9.094947017729282e-13) - 1.0
        low = <uint64_t>ge if ge < 4.0e18 else <uint64_t>4000000000000000000
        # the first `low` of the floor(γ) Bernoulli(exp(-1)) trials, then r -= low·Q
        lo = low
        while lo != 0:
            if not _bexp1(b):
                return 0
            lo -= 1
        carry = 0
        for i in range(LIMBS):
            acc = u128_add64(u128_mul64(low, p.ql[i]), carry)
            lq[i] = u128_lo(acc)
            carry = u128_hi(acc)
        lq[LIMBS] = carry
        for i in range(LIMBS + 1, LIMBS + 2):
            lq[i] = 0
        if nr < LIMBS + 2:
            nr = LIMBS + 2
        _sub_limbs_ext(r, lq, LIMBS + 2, nr)
    # the remaining trials: one per further multiple of Q in r
    while _ge_limbs(r, nr, p.ql, LIMBS):
        if not _bexp1(b):
            return 0
        _sub_limbs_ext(r, p.ql, LIMBS, nr)
    return _bexp_limbs(b, r, p.ql, p.nq)


cdef inline int64_t _dgauss(Bits* b, const Gauss* p) noexcept nogil:
    cdef int64_t y
    cdef uint64_t ay
    while True:
        y = _dlap(b, &p.lap)
        ay = <uint64_t>(-y) if y < 0 else <uint64_t>y
        if p.big:
            if _accept_big(b, p, ay):
                return y
        elif _accept128(b, p, ay):
            return y


# --- blocks and threads ------------------------------------------------------------------

cdef void _lap_block(bitgen_t* bg, int64_t* out, Py_ssize_t n, const Lap* p) noexcept nogil:
    cdef Bits b
    cdef Py_ssize_t i
    b.bg = bg
    b.buf = 0
    b.avail = 0
    for i in range(n):
        out[i] = _dlap(&b, p)


cdef void _gauss_block(bitgen_t* bg, int64_t* out, Py_ssize_t n, const Gauss* p) noexcept nogil:
    cdef Bits b
    cdef Py_ssize_t i
    b.bg = bg
    b.buf = 0
    b.avail = 0
    for i in range(n):
        out[i] = _dgauss(&b, p)


cdef void _run(bint gauss, bitgen_t** bgs, Py_ssize_t nblocks, Py_ssize_t block,
               int64_t* out, Py_ssize_t n, const Lap* lp, const Gauss* gp,
               int nthreads) noexcept nogil:
    cdef Py_ssize_t k, start, length
    if nblocks == 1:
        if gauss:
            _gauss_block(bgs[0], out, n, gp)
        else:
            _lap_block(bgs[0], out, n, lp)
        return
    for k in prange(nblocks, num_threads=nthreads, schedule="dynamic"):
        start = k * block
        length = n - start
        if length > block:
            length = block
        if gauss:
            _gauss_block(bgs[k], out + start, length, gp)
        else:
            _lap_block(bgs[k], out + start, length, lp)


cdef int _set_lap(Lap* p, object t, object s, object vmax, object ymax) except -1:
    p.t = t
    p.s = s
    p.k = (t - 1).bit_length()
    p.shift = (s.bit_length() - 1) if (s & (s - 1)) == 0 else -1
    p.vmax = vmax
    p.ymax = ymax
    return 0


cdef int _to_limbs(uint64_t* dst, object x) except -1:
    cdef int i
    for i in range(LIMBS):
        dst[i] = (x >> (64 * i)) & 0xFFFFFFFFFFFFFFFF
    return 0


cdef object _launch(bint gauss, list bit_generators, Py_ssize_t block, int64_t[::1] out,
                    const Lap* lp, const Gauss* gp, int nthreads):
    cdef Py_ssize_t n = out.shape[0]
    cdef Py_ssize_t nblocks = len(bit_generators)
    cdef bitgen_t** bgs
    cdef int64_t* po
    if n == 0:
        return
    po = &out[0]
    bgs = bitgen_pointers(bit_generators)
    try:
        with nogil:
            _run(gauss, bgs, nblocks, block, po, n, lp, gp, nthreads)
    finally:
        free(bgs)


def fill_laplace(list bit_generators, Py_ssize_t block, t, s, vmax, ymax,
                 int64_t[::1] out, int nthreads=1):
    """out[i] ~ discrete Laplace of scale t/s, conditioned on |out[i]| <= ymax.

    ``1 <= t, s <= 2**62``; ``vmax = ceil(s·(ymax+1)/t) - 1 < 2**64``. Block k of
    ``block`` values draws from ``bit_generators[k]``.
    """
    cdef Lap p
    _set_lap(&p, t, s, vmax, ymax)
    _launch(False, bit_generators, block, out, &p, NULL, nthreads)


def fill_gaussian(list bit_generators, Py_ssize_t block, t, vmax, ymax, td, nn, q,
                  int64_t[::1] out, int nthreads=1):
    """out[i] ~ discrete Gaussian of σ = n/d, conditioned on |out[i]| <= ymax.

    ``t = floor(σ) + 1``, ``td = t·d²``, ``nn = n²``, ``q = 2·n²·d²·t²``, with
    ``q < 2**254`` and ``ymax·td + nn < 2**256`` (the 128-bit mode is used when
    ``q < 2**127`` and ``ymax·td + nn < 2**64``).
    """
    cdef Gauss p
    cdef int i
    _set_lap(&p.lap, t, 1, vmax, ymax)
    p.big = not (q < (1 << 127) and ymax * td + nn < (1 << 64))
    if p.big:
        _to_limbs(p.tdl, td)
        _to_limbs(p.nnl, nn)
        _to_limbs(p.ql, q)
        p.ntd = max(1, (td.bit_length() + 63) // 64)
        p.nq = ((2 * q).bit_length() + 63) // 64
        p.qd = float(q)
        p.td = 0
        p.nn = 0
        p.q = u128_from(0)
    else:
        p.td = td
        p.nn = nn
        p.q = u128_make(<uint64_t>(q >> 64), <uint64_t>(q & 0xFFFFFFFFFFFFFFFF))
        for i in range(LIMBS):
            p.tdl[i] = 0
            p.nnl[i] = 0
            p.ql[i] = 0
        p.ntd = 0
        p.nq = 0
        p.qd = 0.0
    _launch(True, bit_generators, block, out, NULL, &p, nthreads)
