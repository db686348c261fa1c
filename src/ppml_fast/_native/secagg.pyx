# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Secure-aggregation kernels (``_secagg_kernels.h``): AES-CTR mask expansion fused with
the ring addition, and the server's masked sum; GIL released, OpenMP.

Nothing here validates: :mod:`ppml_fast._secagg` passes C-contiguous uint64 vectors,
``m`` 16-byte AES keys as one contiguous uint8 buffer and int8 signs.
"""
from libc.stdint cimport int8_t, int64_t, uint8_t, uint64_t
from libc.stdlib cimport free, malloc

cimport numpy as cnp

cnp.import_array()

cdef extern from "_secagg_kernels.h" nogil:
    int sa_cpu()
    int sa_masks_add(uint64_t *acc, int64_t D, const uint8_t *keys, const int8_t *signs,
                     int64_t m, int force, int nthreads)
    void sa_ring_sum(const uint64_t *const *rows, int64_t n, int64_t D, uint64_t *out,
                     int nthreads)


def cpu_level():
    """2 = VAES (AVX-512), 1 = AES-NI, 0 = neither (the Python fallback is used)."""
    return sa_cpu()


def masks_add(cnp.ndarray acc, cnp.ndarray keys, cnp.ndarray signs, int force, int nthreads):
    """acc += sum_j sign_j * AES-CTR(keys[j]) mod 2**64; returns 0, -1 (no AES), -2 (memory)."""
    cdef uint64_t *ap = <uint64_t *>cnp.PyArray_DATA(acc)
    cdef const uint8_t *kp = <const uint8_t *>cnp.PyArray_DATA(keys)
    cdef const int8_t *sp = <const int8_t *>cnp.PyArray_DATA(signs)
    cdef int64_t D = acc.shape[0], m = signs.shape[0]
    cdef int rc
    with nogil:
        rc = sa_masks_add(ap, D, kp, sp, m, force, nthreads)
    return rc


def ring_sum(list rows, cnp.ndarray out, int nthreads):
    """out = sum of the uint64 vectors in rows, mod 2**64 (all of out's length)."""
    cdef int64_t n = len(rows), D = out.shape[0], i
    cdef const uint64_t **ptrs = <const uint64_t **>malloc(max(n, 1) * sizeof(uint64_t *))
    if ptrs == NULL:
        raise MemoryError()
    cdef cnp.ndarray r
    try:
        for i in range(n):
            r = rows[i]
            ptrs[i] = <const uint64_t *>cnp.PyArray_DATA(r)
        with nogil:
            sa_ring_sum(ptrs, n, D, <uint64_t *>cnp.PyArray_DATA(out), nthreads)
    finally:
        free(ptrs)
