/* Per-sample L2 clipping kernels, included by clipping.pyx (no validation here).
 *
 * A batch is B rows; a row is the concatenation of L segments ("layers"), each a
 * contiguous run of n_l elements at base_l + k * row_stride_l (bytes) for row k.
 *
 * Norms.  Every segment is cut into chunks of CLIP_CHUNK elements (the last one shorter).
 * A chunk's sum of squares is accumulated in double in CLIP_LANES independent lanes
 * (lane j takes the elements j, j + LANES, ...), the lanes are added by a fixed pairwise
 * tree, and a row's sum of squares is the chunk partials added in order (layer by layer,
 * chunk by chunk).  So a norm is one fixed sequence of double operations, whichever
 * thread computes which chunk: results do not depend on the thread count.
 * A sum of squares that is +inf or NaN (non-finite data, or float64 data beyond 1e154)
 * or tiny (float64 data below 1e-146, whose squares underflow) is recomputed serially
 * after dividing by the row's largest magnitude.
 *
 * Clipping.  scale_k = min(1, C / ||g_k||) in double (1 for a zero row), rounded once to
 * the data type; clipped = g * scale (one multiplication, no fused multiply-add: setup.py
 * compiles with -ffp-contract=off).  Sums add the clipped rows in row order, so the sum
 * over rows is the same on any number of threads as well.
 *
 * Work.  Rows go in blocks of about CLIP_BLOCK_BYTES.  Phase 1 (parallel over the
 * (row, chunk) pairs of a block) computes the chunk partials; one thread turns them into
 * norms and scales; phase 2 (parallel over the same pairs for SCALE, over chunks for
 * SUM) applies them while the block is still in cache.  With rows of megabytes a block
 * is one row, and each thread re-reads in phase 2 the half-row it read in phase 1.
 */
#ifndef PPML_CLIP_KERNELS_H
#define PPML_CLIP_KERNELS_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>

#define CLIP_LANES 32
#define CLIP_CHUNK 32768
#ifndef CLIP_BLOCK_BYTES
#define CLIP_BLOCK_BYTES (1 << 20)
#endif

enum { CLIP_OP_NORMS = 0, CLIP_OP_SCALE = 1, CLIP_OP_SUM = 2 };

typedef struct {
    const char *base;        /* row 0 of this segment */
    int64_t row_stride;      /* bytes from one row to the next (any sign, may be 0) */
    int64_t n;               /* elements per row, contiguous */
    char *out;               /* SCALE: row 0 of the output; SUM: the accumulator */
    int64_t out_row_stride;  /* SCALE only */
} clip_seg;

typedef struct {
    int32_t seg;
    int64_t start;
    int64_t len;
} clip_chunk;

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define CLIP_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define CLIP_CLONES
#endif

static inline double clip_tree(double *a)
{
    for (int w = CLIP_LANES / 2; w >= 1; w /= 2)
        for (int j = 0; j < w; j++)
            a[j] = a[j] + a[j + w];
    return a[0];
}

CLIP_CLONES static double clip_sumsq_f32(const float *x, int64_t n)
{
    double a[CLIP_LANES];
    for (int j = 0; j < CLIP_LANES; j++) a[j] = 0.0;
    int64_t i = 0;
    for (; i + CLIP_LANES <= n; i += CLIP_LANES)
        for (int j = 0; j < CLIP_LANES; j++) {
            double v = (double)x[i + j];
            a[j] = a[j] + v * v;
        }
    for (int j = 0; i + j < n; j++) {
        double v = (double)x[i + j];
        a[j] = a[j] + v * v;
    }
    return clip_tree(a);
}

CLIP_CLONES static double clip_sumsq_f64(const double *x, int64_t n)
{
    double a[CLIP_LANES];
    for (int j = 0; j < CLIP_LANES; j++) a[j] = 0.0;
    int64_t i = 0;
    for (; i + CLIP_LANES <= n; i += CLIP_LANES)
        for (int j = 0; j < CLIP_LANES; j++) {
            double v = x[i + j];
            a[j] = a[j] + v * v;
        }
    for (int j = 0; i + j < n; j++) {
        double v = x[i + j];
        a[j] = a[j] + v * v;
    }
    return clip_tree(a);
}

