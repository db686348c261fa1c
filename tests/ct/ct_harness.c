/* Constant-time checks of the secret-exponent powers in src/ppml_fast/_native (driven by
 * tests/test_constant_time.py, which builds this file against gmpy2's GMP).
 *
 *   ct_harness list                          the paths, one a line: name, kind, availability
 *   ct_harness ctgrind <path> [seed]         one call with the secret marked undefined for
 *                                            valgrind's memcheck (the ctgrind technique), then
 *                                            the result checked against GMP's mpz_powm
 *   ct_harness dudect <path> <samples> [seed] timings of fixed-vs-random secret classes and
 *                                            Welch's t over several crops (dudect)
 *
 * Paths: the kernels (v4_powm: the four-lane AVX2 power of batched CRT decryption;
 * adx_powm: the MULX/ADX power of a lone ciphertext's CRT halves; djn_walk: the DJN
 * fixed-base walk; djn_v4: four DJN walks side by side in the AVX2 lanes; djn_split: the same walk in two halves joined mod n^2; djn_ifma: the
 * walk on IFMA, no valgrind run; powm_sec: GMP's mpn_sec_powm, inside mpz_powm_sec, the
 * generic level's decryption and CRT-encryption power) and negative controls that must be
 * flagged (leaky_powm: GMP's sliding-window mpz_powm; leaky_sqm: square-and-multiply that
 * branches on each exponent bit). A path is one entry of `paths` below.
 *
 * Secret classes (dudect): class 0 is one fixed secret of low Hamming weight (its top bit
 * and bit 0; a walk that skips zero digits is fastest there), class 1 a fresh random secret
 * with the same top bit, so the bit length never differs between the classes. Everything
 * public (moduli, bases, tables) is drawn the same way for both; the class of each
 * measurement is a fresh random bit, and both classes do the same preparation work.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <math.h>
#include <gmp.h>

#ifdef CT_NO_VALGRIND
#define VALGRIND_MAKE_MEM_UNDEFINED(p, n) ((void)(p), (void)(n))
#define VALGRIND_MAKE_MEM_DEFINED(p, n) ((void)(p), (void)(n))
#define VALGRIND_GET_VBITS(p, v, n) ((void)(p), (void)(v), (void)(n), 0)
#else
#include <valgrind/memcheck.h>
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

#include "_paillier_kernels.h"

/* ---- random numbers (xoshiro256**, seeded by splitmix64) ---------------------------- */

static uint64_t rs[4];

static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void rng_seed(uint64_t s)
{
    for (int i = 0; i < 4; i++) rs[i] = splitmix(&s);
}

static uint64_t rng(void)
{
    uint64_t r = ((rs[1] * 5) << 7 | (rs[1] * 5) >> 57) * 9, t = rs[1] << 17;
    rs[2] ^= rs[0]; rs[3] ^= rs[1]; rs[1] ^= rs[2]; rs[0] ^= rs[3];
    rs[2] ^= t; rs[3] = rs[3] << 45 | rs[3] >> 19;
    return r;
}

static void rand_limbs(u64 *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++) x[i] = rng();
}

/* A random odd number of exactly 64 L bits. */
static void rand_odd_modulus(u64 *m, int64_t L)
{
    rand_limbs(m, L);
    m[0] |= 1;
    m[L - 1] |= (u64)1 << 63;
}

static void *xalloc(size_t bytes)
{
    void *p = aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!p) { fprintf(stderr, "out of memory\n"); exit(2); }
    memset(p, 0, bytes);
    return p;
}

/* ---- the paths ---------------------------------------------------------------------- */

/* One path's state. `secret` holds `nsec` rows of `Ls` limbs (the exponents or alphas) and
 * each row's top bit (bit `ebits` - 1) is always set. */
typedef struct {
    int64_t Lm, Lx, Ls, ebits, nsec;
    u64 *m, *x, *secret, *out;
    int64_t Lout;               /* limbs of out: nsec rows */
    /* DJN */
    u64 *h, *table; int w; int64_t nwin;
    pk_mont52 *mc;
    /* GMP paths: views of the base, exponent and modulus, built before the call (the
     * kernels build theirs from the key once, outside the power) */
    mpz_t vb, ve, vm;
} ct_ctx;

