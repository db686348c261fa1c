# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Privacy-accounting kernels: RDP of the sampled Gaussian and PRV discretisation/composition.

RDP (``rdp_sgm``)
-----------------
Renyi DP of the Poisson-subsampled Gaussian mechanism, Mironov, Talwar & Zhang (2019),
"Renyi Differential Privacy of the Sampled Gaussian Mechanism", Section 3.3:
RDP(alpha) = log(A_alpha) / (alpha - 1) with

- integer alpha: A_alpha = sum_{i=0}^{alpha} C(alpha, i) q^i (1-q)^(alpha-i)
  exp((i^2 - i) / (2 sigma^2));
- fractional alpha: the two-sided series over i >= 0 of C(alpha, i) terms weighted by
  Gaussian tail integrals split at z0 = sigma^2 log(1/q - 1) + 1/2, summed until both
  terms fall below exp(-30).

The operations are the ones Opacus (after TF Privacy) performs, in the same order and
with the same special functions: the binomial coefficient and log_ndtr are SciPy's own
(``scipy.special.cython_special``, fetched from its C-API capsules at import), and
log/exp/log1p/expm1/pow are the C library's, which Python's ``math`` module also calls.
So each order's value is the same double Opacus computes, bit for bit (tested), while the
orders run in parallel without the interpreter. The deliberate differences: where
Opacus' log-space subtraction would raise, its series would not terminate (NaN), or the
fractional series cancels into a negative value (large fractional orders), the order's
value is +inf (a conservative answer). pow(sigma, 2.0) stays a libm call
(-fno-builtin-pow in setup.py), because Python's sigma**2 is one.

PRV (``sgm_survival``, ``laplace_survival``, ``power_inplace``, ``epsilon_search``,
``delta_at``)
------------------------------------------------------------------------------------
Gopi, Lee & Wutschitz (2021), "Numerical Composition of Differential Privacy": the
privacy loss random variable Y = log(P(X)/Q(X)), X ~ P, of the dominating pair
P = (1-q) N(0, s^2) + q N(1, s^2), Q = N(0, s^2) has survival function (their Prop. B.4)

    S(t) = q/2 erfc((2 z s^2 - 1) / (2 sqrt2 s)) + (1-q)/2 erfc((2 z s^2 + 1) / (2 sqrt2 s)),
    z = log((e^t - (1 - q)) / q),   for t > log(1 - q); S(t) = 1 below.

z is evaluated as log1p(expm1(t)/q) for t <= 0 and t - log(q) + log1p(-(1-q) e^-t) above,
so neither the bulk near t = 0 nor the tail loses digits. Discretised masses are
differences of S (never of 1 - S), so tail cells keep their relative accuracy.
Nothing here validates its arguments: ppml_fast.accounting does.
"""
import numpy as np

from cpython.pycapsule cimport PyCapsule_GetName, PyCapsule_GetPointer
from cython.parallel cimport prange
from libc.math cimport (
    INFINITY,
    NAN,
    erfc,
    exp,
    expm1,
    fabs,
    isinf,
    isnan,
    log,
    log1p,
    pow,
    sqrt,
)

ctypedef double (*binom_fn)(double, double, int) noexcept nogil
ctypedef double (*unary_fn)(double, int) noexcept nogil

cdef binom_fn _binom = NULL
cdef unary_fn _log_ndtr = NULL
cdef long _MAX_TERMS = 10000000


cdef void* _capsule_pointer(object capi, str key, str want) except NULL:
    capsule = capi[key]
    cdef const char* name = PyCapsule_GetName(capsule)
    if name == NULL or want not in (<bytes>name).decode():
        raise ImportError(
            f"scipy.special.cython_special.{key} has an unexpected C signature "
            f"{(<bytes>name).decode() if name != NULL else None!r}"
        )
    return PyCapsule_GetPointer(capsule, name)


def _load_scipy() -> None:
    """Fetch SciPy's binom and log_ndtr C entry points (the ones its ufuncs run)."""
    global _binom, _log_ndtr
    from scipy.special import cython_special

    capi = cython_special.__pyx_capi__
    _binom = <binom_fn>_capsule_pointer(capi, "binom", "double (double, double, int")
    _log_ndtr = <unary_fn>_capsule_pointer(
        capi, "__pyx_fuse_1log_ndtr", "double (double, int"
    )


