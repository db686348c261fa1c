/* Per-sample L2 clipping kernels, included by clipping.pyx (no validation here).
 *
 * A batch is B rows; a row is the concatenation of L segments ("layers"), each a
 * contiguous run of n_l elements at base_l + k * row_stride_l (bytes) for row k.
 *
 * Norms.  Every segment is cut into chunks of CLIP_CHUNK elements (the last one shorter).
 * A chunk's sum of squares is accumulated in double in CLIP_LANES independent lanes
 * (lane j takes the elements j, j + LANES, ...; squares exact in double for both
 * dtypes), the lanes are added by a fixed pairwise
 * tree, and a row's sum of squares is the chunk partials added in order (layer by layer,
 * chunk by chunk).  So a norm is one fixed sequence of double operations, whichever
 * thread computes which chunk: results do not depend on the thread count.
 * A sum of squares that is +inf or NaN (non-finite data, or float64 data beyond 1e154)
 * or tiny (float64 data below about 1e-146, whose squares underflow) is recomputed
 * serially after dividing by the row's largest magnitude.
 *
 * Clipping.  scale_k = min(1, C / ||g_k||) in double (1 for a zero row), rounded once to
 * the data type; clipped = g * scale (one multiplication, no fused multiply-add: setup.py
 * compiles with -ffp-contract=off).  Sums add the clipped rows in row order, element by
 * element, so the sum is the same on any number of threads as well.
 *
 * Work: two streaming passes, two calls.  CLIP_OP_NORMS computes every row's norm
 * (threads split the (row, chunk) pairs; one thread then adds each row's partials); the
 * caller checks them for NaN (non-finite rows) before anything is written, so an error
 * leaves the output (and an in-place input) untouched.  CLIP_OP_SCALE then writes the
 * clipped rows (threads split the pairs again) and CLIP_OP_SUM adds them into the sum
 * (threads split the columns into panels; each panel of the sum stays in cache while
 * the rows stream through it, four at a time).
 * Why not one fused pass that scales each row while it is still in cache: a DP-SGD row
 * of 10^6 floats (4 MB) does not fit in a per-core L2 beside the accumulator, and
 * re-reading it from L3 plus moving the accumulator through L3 for every row costs more
 * than reading the rows from memory a second time.  For short rows a fused version gains
 * little (about 15%), and its two barriers per block of rows stall for whole scheduler
 * time slices whenever another process holds a core; the two-pass kernel has two
 * barriers in all.
 * Nor rows in groups sized to the L3 (each thread computes the norms of its own columns
 * of a group's rows, then adds those columns while they are still in its caches): the
 * same bits, but every group needs all threads to meet before its rows can be scaled,
 * so a thread that loses its core stalls the others once per group; the accumulator
 * moves through L3 once per group; and an L3 read is only a few times faster than a
 * memory read where the L3 is shared with other tenants.
 */
#ifndef PPML_CLIP_KERNELS_H
#define PPML_CLIP_KERNELS_H

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "_omp.h"

#include "_isa.h"

#define CLIP_LANES 32
#define CLIP_CHUNK 32768
/* Software prefetch distance: the hardware prefetcher alone keeps too few lines in flight
 * for one core to reach its share of the memory bandwidth; a prefetch 512 B to 1 KB ahead
 * closes most of that gap (about 25% more bandwidth per core). */
#define CLIP_PF 1024
#define CLIP_PREFETCH(p, rw) __builtin_prefetch((const char *)(p) + CLIP_PF, (rw), 3)


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


static inline double clip_tree(double *a)
{
    for (int w = CLIP_LANES / 2; w >= 1; w /= 2)
        for (int j = 0; j < w; j++)
            a[j] = a[j] + a[j + w];
    return a[0];
}

#define CLIP_TGT
#define CLIP_V(name) name##_generic
#include "_clipping_simd.h"
#undef CLIP_TGT
#undef CLIP_V
#if PPML_X86
#define CLIP_TGT PPML_TARGET_AVX2
#define CLIP_V(name) name##_avx2
#include "_clipping_simd.h"
#undef CLIP_TGT
#undef CLIP_V
#define CLIP_TGT PPML_TARGET_AVX512
#define CLIP_V(name) name##_avx512
#include "_clipping_simd.h"
#undef CLIP_TGT
#undef CLIP_V
/* The copy of a kernel for ISA level `level`; CLIP_PICK: the level the kernels run at,
 * read once per call from ppml_isa. */
