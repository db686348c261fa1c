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
 * count. One body per ISA level (_isa.h), chosen once per call from `ppml_isa`:
 *
 *   generic  no native body: sa_masks_add returns -1 and the caller takes the keystream
 *            from OpenSSL (through `cryptography`), which uses the CPU's AES instructions
 *            on any architecture, or its constant-time software AES where there are none;
 *   avx2     VAES on 256-bit registers (2 blocks per instruction, 16 in flight) when the
 *            CPU has VAES, else AES-NI (8 blocks in flight);
 *   avx512   VAES on 512-bit registers (4 blocks per instruction) when the CPU has VAES,
 *            else the avx2 body.
 *
 * Every body produces the same keystream. The round keys are secret (they come from the
 * pair and self-mask seeds): they are wiped after use.
 */
#ifndef PPML_SECAGG_KERNELS_H
#define PPML_SECAGG_KERNELS_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "_isa.h"

#define SA_CHUNK 2048   /* words per chunk: 16 KB of the accumulator */

/* The body sa_masks_add runs (sa_path). */
#define SA_PATH_GENERIC 0
#define SA_PATH_AESNI 1
#define SA_PATH_VAES256 2
#define SA_PATH_VAES512 3

static inline void sa_wipe(void *p, size_t n)
{
    volatile unsigned char *v = (volatile unsigned char *)p;
    while (n--) *v++ = 0;
}

/* An expanded AES-128 key: 11 round keys of 16 bytes (FIPS-197 byte order). */
#if PPML_X86
typedef union { __m128i rk[11]; uint8_t b[11][16]; } sa_key;
#endif

#if PPML_X86
/* ------------------------------------------------------------- AES-NI (avx2, avx512) */

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

/* ----------------------------------------------------------------------------- avx2 */

/* AES-NI on one 128-bit block per instruction, 8 blocks (16 words) in flight: the avx2
 * body on a CPU without VAES. As in the VAES body below, the batches start at a multiple
 * of 8 blocks (w0 is a multiple of 16 words), so block b + j enters the first round as
 * (bswap(b) ^ rk0) ^ j; the loop is written once per sign. */
#define SA_AVX2_NI_LOOP(OP)                                                              \
    for (; w + 16 <= w1; w += 16) {                                                      \
        const __m128i c = _mm_xor_si128(                                                 \
            _mm_set_epi64x((long long)__builtin_bswap64((uint64_t)(w >> 1)), 0), rk[0]); \
        __m128i x[8];                                                                    \
        for (int j = 0; j < 8; j++) x[j] = _mm_xor_si128(c, low[j]);                     \
        for (int r = 1; r < 10; r++)                                                     \
            for (int j = 0; j < 8; j++) x[j] = _mm_aesenc_si128(x[j], rk[r]);            \
        for (int j = 0; j < 8; j++) {                                                    \
            x[j] = _mm_aesenclast_si128(x[j], rk[10]);                                   \
            __m128i a = _mm_loadu_si128((const __m128i *)(acc + w + 2 * j));             \
            _mm_storeu_si128((__m128i *)(acc + w + 2 * j), OP(a, x[j]));                 \
        }                                                                                \
    }

PPML_TARGET_AVX2 static void sa_add_range_avx2_ni(uint64_t *acc, int64_t w0, int64_t w1,
                                                  const sa_key *ks, int neg)
{
    __m128i rk[11], low[8];
    for (int r = 0; r < 11; r++) rk[r] = ks->rk[r];
    for (int j = 0; j < 8; j++) low[j] = _mm_set_epi64x((long long)j << 56, 0);
    int64_t w = w0;
    if (neg) {
        SA_AVX2_NI_LOOP(_mm_sub_epi64)
    } else {
        SA_AVX2_NI_LOOP(_mm_add_epi64)
    }
    for (; w < w1; w += 2) {
        __m128i x = _mm_xor_si128(
            _mm_set_epi64x((long long)__builtin_bswap64((uint64_t)(w >> 1)), 0), rk[0]);
        for (int r = 1; r < 10; r++) x = _mm_aesenc_si128(x, rk[r]);
        x = _mm_aesenclast_si128(x, rk[10]);
        uint64_t ksw[2];
        _mm_storeu_si128((__m128i *)ksw, x);
        for (int h = 0; h < 2 && w + h < w1; h++)
            acc[w + h] = neg ? acc[w + h] - ksw[h] : acc[w + h] + ksw[h];
        sa_wipe(ksw, sizeof ksw);
    }
    sa_wipe(rk, sizeof rk);
}