CLIP_CLONES static void clip_scale_f32(float *restrict y, const float *x, float s, int64_t n)
{
    for (int64_t i = 0; i < n; i++) y[i] = x[i] * s;
}

CLIP_CLONES static void clip_scale_f64(double *restrict y, const double *x, double s, int64_t n)
{
    for (int64_t i = 0; i < n; i++) y[i] = x[i] * s;
}

CLIP_CLONES static void clip_axpy_f32(float *restrict y, const float *restrict x, float s,
                                      int64_t n)
{
    for (int64_t i = 0; i < n; i++) y[i] = y[i] + x[i] * s;
}

CLIP_CLONES static void clip_axpy_f64(double *restrict y, const double *restrict x, double s,
                                      int64_t n)
{
    for (int64_t i = 0; i < n; i++) y[i] = y[i] + x[i] * s;
}

/* Serial, careful norm of one row: 0 = ok (*norm set), 1 = non-finite data. */
static int clip_careful_norm(const clip_seg *segs, int nseg, int64_t k, int is64, double *norm)
{
    double m = 0.0;
    for (int l = 0; l < nseg; l++) {
        const char *row = segs[l].base + k * segs[l].row_stride;
        for (int64_t i = 0; i < segs[l].n; i++) {
            double v = is64 ? ((const double *)row)[i] : (double)((const float *)row)[i];
            if (!isfinite(v)) return 1;
            v = fabs(v);
            if (v > m) m = v;
        }
    }
    if (m == 0.0) { *norm = 0.0; return 0; }
    double s = 0.0;
    for (int l = 0; l < nseg; l++) {
        const char *row = segs[l].base + k * segs[l].row_stride;
        for (int64_t i = 0; i < segs[l].n; i++) {
            double v = (is64 ? ((const double *)row)[i] : (double)((const float *)row)[i]) / m;
            s = s + v * v;
        }
    }
    *norm = m * sqrt(s);
    return 0;
}

/* Decide row k's norm and scale from its chunk partials (serial). 1 = stop (bad row). */
static int clip_decide(const clip_seg *segs, int nseg, int64_t k, int is64, const double *part,
                       int64_t nchunks, double max_norm, int zero_bad, double *norm,
                       double *scale)
{
    double ss = 0.0, nrm;
    for (int64_t c = 0; c < nchunks; c++) ss = ss + part[c];
    if (isfinite(ss) && (ss == 0.0 || !is64 || ss > 1e-292)) {
        nrm = sqrt(ss);
    } else if (clip_careful_norm(segs, nseg, k, is64, &nrm)) {
        *norm = NAN;
        *scale = 0.0;
        return !zero_bad;
    }
    *norm = nrm;
    *scale = nrm > max_norm ? max_norm / nrm : 1.0;
    return 0;
}

/* Run one operation over B rows.
 *
 * op        CLIP_OP_NORMS: only norms; CLIP_OP_SCALE: out rows = g * scale (rows whose
 *           scale is 1 are skipped when out == base, i.e. in place); CLIP_OP_SUM: the
 *           accumulators (caller-zeroed) += sum of clipped rows.
 * norms     B doubles: written (have_norms = 0) or read (have_norms = 1, SCALE/SUM).
 * zero_bad  rows with non-finite data get norm NaN and scale 0 (else the run stops).
 * Returns -1 when every row was processed, else the index of the first row holding NaN
 * or inf (zero_bad = 0); rows from that row's block on are then left untouched.
 */
