/* Four modular exponentiations side by side in AVX2 ("vertical" layout), for secret
 * exponents: the constant-time power behind batched CRT decryption at the avx2 level.
 *
 * A number below 2^(rb K) is K digits of rb bits (rb = 26..28), digit j of the four lanes
 * in one 256-bit vector: lane l holds number l, with its own modulus. vpmuludq multiplies
 * the low 32 bits of each lane (digits < 2^rb < 2^32) into a 64-bit product below
 * 2^(2 rb), so a column of the product can take 2 K such products (plus carries) without
 * overflow when 2 K 2^(2 rb) < 2^64: rb is the widest radix that allows it for the
 * modulus length, and carries are propagated once per multiplication.
 *
 *     AMM(a, b) = a b R^-1 mod M in [0, 2M), R = 2^(rb K) > 4M, for a, b in [0, 2M)
 *
 * ("almost" Montgomery: no final subtraction inside the walk). Row i adds a_i b + q_i M at
 * digit i, with q_i = (column i) (-M^-1) mod 2^rb making column i divisible by 2^rb; its
 * carry moves to column i + 1, and columns K .. 2K-1 are the result.
 *
 * Constant time: an AMM is the same instruction sequence whatever the values (vector
 * multiplies and adds, no branch, no value-dependent address). The power uses a fixed
 * window schedule over the exponent's full limb width (a public length), reads every
 * table entry of every window and keeps one per lane by masks (vpcmpeqq on the lane's
 * digit), multiplies even for a zero digit, and ends with a final subtraction chosen by
 * masks. Reductions by the secret modulus (the base mod M, R^2 mod M) go through GMP's
 * mpn_sec_div_r. valgrind (memcheck with the exponent marked undefined) and a Welch
 * t-test on timings check this in the test suite.
 */
#ifndef PPML_PAILLIER_V4_H
#define PPML_PAILLIER_V4_H

#include "_isa.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <gmp.h>

#include "_paillier_ct.h"

#define PK_V4_MAXBITS 8192   /* moduli up to this many bits (p^2 of 8192-bit keys) */
#define PK_V4_WIN 5          /* window bits of the secret-exponent power */

/* Digits for a modulus of `bits` bits and the radix that keeps columns below 2^64
 * (returns rb; *K gets the digit count; 0 when no radix from 28 down to 24 fits). */
static inline int pk_v4_radix(int64_t bits, int *K)
{
    for (int rb = 28; rb >= 24; rb--) {
        int k = (int)((bits + 2 + rb - 1) / rb);
        /* 2 k products below 2^(2 rb), plus one carry below 2^(64 - rb) per column */
        long double top = 2.0L * k * (long double)((uint64_t)1 << (2 * rb));
        if (top + (long double)((uint64_t)1 << (64 - rb)) < 18446744073709551615.0L) {
            *K = k;
            return rb;
        }
    }
    return 0;
}

/* x (L limbs) -> K digits of rb bits into lane `lane` of d (4 K words, digit-major). */
static inline void pk_v4_to_digits(uint64_t *d, int lane, int K, int rb, const uint64_t *x,
                                   int64_t L)
{
    uint64_t mask = ((uint64_t)1 << rb) - 1;
    for (int j = 0; j < K; j++) {
        int64_t bit = (int64_t)rb * j, li = bit >> 6, off = bit & 63;
        uint64_t v = 0;
        if (li < L) {
            v = x[li] >> off;
            if (off + rb > 64 && li + 1 < L) v |= x[li + 1] << (64 - off);
        }
        d[4 * j + lane] = v & mask;
    }
}

/* Lane `lane` of d (K normalised digits) -> L limbs (bits beyond 64 L dropped). */
static inline void pk_v4_from_digits(uint64_t *x, int64_t L, const uint64_t *d, int lane,
                                     int K, int rb)
{
    memset(x, 0, (size_t)L * sizeof(uint64_t));
    for (int j = 0; j < K; j++) {
        int64_t bit = (int64_t)rb * j, li = bit >> 6, off = bit & 63;
        if (li >= L) break;
        uint64_t v = d[4 * j + lane];
        x[li] |= v << off;
        if (off + rb > 64 && li + 1 < L) x[li + 1] |= v >> (64 - off);
    }
}