/* VAES on 256-bit registers: 2 blocks per instruction, SA_VAES256_REGS registers in flight,
 * to cover the latency of vaesenc at two per cycle. The batches of 2 SA_VAES256_REGS
 * blocks start at a multiple of 2 SA_VAES256_REGS (w0 is a multiple of 4 SA_VAES256_REGS
 * words), so the counters of a batch differ from its first in the low byte only, by an
 * XOR: block b + j enters the first round as (bswap(b) ^ rk0) ^ j, one XOR per register.
 * The mask is added to the accumulator as it leaves the last round (it never goes to
 * memory); the loop is written once per sign. */
#ifndef SA_VAES256_REGS
#define SA_VAES256_REGS 8
#endif
#define SA_VAES256_LOOP(OP)                                                               \
    for (; w + 4 * SA_VAES256_REGS <= w1; w += 4 * SA_VAES256_REGS) {                     \
        const __m128i c = _mm_xor_si128(                                                  \
            _mm_set_epi64x((long long)__builtin_bswap64((uint64_t)(w >> 1)), 0), rk0);    \
        const __m256i cc = _mm256_broadcastsi128_si256(c);                                \
        __m256i x[SA_VAES256_REGS];                                                       \
        for (int j = 0; j < SA_VAES256_REGS; j++) x[j] = _mm256_xor_si256(cc, low[j]);    \
        for (int r = 1; r < 10; r++)                                                      \
            for (int j = 0; j < SA_VAES256_REGS; j++)                                     \
                x[j] = _mm256_aesenc_epi128(x[j], rk[r]);                                 \
        for (int j = 0; j < SA_VAES256_REGS; j++) {                                       \
            x[j] = _mm256_aesenclast_epi128(x[j], rk[10]);                                \
            __m256i a = _mm256_loadu_si256((const __m256i *)(acc + w + 4 * j));           \
            _mm256_storeu_si256((__m256i *)(acc + w + 4 * j), OP(a, x[j]));               \
        }                                                                                 \
    }

PPML_TARGET_AVX2_VAES static void sa_add_range_vaes256(uint64_t *acc, int64_t w0, int64_t w1,
                                                       const sa_key *ks, int neg)
{
    __m256i rk[11], low[SA_VAES256_REGS];
    const __m128i rk0 = ks->rk[0];
    for (int r = 0; r < 11; r++) rk[r] = _mm256_broadcastsi128_si256(ks->rk[r]);
    /* block j of a batch: j in byte 15 (the counter's low byte) */
    for (int j = 0; j < SA_VAES256_REGS; j++)
        low[j] = _mm256_set_epi64x((long long)(2 * j + 1) << 56, 0, (long long)(2 * j) << 56, 0);
    int64_t w = w0;
    if (neg) {
        SA_VAES256_LOOP(_mm256_sub_epi64)
    } else {
        SA_VAES256_LOOP(_mm256_add_epi64)
    }
    if (w < w1) {  /* fewer than 4 SA_VAES256_REGS words left: through a buffer */
        uint64_t buf[4 * SA_VAES256_REGS];
        const __m256i bswap = _mm256_set_epi64x(0x08090a0b0c0d0e0fLL, 0x0001020304050607LL,
                                                0x08090a0b0c0d0e0fLL, 0x0001020304050607LL);
        const __m256i step = _mm256_set_epi64x(2, 0, 2, 0);
        uint64_t b = (uint64_t)(w >> 1);
        __m256i ctr = _mm256_set_epi64x((long long)(b + 1), 0, (long long)b, 0);
        for (int j = 0; j < SA_VAES256_REGS; j++) {
            __m256i x = _mm256_xor_si256(_mm256_shuffle_epi8(ctr, bswap), rk[0]);
            ctr = _mm256_add_epi64(ctr, step);
            for (int r = 1; r < 10; r++) x = _mm256_aesenc_epi128(x, rk[r]);
            _mm256_storeu_si256((__m256i *)(buf + 4 * j), _mm256_aesenclast_epi128(x, rk[10]));
        }
        for (int64_t i = 0; w + i < w1; i++)
            acc[w + i] = neg ? acc[w + i] - buf[i] : acc[w + i] + buf[i];
        sa_wipe(buf, sizeof buf);
    }
    sa_wipe(rk, sizeof rk);
}