_load_scipy()


# ---------------------------------------------------------------------------------------
# RDP of the sampled Gaussian mechanism
# ---------------------------------------------------------------------------------------

cdef inline double _log_add(double logx, double logy) noexcept nogil:
    # Python's min/max keep the first argument unless the second compares strictly
    # smaller/larger; NaN therefore propagates exactly as in the Python original.
    cdef double a = logy if logy < logx else logx
    cdef double b = logy if logy > logx else logx
    if a == -INFINITY:
        return b
    return log1p(exp(a - b)) + b


cdef inline double _log_sub(double logx, double logy, bint* bad) noexcept nogil:
    cdef double d
    if logx < logy:
        bad[0] = True
        return NAN
    if logy == -INFINITY:
        return logx
    if logx == logy:
        return -INFINITY
    d = expm1(logx - logy)
    if isinf(d) and not isinf(logx - logy):
        return logx          # Python's math.expm1 raises OverflowError here
    return log(d) + logy


cdef inline double _log_erfc(double x) noexcept nogil:
    return log(2.0) + _log_ndtr(-x * sqrt(2.0), 0)


cdef double _log_a_int(double q, double sigma, long alpha) noexcept nogil:
    cdef double log_a = -INFINITY
    cdef double log_coef_i, s
    cdef double s2 = pow(sigma, 2.0)
    cdef long i
    for i in range(alpha + 1):
        log_coef_i = (
            log(_binom(<double>alpha, <double>i, 0))
            + <double>i * log(q)
            + <double>(alpha - i) * log(1 - q)
        )
        s = log_coef_i + <double>(i * i - i) / (2 * s2)
        log_a = _log_add(log_a, s)
    return log_a


cdef double _log_a_frac(double q, double sigma, double alpha) noexcept nogil:
    cdef double log_a0 = -INFINITY
    cdef double log_a1 = -INFINITY
    cdef double s2 = pow(sigma, 2.0)
    cdef double z0 = s2 * log(1 / q - 1) + 0.5
    cdef double coef, log_coef, j, di, log_t0, log_t1, log_e0, log_e1, log_s0, log_s1, top
    cdef long i = 0
    cdef bint bad = False
    while True:
        di = <double>i
        coef = _binom(alpha, di, 0)
        log_coef = log(fabs(coef))
        j = alpha - di
        log_t0 = log_coef + di * log(q) + j * log(1 - q)
        log_t1 = log_coef + j * log(q) + di * log(1 - q)
        log_e0 = log(0.5) + _log_erfc((di - z0) / (sqrt(2.0) * sigma))
        log_e1 = log(0.5) + _log_erfc((z0 - j) / (sqrt(2.0) * sigma))
        log_s0 = log_t0 + <double>(i * i - i) / (2 * s2) + log_e0
        log_s1 = log_t1 + (j * j - j) / (2 * s2) + log_e1
        if coef > 0:
            log_a0 = _log_add(log_a0, log_s0)
            log_a1 = _log_add(log_a1, log_s1)
        else:
            log_a0 = _log_sub(log_a0, log_s0, &bad)
            log_a1 = _log_sub(log_a1, log_s1, &bad)
            if bad:
                return INFINITY
        i += 1
        top = log_s1 if log_s1 > log_s0 else log_s0
        if top < -30:
            break
        if i > _MAX_TERMS:
            return INFINITY
    return _log_add(log_a0, log_a1)


