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
 *   generic  portable C: a bit-sliced AES (the S-box as a Boolean circuit, no table, no
 *            branch or index that depends on the key), 128 blocks per batch (64 without
 *            compiler vector types);
 *   avx2     VAES on 256-bit registers (2 blocks per instruction, 16 in flight) when the
 *            CPU has VAES, else AES-NI (8 blocks in flight);
 *   avx512   VAES on 512-bit registers (4 blocks per instruction) when the CPU has VAES,
 *            else the avx2 body.
 *
 * Every body produces the same keystream. The round keys are secret (they come from the
 * pair and self-mask seeds): they are wiped after use, as is the bit-sliced state.
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

static void sa_wipe(void *p, size_t n)
{
    volatile unsigned char *v = (volatile unsigned char *)p;
    while (n--) *v++ = 0;
}

static void sa_wipe64(uint64_t *p, size_t n)
{
    volatile uint64_t *v = (volatile uint64_t *)p;
    while (n--) *v++ = 0;
}

/* An expanded AES-128 key: 11 round keys of 16 bytes (FIPS-197 byte order). */
#if PPML_X86
typedef union { __m128i rk[11]; uint8_t b[11][16]; } sa_key;
#else
typedef struct { uint8_t b[11][16]; } sa_key;
#endif

/* ------------------------------------------------------------------ generic: bit-sliced */

/* The AES S-box as a circuit of 113 XOR/AND/XNOR gates (Boyar and Peralta's depth-16
 * circuit): U[0..7] are the input bits from the most significant, S[0..7] the output bits
 * likewise; every variable is a W, a word of independent bit lanes. NOT is applied to
 * the four outputs that XNOR gates give: the S-box's constant 0x63; the bit-sliced rounds
 * pass the identity instead and fold 0x63 into the round keys. */
