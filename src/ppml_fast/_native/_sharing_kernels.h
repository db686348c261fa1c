/* Modular arithmetic kernels for secret sharing, included by sharing.pyx (no validation).
 *
 * Ring Z_2^64: uint64 with wraparound.  Fields Z_p for a prime p < 2^62 given at run time:
 * operands are already reduced (< p).  Products a*b < p^2 < 2^124 are formed in 128 bits
 * and reduced by Barrett's method with k = bit length of p and mu = floor(2^(2k) / p)
 * (< 2^63): q = ((x >> (k-1)) * mu) >> (k+1) underestimates x / p by at most 2, so
 * r = x - q p is in [0, 3p) and at most two subtractions finish it.  For the Mersenne
 * prime 2^61 - 1 a shift-and-add fold replaces Barrett.
 */
#ifndef PPML_SHARING_KERNELS_H
#define PPML_SHARING_KERNELS_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>

typedef unsigned __int128 shr_u128;

#define SHR_M61 ((UINT64_C(1) << 61) - 1)

typedef struct {
    uint64_t p;
    uint64_t mu;
    int k;
    int mersenne;
} shr_field;

static shr_field shr_make_field(uint64_t p)
{
    shr_field f;
    f.p = p;
    f.k = 64 - __builtin_clzll(p);
    f.mu = (uint64_t)(((shr_u128)1 << (2 * f.k)) / p);
    f.mersenne = p == SHR_M61;
    return f;
}

static inline uint64_t shr_reduce128(shr_u128 x, const shr_field *f)
{
    if (f->mersenne) {
        uint64_t r = (uint64_t)(x & SHR_M61) + (uint64_t)(x >> 61);
        r = (r & SHR_M61) + (r >> 61);
        return r >= SHR_M61 ? r - SHR_M61 : r;
    }
    const uint64_t q1 = (uint64_t)(x >> (f->k - 1));
    const uint64_t q = (uint64_t)(((shr_u128)q1 * f->mu) >> (f->k + 1));
    uint64_t r = (uint64_t)x - q * f->p;
    if (r >= f->p) r -= f->p;
    if (r >= f->p) r -= f->p;
    return r;
}

static inline uint64_t shr_mulmod(uint64_t a, uint64_t b, const shr_field *f)
{
    return shr_reduce128((shr_u128)a * b, f);
}

static inline uint64_t shr_addmod(uint64_t a, uint64_t b, uint64_t p)
{
    const uint64_t s = a + b;
    return s >= p ? s - p : s;
}

static inline uint64_t shr_submod(uint64_t a, uint64_t b, uint64_t p)
{
    return a >= b ? a - b : a + (p - b);
}

static inline uint64_t shr_powmod(uint64_t a, uint64_t e, const shr_field *f)
{
    uint64_t r = 1 % f->p, b = a;
    while (e) {
        if (e & 1) r = shr_mulmod(r, b, f);
        b = shr_mulmod(b, b, f);
        e >>= 1;
    }
    return r;
}

static inline uint64_t shr_powring(uint64_t a, uint64_t e)
{
    uint64_t r = 1, b = a;
    while (e) {
        if (e & 1) r *= b;
        b *= b;
        e >>= 1;
    }
    return r;
}

enum { SHR_ADD = 0, SHR_SUB = 1, SHR_MUL = 2, SHR_POW = 3 };

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define SHR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define SHR_CLONES
#endif

/* x * y mod 2^61 - 1 for x, y < 2^61 with 32-bit halves (vectorisable) */
static inline uint64_t shr_m61_mul(uint64_t x, uint64_t y)
{
    const uint64_t M = SHR_M61, L32 = 0xffffffffu, L29 = (UINT64_C(1) << 29) - 1;
    const uint64_t x0 = x & L32, x1 = x >> 32, y0 = y & L32, y1 = y >> 32;
    const uint64_t low = x0 * y0, mid = x1 * y0 + x0 * y1, high = x1 * y1;
    uint64_t t = (high << 3) + ((mid & L29) << 32) + (mid >> 29) + (low & M) + (low >> 61);
    t = (t & M) + (t >> 61);
    return t >= M ? t - M : t;
}

