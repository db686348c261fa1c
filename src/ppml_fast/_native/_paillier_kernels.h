/* Batched big-integer kernels for Paillier encryption, on GMP (the copy that gmpy2 ships).
 *
 * Numbers travel as rows of little-endian 64-bit limbs: a batch of N numbers of L limbs is
 * one C-contiguous uint64 block of N*L words (row stride `s` words; s = 0 repeats one row).
 * A row is read in place through mpz_roinit_n (no copy; high zero limbs are fine) and a
 * result is written back zero-padded to the row width. Nothing here validates: the caller
 * hands over values already reduced below their moduli and outputs wide enough for them.
 *
 * Every loop is an OpenMP loop over independent numbers, so each thread owns its mpz_t
 * temporaries (declared inside the per-number helpers) and results do not depend on the
 * thread count. GMP is thread-safe for distinct outputs with shared read-only inputs.
 *
 * Secret exponents (p-1, q-1, n mod p(p-1)) go through mpz_powm_sec, whose running time and
 * memory accesses do not depend on the exponent's bits. The DJN exponent alpha is secret
 * too: its fixed-base table walk reads every entry of each window and keeps one by masks,
 * and multiplies once per window whatever the digit (constant time with the IFMA AMM or
 * GMP's mpn_sec_mul/mpn_sec_div_r). Public exponents (n, plaintext multipliers) use
 * mpz_powm or the IFMA sliding-window power.
 *
 * Scratch space lives on the stack (contexts of ~6 KB, variable-length arrays of a few
 * limb rows): ppml_fast.paillier caps n at 65536 bits, so no kernel can fail to allocate
 * part-way and leave an output half written.
 */
#ifndef PPML_PAILLIER_KERNELS_H
#define PPML_PAILLIER_KERNELS_H

#include <stdint.h>
#include <string.h>
#include <gmp.h>

#include "_paillier_ct.h"
#include "_paillier_ifma.h"
#include "_paillier_v4.h"
#include "_paillier_adx.h"

typedef uint64_t u64;

static inline mpz_srcptr pk_view(mpz_ptr tmp, const u64 *row, int64_t L)
{
    return mpz_roinit_n(tmp, (const mp_limb_t *)row, (mp_size_t)L);
}

static inline void pk_store(u64 *dst, int64_t L, mpz_srcptr v)
{
    size_t k = mpz_size(v);
    if (k > (size_t)L) k = (size_t)L;  /* callers guarantee v fits; never overrun */
    if (k) memcpy(dst, mpz_limbs_read(v), k * sizeof(u64));
    if ((int64_t)k < L) memset(dst + k, 0, (size_t)(L - (int64_t)k) * sizeof(u64));
}

static inline void pk_mulmod(mpz_ptr r, mpz_srcptr a, mpz_srcptr b, mpz_srcptr m, mpz_ptr t)
{
    mpz_mul(t, a, b);
    mpz_tdiv_r(r, t, m);
}

/* ---- elementwise ------------------------------------------------------------------- */

/* r = a * b mod m on raw limbs, all of exactly L limbs with m's top limb nonzero and a, b
 * already below m (r may alias a or b). tp: 2L scratch limbs, qp: L + 1. No allocation:
 * mpn_mul_n + mpn_tdiv_qr skip the mpz calls' size checks and reallocation. */
static inline void pk_mulmod_n(u64 *r, const u64 *a, const u64 *b, const u64 *m, int64_t L,
                               u64 *tp, u64 *qp)
{
    if (a == b) mpn_sqr((mp_ptr)tp, (mp_srcptr)a, (mp_size_t)L);
    else mpn_mul_n((mp_ptr)tp, (mp_srcptr)a, (mp_srcptr)b, (mp_size_t)L);
    mpn_tdiv_qr((mp_ptr)qp, (mp_ptr)r, 0, (mp_srcptr)tp, (mp_size_t)(2 * L), (mp_srcptr)m,
                (mp_size_t)L);
}

/* out[i] = a[i] * b[i] mod m; a, b rows of exactly Lm limbs below m (m's top limb nonzero);
 * a stride of 0 repeats one row. */
static void pk_mulmod_rows(const u64 *a, int64_t sa, const u64 *b, int64_t sb, const u64 *m,
                           int64_t Lm, u64 *out, int64_t N, int nthreads)
{
    pk_mont52 ctx, *mc = NULL;
    if (pk_use_ifma(Lm) && N > 0) {
        pk_mont52_init(&ctx, m, Lm);
        mc = &ctx;
    }
    #pragma omp parallel num_threads(nthreads)
    {
        u64 tp[3 * Lm + 1];
        #pragma omp for schedule(static)
        for (int64_t i = 0; i < N; i++) {
            if (mc) pk_mulmod52(out + i * Lm, a + i * sa, b + i * sb, Lm, mc);
            else pk_mulmod_n(out + i * Lm, a + i * sa, b + i * sb, m, Lm, tp, tp + 2 * Lm);
        }
    }
}

/* out[i] = a[i] ^ (+-e[i]) mod m, the sign from neg[i] (NULL: all positive). A negative
 * power inverts a[i] first; a row that has no inverse mod m gets 0 and bad[i] = 1.
 * secure != 0 uses mpz_powm_sec (for secret exponents; needs an odd m). Returns the count
 * of rows with no inverse. */
static int64_t pk_powm_rows(const u64 *a, int64_t sa, int64_t La, const u64 *e, int64_t se,
                            int64_t Le, const uint8_t *neg, int64_t sn, const u64 *m,
                            int64_t Lm, int secure, u64 *out, int64_t so, uint8_t *bad,
                            int64_t N, int nthreads)
{
    mpz_t M;
    mpz_srcptr mv = pk_view(M, m, Lm);
    int64_t nbad = 0;
    pk_mont52 ctx, *mc = NULL;
    if (!secure && so == Lm && pk_use_ifma(Lm) && N > 0) {
        pk_mont52_init(&ctx, m, Lm);
        mc = &ctx;
    }
    #pragma omp parallel for num_threads(nthreads) schedule(dynamic, 1) reduction(+:nbad)
    for (int64_t i = 0; i < N; i++) {
        mpz_t va, ve, base, r;
        mpz_init2(base, (mp_bitcnt_t)(Lm * 64));
        mpz_init2(r, (mp_bitcnt_t)(Lm * 64));
        mpz_srcptr ev = pk_view(ve, e + i * se, Le);
        int ok = 1, done = 0;
        if (mpz_sgn(ev) == 0) {
            mpz_set_ui(base, 1);         /* x^0 = 1, inverse or not */
        } else if (neg && neg[i * sn]) {
            ok = mpz_invert(base, pk_view(va, a + i * sa, La), mv);
        } else {
            mpz_tdiv_r(base, pk_view(va, a + i * sa, La), mv);
        }
        if (!ok) {
            mpz_set_ui(r, 0);
            nbad++;
        } else if (mpz_sgn(ev) == 0) {
            mpz_set_ui(r, 1);
            mpz_tdiv_r(r, r, mv);
        } else if (mc) {
            u64 *row = out + i * so;
            pk_store(row, Lm, base);
            pk_powm52(row, Lm, row, e + i * se, Le, mc);
            done = 1;
        } else if (secure) {
            mpz_powm_sec(r, base, ev, mv);
        } else {
            mpz_powm(r, base, ev, mv);
        }
        if (bad) bad[i] = (uint8_t)!ok;
        if (!done) pk_store(out + i * so, so ? so : Lm, r);
        mpz_clear(base);
        mpz_clear(r);
    }
    return nbad;
}

