/* Mask expansion for secure aggregation: AES-128 in counter mode, fused with the modular
 * addition of the masks into a vector of the ring Z_2^64.
 *
 *     acc[w] += sum_j sign_j * KS_j[w]   (mod 2^64)
 *
 * where KS_j is the AES-128-CTR keystream of key j with a zero 128-bit initial counter
 * block, counting big-endian (the layout of `cryptography`'s CTR mode with a zero nonce),
 * read as little-endian 64-bit words: words 2b and 2b+1 come from counter block b.
 *
 * The vector is processed in chunks that stay in L1 while every key's keystream for the
 * chunk is added, chunks in parallel (OpenMP), so the result does not depend on the thread
 * count. With VAES (AVX-512) four blocks are encrypted per instruction; with AES-NI one;
 * sa_masks_add returns -1 when the CPU has neither (the caller falls back to Python). The
 * round keys are secret (they are the pair and self-mask seeds): they are wiped after use.
 */
#ifndef PPML_SECAGG_KERNELS_H
#define PPML_SECAGG_KERNELS_H

#include <stdint.h>
#include <string.h>

#define SA_CHUNK 2048   /* words per chunk: 16 KB of the accumulator */

static void sa_wipe(void *p, size_t n)
{
    volatile unsigned char *v = (volatile unsigned char *)p;
    while (n--) *v++ = 0;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

typedef struct { __m128i rk[11]; } sa_key;

#define SA_AESNI __attribute__((target("aes,sse4.1")))

SA_AESNI static inline __m128i sa_assist(__m128i k, __m128i t)
{
    t = _mm_shuffle_epi32(t, 0xff);
    k = _mm_xor_si128(k, _mm_slli_si128(k, 4));
    k = _mm_xor_si128(k, _mm_slli_si128(k, 4));
    k = _mm_xor_si128(k, _mm_slli_si128(k, 4));
    return _mm_xor_si128(k, t);
}

SA_AESNI static void sa_expand(const uint8_t *key, sa_key *ks)
{
    __m128i k = _mm_loadu_si128((const __m128i *)key);
    ks->rk[0] = k;
    k = sa_assist(k, _mm_aeskeygenassist_si128(k, 0x01)); ks->rk[1] = k;
    k = sa_assist(k, _mm_aeskeygenassist_si128(k, 0x02)); ks->rk[2] = k;
    k = sa_assist(k, _mm_aeskeygenassist_si128(k, 0x04)); ks->rk[3] = k;
    k = sa_assist(k, _mm_aeskeygenassist_si128(k, 0x08)); ks->rk[4] = k;
    k = sa_assist(k, _mm_aeskeygenassist_si128(k, 0x10)); ks->rk[5] = k;
    k = sa_assist(k, _mm_aeskeygenassist_si128(k, 0x20)); ks->rk[6] = k;
    k = sa_assist(k, _mm_aeskeygenassist_si128(k, 0x40)); ks->rk[7] = k;
    k = sa_assist(k, _mm_aeskeygenassist_si128(k, 0x80)); ks->rk[8] = k;
    k = sa_assist(k, _mm_aeskeygenassist_si128(k, 0x1b)); ks->rk[9] = k;
    k = sa_assist(k, _mm_aeskeygenassist_si128(k, 0x36)); ks->rk[10] = k;
}

static inline long long sa_ctr(uint64_t b) { return (long long)__builtin_bswap64(b); }

/* acc[w0 .. w1) += sign * keystream, AES-NI, 8 blocks (16 words) in flight. */
SA_AESNI static void sa_add_range_ni(uint64_t *acc, int64_t w0, int64_t w1, const sa_key *ks,
                                     int neg)
{
    int64_t w = w0;
    /* w0 is even (chunks are even), so word w starts block w/2 */
    for (; w + 16 <= w1; w += 16) {
        uint64_t b = (uint64_t)(w >> 1);
        __m128i x[8];
        for (int j = 0; j < 8; j++)
            x[j] = _mm_xor_si128(_mm_set_epi64x(sa_ctr(b + (uint64_t)j), 0), ks->rk[0]);
        for (int r = 1; r < 10; r++)
            for (int j = 0; j < 8; j++) x[j] = _mm_aesenc_si128(x[j], ks->rk[r]);
        for (int j = 0; j < 8; j++) {
            x[j] = _mm_aesenclast_si128(x[j], ks->rk[10]);
            __m128i a = _mm_loadu_si128((const __m128i *)(acc + w + 2 * j));
            a = neg ? _mm_sub_epi64(a, x[j]) : _mm_add_epi64(a, x[j]);
            _mm_storeu_si128((__m128i *)(acc + w + 2 * j), a);
        }
    }
    for (; w < w1; w += 2) {
        uint64_t b = (uint64_t)(w >> 1);
        __m128i x = _mm_xor_si128(_mm_set_epi64x(sa_ctr(b), 0), ks->rk[0]);
        for (int r = 1; r < 10; r++) x = _mm_aesenc_si128(x, ks->rk[r]);
        x = _mm_aesenclast_si128(x, ks->rk[10]);
        uint64_t ksw[2];
        _mm_storeu_si128((__m128i *)ksw, x);
        for (int h = 0; h < 2 && w + h < w1; h++)
            acc[w + h] = neg ? acc[w + h] - ksw[h] : acc[w + h] + ksw[h];
    }
}

#define SA_VAES __attribute__((target("avx512f,avx512bw,vaes,aes,sse4.1")))

/* The same with VAES: 4 blocks per zmm, 8 zmm (64 words) in flight. The counters are kept
 * as native integers in the odd qwords and byte-swapped with one shuffle per zmm. */
SA_VAES static void sa_add_range_vaes(uint64_t *acc, int64_t w0, int64_t w1, const sa_key *ks,
                                      int neg)
{
    __m512i rk[11];
    for (int r = 0; r < 11; r++) rk[r] = _mm512_broadcast_i32x4(ks->rk[r]);
    const __m512i bswap = _mm512_set_epi64(0x08090a0b0c0d0e0fLL, 0x0001020304050607LL,
                                           0x08090a0b0c0d0e0fLL, 0x0001020304050607LL,
                                           0x08090a0b0c0d0e0fLL, 0x0001020304050607LL,
                                           0x08090a0b0c0d0e0fLL, 0x0001020304050607LL);
    const __m512i step = _mm512_set_epi64(4, 0, 4, 0, 4, 0, 4, 0);
    int64_t w = w0;
    uint64_t b0 = (uint64_t)(w0 >> 1);
    __m512i ctr = _mm512_set_epi64((long long)(b0 + 3), 0, (long long)(b0 + 2), 0,
                                   (long long)(b0 + 1), 0, (long long)b0, 0);
    for (; w + 64 <= w1; w += 64) {
        __m512i x[8];
        for (int j = 0; j < 8; j++) {
            x[j] = _mm512_xor_si512(_mm512_shuffle_epi8(ctr, bswap), rk[0]);
            ctr = _mm512_add_epi64(ctr, step);
        }
        for (int r = 1; r < 10; r++)
            for (int j = 0; j < 8; j++) x[j] = _mm512_aesenc_epi128(x[j], rk[r]);
        for (int j = 0; j < 8; j++) {
            x[j] = _mm512_aesenclast_epi128(x[j], rk[10]);
            __m512i a = _mm512_loadu_si512((const void *)(acc + w + 8 * j));
            a = neg ? _mm512_sub_epi64(a, x[j]) : _mm512_add_epi64(a, x[j]);
            _mm512_storeu_si512((void *)(acc + w + 8 * j), a);
        }
    }
    if (w < w1) sa_add_range_ni(acc, w, w1, ks, neg);
    sa_wipe(rk, sizeof rk);
}

static int sa_cpu_detect(void)
{
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("aes")) return 0;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
        && __builtin_cpu_supports("vaes"))
        return 2;
    return 1;
}