/* Products mod 2^61 - 1 with 32-bit halves only, so that the loop vectorises (no 128-bit
 * type): a = a1 2^32 + a0, b = b1 2^32 + b0 (a1, b1 < 2^29), and with 2^61 = 1, 2^64 = 8:
 * a b = 8 a1 b1 + (mid mod 2^29) 2^32 + (mid >> 29) + (lo mod 2^61) + (lo >> 61),
 * mid = a1 b0 + a0 b1, lo = a0 b0; the sum is below 2^63 and one fold finishes it. */
#define SHR_M61_BODY(XI, YI)                                                               \
    {                                                                                      \
        const uint64_t x = (XI), y = (YI);                                                 \
        mx = x > mx ? x : mx;                                                              \
        my = y > my ? y : my;                                                              \
        out[i] = shr_m61_mul(x, y);                                                        \
    }

/* Returns the largest operand seen (the caller's range check rides along). */
SHR_CLONES static uint64_t shr_mul_m61(const uint64_t *a, int64_t sa, const uint64_t *b,
                                       int64_t sb, uint64_t *out, int64_t lo, int64_t hi)
{
    uint64_t mx = 0, my = 0;
    if (sa && sb) {
        for (int64_t i = lo; i < hi; i++) SHR_M61_BODY(a[i], b[i])
    } else if (sa) {
        for (int64_t i = lo; i < hi; i++) SHR_M61_BODY(a[i], b[0])
    } else if (sb) {
        for (int64_t i = lo; i < hi; i++) SHR_M61_BODY(a[0], b[i])
    } else {
        for (int64_t i = lo; i < hi; i++) SHR_M61_BODY(a[0], b[0])
    }
    return mx > my ? mx : my;
}

/* Returns the largest field operand seen in [lo, hi) (0 for ring POW). */
static uint64_t shr_binop_range(int op, const uint64_t *a, int64_t sa, const uint64_t *b,
                                int64_t sb, uint64_t *out, int64_t lo, int64_t hi, uint64_t p,
                                const shr_field *f)
{
    uint64_t m = 0;
#define SHR_SEEN(v) (m = (v) > m ? (v) : m)
    switch (op) {
    case SHR_ADD:
        for (int64_t i = lo; i < hi; i++) {
            const uint64_t x = a[i * sa], y = b[i * sb];
            SHR_SEEN(x);
            SHR_SEEN(y);
            out[i] = shr_addmod(x, y, p);
        }
        break;
    case SHR_SUB:
        for (int64_t i = lo; i < hi; i++) {
            const uint64_t x = a[i * sa], y = b[i * sb];
            SHR_SEEN(x);
            SHR_SEEN(y);
            out[i] = shr_submod(x, y, p);
        }
        break;
    case SHR_MUL:
        if (f->mersenne) {
            m = shr_mul_m61(a, sa, b, sb, out, lo, hi);
        } else {
            for (int64_t i = lo; i < hi; i++) {
                SHR_SEEN(a[i * sa]);
                SHR_SEEN(b[i * sb]);
                const shr_u128 x = (shr_u128)a[i * sa] * b[i * sb];
                const uint64_t q1 = (uint64_t)(x >> (f->k - 1));
                const uint64_t q = (uint64_t)(((shr_u128)q1 * f->mu) >> (f->k + 1));
                uint64_t r = (uint64_t)x - q * p;
                r = r >= p ? r - p : r;
                out[i] = r >= p ? r - p : r;
            }
        }
        break;
    default:
        for (int64_t i = lo; i < hi; i++) {
            if (p) SHR_SEEN(a[i * sa]);
            out[i] = p ? shr_powmod(a[i * sa], b[i * sb], f) : shr_powring(a[i * sa], b[i * sb]);
        }
    }
#undef SHR_SEEN
    return m;
}

/* out[i] = a[i*sa] op b[i*sb] mod p for i < n (sa, sb in {0, 1}: a scalar operand has
 * stride 0); p == 0 means the ring Z_2^64 (for POW only: the other ring ops are numpy's).
 * Returns 1 when some field operand (the exponent of POW excepted) was >= p: the output
 * is then meaningless and the caller raises. */
