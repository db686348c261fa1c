"""Type stub for the compiled clipping kernels (clipping.pyx)."""

import numpy as np
import numpy.typing as npt

OP_NORMS: int
OP_SCALE: int
OP_SUM: int
CHUNK: int
LANES: int

def run(
    op: int,
    layers: list[npt.NDArray[np.floating]],
    outs: list[npt.NDArray[np.floating]],
    max_norm: float,
    norms: npt.NDArray[np.float64],
    nthreads: int,
) -> None: ...
def read_probe(buf: npt.NDArray[np.generic], nthreads: int) -> int: ...
def _set_isa(level: int) -> None: ...
def _get_isa() -> int: ...