/* The four moduli of one call: digits, -M^-1 mod 2^rb and R^2 mod M per lane. */
typedef struct {
    int K, rb;
    uint64_t *m;      /* 4 K words */
    uint64_t *rr;     /* 4 K words */
    uint64_t minv[4];
} pk_v4_mod;

/* r (Lm limbs) = x (Lx limbs, any value) mod m (Lm limbs, top limb nonzero) with GMP's
 * mpn_sec_div_r: time and memory accesses independent of the values. x is copied; scratch
 * s needs Lx + mpn_sec_div_r_itch(Lx, Lm) limbs. Lx >= Lm. */
static inline void pk_sec_mod(uint64_t *r, const uint64_t *x, int64_t Lx, const uint64_t *m,
                              int64_t Lm, uint64_t *s)
{
    memcpy(s, x, (size_t)Lx * sizeof(uint64_t));
    mpn_sec_div_r((mp_ptr)s, (mp_size_t)Lx, (mp_srcptr)m, (mp_size_t)Lm, (mp_ptr)(s + Lx));
    memcpy(r, s, (size_t)Lm * sizeof(uint64_t));
}

static inline int64_t pk_sec_mod_itch(int64_t Lx, int64_t Lm)
{
    return Lx + (int64_t)mpn_sec_div_r_itch((mp_size_t)Lx, (mp_size_t)Lm);
}

/* Limbs of x (L limbs) up to its top nonzero one (at least 1). */
static inline int64_t pk_v4_size(const uint64_t *x, int64_t L)
{
    while (L > 1 && !x[L - 1]) L--;
    return L;
}

/* Fill the context for the odd moduli ms[l] (Lm limbs each, zero padded, at most
 * PK_V4_MAXBITS bits; `bits` the largest bit length). Returns 0 on success, -1 when memory
 * runs out (nothing to free then). */
static int pk_v4_mod_init(pk_v4_mod *c, const uint64_t *const ms[4], int64_t Lm, int64_t bits)
{
    c->rb = pk_v4_radix(bits, &c->K);
    int K = c->K, rb = c->rb;
    c->m = (uint64_t *)aligned_alloc(32, (size_t)64 * (size_t)K);   /* m and rr */
    if (!c->m) return -1;
    c->rr = c->m + 4 * (size_t)K;
    int64_t Lr = (2 * (int64_t)rb * K) / 64 + 1;            /* R^2 = 2^(2 rb K) */
    int64_t itch = pk_sec_mod_itch(Lr, Lm);
    uint64_t *s = (uint64_t *)malloc((size_t)(Lr + itch + Lm) * sizeof(uint64_t));
    if (!s) { free(c->m); return -1; }
    uint64_t *x = s + itch, *r = x + Lr;
    for (int l = 0; l < 4; l++) {
        pk_v4_to_digits(c->m, l, K, rb, ms[l], Lm);
        uint64_t m0 = ms[l][0], inv = m0;
        for (int k = 0; k < 5; k++) inv *= 2 - m0 * inv;   /* m0^-1 mod 2^64 (Newton) */
        c->minv[l] = (0 - inv) & (((uint64_t)1 << rb) - 1);
        memset(x, 0, (size_t)Lr * sizeof(uint64_t));
        int64_t e = 2 * (int64_t)rb * K;
        x[e >> 6] = (uint64_t)1 << (e & 63);
        int64_t ll = pk_v4_size(ms[l], Lm);
        memset(r, 0, (size_t)Lm * sizeof(uint64_t));
        pk_sec_mod(r, x, Lr, ms[l], ll, s);
        pk_v4_to_digits(c->rr, l, K, rb, r, Lm);
    }
    pk_wipe(s, (size_t)(Lr + itch + Lm) * sizeof(uint64_t));   /* R^2 mod M, M's multiples */
    free(s);
    return 0;
}