static int shr_binop(int op, const uint64_t *a, int64_t sa, const uint64_t *b, int64_t sb,
                     uint64_t *out, int64_t n, uint64_t p, int nthreads)
{
    shr_field f = {0, 0, 0, 0};
    int bad = 0;
    if (p) f = shr_make_field(p);
    if (n < 32768) nthreads = 1;
#pragma omp parallel num_threads(nthreads) reduction(| : bad)
    {
        const int64_t tid = omp_get_thread_num(), nt = omp_get_num_threads();
        const uint64_t m =
            shr_binop_range(op, a, sa, b, sb, out, n * tid / nt, n * (tid + 1) / nt, p, &f);
        bad |= p && m >= p;
    }
    return bad;
}

/* 1 if some x[i] >= p (i < n), on all threads: the field operands' range check. */
SHR_CLONES static int shr_any_ge_range(const uint64_t *x, int64_t lo, int64_t hi, uint64_t p)
{
    uint64_t m = 0;
    for (int64_t i = lo; i < hi; i++) m = x[i] > m ? x[i] : m;
    return hi > lo && m >= p;
}

static int shr_any_ge(const uint64_t *x, int64_t n, uint64_t p, int nthreads)
{
    int bad = 0;
    if (n < 65536) nthreads = 1;
#pragma omp parallel num_threads(nthreads) reduction(| : bad)
    {
        const int64_t tid = omp_get_thread_num(), nt = omp_get_num_threads();
        bad |= shr_any_ge_range(x, n * tid / nt, n * (tid + 1) / nt, p);
    }
    return bad;
}

/* out[r] = sum of x[r, 0..ncols) mod p (p == 0: mod 2^64), rows contiguous. */
static void shr_sum_rows(const uint64_t *x, int64_t nrows, int64_t ncols, uint64_t p,
                         uint64_t *out, int nthreads)
{
    if (nrows * ncols < 32768) nthreads = 1;
#pragma omp parallel for num_threads(nthreads) schedule(static)
    for (int64_t r = 0; r < nrows; r++) {
        const uint64_t *row = x + r * ncols;
        uint64_t s = 0;
        if (p) {
            for (int64_t c = 0; c < ncols; c++) s = shr_addmod(s, row[c], p);
        } else {
            for (int64_t c = 0; c < ncols; c++) s += row[c];
        }
        out[r] = s;
    }
}

/* Batched inverses mod p by Montgomery's trick, in fixed blocks: prefix products, one
 * exponentiation (Fermat, p prime) per block, then back-substitution.  Inputs nonzero. */
#define SHR_INV_BLOCK 1024
static void shr_inv_field(const uint64_t *a, uint64_t *out, int64_t n, uint64_t p,
                          int nthreads)
{
    const shr_field f = shr_make_field(p);
    const int64_t nblocks = (n + SHR_INV_BLOCK - 1) / SHR_INV_BLOCK;
    if (n < 32768) nthreads = 1;
#pragma omp parallel for num_threads(nthreads) schedule(static)
    for (int64_t blk = 0; blk < nblocks; blk++) {
        const int64_t lo = blk * SHR_INV_BLOCK;
        const int64_t hi = lo + SHR_INV_BLOCK < n ? lo + SHR_INV_BLOCK : n;
        uint64_t pre[SHR_INV_BLOCK];
        uint64_t acc = 1 % p;
        for (int64_t i = lo; i < hi; i++) {
            pre[i - lo] = acc;              /* product of a[lo..i) */
            acc = shr_mulmod(acc, a[i], &f);
        }
        uint64_t inv = shr_powmod(acc, p - 2, &f); /* 1 / (a[lo] ... a[hi-1]) */
        for (int64_t i = hi - 1; i >= lo; i--) {
            const uint64_t ai = a[i];
            out[i] = shr_mulmod(inv, pre[i - lo], &f);
            inv = shr_mulmod(inv, ai, &f);
        }
    }
}

/* C (n x m) = A (n x k) @ B (k x m) mod 2^64, all row-major and contiguous.  Wrapping
 * integer sums are associative, so any blocking gives numpy's exact result.  Blocks: 64
 * columns of C and B (a B panel of KB rows x 64 columns stays in L1/L2), 4 rows of C at
 * a time in registers; rows of C split across threads. */
#define SHR_MM_NB 32
#define SHR_MM_KB 256

/* 64-byte vectors: GCC lowers them to what each build has; the helpers below are always
 * inlined, so the ABI note GCC gives for returning them (-Wpsabi) does not apply. */
