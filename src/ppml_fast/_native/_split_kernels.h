/* Distance correlation of two batches and its gradient, included by split.pyx (no
 * validation here: the caller hands over the shapes checked, B >= 2; NaN and inf are
 * found here).
 *
 * Work, for x (n x dx) and z (n x dz):
 *   1. each input is packed as (x_i - x_0) into panels of SP_MR rows ([k][SP_MR] within a
 *      panel): subtracting row 0 leaves the distances as they are and removes any common
 *      offset, which the Gram products below would otherwise lose to cancellation. When
 *      the Gram diagonal shows NaN/inf, overflow or underflow, the input is scanned (a NaN
 *      or inf is an error) and packed again scaled by a power of two s (max |s x| in
 *      [0.5, 1): exact, and dCor is scale-invariant);
 *   2. the Gram matrices G = P P^T (upper triangle, tiles of SP_MR x SP_NR) by a register-
 *      blocked micro-kernel (AVX2 FMA, or portable C with fma(): the same bits);
 *   3. distances d_ij = sqrt(G_ii + G_jj - 2 G_ij), the norms taken from G's own diagonal
 *      (so d_ii = 0 exactly); a pair whose squared distance is below SP_TAU (G_ii + G_jj),
 *      where the subtraction would cancel most digits, is recomputed directly from the
 *      differences of its input rows (exact for close rows);
 *   4. row means, then the double-centred sums sum A.B, sum A.A, sum B.B with the centring
 *      done on the fly (A_ij = a_ij - (r_i + r_j) + m): no n^2 cancellation as in the
 *      expanded formula;
 *   5. (gradient) M_ij = W_ij / b_ij with W = dCor'(b), the diagonal set to -sum_j M_ij so
 *      that grad = -2 s M (z - z_0) in one matrix product; close pairs (as in 3) are
 *      applied to their rows' differences instead.
 * Each output element and each partial sum is computed by one thread in a fixed order, so
 * the results are the same bits on any thread count and at any ISA level.
 */
#ifndef PPML_SPLIT_KERNELS_H
#define PPML_SPLIT_KERNELS_H

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "_omp.h"

#include "_isa.h"

#define SP_MR 4   /* rows of a micro-tile (broadcast operand), = panel width */
#define SP_NR 12  /* columns of a micro-tile: three vectors of four doubles */
#define SP_KC 128 /* depth of one pass over the packed operands (L1/L2 blocking) */
#define SP_TAU (1.0 / 64.0)
/* a Gram diagonal below this (or not finite) sends the input to the rescaled path */
#define SP_TINY 0x1p-600
#define SP_SB 32    /* rows and columns of a block of the distance pass */

#define SP_OK 0
#define SP_NONFINITE_X 2
#define SP_NONFINITE_Z 3

/* c[r*ldc + j] (r < 4, j < 12) += sum_k a[k*lda + r] * b[(j/4)*bstep + k*ldb + j%4], each
 * product fused with its addition, k in order; `first`: start from 0 instead of c. */
typedef void (*sp_tile_fn)(int64_t K, const double *a, int64_t lda, const double *b,
                           int64_t ldb, int64_t bstep, double *c, int64_t ldc, int first);

static void sp_tile_generic(int64_t K, const double *a, int64_t lda, const double *b,
                            int64_t ldb, int64_t bstep, double *c, int64_t ldc, int first)
{
    double acc[SP_MR][SP_NR];
    for (int r = 0; r < SP_MR; r++)
        for (int j = 0; j < SP_NR; j++) acc[r][j] = first ? 0.0 : c[r * ldc + j];
    for (int64_t k = 0; k < K; k++) {
        const double *ak = a + k * lda;
        for (int r = 0; r < SP_MR; r++) {
            double ar = ak[r];
            for (int v = 0; v < SP_NR / 4; v++) {
                const double *bk = b + v * bstep + k * ldb;
                for (int j = 0; j < 4; j++)
                    acc[r][4 * v + j] = fma(ar, bk[j], acc[r][4 * v + j]);
            }
        }
    }
    for (int r = 0; r < SP_MR; r++)
        for (int j = 0; j < SP_NR; j++) c[r * ldc + j] = acc[r][j];
}

