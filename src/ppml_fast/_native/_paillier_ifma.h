/* Montgomery multiplication in radix 2^52 with AVX-512 IFMA (vpmadd52luq/huq).
 *
 * A number below 2^(52K) is K digits of 52 bits, one per 64-bit word, padded with zero
 * words to a multiple of 8 (nv vectors of 8 digits). For an odd modulus M of up to
 * PK_MAXBITS bits, K = ceil((bits(M) + 2) / 52) makes R = 2^(52K) > 4M, and
 *
 *     AMM(a, b) = a b R^-1 mod M, returned in [0, 2M) for a, b in [0, 2M)
 *
 * ("almost" Montgomery: no final subtraction). It is the word-serial algorithm: for each
 * digit b_i, acc = (acc + a b_i + M y) / 2^52 with y = acc_0 (-M^-1) mod 2^52, the low
 * halves of the 52x52-bit products added at their digit and the high halves one digit up
 * (i.e. after the shift). Digits of acc live in 64-bit lanes and absorb at most four
 * 52-bit halves per step, so over K <= 160 steps they stay below 2^62: carries are only
 * propagated once, at the end.
 *
 * Used, when the CPU has AVX-512 IFMA, for the multiplication-bound kernels: a modular
 * multiplication is two AMMs (a b R^-1, then times R^2 R^-1), a product chain is one AMM
 * per factor plus one correction by R^len, the DJN table is kept in Montgomery form
 * (T R mod M) so an encryption is one AMM per window, and public-exponent powers use
 * sliding windows over AMMs. At 4096 bits an AMM takes about a third of GMP's mpn_mul_n +
 * mpn_tdiv_qr. The running time of an AMM (and of the final subtraction, pk_canon52)
 * depends only on the sizes, not on the values; a power's sequence of AMMs depends on the
 * exponent, which is why only public exponents come here (secret ones: mpz_powm_sec).
 */
#ifndef PPML_PAILLIER_IFMA_H
#define PPML_PAILLIER_IFMA_H

#include "_isa.h"

#include <stdint.h>
#include <string.h>
#include <gmp.h>

/* gcc 12 cannot see that pk_to52 fills the digit arrays it hands to the AMM table */
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#define PK_MASK52 0xFFFFFFFFFFFFFull
#define PK_MAXBITS 8192
#define PK_MAXD 160          /* digits for PK_MAXBITS + 2 bits, rounded up to 8 */
#define PK_MAXV (PK_MAXD / 8)

typedef struct {
    int K;                   /* digits */
    int nv;                  /* vectors of 8 digits */
    uint64_t k0;             /* -M^-1 mod 2^52 */
    uint64_t m[PK_MAXD];     /* M */
    uint64_t rr[PK_MAXD];    /* R^2 mod M */
    uint64_t rm[PK_MAXD];    /* R mod M (the Montgomery form of 1) */
    uint64_t one[PK_MAXD];   /* 1 */
} pk_mont52;

/* x (L limbs of 64 bits) -> K8 digits of 52 bits (zero padded). */
static inline void pk_to52(uint64_t *d, int nd, const uint64_t *x, int64_t L)
{
    for (int j = 0; j < nd; j++) {
        int64_t bit = 52 * (int64_t)j, li = bit >> 6, off = bit & 63;
        uint64_t v = 0;
        if (li < L) {
            v = x[li] >> off;
            if (off > 12 && li + 1 < L) v |= x[li + 1] << (64 - off);
        }
        d[j] = v & PK_MASK52;
    }
}

/* K digits of 52 bits (normalised) -> L limbs of 64 bits (bits beyond 64L dropped). */
static inline void pk_from52(uint64_t *x, int64_t L, const uint64_t *d, int nd)
{
    memset(x, 0, (size_t)L * sizeof(uint64_t));
    for (int j = 0; j < nd; j++) {
        int64_t bit = 52 * (int64_t)j, li = bit >> 6, off = bit & 63;
        if (li >= L) break;
        x[li] |= d[j] << off;
        if (off > 12 && li + 1 < L) x[li + 1] |= d[j] >> (64 - off);
    }
}

/* r = r - M if r >= M (r < 2M, normalised digits), without branching on the values (the
 * CRT encryption runs this with a secret modulus p^2). */