cdef double _rdp_one(double q, double sigma, double alpha) noexcept nogil:
    cdef double r
    if q == 0:
        return 0.0
    if sigma == 0:
        return INFINITY
    if q == 1.0:
        return alpha / (2 * pow(sigma, 2.0))
    if isinf(alpha):
        return INFINITY
    if alpha == <double>(<long>alpha):
        r = _log_a_int(q, sigma, <long>alpha) / (alpha - 1)
    else:
        r = _log_a_frac(q, sigma, alpha) / (alpha - 1)
    if isnan(r) or r < -1e-9:
        # RDP is >= 0; a clearly negative value is the fractional series cancelling
        # catastrophically (large fractional orders), so answer conservatively. Rounding-
        # level negatives (true RDP ~ 1e-20 at huge sigma) are Opacus' values, kept.
        return INFINITY
    return r


def rdp_sgm(double q, double sigma, const double[::1] orders, double[::1] out,
            int nthreads=1) -> None:
    """out[k] = RDP of one step of the sampled Gaussian at orders[k] (Opacus' value)."""
    cdef Py_ssize_t k, n = orders.shape[0]
    if nthreads > 1 and n > 1:
        for k in prange(n, nogil=True, num_threads=nthreads, schedule="dynamic", chunksize=1):
            out[k] = _rdp_one(q, sigma, orders[k])
    else:
        with nogil:
            for k in range(n):
                out[k] = _rdp_one(q, sigma, orders[k])


# ---------------------------------------------------------------------------------------
# PRV discretisation
# ---------------------------------------------------------------------------------------

cdef inline double _sgm_survival(double t, double q, double sigma, double log1mq) noexcept nogil:
    cdef double z, a
    if t <= log1mq:
        return 1.0
    if t <= 0:
        z = log1p(expm1(t) / q)
    else:
        z = t - log(q) + log1p(-(1 - q) * exp(-t))
    a = 2 * z * sigma * sigma
    return (q * erfc((a - 1) / (2 * sqrt(2.0) * sigma))
            + (1 - q) * erfc((a + 1) / (2 * sqrt(2.0) * sigma))) / 2


def sgm_survival(double q, double sigma, const double[::1] t, double[::1] out,
                 int nthreads=1) -> None:
    """out[i] = P(Y > t[i]) for the PRV of the Poisson-subsampled Gaussian (0 < q <= 1)."""
    cdef Py_ssize_t i, n = t.shape[0]
    cdef double log1mq = log1p(-q) if q < 1 else -INFINITY
    if nthreads > 1 and n > 4096:
        for i in prange(n, nogil=True, num_threads=nthreads, schedule="static"):
            out[i] = _sgm_survival(t[i], q, sigma, log1mq)
    else:
        with nogil:
            for i in range(n):
                out[i] = _sgm_survival(t[i], q, sigma, log1mq)


def sgm_cells(double q, double sigma, double start, double h, Py_ssize_t n,
              double floor_mass, double[::1] out, int nthreads=1) -> Py_ssize_t:
    """Masses of the cells [start + i h, start + (i+1) h), i < n, as S(left) - S(right).

    Stops at the first edge whose survival is <= floor_mass and returns the number of
    cells filled (the caller decides where the remaining tail mass goes); cells not
    filled are left untouched. Evaluated in chunks so that the stop costs little.
    """
    cdef double log1mq = log1p(-q) if q < 1 else -INFINITY
    cdef Py_ssize_t chunk = 65536
    cdef Py_ssize_t lo = 0, hi, i, m, stop
    cdef double s_left = _sgm_survival(start, q, sigma, log1mq)
    cdef double[::1] edge
    edge_arr = np.empty(chunk + 1, dtype=np.float64)
    edge = edge_arr
    while lo < n:
        if s_left <= floor_mass:
            return lo
        hi = min(n, lo + chunk)
        m = hi - lo
        edge[0] = s_left
        if nthreads > 1 and m > 4096:
            for i in prange(1, m + 1, nogil=True, num_threads=nthreads, schedule="static"):
                edge[i] = _sgm_survival(start + (lo + i) * h, q, sigma, log1mq)
        else:
            with nogil:
                for i in range(1, m + 1):
                    edge[i] = _sgm_survival(start + (lo + i) * h, q, sigma, log1mq)
        stop = m
        with nogil:
            for i in range(m):
                out[lo + i] = edge[i] - edge[i + 1]
                if edge[i + 1] <= floor_mass:
                    stop = i + 1
                    break
        if stop < m:
            return lo + stop
        s_left = edge[m]
        lo = hi
    return n