#if PPML_X86
PPML_TARGET_AVX2 static void sp_tile_avx2(int64_t K, const double *a, int64_t lda,
                                          const double *b, int64_t ldb, int64_t bstep,
                                          double *c, int64_t ldc, int first)
{
    __m256d c00, c01, c02, c10, c11, c12, c20, c21, c22, c30, c31, c32;
    if (first) {
        c00 = c01 = c02 = c10 = c11 = c12 = _mm256_setzero_pd();
        c20 = c21 = c22 = c30 = c31 = c32 = _mm256_setzero_pd();
    } else {
        c00 = _mm256_loadu_pd(c), c01 = _mm256_loadu_pd(c + 4), c02 = _mm256_loadu_pd(c + 8);
        c10 = _mm256_loadu_pd(c + ldc), c11 = _mm256_loadu_pd(c + ldc + 4);
        c12 = _mm256_loadu_pd(c + ldc + 8);
        c20 = _mm256_loadu_pd(c + 2 * ldc), c21 = _mm256_loadu_pd(c + 2 * ldc + 4);
        c22 = _mm256_loadu_pd(c + 2 * ldc + 8);
        c30 = _mm256_loadu_pd(c + 3 * ldc), c31 = _mm256_loadu_pd(c + 3 * ldc + 4);
        c32 = _mm256_loadu_pd(c + 3 * ldc + 8);
    }
    const double *b0 = b, *b1 = b + bstep, *b2 = b + 2 * bstep;
    for (int64_t k = 0; k < K; k++) {
        __m256d v0 = _mm256_loadu_pd(b0 + k * ldb);
        __m256d v1 = _mm256_loadu_pd(b1 + k * ldb);
        __m256d v2 = _mm256_loadu_pd(b2 + k * ldb);
        const double *ak = a + k * lda;
        __m256d s = _mm256_broadcast_sd(ak);
        c00 = _mm256_fmadd_pd(s, v0, c00), c01 = _mm256_fmadd_pd(s, v1, c01);
        c02 = _mm256_fmadd_pd(s, v2, c02);
        s = _mm256_broadcast_sd(ak + 1);
        c10 = _mm256_fmadd_pd(s, v0, c10), c11 = _mm256_fmadd_pd(s, v1, c11);
        c12 = _mm256_fmadd_pd(s, v2, c12);
        s = _mm256_broadcast_sd(ak + 2);
        c20 = _mm256_fmadd_pd(s, v0, c20), c21 = _mm256_fmadd_pd(s, v1, c21);
        c22 = _mm256_fmadd_pd(s, v2, c22);
        s = _mm256_broadcast_sd(ak + 3);
        c30 = _mm256_fmadd_pd(s, v0, c30), c31 = _mm256_fmadd_pd(s, v1, c31);
        c32 = _mm256_fmadd_pd(s, v2, c32);
    }
    _mm256_storeu_pd(c, c00), _mm256_storeu_pd(c + 4, c01), _mm256_storeu_pd(c + 8, c02);
    _mm256_storeu_pd(c + ldc, c10), _mm256_storeu_pd(c + ldc + 4, c11);
    _mm256_storeu_pd(c + ldc + 8, c12);
    _mm256_storeu_pd(c + 2 * ldc, c20), _mm256_storeu_pd(c + 2 * ldc + 4, c21);
    _mm256_storeu_pd(c + 2 * ldc + 8, c22);
    _mm256_storeu_pd(c + 3 * ldc, c30), _mm256_storeu_pd(c + 3 * ldc + 4, c31);
    _mm256_storeu_pd(c + 3 * ldc + 8, c32);
}
#endif

static sp_tile_fn sp_pick_tile(void)
{
#if PPML_X86
    if (ppml_isa >= PPML_ISA_AVX2) return sp_tile_avx2;
#endif
    return sp_tile_generic;
}