static inline void pk_canon52(uint64_t *r, const pk_mont52 *c)
{
    uint64_t d[PK_MAXD], borrow = 0;
    for (int j = 0; j < c->K; j++) {
        uint64_t t = r[j] - c->m[j] - borrow;
        borrow = t >> 63;
        d[j] = t & PK_MASK52;
    }
    uint64_t keep = 0 - borrow;    /* all ones when r < M: keep r */
    for (int j = 0; j < c->K; j++) r[j] = (r[j] & keep) | (d[j] & ~keep);
}

/* Fill a context for the odd modulus M (Lm limbs, at most PK_MAXBITS bits). */
static void pk_mont52_init(pk_mont52 *c, const uint64_t *mlimbs, int64_t Lm)
{
    mpz_t M, R, t;
    mpz_srcptr mv = mpz_roinit_n(M, (const mp_limb_t *)mlimbs, (mp_size_t)Lm);
    size_t bits = mpz_sizeinbase(mv, 2);
    int K = (int)((bits + 2 + 51) / 52);
    c->K = K;
    c->nv = (K + 7) / 8;
    memset(c->m, 0, sizeof c->m);
    memset(c->rr, 0, sizeof c->rr);
    memset(c->rm, 0, sizeof c->rm);
    memset(c->one, 0, sizeof c->one);
    c->one[0] = 1;
    pk_to52(c->m, 8 * c->nv, mlimbs, Lm);
    uint64_t m0 = c->m[0], inv = 1;
    for (int i = 0; i < 6; i++) inv *= 2 - m0 * inv;   /* m0^-1 mod 2^64 (Newton) */
    c->k0 = (0 - inv) & PK_MASK52;
    mpz_init(R); mpz_init(t);
    mpz_setbit(R, (mp_bitcnt_t)(52 * K));
    mpz_mod(t, R, mv);
    {
        uint64_t buf[PK_MAXD];
        memset(buf, 0, sizeof buf);
        size_t k = mpz_size(t);
        if (k) memcpy(buf, mpz_limbs_read(t), k * sizeof(uint64_t));
        pk_to52(c->rm, 8 * c->nv, buf, (int64_t)Lm);
        mpz_mul(t, t, t);
        mpz_mod(t, t, mv);
        memset(buf, 0, sizeof buf);
        k = mpz_size(t);
        if (k) memcpy(buf, mpz_limbs_read(t), k * sizeof(uint64_t));
        pk_to52(c->rr, 8 * c->nv, buf, (int64_t)Lm);
    }
    mpz_clear(R); mpz_clear(t);
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define PK_HAVE_IFMA_BUILD 1

/* r = AMM(a, b): digits in [0, 2M) (nv*8 words each, zero padded; r may alias a or b).
 * The body is inlined into one function per vector count (1..PK_MAXV), so the loops over
 * vectors unroll and the accumulator stays in registers: twice as fast as a runtime nv. */
#define PK_IFMA_TARGET __attribute__((target("avx512f,avx512ifma")))

PK_IFMA_TARGET static inline __attribute__((always_inline))
void pk_amm52_body(uint64_t *r, const uint64_t *a, const uint64_t *b, const pk_mont52 *c,
                   const int nv)
{
    const int K = c->K;
    const uint64_t k0 = c->k0, m0 = c->m[0];
    __m512i A[PK_MAXV], av[PK_MAXV];
    const __m512i zero = _mm512_setzero_si512();
    #pragma GCC unroll 20
    for (int v = 0; v < nv; v++) {
        A[v] = zero;
        av[v] = _mm512_loadu_si512((const void *)(a + 8 * v));
    }
    const uint64_t *bd = b;
    uint64_t bcopy[PK_MAXD];
    if (b == r) { memcpy(bcopy, b, (size_t)K * sizeof(uint64_t)); bd = bcopy; }
    for (int i = 0; i < K; i++) {
        const __m512i bi = _mm512_set1_epi64((long long)bd[i]);
        #pragma GCC unroll 20
        for (int v = 0; v < nv; v++) A[v] = _mm512_madd52lo_epu64(A[v], av[v], bi);
        uint64_t acc0 = (uint64_t)_mm_cvtsi128_si64(_mm512_castsi512_si128(A[0]));
        uint64_t y = (acc0 * k0) & PK_MASK52;
        uint64_t carry = (acc0 + ((m0 * y) & PK_MASK52)) >> 52;
        const __m512i yv = _mm512_set1_epi64((long long)y);
        #pragma GCC unroll 20
        for (int v = 0; v < nv; v++) {
            __m512i mv = _mm512_loadu_si512((const void *)(c->m + 8 * v));
            A[v] = _mm512_madd52lo_epu64(A[v], mv, yv);
        }
        #pragma GCC unroll 20
        for (int v = 0; v < nv - 1; v++) A[v] = _mm512_alignr_epi64(A[v + 1], A[v], 1);
        A[nv - 1] = _mm512_alignr_epi64(zero, A[nv - 1], 1);
        A[0] = _mm512_mask_add_epi64(A[0], 1, A[0], _mm512_set1_epi64((long long)carry));
        #pragma GCC unroll 20
        for (int v = 0; v < nv; v++) {
            __m512i mv = _mm512_loadu_si512((const void *)(c->m + 8 * v));
            A[v] = _mm512_madd52hi_epu64(A[v], av[v], bi);
            A[v] = _mm512_madd52hi_epu64(A[v], mv, yv);
        }
    }
    uint64_t tmp[PK_MAXD];
    #pragma GCC unroll 20
    for (int v = 0; v < nv; v++) _mm512_storeu_si512((void *)(tmp + 8 * v), A[v]);
    uint64_t carry = 0;
    for (int j = 0; j < 8 * nv; j++) {
        uint64_t t = tmp[j] + carry;
        r[j] = t & PK_MASK52;
        carry = t >> 52;
    }
}

#define PK_AMM_NV(NV) \
    PK_IFMA_TARGET static void pk_amm52_##NV(uint64_t *r, const uint64_t *a, \
                                             const uint64_t *b, const pk_mont52 *c) \
    { pk_amm52_body(r, a, b, c, NV); }