#define CLIP_PICK_AT(level, name)                                                  \
    ((level) >= PPML_ISA_AVX512 ? name##_avx512                                    \
     : (level) == PPML_ISA_AVX2 ? name##_avx2                                      \
                                : name##_generic)
#else
#define CLIP_PICK_AT(level, name) name##_generic
#endif
#define CLIP_PICK(name) CLIP_PICK_AT(ppml_isa, name)


/* A row's scale min(1, C / ||g||).  Below 2^-900 it is kept as s * 2^e (s in (0, 0.5],
 * e < 0): a norm more than ~1e38 times C in float32, or beyond 1e270 times C in float64,
 * gives a scale that the data type -- even double -- would hold as a subnormal with few
 * or no bits (a clipped norm of 2 C was possible).  Such "tiny" rows (also float32 rows
 * whose scale is below FLT_MIN) form each product with one rounding: x * s in double,
 * then exact powers of two until the result itself leaves the normal range. */
typedef struct {
    double s;
    int e;
} clip_scale;

/* c / (m * r), as a clip_scale (r >= 1; m * r may exceed DBL_MAX) */
static clip_scale clip_make_scale(double c, double m, double r)
{
    clip_scale out;
    const double q = c / m / r;
    if (q >= 0x1p-900) {
        out.s = q;
        out.e = 0;
        return out;
    }
    int ce, me;
    const double cm = frexp(c, &ce), mm = frexp(m, &me);
    out.s = cm / mm / r / 4.0;
    out.e = ce - me + 2;
    return out;
}

static inline int clip_tiny(int is64, clip_scale sc)
{
    return sc.e != 0 || (!is64 && sc.s > 0.0 && sc.s < (double)FLT_MIN);
}

static inline double clip_pow2(double y, int e)
{
    for (; e < -1000; e += 1000) y *= 0x1p-1000;
    return y * ldexp(1.0, e);
}

static void clip_tiny_apply(int is64, int add, char *q, const char *p, clip_scale sc, int64_t n)
{
    if (is64) {
        double *y = (double *)q;
        const double *x = (const double *)p;
        for (int64_t i = 0; i < n; i++) {
            const double v = clip_pow2(x[i] * sc.s, sc.e);
            y[i] = add ? y[i] + v : v;
        }
    } else {
        float *y = (float *)q;
        const float *x = (const float *)p;
        for (int64_t i = 0; i < n; i++) {
            const float v = (float)clip_pow2((double)x[i] * sc.s, sc.e);
            y[i] = add ? y[i] + v : v;
        }
    }
}

/* Serial, careful norm of one row, as m * r with m = max |x| and r = sqrt(sum (x/m)^2)
 * (so neither overflows nor underflows): 0 = ok, 1 = non-finite data. */
static int clip_careful_norm(const clip_seg *segs, int nseg, int64_t k, int is64, double *m_out,
                             double *r_out)
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
    *m_out = m;
    *r_out = 0.0;
    if (m == 0.0) return 0;
    double s = 0.0;
    for (int l = 0; l < nseg; l++) {
        const char *row = segs[l].base + k * segs[l].row_stride;
        for (int64_t i = 0; i < segs[l].n; i++) {
            double v = (is64 ? ((const double *)row)[i] : (double)((const float *)row)[i]) / m;
            s = s + v * v;
        }
    }
    *r_out = sqrt(s);
    return 0;
}

/* Row k's norm from its chunk partials (serial): NaN when the row holds NaN or inf.  A
 * float64 sum of squares that is not finite, or below 1e-292 (zero included: all the
 * squares may have underflowed), is redone carefully; a norm beyond the float64 range is
 * then inf (clip_scale_of recovers the exact scale). */
static double clip_row_norm(const clip_seg *segs, int nseg, int64_t k, int is64,
                            const double *part, int64_t nchunks)
{
    double ss = 0.0;
    for (int64_t c = 0; c < nchunks; c++) ss = ss + part[c];
    if (isfinite(ss) && (!is64 || ss > 1e-292)) return sqrt(ss);
    double m, r;
    if (clip_careful_norm(segs, nseg, k, is64, &m, &r)) return NAN;
    return m * r;
}

/* Row k's scale min(1, C / norm): 0 for a NaN norm (a dropped row); for an infinite norm
 * (finite data beyond float64) from the careful m and r. */
static clip_scale clip_scale_of(const clip_seg *segs, int nseg, int64_t k, int is64,
                                double norm, double max_norm)
{
    clip_scale one = {1.0, 0}, zero = {0.0, 0};
    double m, r;
    if (isnan(norm)) return zero;
    if (isinf(norm)) {
        if (clip_careful_norm(segs, nseg, k, is64, &m, &r)) return zero;
        return clip_make_scale(max_norm, m, r);
    }
    return norm > max_norm ? clip_make_scale(max_norm, norm, 1.0) : one;
}