/* One input: n rows of d elements (float32 or float64, contiguous within a row), row i
 * at base + i * rs bytes; and its workspace. */
typedef struct {
    const char *base;
    int64_t rs;
    int64_t d;
    int is64;
    double *packed; /* np x d in panels of SP_MR rows: [panel][k][SP_MR] */
    double *gram;   /* np x np; holds the distances after step 3 */
    double *rmean;  /* n: row means of the distances */
    double scale;   /* the power of two applied before centring (1 unless rescaled) */
} sp_input;

/* Pack panel p (rows p*SP_MR ..) of (x_i - x_0) * scale; rows >= n are zero. Row 0 as
 * the pivot removes any common offset (distances do not change) in the same pass. The
 * SP_MR rows are read side by side, so that each packed line is written once. */
static void sp_pack_panel(const sp_input *in, int64_t n, int64_t p)
{
    double *dst = in->packed + p * in->d * SP_MR;
    double s = in->scale;
    int64_t i0 = p * SP_MR, d = in->d;
    if (i0 + SP_MR <= n && in->is64 && s == 1.0) {
        const double *x0 = (const double *)in->base;
        const double *r0 = (const double *)(in->base + i0 * in->rs);
        const double *r1 = (const double *)(in->base + (i0 + 1) * in->rs);
        const double *r2 = (const double *)(in->base + (i0 + 2) * in->rs);
        const double *r3 = (const double *)(in->base + (i0 + 3) * in->rs);
        for (int64_t k = 0; k < d; k++) {
            double o = x0[k];
            dst[4 * k] = r0[k] - o, dst[4 * k + 1] = r1[k] - o;
            dst[4 * k + 2] = r2[k] - o, dst[4 * k + 3] = r3[k] - o;
        }
        return;
    }
    if (i0 + SP_MR <= n && !in->is64) {
        const float *x0 = (const float *)in->base;
        const float *r0 = (const float *)(in->base + i0 * in->rs);
        const float *r1 = (const float *)(in->base + (i0 + 1) * in->rs);
        const float *r2 = (const float *)(in->base + (i0 + 2) * in->rs);
        const float *r3 = (const float *)(in->base + (i0 + 3) * in->rs);
        for (int64_t k = 0; k < d; k++) {
            double o = (double)x0[k] * s;
            dst[4 * k] = (double)r0[k] * s - o, dst[4 * k + 1] = (double)r1[k] * s - o;
            dst[4 * k + 2] = (double)r2[k] * s - o, dst[4 * k + 3] = (double)r3[k] * s - o;
        }
        return;
    }
    for (int r = 0; r < SP_MR; r++) { /* the last panel, or a rescaled float64 input */
        int64_t i = i0 + r;
        if (i >= n) {
            for (int64_t k = 0; k < d; k++) dst[k * SP_MR + r] = 0.0;
        } else if (in->is64) {
            const double *x = (const double *)(in->base + i * in->rs);
            const double *x0 = (const double *)in->base;
            for (int64_t k = 0; k < d; k++) dst[k * SP_MR + r] = x[k] * s - x0[k] * s;
        } else {
            const float *x = (const float *)(in->base + i * in->rs);
            const float *x0 = (const float *)in->base;
            for (int64_t k = 0; k < d; k++)
                dst[k * SP_MR + r] = (double)x[k] * s - (double)x0[k] * s;
        }
    }
}

/* Largest magnitude of row i; +inf when it holds NaN or inf. */
static double sp_row_maxabs(const sp_input *in, int64_t i)
{
    double m = 0.0;
    int bad = 0;
    if (in->is64) {
        const double *x = (const double *)(in->base + i * in->rs);
        for (int64_t k = 0; k < in->d; k++) {
            double a = fabs(x[k]);
            bad |= !(a <= DBL_MAX);
            m = a > m ? a : m;
        }
    } else {
        const float *x = (const float *)(in->base + i * in->rs);
        for (int64_t k = 0; k < in->d; k++) {
            double a = fabs((double)x[k]);
            bad |= !(a <= DBL_MAX);
            m = a > m ? a : m;
        }
    }
    return bad ? HUGE_VAL : m;
}