PK_AMM_NV(1) PK_AMM_NV(2) PK_AMM_NV(3) PK_AMM_NV(4) PK_AMM_NV(5)
PK_AMM_NV(6) PK_AMM_NV(7) PK_AMM_NV(8) PK_AMM_NV(9) PK_AMM_NV(10)
PK_AMM_NV(11) PK_AMM_NV(12) PK_AMM_NV(13) PK_AMM_NV(14) PK_AMM_NV(15)
PK_AMM_NV(16) PK_AMM_NV(17) PK_AMM_NV(18) PK_AMM_NV(19) PK_AMM_NV(20)

typedef void (*pk_amm_fn)(uint64_t *, const uint64_t *, const uint64_t *, const pk_mont52 *);
static const pk_amm_fn pk_amm_table[PK_MAXV + 1] = {
    NULL, pk_amm52_1, pk_amm52_2, pk_amm52_3, pk_amm52_4, pk_amm52_5, pk_amm52_6,
    pk_amm52_7, pk_amm52_8, pk_amm52_9, pk_amm52_10, pk_amm52_11, pk_amm52_12, pk_amm52_13,
    pk_amm52_14, pk_amm52_15, pk_amm52_16, pk_amm52_17, pk_amm52_18, pk_amm52_19,
    pk_amm52_20};

static inline void pk_amm52(uint64_t *r, const uint64_t *a, const uint64_t *b,
                            const pk_mont52 *c)
{
    pk_amm_table[c->nv](r, a, b, c);
}

/* dst = rows[idx] (count rows of nd = 8*nv digits), reading every row and keeping one by
 * masks: the memory touched does not depend on idx (a secret DJN digit). */
PK_IFMA_TARGET static void pk_ct_select52(uint64_t *dst, const uint64_t *rows, int64_t count,
                                          int nd, uint64_t idx)
{
    const int nv = nd / 8;
    __m512i acc[PK_MAXV];
    for (int v = 0; v < nv; v++) acc[v] = _mm512_setzero_si512();
    const __m512i want = _mm512_set1_epi64((long long)idx);
    for (int64_t k = 0; k < count; k++) {
        /* every row is loaded in full; the compare mask (all lanes or none) keeps one */
        __mmask8 hit = _mm512_cmpeq_epi64_mask(_mm512_set1_epi64((long long)k), want);
        const uint64_t *row = rows + k * nd;
        for (int v = 0; v < nv; v++)
            acc[v] = _mm512_or_si512(acc[v], _mm512_maskz_mov_epi64(
                hit, _mm512_loadu_si512((const void *)(row + 8 * v))));
    }
    for (int v = 0; v < nv; v++) _mm512_storeu_si512((void *)(dst + 8 * v), acc[v]);
}

