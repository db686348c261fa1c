/* Unsigned 128-bit integers for the kernels: the compiler's `unsigned __int128` where it
 * has one (GCC, clang), else a pair of 64-bit limbs with the same operations (MSVC; also
 * forced with -DPPML_NO_INT128 to test this path). Every function gives the same value
 * on both paths; operations are modulo 2^128 where they can overflow. */
#ifndef PPML_U128_H
#define PPML_U128_H

#include <stdint.h>

#if defined(__SIZEOF_INT128__) && !defined(PPML_NO_INT128)

typedef unsigned __int128 ppml_u128;

static inline ppml_u128 u128_make(uint64_t hi, uint64_t lo) { return ((ppml_u128)hi << 64) | lo; }
static inline ppml_u128 u128_from(uint64_t x) { return x; }
static inline uint64_t u128_lo(ppml_u128 x) { return (uint64_t)x; }
static inline uint64_t u128_hi(ppml_u128 x) { return (uint64_t)(x >> 64); }
static inline ppml_u128 u128_mul64(uint64_t a, uint64_t b) { return (ppml_u128)a * b; }
static inline ppml_u128 u128_add64(ppml_u128 x, uint64_t y) { return x + y; }
static inline ppml_u128 u128_sub(ppml_u128 x, ppml_u128 y) { return x - y; }
static inline ppml_u128 u128_mul(ppml_u128 x, ppml_u128 y) { return x * y; }
static inline ppml_u128 u128_div(ppml_u128 x, ppml_u128 y) { return x / y; } /* y < 2^127 */
static inline ppml_u128 u128_shl1(ppml_u128 x) { return x << 1; }
static inline ppml_u128 u128_shr(ppml_u128 x, int k) { return x >> k; } /* 0 <= k < 128 */
static inline int u128_ge(ppml_u128 x, ppml_u128 y) { return x >= y; }
static inline int u128_is_zero(ppml_u128 x) { return x == 0; }

#else

typedef struct {
    uint64_t lo, hi;
} ppml_u128;

static inline ppml_u128 u128_make(uint64_t hi, uint64_t lo)
{
    ppml_u128 r;
    r.lo = lo;
    r.hi = hi;
    return r;
}
static inline ppml_u128 u128_from(uint64_t x) { return u128_make(0, x); }
static inline uint64_t u128_lo(ppml_u128 x) { return x.lo; }
static inline uint64_t u128_hi(ppml_u128 x) { return x.hi; }

/* 64 x 64 -> 128 from four 32 x 32 -> 64 products. */
static inline ppml_u128 u128_mul64(uint64_t a, uint64_t b)
{
    const uint64_t a0 = a & 0xFFFFFFFFu, a1 = a >> 32, b0 = b & 0xFFFFFFFFu, b1 = b >> 32;
    const uint64_t p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
    const uint64_t mid = (p00 >> 32) + (p01 & 0xFFFFFFFFu) + (p10 & 0xFFFFFFFFu);
    return u128_make(p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32), (mid << 32) | (p00 & 0xFFFFFFFFu));
}
static inline ppml_u128 u128_add64(ppml_u128 x, uint64_t y)
{
    const uint64_t lo = x.lo + y;
    return u128_make(x.hi + (lo < y), lo);
}
static inline ppml_u128 u128_sub(ppml_u128 x, ppml_u128 y)
{
    return u128_make(x.hi - y.hi - (x.lo < y.lo), x.lo - y.lo);
}
static inline ppml_u128 u128_mul(ppml_u128 x, ppml_u128 y)
{
    ppml_u128 r = u128_mul64(x.lo, y.lo);
    r.hi += x.lo * y.hi + x.hi * y.lo;
    return r;
}
static inline ppml_u128 u128_shl1(ppml_u128 x) { return u128_make((x.hi << 1) | (x.lo >> 63), x.lo << 1); }
static inline ppml_u128 u128_shr(ppml_u128 x, int k)
{
    if (k == 0) return x;
    if (k >= 64) return u128_make(0, x.hi >> (k - 64));
    return u128_make(x.hi >> k, (x.lo >> k) | (x.hi << (64 - k)));
}
static inline int u128_ge(ppml_u128 x, ppml_u128 y)
{
    return x.hi != y.hi ? x.hi > y.hi : x.lo >= y.lo;
}
static inline int u128_is_zero(ppml_u128 x) { return (x.lo | x.hi) == 0; }
/* floor(x / y) for 0 < y < 2^127: binary long division, one quotient bit per step. */
static inline ppml_u128 u128_div(ppml_u128 x, ppml_u128 y)
{
    ppml_u128 q = u128_from(0), r = u128_from(0);
    for (int i = 127; i >= 0; i--) {
        r = u128_shl1(r);
        r.lo |= (i >= 64 ? x.hi >> (i - 64) : x.lo >> i) & 1u;
        if (u128_ge(r, y)) {
            r = u128_sub(r, y);
            if (i >= 64) q.hi |= (uint64_t)1 << (i - 64);
            else q.lo |= (uint64_t)1 << i;
        }
    }
    return q;
}

#endif

#endif /* PPML_U128_H */