static int64_t clip_run(int is64, int op, int64_t B, clip_seg *segs, int nseg, double max_norm,
                        double *norms, int have_norms, int zero_bad, int nthreads)
{
    const int64_t isz = is64 ? 8 : 4;
    int64_t nchunks = 0, rowlen = 0;
    for (int l = 0; l < nseg; l++) {
        nchunks += (segs[l].n + CLIP_CHUNK - 1) / CLIP_CHUNK;
        rowlen += segs[l].n;
    }
    if (B <= 0) return -1;
    if (nchunks == 0) {
        if (!have_norms)
            for (int64_t k = 0; k < B; k++) norms[k] = 0.0;
        return -1;
    }
    clip_chunk *chunks = (clip_chunk *)malloc(sizeof(clip_chunk) * (size_t)nchunks);
    int64_t rows_per_block = CLIP_BLOCK_BYTES / (rowlen * isz);
    if (rows_per_block < 1) rows_per_block = 1;
    if (rows_per_block > B) rows_per_block = B;
    double *partial = (double *)malloc(sizeof(double) * (size_t)(rows_per_block * nchunks));
    double *scales = (double *)malloc(sizeof(double) * (size_t)rows_per_block);
    if (!chunks || !partial || !scales) {
        free(chunks); free(partial); free(scales);
        return -2;
    }
    {
        int64_t c = 0;
        for (int l = 0; l < nseg; l++)
            for (int64_t s = 0; s < segs[l].n; s += CLIP_CHUNK) {
                chunks[c].seg = l;
                chunks[c].start = s;
                chunks[c].len = segs[l].n - s < CLIP_CHUNK ? segs[l].n - s : CLIP_CHUNK;
                c++;
            }
    }
    /* Tiny problems stay on one thread: a barrier costs more than the work. */
    if ((double)B * (double)rowlen < 65536.0) nthreads = 1;
    if (nthreads < 1) nthreads = 1;

    int64_t bad = -1;
    int stop = 0;
    /* Long rows: each thread owns a range of chunks in every row (and the matching
     * range of the accumulator), so phase 2 finds its data in its own core's caches. */
    const int colmode = nchunks >= 2 * nthreads;


#pragma omp parallel num_threads(nthreads)
    {
        const int64_t tid = omp_get_thread_num(), nt = omp_get_num_threads();
        for (int64_t k0 = 0; k0 < B; k0 += rows_per_block) {
            const int64_t rr = B - k0 < rows_per_block ? B - k0 : rows_per_block;
            const int64_t items = rr * nchunks;
            const int64_t clo = nchunks * tid / nt, chi = nchunks * (tid + 1) / nt;
            /* this thread's share: items [lo, hi) of the block's rr * nchunks (row, chunk)
             * pairs, or (colmode) chunks [clo, chi) of every row, numbered 0 .. rr*(chi-clo) */
            const int64_t lo = colmode ? 0 : items * tid / nt;
            const int64_t hi = colmode ? rr * (chi - clo) : items * (tid + 1) / nt;
            if (!have_norms && colmode) {
                for (int64_t r = 0; r < rr; r++)
                    for (int64_t c = clo; c < chi; c++) {
                        const clip_chunk ch = chunks[c];
                        const clip_seg *sg = &segs[ch.seg];
                        const char *p = sg->base + (k0 + r) * sg->row_stride + ch.start * isz;
                        partial[r * nchunks + c] =
                            is64 ? clip_sumsq_f64((const double *)p, ch.len)
                                 : clip_sumsq_f32((const float *)p, ch.len);
                    }
            } else if (!have_norms) {
                for (int64_t it = lo; it < hi; it++) {
                    const int64_t k = k0 + it / nchunks;
                    const clip_chunk ch = chunks[it % nchunks];
                    const clip_seg *sg = &segs[ch.seg];
                    const char *p = sg->base + k * sg->row_stride + ch.start * isz;
                    partial[it] = is64 ? clip_sumsq_f64((const double *)p, ch.len)
                                       : clip_sumsq_f32((const float *)p, ch.len);
                }
            }
#pragma omp barrier
#pragma omp single
            {
                for (int64_t r = 0; r < rr && !stop; r++) {
                    const int64_t k = k0 + r;
                    if (have_norms) {
                        const double nrm = norms[k];
                        scales[r] = isnan(nrm) ? 0.0 : nrm > max_norm ? max_norm / nrm : 1.0;
                    } else if (clip_decide(segs, nseg, k, (int)is64, partial + r * nchunks,
                                           nchunks, max_norm, zero_bad, &norms[k],
                                           &scales[r])) {
                        bad = k;
                        stop = 1;
                    }
                }
            }
            if (stop) break;
            /* Phase 2 walks this thread's share backwards: the chunks read last in
             * phase 1 are the ones most likely still in this core's L2. */
            if (op == CLIP_OP_SCALE) {
                /* the (row, chunk) pairs this thread measured in phase 1, last first */
                for (int64_t jt = hi - 1; jt >= lo; jt--) {
                    const int64_t it = colmode ? (jt / (chi - clo)) * nchunks + clo +
                                                     jt % (chi - clo)
                                               : jt;
                    const int64_t r = it / nchunks;
                    const int64_t k = k0 + r;
                    const clip_chunk ch = chunks[it % nchunks];
                    const clip_seg *sg = &segs[ch.seg];
                    const char *p = sg->base + k * sg->row_stride + ch.start * isz;
                    char *q = sg->out + k * sg->out_row_stride + ch.start * isz;
                    const double s = scales[r];
                    if (s == 1.0 && q == p) continue;
                    if (s == 0.0) { memset(q, 0, (size_t)(ch.len * isz)); continue; }
                    if (is64) clip_scale_f64((double *)q, (const double *)p, s, ch.len);
                    else clip_scale_f32((float *)q, (const float *)p, (float)s, ch.len);
                }
            } else if (op == CLIP_OP_SUM) {
                for (int64_t c = chi - 1; c >= clo; c--) {
                    const clip_chunk ch = chunks[c];
                    const clip_seg *sg = &segs[ch.seg];
                    char *q = sg->out + ch.start * isz;
                    for (int64_t r = 0; r < rr; r++) {
                        const double s = scales[r];
                        if (s == 0.0) continue;
                        const char *p = sg->base + (k0 + r) * sg->row_stride + ch.start * isz;
                        if (is64) clip_axpy_f64((double *)q, (const double *)p, s, ch.len);
                        else clip_axpy_f32((float *)q, (const float *)p, (float)s, ch.len);
                    }
                }
            }
#pragma omp barrier
        }
    }
    free(chunks);
    free(partial);
    free(scales);
    return bad;
}