#define SA_SBOX_CIRCUIT_W(W, NOT, U, S) do { \
    W T1 = U[0] ^ U[3], T2 = U[0] ^ U[5], T3 = U[0] ^ U[6], T4 = U[3] ^ U[5]; \
    W T5 = U[4] ^ U[6], T6 = T1 ^ T5, T7 = U[1] ^ U[2], T8 = U[7] ^ T6; \
    W T9 = U[7] ^ T7, T10 = T6 ^ T7, T11 = U[1] ^ U[5], T12 = U[2] ^ U[5]; \
    W T13 = T3 ^ T4, T14 = T6 ^ T11, T15 = T5 ^ T11, T16 = T5 ^ T12; \
    W T17 = T9 ^ T16, T18 = U[3] ^ U[7], T19 = T7 ^ T18, T20 = T1 ^ T19; \
    W T21 = U[6] ^ U[7], T22 = T7 ^ T21, T23 = T2 ^ T22, T24 = T2 ^ T10; \
    W T25 = T20 ^ T17, T26 = T3 ^ T16, T27 = T1 ^ T12; \
    W M1 = T13 & T6, M2 = T23 & T8, M3 = T14 ^ M1, M4 = T19 & U[7]; \
    W M5 = M4 ^ M1, M6 = T3 & T16, M7 = T22 & T9, M8 = T26 ^ M6; \
    W M9 = T20 & T17, M10 = M9 ^ M6, M11 = T1 & T15, M12 = T4 & T27; \
    W M13 = M12 ^ M11, M14 = T2 & T10, M15 = M14 ^ M11, M16 = M3 ^ M2; \
    W M17 = M5 ^ T24, M18 = M8 ^ M7, M19 = M10 ^ M15, M20 = M16 ^ M13; \
    W M21 = M17 ^ M15, M22 = M18 ^ M13, M23 = M19 ^ T25, M24 = M22 ^ M23; \
    W M25 = M22 & M20, M26 = M21 ^ M25, M27 = M20 ^ M21, M28 = M23 ^ M25; \
    W M29 = M28 & M27, M30 = M26 & M24, M31 = M20 & M23, M32 = M27 & M31; \
    W M33 = M27 ^ M25, M34 = M21 & M22, M35 = M24 & M34, M36 = M24 ^ M25; \
    W M37 = M21 ^ M29, M38 = M32 ^ M33, M39 = M23 ^ M30, M40 = M35 ^ M36; \
    W M41 = M38 ^ M40, M42 = M37 ^ M39, M43 = M37 ^ M38, M44 = M39 ^ M40; \
    W M45 = M42 ^ M41, M46 = M44 & T6, M47 = M40 & T8, M48 = M39 & U[7]; \
    W M49 = M43 & T16, M50 = M38 & T9, M51 = M37 & T17, M52 = M42 & T15; \
    W M53 = M45 & T27, M54 = M41 & T10, M55 = M44 & T13, M56 = M40 & T23; \
    W M57 = M39 & T19, M58 = M43 & T3, M59 = M38 & T22, M60 = M37 & T20; \
    W M61 = M42 & T1, M62 = M45 & T4, M63 = M41 & T2; \
    W L0 = M61 ^ M62, L1 = M50 ^ M56, L2 = M46 ^ M48, L3 = M47 ^ M55; \
    W L4 = M54 ^ M58, L5 = M49 ^ M61, L6 = M62 ^ L5, L7 = M46 ^ L3; \
    W L8 = M51 ^ M59, L9 = M52 ^ M53, L10 = M53 ^ L4, L11 = M60 ^ L2; \
    W L12 = M48 ^ M51, L13 = M50 ^ L0, L14 = M52 ^ M61, L15 = M55 ^ L1; \
    W L16 = M56 ^ L0, L17 = M57 ^ L1, L18 = M58 ^ L8, L19 = M63 ^ L4; \
    W L20 = L0 ^ L1, L21 = L1 ^ L7, L22 = L3 ^ L12, L23 = L18 ^ L2; \
    W L24 = L15 ^ L9, L25 = L6 ^ L10, L26 = L7 ^ L9, L27 = L8 ^ L10; \
    W L28 = L11 ^ L14, L29 = L11 ^ L17; \
    S[0] = L6 ^ L24; S[1] = NOT(L16 ^ L26); S[2] = NOT(L19 ^ L28); S[3] = L6 ^ L21; \
    S[4] = L20 ^ L22; S[5] = L25 ^ L29; S[6] = NOT(L13 ^ L27); S[7] = NOT(L6 ^ L23); \
} while (0)
#define SA_NOT(x) (~(x))
#define SA_ID(x) (x)
#define SA_SBOX_CIRCUIT(U, S) SA_SBOX_CIRCUIT_W(uint64_t, SA_NOT, U, S)

/* S-box of one byte, in constant time (key expansion only). */
static uint8_t sa_sbox_byte(uint8_t x)
{
    uint64_t u[8], s[8];
    for (int k = 0; k < 8; k++) u[k] = (uint64_t)0 - (uint64_t)((x >> (7 - k)) & 1);
    SA_SBOX_CIRCUIT(u, s);
    uint8_t y = 0;
    for (int k = 0; k < 8; k++) y = (uint8_t)(y | ((s[k] & 1) << (7 - k)));
    return y;
}

/* FIPS-197 key expansion for AES-128, without tables. */
static void sa_expand_generic(const uint8_t *key, sa_key *ks)
{
    static const uint8_t rcon[10] = {0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0x1b,
                                     0x36};
    memcpy(ks->b[0], key, 16);
    for (int r = 1; r <= 10; r++) {
        const uint8_t *p = ks->b[r - 1];
        uint8_t *q = ks->b[r];
        uint8_t t[4] = {sa_sbox_byte(p[13]), sa_sbox_byte(p[14]), sa_sbox_byte(p[15]),
                        sa_sbox_byte(p[12])};
        t[0] ^= rcon[r - 1];
        for (int i = 0; i < 4; i++) q[i] = p[i] ^ t[i];
        for (int i = 4; i < 16; i++) q[i] = p[i] ^ q[i - 4];
        sa_wipe(t, sizeof t);
    }
}

