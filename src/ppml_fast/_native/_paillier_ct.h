/* Helpers shared by the Paillier kernels that handle secrets: wiping, window digits of an
 * exponent, and table selection by masks (memory accesses independent of the index). */
#ifndef PPML_PAILLIER_CT_H
#define PPML_PAILLIER_CT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Zero memory that held secrets (the compiler may not drop these stores). */
static void pk_wipe(void *p, size_t n)
{
    volatile unsigned char *v = (volatile unsigned char *)p;
    while (n--) *v++ = 0;
}

/* alpha's j-th w-bit digit (bits j*w .. j*w + w - 1; La limbs, bits beyond read as 0). */
static inline uint64_t pk_window_digit(const uint64_t *alpha, int64_t La, int64_t j, int w)
{
    int64_t bit = j * w, limb = bit >> 6, off = bit & 63;
    uint64_t d = alpha[limb] >> off;
    if (off + w > 64 && limb + 1 < La) d |= alpha[limb + 1] << (64 - off);
    return d & (((uint64_t)1 << w) - 1);
}

/* dst = rows[idx] for rows[0..count) of `width` words, reading every row and keeping one
 * by masks: which memory is touched does not depend on idx (a secret digit). */
static inline void pk_ct_select(uint64_t *dst, const uint64_t *rows, int64_t count, int64_t width,
                                uint64_t idx)
{
    memset(dst, 0, (size_t)width * sizeof(uint64_t));
    for (int64_t k = 0; k < count; k++) {
        uint64_t mask = 0 - (uint64_t)((uint64_t)k == idx);
        const uint64_t *row = rows + k * width;
        for (int64_t j = 0; j < width; j++) dst[j] |= row[j] & mask;
    }
}

#endif /* PPML_PAILLIER_CT_H */