enum { NEEDS_NONE, NEEDS_AVX2, NEEDS_IFMA, NEEDS_ADX };

typedef struct {
    const char *name;
    int control;                      /* 1: a negative control, expected to be flagged */
    int needs;                        /* NEEDS_*: the CPU features the path runs on */
    int valgrind;                     /* 0 where memcheck cannot decode the code (AVX-512) */
    void (*init)(ct_ctx *c);          /* public values and buffers */
    void (*draw_public)(ct_ctx *c);   /* per-call public input (may be NULL) */
    void (*prepare)(ct_ctx *c);       /* after the secret is set, before the call (or NULL) */
    void (*run)(ct_ctx *c);
} ct_path;

/* powm-like paths: moduli of 2048 bits, exponents of 1024 bits, bases of 2 Lm limbs
 * (the CRT decryption's shape for a 2048-bit key). */
static void init_powm(ct_ctx *c, int64_t nsec)
{
    c->Lm = 32; c->Lx = 64; c->Ls = 16; c->ebits = 1024; c->nsec = nsec; c->Lout = c->Lm;
    c->m = xalloc((size_t)(nsec * c->Lm) * 8);
    c->x = xalloc((size_t)(nsec * c->Lx) * 8);
    c->secret = xalloc((size_t)(nsec * c->Ls) * 8);
    c->out = xalloc((size_t)(nsec * c->Lm) * 8);
    for (int64_t l = 0; l < nsec; l++) rand_odd_modulus(c->m + l * c->Lm, c->Lm);
}

static void draw_base(ct_ctx *c)
{
    rand_limbs(c->x, c->nsec * c->Lx);
}

static void init_v4(ct_ctx *c) { init_powm(c, 4); }
static void init_one(ct_ctx *c) { init_powm(c, 1); }

/* GMP's mpn_sec_powm, the power inside mpz_powm_sec (the generic level's decryption and
 * CRT encryption); called at the mpn level because mpz_powm_sec then normalises the
 * result's length (a branch on whether its top limbs are zero), which is the result's
 * handling, not the power's. */
static u64 *sec_scratch;

static void init_sec(ct_ctx *c)
{
    init_powm(c, 1);
    sec_scratch = xalloc((size_t)mpn_sec_powm_itch((mp_size_t)c->Lx, (mp_bitcnt_t)c->ebits,
                                                   (mp_size_t)c->Lm) * 8);
}

static void run_powm_sec(ct_ctx *c)
{
    mpn_sec_powm((mp_ptr)c->out, (mp_srcptr)c->x, (mp_size_t)c->Lx, (mp_srcptr)c->secret,
                 (mp_bitcnt_t)c->ebits, (mp_srcptr)c->m, (mp_size_t)c->Lm, (mp_ptr)sec_scratch);
}

static void run_v4(ct_ctx *c)
{
    if (pk_v4_powm_rows4(c->x, c->Lx, c->secret, c->Ls, c->m, c->Lm, c->out)) {
        fprintf(stderr, "pk_v4_powm_rows4: out of memory\n");
        exit(2);
    }
}

/* The views: mpz_roinit_n reads the exponent's top limbs to find its size (the exponent's
 * length, public: the secret's top bit is always set), as the kernels' key views do. */
static void prepare_gmp(ct_ctx *c)
{
    mpz_roinit_n(c->vb, (const mp_limb_t *)c->x, (mp_size_t)c->Lx);
    mpz_roinit_n(c->ve, (const mp_limb_t *)c->secret, (mp_size_t)c->Ls);
    mpz_roinit_n(c->vm, (const mp_limb_t *)c->m, (mp_size_t)c->Lm);
}

/* GMP's sliding-window mpz_powm: which table entry each window multiplies by, and whether
 * it multiplies at all, follows the exponent's bits */
static void run_leaky_powm(ct_ctx *c)
{
    mpz_t r;
    mpz_init2(r, (mp_bitcnt_t)(64 * c->Lm + 64));
    mpz_powm(r, c->vb, c->ve, c->vm);
    pk_store(c->out, c->Lm, r);
    mpz_clear(r);
}

/* Left-to-right square-and-multiply that multiplies only for a set bit: a branch on every
 * secret bit (the textbook leak). Fixed-size GMP calls, so only the branch differs. */
