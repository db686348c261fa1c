"""Type stub for the compiled Paillier kernels (paillier.pyx over GMP, optional IFMA)."""

import numpy as np
import numpy.typing as npt

_U64 = npt.NDArray[np.uint64]
_U8 = npt.NDArray[np.uint8]

def mulmod(a: _U64, b: _U64, m: _U64, out: _U64, nthreads: int) -> None: ...
def powm(
    a: _U64,
    e: _U64,
    neg: _U8 | None,
    m: _U64,
    secure: bool,
    out: _U64,
    bad: _U8 | None,
    nthreads: int,
) -> int: ...
def prod_groups(a: _U64, m: _U64, out: _U64, nthreads: int) -> None: ...
def encrypt(
    mode: int,
    n: _U64,
    n2: _U64,
    rnd: _U64,
    base: _U64,
    neg: _U8 | None,
    is_msg: bool,
    out: _U64,
    table: _U64 | None,
    w: int,
    crt: tuple[_U64, ...] | None,
    nthreads: int,
) -> None: ...
def fixed_base_table(h: _U64, m: _U64, w: int, table: _U64, nthreads: int) -> None: ...
def decrypt(key: tuple[_U64, ...], c: _U64, out: _U64, sign: _U8, nthreads: int) -> int: ...
def matpow(c: _U64, e: _U64, neg: _U8, m: _U64, out: _U64, bad: _U8, nthreads: int) -> int: ...
def rows_below(a: _U64, m: _U64, lt: _U8) -> None: ...
def set_ifma(enabled: bool | None) -> bool: ...
def mont_width(m: _U64) -> int: ...
def table_to_mont(table: _U64, m: _U64, out: _U64, nthreads: int) -> None: ...