#ifndef CLIP_PANEL
#define CLIP_PANEL 16384
#endif

/* acc (this panel) += clipped rows k0 .. k1-1, in row order, four rows at a time. */
static void clip_sum_panel(int is64, const clip_seg *sg, const clip_chunk pn, int64_t k0,
                           int64_t k1, const clip_scale *scales)
{
    const int64_t isz = is64 ? 8 : 4;
    char *q = sg->out + pn.start * isz;
    const char *base = sg->base + pn.start * isz;
    int64_t k = k0;
    while (k < k1) {
        const clip_scale *sc = scales + (k - k0);
        if (k + 4 <= k1 && sc[0].s != 0.0 && sc[1].s != 0.0 && sc[2].s != 0.0 &&
            sc[3].s != 0.0 && !clip_tiny(is64, sc[0]) && !clip_tiny(is64, sc[1]) &&
            !clip_tiny(is64, sc[2]) && !clip_tiny(is64, sc[3])) {
            const char *p0 = base + k * sg->row_stride;
            const int64_t st = sg->row_stride;
            if (is64)
                CLIP_PICK(clip_acc4_f64)((double *)q, (const double *)p0, (const double *)(p0 + st),
                              (const double *)(p0 + 2 * st), (const double *)(p0 + 3 * st),
                              sc[0].s, sc[1].s, sc[2].s, sc[3].s, pn.len);
            else
                CLIP_PICK(clip_acc4_f32)((float *)q, (const float *)p0, (const float *)(p0 + st),
                              (const float *)(p0 + 2 * st), (const float *)(p0 + 3 * st),
                              (float)sc[0].s, (float)sc[1].s, (float)sc[2].s, (float)sc[3].s,
                              pn.len);
            k += 4;
            continue;
        }
        if (clip_tiny(is64, sc[0])) {
            clip_tiny_apply(is64, 1, q, base + k * sg->row_stride, sc[0], pn.len);
        } else if (sc[0].s != 0.0) {
            const char *p = base + k * sg->row_stride;
            if (is64) CLIP_PICK(clip_axpy_f64)((double *)q, (const double *)p, sc[0].s, pn.len);
            else CLIP_PICK(clip_axpy_f32)((float *)q, (const float *)p, (float)sc[0].s, pn.len);
        }
        k++;
    }
}

/* Column panels: the chunks cut into pieces of at most `width` elements. */
static clip_chunk *clip_make_panels(const clip_chunk *chunks, int64_t nchunks, int64_t width,
                                    int64_t *npanels)
{
    int64_t n = 0;
    for (int64_t c = 0; c < nchunks; c++) n += (chunks[c].len + width - 1) / width;
    clip_chunk *panels = (clip_chunk *)malloc(sizeof(clip_chunk) * (size_t)(n ? n : 1));
    if (!panels) return NULL;
    int64_t q = 0;
    for (int64_t c = 0; c < nchunks; c++)
        for (int64_t s = 0; s < chunks[c].len; s += width) {
            panels[q].seg = chunks[c].seg;
            panels[q].start = chunks[c].start + s;
            panels[q].len = chunks[c].len - s < width ? chunks[c].len - s : width;
            q++;
        }
    *npanels = n;
    return panels;
}

/* Panel width: CLIP_PANEL, narrower when a row is short, so that every thread gets
 * several panels (the width changes who adds what, never the order of the additions). */
static int64_t clip_panel_width(int64_t rowlen, int nthreads)
{
    int64_t w = rowlen / (4 * (int64_t)nthreads);
    w = (w + 15) / 16 * 16;
    if (w > CLIP_PANEL) w = CLIP_PANEL;
    if (w < 256) w = 256;
    return w;
}

/* Run one operation over B rows (see the top of this file for the work split).
 *
 * op     CLIP_OP_NORMS: norms[k] = ||row k|| (NaN for a row holding NaN or inf);
 *        CLIP_OP_SCALE: out rows = row * min(1, C / norms[k]) (zeros for a NaN norm; rows
 *        whose scale is 1 are not written when out == base, i.e. in place);
 *        CLIP_OP_SUM: the accumulators (caller-zeroed) += the same scaled rows, in order.
 * norms  B doubles: written by CLIP_OP_NORMS, read by the others.
 * Returns 0, or -1 when out of memory (nothing done).
 */
