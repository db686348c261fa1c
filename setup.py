"""Build the Cython kernels under src/ppml_fast/_native/ (one Extension per .pyx, OpenMP on)."""

from pathlib import Path

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

NATIVE = Path("src/ppml_fast/_native")


def _include_dirs(stem: str) -> list[str]:
    dirs = [np.get_include()]
    if stem == "paillier":
        # gmpy2's wheel ships gmp.h in its package folder; GMP itself is not linked (see
        # ppml_fast/_native/_gmp.py, which loads gmpy2's copy globally at import time).
        import gmpy2

        dirs.append(str(Path(gmpy2.__file__).parent))
    return dirs


extensions = [
    Extension(
        f"ppml_fast._native.{pyx.stem}",
        [str(pyx)],
        include_dirs=_include_dirs(pyx.stem),
        depends=[str(p) for p in sorted(NATIVE.glob("*.h")) + sorted(NATIVE.glob("*.pxd")) + sorted(NATIVE.glob("*.pxi"))],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_2_0_API_VERSION")],
        # -fno-builtin-pow: keep pow(x, 2.0) a call to the C library (as Python's x**2 is)
        # instead of x*x, which differs in the last bit for ~0.1% of x; the accounting
        # kernel promises Opacus' doubles.
        extra_compile_args=["-O3", "-fopenmp", "-ffp-contract=off", "-fno-builtin-pow"],
        extra_link_args=["-fopenmp"],
    )
    for pyx in sorted(NATIVE.glob("*.pyx"))
]

setup(
    ext_modules=cythonize(
        extensions,
        nthreads=2,
        compiler_directives={"language_level": 3},
    )
)