/* Memory-read probe for the benchmarks: 64-bit integer sums over nbytes (a multiple of
 * 8) split across nthreads, the fastest plain read this build can do; returns a value
 * that depends on every word so the compiler cannot drop the loads. */
CLIP_CLONES static uint64_t clip_probe_words(const uint64_t *x, int64_t n)
{
    uint64_t a[CLIP_LANES];
    for (int j = 0; j < CLIP_LANES; j++) a[j] = 0;
    int64_t i = 0;
    for (; i + CLIP_LANES <= n; i += CLIP_LANES)
        for (int j = 0; j < CLIP_LANES; j++) a[j] += x[i + j];
    uint64_t s = 0;
    for (int j = 0; j < CLIP_LANES; j++) s ^= a[j];
    for (; i < n; i++) s += x[i];
    return s;
}

static uint64_t clip_read_probe(const char *p, int64_t nbytes, int nthreads)
{
    const int64_t n = nbytes / 8;
    uint64_t acc = 0;
    if (nthreads < 1) nthreads = 1;
#pragma omp parallel num_threads(nthreads) reduction(^ : acc)
    {
        const int64_t tid = omp_get_thread_num(), nt = omp_get_num_threads();
        const int64_t lo = n * tid / nt, hi = n * (tid + 1) / nt;
        acc ^= clip_probe_words((const uint64_t *)p + lo, hi - lo);
    }
    return acc;
}

#endif
