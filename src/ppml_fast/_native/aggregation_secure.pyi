"""Type stub for the compiled secure-aggregation kernels (aggregation_secure.pyx)."""

import numpy as np
import numpy.typing as npt

def path(force: int = 0) -> str: ...
def masks_add(
    acc: npt.NDArray[np.uint64],
    base: npt.NDArray[np.uint64] | None,
    keys: npt.NDArray[np.uint8],
    signs: npt.NDArray[np.int8],
    force: int,
    nthreads: int,
) -> int: ...
def ring_add(total: npt.NDArray[np.uint64], y: npt.NDArray[np.uint64], nthreads: int) -> None: ...
def _set_isa(level: int) -> None: ...
def _get_isa() -> int: ...