/* out[g] = prod_k a[g, k] mod m for G groups of K rows (K = 0 gives 1), rows of exactly Lm
 * limbs below m. With fewer groups than threads, each group is cut into `parts` chunks
 * whose products go to `part` (G*parts rows, caller-allocated) and are multiplied at the
 * end. The order of multiplication is fixed, but any order gives the same residue. */
static void pk_prod_chunk(const u64 *a, int64_t k0, int64_t k1, const u64 *m, int64_t Lm,
                          u64 *acc, u64 *tp, const pk_mont52 *mc)
{
    memset(acc, 0, (size_t)Lm * sizeof(u64));
    if (k1 <= k0) { acc[0] = 1; if (Lm == 1 && m[0] == 1) acc[0] = 0; return; }
    if (mc && k1 - k0 >= 8) {
        /* Montgomery chain: prod_k a_k R^-(len-1), then one AMM by R^len mod M */
        uint64_t x[PK_MAXD], y[PK_MAXD];
        int nd = 8 * mc->nv;
        pk_to52(x, nd, a + k0 * Lm, Lm);
        for (int64_t k = k0 + 1; k < k1; k++) {
            pk_to52(y, nd, a + k * Lm, Lm);
            pk_amm52(x, x, y, mc);
        }
        mpz_t M, R, e;
        mpz_init(R); mpz_init(e);
        mpz_srcptr mv = pk_view(M, m, Lm);
        mpz_setbit(R, (mp_bitcnt_t)(52 * mc->K));
        mpz_mod(R, R, mv);
        mpz_set_ui(e, (unsigned long)(k1 - k0));
        mpz_powm(R, R, e, mv);                  /* R^len mod M */
        pk_store(tp, Lm, R);
        pk_to52(y, nd, tp, Lm);
        pk_amm52(x, x, y, mc);
        pk_canon52(x, mc);
        pk_from52(acc, Lm, x, nd);
        mpz_clear(R); mpz_clear(e);
        return;
    }
    memcpy(acc, a + k0 * Lm, (size_t)Lm * sizeof(u64));
    for (int64_t k = k0 + 1; k < k1; k++)
        pk_mulmod_n(acc, acc, a + k * Lm, m, Lm, tp, tp + 2 * Lm);
}

static void pk_prod_groups(const u64 *a, int64_t G, int64_t K, const u64 *m, int64_t Lm,
                           u64 *out, u64 *part, int64_t parts, int nthreads)
{
    int64_t tasks = G * parts;
    pk_mont52 ctx, *mc = NULL;
    if (pk_use_ifma(Lm) && K >= 8) {
        pk_mont52_init(&ctx, m, Lm);
        mc = &ctx;
    }
    #pragma omp parallel num_threads(nthreads)
    {
        u64 tp[3 * Lm + 1];
        #pragma omp for schedule(dynamic, 1)
        for (int64_t task = 0; task < tasks; task++) {
            int64_t g = task / parts, c = task % parts;
            int64_t k0 = K * c / parts, k1 = K * (c + 1) / parts;
            pk_prod_chunk(a + g * K * Lm, k0, k1, m, Lm,
                          parts > 1 ? part + task * Lm : out + g * Lm, tp, mc);
        }
    }
    if (parts > 1) {
        u64 tp[3 * Lm + 1];
        for (int64_t g = 0; g < G; g++)
            pk_prod_chunk(part + g * parts * Lm, 0, parts, m, Lm, out + g * Lm, tp, NULL);
    }
}

/* ---- encryption -------------------------------------------------------------------- */

/* The plaintext factor g^m = (1+n)^m = 1 + n*m mod n^2 for m = +-|m| (|m| < n). */
static inline void pk_nude(mpz_ptr r, const u64 *mabs, int64_t Lmsg, int neg, mpz_srcptr n,
                           mpz_srcptr n2)
{
    mpz_t vm;
    mpz_mul(r, n, pk_view(vm, mabs, Lmsg));
    if (neg && mpz_sgn(r)) mpz_sub(r, n2, r);
    mpz_add_ui(r, r, 1);
}

/* -m^-1 mod 2^64 for an odd m0 (Newton's iteration: each step doubles the correct bits). */
static inline u64 pk_mont64_minv(u64 m0)
{
    u64 x = m0;                      /* correct to 3 bits: m0 * m0 = 1 mod 8 */
    for (int k = 0; k < 5; k++) x *= 2 - m0 * x;
    return (u64)0 - x;
}

/* r = a * b * R^-1 mod m with R = 2^(64 L), for a, b < m, m odd with L limbs (top limb
 * nonzero). Montgomery multiplication, operand-scanning with GMP's mpn_addmul_1 (the
 * primitive its mpn_sec_* functions are built from: no branch or memory index depends
 * on the values), then a branch-free final subtraction: the result is chosen by masks
 * from t and t - m. t: scratch of 2 L + 2 limbs. r may alias a or b. */
static void pk_mont64_mul(u64 *r, const u64 *a, const u64 *b, const u64 *m, int64_t L,
                          u64 minv, u64 *t)
{
    u64 *d = t + L + 2;
    memset(t, 0, (size_t)(L + 2) * sizeof(u64));
    for (int64_t i = 0; i < L; i++) {
        /* t += a[i] b; then t += q m with q making t[0] = 0; then t /= 2^64 */
        u64 c = mpn_addmul_1((mp_ptr)t, (mp_srcptr)b, (mp_size_t)L, (mp_limb_t)a[i]);
        u64 s = t[L] + c;
        t[L + 1] += (u64)(s < c);
        t[L] = s;
        u64 q = t[0] * minv;
        c = mpn_addmul_1((mp_ptr)t, (mp_srcptr)m, (mp_size_t)L, (mp_limb_t)q);
        s = t[L] + c;
        t[L + 1] += (u64)(s < c);
        t[L] = s;
        memmove(t, t + 1, (size_t)(L + 1) * sizeof(u64));
        t[L + 1] = 0;
    }
    /* t < 2m (t[L] is its carry limb): keep t - m unless that borrows out of t[L] */
    u64 borrow = (u64)mpn_sub_n((mp_ptr)d, (mp_srcptr)t, (mp_srcptr)m, (mp_size_t)L);
    u64 keep_t = (~t[L] & borrow) & 1;         /* t[L] = 0 and t < m */
    u64 mask = (u64)0 - keep_t;
    for (int64_t j = 0; j < L; j++) r[j] = (t[j] & mask) | (d[j] & ~mask);
}

/* h_s^alpha mod n^2 from the fixed-base table, rows of L2 limbs: acc gets L2 limbs. The
 * table's entries are in Montgomery form, table[j][d] = h_s^(d * 2^(w*j)) R mod n^2
 * (entry 0 = R mod n^2; pk_table_to_mont64), so each Montgomery product by one keeps the
 * accumulator in plain form: starting from 1, acc = h_s^alpha after the last window.
 * Every window selects its entry in constant time and multiplies even for a zero digit,
 * so neither time nor memory access depends on alpha. */