/* The Gram products are cut into tasks of (input, column tile, block of up to SP_GR rows
 * of that tile's upper-triangle part), taken by the threads from one dynamic list over
 * all inputs: the tiles' costs grow with the column, and a static split of one input at a
 * time leaves a thread idle. A task runs all depth blocks of its tiles in order, so each
 * element of G is computed by one thread in the same order on any thread count. */
#define SP_GR 48 /* rows of a Gram task (a multiple of SP_MR) */

/* Tasks of one input's Gram product (np rows, a multiple of SP_NR). */
static int64_t sp_gram_ntasks(int64_t np)
{
    int64_t c = 0;
    for (int64_t j0 = 0; j0 < np; j0 += SP_NR) c += (j0 + SP_NR + SP_GR - 1) / SP_GR;
    return c;
}

/* Task q (< sp_gram_ntasks(np)) of one input: column tiles from the last (the largest)
 * down, row blocks from the top. */
static void sp_gram_task(const sp_input *in, int64_t np, int64_t q, sp_tile_fn tile)
{
    int64_t j0 = np - SP_NR;
    for (;;) {
        int64_t nb = (j0 + SP_NR + SP_GR - 1) / SP_GR;
        if (q < nb) break;
        q -= nb, j0 -= SP_NR;
    }
    int64_t r0 = q * SP_GR, r1 = r0 + SP_GR < j0 + SP_NR ? r0 + SP_GR : j0 + SP_NR;
    int64_t ps = in->d * SP_MR; /* doubles per panel */
    for (int64_t k0 = 0; k0 < in->d; k0 += SP_KC) {
        int64_t kc = in->d - k0 < SP_KC ? in->d - k0 : SP_KC;
        const double *b = in->packed + (j0 / SP_MR) * ps + k0 * SP_MR;
        for (int64_t i0 = r0; i0 < r1; i0 += SP_MR) {
            const double *a = in->packed + (i0 / SP_MR) * ps + k0 * SP_MR;
            tile(kc, a, SP_MR, b, SP_MR, ps, in->gram + i0 * np + j0, np, k0 == 0);
        }
    }
}

/* ||row i - row j||^2 (scaled) by differences of the input rows themselves: for close
 * rows each difference is exact (Sterbenz), where the packed rows carry the rounding of
 * the pivot's subtraction. */
static double sp_direct(const sp_input *in, int64_t i, int64_t j)
{
    double s = in->scale, acc = 0.0;
    if (in->is64) {
        const double *xi = (const double *)(in->base + i * in->rs);
        const double *xj = (const double *)(in->base + j * in->rs);
        for (int64_t k = 0; k < in->d; k++) {
            double t = (xi[k] - xj[k]) * s;
            acc += t * t;
        }
    } else {
        const float *xi = (const float *)(in->base + i * in->rs);
        const float *xj = (const float *)(in->base + j * in->rs);
        for (int64_t k = 0; k < in->d; k++) {
            double t = ((double)xi[k] - (double)xj[k]) * s;
            acc += t * t;
        }
    }
    return acc;
}

/* out[k] += m (row i - row j)[k] * scale, from the input rows (exact differences). */
static void sp_add_diff(const sp_input *in, int64_t i, int64_t j, double m, double *out)
{
    double s = in->scale;
    if (in->is64) {
        const double *xi = (const double *)(in->base + i * in->rs);
        const double *xj = (const double *)(in->base + j * in->rs);
        for (int64_t k = 0; k < in->d; k++) out[k] += m * ((xi[k] - xj[k]) * s);
    } else {
        const float *xi = (const float *)(in->base + i * in->rs);
        const float *xj = (const float *)(in->base + j * in->rs);
        for (int64_t k = 0; k < in->d; k++)
            out[k] += m * (((double)xi[k] - (double)xj[k]) * s);
    }
}

