"""Build the Cython kernels under src/ppml_fast/_native/ (one Extension per .pyx).

Portable by construction: no -march flag (the AVX2 / AVX-512 variants are compiled with
function attributes and chosen at run time, see _native/_isa.h), OpenMP only when the
compiler has it (probed below; without it the kernels run on one thread), GCC, clang or
MSVC flags as the compiler needs.
"""

import os
import tempfile
from pathlib import Path

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

NATIVE = Path("src/ppml_fast/_native")

# -ffp-contract=off: no fused multiply-add that the source does not ask for, so every ISA
# level computes the same bits. -fno-builtin-pow: keep pow(x, 2.0) a call to the C library
# (as Python's x**2 is) instead of x*x, which differs in the last bit for ~0.1% of x; the
# accounting kernel promises Opacus' doubles.
UNIX_FLAGS = ["-O3", "-ffp-contract=off", "-fno-builtin-pow"]
MSVC_FLAGS = ["/O2", "/fp:precise"]


def _include_dirs(stem: str) -> list[str]:
    dirs = [np.get_include()]
    if stem == "paillier":
        # gmpy2's wheel ships gmp.h in its package folder; GMP itself is not linked (see
        # ppml_fast/_native/_gmp.py, which loads gmpy2's copy globally at import time).
        import gmpy2

        dirs.append(str(Path(gmpy2.__file__).parent))
    return dirs


def _has_openmp(compiler, flag: str) -> bool:
    """Whether ``compiler`` compiles and links a parallel region with ``flag``."""
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "omp_probe.c")
        with open(src, "w") as f:
            f.write(
                "#include <omp.h>\n"
                "int main(void) { int n = 0;\n"
                "#pragma omp parallel reduction(+ : n)\n"
                "n += omp_get_num_threads() > 0;\n"
                "return n > 0 ? 0 : 1; }\n"
            )
        try:
            objs = compiler.compile([src], output_dir=tmp, extra_postargs=[flag])
            compiler.link_executable(
                objs,
                "omp_probe",
                output_dir=tmp,
                extra_postargs=[] if flag.startswith("/") else [flag],
            )
        except Exception:  # any compile or link failure: no usable OpenMP
            return False
    return True


class BuildExt(build_ext):
    """Set each extension's flags for the compiler in use: OpenMP where it works."""

    def build_extensions(self) -> None:
        msvc = self.compiler.compiler_type == "msvc"
        omp = "/openmp" if msvc else "-fopenmp"
        use_omp = os.environ.get("PPML_FAST_NO_OPENMP", "") == "" and _has_openmp(
            self.compiler, omp
        )
        if not use_omp:
            print("ppml_fast: building without OpenMP (the kernels will run on one thread)")
        for ext in self.extensions:
            ext.extra_compile_args = (MSVC_FLAGS if msvc else list(UNIX_FLAGS)) + (
                [omp] if use_omp else []
            )
            ext.extra_link_args = [omp] if use_omp and not msvc else []
        super().build_extensions()


extensions = [
    Extension(
        f"ppml_fast._native.{pyx.stem}",
        [str(pyx)],
        include_dirs=_include_dirs(pyx.stem),
        depends=[
            str(p) for pattern in ("*.h", "*.pxd", "*.pxi") for p in sorted(NATIVE.glob(pattern))
        ],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_2_0_API_VERSION")],
    )
    for pyx in sorted(NATIVE.glob("*.pyx"))
]

setup(
    cmdclass={"build_ext": BuildExt},
    ext_modules=cythonize(
        extensions,
        nthreads=2,
        compiler_directives={"language_level": 3},
    ),
)