#else
static void pk_amm52(uint64_t *r, const uint64_t *a, const uint64_t *b, const pk_mont52 *c)
{
    (void)r; (void)a; (void)b; (void)c;
}
static void pk_ct_select52(uint64_t *dst, const uint64_t *rows, int64_t count, int nd,
                           uint64_t idx)
{
    (void)dst; (void)rows; (void)count; (void)nd; (void)idx;
}
#endif

/* The IFMA kernels run at the avx512 level on a CPU with IFMA, for moduli up to
 * PK_MAXBITS; every other case (and every other level) takes the GMP path. */
static int pk_use_ifma(int64_t mod_limbs)
{
    if (mod_limbs * 64 > PK_MAXBITS || ppml_isa < PPML_ISA_AVX512) return 0;
    return ppml_cpu_ifma();
}

/* out (L limbs) = a * b mod M via two AMMs; a, b (L limbs) below M. */
static inline void pk_mulmod52(uint64_t *out, const uint64_t *a, const uint64_t *b, int64_t L,
                               const pk_mont52 *c)
{
    uint64_t x[PK_MAXD], y[PK_MAXD];
    int nd = 8 * c->nv;
    pk_to52(x, nd, a, L);
    pk_to52(y, nd, b, L);
    pk_amm52(x, x, y, c);          /* a b R^-1 */
    pk_amm52(x, x, c->rr, c);      /* a b */
    pk_canon52(x, c);
    pk_from52(out, L, x, nd);
}

/* out (L limbs) = base^e mod M for a public exponent e (Le limbs; e = 0 gives 1) and a base
 * below M (L limbs): left-to-right sliding windows over AMMs in Montgomery form. The
 * sequence of operations depends on e's bits, like GMP's mpz_powm: not for secrets. */
static void pk_powm52(uint64_t *out, int64_t L, const uint64_t *base, const uint64_t *e,
                      int64_t Le, const pk_mont52 *c)
{
    int64_t top = Le - 1;
    while (top >= 0 && e[top] == 0) top--;
    int nd = 8 * c->nv;
    if (top < 0) {  /* x^0 = 1 (mod M > 1) */
        memset(out, 0, (size_t)L * sizeof(uint64_t));
        out[0] = 1;
        return;
    }
    int64_t ebits = 64 * top + 64 - __builtin_clzll(e[top]);
    int w = ebits <= 16 ? 1 : ebits <= 96 ? 3 : ebits <= 640 ? 4 : 5;
    uint64_t tab[16][PK_MAXD], acc[PK_MAXD], x[PK_MAXD];
    memset(x, 0, sizeof x);
    pk_to52(x, nd, base, L);
    pk_amm52(tab[0], x, c->rr, c);                  /* base R mod M */
    if (w > 1) {
        pk_amm52(x, tab[0], tab[0], c);             /* base^2 R */
        for (int i = 1; i < (1 << (w - 1)); i++) pk_amm52(tab[i], tab[i - 1], x, c);
    }
    int started = 0;
    int64_t i = ebits - 1;
    while (i >= 0) {
        if (!((e[i >> 6] >> (i & 63)) & 1)) {
            if (started) pk_amm52(acc, acc, acc, c);
            i--;
            continue;
        }
        int64_t j = i - w + 1 < 0 ? 0 : i - w + 1;
        while (!((e[j >> 6] >> (j & 63)) & 1)) j++;
        uint64_t val = 0;
        for (int64_t k = i; k >= j; k--) val = (val << 1) | ((e[k >> 6] >> (k & 63)) & 1);
        if (started) {
            for (int64_t k = i; k >= j; k--) pk_amm52(acc, acc, acc, c);
            pk_amm52(acc, acc, tab[(val - 1) >> 1], c);
        } else {
            memcpy(acc, tab[(val - 1) >> 1], (size_t)nd * sizeof(uint64_t));
            started = 1;
        }
        i = j - 1;
    }
    pk_amm52(acc, acc, c->one, c);
    pk_canon52(acc, c);
    pk_from52(out, L, acc, nd);
}

#endif