static void pk_v4_mod_free(pk_v4_mod *c)
{
    pk_wipe(c->m, (size_t)8 * c->K * sizeof(uint64_t));    /* secret moduli */
    pk_wipe(c->minv, sizeof c->minv);
    free(c->m);
    c->m = c->rr = NULL;
}

/* Scratch words (u64) that pk_v4_powm needs for a context of K digits. */
static inline size_t pk_v4_powm_words(int K)
{
    return (size_t)4 * ((size_t)(1 << PK_V4_WIN) * K + 3 * (size_t)K + 2 * (size_t)K + 1);
}

#if PPML_X86
#include <immintrin.h>

/* r = AMM(a, b) over the four lanes (K vectors each; r may alias a or b); T: 2 K + 1
 * vectors of scratch. */
PPML_TARGET_AVX2 static void pk_v4_amm(__m256i *r, const __m256i *a, const __m256i *b,
                                       const pk_v4_mod *c, __m256i *T)
{
    const int K = c->K;
    const __m128i sh = _mm_set_epi64x(0, c->rb);
    const __m256i mask = _mm256_set1_epi64x((long long)(((uint64_t)1 << c->rb) - 1));
    const __m256i minv = _mm256_loadu_si256((const __m256i *)c->minv);
    const __m256i *m = (const __m256i *)c->m;
    for (int k = 0; k < 2 * K + 1; k++) T[k] = _mm256_setzero_si256();
    for (int i = 0; i < K; i++) {
        const __m256i ai = a[i];
        __m256i *Ti = T + i;
        __m256i t0 = _mm256_add_epi64(Ti[0], _mm256_mul_epu32(ai, b[0]));
        const __m256i q = _mm256_and_si256(_mm256_mul_epu32(t0, minv), mask);
        t0 = _mm256_add_epi64(t0, _mm256_mul_epu32(q, m[0]));
        for (int j = 1; j < K; j++)
            Ti[j] = _mm256_add_epi64(
                Ti[j], _mm256_add_epi64(_mm256_mul_epu32(ai, b[j]), _mm256_mul_epu32(q, m[j])));
        Ti[1] = _mm256_add_epi64(Ti[1], _mm256_srl_epi64(t0, sh));
    }
    __m256i cy = _mm256_setzero_si256();
    for (int j = 0; j < K; j++) {
        __m256i x = _mm256_add_epi64(T[K + j], cy);
        r[j] = _mm256_and_si256(x, mask);
        cy = _mm256_srl_epi64(x, sh);
    }
}

/* r = r - M in the lanes where r >= M (r normalised, below 2M), by masks. */
PPML_TARGET_AVX2 static void pk_v4_canon(__m256i *r, const pk_v4_mod *c, __m256i *d)
{
    const int K = c->K;
    const __m128i sh = _mm_set_epi64x(0, 63);
    const __m256i mask = _mm256_set1_epi64x((long long)(((uint64_t)1 << c->rb) - 1));
    const __m256i *m = (const __m256i *)c->m;
    __m256i borrow = _mm256_setzero_si256();
    for (int j = 0; j < K; j++) {
        __m256i t = _mm256_sub_epi64(_mm256_sub_epi64(r[j], m[j]), borrow);
        borrow = _mm256_srl_epi64(t, sh);
        d[j] = _mm256_and_si256(t, mask);
    }
    /* borrow = 1: r < M, keep r */
    const __m256i keep = _mm256_sub_epi64(_mm256_setzero_si256(), borrow);
    for (int j = 0; j < K; j++) r[j] = _mm256_blendv_epi8(d[j], r[j], keep);
}

/* The w-bit digits at window j of the four exponents (Le limbs each) as a vector. */
PPML_TARGET_AVX2 static inline __m256i pk_v4_digits(const uint64_t *const es[4], int64_t Le,
                                                    int64_t j, int w)
{
    uint64_t d[4];
    for (int l = 0; l < 4; l++) d[l] = pk_window_digit(es[l], Le, j, w);
    return _mm256_loadu_si256((const __m256i *)d);
}