#pragma GCC diagnostic ignored "-Wpsabi"
typedef uint64_t shr_v8 __attribute__((vector_size(64)));

static inline __attribute__((always_inline)) shr_v8 shr_ld(const uint64_t *p)
{
    shr_v8 v;
    __builtin_memcpy(&v, p, sizeof v);
    return v;
}

static inline __attribute__((always_inline)) void shr_st(uint64_t *p, shr_v8 v)
{
    __builtin_memcpy(p, &v, sizeof v);
}

/* 4 rows x 32 columns of C in 16 vector registers, over k in [k0, k1).  Two builds: one
 * with AVX-512DQ (vpmullq multiplies 8 uint64 at once), chosen at run time when the CPU
 * has it (target_clones' "arch=" clones dispatch on the CPU model, not on features), and
 * a generic one. */
#if defined(__GNUC__) && defined(__x86_64__)
#define SHR_AVX512 __attribute__((target("avx512f,avx512dq")))
#define SHR_HAVE_AVX512_BUILD 1
#else
#define SHR_AVX512
#define SHR_HAVE_AVX512_BUILD 0
#endif
/* The micro-kernel body, compiled twice (one build per target below). */
#define SHR_MM_MICRO_BODY \
    uint64_t *c0 = C + i * M + j0, *c1 = c0 + M, *c2 = c1 + M, *c3 = c2 + M;                        \
    shr_v8 x00 = shr_ld(c0), x01 = shr_ld(c0 + 8), x02 = shr_ld(c0 + 16), x03 = shr_ld(c0 + 24);    \
    shr_v8 x10 = shr_ld(c1), x11 = shr_ld(c1 + 8), x12 = shr_ld(c1 + 16), x13 = shr_ld(c1 + 24);    \
    shr_v8 x20 = shr_ld(c2), x21 = shr_ld(c2 + 8), x22 = shr_ld(c2 + 16), x23 = shr_ld(c2 + 24);    \
    shr_v8 x30 = shr_ld(c3), x31 = shr_ld(c3 + 8), x32 = shr_ld(c3 + 16), x33 = shr_ld(c3 + 24);    \
    const uint64_t *a = A + i * K;                                                                  \
    for (int64_t kk = k0; kk < k1; kk++) {                                                          \
        const uint64_t *b = B + kk * M + j0;                                                        \
        const shr_v8 b0 = shr_ld(b), b1 = shr_ld(b + 8), b2 = shr_ld(b + 16), b3 = shr_ld(b + 24);  \
        const uint64_t a0 = a[kk], a1 = a[K + kk], a2 = a[2 * K + kk], a3 = a[3 * K + kk];          \
        x00 += a0 * b0; x01 += a0 * b1; x02 += a0 * b2; x03 += a0 * b3;                             \
        x10 += a1 * b0; x11 += a1 * b1; x12 += a1 * b2; x13 += a1 * b3;                             \
        x20 += a2 * b0; x21 += a2 * b1; x22 += a2 * b2; x23 += a2 * b3;                             \
        x30 += a3 * b0; x31 += a3 * b1; x32 += a3 * b2; x33 += a3 * b3;                             \
    }                                                                                               \
    shr_st(c0, x00); shr_st(c0 + 8, x01); shr_st(c0 + 16, x02); shr_st(c0 + 24, x03);               \
    shr_st(c1, x10); shr_st(c1 + 8, x11); shr_st(c1 + 16, x12); shr_st(c1 + 24, x13);               \
    shr_st(c2, x20); shr_st(c2 + 8, x21); shr_st(c2 + 16, x22); shr_st(c2 + 24, x23);               \
    shr_st(c3, x30); shr_st(c3 + 8, x31); shr_st(c3 + 16, x32); shr_st(c3 + 24, x33);

SHR_AVX512 static void shr_mm_micro_avx512(const uint64_t *A, const uint64_t *B, uint64_t *C,
                                           int64_t i, int64_t k0, int64_t k1, int64_t j0,
                                           int64_t K, int64_t M)
{
    SHR_MM_MICRO_BODY
}

static void shr_mm_micro_generic(const uint64_t *A, const uint64_t *B, uint64_t *C, int64_t i,
                                 int64_t k0, int64_t k1, int64_t j0, int64_t K, int64_t M)
{
    SHR_MM_MICRO_BODY
}

