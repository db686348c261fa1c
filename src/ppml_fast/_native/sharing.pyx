# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Modular arithmetic kernels for secret sharing (``_sharing_kernels.h``), GIL released.

Nothing here validates: :mod:`ppml_fast.sharing` hands over C-contiguous uint64 arrays
whose values are already reduced (< p), a prime p < 2**62 (0 = the ring Z_2^64 where an
operation allows it), and outputs of the right size.
"""
from cython.parallel cimport prange
from libc.stdint cimport int64_t, uint64_t
from libc.stdlib cimport free, malloc

cimport numpy as cnp
from numpy.random cimport bitgen_t

from ._bitgen cimport bitgen_pointers

cnp.import_array()

include "_isa.pxi"

cdef extern from "_sharing_kernels.h" nogil:
    int SHR_ADD_ "SHR_ADD"
    int SHR_SUB_ "SHR_SUB"
    int SHR_MUL_ "SHR_MUL"
    int SHR_POW_ "SHR_POW"
    int shr_binop(int op, const uint64_t *a, int64_t sa, const uint64_t *b, int64_t sb,
                  uint64_t *out, int64_t n, uint64_t p, int nthreads)
    int SHR_BS_ "SHR_BS"
    int shr_bitlen(uint64_t x)
    void shr_poly_rows(int isa, const uint64_t *const *rows, int64_t t, int64_t n, uint64_t p,
                       uint64_t *out, int64_t N, int64_t w)
    int shr_lincomb(const uint64_t *const *rows, const uint64_t *coef, int m, uint64_t *out,
                    int64_t N, uint64_t p, int nthreads)
    int shr_any_ge(const uint64_t *x, int64_t n, uint64_t p, int nthreads)
    void shr_sum_rows(const uint64_t *x, int64_t nrows, int64_t ncols, uint64_t p,
                      uint64_t *out, int nthreads)
    void shr_inv_field(const uint64_t *a, uint64_t *out, int64_t n, uint64_t p, int nthreads)
    void shr_matmul_ring(const uint64_t *A, const uint64_t *B, uint64_t *C, int64_t N,
                         int64_t K, int64_t M, int nthreads)
    void shr_combine_blocks(const double *prod, int64_t ld, int64_t n, int64_t m, int L,
                            const uint64_t *coef, uint64_t *out, uint64_t p, int nthreads)

ADD = SHR_ADD_
SUB = SHR_SUB_
MUL = SHR_MUL_
POW = SHR_POW_


cdef inline uint64_t *_ptr(cnp.ndarray a):
    return <uint64_t *>cnp.PyArray_DATA(a)


def binop(int op, cnp.ndarray a, cnp.ndarray b, cnp.ndarray out, uint64_t p, int nthreads):
    """out = a op b (mod p; p = 0: ring, POW only); a or b may have size 1 (a scalar).

    Returns True when some field operand was >= p (out is then meaningless).
    """
    cdef int64_t n = out.size
    cdef int64_t sa = 0 if a.size == 1 else 1
    cdef int64_t sb = 0 if b.size == 1 else 1
    cdef uint64_t *pa = _ptr(a)
    cdef uint64_t *pb = _ptr(b)
    cdef uint64_t *po = _ptr(out)
    cdef int bad
    with nogil:
        bad = shr_binop(op, pa, sa, pb, sb, po, n, p, nthreads)
    return bool(bad)


def sum_rows(cnp.ndarray x, cnp.ndarray out, uint64_t p, int nthreads):
    """out[r] = sum of row r of the 2-D x, mod p (p = 0: mod 2**64)."""
    cdef int64_t nrows = x.shape[0], ncols = x.shape[1]
    cdef uint64_t *px = _ptr(x)
    cdef uint64_t *po = _ptr(out)
    with nogil:
        shr_sum_rows(px, nrows, ncols, p, po, nthreads)


def inv_field(cnp.ndarray a, cnp.ndarray out, uint64_t p, int nthreads):
    """out = a**-1 mod p elementwise (every a nonzero)."""
    cdef int64_t n = a.size
    cdef uint64_t *pa = _ptr(a)
    cdef uint64_t *po = _ptr(out)
    with nogil:
        shr_inv_field(pa, po, n, p, nthreads)


def matmul_ring(cnp.ndarray A, cnp.ndarray B, cnp.ndarray C, int nthreads):
    """C = A @ B mod 2**64 (2-D, contiguous)."""
    cdef int64_t N = A.shape[0], K = A.shape[1], M = B.shape[1]
    cdef uint64_t *pA = _ptr(A)
    cdef uint64_t *pB = _ptr(B)
    cdef uint64_t *pC = _ptr(C)
    with nogil:
        shr_matmul_ring(pA, pB, pC, N, K, M, nthreads)


def combine_blocks(cnp.ndarray prod, int L, cnp.ndarray coef, cnp.ndarray out, uint64_t p,
                   int nthreads):
    """out (n x m) += the limb blocks of the float64 (L n) x (L m) ``prod`` weighted by
    ``coef[i + j]``, mod p (``prod`` C-contiguous, exact integers below 2**53)."""
    cdef int64_t n = out.shape[0], m = out.shape[1], ld = prod.shape[1]
    cdef const double *pp = <const double *>cnp.PyArray_DATA(prod)
    cdef uint64_t *pc = _ptr(coef)
    cdef uint64_t *po = _ptr(out)
    with nogil:
        shr_combine_blocks(pp, ld, n, m, L, pc, po, p, nthreads)


def any_ge(cnp.ndarray x, uint64_t p, int nthreads):
    """Whether some element of the contiguous uint64 ``x`` is >= p (all threads)."""
    cdef int64_t n = x.size
    cdef uint64_t *px = _ptr(x)
    cdef int r
    with nogil:
        r = shr_any_ge(px, n, p, nthreads)
    return bool(r)


def lincomb(cnp.ndarray rows, cnp.ndarray coef, cnp.ndarray out, uint64_t p, int nthreads):
    """out = sum_k coef[k] * rows[k] mod p (rows: C-contiguous (m, N); coef < p).

    Returns True when some row element was >= p (out is then meaningless)."""
    cdef int m = rows.shape[0]
    cdef int64_t N = rows.shape[1]
    cdef const uint64_t **rp = <const uint64_t **>malloc(sizeof(uint64_t *) * max(m, 1))
    cdef uint64_t *base = _ptr(rows)
    cdef uint64_t *pc = _ptr(coef)
    cdef uint64_t *po = _ptr(out)
    cdef int k
    cdef int bad = 0
    if rp == NULL:
        raise MemoryError()
    try:
        for k in range(m):
            rp[k] = base + k * N
        with nogil:
            bad = shr_lincomb(rp, pc, m, po, N, p, nthreads)
    finally:
        free(rp)
    return bool(bad)


cdef void _uniform_block(bitgen_t* bg, uint64_t* out, Py_ssize_t n, uint64_t p,
                         uint64_t mask) noexcept nogil:
    cdef Py_ssize_t i
    cdef uint64_t v
    for i in range(n):
        v = bg.next_uint64(bg.state)
        if p:
            v &= mask
            while v >= p:  # rejection: uniform on [0, p), at most half rejected
                v = bg.next_uint64(bg.state) & mask
        out[i] = v


def uniform_fill(list bit_generators, Py_ssize_t block, uint64_t p, cnp.ndarray out,
                 int nthreads):
    """Fill the contiguous uint64 ``out`` with uniform elements of Z_p (p = 0: raw words of
    Z_2^64): ``bit_generators[k]`` feeds elements ``k*block`` .. ``(k+1)*block - 1`` (one
    generator: all of them), so the result does not depend on the thread count."""
    cdef Py_ssize_t n = out.size
    cdef Py_ssize_t nblocks = len(bit_generators)
    cdef uint64_t* po = _ptr(out)
    cdef uint64_t mask = 0
    cdef Py_ssize_t b, start, length
    cdef bitgen_t** bgs
    if n == 0:
        return
    if p:
        mask = (<uint64_t>1 << shr_bitlen(p)) - 1 if p > 1 else 1
    bgs = bitgen_pointers(bit_generators)
    try:
        with nogil:
            if nblocks == 1:
                _uniform_block(bgs[0], po, n, p, mask)
            else:
                for b in prange(nblocks, num_threads=nthreads, schedule="dynamic"):
                    start = b * block
                    length = n - start
                    if length > block:
                        length = block
                    _uniform_block(bgs[b], po + start, length, p, mask)
    finally:
        free(bgs)


def shamir_fill(cnp.ndarray x, int64_t t, int64_t n, uint64_t p, list bit_generators,
                Py_ssize_t block, cnp.ndarray out, int nthreads):
    """out (n, N): Shamir shares at the points 1 .. n of the N secrets ``x`` (< p), with
    polynomials of degree t - 1 whose coefficients are drawn as they are needed: secrets
    ``k*block`` .. ``(k+1)*block - 1`` take theirs from ``bit_generators[k]`` (one
    generator: all), uniform on [0, p) by rejection, so the shares do not depend on the
    thread count. The coefficients never exist as a whole array."""
    cdef int64_t N = x.size
    cdef Py_ssize_t nblocks = len(bit_generators)
    cdef uint64_t *px = _ptr(x)
    cdef uint64_t *po = _ptr(out)
    cdef uint64_t mask = (<uint64_t>1 << shr_bitlen(p)) - 1
    cdef int isa = ppml_isa  # one level for all the blocks
    cdef int64_t bs = SHR_BS_
    cdef Py_ssize_t b
    cdef int64_t start, end, j0, w, c
    cdef uint64_t *buf
    cdef const uint64_t **rows
    cdef bitgen_t** bgs
    cdef int failed = 0
    if N == 0:
        return
    bgs = bitgen_pointers(bit_generators)
    try:
        with nogil:
            for b in prange(nblocks, num_threads=nthreads, schedule="dynamic"):
                start = b * block
                end = N if nblocks == 1 else min(N, start + block)
                buf = <uint64_t *>malloc(sizeof(uint64_t) * max(t - 1, 1) * bs)
                rows = <const uint64_t **>malloc(sizeof(uint64_t *) * t)
                if buf == NULL or rows == NULL:
                    failed += 1  # a reduction (a plain assignment would be lastprivate)
                else:
                    j0 = start
                    while j0 < end:
                        w = min(bs, end - j0)
                        rows[0] = px + j0
                        for c in range(1, t):
                            _uniform_block(bgs[b], buf + (c - 1) * bs, w, p, mask)
                            rows[c] = buf + (c - 1) * bs
                        shr_poly_rows(isa, rows, t, n, p, po + j0, N, w)
                        j0 = j0 + w
                free(buf)
                free(rows)
    finally:
        free(bgs)
    if failed:
        raise MemoryError()


from . import register as _register_isa

_register_isa(_set_isa)
