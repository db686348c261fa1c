"""Build the Cython kernels under src/ppml_fast/_native/ (one Extension per .pyx, OpenMP on)."""
from pathlib import Path

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

NATIVE = Path("src/ppml_fast/_native")

extensions = [
    Extension(
        f"ppml_fast._native.{pyx.stem}",
        [str(pyx)],
        include_dirs=[np.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_2_0_API_VERSION")],
        extra_compile_args=["-O3", "-fopenmp", "-ffp-contract=off"],
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