static void run_leaky_sqm(ct_ctx *c)
{
    const int64_t L = c->Lm;
    u64 acc[L], base[L], tp[3 * L + 1];
    pk_sec_mod(base, c->x, c->Lx, c->m, L, c->out);   /* out as scratch: big enough? */
    memset(acc, 0, sizeof acc);
    acc[0] = 1;
    for (int64_t i = c->ebits - 1; i >= 0; i--) {
        pk_mulmod_n(acc, acc, acc, c->m, L, tp, tp + 2 * L);
        if ((c->secret[i >> 6] >> (i & 63)) & 1)
            pk_mulmod_n(acc, acc, base, c->m, L, tp, tp + 2 * L);
    }
    memcpy(c->out, acc, sizeof acc);
}

static void init_sqm(ct_ctx *c)
{
    init_powm(c, 1);
    /* pk_sec_mod scratch in out: Lx + itch limbs */
    free(c->out);
    c->out = xalloc((size_t)(c->Lm + pk_sec_mod_itch(c->Lx, c->Lm)) * 8);
}

/* DJN: a 2048-bit key's n^2 (4096 bits, random odd), h below it, 1024-bit alphas, the
 * fixed-base table with 5-bit windows in 64-bit Montgomery form. */
static void init_djn(ct_ctx *c)
{
    c->Lm = 64; c->Ls = 16; c->ebits = 1024; c->nsec = 1; c->Lout = c->Lm;
    c->w = 5; c->nwin = (c->ebits + c->w - 1) / c->w;
    int64_t rows = c->nwin << c->w;
    c->m = xalloc((size_t)c->Lm * 8);
    c->h = xalloc((size_t)c->Lm * 8);
    c->secret = xalloc((size_t)c->Ls * 8);
    c->out = xalloc((size_t)c->Lm * 8);
    c->table = xalloc((size_t)(rows * c->Lm) * 8);
    rand_odd_modulus(c->m, c->Lm);
    rand_limbs(c->h, c->Lm);
    c->h[c->Lm - 1] >>= 1;                          /* h < 2^(64 Lm - 1) <= m */
    pk_fixed_base_table(c->h, c->m, c->Lm, c->w, c->nwin, c->table, 1);
}

static void init_djn64(ct_ctx *c)
{
    init_djn(c);
    pk_table_to_mont64(c->table, c->nwin << c->w, c->m, c->Lm, 1);
}

static void run_djn64(ct_ctx *c)
{
    pk_djn_power(c->out, c->secret, c->Ls, c->table, c->w, c->nwin, c->Lm, c->m);
}

/* The walk split in two halves whose partial products are then multiplied mod n^2 (the
 * path for fewer rows than threads) */
static void run_djn_split(ct_ctx *c)
{
    pk_djn_power_split(c->out, c->secret, c->Ls, c->table, c->w, c->nwin, c->Lm, c->m);
}

/* DJN at the avx2 level: four alphas walked side by side in the AVX2 lanes */
static pk_v4_mod djn_v4c;
static u64 *djn_v4start;

static void init_djn_v4(ct_ctx *c)
{
    init_djn64(c);
    c->nsec = 4;
    u64 *m4 = xalloc((size_t)(4 * c->Lm) * 8);
    for (int l = 0; l < 4; l++) memcpy(m4 + l * c->Lm, c->m, (size_t)c->Lm * 8);
    free(c->m); free(c->secret); free(c->out);
    c->m = m4;
    c->secret = xalloc((size_t)(4 * c->Ls) * 8);
    c->out = xalloc((size_t)(4 * c->Lm) * 8);
    const u64 *ms[4] = {c->m, c->m, c->m, c->m};
    if (pk_v4_mod_init(&djn_v4c, ms, c->Lm, 64 * c->Lm)) { fprintf(stderr, "oom\n"); exit(2); }
    djn_v4start = xalloc((size_t)(4 * djn_v4c.K + c->Lm) * 8);
    u64 *cl = djn_v4start + 4 * djn_v4c.K;
    pk_djn_v4_start(cl, c->Lm, c->m, &djn_v4c, c->nwin);
    for (int l = 0; l < 4; l++) pk_v4_to_digits(djn_v4start, l, djn_v4c.K, djn_v4c.rb, cl, c->Lm);
}

