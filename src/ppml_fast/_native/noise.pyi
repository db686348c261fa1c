"""Type stub for the compiled continuous-noise kernels (noise.pyx)."""

import numpy as np
import numpy.typing as npt

KIND_LAPLACE: int
KIND_GAUSSIAN: int
KIND_EXPONENTIAL: int
KIND_GUMBEL: int

_Tables = tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.int64]]

def tables() -> dict[str, _Tables]: ...
def fill(
    kind: int,
    bit_generators: list[np.random.BitGenerator],
    block: int,
    scale: float,
    out: npt.NDArray[np.floating],
    loc: npt.NDArray[np.floating] | None = ...,
    nthreads: int = ...,
) -> bool: ...
