/* Modular arithmetic kernels for secret sharing, included by sharing.pyx (no validation).
 *
 * Ring Z_2^64: uint64 with wraparound.  Fields Z_p for a prime p < 2^62 given at run time:
 * operands are already reduced (< p).  Products a*b < p^2 < 2^124 are formed in 128 bits
 * (two 64-bit words) and reduced by Barrett's method with k = bit length of p and
 * mu = floor(2^(2k) / p) (< 2^63): q = ((x >> (k-1)) * mu) >> (k+1) underestimates x / p
 * by at most 2, so r = x - q p is in [0, 3p) and at most two subtractions finish it.  For
 * the Mersenne prime 2^61 - 1 a shift-and-add fold replaces Barrett.
 *
 * ISA levels (_isa.h): the kernels with vectorised variants compile one body per level
 * (an always-inlined portable body wrapped once without a target attribute and once under
 * each x86 target attribute, so that the compiler vectorises it for that level) and
 * dispatch on `ppml_isa`, read once per call.  Every level gives the same bits.
 */
#ifndef PPML_SHARING_KERNELS_H
#define PPML_SHARING_KERNELS_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "_omp.h"

#include "_isa.h"
#include "_u128.h"

#if defined(__GNUC__) || defined(__clang__)
#define SHR_INLINE static inline __attribute__((always_inline))
#else
#define SHR_INLINE static inline
#endif

#define SHR_M61 ((UINT64_C(1) << 61) - 1)

/* The 128-bit product a * b as two words: returns the low word, *hi gets the high one. */
SHR_INLINE uint64_t shr_mul_wide(uint64_t a, uint64_t b, uint64_t *hi)
{
    const ppml_u128 x = u128_mul64(a, b);
    *hi = u128_hi(x);
    return u128_lo(x);
}

/* Bit length of x > 0. */
static int shr_bitlen(uint64_t x)
{
    int k = 0;
    while (x) {
        k++;
        x >>= 1;
    }
    return k;
}

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
    f.k = shr_bitlen(p);
    /* mu = floor(2^(2k) / p) by long division, one bit at a time (r < p < 2^62) */
    uint64_t q = 0, r = 1;
    for (int i = 0; i < 2 * f.k; i++) {
        r <<= 1;
        q <<= 1;
        if (r >= p) {
            r -= p;
            q |= 1;
        }
    }
    f.mu = q;
    f.mersenne = p == SHR_M61;
    return f;
}

/* x = hi 2^64 + lo (< p^2) mod p; Barrett's shifts k - 1 and k + 1 on two words
 * (2 <= k <= 62, so every shift count below is in [1, 63]). */
SHR_INLINE uint64_t shr_reduce_wide(uint64_t hi, uint64_t lo, const shr_field *f)
{
    if (f->mersenne) {
        uint64_t r = (lo & SHR_M61) + ((hi << 3) | (lo >> 61));
        r = (r & SHR_M61) + (r >> 61);
        return r >= SHR_M61 ? r - SHR_M61 : r;
    }
    const int k = f->k;
    const uint64_t q1 = (hi << (65 - k)) | (lo >> (k - 1));
    uint64_t h2;
    const uint64_t l2 = shr_mul_wide(q1, f->mu, &h2);
    const uint64_t q = (h2 << (63 - k)) | (l2 >> (k + 1));
    uint64_t r = lo - q * f->p; /* in [0, 3p): masked subtractions, no branch */
    r -= f->p & (UINT64_C(0) - (uint64_t)(r >= f->p));
    r -= f->p & (UINT64_C(0) - (uint64_t)(r >= f->p));
    return r;
}

/* x mod p for a single word x < 2^(2k) (Barrett needs x < 2^(2k)). */
SHR_INLINE uint64_t shr_reduce64(uint64_t x, const shr_field *f)
{
    return shr_reduce_wide(0, x, f);
}

SHR_INLINE uint64_t shr_mulmod(uint64_t a, uint64_t b, const shr_field *f)
{
    uint64_t hi;
    const uint64_t lo = shr_mul_wide(a, b, &hi);
    return shr_reduce_wide(hi, lo, f);
}

SHR_INLINE uint64_t shr_addmod(uint64_t a, uint64_t b, uint64_t p)
{
    const uint64_t s = a + b;
    return s >= p ? s - p : s;
}

SHR_INLINE uint64_t shr_submod(uint64_t a, uint64_t b, uint64_t p)
{
    return a >= b ? a - b : a + (p - b);
}

SHR_INLINE uint64_t shr_powmod(uint64_t a, uint64_t e, const shr_field *f)
{
    uint64_t r = 1 % f->p, b = a;
    while (e) {
        if (e & 1) r = shr_mulmod(r, b, f);
        b = shr_mulmod(b, b, f);
        e >>= 1;
    }
    return r;
}

SHR_INLINE uint64_t shr_powring(uint64_t a, uint64_t e)
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

/* The variants of a kernel whose portable body NAME##_body is always inlined: NAME##_generic
 * (no target attribute), and on x86 NAME##_avx2 and NAME##_avx512 (the same body compiled
 * for those targets); SHR_AT(isa, NAME, (args)) calls the one for level isa. */
#if PPML_X86
#define SHR_LEVELS(RET, NAME, PARAMS, ARGS)                                                \
    static RET NAME##_generic PARAMS { return NAME##_body ARGS; }                          \
    PPML_TARGET_AVX2 static RET NAME##_avx2 PARAMS { return NAME##_body ARGS; }            \
    PPML_TARGET_AVX512 static RET NAME##_avx512 PARAMS { return NAME##_body ARGS; }