static void pk_djn_power_part(u64 *acc, const u64 *alpha, int64_t La, const u64 *table,
                              int w, int64_t j0, int64_t j1, int64_t L2, const u64 *n2,
                              const u64 *start)
{
    int64_t per = (int64_t)1 << w;
    u64 minv = pk_mont64_minv(n2[0]);
    u64 sel[L2], scratch[3 * L2 + 2];
    if (start) {
        memcpy(acc, start, (size_t)L2 * sizeof(u64));
    } else {
        memset(acc, 0, (size_t)L2 * sizeof(u64));
        acc[0] = 1;
    }
    for (int64_t j = j0; j < j1; j++) {
        u64 d = (j * w) >> 6 < La ? pk_window_digit(alpha, La, j, w) : 0;
        pk_ct_select(sel, table + j * per * L2, per, L2, d);
        pk_mont64_mul(acc, acc, sel, n2, L2, minv, scratch);
    }
    pk_wipe(sel, sizeof sel);
    pk_wipe(scratch, sizeof scratch);
}

static void pk_djn_power(u64 *acc, const u64 *alpha, int64_t La, const u64 *table, int w,
                         int64_t nwin, int64_t L2, const u64 *n2)
{
    pk_djn_power_part(acc, alpha, La, table, w, 0, nwin, L2, n2, NULL);
}

/* The same power with its windows split between two threads (for calls with fewer rows
 * than threads: one encryption then takes about half the time): the lower half of the
 * windows walks from 1, the upper half from R mod n^2 (entry 0 of the Montgomery-form
 * table), so one more Montgomery product joins them: lo * (hi R) R^-1 = h_s^alpha, with
 * no value-dependent step between the halves. */
static void pk_djn_power_split(u64 *acc, const u64 *alpha, int64_t La, const u64 *table,
                               int w, int64_t nwin, int64_t L2, const u64 *n2)
{
    int64_t half = nwin / 2;
    u64 lo[L2], hi[L2], scratch[3 * L2 + 2];
    #pragma omp parallel sections num_threads(2)
    {
        #pragma omp section
        pk_djn_power_part(lo, alpha, La, table, w, 0, half, L2, n2, NULL);
        #pragma omp section
        pk_djn_power_part(hi, alpha, La, table, w, half, nwin, L2, n2, table);
    }
    pk_mont64_mul(acc, lo, hi, n2, L2, pk_mont64_minv(n2[0]), scratch);
    pk_wipe(lo, sizeof lo);
    pk_wipe(hi, sizeof hi);
    pk_wipe(scratch, sizeof scratch);
}

/* ---- DJN walk in four AVX2 lanes (avx2 level, no IFMA) ------------------------------ */

/* The start value of a four-lane walk of q steps: each step is an AMM by a table entry in
 * 64-bit Montgomery form (E 2^(64 L2) mod n^2), i.e. a factor 2^(64 L2) R^-1 with R =
 * 2^(rb K), and a last AMM by 1 takes out R once more, so starting from
 * C = 2^(rb K (q + 1) - 64 L2 q) mod n^2 leaves the plain product. Public values. */
static void pk_djn_v4_start(u64 *cl, int64_t L2, const u64 *n2, const pk_v4_mod *c, int64_t q)
{
    mpz_t M, two, r;
    mpz_srcptr m = pk_view(M, n2, L2);
    int64_t e = (int64_t)c->rb * c->K * (q + 1) - 64 * L2 * q;
    mpz_init_set_ui(two, 2);
    mpz_init(r);
    if (e < 0) {
        mpz_invert(two, two, m);   /* n^2 is odd */
        e = -e;
    }
    mpz_powm_ui(r, two, (unsigned long)e, m);
    pk_store(cl, L2, r);
    mpz_clear(two); mpz_clear(r);
}

#if PPML_X86
/* sel = the entries of one table window (per entries of L2 limbs) chosen by the lanes'
 * digits dv, as rb-bit digits (K vectors): every entry is read, broadcast to the four lanes
 * and kept by each lane's mask; sl (L2 vectors) is scratch. */
PPML_TARGET_AVX2 static void pk_djn_v4_select(__m256i *sel, __m256i *sl, const u64 *win,
                                              int64_t per, int64_t L2, __m256i dv,
                                              const pk_v4_mod *c)
{
    for (int64_t k = 0; k < L2; k++) sl[k] = _mm256_setzero_si256();
    for (int64_t d = 0; d < per; d++) {
        const __m256i mk = _mm256_cmpeq_epi64(dv, _mm256_set1_epi64x(d));
        const u64 *row = win + d * L2;
        for (int64_t k = 0; k < L2; k++)
            sl[k] = _mm256_or_si256(sl[k], _mm256_and_si256(_mm256_set1_epi64x((long long)row[k]), mk));
    }
    const int rb = c->rb;
    const __m256i mask = _mm256_set1_epi64x((long long)(((u64)1 << rb) - 1));
    for (int j = 0; j < c->K; j++) {
        int64_t bit = (int64_t)rb * j, li = bit >> 6, off = bit & 63;
        __m256i v = _mm256_setzero_si256();
        if (li < L2) {
            v = _mm256_srl_epi64(sl[li], _mm_cvtsi64_si128(off));
            if (off + rb > 64 && li + 1 < L2)
                v = _mm256_or_si256(v, _mm256_sll_epi64(sl[li + 1], _mm_cvtsi64_si128(64 - off)));
        }
        sel[j] = _mm256_and_si256(v, mask);
    }
}

/* accs[l] (L2 limbs) = h_s^alpha_l mod n^2 for four alphas (La limbs each) side by side in
 * the four AVX2 lanes, from the 64-bit Montgomery-form table: window by window, each lane's
 * entry chosen in constant time (pk_djn_v4_select reads all 2^w entries) and multiplied in,
 * zero digits included. start: pk_djn_v4_start for q = nwin, as digits in all four lanes
 * (4 K words). Returns -1 (accs untouched) when memory runs out. */
PPML_TARGET_AVX2 static int pk_djn_group_v4(u64 *const accs[4], const u64 *const alphas[4],
                                            int64_t La, const u64 *table, int w, int64_t nwin,
                                            int64_t L2, const pk_v4_mod *c, const u64 *start)
{
    const int K = c->K;
    const int64_t per = (int64_t)1 << w;
    size_t words = (size_t)4 * (3 * (size_t)K + 2 * (size_t)K + 1 + (size_t)L2);
    u64 *buf = (u64 *)aligned_alloc(32, words * sizeof(u64));
    if (!buf) return -1;
    __m256i *x = (__m256i *)buf, *sel = x + K, *one = sel + K, *T = one + K;
    __m256i *sl = T + 2 * K + 1;
    memcpy(x, start, (size_t)4 * K * sizeof(u64));
    for (int j = 0; j < K; j++) one[j] = _mm256_setzero_si256();
    one[0] = _mm256_set1_epi64x(1);
    for (int64_t j = 0; j < nwin; j++) {
        u64 d[4];
        for (int l = 0; l < 4; l++)
            d[l] = (j * w) >> 6 < La ? pk_window_digit(alphas[l], La, j, w) : 0;
        pk_djn_v4_select(sel, sl, table + j * per * L2, per, L2,
                         _mm256_loadu_si256((const __m256i *)d), c);
        pk_v4_amm(x, x, sel, c, T);
    }
    pk_v4_amm(x, x, one, c, T);
    pk_v4_canon(x, c, sel);
    for (int l = 0; l < 4; l++) pk_v4_from_digits(accs[l], L2, buf, l, K, c->rb);
    pk_wipe(buf, words * sizeof(u64));
    free(buf);
    return 0;
}
#endif