/* The bit-sliced state: slice s = 8 i + k holds bit k (0 = least significant) of state
 * byte i for SA_BS_BLOCKS blocks: bit j of lane l is block 64 l + j of the batch. A slice
 * is one sa_w: a vector of SA_BS_LANES 64-bit lanes where the compiler has vector types
 * (GCC, clang: SSE2 on the x86-64 baseline, NEON on ARM), else one uint64_t. */
#if (defined(__GNUC__) || defined(__clang__)) && !defined(SA_BS_SCALAR)
#define SA_BS_LANES 2
typedef uint64_t sa_w __attribute__((vector_size(16)));
#else
#define SA_BS_LANES 1
typedef uint64_t sa_w;
#endif
#define SA_BS_BLOCKS (64 * SA_BS_LANES)

typedef union { sa_w v[128]; uint64_t u[128][SA_BS_LANES]; } sa_bs_state;

/* out <- S-box(in) for one state byte (8 slices each). */
static inline void sa_bs_sbox(const sa_w *in, sa_w *out)
{
    sa_w u[8], s[8];
    for (int k = 0; k < 8; k++) u[k] = in[7 - k];
    SA_SBOX_CIRCUIT_W(sa_w, SA_ID, u, s);
    for (int k = 0; k < 8; k++) out[7 - k] = s[k];
}

static inline sa_w sa_bcast(uint64_t x)
{
    sa_bs_state one;
    for (int l = 0; l < SA_BS_LANES; l++) one.u[0][l] = x;
    return one.v[0];
}

/* out <- ShiftRows(SubBytes(in)) (without the constant 0x63): state byte i = 4 c + r
 * (row r, column c) takes the S-box of byte 4 ((c + r) mod 4) + r. The input bytes in
 * `same` (bit i for byte i) hold one value for the whole batch (every slice all zeros or
 * all ones): their S-boxes are computed together, one byte per bit of a uint64_t, and
 * broadcast. The bytes that `same` names are public (they follow from the counters). */
static inline void sa_bs_subshift(const sa_w *in, sa_w *out, unsigned same)
{
    uint64_t u[8] = {0}, v[8] = {0};
    if (same) {
        for (int i = 0; i < 16; i++)
            if (same >> i & 1)
                for (int k = 0; k < 8; k++) {
                    uint64_t w;
                    memcpy(&w, &in[8 * i + 7 - k], sizeof w);
                    u[k] |= (w & 1) << i;
                }
        SA_SBOX_CIRCUIT_W(uint64_t, SA_ID, u, v);
    }
    for (int c = 0; c < 4; c++)
        for (int r = 0; r < 4; r++) {
            int i = 4 * ((c + r) & 3) + r;
            sa_w *o = out + 8 * (4 * c + r);
            if (same >> i & 1)
                for (int k = 0; k < 8; k++) o[7 - k] = sa_bcast((uint64_t)0 - (v[k] >> i & 1));
            else
                sa_bs_sbox(in + 8 * i, o);
        }
    sa_wipe64(u, 8);
    sa_wipe64(v, 8);
}

/* out <- MixColumns(in) ^ round key (rk: one all-ones or all-zeros mask per slice):
 * b_j = a_j ^ t ^ xtime(a_j ^ a_j+1), t = a_0 ^ a_1 ^ a_2 ^ a_3. */
static inline void sa_bs_mix_ark(const sa_w *in, sa_w *out, const sa_w *rk)
{
    for (int c = 0; c < 4; c++) {
        const sa_w *a = in + 32 * c;
        sa_w *b = out + 32 * c;
        const sa_w *kc = rk + 32 * c;
        sa_w t[8];
        for (int k = 0; k < 8; k++) t[k] = a[k] ^ a[8 + k] ^ a[16 + k] ^ a[24 + k];
        for (int j = 0; j < 4; j++) {
            const sa_w *p = a + 8 * j, *q = a + 8 * ((j + 1) & 3);
            sa_w y[8];
            for (int k = 0; k < 8; k++) y[k] = p[k] ^ q[k];
            /* xtime(y): multiply by 2 modulo x^8 + x^4 + x^3 + x + 1 */
            sa_w xt[8] = {y[7], y[0] ^ y[7], y[1], y[2] ^ y[7], y[3] ^ y[7], y[4], y[5], y[6]};
            for (int k = 0; k < 8; k++) b[8 * j + k] = p[k] ^ t[k] ^ xt[k] ^ kc[8 * j + k];
        }
    }
}

