# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Secure-aggregation kernels (``_aggregation_secure_kernels.h``): AES-CTR mask expansion fused with
the ring addition, and the server's masked sum; GIL released, OpenMP. The mask expansion has one
body per vectorised ISA level (AES-NI or VAES-256 at avx2, VAES-512 at avx512); at generic the
caller takes the keystream from OpenSSL.

Nothing here validates: :mod:`ppml_fast.aggregation.secure` passes C-contiguous uint64 vectors,
``m`` 16-byte AES keys as one contiguous uint8 buffer and int8 signs.
"""
from libc.stdint cimport int8_t, int64_t, uint8_t, uint64_t

cimport numpy as cnp

cnp.import_array()

include "_isa.pxi"

cdef extern from "_aggregation_secure_kernels.h" nogil:
    int sa_path(int isa, int force)
    int sa_masks_add(uint64_t *acc, const uint64_t *base, int64_t D, const uint8_t *keys,
                     const int8_t *signs, int64_t m, int force, int nthreads)
    void sa_ring_add(uint64_t *total, const uint64_t *y, int64_t D, int nthreads)


_PATHS = ("openssl", "aesni", "vaes256", "vaes512")


def path(int force=0):
    """The mask-expansion body at the current level: "openssl" (generic: no native body), "aesni",
    "vaes256" or "vaes512"; force=1 asks for AES-NI at the avx2 and avx512 levels."""
    return _PATHS[sa_path(ppml_isa, force)]


def masks_add(cnp.ndarray acc, object base, cnp.ndarray keys, cnp.ndarray signs, int force,
              int nthreads):
    """acc = (base or acc) + sum_j sign_j * AES-CTR(keys[j]) mod 2**64; returns 0, -1 (the
    generic level: no native body, nothing done) or -2 (memory). force: 0 = the level's body, 1 = AES-NI at the avx2 and avx512 levels."""
    cdef uint64_t *ap = <uint64_t *>cnp.PyArray_DATA(acc)
    cdef const uint64_t *bp = NULL
    cdef cnp.ndarray barr
    if base is not None:
        barr = base
        bp = <const uint64_t *>cnp.PyArray_DATA(barr)
    cdef const uint8_t *kp = <const uint8_t *>cnp.PyArray_DATA(keys)
    cdef const int8_t *sp = <const int8_t *>cnp.PyArray_DATA(signs)
    cdef int64_t D = acc.shape[0], m = signs.shape[0]
    cdef int rc
    with nogil:
        rc = sa_masks_add(ap, bp, D, kp, sp, m, force, nthreads)
    return rc


def ring_add(cnp.ndarray total, cnp.ndarray y, int nthreads):
    """total += y mod 2**64 in place (equal lengths, uint64)."""
    cdef uint64_t *tp = <uint64_t *>cnp.PyArray_DATA(total)
    cdef const uint64_t *yp = <const uint64_t *>cnp.PyArray_DATA(y)
    cdef int64_t D = total.shape[0]
    with nogil:
        sa_ring_add(tp, yp, D, nthreads)


from . import register as _register_isa

_register_isa(_set_isa)