/* dst[j] = sqrt(src[j]) for j < m (correctly rounded at every level: the same bits). */
typedef void (*sp_sqrt_fn)(const double *src, double *dst, int64_t m);

static void sp_sqrt_generic(const double *src, double *dst, int64_t m)
{
    for (int64_t j = 0; j < m; j++) dst[j] = sqrt(src[j]);
}

#if PPML_X86
PPML_TARGET_AVX2 static void sp_sqrt_avx2(const double *src, double *dst, int64_t m)
{
    int64_t j = 0;
    for (; j + 4 <= m; j += 4) _mm256_storeu_pd(dst + j, _mm256_sqrt_pd(_mm256_loadu_pd(src + j)));
    for (; j < m; j++) dst[j] = sqrt(src[j]);
}
#endif

/* Distances of the pairs in block (bi, bj) of SP_SB x SP_SB, bi <= bj, from the Gram
 * matrix's upper triangle, written in place to both triangles (the transposed writes stay
 * within one block); `diag` holds G's diagonal. */
static void sp_dist_block(const sp_input *in, int64_t n, int64_t np, const double *diag,
                          int64_t bi, int64_t bj, sp_sqrt_fn sq)
{
    double *g = in->gram;
    int64_t i1 = (bi + 1) * SP_SB < n ? (bi + 1) * SP_SB : n;
    int64_t j1 = (bj + 1) * SP_SB < n ? (bj + 1) * SP_SB : n;
    double d2[SP_SB];
    for (int64_t i = bi * SP_SB; i < i1; i++) {
        int64_t j0 = bi == bj ? i + 1 : bj * SP_SB;
        double *gi = g + i * np;
        double di = diag[i];
        int close = 0;
        if (bi == bj) gi[i] = 0.0;
        for (int64_t j = j0; j < j1; j++) {
            double sum = di + diag[j];
            double v = sum - 2.0 * gi[j];
            close |= v < SP_TAU * sum;
            d2[j - j0] = v > 0.0 ? v : 0.0;
        }
        if (close) {
            for (int64_t j = j0; j < j1; j++)
                if (d2[j - j0] < SP_TAU * (di + diag[j])) d2[j - j0] = sp_direct(in, i, j);
        }
        sq(d2, gi + j0, j1 - j0);
        for (int64_t j = j0; j < j1; j++) g[j * np + i] = gi[j];
    }
}

static double sp_row_sum(const double *row, int64_t n)
{
    double s = 0.0;
    for (int64_t j = 0; j < n; j++) s += row[j];
    return s;
}

/* Sums of row i of A.B, A.A, B.B (A, B double-centred on the fly). */
static void sp_centred_row(const sp_input *x, const sp_input *z, int64_t n, int64_t np,
                           double mx, double mz, int64_t i, double *out3)
{
    const double *a = x->gram + i * np, *b = z->gram + i * np;
    double ab = 0.0, aa = 0.0, bb = 0.0;
    for (int64_t j = 0; j < n; j++) {
        double A = (a[j] - (x->rmean[i] + x->rmean[j])) + mx;
        double B = (b[j] - (z->rmean[i] + z->rmean[j])) + mz;
        ab += A * B;
        aa += A * A;
        bb += B * B;
    }
    out3[0] = ab, out3[1] = aa, out3[2] = bb;
}