static int clip_run(int is64, int op, int64_t B, clip_seg *segs, int nseg, double max_norm,
                    double *norms, int nthreads)
{
    const int64_t isz = is64 ? 8 : 4;
    int64_t nchunks = 0, rowlen = 0;
    for (int l = 0; l < nseg; l++) {
        nchunks += (segs[l].n + CLIP_CHUNK - 1) / CLIP_CHUNK;
        rowlen += segs[l].n;
    }
    if (B <= 0) return 0;
    if (nchunks == 0) {
        if (op == CLIP_OP_NORMS)
            for (int64_t k = 0; k < B; k++) norms[k] = 0.0;
        return 0;
    }
    /* Tiny problems stay on one thread: starting a team costs more than the work. */
    if ((double)B * (double)rowlen < 65536.0) nthreads = 1;
    if (nthreads < 1) nthreads = 1;

    clip_chunk *chunks = (clip_chunk *)malloc(sizeof(clip_chunk) * (size_t)nchunks);
    if (!chunks) return -1;
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
    const int64_t items = B * nchunks; /* (row, chunk) pairs */
    double *partial = NULL;
    clip_scale *scales = NULL;
    clip_chunk *panels = NULL;
    int64_t npanels = 0;
    if (op == CLIP_OP_NORMS) {
        partial = (double *)malloc(sizeof(double) * (size_t)items);
    } else {
        scales = (clip_scale *)malloc(sizeof(clip_scale) * (size_t)B);
        if (op == CLIP_OP_SUM)
            panels = clip_make_panels(chunks, nchunks, clip_panel_width(rowlen, nthreads),
                                      &npanels);
    }
    if (op == CLIP_OP_NORMS ? !partial : (!scales || (op == CLIP_OP_SUM && !panels))) {
        free(chunks); free(partial); free(scales); free(panels);
        return -1;
    }

#pragma omp parallel num_threads(nthreads)
    {
        const int64_t tid = omp_get_thread_num(), nt = omp_get_num_threads();
        const int64_t lo = items * tid / nt, hi = items * (tid + 1) / nt;
        if (op == CLIP_OP_NORMS) {
            for (int64_t it = lo; it < hi; it++) {
                const int64_t k = it / nchunks;
                const clip_chunk ch = chunks[it % nchunks];
                const clip_seg *sg = &segs[ch.seg];
                const char *p = sg->base + k * sg->row_stride + ch.start * isz;
                partial[it] = is64 ? CLIP_PICK(clip_sumsq_f64)((const double *)p, ch.len)
                                   : CLIP_PICK(clip_sumsq_f32)((const float *)p, ch.len);
            }
#pragma omp barrier
#pragma omp single
            for (int64_t k = 0; k < B; k++)
                norms[k] = clip_row_norm(segs, nseg, k, is64, partial + k * nchunks, nchunks);
        } else {
#pragma omp single
            for (int64_t k = 0; k < B; k++)
                scales[k] = clip_scale_of(segs, nseg, k, is64, norms[k], max_norm);
            if (op == CLIP_OP_SCALE) {
                for (int64_t it = lo; it < hi; it++) {
                    const int64_t k = it / nchunks;
                    const clip_chunk ch = chunks[it % nchunks];
                    const clip_seg *sg = &segs[ch.seg];
                    const char *p = sg->base + k * sg->row_stride + ch.start * isz;
                    char *q = sg->out + k * sg->out_row_stride + ch.start * isz;
                    const clip_scale sc = scales[k];
                    const double s = sc.s;
                    if (s == 1.0 && sc.e == 0 && q == p) continue;
                    if (s == 0.0) { memset(q, 0, (size_t)(ch.len * isz)); continue; }
                    if (clip_tiny(is64, sc)) { clip_tiny_apply(is64, 0, q, p, sc, ch.len); continue; }
                    if (is64) CLIP_PICK(clip_scale_f64)((double *)q, (const double *)p, s, ch.len);
                    else CLIP_PICK(clip_scale_f32)((float *)q, (const float *)p, (float)s, ch.len);
                }
            } else {
                const int64_t plo = npanels * tid / nt, phi = npanels * (tid + 1) / nt;
                for (int64_t pi = plo; pi < phi; pi++)
                    clip_sum_panel((int)is64, &segs[panels[pi].seg], panels[pi], 0, B, scales);
            }
        }
    }
    free(chunks);
    free(partial);
    free(scales);
    free(panels);
    return 0;
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
        /* the CPU's best level whatever the kernels' level: the probe measures the memory */
        acc ^= CLIP_PICK_AT(ppml_cpu_isa(), clip_probe_words)((const uint64_t *)p + lo, hi - lo);
    }
    return acc;
}

#endif
