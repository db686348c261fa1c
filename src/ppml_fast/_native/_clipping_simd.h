/* The clipping kernels' inner loops, one copy per ISA level: _clipping_kernels.h includes
 * this file once per level with CLIP_TGT (the target attribute, empty for generic) and
 * CLIP_V(name) (the name with the level's suffix) defined, then dispatches on ppml_isa.
 * Plain C loops: the compiler vectorises each copy for its level; every copy computes the
 * same values (the lanes and the order of additions are written out, and -ffp-contract=off
 * keeps multiply-add unfused at every level). */

/* float32: each square is formed exactly in double.  (Summing four float32 squares
 * before converting halved the conversions and ran faster in cache, but streamed from
 * memory about 20% slower.) */
CLIP_TGT static double CLIP_V(clip_sumsq_f32)(const float *x, int64_t n)
{
    double a[CLIP_LANES];
    for (int j = 0; j < CLIP_LANES; j++) a[j] = 0.0;
    int64_t i = 0;
    for (; i + CLIP_LANES <= n; i += CLIP_LANES) {
        CLIP_PREFETCH(x + i, 0);
        CLIP_PREFETCH(x + i + 16, 0);
        for (int j = 0; j < CLIP_LANES; j++) {
            double v = (double)x[i + j];
            a[j] = a[j] + v * v;
        }
    }
    for (int j = 0; i + j < n; j++) {
        double v = (double)x[i + j];
        a[j] = a[j] + v * v;
    }
    return clip_tree(a);
}

CLIP_TGT static double CLIP_V(clip_sumsq_f64)(const double *x, int64_t n)
{
    double a[CLIP_LANES];
    for (int j = 0; j < CLIP_LANES; j++) a[j] = 0.0;
    int64_t i = 0;
    for (; i + CLIP_LANES <= n; i += CLIP_LANES) {
        for (int q = 0; q < CLIP_LANES; q += 8) CLIP_PREFETCH(x + i + q, 0);
        for (int j = 0; j < CLIP_LANES; j++) {
            double v = x[i + j];
            a[j] = a[j] + v * v;
        }
    }
    for (int j = 0; i + j < n; j++) {
        double v = x[i + j];
        a[j] = a[j] + v * v;
    }
    return clip_tree(a);
}

/* Elementwise loops in 64-byte steps, one prefetch per line of each stream. */
#undef CLIP_LINE_LOOP
#define CLIP_LINE_LOOP(T, body_prefetch, stmt)                                     \
    {                                                                              \
        const int64_t w = 64 / (int64_t)sizeof(T);                                \
        int64_t i = 0;                                                             \
        for (; i + w <= n; i += w) {                                               \
            body_prefetch;                                                         \
            for (int64_t j = i; j < i + w; j++) stmt;                              \
        }                                                                          \
        for (int64_t j = i; j < n; j++) stmt;                                      \
    }

/* y may be x (in place): no restrict here */
CLIP_TGT static void CLIP_V(clip_scale_f32)(float *y, const float *x, float s, int64_t n)
CLIP_LINE_LOOP(float, CLIP_PREFETCH(x + i, 0), y[j] = x[j] * s)

CLIP_TGT static void CLIP_V(clip_scale_f64)(double *y, const double *x, double s, int64_t n)
CLIP_LINE_LOOP(double, CLIP_PREFETCH(x + i, 0), y[j] = x[j] * s)

CLIP_TGT static void CLIP_V(clip_axpy_f32)(float *restrict y, const float *restrict x, float s,
                                      int64_t n)
CLIP_LINE_LOOP(float, (CLIP_PREFETCH(x + i, 0), CLIP_PREFETCH(y + i, 1)), y[j] = y[j] + x[j] * s)

CLIP_TGT static void CLIP_V(clip_axpy_f64)(double *restrict y, const double *restrict x, double s,
                                      int64_t n)
CLIP_LINE_LOOP(double, (CLIP_PREFETCH(x + i, 0), CLIP_PREFETCH(y + i, 1)), y[j] = y[j] + x[j] * s)

/* acc += x_r * s_r for R rows in order, element by element (the same roundings as adding
 * the rows one at a time): R streams at once keep more memory requests in flight. */
#undef CLIP_DEF_ACC4
#define CLIP_DEF_ACC4(NAME, T)                                                              \
    CLIP_TGT static void CLIP_V(NAME)(T *restrict y, const T *x0, const T *x1, const T *x2,     \
                                 const T *x3, T s0, T s1, T s2, T s3, int64_t n)           \
    {                                                                                       \
        const int64_t w = 64 / (int64_t)sizeof(T);                                         \
        int64_t i = 0;                                                                      \
        for (; i + w <= n; i += w) {                                                        \
            CLIP_PREFETCH(x0 + i, 0);                                                       \
            CLIP_PREFETCH(x1 + i, 0);                                                       \
            CLIP_PREFETCH(x2 + i, 0);                                                       \
            CLIP_PREFETCH(x3 + i, 0);                                                       \
            for (int64_t j = i; j < i + w; j++) {                                           \
                T a = y[j];                                                                 \
                a = a + x0[j] * s0;                                                         \
                a = a + x1[j] * s1;                                                         \
                a = a + x2[j] * s2;                                                         \
                a = a + x3[j] * s3;                                                         \
                y[j] = a;                                                                   \
            }                                                                               \
        }                                                                                   \
        for (int64_t j = i; j < n; j++) {                                                   \
            T a = y[j];                                                                     \
            a = a + x0[j] * s0;                                                             \
            a = a + x1[j] * s1;                                                             \
            a = a + x2[j] * s2;                                                             \
            a = a + x3[j] * s3;                                                             \
            y[j] = a;                                                                       \
        }                                                                                   \
    }
CLIP_DEF_ACC4(clip_acc4_f32, float)
CLIP_DEF_ACC4(clip_acc4_f64, double)

/* Memory-read probe for the benchmarks: 64-bit integer sums over nbytes (a multiple of
 * 8) split across nthreads, the fastest plain read this build can do; returns a value
 * that depends on every word so the compiler cannot drop the loads. */
CLIP_TGT static uint64_t CLIP_V(clip_probe_words)(const uint64_t *x, int64_t n)
{
    uint64_t a[CLIP_LANES];
    for (int j = 0; j < CLIP_LANES; j++) a[j] = 0;
    int64_t i = 0;
    for (; i + CLIP_LANES <= n; i += CLIP_LANES) {
        for (int q = 0; q < CLIP_LANES; q += 8) CLIP_PREFETCH(x + i + q, 0);
        for (int j = 0; j < CLIP_LANES; j++) a[j] += x[i + j];
    }
    uint64_t s = 0;
    for (int j = 0; j < CLIP_LANES; j++) s ^= a[j];
    for (; i < n; i++) s += x[i];
    return s;
}