#define SHR_AT(ISA, NAME, ARGS)                                                            \
    ((ISA) >= PPML_ISA_AVX512 ? NAME##_avx512 ARGS                                         \
     : (ISA) == PPML_ISA_AVX2 ? NAME##_avx2 ARGS                                           \
                              : NAME##_generic ARGS)
#else
#define SHR_LEVELS(RET, NAME, PARAMS, ARGS)                                                \
    static RET NAME##_generic PARAMS { return NAME##_body ARGS; }
#define SHR_AT(ISA, NAME, ARGS) ((void)(ISA), NAME##_generic ARGS)
#endif

/* x * y mod 2^61 - 1 for x, y < 2^61 with 32-bit halves only, so that loops of it
 * vectorise (no 128-bit type): x = x1 2^32 + x0, y = y1 2^32 + y0 (x1, y1 < 2^29), and
 * with 2^61 = 1, 2^64 = 8:
 * x y = 8 x1 y1 + (mid mod 2^29) 2^32 + (mid >> 29) + (lo mod 2^61) + (lo >> 61),
 * mid = x1 y0 + x0 y1, lo = x0 y0; the sum is below 2^63 and one fold finishes it. */
SHR_INLINE uint64_t shr_m61_mul(uint64_t x, uint64_t y)
{
    const uint64_t M = SHR_M61, L29 = (UINT64_C(1) << 29) - 1;
    const uint32_t x0 = (uint32_t)x, x1 = (uint32_t)(x >> 32), y0 = (uint32_t)y, y1 = (uint32_t)(y >> 32);
    const uint64_t low = (uint64_t)x0 * y0, mid = (uint64_t)x1 * y0 + (uint64_t)x0 * y1,
                   high = (uint64_t)x1 * y1;
    uint64_t t = (high << 3) + ((mid & L29) << 32) + (mid >> 29) + (low & M) + (low >> 61);
    t = (t & M) + (t >> 61);
    /* t < 2^62: subtract p unless that goes negative, with shifts and masks only (no 64-bit
     * compare, which baseline x86-64 vectors lack) */
    const uint64_t r = t - M;
    return r + (M & (UINT64_C(0) - (r >> 63)));
}

/* The range check in arithmetic a vectoriser can keep in lanes (no 64-bit compare, which
 * baseline x86-64 lacks): v >= 2^61 - 1 iff v has a bit >= 61 set (`bits`) or v equals
 * 2^61 - 1, i.e. e = v ^ (2^61 - 1) is 0, i.e. the top bit of ~e & (e - 1) is set. */
#define SHR_M61_BODY(XI, YI)                                                               \
    {                                                                                      \
        const uint64_t x = (XI), y = (YI);                                                 \
        const uint64_t ex = x ^ SHR_M61, ey = y ^ SHR_M61;                                 \
        bits |= x | y;                                                                     \
        eq |= (~ex & (ex - 1)) | (~ey & (ey - 1));                                         \
        out[i] = shr_m61_mul(x, y);                                                        \
    }

/* out[i] = a[i sa] b[i sb] mod 2^61 - 1 (sa, sb in {0, 1}) for i in [lo, hi); returns
 * ~0 when some operand is >= 2^61 - 1, else 0 (the caller's range check rides along and
 * compares the result with p). */
SHR_INLINE uint64_t shr_mul_m61_body(const uint64_t *a, int64_t sa, const uint64_t *b,
                                     int64_t sb, uint64_t *out, int64_t lo, int64_t hi)
{
    uint64_t bits = 0, eq = 0;
    if (sa && sb) {
        for (int64_t i = lo; i < hi; i++) SHR_M61_BODY(a[i], b[i])
    } else if (sa) {
        for (int64_t i = lo; i < hi; i++) SHR_M61_BODY(a[i], b[0])
    } else if (sb) {
        for (int64_t i = lo; i < hi; i++) SHR_M61_BODY(a[0], b[i])
    } else {
        for (int64_t i = lo; i < hi; i++) SHR_M61_BODY(a[0], b[0])
    }
    return ((bits >> 61) | (eq >> 63)) ? ~UINT64_C(0) : 0;
}
/* Level generic: scalar code (baseline x86-64 and most other targets have no vector
 * 32 x 32 -> 64 multiply a compiler uses here), so one full 64 x 64 -> 128 product and
 * Mersenne folding beat four 32-bit products. Same results and range check as the body. */
static uint64_t shr_mul_m61_generic(const uint64_t *a, int64_t sa, const uint64_t *b,
                                    int64_t sb, uint64_t *out, int64_t lo, int64_t hi)
{
    uint64_t bits = 0, eq = 0;
    for (int64_t i = lo; i < hi; i++) {
        const uint64_t x = a[i * sa], y = b[i * sb];
        bits |= x | y;
        eq |= (uint64_t)(x == SHR_M61) | (uint64_t)(y == SHR_M61);
        uint64_t h;
        const uint64_t l = shr_mul_wide(x, y, &h);
        uint64_t r = (l & SHR_M61) + ((h << 3) | (l >> 61));
        r = (r & SHR_M61) + (r >> 61);
        out[i] = r >= SHR_M61 ? r - SHR_M61 : r;
    }
    return ((bits >> 61) | eq) ? ~UINT64_C(0) : 0;
}

#if PPML_X86
PPML_TARGET_AVX512 static uint64_t shr_mul_m61_avx512(const uint64_t *a, int64_t sa,
                                                     const uint64_t *b, int64_t sb,
                                                     uint64_t *out, int64_t lo, int64_t hi)
{
    return shr_mul_m61_body(a, sa, b, sb, out, lo, hi);
}

/* shr_m61_mul on four lanes (x, y < 2^61; four vpmuludq). */
PPML_TARGET_AVX2 static inline __m256i shr_m61_mul_v(__m256i x, __m256i y)
{
    const __m256i M = _mm256_set1_epi64x((long long)SHR_M61);
    const __m256i Mm1 = _mm256_set1_epi64x((long long)SHR_M61 - 1);
    const __m256i L29 = _mm256_set1_epi64x((1LL << 29) - 1);
    const __m256i x1 = _mm256_srli_epi64(x, 32), y1 = _mm256_srli_epi64(y, 32);
    const __m256i low = _mm256_mul_epu32(x, y);
    const __m256i mid = _mm256_add_epi64(_mm256_mul_epu32(x1, y), _mm256_mul_epu32(x, y1));
    const __m256i high = _mm256_mul_epu32(x1, y1);
    __m256i t = _mm256_add_epi64(_mm256_slli_epi64(high, 3),
                                 _mm256_slli_epi64(_mm256_and_si256(mid, L29), 32));
    t = _mm256_add_epi64(t, _mm256_srli_epi64(mid, 29));
    t = _mm256_add_epi64(t, _mm256_and_si256(low, M));
    t = _mm256_add_epi64(t, _mm256_srli_epi64(low, 61));
    t = _mm256_add_epi64(_mm256_and_si256(t, M), _mm256_srli_epi64(t, 61));
    /* t < 2^62: a signed comparison; subtract p where t >= p */
    return _mm256_sub_epi64(t, _mm256_and_si256(_mm256_cmpgt_epi64(t, Mm1), M));
}

/* Level avx2, two arrays: the same arithmetic in explicit 4-lane vectors, so that the
 * results go out with streaming stores when the arrays are far larger than the caches
 * (`stream`: the output's lines are then not read first, a quarter of the memory traffic).
 * The range check: some operand is >= 2^61 - 1 iff one has a bit >= 61 set or equals
 * 2^61 - 1; the vector part reports that as ~0 (the caller only compares with p). */
PPML_TARGET_AVX2 static uint64_t shr_mul_m61_avx2(const uint64_t *a, int64_t sa,
                                                 const uint64_t *b, int64_t sb, uint64_t *out,
                                                 int64_t lo, int64_t hi, int stream)
{
    if (!(sa && sb) || hi - lo < 64) return shr_mul_m61_body(a, sa, b, sb, out, lo, hi);
    int64_t i = lo;
    uint64_t m = 0;
    if (stream) /* scalar head up to a 32-byte boundary of out */
        while (i < hi && ((uintptr_t)(out + i) & 31)) i++;
    m = shr_mul_m61_body(a, 1, b, 1, out, lo, i);
    const __m256i M = _mm256_set1_epi64x((long long)SHR_M61);
    __m256i bits = _mm256_setzero_si256(), eq = bits;
    const int64_t end = i + (hi - i) / 4 * 4;
    for (; i < end; i += 4) {
        const __m256i x = _mm256_loadu_si256((const __m256i *)(a + i));
        const __m256i y = _mm256_loadu_si256((const __m256i *)(b + i));
        bits = _mm256_or_si256(bits, _mm256_or_si256(x, y));
        eq = _mm256_or_si256(eq, _mm256_or_si256(_mm256_cmpeq_epi64(x, M),
                                                 _mm256_cmpeq_epi64(y, M)));
        const __m256i t = shr_m61_mul_v(x, y);
        if (stream) _mm256_stream_si256((__m256i *)(out + i), t);
        else _mm256_storeu_si256((__m256i *)(out + i), t);
    }
    if (stream) _mm_sfence();
    const uint64_t mt = shr_mul_m61_body(a, 1, b, 1, out, i, hi);
    m = mt > m ? mt : m;
    bits = _mm256_or_si256(_mm256_srli_epi64(bits, 61), eq);
    if (!_mm256_testz_si256(bits, bits)) m = ~UINT64_C(0);
    return m;
}
#endif

/* The same for a general prime (Barrett on 64-bit words).  Scalar at the generic and
 * avx512 levels (compilers do not vectorise 64 x 64 -> 128-bit products); the avx2 level
 * has an explicit 4-lane body below and runs this one on the remainders. */
#define SHR_BARRETT_BODY(XI, YI)                                                           \
    {                                                                                      \
        const uint64_t x = (XI), y = (YI);                                                 \
        mx = x > mx ? x : mx;                                                              \
        my = y > my ? y : my;                                                              \
        uint64_t h;                                                                        \
        const uint64_t l = shr_mul_wide(x, y, &h);                                         \
        const uint64_t q1 = (h << s1) | (l >> s2);                                         \
        uint64_t h2;                                                                       \
        const uint64_t l2 = shr_mul_wide(q1, mu, &h2);                                     \
        const uint64_t q = (h2 << s3) | (l2 >> s4);                                        \
        /* r in [0, 3p): two masked subtractions, no branch (r >= p is random data) */    \
        uint64_t r = l - q * p;                                                            \
        r -= p & (UINT64_C(0) - (uint64_t)(r >= p));                                       \
        r -= p & (UINT64_C(0) - (uint64_t)(r >= p));                                       \
        out[i] = r;                                                                        \
    }

SHR_INLINE uint64_t shr_mul_barrett_body(const uint64_t *a, int64_t sa, const uint64_t *b,
                                         int64_t sb, uint64_t *out, int64_t lo, int64_t hi,
                                         const shr_field *f)
{
    const uint64_t p = f->p, mu = f->mu;
    const int s1 = 65 - f->k, s2 = f->k - 1, s3 = 63 - f->k, s4 = f->k + 1;
    uint64_t mx = 0, my = 0;
    if (sa && sb) {
        for (int64_t i = lo; i < hi; i++) SHR_BARRETT_BODY(a[i], b[i])
    } else if (sa) {
        for (int64_t i = lo; i < hi; i++) SHR_BARRETT_BODY(a[i], b[0])
    } else if (sb) {
        for (int64_t i = lo; i < hi; i++) SHR_BARRETT_BODY(a[0], b[i])
    } else {
        for (int64_t i = lo; i < hi; i++) SHR_BARRETT_BODY(a[0], b[0])
    }
    return mx > my ? mx : my;
}
static uint64_t shr_mul_barrett_generic(const uint64_t *a, int64_t sa, const uint64_t *b,
                                        int64_t sb, uint64_t *out, int64_t lo, int64_t hi,
                                        const shr_field *f)
{
    return shr_mul_barrett_body(a, sa, b, sb, out, lo, hi, f);
}

#if PPML_X86
PPML_TARGET_AVX512 static uint64_t shr_mul_barrett_avx512(const uint64_t *a, int64_t sa,
                                                         const uint64_t *b, int64_t sb,
                                                         uint64_t *out, int64_t lo,
                                                         int64_t hi, const shr_field *f)
{
    return shr_mul_barrett_body(a, sa, b, sb, out, lo, hi, f);
}

/* The 128-bit products u v of four lane pairs (u, v < 2^64 with u1 v0 + u0 v1 +
 * (u0 v0 >> 32) < 2^64, true when both high halves u1, v1 < 2^31) from four 32 x 32 ->
 * 64-bit products (vpmuludq): u v = (*p11 2^32 + *t) 2^32 + (*p00 mod 2^32), where the
 * middle sum *t takes the low product's carry-out, so no carry needs detecting. */
PPML_TARGET_AVX2 SHR_INLINE void shr_mul_wide_avx2(__m256i u, __m256i u1, __m256i v, __m256i v1,
                                                  __m256i *p00, __m256i *t, __m256i *p11)
{
    *p00 = _mm256_mul_epu32(u, v);
    const __m256i mid = _mm256_add_epi64(_mm256_mul_epu32(u, v1), _mm256_mul_epu32(u1, v));
    *t = _mm256_add_epi64(mid, _mm256_srli_epi64(*p00, 32));
    *p11 = _mm256_mul_epu32(u1, v1);
}

/* The constants of the 4-lane Barrett body, broadcast once per call; s1..s4 are Barrett's
 * shift counts (SHR_BARRETT_BODY), s5 = k - 33 and s6 = k - 31 those of the shortcut for
 * p > 2^32. */
typedef struct {
    __m256i p, p1, mu, mu1;
    __m128i s1, s2, s3, s4, s5, s6;
} shr_barrett_avx2_k;

/* x y mod p in four lanes for x, y < p: the steps of SHR_BARRETT_BODY (the same shifts
 * and mu, so the same q).  x, y < 2^62 and q1 < 2^63, mu < 2^63 meet shr_mul_wide_avx2's
 * bound.  With the product as (h 2^32 + t) 2^32 + (l mod 2^32), a right shift by
 * s >= 32 of it is (h << (64 - s)) + (t >> (s - 32)) (the low word drops out): when
 * `wide` (k >= 33) both of Barrett's shifts take that form, with no 64-bit words to
 * assemble.  The low word of q p needs three products.  r = x - q p is in [0, 3p): r - p
 * has its top bit set iff r < p (p < 2^62), and that bit drives the blends of the two
 * conditional subtractions. */
PPML_TARGET_AVX2 SHR_INLINE __m256i shr_barrett4_avx2(__m256i x, __m256i y,
                                                     const shr_barrett_avx2_k *c,
                                                     const int wide)
{
    __m256i p00, t, p11, u00, ut, u11, q1, q;
    const __m256i x1 = _mm256_srli_epi64(x, 32), y1 = _mm256_srli_epi64(y, 32);
    shr_mul_wide_avx2(x, x1, y, y1, &p00, &t, &p11);
    /* the low word of x y: the middle products' low halves go to the top half */
    const __m256i l = _mm256_blend_epi32(p00, _mm256_slli_epi64(t, 32), 0xaa);
    if (wide) {
        q1 = _mm256_add_epi64(_mm256_sll_epi64(p11, c->s1), _mm256_srl_epi64(t, c->s5));
    } else {
        const __m256i h = _mm256_add_epi64(p11, _mm256_srli_epi64(t, 32));
        q1 = _mm256_or_si256(_mm256_sll_epi64(h, c->s1), _mm256_srl_epi64(l, c->s2));
    }
    shr_mul_wide_avx2(q1, _mm256_srli_epi64(q1, 32), c->mu, c->mu1, &u00, &ut, &u11);
    if (wide) {
        q = _mm256_add_epi64(_mm256_sll_epi64(u11, c->s3), _mm256_srl_epi64(ut, c->s6));
    } else {
        const __m256i h2 = _mm256_add_epi64(u11, _mm256_srli_epi64(ut, 32));
        const __m256i l2 = _mm256_blend_epi32(u00, _mm256_slli_epi64(ut, 32), 0xaa);
        q = _mm256_or_si256(_mm256_sll_epi64(h2, c->s3), _mm256_srl_epi64(l2, c->s4));
    }
    const __m256i qp_mid = _mm256_add_epi64(_mm256_mul_epu32(q, c->p1),
                                            _mm256_mul_epu32(_mm256_srli_epi64(q, 32), c->p));
    const __m256i qp = _mm256_add_epi64(_mm256_mul_epu32(q, c->p), _mm256_slli_epi64(qp_mid, 32));
    __m256i r = _mm256_sub_epi64(l, qp);
    for (int j = 0; j < 2; j++) {
        const __m256d d = _mm256_castsi256_pd(_mm256_sub_epi64(r, c->p));
        r = _mm256_castpd_si256(_mm256_blendv_pd(d, _mm256_castsi256_pd(r), d));
    }
    return r;
}

/* acc (top bits flipped) = the lane-wise unsigned maximum of acc and v, for the range
 * check: AVX2 has only signed 64-bit comparisons. */
PPML_TARGET_AVX2 SHR_INLINE __m256i shr_umax_acc_avx2(__m256i acc, __m256i v, __m256i sign)
{
    const __m256i vf = _mm256_xor_si256(v, sign);
    return _mm256_blendv_epi8(acc, vf, _mm256_cmpgt_epi64(vf, acc));
}

/* One loop of the 4-lane body; XV, YV load (or hold) the operands of lanes i..i+3, and
 * the strided ones (MX, MY nonzero) feed the range check's accumulator. */
#define SHR_BARRETT_AVX2_LOOP(XV, YV, MX, MY, WIDE)                                          \
    for (; i < end; i += 4) {                                                              \
        const __m256i x = (XV), y = (YV);                                                  \
        if (MX) acc = shr_umax_acc_avx2(acc, x, sign);                                      \
        if (MY) acc = shr_umax_acc_avx2(acc, y, sign);                                      \
        const __m256i r = shr_barrett4_avx2(x, y, &c, WIDE);                               \
        if (stream) _mm256_stream_si256((__m256i *)(out + i), r);                          \
        else _mm256_storeu_si256((__m256i *)(out + i), r);                                 \
    }

/* Level avx2: out[i] = a[i sa] b[i sb] mod p in 4-lane vectors (all four stride cases),
 * the scalar body on the head (up to a 32-byte boundary of out when `stream`: then the
 * results go out with streaming stores, as in shr_mul_m61_avx2) and on the tail.  Returns
 * the largest operand seen, as the scalar body does. */
PPML_TARGET_AVX2 static uint64_t shr_mul_barrett_avx2(const uint64_t *a, int64_t sa,
                                                     const uint64_t *b, int64_t sb,
                                                     uint64_t *out, int64_t lo, int64_t hi,
                                                     const shr_field *f, int stream)
{
    if (hi - lo < 16) return shr_mul_barrett_body(a, sa, b, sb, out, lo, hi, f);
    int64_t i = lo;
    if (stream)
        while (i < hi && ((uintptr_t)(out + i) & 31)) i++;
    uint64_t m = shr_mul_barrett_body(a, sa, b, sb, out, lo, i, f);
    const int k = f->k;
    const shr_barrett_avx2_k c = {
        _mm256_set1_epi64x((long long)f->p),
        _mm256_set1_epi64x((long long)(f->p >> 32)),
        _mm256_set1_epi64x((long long)f->mu),
        _mm256_set1_epi64x((long long)(f->mu >> 32)),
        _mm_cvtsi32_si128(65 - k),
        _mm_cvtsi32_si128(k - 1),
        _mm_cvtsi32_si128(63 - k),
        _mm_cvtsi32_si128(k + 1),
        _mm_cvtsi32_si128(k >= 33 ? k - 33 : 0),
        _mm_cvtsi32_si128(k >= 33 ? k - 31 : 0),
    };
    const __m256i sign = _mm256_set1_epi64x((long long)(UINT64_C(1) << 63));
    __m256i acc = sign; /* 0 with its top bit flipped */
    const int64_t end = i + (hi - i) / 4 * 4;
    const __m256i xb = _mm256_set1_epi64x((long long)a[0]);
    const __m256i yb = _mm256_set1_epi64x((long long)b[0]);
#define SHR_LOAD(P) _mm256_loadu_si256((const __m256i *)((P) + i))
/* the loop for one stride case, with or without the shortcut for k >= 33 */
#define SHR_BARRETT_AVX2_CASE(XV, YV, MX, MY)                                              \
    if (k >= 33) {                                                                         \
        SHR_BARRETT_AVX2_LOOP(XV, YV, MX, MY, 1)                                           \
    } else {                                                                               \
        SHR_BARRETT_AVX2_LOOP(XV, YV, MX, MY, 0)                                           \
    }
    if (sa && sb) {
        SHR_BARRETT_AVX2_CASE(SHR_LOAD(a), SHR_LOAD(b), 1, 1)
    } else if (sa) {
        SHR_BARRETT_AVX2_CASE(SHR_LOAD(a), yb, 1, 0)
    } else if (sb) {
        SHR_BARRETT_AVX2_CASE(xb, SHR_LOAD(b), 0, 1)
    } else {
        SHR_BARRETT_AVX2_CASE(xb, yb, 0, 0)
    }
#undef SHR_BARRETT_AVX2_CASE
#undef SHR_LOAD
    /* the broadcast operands (seen: the range is not empty) */
    if (!sa) m = a[0] > m ? a[0] : m;
    if (!sb) m = b[0] > m ? b[0] : m;
    if (stream) _mm_sfence();
    const uint64_t mt = shr_mul_barrett_body(a, sa, b, sb, out, i, hi, f);
    m = mt > m ? mt : m;
    uint64_t lanes[4];
    _mm256_storeu_si256((__m256i *)lanes, _mm256_xor_si256(acc, sign));
    for (int j = 0; j < 4; j++) m = lanes[j] > m ? lanes[j] : m;
    return m;
}
#undef SHR_BARRETT_AVX2_LOOP
#endif

/* Returns the largest field operand seen in [lo, hi) (0 for ring POW). */
static uint64_t shr_binop_range(int isa, int stream, int op, const uint64_t *a, int64_t sa,
                                const uint64_t *b, int64_t sb, uint64_t *out, int64_t lo,
                                int64_t hi, uint64_t p, const shr_field *f)
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
#if PPML_X86
            if (isa == PPML_ISA_AVX2) {
                m = shr_mul_m61_avx2(a, sa, b, sb, out, lo, hi, stream);
                break;
            }
            if (isa >= PPML_ISA_AVX512) {
                m = shr_mul_m61_avx512(a, sa, b, sb, out, lo, hi);
                break;
            }
#endif
            m = shr_mul_m61_generic(a, sa, b, sb, out, lo, hi);
        } else {
#if PPML_X86
            if (isa == PPML_ISA_AVX2) {
                m = shr_mul_barrett_avx2(a, sa, b, sb, out, lo, hi, f, stream);
                break;
            }
            if (isa >= PPML_ISA_AVX512) {
                m = shr_mul_barrett_avx512(a, sa, b, sb, out, lo, hi, f);
                break;
            }
#endif
            m = shr_mul_barrett_generic(a, sa, b, sb, out, lo, hi, f);
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
    const int isa = ppml_isa;
    shr_field f = {0, 0, 0, 0};
    int bad = 0;
    if (p) f = shr_make_field(p);
    /* streaming stores past 2^21 words (16 MiB) an array: three such arrays outgrow L3 */
    const int stream = n >= (INT64_C(1) << 21);
    if (n < 32768) nthreads = 1;
#pragma omp parallel num_threads(nthreads) reduction(| : bad)
    {
        const int64_t tid = omp_get_thread_num(), nt = omp_get_num_threads();
        const uint64_t m = shr_binop_range(isa, stream, op, a, sa, b, sb, out, n * tid / nt,
                                           n * (tid + 1) / nt, p, &f);
        bad |= p && m >= p;
    }
    return bad;
}