static int64_t sp_pad(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

/* Doubles of workspace that sp_dcor needs (with the gradient when `grad`). */
static int64_t sp_work_doubles(int64_t n, int64_t dx, int64_t dz, int grad)
{
    int64_t np = sp_pad(n, SP_NR), dzp = sp_pad(dz, SP_NR);
    int64_t w = np * (dx + dz) + 2 * np * np + 8 * n;
    return grad ? w + 2 * np * dzp + np * np : w;
}

/* Pack the inputs in[0 .. nin) and compute their Gram matrices on this team (called
 * inside a parallel region by every thread): one barrier, after the packing; the Gram
 * tasks of all inputs then form one list. */
static void sp_pack_gram(const sp_input *in, int nin, int64_t n, int64_t np, sp_tile_fn tile)
{
    int64_t panels = np / SP_MR, ntask = sp_gram_ntasks(np);
#pragma omp for schedule(static)
    for (int64_t p = 0; p < nin * panels; p++) sp_pack_panel(&in[p / panels], n, p % panels);
#pragma omp for schedule(dynamic, 1) nowait
    for (int64_t q = 0; q < nin * ntask; q++) sp_gram_task(&in[q / ntask], np, q % ntask, tile);
}

/* Whether the Gram diagonal of `in` can be used as it is: finite, and not so small that
 * squares may have underflowed (all zero goes to the rescaled path too, which tells a
 * constant input from one whose squares underflowed). */
static int sp_gram_ok(const sp_input *in, int64_t n, int64_t np)
{
    double m = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double g = in->gram[i * np + i];
        if (!(g <= DBL_MAX)) return 0;
        m = g > m ? g : m;
    }
    return m >= SP_TINY;
}

/* The result for an input whose rows are all equal (zero distance variance): dCor 0
 * and a zero gradient. */
static int sp_zero_result(int64_t n, int64_t dz, double *stats, char *grad, int64_t grad_rs,
                          int grad64)
{
    stats[0] = stats[1] = stats[2] = stats[3] = 0.0;
    if (grad) {
        size_t row = (grad64 ? sizeof(double) : sizeof(float)) * (size_t)dz;
        for (int64_t i = 0; i < n; i++) memset(grad + i * grad_rs, 0, row);
    }
    return SP_OK;
}

/* dCor of the rows of x and z: stats = {dCov^2, dVar^2(x), dVar^2(z), dCor^2}, in the
 * units of the inputs; when grad != NULL, dCor's gradient with respect to z goes to grad
 * (n rows of dz elements, row stride grad_rs bytes, float64 if grad64 else float32).
 * `work` holds sp_work_doubles(n, dx, dz, grad != NULL) doubles (reusing one buffer saves
 * the page faults of fresh memory). Returns SP_OK or SP_NONFINITE_X / _Z (then nothing
 * was written to grad). */