/* Rows of the table (rows of Lm limbs, each < m) times R = 2^(64 Lm) mod m, in place: the
 * Montgomery form pk_djn_power reads. The table is public (powers of h_s). */
static void pk_table_to_mont64(u64 *table, int64_t rows, const u64 *m, int64_t Lm,
                               int nthreads)
{
    mpz_t M;
    pk_view(M, m, Lm);
    #pragma omp parallel for num_threads(nthreads) schedule(static)
    for (int64_t i = 0; i < rows; i++) {
        mpz_t x, v;
        mpz_init2(x, (mp_bitcnt_t)(2 * Lm * 64 + 64));
        mpz_mul_2exp(x, pk_view(v, table + i * Lm, Lm), (mp_bitcnt_t)(64 * Lm));
        mpz_mod(x, x, M);
        pk_store(table + i * Lm, Lm, x);
        mpz_clear(x);
    }
}

/* h_s^alpha for `count` <= PK_DJN_BLOCK alphas with a table in Montgomery form (entries
 * T R mod M as nd = 8*nv digits of 52 bits, see _paillier_ifma.h): the products start at
 * R mod M (the form of 1), stay in Montgomery form, and one AMM by 1 brings each back. The
 * walk goes window by window over the block, so each window of the table (2^w entries, ~10 KB at 2048 bits) is read from L1 for all of them
 * instead of streaming the whole table (2.6 MB, more than L2) once per encryption. Results
 * go to out (count rows of L2 limbs). */
#define PK_DJN_BLOCK 8
static void pk_djn_block52(u64 *out, const u64 *alpha, int64_t La, int64_t count,
                           const u64 *table, int w, int64_t nwin, int64_t L2,
                           const pk_mont52 *mc)
{
    int64_t per = (int64_t)1 << w;
    int nd = 8 * mc->nv;
    uint64_t x[PK_DJN_BLOCK][PK_MAXD], sel[PK_MAXD];
    for (int64_t b = 0; b < count; b++) memcpy(x[b], mc->rm, (size_t)nd * sizeof(u64));
    for (int64_t j = 0; j < nwin; j++) {
        const u64 *win = table + j * per * nd;
        for (int64_t b = 0; b < count; b++) {
            const u64 *ab = alpha + b * La;
            u64 d = (j * w) >> 6 < La ? pk_window_digit(ab, La, j, w) : 0;
            pk_ct_select52(sel, win, per, nd, d);
            pk_amm52(x[b], x[b], sel, mc);
        }
    }
    for (int64_t b = 0; b < count; b++) {
        pk_amm52(x[b], x[b], mc->one, mc);
        pk_canon52(x[b], mc);
        pk_from52(out + b * L2, L2, x[b], nd);
    }
    pk_wipe(x, sizeof x);
    pk_wipe(sel, sizeof sel);
}

/* out[i] = table[i] R mod M in Montgomery 52-bit digits (nd per row) for rows of Lm limbs. */
static void pk_table_to_mont52(const u64 *table, int64_t rows, const u64 *m, int64_t Lm,
                               u64 *out, int nthreads)
{
    pk_mont52 ctx, *mc = &ctx;
    pk_mont52_init(mc, m, Lm);
    int nd = 8 * mc->nv;
    #pragma omp parallel for num_threads(nthreads) schedule(static)
    for (int64_t i = 0; i < rows; i++) {
        uint64_t x[PK_MAXD];
        pk_to52(x, nd, table + i * Lm, Lm);
        pk_amm52(x, x, mc->rr, mc);
        pk_canon52(x, mc);
        memcpy(out + i * nd, x, (size_t)nd * sizeof(u64));
    }
}

/* Digits per Montgomery-form row for a modulus of Lm limbs (0: IFMA not in use). */
static int64_t pk_mont52_width(const u64 *m, int64_t Lm)
{
    if (!pk_use_ifma(Lm)) return 0;
    mpz_t M;
    size_t bits = mpz_sizeinbase(pk_view(M, m, Lm), 2);
    int K = (int)((bits + 2 + 51) / 52);
    return 8 * ((K + 7) / 8);
}

/* Obfuscators: mode 0 = DJN h_s^alpha from the table (rnd = alpha, La limbs);
 * mode 1 = classic r^n mod n^2 (rnd = r < n, public exponent n, mpz_powm);
 * mode 3 = no randomness: the rnd rows are existing ciphertexts (adds plaintexts to them);
 * mode 2 = classic r^n by CRT with the private key: r^(n mod p(p-1)) mod p^2 and the same
 * mod q^2 (secret exponents: mpz_powm_sec), joined as xp + p^2 * ((xq - xp) * u mod q^2),
 * u = (p^2)^-1 mod q^2.
 * Then out[i] = base[i] * obfuscator mod n^2, where base is the plaintext factor of msg
 * (is_msg != 0: |m| rows + neg flags) or an existing ciphertext row (re-randomising). */
typedef struct {
    const u64 *n, *n2;
    int64_t Ln, L2;
    const u64 *table; int w; int64_t nwin;          /* mode 0 */
    int mont;                                       /* mode 0: table in Montgomery form */
    const u64 *p2, *q2, *ep, *eq, *u;               /* mode 2 */
    int64_t Lh;                                     /* limbs of p2, q2, ep, eq, u */
} pk_enc_key;