static void run_djn_v4(ct_ctx *c)
{
    const u64 *al[4];
    u64 *acc[4];
    for (int l = 0; l < 4; l++) { al[l] = c->secret + l * c->Ls; acc[l] = c->out + l * c->Lm; }
    if (pk_djn_group_v4(acc, al, c->Ls, c->table, c->w, c->nwin, c->Lm, &djn_v4c, djn_v4start)) {
        fprintf(stderr, "pk_djn_group_v4: out of memory\n");
        exit(2);
    }
}

/* A lone CRT half at the avx2 level: the MULX/ADX power (reductions by mpn_sec_div_r) */
static void run_adx(ct_ctx *c)
{
    if (pk_adx_powm_mod(c->out, c->x, c->Lx, c->secret, c->Ls, c->m, c->Lm)) {
        fprintf(stderr, "pk_adx_powm_mod: not on x86-64\n");
        exit(2);
    }
}

static void init_djn52(ct_ctx *c)
{
    init_djn(c);
    c->mc = xalloc(sizeof(pk_mont52));
    pk_mont52_init(c->mc, c->m, c->Lm);
    int64_t rows = c->nwin << c->w, nd = 8 * c->mc->nv;
    u64 *t52 = xalloc((size_t)(rows * nd) * 8);
    pk_table_to_mont52(c->table, rows, c->m, c->Lm, t52, 1);
    free(c->table);
    c->table = t52;
}

static void run_djn52(ct_ctx *c)
{
    pk_djn_block52(c->out, c->secret, c->Ls, 1, c->table, c->w, c->nwin, c->Lm, c->mc);
}

static const ct_path paths[] = {
    {"v4_powm", 0, NEEDS_AVX2, 1, init_v4, draw_base, NULL, run_v4},
    {"adx_powm", 0, NEEDS_ADX, 1, init_one, draw_base, NULL, run_adx},
    {"djn_walk", 0, NEEDS_NONE, 1, init_djn64, NULL, NULL, run_djn64},
    {"djn_v4", 0, NEEDS_AVX2, 1, init_djn_v4, NULL, NULL, run_djn_v4},
    {"djn_split", 0, NEEDS_NONE, 1, init_djn64, NULL, NULL, run_djn_split},
    {"djn_ifma", 0, NEEDS_IFMA, 0, init_djn52, NULL, NULL, run_djn52},
    {"powm_sec", 0, NEEDS_NONE, 1, init_sec, draw_base, NULL, run_powm_sec},
    {"leaky_powm", 1, NEEDS_NONE, 1, init_one, draw_base, prepare_gmp, run_leaky_powm},
    {"leaky_sqm", 1, NEEDS_NONE, 1, init_sqm, draw_base, NULL, run_leaky_sqm},
};
#define NPATHS ((int)(sizeof paths / sizeof paths[0]))

static int available(const ct_path *p)
{
    switch (p->needs) {
    case NEEDS_AVX2: return PPML_X86 && ppml_cpu_isa() >= PPML_ISA_AVX2;
    case NEEDS_IFMA:
        return PPML_X86 && ppml_cpu_isa() >= PPML_ISA_AVX512 && ppml_cpu_ifma();
    /* valgrind's virtual CPU hides ADX from CPUID but runs the instructions: the test
     * launches valgrind only for paths that `list` (run natively) reports available */
    case NEEDS_ADX: return PPML_X86 && (RUNNING_ON_VALGRIND || ppml_cpu_adx());
    default: return 1;
    }
}

static const ct_path *find_path(const char *name)
{
    for (int i = 0; i < NPATHS; i++)
        if (!strcmp(paths[i].name, name)) {
            if (!available(&paths[i])) {
                fprintf(stderr, "path %s: this CPU lacks its features\n", name);
                exit(3);
            }
            return &paths[i];
        }
    fprintf(stderr, "unknown path %s\n", name);
    exit(2);
}

/* ---- secrets ------------------------------------------------------------------------ */

/* row = a random secret (top bit set) */
static void rand_secret(const ct_ctx *c, u64 *row)
{
    rand_limbs(row, c->Ls);
    int64_t top = c->ebits - 1;
    for (int64_t i = top + 1; i < 64 * c->Ls; i++) row[i >> 6] &= ~((u64)1 << (i & 63));
    row[top >> 6] |= (u64)1 << (top & 63);
}