static int shr_use_avx512(void)
{
#if SHR_HAVE_AVX512_BUILD
    static int cached = -1;
    if (cached < 0)
        cached = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
    return cached;
#else
    return 0;
#endif
}

static void shr_mm_block(const uint64_t *A, const uint64_t *B, uint64_t *C, int64_t i0,
                         int64_t i1, int64_t k0, int64_t k1, int64_t j0, int64_t j1,
                         int64_t K, int64_t M)
{
    int64_t i = i0;
    if (j1 - j0 == 32)
        for (; i + 4 <= i1; i += 4) {
            if (shr_use_avx512()) shr_mm_micro_avx512(A, B, C, i, k0, k1, j0, K, M);
            else shr_mm_micro_generic(A, B, C, i, k0, k1, j0, K, M);
        }
    for (; i < i1; i++) {
        uint64_t *c = C + i * M;
        for (int64_t kk = k0; kk < k1; kk++) {
            const uint64_t a = A[i * K + kk];
            const uint64_t *b = B + kk * M;
            for (int64_t j = j0; j < j1; j++) c[j] += a * b[j];
        }
    }
}

static void shr_matmul_ring(const uint64_t *A, const uint64_t *B, uint64_t *C, int64_t N,
                            int64_t K, int64_t M, int nthreads)
{
    memset(C, 0, (size_t)(N * M) * 8);
    if (N * K * M < 262144) nthreads = 1;
    const int64_t nib = (N + 63) / 64;
#pragma omp parallel for num_threads(nthreads) schedule(dynamic, 1) collapse(1)
    for (int64_t ib = 0; ib < nib; ib++) {
        const int64_t i0 = ib * 64, i1 = i0 + 64 < N ? i0 + 64 : N;
        for (int64_t k0 = 0; k0 < K; k0 += SHR_MM_KB) {
            const int64_t k1 = k0 + SHR_MM_KB < K ? k0 + SHR_MM_KB : K;
            for (int64_t j0 = 0; j0 < M; j0 += SHR_MM_NB) {
                const int64_t j1 = j0 + SHR_MM_NB < M ? j0 + SHR_MM_NB : M;
                shr_mm_block(A, B, C, i0, i1, k0, k1, j0, j1, K, M);
            }
        }
    }
}

/* Recombination of a limb matrix product mod p.  prod is the (L n) x (L m) float64
 * product of the stacked limbs (block (i, j) = x_i @ y_j, exact integers < 2^53), rows
 * of length ld; out (n x m) += sum over i, j of block(i, j) * coef[i + j] mod p, where
 * coef[s] = 2^(w s) mod p.  out starts at 0 for the first K block, and carries over. */
static void shr_combine_blocks(const double *prod, int64_t ld, int64_t n, int64_t m, int L,
                               const uint64_t *coef, uint64_t *out, uint64_t p, int nthreads)
{
    const shr_field f = shr_make_field(p);
    if (n * m < 32768) nthreads = 1;
#pragma omp parallel for num_threads(nthreads) schedule(static)
    for (int64_t r = 0; r < n; r++) {
        for (int64_t c = 0; c < m; c++) {
            uint64_t s = out[r * m + c];
            for (int d = 0; d < 2 * L - 1; d++) {
                /* the blocks with i + j = d share a weight: their sum (< 3 * 2^53) is
                 * exact in uint64 and needs one reduction (Barrett needs < 2^(2k)) */
                uint64_t v = 0;
                for (int i = d < L ? 0 : d - L + 1; i <= d && i < L; i++)
                    v += (uint64_t)prod[(i * n + r) * ld + (d - i) * m + c];
                const uint64_t vr = f.k >= 28 ? shr_reduce128(v, &f) : v % p;
                s = shr_addmod(s, shr_mulmod(vr, coef[d], &f), p);
            }
            out[r * m + c] = s;
        }
    }
}

/* x * z mod 2^61 - 1 for x < 2^61 and a small z < 2^32 (a Shamir point): two 32-bit
 * products instead of four.  x z = (x1 z) 2^32 + x0 z with x1 z = h1 2^29 + h0, and
 * 2^61 = 1: x z = h1 + h0 2^32 + (x0 z mod 2^61) + (x0 z >> 61), below 2^63. */