static void pk_encrypt_rows(int mode, const pk_enc_key *K, const u64 *rnd, int64_t Lr,
                            const u64 *base, int64_t Lb, const uint8_t *neg, int is_msg,
                            u64 *out, int64_t N, int nthreads)
{
    mpz_t Nv, N2v, P2, Q2, EP, EQ, U;
    mpz_srcptr n = pk_view(Nv, K->n, K->Ln), n2 = pk_view(N2v, K->n2, K->L2);
    mpz_srcptr p2 = NULL, q2 = NULL, ep = NULL, eq = NULL, u = NULL;
    if (mode == 2) {
        p2 = pk_view(P2, K->p2, K->Lh); q2 = pk_view(Q2, K->q2, K->Lh);
        ep = pk_view(EP, K->ep, K->Lh); eq = pk_view(EQ, K->eq, K->Lh);
        u = pk_view(U, K->u, K->Lh);
    }
    pk_mont52 ctx, ctxp, ctxq, *mc = NULL, *mcp = NULL, *mcq = NULL;
    if ((mode == 0 && K->mont) || (mode == 1 && pk_use_ifma(K->L2))) {
        pk_mont52_init(&ctx, K->n2, K->L2);
        mc = &ctx;
    }
    if (mode == 2 && pk_use_ifma(K->Lh)) {
        pk_mont52_init(&ctxp, K->p2, K->Lh);   /* secret moduli: wiped below */
        pk_mont52_init(&ctxq, K->q2, K->Lh);
        mcp = &ctxp;
        mcq = &ctxq;
    }
    if (mode == 0 && mc) {  /* the obfuscators first, in blocks, into out */
        int64_t nblk = (N + PK_DJN_BLOCK - 1) / PK_DJN_BLOCK;
        #pragma omp parallel for num_threads(nthreads) schedule(dynamic, 1)
        for (int64_t blk = 0; blk < nblk; blk++) {
            int64_t i0 = blk * PK_DJN_BLOCK;
            int64_t cnt = N - i0 < PK_DJN_BLOCK ? N - i0 : PK_DJN_BLOCK;
            pk_djn_block52(out + i0 * K->L2, rnd + i0 * Lr, Lr, cnt, K->table, K->w, K->nwin,
                           K->L2, mc);
        }
    }
    /* fewer DJN rows than threads (without IFMA): rows one after another, each walk split
     * between two threads (pk_djn_power_split), where a walk is long enough (n^2 of 48
     * limbs and more: keys from 1536 bits) to pay for waking the second thread */
    int split = mode == 0 && !mc && N < nthreads && nthreads >= 2 && K->L2 >= 48;
    /* the avx2 level without IFMA: the walks four at a time in the four AVX2 lanes
     * (pk_djn_group_v4), obfuscators into out first, like the IFMA blocks. A group of four
     * costs about 2.4 single walks (pk_djn_power), so it is taken only when the groups,
     * spread over the threads, finish before the rows one by one would. */
    int v4 = 0;
#if PPML_X86
    int64_t grp_rounds = ((N + 3) / 4 + nthreads - 1) / nthreads;
    int64_t row_rounds = (N + nthreads - 1) / nthreads;
    if (mode == 0 && !mc && N >= 4 && 12 * grp_rounds < 5 * row_rounds &&
        pk_use_v4((int64_t)mpz_sizeinbase(n2, 2))) {
        pk_v4_mod v4c;
        const u64 *ms[4] = {K->n2, K->n2, K->n2, K->n2};
        if (!pk_v4_mod_init(&v4c, ms, K->L2, (int64_t)mpz_sizeinbase(n2, 2))) {
            u64 *start = (u64 *)malloc((size_t)(4 * v4c.K + K->L2) * sizeof(u64));
            if (start) {
                u64 *cl = start + 4 * v4c.K;
                pk_djn_v4_start(cl, K->L2, K->n2, &v4c, K->nwin);
                for (int l = 0; l < 4; l++) pk_v4_to_digits(start, l, v4c.K, v4c.rb, cl, K->L2);
                int64_t ngrp = (N + 3) / 4;
                #pragma omp parallel for num_threads(nthreads) schedule(dynamic, 1)
                for (int64_t g = 0; g < ngrp; g++) {
                    u64 spare[K->L2];
                    const u64 *al[4];
                    u64 *acc[4];
                    for (int l = 0; l < 4; l++) {
                        int64_t i = 4 * g + l < N ? 4 * g + l : N - 1;
                        al[l] = rnd + i * Lr;
                        acc[l] = 4 * g + l < N ? out + i * K->L2 : spare;
                    }
                    if (pk_djn_group_v4(acc, al, Lr, K->table, K->w, K->nwin, K->L2, &v4c,
                                        start))
                        for (int l = 0; l < 4 && 4 * g + l < N; l++)
                            pk_djn_power(acc[l], al[l], Lr, K->table, K->w, K->nwin, K->L2,
                                         K->n2);
                    pk_wipe(spare, sizeof spare);
                }
                free(start);
                v4 = 1;
                split = 0;
            }
            pk_v4_mod_free(&v4c);
        }
    }
#endif
    #pragma omp parallel for num_threads(nthreads) schedule(dynamic, 1) if(!split)
    for (int64_t i = 0; i < N; i++) {
        mpz_t obf, t, b, vr, vb, vo;
        mpz_init2(obf, (mp_bitcnt_t)(K->L2 * 64 + 64));
        mpz_init2(t, (mp_bitcnt_t)(2 * K->L2 * 64 + 64));
        mpz_init2(b, (mp_bitcnt_t)(K->L2 * 64 + 64));
        const u64 *ri = rnd + i * Lr;
        if (mode == 0 && (mc || v4)) {
            mpz_set(obf, pk_view(vo, out + i * K->L2, K->L2));  /* from the block pass */
        } else if (mode == 0) {
            u64 tp[K->L2];
            if (split)
                pk_djn_power_split(tp, ri, Lr, K->table, K->w, K->nwin, K->L2, K->n2);
            else
                pk_djn_power(tp, ri, Lr, K->table, K->w, K->nwin, K->L2, K->n2);
            mpz_set(obf, pk_view(vo, tp, K->L2));
            pk_wipe(tp, sizeof tp);
        } else if (mode == 1 && mc) {
            u64 tp[2 * K->L2];
            memset(tp, 0, (size_t)K->L2 * sizeof(u64));
            memcpy(tp, ri, (size_t)(Lr < K->L2 ? Lr : K->L2) * sizeof(u64));  /* r < n */
            pk_powm52(tp + K->L2, K->L2, tp, K->n, K->Ln, mc);
            mpz_set(obf, pk_view(vo, tp + K->L2, K->L2));
            pk_wipe(tp, sizeof tp);
        } else if (mode == 1) {
            mpz_powm(obf, pk_view(vr, ri, Lr), n, n2);
        } else if (mode == 3) {
            mpz_set(obf, pk_view(vr, ri, Lr));
        } else {
            mpz_t xp, xq;
            mpz_init(xp); mpz_init(xq);
            mpz_srcptr r = pk_view(vr, ri, Lr);
            if (mcp) {
                /* r^n mod p^2 and q^2 with the public exponent n itself (not n mod p(p-1)):
                 * the sequence of AMMs depends only on n and the AMMs' timing on no value */
                u64 tp[2 * K->Lh];
                mpz_tdiv_r(b, r, p2);
                pk_store(tp, K->Lh, b);
                pk_powm52(tp + K->Lh, K->Lh, tp, K->n, K->Ln, mcp);
                mpz_set(xp, pk_view(vb, tp + K->Lh, K->Lh));
                mpz_tdiv_r(b, r, q2);
                pk_store(tp, K->Lh, b);
                pk_powm52(tp + K->Lh, K->Lh, tp, K->n, K->Ln, mcq);
                mpz_set(xq, pk_view(vb, tp + K->Lh, K->Lh));
                pk_wipe(tp, sizeof tp);
            } else {
                mpz_tdiv_r(b, r, p2);
                mpz_powm_sec(xp, b, ep, p2);
                mpz_tdiv_r(b, r, q2);
                mpz_powm_sec(xq, b, eq, q2);
            }
            mpz_sub(t, xq, xp);
            mpz_mul(b, t, u);
            mpz_mod(t, b, q2);          /* (xq - xp) u mod q^2, in [0, q^2) */
            mpz_mul(obf, t, p2);
            mpz_add(obf, obf, xp);      /* < p^2 q^2 = n^2 */
            mpz_clear(xp); mpz_clear(xq);
        }
        if (is_msg) pk_nude(b, base + i * Lb, Lb, neg ? neg[i] : 0, n, n2);
        else mpz_set(b, pk_view(vb, base + i * Lb, Lb));
        pk_mulmod(obf, obf, b, n2, t);
        pk_store(out + i * K->L2, K->L2, obf);
        mpz_clear(obf); mpz_clear(t); mpz_clear(b);
    }
    if (mcp) { pk_wipe(&ctxp, sizeof ctxp); pk_wipe(&ctxq, sizeof ctxq); }
}

