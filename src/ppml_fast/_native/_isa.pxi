# The ISA level plumbing every extension with vectorised variants includes (see _isa.h):
# its own copy of the level, set from ppml_fast._native when the module loads and on
# every set_isa().
cdef extern from "_isa.h":
    int ppml_isa
    int ppml_cpu_isa() nogil
    int ppml_cpu_vaes() nogil
    int ppml_cpu_ifma() nogil


def _set_isa(int level):
    """Set this extension's level (0 generic, 1 avx2, 2 avx512); ppml_fast._native checks it."""
    global ppml_isa
    ppml_isa = level


def _get_isa():
    """This extension's level, as the kernels read it."""
    return ppml_isa