static inline uint64_t shr_m61_mul_small(uint64_t x, uint64_t z)
{
    const uint64_t M = SHR_M61, L32 = 0xffffffffu, L29 = (UINT64_C(1) << 29) - 1;
    const uint64_t lo = (x & L32) * z, hi = (x >> 32) * z;
    uint64_t t = ((hi & L29) << 32) + (hi >> 29) + (lo & M) + (lo >> 61);
    t = (t & M) + (t >> 61);
    return t >= M ? t - M : t;
}

#define SHR_BS 512

/* Shamir shares for w <= SHR_BS secrets: out[i * N + j] = f_j(i + 1) mod p for i < n,
 * j < w, where f_j has coefficients rows[0][j] (the secret) .. rows[t-1][j]: Horner's
 * rule with the w accumulators in L1, so that for 2^61 - 1 the inner loop vectorises. */
SHR_CLONES static void shr_poly_rows(const uint64_t *const *rows, int64_t t, int64_t n,
                                     uint64_t p, uint64_t *out, int64_t N, int64_t w)
{
    const shr_field f = shr_make_field(p);
    uint64_t acc[SHR_BS];
    for (int64_t i = 0; i < n; i++) {
        const uint64_t z = (uint64_t)(i + 1); /* < 2^32 (checked by the caller) */
        for (int64_t j = 0; j < w; j++) acc[j] = rows[t - 1][j];
        for (int64_t c = t - 2; c >= 0; c--) {
            const uint64_t *cc = rows[c];
            if (f.mersenne) {
                for (int64_t j = 0; j < w; j++) {
                    const uint64_t v = shr_m61_mul_small(acc[j], z) + cc[j];
                    acc[j] = v >= p ? v - p : v;
                }
            } else {
                for (int64_t j = 0; j < w; j++)
                    acc[j] = shr_addmod(shr_mulmod(acc[j], z, &f), cc[j], p);
            }
        }
        memcpy(out + i * N, acc, (size_t)w * 8);
    }
}

/* out[j] = sum over k < m of coef[k] * rows[k][j] mod p (coef < p): Lagrange sums.
 * Returns the largest row element seen (the caller's range check rides along). */
SHR_CLONES static uint64_t shr_lincomb_range(const uint64_t *const *rows, const uint64_t *coef,
                                             int m, const shr_field *f, uint64_t *out,
                                             int64_t lo, int64_t hi)
{
    const uint64_t p = f->p;
    uint64_t mx = 0;
    for (int64_t j0 = lo; j0 < hi; j0 += SHR_BS) {
        const int64_t j1 = j0 + SHR_BS < hi ? j0 + SHR_BS : hi;
        uint64_t acc[SHR_BS];
        for (int64_t j = j0; j < j1; j++) acc[j - j0] = 0;
        for (int k = 0; k < m; k++) {
            const uint64_t *r = rows[k], ck = coef[k];
            if (f->mersenne) {
                for (int64_t j = j0; j < j1; j++) {
                    mx = r[j] > mx ? r[j] : mx;
                    const uint64_t v = acc[j - j0] + shr_m61_mul(r[j], ck);
                    acc[j - j0] = v >= p ? v - p : v;
                }
            } else {
                for (int64_t j = j0; j < j1; j++) {
                    mx = r[j] > mx ? r[j] : mx;
                    acc[j - j0] = shr_addmod(acc[j - j0], shr_mulmod(r[j], ck, f), p);
                }
            }
        }
        memcpy(out + j0, acc, (size_t)(j1 - j0) * 8);
    }
    return mx;
}

/* Returns 1 when some row element was >= p (out is then meaningless). */
static int shr_lincomb(const uint64_t *const *rows, const uint64_t *coef, int m, uint64_t *out,
                       int64_t N, uint64_t p, int nthreads)
{
    const shr_field f = shr_make_field(p);
    int bad = 0;
    if (N * m < 65536) nthreads = 1;
#pragma omp parallel num_threads(nthreads) reduction(| : bad)
    {
        const int64_t tid = omp_get_thread_num(), nt = omp_get_num_threads();
        bad |= shr_lincomb_range(rows, coef, m, &f, out, N * tid / nt, N * (tid + 1) / nt) >= p;
    }
    return bad;
}

#endif