/* table[j][d] = h^(d * 2^(w*j)) mod m for j < nwin, 0 <= d < 2^w (entry 0 = 1; h < m,
 * rows of Lm limbs, m's top limb nonzero). The window bases are a chain of squarings
 * (serial); each window's multiples are independent (parallel). */
static void pk_fixed_base_table(const u64 *h, const u64 *m, int64_t Lm, int w, int64_t nwin,
                                u64 *table, int nthreads)
{
    int64_t per = (int64_t)1 << w;
    {
        u64 tp[3 * Lm + 1], x[Lm];
        memcpy(x, h, (size_t)Lm * sizeof(u64));
        for (int64_t j = 0; j < nwin; j++) {
            memcpy(table + (j * per + 1) * Lm, x, (size_t)Lm * sizeof(u64));
            if (j + 1 < nwin)
                for (int s = 0; s < w; s++) pk_mulmod_n(x, x, x, m, Lm, tp, tp + 2 * Lm);
        }
    }
    #pragma omp parallel num_threads(nthreads)
    {
        u64 tp[3 * Lm + 1];
        #pragma omp for schedule(dynamic, 1)
        for (int64_t j = 0; j < nwin; j++) {
            u64 *row = table + j * per * Lm;
            memset(row, 0, (size_t)Lm * sizeof(u64));
            row[0] = 1;
            for (int64_t d = 2; d < per; d++)
                pk_mulmod_n(row + d * Lm, row + (d - 1) * Lm, row + Lm, m, Lm, tp,
                            tp + 2 * Lm);
        }
    }
}

/* ---- decryption -------------------------------------------------------------------- */

typedef struct {
    const u64 *p, *q, *p2, *q2, *pm1, *qm1, *hp, *hq, *pinv, *n, *n2, *maxint;
    int64_t Lh;   /* limbs of p, q, pm1, qm1, hp, hq, pinv */
    int64_t Lh2;  /* limbs of p2, q2 */
    int64_t Ln, L2;
} pk_dec_key;

/* m_x = L_x(y) h_x mod x for y = c^(x-1) mod x^2 (L_x(y) = (y - 1) / x); t is scratch. */
static inline void pk_dec_lfun(mpz_ptr mx, mpz_ptr y, mpz_srcptr x_, mpz_srcptr hx, mpz_ptr t)
{
    mpz_sub_ui(y, y, 1);
    mpz_divexact(t, y, x_);
    mpz_mul(y, t, hx);
    mpz_tdiv_r(mx, y, x_);
}

/* m_x = L_x(c^(x-1) mod x^2) h_x mod x for a prime factor x (secret exponent x - 1:
 * mpz_powm_sec); x and t are scratch. */
static inline void pk_dec_half(mpz_ptr mx, mpz_srcptr c, mpz_srcptr x_, mpz_srcptr x2,
                               mpz_srcptr xm1, mpz_srcptr hx, mpz_ptr x, mpz_ptr t)
{
    mpz_tdiv_r(x, c, x2);
    mpz_powm_sec(t, x, xm1, x2);
    pk_dec_lfun(mx, t, x_, hx, x);
}

#if PPML_X86
/* pk_dec_half with the MULX/ADX power (pk_adx_powm): c (Lc limbs) mod x^2 by
 * mpn_sec_div_r, then c^(x-1) mod x^2 in constant time. x2 (Lh2 limbs) and xm1 (Lh limbs)
 * are the key's rows; y and t are scratch. */
static void pk_dec_half_adx(mpz_ptr mx, const u64 *c, int64_t Lc, mpz_srcptr x_,
                            const u64 *x2, int64_t Lh2, const u64 *xm1, int64_t Lh,
                            mpz_srcptr hx, mpz_ptr y, mpz_ptr t)
{
    int64_t ll = pk_v4_size(x2, Lh2);
    u64 out[ll];
    mpz_t v;
    pk_adx_powm_mod(out, c, Lc, xm1, Lh, x2, ll);
    mpz_set(y, pk_view(v, out, ll));
    pk_dec_lfun(mx, y, x_, hx, t);
    pk_wipe(out, sizeof out);
}
#endif

/* The key's values as mpz views (no copies), shared by the rows of one call. */
typedef struct {
    mpz_t P, Q, P2, Q2, PM1, QM1, HP, HQ, PINV, Nn, N2, MX;
} pk_dec_views;

static void pk_dec_views_init(pk_dec_views *v, const pk_dec_key *K)
{
    pk_view(v->P, K->p, K->Lh); pk_view(v->Q, K->q, K->Lh);
    pk_view(v->P2, K->p2, K->Lh2); pk_view(v->Q2, K->q2, K->Lh2);
    pk_view(v->PM1, K->pm1, K->Lh); pk_view(v->QM1, K->qm1, K->Lh);
    pk_view(v->HP, K->hp, K->Lh); pk_view(v->HQ, K->hq, K->Lh);
    pk_view(v->PINV, K->pinv, K->Lh);
    pk_view(v->Nn, K->n, K->Ln); pk_view(v->N2, K->n2, K->L2);
    pk_view(v->MX, K->maxint, K->Ln);
}

/* m = m_p + p ((m_q - m_p) p^-1 mod q) into x, with its sign code (see pk_decrypt_rows);
 * t is scratch. */
static inline uint8_t pk_dec_join(const pk_dec_views *v, mpz_srcptr mp, mpz_srcptr mq,
                                  mpz_ptr x, mpz_ptr t)
{
    mpz_sub(x, mq, mp);
    mpz_mul(t, x, v->PINV);
    mpz_mod(x, t, v->Q);
    mpz_mul(t, x, v->P);
    mpz_add(x, t, mp);            /* m in [0, n) */
    if (mpz_cmp(x, v->MX) <= 0) return 0;
    mpz_sub(t, v->Nn, x);
    if (mpz_cmp(t, v->MX) <= 0) { mpz_set(x, t); return 1; }
    return 2;
}

/* Whether row c (Lc limbs) is a valid ciphertext: 0 < c < n^2 and gcd(c, n) = 1. */
static inline int pk_dec_valid(const pk_dec_views *v, mpz_srcptr cv, mpz_ptr x)
{
    if (mpz_sgn(cv) <= 0 || mpz_cmp(cv, v->N2) >= 0) return 0;
    mpz_tdiv_r(x, cv, v->P);
    if (!mpz_sgn(x)) return 0;
    mpz_tdiv_r(x, cv, v->Q);
    return mpz_sgn(x) != 0;
}

/* The half mod p^2 (half 0) or q^2 (half 1) of row crow into mx, on the MULX/ADX power
 * (adx) or mpz_powm_sec. */
