"""Type stub for the compiled modular-arithmetic kernels (sharing.pyx)."""

import numpy as np
import numpy.typing as npt

ADD: int
SUB: int
MUL: int
POW: int

_U64 = npt.NDArray[np.uint64]

def binop(op: int, a: _U64, b: _U64, out: _U64, p: int, nthreads: int) -> bool: ...
def sum_rows(x: _U64, out: _U64, p: int, nthreads: int) -> None: ...
def inv_field(a: _U64, out: _U64, p: int, nthreads: int) -> None: ...
def matmul_ring(A: _U64, B: _U64, C: _U64, nthreads: int) -> None: ...
def combine_blocks(
    prod: npt.NDArray[np.float64], L: int, coef: _U64, out: _U64, p: int, nthreads: int
) -> None: ...
def any_ge(x: _U64, p: int, nthreads: int) -> bool: ...
def lincomb(rows: _U64, coef: _U64, out: _U64, p: int, nthreads: int) -> bool: ...
def uniform_fill(
    bit_generators: list[np.random.BitGenerator], block: int, p: int, out: _U64, nthreads: int
) -> None: ...
def shamir_fill(
    x: _U64,
    t: int,
    n: int,
    p: int,
    bit_generators: list[np.random.BitGenerator],
    block: int,
    out: _U64,
    nthreads: int,
) -> None: ...