/* sel = tab[dv[l]] in each lane l, reading all `count` entries (K vectors each). */
PPML_TARGET_AVX2 static void pk_v4_select(__m256i *sel, const __m256i *tab, int count, int K,
                                          __m256i dv)
{
    for (int j = 0; j < K; j++) sel[j] = _mm256_setzero_si256();
    for (int e = 0; e < count; e++) {
        const __m256i mk = _mm256_cmpeq_epi64(dv, _mm256_set1_epi64x(e));
        const __m256i *row = tab + (size_t)e * K;
        for (int j = 0; j < K; j++) sel[j] = _mm256_or_si256(sel[j], _mm256_and_si256(row[j], mk));
    }
}

/* out[l] = x[l]^e[l] mod M_l for the four lanes: x given as digits (4 K words, each lane
 * below M_l), exponents as Le limbs each (a public width; every one of its 64 Le bits is
 * walked). Result as normalised digits in [0, M_l) into x. scratch: pk_v4_powm_words(K)
 * words, 32-byte aligned. */
PPML_TARGET_AVX2 static void pk_v4_powm(uint64_t *x, const uint64_t *const es[4], int64_t Le,
                                        const pk_v4_mod *c, uint64_t *scratch)
{
    const int K = c->K, w = PK_V4_WIN, count = 1 << PK_V4_WIN;
    __m256i *tab = (__m256i *)scratch;
    __m256i *acc = tab + (size_t)count * K, *sel = acc + K, *one = sel + K;
    __m256i *T = one + K;
    __m256i *X = (__m256i *)x;
    for (int j = 0; j < K; j++) one[j] = _mm256_setzero_si256();
    one[0] = _mm256_set1_epi64x(1);
    /* tab[0] = R mod M (Montgomery 1), tab[1] = x R mod M, tab[d] = tab[d-1] tab[1] */
    pk_v4_amm(tab, (const __m256i *)c->rr, one, c, T);
    pk_v4_amm(tab + K, X, (const __m256i *)c->rr, c, T);
    for (int d = 2; d < count; d++)
        pk_v4_amm(tab + (size_t)d * K, tab + (size_t)(d - 1) * K, tab + K, c, T);
    int64_t nwin = (64 * Le + w - 1) / w;
    pk_v4_select(acc, tab, count, K, pk_v4_digits(es, Le, nwin - 1, w));
    for (int64_t j = nwin - 2; j >= 0; j--) {
        for (int s = 0; s < w; s++) pk_v4_amm(acc, acc, acc, c, T);
        pk_v4_select(sel, tab, count, K, pk_v4_digits(es, Le, j, w));
        pk_v4_amm(acc, acc, sel, c, T);
    }
    pk_v4_amm(X, acc, one, c, T);      /* out of Montgomery form: in [0, M] */
    pk_v4_canon(X, c, sel);
}
#endif /* PPML_X86 */

/* Per-thread workspace of one group of four powers: digits, the power's scratch and the
 * limb buffers of the reductions. */
typedef struct {
    uint64_t *digits;    /* 4 K words, 32-byte aligned */
    uint64_t *scratch;   /* pk_v4_powm_words(K), 32-byte aligned */
    uint64_t *limbs;     /* Lx + itch + Lm */
    size_t ndig, nscr, nlimb;
} pk_v4_work;

static int pk_v4_work_init(pk_v4_work *wk, const pk_v4_mod *c, int64_t Lx, int64_t Lm)
{
    wk->ndig = (size_t)4 * c->K;
    wk->nscr = pk_v4_powm_words(c->K);
    wk->nlimb = (size_t)(pk_sec_mod_itch(Lx, Lm) + Lm);
    wk->digits = (uint64_t *)aligned_alloc(32, (wk->ndig + wk->nscr) * sizeof(uint64_t));
    wk->limbs = (uint64_t *)malloc(wk->nlimb * sizeof(uint64_t));
    if (!wk->digits || !wk->limbs) {
        free(wk->digits);
        free(wk->limbs);
        return -1;
    }
    wk->scratch = wk->digits + wk->ndig;
    return 0;
}

