# cython: language_level=3
"""What this CPU supports, as the kernels see it (see _isa.h)."""

include "_isa.pxi"


def cpu_isa():
    """Highest ISA level of this CPU: 0 generic, 1 avx2, 2 avx512."""
    return ppml_cpu_isa()


def cpu_features():
    """Sub-features the kernels check beside the level."""
    return {"vaes": bool(ppml_cpu_vaes()), "avx512ifma": bool(ppml_cpu_ifma())}