/* The largest x[i] for i in [lo, hi) (0 when empty): the field operands' range check. */
SHR_INLINE uint64_t shr_max_range_body(const uint64_t *x, int64_t lo, int64_t hi)
{
    uint64_t m = 0;
    for (int64_t i = lo; i < hi; i++) m = x[i] > m ? x[i] : m;
    return m;
}
SHR_LEVELS(uint64_t, shr_max_range, (const uint64_t *x, int64_t lo, int64_t hi), (x, lo, hi))

/* 1 if some x[i] >= p (i < n), on all threads. */
static int shr_any_ge(const uint64_t *x, int64_t n, uint64_t p, int nthreads)
{
    const int isa = ppml_isa;
    int bad = 0;
    if (n < 65536) nthreads = 1;
#pragma omp parallel num_threads(nthreads) reduction(| : bad)
    {
        const int64_t tid = omp_get_thread_num(), nt = omp_get_num_threads();
        const int64_t lo = n * tid / nt, hi = n * (tid + 1) / nt;
        bad |= hi > lo && SHR_AT(isa, shr_max_range, (x, lo, hi)) >= p;
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
 * integer sums are associative, so any blocking gives numpy's exact result.
 *
 * Levels generic and avx512: blocks of 32 columns of C and B (a B panel of KB rows x 32
 * columns stays in L1/L2), 4 rows of C at a time in registers, 64-byte vectors that the
 * compiler lowers to the level's instructions (avx512: vpmullq multiplies 8 uint64 at
 * once); rows of C split across threads.  Level avx2: packed panels and a 3 x 8
 * micro-kernel (below). */
#define SHR_MM_NB 32
#define SHR_MM_KB 256

#if defined(__GNUC__) || defined(__clang__)
#define SHR_MM_VECTORS 1
/* 64-byte vectors: the compiler lowers them to what each target has. Loads and stores are
 * macros, not functions: a function that returns such a vector outside AVX-512 code has
 * no agreed ABI (clang refuses it; GCC warns). */
typedef uint64_t shr_v8 __attribute__((vector_size(64)));
#define SHR_LD(v, p) __builtin_memcpy(&(v), (p), sizeof(shr_v8))
#define SHR_ST(p, v) __builtin_memcpy((p), &(v), sizeof(shr_v8))

/* 4 rows x 32 columns of C in 16 vector registers, over k in [k0, k1); compiled once per
 * level below. */
#define SHR_MM_MICRO_BODY \
    uint64_t *c0 = C + i * M + j0, *c1 = c0 + M, *c2 = c1 + M, *c3 = c2 + M;                        \
    shr_v8 x00, x01, x02, x03; SHR_LD(x00, c0); SHR_LD(x01, c0 + 8); SHR_LD(x02, c0 + 16); SHR_LD(x03, c0 + 24);    \
    shr_v8 x10, x11, x12, x13; SHR_LD(x10, c1); SHR_LD(x11, c1 + 8); SHR_LD(x12, c1 + 16); SHR_LD(x13, c1 + 24);    \
    shr_v8 x20, x21, x22, x23; SHR_LD(x20, c2); SHR_LD(x21, c2 + 8); SHR_LD(x22, c2 + 16); SHR_LD(x23, c2 + 24);    \
    shr_v8 x30, x31, x32, x33; SHR_LD(x30, c3); SHR_LD(x31, c3 + 8); SHR_LD(x32, c3 + 16); SHR_LD(x33, c3 + 24);    \
    const uint64_t *a = A + i * K;                                                                  \
    for (int64_t kk = k0; kk < k1; kk++) {                                                          \
        const uint64_t *b = B + kk * M + j0;                                                        \
        shr_v8 b0, b1, b2, b3; SHR_LD(b0, b); SHR_LD(b1, b + 8); SHR_LD(b2, b + 16); SHR_LD(b3, b + 24); \
        const uint64_t a0 = a[kk], a1 = a[K + kk], a2 = a[2 * K + kk], a3 = a[3 * K + kk];          \
        x00 += a0 * b0; x01 += a0 * b1; x02 += a0 * b2; x03 += a0 * b3;                             \
        x10 += a1 * b0; x11 += a1 * b1; x12 += a1 * b2; x13 += a1 * b3;                             \
        x20 += a2 * b0; x21 += a2 * b1; x22 += a2 * b2; x23 += a2 * b3;                             \
        x30 += a3 * b0; x31 += a3 * b1; x32 += a3 * b2; x33 += a3 * b3;                             \
    }                                                                                               \
    SHR_ST(c0, x00); SHR_ST(c0 + 8, x01); SHR_ST(c0 + 16, x02); SHR_ST(c0 + 24, x03);               \
    SHR_ST(c1, x10); SHR_ST(c1 + 8, x11); SHR_ST(c1 + 16, x12); SHR_ST(c1 + 24, x13);               \
    SHR_ST(c2, x20); SHR_ST(c2 + 8, x21); SHR_ST(c2 + 16, x22); SHR_ST(c2 + 24, x23);               \
    SHR_ST(c3, x30); SHR_ST(c3 + 8, x31); SHR_ST(c3 + 16, x32); SHR_ST(c3 + 24, x33);

#if PPML_X86
PPML_TARGET_AVX512 static void shr_mm_micro_avx512(const uint64_t *A, const uint64_t *B,
                                                  uint64_t *C, int64_t i, int64_t k0,
                                                  int64_t k1, int64_t j0, int64_t K, int64_t M)
{
    SHR_MM_MICRO_BODY
}
#endif

static void shr_mm_micro_generic(const uint64_t *A, const uint64_t *B, uint64_t *C, int64_t i,
                                 int64_t k0, int64_t k1, int64_t j0, int64_t K, int64_t M)
{
    SHR_MM_MICRO_BODY
}
#else
#define SHR_MM_VECTORS 0
#endif

static void shr_mm_block(int isa, const uint64_t *A, const uint64_t *B, uint64_t *C,
                         int64_t i0, int64_t i1, int64_t k0, int64_t k1, int64_t j0,
                         int64_t j1, int64_t K, int64_t M)
{
    int64_t i = i0;
#if SHR_MM_VECTORS
    if (j1 - j0 == 32)
        for (; i + 4 <= i1; i += 4) {
#if PPML_X86
            if (isa >= PPML_ISA_AVX512) {
                shr_mm_micro_avx512(A, B, C, i, k0, k1, j0, K, M);
                continue;
            }
#endif
            shr_mm_micro_generic(A, B, C, i, k0, k1, j0, K, M);
        }
#endif
    (void)isa;
    for (; i < i1; i++) {
        uint64_t *c = C + i * M;
        for (int64_t kk = k0; kk < k1; kk++) {
            const uint64_t a = A[i * K + kk];
            const uint64_t *b = B + kk * M;
            for (int64_t j = j0; j < j1; j++) c[j] += a * b[j];
        }
    }
}

static void shr_matmul_ring_blocked(int isa, const uint64_t *A, const uint64_t *B, uint64_t *C,
                                    int64_t N, int64_t K, int64_t M, int nthreads)
{
    const int64_t nib = (N + 63) / 64;
#pragma omp parallel for num_threads(nthreads) schedule(dynamic, 1)
    for (int64_t ib = 0; ib < nib; ib++) {
        const int64_t i0 = ib * 64, i1 = i0 + 64 < N ? i0 + 64 : N;
        for (int64_t k0 = 0; k0 < K; k0 += SHR_MM_KB) {
            const int64_t k1 = k0 + SHR_MM_KB < K ? k0 + SHR_MM_KB : K;
            for (int64_t j0 = 0; j0 < M; j0 += SHR_MM_NB) {
                const int64_t j1 = j0 + SHR_MM_NB < M ? j0 + SHR_MM_NB : M;
                shr_mm_block(isa, A, B, C, i0, i1, k0, k1, j0, j1, K, M);
            }
        }
    }
}

#if PPML_X86
/* Level avx2.  AVX2 has no 64-bit multiply-low; with a = a1 2^32 + a0 and b = b1 2^32 + b0,
 * a b mod 2^64 = a0 b0 + 2^32 ((a0 b1 + a1 b0) mod 2^32).  The full a0 b0 is vpmuludq's
 * product (accumulated with vpaddq); the two cross terms are one vpmulld of the broadcast a
 * against b with its 32-bit halves swapped (lanes a0 b1 and a1 b0, mod 2^32), accumulated
 * with vpaddd in 32-bit lanes and folded once per tile: two multiplies per four products.
 *
 * Packing: B in panels of SHR_MR_NR = 8 columns (zero padded) for each block of SHR_MR_KC
 * rows, each row of a panel stored as its 8 words and then the same 8 with halves swapped;
 * A in strips of SHR_MR_MR = 3 rows (zero padded), k-major.  The micro-kernel keeps a
 * 3 x 8 tile in 12 registers (6 low-product and 6 cross accumulators) over one K block;
 * the panels of SHR_MR_NC columns of one K block (kc x NC x 16 bytes) stay in L2 while a
 * chunk of SHR_MR_CHUNK strips passes over them.  Threads take chunks dynamically. */
#define SHR_MR_MR 3
#define SHR_MR_NR 8
#define SHR_MR_KC 256
#define SHR_MR_NC 96
#define SHR_MR_CHUNK 16

/* tile[0..24) = the 3 x 8 products of the strip Ap (kc x 3) and the panel Bp (kc x 16),
 * over kc >= 0 values of k; tile[24..48) is scratch.  The loop is written in assembly so
 * that the 12 accumulators stay in registers (compilers spill some of them). */
PPML_TARGET_AVX2 static void shr_mm_micro_avx2(const uint64_t *Ap, const uint64_t *Bp,
                                              int64_t kc, uint64_t *tile)
{
    /* ymm0..5: low products of rows 0..2 (two vectors each); ymm6..11: their cross terms;
     * ymm12/13: the panel row; ymm14: the broadcast A element; ymm15: a product */
    __asm__ volatile(
        "vpxor %%xmm0, %%xmm0, %%xmm0\n\t"
        "vmovdqa %%ymm0, %%ymm1\n\t"
        "vmovdqa %%ymm0, %%ymm2\n\t"
        "vmovdqa %%ymm0, %%ymm3\n\t"
        "vmovdqa %%ymm0, %%ymm4\n\t"
        "vmovdqa %%ymm0, %%ymm5\n\t"
        "vmovdqa %%ymm0, %%ymm6\n\t"
        "vmovdqa %%ymm0, %%ymm7\n\t"
        "vmovdqa %%ymm0, %%ymm8\n\t"
        "vmovdqa %%ymm0, %%ymm9\n\t"
        "vmovdqa %%ymm0, %%ymm10\n\t"
        "vmovdqa %%ymm0, %%ymm11\n\t"
        "test %[k], %[k]\n\t"
        "jle 2f\n\t"
        ".p2align 4\n"
        "1:\n\t"
        "vmovdqu (%[b]), %%ymm12\n\t"
        "vmovdqu 32(%[b]), %%ymm13\n\t"
        "vpbroadcastq 0(%[a]), %%ymm14\n\t"
        "vpmuludq %%ymm12, %%ymm14, %%ymm15\n\t"
        "vpaddq %%ymm15, %%ymm0, %%ymm0\n\t"
        "vpmuludq %%ymm13, %%ymm14, %%ymm15\n\t"
        "vpaddq %%ymm15, %%ymm1, %%ymm1\n\t"
        "vpmulld 64(%[b]), %%ymm14, %%ymm15\n\t"
        "vpaddd %%ymm15, %%ymm6, %%ymm6\n\t"
        "vpmulld 96(%[b]), %%ymm14, %%ymm15\n\t"
        "vpaddd %%ymm15, %%ymm7, %%ymm7\n\t"
        "vpbroadcastq 8(%[a]), %%ymm14\n\t"
        "vpmuludq %%ymm12, %%ymm14, %%ymm15\n\t"
        "vpaddq %%ymm15, %%ymm2, %%ymm2\n\t"
        "vpmuludq %%ymm13, %%ymm14, %%ymm15\n\t"
        "vpaddq %%ymm15, %%ymm3, %%ymm3\n\t"
        "vpmulld 64(%[b]), %%ymm14, %%ymm15\n\t"
        "vpaddd %%ymm15, %%ymm8, %%ymm8\n\t"
        "vpmulld 96(%[b]), %%ymm14, %%ymm15\n\t"
        "vpaddd %%ymm15, %%ymm9, %%ymm9\n\t"
        "vpbroadcastq 16(%[a]), %%ymm14\n\t"
        "vpmuludq %%ymm12, %%ymm14, %%ymm15\n\t"
        "vpaddq %%ymm15, %%ymm4, %%ymm4\n\t"
        "vpmuludq %%ymm13, %%ymm14, %%ymm15\n\t"
        "vpaddq %%ymm15, %%ymm5, %%ymm5\n\t"
        "vpmulld 64(%[b]), %%ymm14, %%ymm15\n\t"
        "vpaddd %%ymm15, %%ymm10, %%ymm10\n\t"
        "vpmulld 96(%[b]), %%ymm14, %%ymm15\n\t"
        "vpaddd %%ymm15, %%ymm11, %%ymm11\n\t"
        "add $24, %[a]\n\t"
        "add $128, %[b]\n\t"
        "dec %[k]\n\t"
        "jnz 1b\n"
        "2:\n\t"
        "vmovdqu %%ymm0, 0(%[t])\n\t"
        "vmovdqu %%ymm1, 32(%[t])\n\t"
        "vmovdqu %%ymm2, 64(%[t])\n\t"
        "vmovdqu %%ymm3, 96(%[t])\n\t"
        "vmovdqu %%ymm4, 128(%[t])\n\t"
        "vmovdqu %%ymm5, 160(%[t])\n\t"
        "vmovdqu %%ymm6, 192(%[t])\n\t"
        "vmovdqu %%ymm7, 224(%[t])\n\t"
        "vmovdqu %%ymm8, 256(%[t])\n\t"
        "vmovdqu %%ymm9, 288(%[t])\n\t"
        "vmovdqu %%ymm10, 320(%[t])\n\t"
        "vmovdqu %%ymm11, 352(%[t])\n\t"
        "vzeroupper\n\t"
        : [a] "+r"(Ap), [b] "+r"(Bp), [k] "+r"(kc)
        : [t] "r"(tile)
        : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",
          "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "memory", "cc");
    /* fold: low product + ((cross low lane + cross high lane) mod 2^32) 2^32 */
    for (int v = 0; v < 6; v++) {
        const __m256i l = _mm256_loadu_si256((const __m256i *)(tile + 4 * v));
        const __m256i c = _mm256_loadu_si256((const __m256i *)(tile + 24 + 4 * v));
        const __m256i x = _mm256_slli_epi64(_mm256_add_epi32(c, _mm256_srli_epi64(c, 32)), 32);
        _mm256_storeu_si256((__m256i *)(tile + 4 * v), _mm256_add_epi64(l, x));
    }
}

/* C[0..h) x [0..w) += the tile (rows of 8). */
PPML_TARGET_AVX2 static void shr_mm_tile_add_avx2(const uint64_t *tile, uint64_t *C,
                                                 int64_t M, int64_t h, int64_t w)
{
    if (h == SHR_MR_MR && w == SHR_MR_NR) {
        for (int r = 0; r < SHR_MR_MR; r++)
            for (int v = 0; v < 2; v++) {
                __m256i *c = (__m256i *)(C + r * M + 4 * v);
                const __m256i t = _mm256_loadu_si256((const __m256i *)(tile + r * 8 + 4 * v));
                _mm256_storeu_si256(c, _mm256_add_epi64(_mm256_loadu_si256(c), t));
            }
    } else {
        for (int64_t r = 0; r < h; r++)
            for (int64_t j = 0; j < w; j++) C[r * M + j] += tile[r * SHR_MR_NR + j];
    }
}

/* 64-byte aligned memory from malloc: the aligned pointer, the block to free in *raw. */
static uint64_t *shr_alloc64(size_t words, void **raw)
{
    *raw = malloc(words * 8 + 64);
    if (!*raw) return NULL;
    return (uint64_t *)(((uintptr_t)*raw + 63) & ~(uintptr_t)63);
}

/* Returns 0 when the packing buffers could not be allocated (nothing done). */
static int shr_matmul_ring_avx2(const uint64_t *A, const uint64_t *B, uint64_t *C, int64_t N,
                                int64_t K, int64_t M, int nthreads)
{
    const int64_t np = (M + SHR_MR_NR - 1) / SHR_MR_NR, Mp = np * SHR_MR_NR;
    const int64_t nkb = (K + SHR_MR_KC - 1) / SHR_MR_KC;
    const int64_t ns = (N + SHR_MR_MR - 1) / SHR_MR_MR, Np = ns * SHR_MR_MR;
    const int64_t nch = (ns + SHR_MR_CHUNK - 1) / SHR_MR_CHUNK;
    void *rawa, *rawb;
    uint64_t *Bp = shr_alloc64((size_t)(K * Mp) * 2, &rawb);
    uint64_t *Ap = shr_alloc64((size_t)(K * Np), &rawa);
    if (!Ap || !Bp) {
        free(rawa);
        free(rawb);
        return 0;
    }
#pragma omp parallel num_threads(nthreads)
    {
        /* B block (kb, panel jp) at Bp + 2 (k0 Mp + jp kc 8): per k, 8 words then the
         * same 8 with their halves swapped */
#pragma omp for schedule(static) collapse(2) nowait
        for (int64_t kb = 0; kb < nkb; kb++)
            for (int64_t jp = 0; jp < np; jp++) {
                const int64_t k0 = kb * SHR_MR_KC, k1 = k0 + SHR_MR_KC < K ? k0 + SHR_MR_KC : K;
                const int64_t j0 = jp * SHR_MR_NR, w = M - j0 < SHR_MR_NR ? M - j0 : SHR_MR_NR;
                uint64_t *dst = Bp + 2 * (k0 * Mp + jp * (k1 - k0) * SHR_MR_NR);
                for (int64_t k = k0; k < k1; k++, dst += 2 * SHR_MR_NR) {
                    const uint64_t *src = B + k * M + j0;
                    for (int64_t j = 0; j < SHR_MR_NR; j++) {
                        const uint64_t v = j < w ? src[j] : 0;
                        dst[j] = v;
                        dst[SHR_MR_NR + j] = (v >> 32) | (v << 32);
                    }
                }
            }
        /* A strip s of K block kb at Ap + k0 Np + s kc 3: per k, the strip's 3 words */
#pragma omp for schedule(static) collapse(2)
        for (int64_t kb = 0; kb < nkb; kb++)
            for (int64_t s = 0; s < ns; s++) {
                const int64_t k0 = kb * SHR_MR_KC, k1 = k0 + SHR_MR_KC < K ? k0 + SHR_MR_KC : K;
                const int64_t i0 = s * SHR_MR_MR, h = N - i0 < SHR_MR_MR ? N - i0 : SHR_MR_MR;
                uint64_t *dst = Ap + k0 * Np + s * (k1 - k0) * SHR_MR_MR;
                for (int64_t r = 0; r < SHR_MR_MR; r++) {
                    const uint64_t *src = A + (i0 + r) * K;
                    for (int64_t k = k0; k < k1; k++)
                        dst[(k - k0) * SHR_MR_MR + r] = r < h ? src[k] : 0;
                }
            }
        uint64_t tile[2 * SHR_MR_MR * SHR_MR_NR];
        /* chunks of SHR_MR_CHUNK strips, taken dynamically: a thread that the operating
         * system holds back does not hold up the others */
#pragma omp for schedule(dynamic, 1)
        for (int64_t ch = 0; ch < nch; ch++) {
            const int64_t s0 = ch * SHR_MR_CHUNK;
            const int64_t s1 = s0 + SHR_MR_CHUNK < ns ? s0 + SHR_MR_CHUNK : ns;
            for (int64_t jc = 0; jc < np; jc += SHR_MR_NC / SHR_MR_NR) {
                const int64_t je0 = jc + SHR_MR_NC / SHR_MR_NR, je = je0 < np ? je0 : np;
                for (int64_t kb = 0; kb < nkb; kb++) {
                    const int64_t k0 = kb * SHR_MR_KC, k1 = k0 + SHR_MR_KC < K ? k0 + SHR_MR_KC : K;
                    const int64_t kc = k1 - k0;
                    for (int64_t s = s0; s < s1; s++) {
                        const int64_t i0 = s * SHR_MR_MR;
                        const int64_t h = N - i0 < SHR_MR_MR ? N - i0 : SHR_MR_MR;
                        const uint64_t *as = Ap + k0 * Np + s * kc * SHR_MR_MR;
                        for (int64_t jp = jc; jp < je; jp++) {
                            const int64_t j0 = jp * SHR_MR_NR;
                            const int64_t w = M - j0 < SHR_MR_NR ? M - j0 : SHR_MR_NR;
                            const uint64_t *bs = Bp + 2 * (k0 * Mp + jp * kc * SHR_MR_NR);
                            shr_mm_micro_avx2(as, bs, kc, tile);
                            shr_mm_tile_add_avx2(tile, C + i0 * M + j0, M, h, w);
                        }
                    }
                }
            }
        }
    }
    free(rawa);
    free(rawb);
    return 1;
}
#endif

static void shr_matmul_ring(const uint64_t *A, const uint64_t *B, uint64_t *C, int64_t N,
                            int64_t K, int64_t M, int nthreads)
{
    const int isa = ppml_isa;
    memset(C, 0, (size_t)(N * M) * 8);
    if (N * K * M < 262144) nthreads = 1;
#if PPML_X86
    if (isa == PPML_ISA_AVX2 && shr_matmul_ring_avx2(A, B, C, N, K, M, nthreads)) return;
#endif
    shr_matmul_ring_blocked(isa, A, B, C, N, K, M, nthreads);
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
                const uint64_t vr = f.k >= 28 ? shr_reduce64(v, &f) : v % p;
                s = shr_addmod(s, shr_mulmod(vr, coef[d], &f), p);
            }
            out[r * m + c] = s;
        }
    }
}

