# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Split-learning kernels (``_split_kernels.h``): distance correlation and its gradient.

The C does the work on OpenMP threads with the GIL released; this module only passes the
arrays' addresses. Nothing here validates: :mod:`ppml_fast.split.nopeek` hands over x and
z as float32/float64 arrays of shape (B, d) with contiguous rows (``strides[1] ==
itemsize`` or one column), B >= 2, and ``grad`` (or None) of shape (B, d_z) with
contiguous rows.
"""
from libc.stdint cimport int64_t

cimport numpy as cnp

cnp.import_array()

include "_isa.pxi"

cdef extern from "_split_kernels.h" nogil:
    int SP_OK_ "SP_OK"
    int SP_NONFINITE_X_ "SP_NONFINITE_X"
    int SP_NONFINITE_Z_ "SP_NONFINITE_Z"
    int sp_dcor(const char *xb, int64_t x_rs, int64_t dx, int x64, const char *zb,
                int64_t z_rs, int64_t dz, int z64, int64_t n, double *stats, char *grad,
                int64_t grad_rs, int grad64, double *work, int nthreads)
    int64_t sp_work_doubles(int64_t n, int64_t dx, int64_t dz, int grad)

#: Return codes of :func:`dcor`: the input that holds a NaN or inf.
NONFINITE_X = SP_NONFINITE_X_
NONFINITE_Z = SP_NONFINITE_Z_


def work_size(int64_t n, int64_t dx, int64_t dz, bint grad):
    """Float64 elements of the workspace :func:`dcor` needs."""
    return sp_work_doubles(n, dx, dz, grad)


def dcor(cnp.ndarray x, cnp.ndarray z, object grad, cnp.ndarray work, int nthreads):
    """Distance statistics of the rows of ``x`` and ``z``; dCor's gradient into ``grad``.

    ``work``: a contiguous float64 array of at least :func:`work_size` elements.

    Returns ``(code, dcov2, dvar2_x, dvar2_z, dcor2)``: ``code`` is 0, or
    :data:`NONFINITE_X` / :data:`NONFINITE_Z` when that input holds NaN or inf (nothing
    was written then).
    """
    cdef double stats[4]
    stats[0] = stats[1] = stats[2] = stats[3] = 0.0
    cdef char *pg = NULL
    cdef int64_t grs = 0
    cdef int g64 = 0
    cdef cnp.ndarray g
    if grad is not None:
        g = grad
        pg = <char *>cnp.PyArray_DATA(g)
        grs = g.strides[0]
        g64 = g.descr.type_num == cnp.NPY_DOUBLE
    cdef const char *px = <const char *>cnp.PyArray_DATA(x)
    cdef const char *pz = <const char *>cnp.PyArray_DATA(z)
    cdef int64_t xrs = x.strides[0], zrs = z.strides[0]
    cdef int64_t dx = x.shape[1], dz = z.shape[1], n = x.shape[0]
    cdef int x64 = x.descr.type_num == cnp.NPY_DOUBLE
    cdef int z64 = z.descr.type_num == cnp.NPY_DOUBLE
    cdef double *pw = <double *>cnp.PyArray_DATA(work)
    cdef int rc
    with nogil:
        rc = sp_dcor(px, xrs, dx, x64, pz, zrs, dz, z64, n, stats, pg, grs, g64, pw, nthreads)
    return rc, stats[0], stats[1], stats[2], stats[3]


from . import register as _register_isa

_register_isa(_set_isa)