static int sp_dcor(const char *xb, int64_t x_rs, int64_t dx, int x64, const char *zb,
                   int64_t z_rs, int64_t dz, int z64, int64_t n, double *stats, char *grad,
                   int64_t grad_rs, int grad64, double *work, int nthreads)
{
    int64_t np = sp_pad(n, SP_NR), dzp = sp_pad(dz, SP_NR);
    sp_input in[2] = {{xb, x_rs, dx, x64, NULL, NULL, NULL, 1.0},
                      {zb, z_rs, dz, z64, NULL, NULL, NULL, 1.0}};
    double *w = work;
    int rc = SP_OK;
    for (int v = 0; v < 2; v++) {
        in[v].packed = w, w += np * in[v].d;
        in[v].gram = w, w += np * np;
        in[v].rmean = w, w += n;
    }
    double *diag = w, *part = w + 2 * n, *flags = w + 5 * n, *zp = NULL, *mp = NULL, *cg = NULL;
    w += 6 * n;
    if (grad) zp = w, cg = w + np * dzp, mp = w + 2 * np * dzp;
    sp_tile_fn tile = sp_pick_tile();
    sp_sqrt_fn sq = sp_sqrt_generic;
#if PPML_X86
    if (ppml_isa >= PPML_ISA_AVX2) sq = sp_sqrt_avx2;
#endif
    if (nthreads < 1) nthreads = 1;
    if (dx == 0 || dz == 0) return sp_zero_result(n, dz, stats, grad, grad_rs, grad64);

    /* 1-2. pack and Gram products */
#pragma omp parallel num_threads(nthreads)
    sp_pack_gram(in, 2, n, np, tile);
    /* NaN, inf, overflow or underflow: check the raw input, then rescale by a power of
     * two (max |s x| in [0.5, 1)) and start this input again */
    for (int v = 0; v < 2; v++) {
        if (sp_gram_ok(&in[v], n, np)) continue;
        double m = 0.0;
#pragma omp parallel for num_threads(nthreads) schedule(static) reduction(max : m)
        for (int64_t i = 0; i < n; i++) {
            double r = sp_row_maxabs(&in[v], i);
            m = r > m ? r : m;
        }
        if (!(m <= DBL_MAX)) return v == 0 ? SP_NONFINITE_X : SP_NONFINITE_Z;
        if (m > 0.0) {
            int e;
            frexp(m, &e);
            in[v].scale = ldexp(1.0, -e);
        }
#pragma omp parallel num_threads(nthreads)
        sp_pack_gram(&in[v], 1, n, np, tile);
    }
    for (int64_t i = 0; i < n; i++) {
        diag[i] = in[0].gram[i * np + i];
        diag[n + i] = in[1].gram[i * np + i];
    }
    int constant[2] = {1, 1};
    for (int v = 0; v < 2; v++)
        for (int64_t i = 0; i < n; i++) constant[v] &= diag[v * n + i] == 0.0;
    if (constant[0] || constant[1]) return sp_zero_result(n, dz, stats, grad, grad_rs, grad64);

    double totals[3] = {0.0, 0.0, 0.0}, gm[2] = {0.0, 0.0};
#pragma omp parallel num_threads(nthreads)
    {
        /* 3. distances */
        int64_t nb = (n + SP_SB - 1) / SP_SB, ntask = nb * (nb + 1) / 2;
#pragma omp for schedule(dynamic, 1)
        for (int64_t task = 0; task < 2 * ntask; task++) {
            int v = task >= ntask;
            int64_t q = task - v * ntask, bi = 0;
            while (q >= nb - bi) q -= nb - bi, bi++; /* the q-th block of row bi, from bi */
            sp_dist_block(&in[v], n, np, diag + v * n, bi, bi + q, sq);
        }
        /* 4. row means; grand means (every thread: the same bits, no barrier); centred
         * sums per row */
#pragma omp for schedule(static)
        for (int64_t i = 0; i < 2 * n; i++) {
            int v = i >= n;
            in[v].rmean[i - v * n] = sp_row_sum(in[v].gram + (i - v * n) * np, n) / (double)n;
        }
        double g0 = sp_row_sum(in[0].rmean, n) / (double)n;
        double g1 = sp_row_sum(in[1].rmean, n) / (double)n;
#pragma omp for schedule(static) nowait
        for (int64_t i = 0; i < n; i++)
            sp_centred_row(&in[0], &in[1], n, np, g0, g1, i, part + 3 * i);
        if (omp_get_thread_num() == 0) gm[0] = g0, gm[1] = g1;
    }
    for (int64_t i = 0; i < n; i++)
        for (int c = 0; c < 3; c++) totals[c] += part[3 * i + c];
    double nn = (double)n * (double)n;
    double vxy = totals[0] / nn, vx = totals[1] / nn, vz = totals[2] / nn;
    double den = sqrt(vx * vz);
    double r = den > 0.0 ? vxy / den : 0.0;
    if (!(r > 0.0)) r = 0.0;
    /* back to the inputs' units: dCov^2 scales with sx sz, dVar^2(x) with sx^2 */
    double sx = in[0].scale, sz = in[1].scale;
    stats[0] = vxy / sx / sz, stats[1] = vx / sx / sx, stats[2] = vz / sz / sz, stats[3] = r;
    if (!grad) return SP_OK;

    double dcor = sqrt(r);
    int zero = !(dcor > 0.0);
    double c1 = zero ? 0.0 : 1.0 / (den * nn * 2.0 * dcor);
    double c2 = zero ? 0.0 : r / (vz * nn * 2.0 * dcor);
    double gscale = -2.0 * sz;
    const sp_input *X = &in[0], *Z = &in[1];
#pragma omp parallel num_threads(nthreads)
    {
        int t = omp_get_thread_num(), T = omp_get_num_threads();
        /* 5. M' packed in panels of SP_MR rows as the Gram operands are (M' is symmetric:
         * row i is column i), and z_c in panels of 4 columns, [k][4] within a panel, both
         * zero-padded. A close pair
         * (b_ij^2 < SP_TAU (|z_i|^2 + |z_j|^2)) is left out of M': through the product its
         * large M_ij would cancel most digits of M_ij (z_i - z_j); its M_ij goes to b_ij's
         * place instead (b's row i is read by row i only) and is applied to the difference
         * of the two rows below; every other b_ij of the row becomes 0. */
#pragma omp for schedule(static)
        for (int64_t i = 0; i < np; i++) {
            const double *row = X->gram + i * np;
            double *mi = mp + (i / SP_MR) * np * SP_MR + i % SP_MR; /* M'_ik at mi[4k] */
            if (i >= n || zero) {
                for (int64_t k = 0; k < np; k++) mi[k * SP_MR] = 0.0;
                if (i < n) flags[i] = 0.0;
            } else {
                double *b = Z->gram + i * np;
                const double *dzz = diag + n;
                double s = 0.0;
                int close = 0;
                for (int64_t j = 0; j < n; j++) {
                    double m = 0.0, bj = b[j];
                    if (j != i && bj > 0.0) {
                        double A = (row[j] - (X->rmean[i] + X->rmean[j])) + gm[0];
                        double B = (bj - (Z->rmean[i] + Z->rmean[j])) + gm[1];
                        m = (A * c1 - B * c2) / bj;
                    }
                    if (j != i && bj * bj < SP_TAU * (dzz[i] + dzz[j])) {
                        b[j] = m, mi[j * SP_MR] = 0.0, close = 1;
                    } else {
                        b[j] = 0.0, mi[j * SP_MR] = m, s += m;
                    }
                }
                mi[i * SP_MR] = -s;
                for (int64_t j = n; j < np; j++) mi[j * SP_MR] = 0.0;
                flags[i] = close;
            }
            const double *pz = Z->packed + (i / SP_MR) * Z->d * SP_MR + i % SP_MR;
            for (int64_t c = 0; c < dzp; c += 4) {
                double *dst = zp + c * np + i * 4;
                for (int j = 0; j < 4; j++) dst[j] = c + j < dz ? pz[(c + j) * SP_MR] : 0.0;
            }
        }
#pragma omp barrier
        /* 6. cg = M' z_c: each thread owns column tiles */
        int64_t ctiles = dzp / SP_NR;
        for (int64_t k0 = 0; k0 < n; k0 += SP_KC) {
            int64_t kc = n - k0 < SP_KC ? n - k0 : SP_KC;
            for (int64_t ct = t; ct < ctiles; ct += T) {
                int64_t c0 = ct * SP_NR;
                for (int64_t i0 = 0; i0 < np; i0 += SP_MR)
                    tile(kc, mp + i0 * np + k0 * SP_MR, SP_MR, zp + c0 * np + k0 * 4, 4, 4 * np,
                         cg + i0 * dzp + c0, dzp, k0 == 0);
            }
        }
#pragma omp barrier
#pragma omp for schedule(static)
        for (int64_t i = 0; i < n; i++) {
            double *src = cg + i * dzp;
            for (int64_t k = 0; k < dz; k++) src[k] *= gscale;
            if (flags[i] != 0.0) { /* the close pairs: 2 s M_ij (z_i - z_j), by differences */
                const double *b = Z->gram + i * np;
                for (int64_t j = 0; j < n; j++)
                    if (b[j] != 0.0) sp_add_diff(Z, i, j, 2.0 * sz * b[j], src);
            }
            if (grad64) {
                double *dst = (double *)(grad + i * grad_rs);
                for (int64_t k = 0; k < dz; k++) dst[k] = src[k];
            } else {
                float *dst = (float *)(grad + i * grad_rs);
                for (int64_t k = 0; k < dz; k++) dst[k] = (float)src[k];
            }
        }
    }

    return rc;
}

#endif /* PPML_SPLIT_KERNELS_H */