/* x * z mod 2^61 - 1 for x < 2^61 and a small z < 2^32 (a Shamir point): two 32-bit
 * products instead of four.  x z = (x1 z) 2^32 + x0 z with x1 z = h1 2^29 + h0, and
 * 2^61 = 1: x z = h1 + h0 2^32 + (x0 z mod 2^61) + (x0 z >> 61), below 2^63. */
SHR_INLINE uint64_t shr_m61_mul_small(uint64_t x, uint32_t z)
{
    const uint64_t M = SHR_M61, L29 = (UINT64_C(1) << 29) - 1;
    /* 32 x 32 -> 64 products written as such, so that a vectorising compiler emits one
     * vpmuludq each (with 64-bit operands it cannot see the high halves are zero) */
    const uint64_t lo = (uint64_t)(uint32_t)x * z, hi = (uint64_t)(uint32_t)(x >> 32) * z;
    uint64_t t = ((hi & L29) << 32) + (hi >> 29) + (lo & M) + (lo >> 61);
    t = (t & M) + (t >> 61);
    /* t < 2^62: subtract p unless that goes negative, with shifts and masks only (no 64-bit
     * compare, which baseline x86-64 vectors lack) */
    const uint64_t r = t - M;
    return r + (M & (UINT64_C(0) - (r >> 63)));
}