/* acc[w0 .. w1) += sign * keystream, one batch of SA_BS_BLOCKS blocks at a time; the
 * batches are aligned on multiples of SA_BS_BLOCKS blocks (w0 is even). */
static void sa_add_range_generic(uint64_t *acc, int64_t w0, int64_t w1, const sa_key *ks,
                                 int neg)
{
    sa_w rk[11][128];
    sa_bs_state st, tmp;
    /* round keys 1-10 with the S-box constant 0x63 that the circuit leaves out of every
     * byte (MixColumns maps a column of equal bytes c to itself) */
    for (int r = 0; r < 11; r++)
        for (int s = 0; s < 128; s++) {
            unsigned byte = ks->b[r][s >> 3] ^ (r ? 0x63u : 0u);
            rk[r][s] = sa_bcast((uint64_t)0 - (uint64_t)((byte >> (s & 7)) & 1));
        }
    /* the counter bits that change inside a 64-block lane: bit p of block j is bit p of j */
    static const uint64_t low[6] = {0xaaaaaaaaaaaaaaaaULL, 0xccccccccccccccccULL,
                                    0xf0f0f0f0f0f0f0f0ULL, 0xff00ff00ff00ff00ULL,
                                    0xffff0000ffff0000ULL, 0xffffffff00000000ULL};
    const uint64_t mneg = (uint64_t)0 - (uint64_t)(neg != 0);
    int64_t bfirst = (w0 >> 1) / SA_BS_BLOCKS * SA_BS_BLOCKS;
    for (int64_t bb = bfirst; 2 * bb < w1; bb += SA_BS_BLOCKS) {
        /* the counter blocks, bit-sliced: counter bit p is bit p % 8 of byte 15 - p / 8
         * (big-endian); bytes 0-7 are zero (fewer than 2^64 blocks) */
        memset(&tmp, 0, sizeof tmp);
        for (int p = 0; p < 64; p++) {
            int s = 8 * (15 - p / 8) + p % 8;
            for (int l = 0; l < SA_BS_LANES; l++) {
                uint64_t base = (uint64_t)bb + 64 * (uint64_t)l; /* a multiple of 64 */
                tmp.u[s][l] = p < 6 ? low[p] : (uint64_t)0 - ((base >> p) & 1);
            }
        }
        for (int s = 0; s < 128; s++) st.v[s] = tmp.v[s] ^ rk[0][s];
        /* within a batch the counters differ in byte 15 only: the first round's other 15
         * S-boxes see one value each, and after its MixColumns so do columns 1-3 (the
         * second round's bytes 4-15) */
        for (int r = 1; r < 10; r++) {
            sa_bs_subshift(st.v, tmp.v, r == 1 ? 0x7fffu : r == 2 ? 0xfff0u : 0u);
            sa_bs_mix_ark(tmp.v, st.v, rk[r]);
        }
        sa_bs_subshift(st.v, tmp.v, 0);
        for (int s = 0; s < 128; s++) tmp.v[s] ^= rk[10][s];
        /* transpose each half (slices 0-63: the low word of every block, 64-127: the high
         * word) as a 64 x 64 bit matrix per lane: row s, bit j -> row j, bit s */
        for (int h = 0; h < 2; h++) {
            sa_w *m = tmp.v + 64 * h;
            uint64_t msk = 0x00000000ffffffffULL;
            for (int j = 32; j; j >>= 1, msk ^= msk << j)
                for (int k = 0; k < 64; k = ((k | j) + 1) & ~j) {
                    sa_w t = ((m[k] >> j) ^ m[k | j]) & msk;
                    m[k] ^= t << j;
                    m[k | j] ^= t;
                }
        }
        /* word 2 b + h of the batch is row b % 64 of half h, lane b / 64 */
        int64_t wb = 2 * bb;
        int64_t lo = w0 > wb ? w0 - wb : 0;
        int64_t hi = w1 - wb < 2 * SA_BS_BLOCKS ? w1 - wb : 2 * SA_BS_BLOCKS;
        for (int64_t i = lo; i < hi; i++) {
            int64_t b = i >> 1;
            uint64_t v = tmp.u[64 * (i & 1) + (b & 63)][b >> 6];
            acc[wb + i] += (v ^ mneg) - mneg;
        }
    }
    sa_wipe64((uint64_t *)rk, sizeof rk / sizeof(uint64_t));
    sa_wipe64(st.u[0], sizeof st / sizeof(uint64_t));
    sa_wipe64(tmp.u[0], sizeof tmp / sizeof(uint64_t));
}

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