/* row = the fixed class-0 secret: its top bit and bit 0 */
static void fixed_secret(const ct_ctx *c, u64 *row)
{
    memset(row, 0, (size_t)c->Ls * 8);
    row[0] = 1;
    row[(c->ebits - 1) >> 6] |= (u64)1 << ((c->ebits - 1) & 63);
}

/* out row l == base_l^secret_l mod m_l (GMP's mpz_powm on defined copies) */
static int check(const ct_path *p, const ct_ctx *c)
{
    int ok = 1;
    for (int64_t l = 0; l < c->nsec; l++) {
        mpz_t b, e, m, r, got;
        mpz_init(r);
        if (p->init == init_djn64 || p->init == init_djn52 || p->init == init_djn_v4)
            mpz_roinit_n(b, (const mp_limb_t *)c->h, (mp_size_t)c->Lm);
        else
            mpz_roinit_n(b, (const mp_limb_t *)(c->x + l * c->Lx), (mp_size_t)c->Lx);
        mpz_roinit_n(e, (const mp_limb_t *)(c->secret + l * c->Ls), (mp_size_t)c->Ls);
        mpz_roinit_n(m, (const mp_limb_t *)(c->m + l * c->Lm), (mp_size_t)c->Lm);
        mpz_roinit_n(got, (const mp_limb_t *)(c->out + l * c->Lout), (mp_size_t)c->Lout);
        mpz_powm(r, b, e, m);
        if (mpz_cmp(r, got)) ok = 0;
        mpz_clear(r);
    }
    return ok;
}

/* ---- ctgrind ------------------------------------------------------------------------ */

static int cmd_ctgrind(const ct_path *p)
{
    ct_ctx c = {0};
    p->init(&c);
    if (p->draw_public) p->draw_public(&c);
    for (int64_t l = 0; l < c.nsec; l++) rand_secret(&c, c.secret + l * c.Ls);
    size_t sbytes = (size_t)(c.nsec * c.Ls) * 8, obytes = (size_t)(c.nsec * c.Lout) * 8;
    if (p->prepare) p->prepare(&c);
    VALGRIND_MAKE_MEM_UNDEFINED(c.secret, sbytes);
    p->run(&c);
    /* The secret must reach the result (memcheck's V bits: 1 = undefined), or a clean
     * report would say nothing: count the result's bytes that depend on it. */
    unsigned char *vbits = xalloc(obytes);
    int got = VALGRIND_GET_VBITS(c.out, vbits, obytes);
    size_t tainted = 0;
    for (size_t i = 0; i < obytes; i++) tainted += vbits[i] != 0;
    free(vbits);
    if (got == 1)
        printf("ctgrind %s: %zu of %zu result bytes depend on the secret\n", p->name, tainted,
               obytes);
    /* only the kernel's own use of the secret is judged: what follows reads the result */
    VALGRIND_MAKE_MEM_DEFINED(c.secret, sbytes);
    VALGRIND_MAKE_MEM_DEFINED(c.out, obytes);
    int ok = check(p, &c);
    printf("ctgrind %s: result %s\n", p->name, ok ? "ok" : "WRONG");
    return ok ? 0 : 1;
}

/* ---- dudect ------------------------------------------------------------------------- */

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
    return 1e9 * (double)ts.tv_sec + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Welch's t of class 1 against class 0 over the measurements with t <= cap. */
static double welch(const double *t, const uint8_t *cls, int64_t n, double cap,
                    int64_t *n0, int64_t *n1, double *se)
{
    double s[2] = {0, 0}, ss[2] = {0, 0};
    int64_t k[2] = {0, 0};
    for (int64_t i = 0; i < n; i++) {
        if (t[i] > cap) continue;
        k[cls[i]]++;
        s[cls[i]] += t[i];
    }
    double mu[2] = {s[0] / (double)k[0], s[1] / (double)k[1]};
    for (int64_t i = 0; i < n; i++) {
        if (t[i] > cap) continue;
        double d = t[i] - mu[cls[i]];
        ss[cls[i]] += d * d;
    }
    *n0 = k[0]; *n1 = k[1];
    *se = 0;
    if (k[0] < 2 || k[1] < 2) return 0;
    double v0 = ss[0] / (double)(k[0] - 1), v1 = ss[1] / (double)(k[1] - 1);
    *se = sqrt(v0 / (double)k[0] + v1 / (double)k[1]);
    return *se > 0 ? (mu[1] - mu[0]) / *se : 0;
}