/* Wipe (everything in it derives from secrets) and free. */
static void pk_v4_work_free(pk_v4_work *wk)
{
    pk_wipe(wk->digits, (wk->ndig + wk->nscr) * sizeof(uint64_t));
    pk_wipe(wk->limbs, wk->nlimb * sizeof(uint64_t));
    free(wk->digits);
    free(wk->limbs);
}

/* outs[l] (Lm limbs) = (xs[l] mod M_l)^(es[l]) mod M_l for the four lanes; xs rows of Lx
 * >= Lm limbs, es rows of Le limbs, moduli as in the context (ms, Lm limbs, zero padded). */
static void pk_v4_group(const pk_v4_mod *c, const uint64_t *const ms[4], int64_t Lm,
                        const uint64_t *const xs[4], int64_t Lx, const uint64_t *const es[4],
                        int64_t Le, uint64_t *const outs[4], pk_v4_work *wk)
{
    uint64_t *r = wk->limbs, *s = wk->limbs + Lm;
    for (int l = 0; l < 4; l++) {
        memset(r, 0, (size_t)Lm * sizeof(uint64_t));
        pk_sec_mod(r, xs[l], Lx, ms[l], pk_v4_size(ms[l], Lm), s);
        pk_v4_to_digits(wk->digits, l, c->K, c->rb, r, Lm);
    }
#if PPML_X86
    pk_v4_powm(wk->digits, es, Le, c, wk->scratch);
#endif
    for (int l = 0; l < 4; l++)
        pk_v4_from_digits(outs[l], Lm, wk->digits, l, c->K, c->rb);
}

/* The kernel-test entry: out[l] = x[l]^e[l] mod m[l] for four rows (x: Lx >= Lm limbs, e:
 * Le >= 1 limbs, m: Lm limbs, odd and nonzero, below 2^PK_V4_MAXBITS; the caller checks
 * these). Returns 0, or -1 when memory ran out or off x86-64 (out untouched). */
static int pk_v4_powm_rows4(const uint64_t *x, int64_t Lx, const uint64_t *e, int64_t Le,
                            const uint64_t *m, int64_t Lm, uint64_t *out)
{
#if !PPML_X86
    (void)x; (void)Lx; (void)e; (void)Le; (void)m; (void)Lm; (void)out;
    return -1;
#endif
    const uint64_t *ms[4], *xs[4], *es[4];
    uint64_t *outs[4];
    int64_t bits = 0;
    for (int l = 0; l < 4; l++) {
        ms[l] = m + l * Lm; xs[l] = x + l * Lx; es[l] = e + l * Le; outs[l] = out + l * Lm;
        int64_t ll = pk_v4_size(ms[l], Lm);
        int64_t b = 64 * ll - __builtin_clzll(ms[l][ll - 1]);
        if (b > bits) bits = b;
    }
    pk_v4_mod c;
    pk_v4_work wk;
    if (pk_v4_mod_init(&c, ms, Lm, bits)) return -1;
    if (pk_v4_work_init(&wk, &c, Lx, Lm)) { pk_v4_mod_free(&c); return -1; }
    pk_v4_group(&c, ms, Lm, xs, Lx, es, Le, outs, &wk);
    pk_v4_work_free(&wk);
    pk_v4_mod_free(&c);
    return 0;
}

/* Whether the four-lane AVX2 power runs (avx2 level or above, moduli within the cap). */
static inline int pk_use_v4(int64_t mod_bits)
{
#if PPML_X86
    return ppml_isa >= PPML_ISA_AVX2 && mod_bits <= PK_V4_MAXBITS && mod_bits >= 64;
#else
    (void)mod_bits;
    return 0;
#endif
}

#endif /* PPML_PAILLIER_V4_H */