static inline void pk_dec_half_any(int adx, const pk_dec_key *K, const pk_dec_views *v,
                                   const u64 *crow, int64_t Lc, int half, mpz_ptr mx,
                                   mpz_ptr x, mpz_ptr t)
{
    mpz_t vc;
#if PPML_X86
    if (adx) {
        if (half)
            pk_dec_half_adx(mx, crow, Lc, v->Q, K->q2, K->Lh2, K->qm1, K->Lh, v->HQ, x, t);
        else
            pk_dec_half_adx(mx, crow, Lc, v->P, K->p2, K->Lh2, K->pm1, K->Lh, v->HP, x, t);
        return;
    }
#endif
    (void)adx;
    if (half)
        pk_dec_half(mx, pk_view(vc, crow, Lc), v->Q, v->Q2, v->QM1, v->HQ, x, t);
    else
        pk_dec_half(mx, pk_view(vc, crow, Lc), v->P, v->P2, v->PM1, v->HP, x, t);
}

/* One row of pk_decrypt_rows; returns its sign code. With split, the halves mod p^2 and
 * mod q^2 run on two threads (for calls with fewer rows than threads: one decryption
 * then takes the time of one half). */
static uint8_t pk_decrypt_row(const pk_dec_key *K, const pk_dec_views *v, const u64 *crow,
                              int64_t Lc, u64 *orow, int split)
{
    mpz_t vc, x, x2, mp, mq, t, t2;
    mpz_init2(x, (mp_bitcnt_t)(K->Lh2 * 64 + 64));
    mpz_init2(t, (mp_bitcnt_t)(2 * K->Lh2 * 64 + 64));
    mpz_init2(x2, (mp_bitcnt_t)(K->Lh2 * 64 + 64));
    mpz_init2(t2, (mp_bitcnt_t)(2 * K->Lh2 * 64 + 64));
    mpz_init(mp); mpz_init(mq);
    mpz_srcptr cv = pk_view(vc, crow, Lc);
    uint8_t s = pk_dec_valid(v, cv, x) ? 0 : 3;
    if (!s) {
        /* the avx2 level on a CPU with ADX: the MULX/ADX constant-time power; else GMP's
         * mpz_powm_sec (pk_dec_half) */
        int adx = Lc >= K->Lh2 && pk_use_adx((K->Lh2 + 3) / 4 * 4);
        if (split) {
            #pragma omp parallel sections num_threads(2)
            {
                #pragma omp section
                pk_dec_half_any(adx, K, v, crow, Lc, 0, mp, x, t);
                #pragma omp section
                pk_dec_half_any(adx, K, v, crow, Lc, 1, mq, x2, t2);
            }
        } else {
            pk_dec_half_any(adx, K, v, crow, Lc, 0, mp, x, t);
            pk_dec_half_any(adx, K, v, crow, Lc, 1, mq, x, t);
        }
        s = pk_dec_join(v, mp, mq, x, t);
    } else {
        mpz_set_ui(x, 0);
    }
    pk_store(orow, K->Ln, x);
    /* the halves and the scratch held values mod the secret primes */
    pk_wipe(mpz_limbs_modify(t, (mp_size_t)(2 * K->Lh2 + 1)), (size_t)(2 * K->Lh2 + 1) * 8);
    pk_wipe(mpz_limbs_modify(t2, (mp_size_t)(2 * K->Lh2 + 1)), (size_t)(2 * K->Lh2 + 1) * 8);
    pk_wipe(mpz_limbs_modify(x2, (mp_size_t)(K->Lh2 + 1)), (size_t)(K->Lh2 + 1) * 8);
    mpz_clear(x); mpz_clear(t); mpz_clear(x2); mpz_clear(t2); mpz_clear(mp); mpz_clear(mq);
    return s;
}

/* CRT decryption: m_p = L_p(c^(p-1) mod p^2) * h_p mod p (likewise q), m = m_p + p *
 * ((m_q - m_p) p^-1 mod q). The signed plaintext goes to out (|m| limbs) and sign[i]:
 * 0 = m <= max_int, 1 = m >= n - max_int (out holds n - m), 2 = overflow (out holds m),
 * 3 = invalid ciphertext (c = 0, c >= n^2 or gcd(c, n) != 1; out zeroed). Returns the
 * count of invalid rows. Fewer rows than threads: the rows one after another, each on two
 * threads (its two halves); otherwise one row per thread. */
/* Rows i0 and i1 (i1 = i0 for a lone last row) with the four-lane power: lanes c_i0 mod
 * p^2, c_i0 mod q^2, c_i1 mod p^2, c_i1 mod q^2, exponents p - 1, q - 1. */
static void pk_decrypt_pair_v4(const pk_dec_key *K, const pk_dec_views *v,
                               const pk_v4_mod *mc, pk_v4_work *wk, const u64 *c, int64_t Lc,
                               u64 *out, uint8_t *sign, int64_t i0, int64_t i1)
{
    int64_t Lh2 = K->Lh2;
    u64 y[4 * Lh2];
    const u64 *ms[4] = {K->p2, K->q2, K->p2, K->q2};
    const u64 *es[4] = {K->pm1, K->qm1, K->pm1, K->qm1};
    const u64 *xs[4] = {c + i0 * Lc, c + i0 * Lc, c + i1 * Lc, c + i1 * Lc};
    u64 *outs[4] = {y, y + Lh2, y + 2 * Lh2, y + 3 * Lh2};
    pk_v4_group(mc, ms, Lh2, xs, Lc, es, K->Lh, outs, wk);
    mpz_t vc, vy, x, t, mp, mq;
    mpz_init2(x, (mp_bitcnt_t)(K->L2 * 64 + 64));
    mpz_init2(t, (mp_bitcnt_t)(2 * K->L2 * 64 + 64));
    mpz_init(mp); mpz_init(mq);
    for (int r = 0; r < 2; r++) {
        int64_t i = r ? i1 : i0;
        if (r && i1 == i0) break;
        uint8_t s = 3;
        if (pk_dec_valid(v, pk_view(vc, c + i * Lc, Lc), x)) {
            mpz_set(x, pk_view(vy, outs[2 * r], Lh2));
            pk_dec_lfun(mp, x, v->P, v->HP, t);
            mpz_set(x, pk_view(vy, outs[2 * r + 1], Lh2));
            pk_dec_lfun(mq, x, v->Q, v->HQ, t);
            s = pk_dec_join(v, mp, mq, x, t);
        } else {
            mpz_set_ui(x, 0);
        }
        pk_store(out + i * K->Ln, K->Ln, x);
        sign[i] = s;
    }
    pk_wipe(y, sizeof y);
    pk_wipe(mpz_limbs_modify(x, (mp_size_t)(K->L2 + 1)), (size_t)(K->L2 + 1) * 8);
    pk_wipe(mpz_limbs_modify(t, (mp_size_t)(2 * K->L2 + 1)), (size_t)(2 * K->L2 + 1) * 8);
    pk_wipe(mpz_limbs_modify(mp, (mp_size_t)K->Lh), (size_t)K->Lh * 8);
    pk_wipe(mpz_limbs_modify(mq, (mp_size_t)K->Lh), (size_t)K->Lh * 8);
    mpz_clear(x); mpz_clear(t); mpz_clear(mp); mpz_clear(mq);
}