static int cmd_dudect(const ct_path *p, int64_t n)
{
    ct_ctx c = {0};
    p->init(&c);
    size_t sbytes = (size_t)(c.nsec * c.Ls) * 8;
    u64 *fixed = xalloc(sbytes), *fresh = xalloc(sbytes);
    for (int64_t l = 0; l < c.nsec; l++) fixed_secret(&c, fixed + l * c.Ls);
    double *t = xalloc((size_t)n * sizeof(double)), *sorted = xalloc((size_t)n * sizeof(double));
    uint8_t *cls = xalloc((size_t)n);
    int64_t warm = n / 10 + 5;
    for (int64_t i = -warm; i < n; i++) {
        /* the same preparation for both classes: draw a random secret and the public
         * input, then copy one of the two candidates in */
        int k = (int)(rng() & 1);
        for (int64_t l = 0; l < c.nsec; l++) rand_secret(&c, fresh + l * c.Ls);
        if (p->draw_public) p->draw_public(&c);
        memcpy(c.secret, k ? fresh : fixed, sbytes);
        if (p->prepare) p->prepare(&c);
        double t0 = now_ns();
        p->run(&c);
        double t1 = now_ns();
        if (i < 0) continue;
        if (i < 4 && !check(p, &c)) {
            printf("dudect %s: result WRONG\n", p->name);
            return 1;
        }
        t[i] = t1 - t0;
        cls[i] = (uint8_t)k;
    }
    memcpy(sorted, t, (size_t)n * sizeof(double));
    qsort(sorted, (size_t)n, sizeof(double), cmp_double);
    /* crops: everything, then the measurements up to these percentiles (as dudect does,
     * large outliers from interrupts and other processes are cut) */
    static const double pct[] = {100, 99, 95, 90, 75, 50};
    double tmax = 0, se_min = INFINITY;
    for (size_t j = 0; j < sizeof pct / sizeof pct[0]; j++) {
        int64_t idx = (int64_t)(pct[j] / 100.0 * (double)(n - 1));
        double cap = sorted[idx];
        int64_t n0, n1;
        double se;
        double tv = welch(t, cls, n, cap, &n0, &n1, &se);
        if (se > 0 && se < se_min) se_min = se;
        printf("dudect %s: crop %.0f%% n0=%lld n1=%lld t=%.3f\n", p->name, pct[j],
               (long long)n0, (long long)n1, tv);
        if (fabs(tv) > tmax) tmax = fabs(tv);
    }
    /* the resolution: the smallest mean difference between the classes that would give
     * |t| = 4.5 in one of the crops */
    printf("dudect %s: median %.0f ns, |t| = 4.5 at a mean difference of %.0f ns (%.2f%%)\n",
           p->name, sorted[n / 2], 4.5 * se_min, 450 * se_min / sorted[n / 2]);
    printf("dudect %s: max |t| = %.3f\n", p->name, tmax);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "list")) {
        for (int i = 0; i < NPATHS; i++)
            printf("%s %s %s %s\n", paths[i].name, paths[i].control ? "control" : "ct",
                   available(&paths[i]) ? "available" : "unavailable",
                   paths[i].valgrind ? "valgrind" : "no-valgrind");
        return 0;
    }
    if (argc >= 3 && !strcmp(argv[1], "ctgrind")) {
        const ct_path *p = find_path(argv[2]);
        rng_seed(argc >= 4 ? strtoull(argv[3], NULL, 0) : 1);
        return cmd_ctgrind(p);
    }
    if (argc >= 4 && !strcmp(argv[1], "dudect")) {
        const ct_path *p = find_path(argv[2]);
        int64_t n = strtoll(argv[3], NULL, 0);
        if (n < 10) { fprintf(stderr, "samples: at least 10\n"); return 2; }
        rng_seed(argc >= 5 ? strtoull(argv[4], NULL, 0) : 1);
        return cmd_dudect(p, n);
    }
    fprintf(stderr, "usage: ct_harness list | ctgrind <path> [seed] | "
                    "dudect <path> <samples> [seed]\n");
    return 2;
}
