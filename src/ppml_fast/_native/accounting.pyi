"""Type stub for the compiled accounting kernels (accounting.pyx)."""

import numpy as np
import numpy.typing as npt

def rdp_sgm(
    q: float,
    sigma: float,
    orders: npt.NDArray[np.float64],
    out: npt.NDArray[np.float64],
    nthreads: int = ...,
) -> None: ...
def sgm_survival(
    q: float,
    sigma: float,
    t: npt.NDArray[np.float64],
    out: npt.NDArray[np.float64],
    nthreads: int = ...,
) -> None: ...
def sgm_cells(
    q: float,
    sigma: float,
    start: float,
    h: float,
    n: int,
    floor_mass: float,
    out: npt.NDArray[np.float64],
    nthreads: int = ...,
) -> int: ...
def power_inplace(z: npt.NDArray[np.complex128], k: int, nthreads: int = ...) -> None: ...
def abs_pow_into(
    x: npt.NDArray[np.complex128],
    k: int,
    acc: npt.NDArray[np.float64],
    nthreads: int = ...,
) -> None: ...
def tail_sums(
    pmf: npt.NDArray[np.float64],
    t0: float,
    h: float,
    first: int,
    d1: npt.NDArray[np.float64],
    d2: npt.NDArray[np.float64],
) -> None: ...
def tail_start(mags: npt.NDArray[np.float64], tol: float) -> int: ...
