"""Type stub for the compiled split-learning kernels (split.pyx)."""

import numpy as np
import numpy.typing as npt

NONFINITE_X: int
NONFINITE_Z: int

def work_size(n: int, dx: int, dz: int, grad: bool) -> int: ...
def dcor(
    x: npt.NDArray[np.floating],
    z: npt.NDArray[np.floating],
    grad: npt.NDArray[np.floating] | None,
    work: npt.NDArray[np.float64],
    nthreads: int,
) -> tuple[int, float, float, float, float]: ...
def _set_isa(level: int) -> None: ...
def _get_isa() -> int: ...