# ---------------------------------------------------------------------------------------
# Composition and read-out
# ---------------------------------------------------------------------------------------

def power_inplace(double complex[::1] z, long k, int nthreads=1) -> None:
    """z[i] = z[i] ** k by binary exponentiation (k >= 1), elementwise and in parallel."""
    cdef Py_ssize_t i, n = z.shape[0]
    if nthreads > 1 and n > 8192:
        for i in prange(n, nogil=True, num_threads=nthreads, schedule="static"):
            z[i] = _cpow(z[i], k)
    else:
        with nogil:
            for i in range(n):
                z[i] = _cpow(z[i], k)


cdef inline double complex _cpow(double complex base, long k) noexcept nogil:
    cdef double complex acc = 1.0
    while k > 0:
        if k & 1:
            acc = acc * base
        k >>= 1
        if k:
            base = base * base
    return acc


def tail_sums(const double[::1] pmf, double t0, double h, Py_ssize_t first,
              double[::1] d1, double[::1] d2) -> None:
    """Suffix sums over i >= j (for j >= first): d1[j] = sum p_i, d2[j] = sum p_i e^{-t_i}.

    t_i = t0 + i h. Entries below ``first`` are not written.
    """
    cdef Py_ssize_t i, n = pmf.shape[0]
    cdef double a = 0.0, b = 0.0
    with nogil:
        for i in range(n - 1, first - 1, -1):
            a = a + pmf[i]
            b = b + pmf[i] * exp(-(t0 + i * h))
            d1[i] = a
            d2[i] = b


def abs_pow_into(const double complex[::1] x, long k, double[::1] acc, int nthreads=1) -> None:
    """acc[i] *= |x[i]| ** k (binary exponentiation of |x|^2, then one sqrt)."""
    cdef Py_ssize_t i, n = x.shape[0]
    if nthreads > 1 and n > 8192:
        for i in prange(n, nogil=True, num_threads=nthreads, schedule="static"):
            acc[i] = acc[i] * _abs_pow(x[i], k)
    else:
        with nogil:
            for i in range(n):
                acc[i] = acc[i] * _abs_pow(x[i], k)


cdef inline double _abs_pow(double complex z, long k) noexcept nogil:
    # An upper bound is all the caller needs: once b < 1e-100 every further factor
    # only shrinks the result (acc <= 1), so stop there instead of crawling through
    # subnormals (which cost ~100x per operation).
    cdef double b = z.real * z.real + z.imag * z.imag
    cdef double acc = 1.0
    while k > 0:
        if b < 1e-100:
            return sqrt(acc * 1e-100) if acc * 1e-100 > 0 else 1e-50
        if k & 1:
            acc = acc * b
        k >>= 1
        if k:
            b = b * b
    return sqrt(acc)


def tail_start(const double[::1] mags, double tol) -> Py_ssize_t:
    """Smallest F with sum(mags[F:]) <= tol (mags >= 0); len(mags) if none is needed."""
    cdef Py_ssize_t i = mags.shape[0]
    cdef double tail = 0.0
    with nogil:
        while i > 0 and tail + mags[i - 1] <= tol:
            tail = tail + mags[i - 1]
            i -= 1
    return i
