# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Continuous noise kernels: 256-layer ziggurat samplers fed by numpy bit generators.

Exponential and standard normal variates by the ziggurat method of Marsaglia & Tsang
(2000, "The Ziggurat Method for Generating Random Variables", J. Stat. Softw. 5(8)); the
tables are built at import from the paper's constants (r, v) by its recurrence. One
64-bit word gives the layer (8 bits), a sign (1 bit) and a 53-bit uniform; most draws
take one word and no transcendental function.

Laplace(b)  = b * (±Exp(1))        (sign from an independent bit of the first word)
Normal(σ)   = σ * N(0, 1)
Gumbel(β)   = -β * log(Exp(1))

Kernels fill one block per bit generator (see ``ppml_fast._streams``), blocks in
parallel with OpenMP, the GIL released. No validation happens here.
"""
from cython.parallel cimport prange
from libc.math cimport exp, log, sqrt
from libc.stdint cimport int64_t, uint64_t
from libc.stdlib cimport free
from numpy.random cimport bitgen_t

from ._bitgen cimport bitgen_pointers

import numpy as np

DEF ZN = 256

cdef double TWO_M53 = 1.0 / 9007199254740992.0  # 2**-53

# Exponential, f(x) = exp(-x): right edge r and layer area v (Marsaglia & Tsang 2000).
cdef double RE = 7.69711747013104972
cdef double VE = 3.949659822581572e-3
# Normal, f(x) = exp(-x*x/2).
cdef double RN = 3.6541528853610088
cdef double VN = 4.92867323399e-3

# X[i]: layer edges (X[0] = v/f(r) is the base layer's virtual width, X[1] = r, X[ZN] = 0);
# F[i] = f(X[i]); W[i] = X[i] * 2**-53; K[i] = largest j with j*W[i] < X[i+1] (fast accept).
cdef double XE[ZN + 1]
cdef double FE[ZN + 1]
cdef double WE[ZN]
cdef int64_t KE[ZN]
cdef double XN[ZN + 1]
cdef double FN[ZN + 1]
cdef double WN[ZN]
cdef int64_t KN[ZN]

cdef enum Kind:
    LAPLACE = 0
    GAUSSIAN = 1
    EXPONENTIAL = 2
    GUMBEL = 3

KIND_LAPLACE = LAPLACE
KIND_GAUSSIAN = GAUSSIAN
KIND_EXPONENTIAL = EXPONENTIAL
KIND_GUMBEL = GUMBEL


cdef double _f_exp(double x):
    return exp(-x)


cdef double _finv_exp(double y):
    return -log(y)


cdef double _f_norm(double x):
    return exp(-0.5 * x * x)


cdef double _finv_norm(double y):
    return sqrt(-2.0 * log(y))


cdef void _build(double r, double v, double (*f)(double), double (*finv)(double),
                 double* X, double* F, double* W, int64_t* K):
    cdef int i
    cdef double y
    X[0] = v / f(r)
    X[1] = r
    for i in range(1, ZN - 1):
        y = v / X[i] + f(X[i])
        X[i + 1] = finv(y) if y < 1.0 else 0.0
    X[ZN] = 0.0
    for i in range(ZN + 1):
        F[i] = f(X[i])
    F[0] = f(r)  # the base layer's top: f at the real edge, not at the virtual width
    for i in range(ZN):
        W[i] = X[i] * TWO_M53
        K[i] = <int64_t>((X[i + 1] / X[i]) * 9007199254740992.0)


_build(RE, VE, _f_exp, _finv_exp, XE, FE, WE, KE)
_build(RN, VN, _f_norm, _finv_norm, XN, FN, WN, KN)


def tables():
    """The ziggurat tables as numpy arrays (for tests): dict of X, F, K per distribution."""
    return {
        "exp": (np.array([XE[i] for i in range(ZN + 1)]), np.array([FE[i] for i in range(ZN + 1)]),
                np.array([KE[i] for i in range(ZN)], dtype=np.int64)),
        "norm": (np.array([XN[i] for i in range(ZN + 1)]), np.array([FN[i] for i in range(ZN + 1)]),
                 np.array([KN[i] for i in range(ZN)], dtype=np.int64)),
    }


cdef inline double _unit(bitgen_t* bg) noexcept nogil:
    """Uniform on [0, 1) with 53 random bits."""
    return <double><int64_t>(bg.next_uint64(bg.state) >> 11) * TWO_M53


cdef inline double _unit_open0(bitgen_t* bg) noexcept nogil:
    """Uniform on (0, 1] with 53 random bits (safe under log)."""
    return <double><int64_t>((bg.next_uint64(bg.state) >> 11) + 1) * TWO_M53


cdef inline double _exp_from(bitgen_t* bg, uint64_t u) noexcept nogil:
    """Exp(1) variate; ``u`` is the first 64-bit word (bit 8 is left for the caller)."""
    cdef double base = 0.0
    cdef double x
    cdef int64_t j
    cdef int i
    while True:
        i = <int>(u & 0xFF)
        j = <int64_t>(u >> 11)
        if j < KE[i]:
            return base + <double>j * WE[i]
        if i == 0:
            base += RE  # tail beyond r: memoryless, so r + Exp(1)
        else:
            x = j * WE[i]
            if FE[i] + _unit(bg) * (FE[i + 1] - FE[i]) < exp(-x):
                return base + x
        u = bg.next_uint64(bg.state)


cdef inline double _norm_from(bitgen_t* bg, uint64_t u) noexcept nogil:
    """|N(0,1)| variate; ``u`` is the first 64-bit word (bit 8 is left for the caller)."""
    cdef double x, y
    cdef int64_t j
    cdef int i
    while True:
        i = <int>(u & 0xFF)
        j = <int64_t>(u >> 11)
        if j < KN[i]:
            return <double>j * WN[i]
        if i == 0:
            # Marsaglia (1964) tail: x = -log(U1)/r, accept when -2 log(U2) > x^2.
            while True:
                x = -log(_unit_open0(bg)) / RN
                y = -log(_unit_open0(bg))
                if y + y > x * x:
                    return RN + x
        x = j * WN[i]
        if FN[i] + _unit(bg) * (FN[i + 1] - FN[i]) < exp(-0.5 * x * x):
            return x
        u = bg.next_uint64(bg.state)


ctypedef fused real:
    float
    double


cdef inline void _store(real* out, const real* loc, Py_ssize_t i, double v,
                        double* check) noexcept nogil:
    # With loc, check accumulates r - r for each stored r = loc[i] + v: 0 while every
    # result is finite, NaN from the first NaN/inf in loc (or overflow of loc + noise)
    # on, so the caller learns of bad input without a second pass over the data.
    cdef real r
    if loc == NULL:
        out[i] = <real>v
    else:
        r = <real>(loc[i] + v)
        check[0] += <double>r - <double>r
        out[i] = r


cdef double _fill_block(int kind, bitgen_t* bg, real* out, const real* loc,
                        Py_ssize_t n, double scale) noexcept nogil:
    """Fill one block; return 0 if every ``loc + noise`` is finite (or loc is NULL), else NaN."""
    cdef Py_ssize_t i
    cdef uint64_t u
    cdef double z
    cdef double check = 0.0
    cdef double signed_scale[2]
    # A table lookup rather than a branch: a random sign mispredicts half the time.
    signed_scale[0] = scale
    signed_scale[1] = -scale
    if kind == LAPLACE:
        for i in range(n):
            u = bg.next_uint64(bg.state)
            z = _exp_from(bg, u)
            _store(out, loc, i, signed_scale[(u >> 8) & 1] * z, &check)
    elif kind == GAUSSIAN:
        for i in range(n):
            u = bg.next_uint64(bg.state)
            z = _norm_from(bg, u)
            _store(out, loc, i, signed_scale[(u >> 8) & 1] * z, &check)
    elif kind == EXPONENTIAL:
        for i in range(n):
            _store(out, loc, i, scale * _exp_from(bg, bg.next_uint64(bg.state)), &check)
    else:
        for i in range(n):
            z = _exp_from(bg, bg.next_uint64(bg.state))
            while z == 0.0:  # probability ~2**-61: log(0) would give an infinite Gumbel
                z = _exp_from(bg, bg.next_uint64(bg.state))
            _store(out, loc, i, -scale * log(z), &check)
    return check


cdef double _run(int kind, bitgen_t** bgs, Py_ssize_t nblocks, Py_ssize_t block,
                 real* out, const real* loc, Py_ssize_t n, double scale, int nthreads) noexcept nogil:
    cdef Py_ssize_t b, start, length
    cdef double check = 0.0
    if nblocks == 1:
        return _fill_block(kind, bgs[0], out, loc, n, scale)
    for b in prange(nblocks, num_threads=nthreads, schedule="dynamic"):
        start = b * block
        length = n - start
        if length > block:
            length = block
        if loc == NULL:
            check += _fill_block(kind, bgs[b], out + start, <const real*>NULL, length, scale)
        else:
            check += _fill_block(kind, bgs[b], out + start, loc + start, length, scale)
    return check


def fill(int kind, list bit_generators, Py_ssize_t block, double scale,
         real[::1] out, const real[::1] loc=None, int nthreads=1) -> bool:
    """out[i] = (loc[i] if loc is given else 0) + scale * Z_i for i in block order.

    ``bit_generators[k]`` feeds values ``k*block`` .. ``(k+1)*block - 1``; a single bit
    generator feeds everything. ``loc`` (optional) has the length and dtype of ``out`` and
    may be ``out`` itself. Returns False when some ``loc[i] + noise`` is NaN or infinite
    (a non-finite ``loc``, or overflow; checked in the same pass, ``out`` is then
    meaningless), else True.
    """
    cdef Py_ssize_t n = out.shape[0]
    cdef Py_ssize_t nblocks = len(bit_generators)
    cdef bitgen_t** bgs
    cdef real* po
    cdef const real* pl = NULL
    cdef double check = 0.0
    if n == 0:
        return True
    po = &out[0]
    if loc is not None:
        pl = &loc[0]
    bgs = bitgen_pointers(bit_generators)
    try:
        with nogil:
            check = _run(kind, bgs, nblocks, block, po, pl, n, scale, nthreads)
    finally:
        free(bgs)
    return check == 0.0
