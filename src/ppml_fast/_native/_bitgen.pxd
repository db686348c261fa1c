# cython: language_level=3
"""Shared by the Cython kernels: the C ``bitgen_t`` handles behind numpy bit generators."""
from cpython.pycapsule cimport PyCapsule_GetPointer
from libc.stdlib cimport free, malloc
from numpy.random cimport bitgen_t


cdef inline bitgen_t** bitgen_pointers(list bit_generators) except NULL:
    """A malloc'ed array of each bit generator's ``bitgen_t*`` (the caller frees it and
    keeps the list alive while the pointers are in use)."""
    cdef Py_ssize_t k, m = len(bit_generators)
    cdef bitgen_t** bgs = <bitgen_t**>malloc(max(m, 1) * sizeof(bitgen_t*))
    if bgs == NULL:
        raise MemoryError()
    try:
        for k in range(m):
            bgs[k] = <bitgen_t*>PyCapsule_GetPointer(bit_generators[k].capsule, "BitGenerator")
    except BaseException:
        free(bgs)
        raise
    return bgs