#define SHR_BS 512

/* Shamir shares for w <= SHR_BS secrets: out[i * N + j] = f_j(i + 1) mod p for i < n,
 * j < w, where f_j has coefficients rows[0][j] (the secret) .. rows[t-1][j]: Horner's
 * rule with the w accumulators in L1, so that for 2^61 - 1 the inner loop vectorises. */
SHR_INLINE void shr_poly_rows_body(const uint64_t *const *rows, int64_t t, int64_t n,
                                   uint64_t p, uint64_t *out, int64_t N, int64_t w)
{
    const shr_field f = shr_make_field(p);
    uint64_t acc[SHR_BS];
    for (int64_t i = 0; i < n; i++) {
        const uint32_t z = (uint32_t)(i + 1); /* < 2^32 (checked by the caller) */
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
SHR_LEVELS(void, shr_poly_rows,
           (const uint64_t *const *rows, int64_t t, int64_t n, uint64_t p, uint64_t *out,
            int64_t N, int64_t w),
           (rows, t, n, p, out, N, w))

#if PPML_X86
/* Level avx2 (and avx512), p = 2^61 - 1: the same Horner steps in explicit 4-lane vectors
 * (a compiler vectorising shr_m61_mul_small cannot see that z fits 32 bits and forms full
 * 64 x 64 products: three multiplies where one does). acc * z + c mod p, with
 * acc = a1 2^32 + a0: a0 z and a1 z are single vpmuludq products; every value stays below
 * 2^63, so the conditional subtractions use signed compares. */
PPML_TARGET_AVX2 static void shr_poly_rows_m61_avx2(const uint64_t *const *rows, int64_t t,
                                                   int64_t n, uint64_t *out, int64_t N,
                                                   int64_t w)
{
    const __m256i M = _mm256_set1_epi64x((long long)SHR_M61);
    const __m256i Mm1 = _mm256_set1_epi64x((long long)SHR_M61 - 1);
    const __m256i L29 = _mm256_set1_epi64x((1LL << 29) - 1);
    const int64_t wv = w / 4 * 4;
    for (int64_t i = 0; i < n; i++) {
        const uint32_t z = (uint32_t)(i + 1);
        const __m256i zv = _mm256_set1_epi64x((long long)z);
        uint64_t *o = out + i * N;
        for (int64_t j = 0; j < wv; j += 4) {
            __m256i acc = _mm256_loadu_si256((const __m256i *)(rows[t - 1] + j));
            for (int64_t c = t - 2; c >= 0; c--) {
                const __m256i lo = _mm256_mul_epu32(acc, zv);
                const __m256i hi = _mm256_mul_epu32(_mm256_srli_epi64(acc, 32), zv);
                __m256i v = _mm256_add_epi64(_mm256_slli_epi64(_mm256_and_si256(hi, L29), 32),
                                             _mm256_srli_epi64(hi, 29));
                v = _mm256_add_epi64(v, _mm256_and_si256(lo, M));
                v = _mm256_add_epi64(v, _mm256_srli_epi64(lo, 61));
                v = _mm256_add_epi64(_mm256_and_si256(v, M), _mm256_srli_epi64(v, 61));
                v = _mm256_sub_epi64(v, _mm256_and_si256(_mm256_cmpgt_epi64(v, Mm1), M));
                v = _mm256_add_epi64(v, _mm256_loadu_si256((const __m256i *)(rows[c] + j)));
                acc = _mm256_sub_epi64(v, _mm256_and_si256(_mm256_cmpgt_epi64(v, Mm1), M));
            }
            _mm256_storeu_si256((__m256i *)(o + j), acc);
        }
        for (int64_t j = wv; j < w; j++) {
            uint64_t acc = rows[t - 1][j];
            for (int64_t c = t - 2; c >= 0; c--) {
                const uint64_t v = shr_m61_mul_small(acc, z) + rows[c][j];
                acc = v >= SHR_M61 ? v - SHR_M61 : v;
            }
            o[j] = acc;
        }
    }
}
#endif

/* At level isa (the caller reads ppml_isa once for all its blocks). */
static void shr_poly_rows(int isa, const uint64_t *const *rows, int64_t t, int64_t n,
                          uint64_t p, uint64_t *out, int64_t N, int64_t w)
{
#if PPML_X86
    if (isa >= PPML_ISA_AVX2 && p == SHR_M61) {
        shr_poly_rows_m61_avx2(rows, t, n, out, N, w);
        return;
    }
#endif
    SHR_AT(isa, shr_poly_rows, (rows, t, n, p, out, N, w));
}

/* out[j] = sum over k < m of coef[k] * rows[k][j] mod p (coef < p): Lagrange sums.
 * Returns the largest row element seen (the caller's range check rides along). */
SHR_INLINE uint64_t shr_lincomb_range_body(const uint64_t *const *rows, const uint64_t *coef,
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
SHR_LEVELS(uint64_t, shr_lincomb_range,
           (const uint64_t *const *rows, const uint64_t *coef, int m, const shr_field *f,
            uint64_t *out, int64_t lo, int64_t hi),
           (rows, coef, m, f, out, lo, hi))

#if PPML_X86
/* Level avx2 (and avx512), p = 2^61 - 1: the Lagrange sums in explicit 4-lane vectors (four
 * vpmuludq per product, as in shr_mul_m61_avx2). The range check: an element is >= p iff
 * it has a bit >= 61 set or equals p; the vector part then reports ~0 (the caller only
 * compares with p). */
PPML_TARGET_AVX2 static uint64_t shr_lincomb_m61_avx2(const uint64_t *const *rows,
                                                     const uint64_t *coef, int m,
                                                     uint64_t *out, int64_t lo, int64_t hi)
{
    const __m256i M = _mm256_set1_epi64x((long long)SHR_M61);
    const __m256i Mm1 = _mm256_set1_epi64x((long long)SHR_M61 - 1);
    __m256i bits = _mm256_setzero_si256(), eq = bits;
    uint64_t mx = 0;
    const int64_t end = lo + (hi - lo) / 4 * 4;
    for (int64_t j = lo; j < end; j += 4) {
        __m256i acc = _mm256_setzero_si256();
        for (int k = 0; k < m; k++) {
            const __m256i x = _mm256_loadu_si256((const __m256i *)(rows[k] + j));
            bits = _mm256_or_si256(bits, x);
            eq = _mm256_or_si256(eq, _mm256_cmpeq_epi64(x, M));
            const __m256i t = _mm256_add_epi64(
                acc, shr_m61_mul_v(x, _mm256_set1_epi64x((long long)coef[k])));
            acc = _mm256_sub_epi64(t, _mm256_and_si256(_mm256_cmpgt_epi64(t, Mm1), M));
        }
        _mm256_storeu_si256((__m256i *)(out + j), acc);
    }
    for (int64_t j = end; j < hi; j++) {
        uint64_t acc = 0;
        for (int k = 0; k < m; k++) {
            const uint64_t r = rows[k][j];
            mx = r > mx ? r : mx;
            const uint64_t v = acc + shr_m61_mul(r, coef[k]);
            acc = v >= SHR_M61 ? v - SHR_M61 : v;
        }
        out[j] = acc;
    }
    bits = _mm256_or_si256(_mm256_srli_epi64(bits, 61), eq);
    if (!_mm256_testz_si256(bits, bits)) mx = ~UINT64_C(0);
    return mx;
}
#endif

/* Returns 1 when some row element was >= p (out is then meaningless). */
static int shr_lincomb(const uint64_t *const *rows, const uint64_t *coef, int m, uint64_t *out,
                       int64_t N, uint64_t p, int nthreads)
{
    const int isa = ppml_isa;
    const shr_field f = shr_make_field(p);
    int bad = 0;
    if (N * m < 65536) nthreads = 1;
#pragma omp parallel num_threads(nthreads) reduction(| : bad)
    {
        const int64_t tid = omp_get_thread_num(), nt = omp_get_num_threads();
        const int64_t lo = N * tid / nt, hi = N * (tid + 1) / nt;
#if PPML_X86
        if (isa >= PPML_ISA_AVX2 && p == SHR_M61)
            bad |= shr_lincomb_m61_avx2(rows, coef, m, out, lo, hi) >= p;
        else
#endif
            bad |= SHR_AT(isa, shr_lincomb_range, (rows, coef, m, &f, out, lo, hi)) >= p;
    }
    return bad;
}

#endif
