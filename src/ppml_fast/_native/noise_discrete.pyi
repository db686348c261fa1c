"""Type stub for the compiled exact discrete-noise kernels (noise_discrete.pyx)."""

import numpy as np
import numpy.typing as npt

def fill_laplace(
    bit_generators: list[np.random.BitGenerator],
    block: int,
    t: int,
    s: int,
    vmax: int,
    ymax: int,
    out: npt.NDArray[np.int64],
    nthreads: int = ...,
) -> None: ...
def fill_gaussian(
    bit_generators: list[np.random.BitGenerator],
    block: int,
    t: int,
    vmax: int,
    ymax: int,
    td: int,
    nn: int,
    q: int,
    out: npt.NDArray[np.int64],
    nthreads: int = ...,
) -> None: ...
