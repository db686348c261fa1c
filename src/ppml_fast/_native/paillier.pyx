# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Batched GMP kernels for Paillier (``_paillier_kernels.h``), GIL released, OpenMP.

Numbers are rows of little-endian uint64 limbs in C-contiguous 2-D arrays (N, L); a 1-row
operand is repeated over the batch. Nothing here validates: :mod:`ppml_fast.paillier`
reduces values below their moduli, sizes the outputs and keeps secrets in the key objects.

GMP comes from the copy that gmpy2 ships (``gmpy2.libs``); the extension does not link it,
so :mod:`ppml_fast._native._gmp` loads that library with RTLD_GLOBAL before this module is
imported.
"""
from libc.stdint cimport int64_t, uint8_t, uint64_t

cimport numpy as cnp
import numpy as np

cnp.import_array()

include "_isa.pxi"

cdef extern from "_paillier_kernels.h" nogil:
    ctypedef struct pk_enc_key:
        const uint64_t *n
        const uint64_t *n2
        int64_t Ln
        int64_t L2
        const uint64_t *table
        int w
        int64_t nwin
        int mont
        const uint64_t *p2
        const uint64_t *q2
        const uint64_t *ep
        const uint64_t *eq
        const uint64_t *u
        int64_t Lh
    ctypedef struct pk_dec_key:
        const uint64_t *p
        const uint64_t *q
        const uint64_t *p2
        const uint64_t *q2
        const uint64_t *pm1
        const uint64_t *qm1
        const uint64_t *hp
        const uint64_t *hq
        const uint64_t *pinv
        const uint64_t *n
        const uint64_t *n2
        const uint64_t *maxint
        int64_t Lh
        int64_t Lh2
        int64_t Ln
        int64_t L2
    void pk_mulmod_rows(const uint64_t *a, int64_t sa, const uint64_t *b, int64_t sb,
                        const uint64_t *m, int64_t Lm, uint64_t *out, int64_t N, int nthreads)
    int64_t pk_powm_rows(const uint64_t *a, int64_t sa, int64_t La, const uint64_t *e,
                         int64_t se, int64_t Le, const uint8_t *neg, int64_t sn,
                         const uint64_t *m, int64_t Lm, int secure, uint64_t *out, int64_t so,
                         uint8_t *bad, int64_t N, int nthreads)
    void pk_prod_groups(const uint64_t *a, int64_t G, int64_t K, const uint64_t *m, int64_t Lm,
                        uint64_t *out, uint64_t *part, int64_t parts, int nthreads)
    void pk_encrypt_rows(int mode, const pk_enc_key *K, const uint64_t *rnd, int64_t Lr,
                         const uint64_t *base, int64_t Lb, const uint8_t *neg, int is_msg,
                         uint64_t *out, int64_t N, int nthreads)
    void pk_fixed_base_table(const uint64_t *h, const uint64_t *m, int64_t Lm, int w,
                             int64_t nwin, uint64_t *table, int nthreads)
    int64_t pk_decrypt_rows(const pk_dec_key *K, const uint64_t *c, int64_t Lc, uint64_t *out,
                            uint8_t *sign, int64_t N, int nthreads)
    int64_t pk_matpow(const uint64_t *c, int64_t M, int64_t K, int64_t Lc, const uint64_t *e,
                      int64_t J, int64_t Le, const uint8_t *neg, const uint64_t *m, int64_t Lm,
                      uint64_t *out, uint8_t *bad, int nthreads)
    void pk_rows_below(const uint64_t *a, int64_t L, const uint64_t *m, uint8_t *lt, int64_t N)
    void pk_table_to_mont52(const uint64_t *table, int64_t rows, const uint64_t *m, int64_t Lm,
                            uint64_t *out, int nthreads)
    int64_t pk_mont52_width(const uint64_t *m, int64_t Lm)
    void pk_table_to_mont64(uint64_t *table, int64_t rows, const uint64_t *m, int64_t Lm,
                            int nthreads)
    int pk_use_ifma(int64_t mod_limbs)
    int pk_use_v4(int64_t mod_bits)
    int pk_use_adx(int64_t mod_limbs)
    int ppml_cpu_adx()
    int pk_adx_powm_mod(uint64_t *out, const uint64_t *x, int64_t Lx, const uint64_t *e,
                        int64_t Le, const uint64_t *m, int64_t Lm)
    int pk_v4_powm_rows4(const uint64_t *x, int64_t Lx, const uint64_t *e, int64_t Le,
                         const uint64_t *m, int64_t Lm, uint64_t *out)


cdef inline const uint64_t *_u64(cnp.ndarray a):
    return <const uint64_t *>cnp.PyArray_DATA(a)


cdef inline uint64_t *_w64(cnp.ndarray a):
    return <uint64_t *>cnp.PyArray_DATA(a)


cdef inline int64_t _stride(cnp.ndarray a, int64_t n):
    """Row stride in limbs: 0 for a single row repeated over n rows."""
    return 0 if (a.shape[0] == 1 and n != 1) else a.shape[1]


def mulmod(cnp.ndarray a, cnp.ndarray b, cnp.ndarray m, cnp.ndarray out, int nthreads):
    """out[i] = a[i] * b[i] mod m; every row exactly m.size limbs and below m."""
    cdef int64_t N = out.shape[0]
    cdef int64_t sa = _stride(a, N), sb = _stride(b, N)
    cdef int64_t Lm = m.shape[0]
    cdef const uint64_t *ap = _u64(a)
    cdef const uint64_t *bp = _u64(b)
    cdef const uint64_t *mp = _u64(m)
    cdef uint64_t *op = _w64(out)
    with nogil:
        pk_mulmod_rows(ap, sa, bp, sb, mp, Lm, op, N, nthreads)


def powm(cnp.ndarray a, cnp.ndarray e, object neg, cnp.ndarray m, bint secure,
         cnp.ndarray out, object bad, int nthreads):
    """out[i] = a[i] ** (+-e[i]) mod m; neg: uint8 signs or None; bad: uint8 out or None.

    Returns the number of rows whose base had no inverse (for negative powers).
    """
    cdef int64_t N = out.shape[0]
    cdef int64_t sa = _stride(a, N), se = _stride(e, N), sn = 0
    cdef const uint8_t *negp = NULL
    cdef uint8_t *badp = NULL
    cdef int64_t nbad
    cdef cnp.ndarray negarr, badarr
    if neg is not None:
        negarr = neg
        negp = <const uint8_t *>cnp.PyArray_DATA(negarr)
        sn = 0 if (negarr.shape[0] == 1 and N != 1) else 1
    if bad is not None:
        badarr = bad
        badp = <uint8_t *>cnp.PyArray_DATA(badarr)
    cdef int64_t La = a.shape[1], Le = e.shape[1], Lm = m.shape[0], Lo = out.shape[1]
    cdef const uint64_t *ap = _u64(a)
    cdef const uint64_t *ep = _u64(e)
    cdef const uint64_t *mp = _u64(m)
    cdef uint64_t *op = _w64(out)
    with nogil:
        nbad = pk_powm_rows(ap, sa, La, ep, se, Le, negp, sn, mp, Lm, secure, op, Lo, badp, N,
                            nthreads)
    return nbad


def prod_groups(cnp.ndarray a, cnp.ndarray m, cnp.ndarray out, int nthreads):
    """out[g] = prod_k a[g, k] mod m for a of shape (G, K, m.size), rows below m."""
    cdef int64_t G = a.shape[0], K = a.shape[1], Lm = m.shape[0]
    cdef int64_t parts = 1
    if G < nthreads and K >= 2 * nthreads:
        parts = nthreads
    cdef cnp.ndarray part = np.empty((max(G * parts, 1), Lm), np.uint64)
    cdef const uint64_t *ap = _u64(a)
    cdef const uint64_t *mp = _u64(m)
    cdef uint64_t *op = _w64(out)
    cdef uint64_t *pp = _w64(part)
    with nogil:
        pk_prod_groups(ap, G, K, mp, Lm, op, pp, parts, nthreads)


def encrypt(int mode, cnp.ndarray n, cnp.ndarray n2, cnp.ndarray rnd, cnp.ndarray base,
            object neg, bint is_msg, cnp.ndarray out, object table, int w,
            object crt, int nthreads):
    """Encrypt (is_msg) or re-randomise rows of ``base``; see pk_encrypt_rows for modes.

    table: the DJN fixed-base table (mode 0), shape (nwin, 2**w - 1, L2);
    crt: (p2, q2, ep, eq, u) limb vectors of one width (mode 2).
    """
    cdef pk_enc_key K
    cdef cnp.ndarray tab, negarr
    cdef cnp.ndarray p2, q2, ep, eq, u
    cdef const uint8_t *negp = NULL
    K.n = _u64(n)
    K.n2 = _u64(n2)
    K.Ln = n.shape[0]
    K.L2 = n2.shape[0]
    K.table = NULL
    K.w = w
    K.nwin = 0
    K.mont = 0
    K.p2 = K.q2 = K.ep = K.eq = K.u = NULL
    K.Lh = 0
    if mode == 0:
        tab = table
        K.table = _u64(tab)
        K.nwin = tab.shape[0]
        K.mont = 1 if tab.shape[2] != n2.shape[0] else 0
    elif mode == 2:
        p2, q2, ep, eq, u = crt
        K.p2 = _u64(p2)
        K.q2 = _u64(q2)
        K.ep = _u64(ep)
        K.eq = _u64(eq)
        K.u = _u64(u)
        K.Lh = p2.shape[0]
    if neg is not None:
        negarr = neg
        negp = <const uint8_t *>cnp.PyArray_DATA(negarr)
    cdef int64_t N = out.shape[0], Lr = rnd.shape[1], Lb = base.shape[1]
    cdef const uint64_t *rp = _u64(rnd)
    cdef const uint64_t *bp = _u64(base)
    cdef uint64_t *op = _w64(out)
    with nogil:
        pk_encrypt_rows(mode, &K, rp, Lr, bp, Lb, negp, is_msg, op, N, nthreads)


def fixed_base_table(cnp.ndarray h, cnp.ndarray m, int w, cnp.ndarray table, int nthreads):
    """table[j, d-1] = h ** (d * 2**(w*j)) mod m; table shape (nwin, 2**w - 1, m.size)."""
    cdef int64_t Lm = m.shape[0], nwin = table.shape[0]
    cdef const uint64_t *hp = _u64(h)
    cdef const uint64_t *mp = _u64(m)
    cdef uint64_t *tp = _w64(table)
    with nogil:
        pk_fixed_base_table(hp, mp, Lm, w, nwin, tp, nthreads)


def decrypt(tuple key, cnp.ndarray c, cnp.ndarray out, cnp.ndarray sign, int nthreads):
    """CRT decryption of rows of c into signed plaintexts; returns the invalid-row count.

    key: (p, q, p2, q2, pm1, qm1, hp, hq, pinv, n, n2, maxint) limb vectors; the first
    seven of one width, p2 and q2 of another, n and maxint of n's width, n2 of its own.
    """
    cdef pk_dec_key K
    cdef cnp.ndarray p, q, p2, q2, pm1, qm1, hp, hq, pinv, n, n2, maxint
    p, q, p2, q2, pm1, qm1, hp, hq, pinv, n, n2, maxint = key
    K.p = _u64(p)
    K.q = _u64(q)
    K.p2 = _u64(p2)
    K.q2 = _u64(q2)
    K.pm1 = _u64(pm1)
    K.qm1 = _u64(qm1)
    K.hp = _u64(hp)
    K.hq = _u64(hq)
    K.pinv = _u64(pinv)
    K.n = _u64(n)
    K.n2 = _u64(n2)
    K.maxint = _u64(maxint)
    K.Lh = p.shape[0]
    K.Lh2 = p2.shape[0]
    K.Ln = n.shape[0]
    K.L2 = n2.shape[0]
    cdef int64_t N = c.shape[0], nbad, Lc = c.shape[1]
    cdef const uint64_t *cp = _u64(c)
    cdef uint64_t *op = _w64(out)
    cdef uint8_t *sp = <uint8_t *>cnp.PyArray_DATA(sign)
    with nogil:
        nbad = pk_decrypt_rows(&K, cp, Lc, op, sp, N, nthreads)
    return nbad


def matpow(cnp.ndarray c, cnp.ndarray e, cnp.ndarray neg, cnp.ndarray m, cnp.ndarray out,
           cnp.ndarray bad, int nthreads):
    """out[i, j] = prod_k c[i, k] ** (+-e[k, j]) mod m.

    c: (M, K, Lc); e: (K, J, Le); neg: (K, J) uint8; out: (M, J, m.size); bad: (M, J).
    """
    cdef int64_t nbad
    cdef int64_t M = c.shape[0], K = c.shape[1], Lc = c.shape[2]
    cdef int64_t J = e.shape[1], Le = e.shape[2], Lm = m.shape[0]
    cdef const uint64_t *cp = _u64(c)
    cdef const uint64_t *ep = _u64(e)
    cdef const uint8_t *np_ = <const uint8_t *>cnp.PyArray_DATA(neg)
    cdef const uint64_t *mp = _u64(m)
    cdef uint64_t *op = _w64(out)
    cdef uint8_t *bp = <uint8_t *>cnp.PyArray_DATA(bad)
    with nogil:
        nbad = pk_matpow(cp, M, K, Lc, ep, J, Le, np_, mp, Lm, op, bp, nthreads)
    return nbad


def rows_below(cnp.ndarray a, cnp.ndarray m, cnp.ndarray lt):
    """lt[i] = a[i] < m for rows of a (N, L) and m of L limbs."""
    cdef int64_t L = a.shape[1], N = a.shape[0]
    cdef const uint64_t *ap = _u64(a)
    cdef const uint64_t *mp = _u64(m)
    cdef uint8_t *lp = <uint8_t *>cnp.PyArray_DATA(lt)
    with nogil:
        pk_rows_below(ap, L, mp, lp, N)


def ifma_in_use():
    """Whether the AVX-512 IFMA Montgomery kernels run (level avx512 on a CPU with IFMA)."""
    return bool(pk_use_ifma(1))


def v4_in_use(int64_t mod_bits):
    """Whether the four-lane AVX2 constant-time power serves moduli of this many bits."""
    return bool(pk_use_v4(mod_bits))


def v4_powm4(cnp.ndarray x, cnp.ndarray e, cnp.ndarray m, cnp.ndarray out):
    """out[l] = x[l] ** e[l] mod m[l] for four rows with the four-lane constant-time power.

    x: (4, Lx) with Lx >= m.shape[1]; e: (4, Le); m: (4, Lm) odd moduli of 64 to 8192
    bits; out: (4, Lm). Returns 0, or -1 for sizes out of range, an even or zero modulus,
    or memory that ran out (out untouched).
    """
    for a in (x, e, m, out):
        if a.dtype != np.uint64 or a.ndim != 2 or a.shape[0] != 4 or not a.flags.c_contiguous:
            raise ValueError("v4_powm4: x, e, m and out must be C-contiguous uint64 (4, L)")
    if out.shape[1] != m.shape[1]:
        raise ValueError("v4_powm4: out must be as wide as m")
    cdef int64_t Lx = x.shape[1], Le = e.shape[1], Lm = m.shape[1]
    if Le < 1 or Lm < 1 or Lx < Lm:
        return -1
    for row in m:
        mod = int.from_bytes(row.tobytes(), "little")
        if mod % 2 == 0 or mod.bit_length() > 8192:  # even (or zero), or past the cap
            return -1
    cdef const uint64_t *xp = _u64(x)
    cdef const uint64_t *ep = _u64(e)
    cdef const uint64_t *mp = _u64(m)
    cdef uint64_t *op = _w64(out)
    cdef int rc
    with nogil:
        rc = pk_v4_powm_rows4(xp, Lx, ep, Le, mp, Lm, op)
    return rc


def adx_in_use(int64_t mod_limbs):
    """Whether lone secret-exponent powers use the MULX/ADX constant-time power."""
    return bool(pk_use_adx(mod_limbs))


def adx_powm(cnp.ndarray x, cnp.ndarray e, cnp.ndarray m, cnp.ndarray out):
    """out = x ** e mod m with the MULX/ADX constant-time power (1-D limb vectors).

    x of at least m.size limbs; m odd with a nonzero top limb, at most 128 limbs; e of at
    least one limb. Returns 0, or -1 when the CPU lacks BMI2/ADX or a size is out of range
    (out untouched).
    """
    for a in (x, e, m, out):
        if a.dtype != np.uint64 or a.ndim != 1 or not a.flags.c_contiguous:
            raise ValueError("adx_powm: x, e, m and out must be C-contiguous 1-D uint64")
    if out.shape[0] != m.shape[0]:
        raise ValueError("adx_powm: out must be as wide as m")
    cdef int64_t Lx = x.shape[0], Le = e.shape[0], Lm = m.shape[0]
    cdef const uint64_t *xp = _u64(x)
    cdef const uint64_t *ep = _u64(e)
    cdef const uint64_t *mp = _u64(m)
    cdef uint64_t *op = _w64(out)
    cdef int rc
    if (not ppml_cpu_adx() or Lm < 1 or Le < 1 or Lm > 128 or Lx < Lm
            or m[Lm - 1] == 0 or m[0] % 2 == 0):
        return -1
    with nogil:
        rc = pk_adx_powm_mod(op, xp, Lx, ep, Le, mp, Lm)
    return rc


def mont_width(cnp.ndarray m):
    """Digits per Montgomery-form table row for modulus m (0 when IFMA is not in use)."""
    cdef const uint64_t *mp = _u64(m)
    return pk_mont52_width(mp, m.shape[0])


def table_to_mont(cnp.ndarray table, cnp.ndarray m, cnp.ndarray out, int nthreads):
    """out[i] = table[i] * R mod m as 52-bit Montgomery digits (rows of table: m.size limbs)."""
    cdef int64_t rows = table.shape[0], Lm = m.shape[0]
    cdef const uint64_t *tp = _u64(table)
    cdef const uint64_t *mp = _u64(m)
    cdef uint64_t *op = _w64(out)
    with nogil:
        pk_table_to_mont52(tp, rows, mp, Lm, op, nthreads)


def table_to_mont64(cnp.ndarray table, cnp.ndarray m, int nthreads):
    """table[i] = table[i] * 2**(64 * m.size) mod m in place (rows of m.size limbs, < m)."""
    cdef int64_t Lm = m.shape[0]
    cdef int64_t rows = table.size // Lm
    cdef uint64_t *tp = _w64(table)
    cdef const uint64_t *mp = _u64(m)
    with nogil:
        pk_table_to_mont64(tp, rows, mp, Lm, nthreads)


from . import register as _register_isa

_register_isa(_set_isa)