/* The CPU's level, detected once (every mask expansion asks). */
static int sa_cpu(void)
{
    static int level = -1;
    if (level < 0) level = sa_cpu_detect();
    return level;
}

/* acc (D words) = (base ? base : acc) + sum_j (signs[j] < 0 ? -1 : +1) * KS(keys[16 j ..
 * 16 j + 16)); returns 0, or -1 without touching acc when the CPU lacks AES instructions.
 * With base, each chunk is copied in while it is in L1 (one pass instead of a copy plus
 * the masks). force: 0 = best, 1 = AES-NI only (tests). */
static int sa_masks_add(uint64_t *acc, const uint64_t *base, int64_t D, const uint8_t *keys,
                        const int8_t *signs, int64_t m, int force, int nthreads)
{
    int cpu = sa_cpu();
    if (cpu == 0) return -1;
    if (force == 1) cpu = 1;
    if (D <= 0) return 0;
    if (m <= 0) {
        if (base) memcpy(acc, base, (size_t)D * sizeof(uint64_t));
        return 0;
    }
    sa_key *ks = (sa_key *)_mm_malloc((size_t)m * sizeof(sa_key), 64);
    if (!ks) return -2;
    for (int64_t j = 0; j < m; j++) sa_expand(keys + 16 * j, ks + j);
    int64_t nchunks = (D + SA_CHUNK - 1) / SA_CHUNK;
    #pragma omp parallel for num_threads(nthreads) schedule(static)
    for (int64_t c = 0; c < nchunks; c++) {
        int64_t w0 = c * SA_CHUNK, w1 = w0 + SA_CHUNK < D ? w0 + SA_CHUNK : D;
        if (base) memcpy(acc + w0, base + w0, (size_t)(w1 - w0) * sizeof(uint64_t));
        for (int64_t j = 0; j < m; j++) {
            if (cpu == 2) sa_add_range_vaes(acc, w0, w1, ks + j, signs[j] < 0);
            else sa_add_range_ni(acc, w0, w1, ks + j, signs[j] < 0);
        }
    }
    sa_wipe(ks, (size_t)m * sizeof(sa_key));
    _mm_free(ks);
    return 0;
}
#else
static int sa_cpu(void) { return 0; }
static int sa_masks_add(uint64_t *acc, const uint64_t *base, int64_t D, const uint8_t *keys,
                        const int8_t *signs, int64_t m, int force, int nthreads)
{
    (void)acc; (void)base; (void)D; (void)keys; (void)signs; (void)m; (void)force;
    (void)nthreads;
    return -1;
}
#endif

/* total[w] += y[w] mod 2^64 (the server receiving one masked input), chunks in parallel. */
static void sa_ring_add(uint64_t *total, const uint64_t *y, int64_t D, int nthreads)
{
    int64_t nchunks = (D + SA_CHUNK - 1) / SA_CHUNK;
    #pragma omp parallel for num_threads(nthreads) schedule(static)
    for (int64_t c = 0; c < nchunks; c++) {
        int64_t w0 = c * SA_CHUNK, w1 = w0 + SA_CHUNK < D ? w0 + SA_CHUNK : D;
        for (int64_t w = w0; w < w1; w++) total[w] += y[w];
    }
}

#endif