/* pk_decrypt_rows with the four-lane AVX2 power, rows in pairs over the threads; returns
 * -1 (nothing written) when its context cannot be allocated. A thread that cannot get its
 * workspace decrypts its rows with pk_decrypt_row. */
static int64_t pk_decrypt_rows_v4(const pk_dec_key *K, const pk_dec_views *v, const u64 *c,
                                  int64_t Lc, u64 *out, uint8_t *sign, int64_t N, int nthreads)
{
    const u64 *ms[4] = {K->p2, K->q2, K->p2, K->q2};
    pk_v4_mod mc;
    /* the digit count from the public width of p^2 and q^2, not their bit lengths */
    if (Lc < K->Lh2 || pk_v4_mod_init(&mc, ms, K->Lh2, 64 * K->Lh2)) return -1;
    int64_t npairs = (N + 1) / 2, nbad = 0;
    #pragma omp parallel num_threads(nthreads) reduction(+:nbad)
    {
        pk_v4_work wk;
        int ok = pk_v4_work_init(&wk, &mc, Lc, K->Lh2) == 0;
        #pragma omp for schedule(dynamic, 1)
        for (int64_t g = 0; g < npairs; g++) {
            int64_t i0 = 2 * g, i1 = 2 * g + 1 < N ? 2 * g + 1 : 2 * g;
            if (ok) {
                pk_decrypt_pair_v4(K, v, &mc, &wk, c, Lc, out, sign, i0, i1);
            } else {
                sign[i0] = pk_decrypt_row(K, v, c + i0 * Lc, Lc, out + i0 * K->Ln, 0);
                if (i1 != i0)
                    sign[i1] = pk_decrypt_row(K, v, c + i1 * Lc, Lc, out + i1 * K->Ln, 0);
            }
            nbad += (sign[i0] == 3) + (i1 != i0 && sign[i1] == 3);
        }
        if (ok) pk_v4_work_free(&wk);
    }
    pk_v4_mod_free(&mc);
    return nbad;
}

static int64_t pk_decrypt_rows(const pk_dec_key *K, const u64 *c, int64_t Lc, u64 *out,
                               uint8_t *sign, int64_t N, int nthreads)
{
    pk_dec_views v;
    pk_dec_views_init(&v, K);
    int64_t nbad = 0;
    /* the constant-time four-lane power (two rows per group) where the avx2 level runs and
     * the pairs, spread over the threads, finish before the rows one by one would (a pair
     * costs about 1.1 rows on the MULX/ADX power); a lone row keeps its two halves on two
     * threads */
    int64_t pair_rounds = ((N + 1) / 2 + nthreads - 1) / nthreads;
    int64_t row_rounds = (N + nthreads - 1) / nthreads;
    if (N >= 2 && 9 * pair_rounds < 8 * row_rounds && pk_use_v4(64 * K->Lh2)) {
        nbad = pk_decrypt_rows_v4(K, &v, c, Lc, out, sign, N, nthreads);
        if (nbad >= 0) return nbad;
        nbad = 0;
    }
    if (N < nthreads) {
        for (int64_t i = 0; i < N; i++) {
            sign[i] = pk_decrypt_row(K, &v, c + i * Lc, Lc, out + i * K->Ln, nthreads >= 2);
            nbad += sign[i] == 3;
        }
        return nbad;
    }
    #pragma omp parallel for num_threads(nthreads) schedule(dynamic, 1) reduction(+:nbad)
    for (int64_t i = 0; i < N; i++) {
        sign[i] = pk_decrypt_row(K, &v, c + i * Lc, Lc, out + i * K->Ln, 0);
        nbad += sign[i] == 3;
    }
    return nbad;
}

/* ---- plaintext matrix products ----------------------------------------------------- */

/* out[i, j] = prod_k c[i, k] ^ (+-e[k, j]) mod m, for c (M x K rows of Lc limbs), e (K x J
 * rows of Le limbs, signs in neg), out (M x J rows of Lm limbs). Positive and negative
 * powers are multiplied separately and the negative product is inverted once; an output
 * whose negative product has no inverse gets bad = 1. */
static int64_t pk_matpow(const u64 *c, int64_t M, int64_t K, int64_t Lc, const u64 *e,
                         int64_t J, int64_t Le, const uint8_t *neg, const u64 *m, int64_t Lm,
                         u64 *out, uint8_t *bad, int nthreads)
{
    mpz_t MM;
    mpz_srcptr mv = pk_view(MM, m, Lm);
    int64_t nbad = 0;
    pk_mont52 ctx, *mc = NULL;
    if (Lc == Lm && pk_use_ifma(Lm) && M * J > 0) {
        pk_mont52_init(&ctx, m, Lm);
        mc = &ctx;
    }
    #pragma omp parallel for num_threads(nthreads) schedule(dynamic, 1) reduction(+:nbad)
    for (int64_t ij = 0; ij < M * J; ij++) {
        int64_t i = ij / J, j = ij % J;
        mpz_t pos, ng, x, t, vc, ve;
        mpz_init2(pos, (mp_bitcnt_t)(Lm * 64));
        mpz_init2(ng, (mp_bitcnt_t)(Lm * 64));
        mpz_init2(x, (mp_bitcnt_t)(Lm * 64));
        mpz_init2(t, (mp_bitcnt_t)(2 * Lm * 64));
        mpz_set_ui(pos, 1);
        mpz_set_ui(ng, 1);
        int have_neg = 0, ok = 1;
        for (int64_t k = 0; k < K; k++) {
            mpz_srcptr ev = pk_view(ve, e + (k * J + j) * Le, Le);
            if (!mpz_sgn(ev)) continue;
            if (mc) {
                u64 buf[Lm];
                pk_powm52(buf, Lm, c + (i * K + k) * Lc, e + (k * J + j) * Le, Le, mc);
                mpz_set(x, pk_view(vc, buf, Lm));
            } else {
                mpz_powm(x, pk_view(vc, c + (i * K + k) * Lc, Lc), ev, mv);
            }
            if (neg[k * J + j]) { pk_mulmod(ng, ng, x, mv, t); have_neg = 1; }
            else pk_mulmod(pos, pos, x, mv, t);
        }
        if (have_neg) {
            ok = mpz_invert(x, ng, mv);
            if (ok) pk_mulmod(pos, pos, x, mv, t);
            else { mpz_set_ui(pos, 0); nbad++; }
        }
        mpz_tdiv_r(pos, pos, mv);
        bad[ij] = (uint8_t)!ok;
        pk_store(out + ij * Lm, Lm, pos);
        mpz_clear(pos); mpz_clear(ng); mpz_clear(x); mpz_clear(t);
    }
    return nbad;
}

/* lt[i] = (a[i] < m) for rows of L limbs (the rejection step of sampling below n). */
static void pk_rows_below(const u64 *a, int64_t L, const u64 *m, uint8_t *lt, int64_t N)
{
    for (int64_t i = 0; i < N; i++) {
        const u64 *r = a + i * L;
        int res = 0;
        for (int64_t k = L - 1; k >= 0; k--) {
            if (r[k] != m[k]) { res = r[k] < m[k]; break; }
        }
        lt[i] = (uint8_t)res;
    }
}

#endif