/* Whether the CPU has VAES (asked once). */
static int sa_vaes(void)
{
    static int vaes = -1;
    if (vaes < 0) vaes = ppml_cpu_vaes();
    return vaes;
}

/* The body run at ISA level `isa`; force = 1 asks for AES-NI (xmm) at the avx2 and avx512
 * levels (tests). */
static int sa_path(int isa, int force)
{
#if PPML_X86
    if (isa >= PPML_ISA_AVX2 && force == 1) return SA_PATH_AESNI;
    if (isa >= PPML_ISA_AVX512 && sa_vaes()) return SA_PATH_VAES512;
    if (isa >= PPML_ISA_AVX2) return sa_vaes() ? SA_PATH_VAES256 : SA_PATH_AESNI;
#else
    (void)isa; (void)force;
#endif
    return SA_PATH_GENERIC;
}

/* acc (D words) = (base ? base : acc) + sum_j (signs[j] < 0 ? -1 : +1) * KS(keys[16 j ..
 * 16 j + 16)); returns 0, or -2 when the key schedules cannot be allocated. With base,
 * each chunk is copied in while it is in L1 (one pass instead of a copy plus the masks).
 * The body is chosen once, from ppml_isa (sa_path). */
static int sa_masks_add(uint64_t *acc, const uint64_t *base, int64_t D, const uint8_t *keys,
                        const int8_t *signs, int64_t m, int force, int nthreads)
{
    const int path = sa_path(ppml_isa, force);
    if (D <= 0) return 0;
    if (m <= 0) {
        if (base) memcpy(acc, base, (size_t)D * sizeof(uint64_t));
        return 0;
    }
    sa_key *ks = (sa_key *)malloc((size_t)m * sizeof(sa_key));
    if (!ks) return -2;
    for (int64_t j = 0; j < m; j++) {
#if PPML_X86
        if (path != SA_PATH_GENERIC) { sa_expand(keys + 16 * j, ks + j); continue; }
#endif
        sa_expand_generic(keys + 16 * j, ks + j);
    }
    int64_t nchunks = (D + SA_CHUNK - 1) / SA_CHUNK;
    #pragma omp parallel for num_threads(nthreads) schedule(dynamic, 1)
    for (int64_t c = 0; c < nchunks; c++) {
        int64_t w0 = c * SA_CHUNK, w1 = w0 + SA_CHUNK < D ? w0 + SA_CHUNK : D;
        if (base) memcpy(acc + w0, base + w0, (size_t)(w1 - w0) * sizeof(uint64_t));
        for (int64_t j = 0; j < m; j++) {
            const int neg = signs[j] < 0;
            switch (path) {
#if PPML_X86
            case SA_PATH_VAES512: sa_add_range_vaes(acc, w0, w1, ks + j, neg); break;
            case SA_PATH_VAES256: sa_add_range_vaes256(acc, w0, w1, ks + j, neg); break;
            case SA_PATH_AESNI: sa_add_range_avx2_ni(acc, w0, w1, ks + j, neg); break;
#endif
            default: sa_add_range_generic(acc, w0, w1, ks + j, neg); break;
            }
        }
    }
    sa_wipe(ks, (size_t)m * sizeof(sa_key));
    free(ks);
    return 0;
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
