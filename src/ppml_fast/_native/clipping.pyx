# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Per-sample clipping kernels (``_clipping_kernels.h``): norms, clip, fused clip-and-sum.

The C in ``_clipping_kernels.h`` does the work on OpenMP threads with the GIL released; this
module only turns numpy arrays into segment descriptors. Nothing here validates:
:mod:`ppml_fast.clipping` hands over float32/float64 arrays of shape (B, n) whose rows
are contiguous (``strides[1] == itemsize``), all of one dtype, accumulators zeroed and
C-contiguous, and ``norms`` a float64 array of length B.
"""
from libc.stdint cimport int64_t
from libc.stdlib cimport free, malloc

cimport numpy as cnp

cnp.import_array()

include "_isa.pxi"

cdef extern from "_clipping_kernels.h" nogil:
    ctypedef struct clip_seg:
        const char *base
        int64_t row_stride
        int64_t n
        char *out
        int64_t out_row_stride
    int CLIP_OP_NORMS_ "CLIP_OP_NORMS"
    int CLIP_OP_SCALE_ "CLIP_OP_SCALE"
    int CLIP_OP_SUM_ "CLIP_OP_SUM"
    int CLIP_CHUNK_ "CLIP_CHUNK"
    int CLIP_LANES_ "CLIP_LANES"
    int clip_run(int is64, int op, int64_t B, clip_seg *segs, int nseg, double max_norm,
                 double *norms, int nthreads)
    unsigned long long clip_read_probe(const char *p, int64_t nbytes, int nthreads)

OP_NORMS = CLIP_OP_NORMS_
OP_SCALE = CLIP_OP_SCALE_
OP_SUM = CLIP_OP_SUM_
CHUNK = CLIP_CHUNK_
LANES = CLIP_LANES_


def run(int op, list layers, list outs, double max_norm, cnp.ndarray norms, int nthreads):
    """Run ``op`` on the (B, n_l) ``layers`` (one row = the concatenated layers).

    OP_NORMS writes ``norms`` (NaN for a row holding NaN or inf); OP_SCALE and OP_SUM read
    it and clip to ``max_norm`` (a NaN norm drops the row). ``outs[l]``: for OP_SCALE a
    (B, n_l) array with contiguous rows (it may be ``layers[l]`` itself: rows left
    unscaled are then not written); for OP_SUM a zeroed contiguous (n_l,) accumulator;
    ignored for OP_NORMS.
    """
    cdef int nseg = len(layers)
    cdef cnp.ndarray a, o
    cdef int64_t B = 0
    cdef int is64 = 0
    cdef int rc
    cdef int l
    cdef double *pn = <double *>cnp.PyArray_DATA(norms)
    cdef clip_seg *segs = <clip_seg *>malloc(sizeof(clip_seg) * max(nseg, 1))
    if segs == NULL:
        raise MemoryError()
    try:
        for l in range(nseg):
            a = layers[l]
            B = a.shape[0]
            is64 = a.descr.type_num == cnp.NPY_DOUBLE
            segs[l].base = <const char *>cnp.PyArray_DATA(a)
            segs[l].row_stride = a.strides[0]
            segs[l].n = a.shape[1]
            segs[l].out = NULL
            segs[l].out_row_stride = 0
            if op != OP_NORMS:
                o = outs[l]
                segs[l].out = <char *>cnp.PyArray_DATA(o)
                if op == OP_SCALE:
                    segs[l].out_row_stride = o.strides[0]
        with nogil:
            rc = clip_run(is64, op, B, segs, nseg, max_norm, pn, nthreads)
    finally:
        free(segs)
    if rc != 0:
        raise MemoryError("clipping kernel: out of memory")


def read_probe(cnp.ndarray buf, int nthreads):
    """Read every 8-byte word of the C-contiguous ``buf`` once, on ``nthreads`` threads.

    For the benchmarks: the machine's plain read bandwidth, measured in the same run as
    the kernels (the result is a checksum, returned only so the reads cannot be skipped).
    """
    if not cnp.PyArray_IS_C_CONTIGUOUS(buf):
        raise ValueError("buf must be C-contiguous")
    cdef const char *p = <const char *>cnp.PyArray_DATA(buf)
    cdef int64_t nbytes = buf.nbytes
    cdef unsigned long long r
    with nogil:
        r = clip_read_probe(p, nbytes, nthreads)
    return r


from . import register as _register_isa

_register_isa(_set_isa)