/* --------------------------------------------------------------------------- avx512 */

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

#endif /* PPML_X86 */

/* The body run at ISA level `isa`; force = 1 asks for AES-NI (xmm) at the avx2 and avx512
 * levels (tests). */
static int sa_path(int isa, int force)
{
#if PPML_X86
    if (isa >= PPML_ISA_AVX2 && force == 1) return SA_PATH_AESNI;
    if (isa >= PPML_ISA_AVX512 && ppml_cpu_vaes()) return SA_PATH_VAES512;
    if (isa >= PPML_ISA_AVX2) return ppml_cpu_vaes() ? SA_PATH_VAES256 : SA_PATH_AESNI;
#else
    (void)isa; (void)force;
#endif
    return SA_PATH_GENERIC;
}

/* acc (D words) = (base ? base : acc) + sum_j (signs[j] < 0 ? -1 : +1) * KS(keys[16 j ..
 * 16 j + 16)); returns 0, -1 at the generic level (no native body: the caller uses
 * OpenSSL), or -2 when the key schedules cannot be allocated. With base, each chunk is
 * copied in while it is in L1 (one pass instead of a copy plus the masks). The body is
 * chosen once, from ppml_isa (sa_path). */
static int sa_masks_add(uint64_t *acc, const uint64_t *base, int64_t D, const uint8_t *keys,
                        const int8_t *signs, int64_t m, int force, int nthreads)
{
    const int path = sa_path(ppml_isa, force);
    if (path == SA_PATH_GENERIC) return -1;
#if PPML_X86
    if (D <= 0) return 0;
    if (m <= 0) {
        if (base) memcpy(acc, base, (size_t)D * sizeof(uint64_t));
        return 0;
    }
    sa_key *ks = (sa_key *)malloc((size_t)m * sizeof(sa_key));
    if (!ks) return -2;
    for (int64_t j = 0; j < m; j++) sa_expand(keys + 16 * j, ks + j);
    int64_t nchunks = (D + SA_CHUNK - 1) / SA_CHUNK;
    #pragma omp parallel for num_threads(nthreads) schedule(dynamic, 1)
    for (int64_t c = 0; c < nchunks; c++) {
        int64_t w0 = c * SA_CHUNK, w1 = w0 + SA_CHUNK < D ? w0 + SA_CHUNK : D;
        if (base) memcpy(acc + w0, base + w0, (size_t)(w1 - w0) * sizeof(uint64_t));
        for (int64_t j = 0; j < m; j++) {
            const int neg = signs[j] < 0;
            switch (path) {
            case SA_PATH_VAES512: sa_add_range_vaes(acc, w0, w1, ks + j, neg); break;
            case SA_PATH_VAES256: sa_add_range_vaes256(acc, w0, w1, ks + j, neg); break;
            default: sa_add_range_avx2_ni(acc, w0, w1, ks + j, neg); break;
            }
        }
    }
    sa_wipe(ks, (size_t)m * sizeof(sa_key));
    free(ks);
    return 0;
#else
    (void)acc; (void)base; (void)D; (void)keys; (void)signs; (void)m; (void)nthreads;
    return -1;
#endif
}

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
