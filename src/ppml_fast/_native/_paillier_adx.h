/* Montgomery multiplication and a constant-time power on 64-bit limbs with MULX, ADCX and
 * ADOX (BMI2 + ADX: Broadwell, Zen and newer), for a lone secret-exponent power (one
 * ciphertext's CRT half) where the four AVX2 lanes of _paillier_v4.h would sit idle.
 *
 * CIOS (coarsely integrated operand scanning) with two carry chains per row: for each limb
 * a_i, t += a_i b (row A), then t = (t + q m) / 2^64 with q = t_0 (-m^-1) mod 2^64 (row B).
 * Each row is one asm block whose loop runs L/4 times whatever the values (jrcxz on the
 * limb count; lea, mulx, adcx, adox, mov: no instruction whose timing or address depends on
 * a value), and the final subtraction is chosen by masks. Moduli are padded to a multiple
 * of 4 limbs.
 */
#ifndef PPML_PAILLIER_ADX_H
#define PPML_PAILLIER_ADX_H

#include "_isa.h"

#include <stdint.h>
#include <string.h>
#include <gmp.h>

#include "_paillier_ct.h"

#define PK_ADX_MAXL 128      /* limbs of the largest modulus (8192 bits) */
#define PK_ADX_WIN 5

/* Whether this CPU has BMI2 and ADX (asked once). */
static inline int ppml_cpu_adx(void)
{
    static int adx = -1;
    if (adx < 0) {
#if PPML_X86
        unsigned int a, b, c, d;
        /* CPUID leaf 7: EBX bit 8 BMI2, bit 19 ADX */
        adx = __get_cpuid_count(7, 0, &a, &b, &c, &d) && ((b >> 8) & 1u) && ((b >> 19) & 1u);
#else
        adx = 0;
#endif
    }
    return adx;
}

/* Whether the MULX/ADX power runs: the avx2 level or above on a CPU with ADX, moduli of at
 * most PK_ADX_MAXL limbs. */
static inline int pk_use_adx(int64_t mod_limbs)
{
#if PPML_X86
    return ppml_isa >= PPML_ISA_AVX2 && mod_limbs <= PK_ADX_MAXL && ppml_cpu_adx();
#else
    (void)mod_limbs;
    return 0;
#endif
}

#if PPML_X86
#define PK_ADX_TARGET __attribute__((target("bmi2,adx")))

/* t[0..L] += a * b[0..L-1]; t[L+1] = the carry out (t[L+1] is overwritten). L = 4 * L4. */
PK_ADX_TARGET
static inline void pk_adx_rowA(uint64_t *t, const uint64_t *b, uint64_t L4, uint64_t a)
{
    uint64_t *tp = t; const uint64_t *bp = b; uint64_t n = L4;
    uint64_t lo, hi, ph, x, c1;
    __asm__ volatile(
        "xorl %k[ph], %k[ph]\n\t"            /* ph = 0; CF = OF = 0 */
        "1:\n\t"
        "mulx 0(%[b]), %[lo], %[hi]\n\t"
        "movq 0(%[t]), %[x]\n\t"
        "adcx %[lo], %[x]\n\t"
        "adox %[ph], %[x]\n\t"
        "movq %[x], 0(%[t])\n\t"
        "mulx 8(%[b]), %[lo], %[ph]\n\t"
        "movq 8(%[t]), %[x]\n\t"
        "adcx %[lo], %[x]\n\t"
        "adox %[hi], %[x]\n\t"
        "movq %[x], 8(%[t])\n\t"
        "mulx 16(%[b]), %[lo], %[hi]\n\t"
        "movq 16(%[t]), %[x]\n\t"
        "adcx %[lo], %[x]\n\t"
        "adox %[ph], %[x]\n\t"
        "movq %[x], 16(%[t])\n\t"
        "mulx 24(%[b]), %[lo], %[ph]\n\t"
        "movq 24(%[t]), %[x]\n\t"
        "adcx %[lo], %[x]\n\t"
        "adox %[hi], %[x]\n\t"
        "movq %[x], 24(%[t])\n\t"
        "leaq 32(%[b]), %[b]\n\t"
        "leaq 32(%[t]), %[t]\n\t"
        "leaq -1(%[n]), %[n]\n\t"
        "jrcxz 2f\n\t"
        "jmp 1b\n\t"
        "2:\n\t"
        "movq 0(%[t]), %[x]\n\t"
        "movl $0, %k[lo]\n\t"
        "adcx %[lo], %[x]\n\t"                 /* + CF */
        "adox %[ph], %[x]\n\t"                 /* + last high word + OF */
        "movq %[x], 0(%[t])\n\t"
        "setc %b[lo]\n\t"
        "seto %b[hi]\n\t"
        "movzbl %b[lo], %k[lo]\n\t"
        "movzbl %b[hi], %k[hi]\n\t"
        "leaq (%[lo],%[hi]), %[c1]\n\t"
        "movq %[c1], 8(%[t])\n\t"
        : [t] "+&r"(tp), [b] "+&r"(bp), [n] "+&c"(n), [lo] "=&r"(lo), [hi] "=&r"(hi),
          [ph] "=&r"(ph), [x] "=&r"(x), [c1] "=&r"(c1)
        : "d"(a)
        : "cc", "memory");
}

/* q = t[0] * minv; t = (t + q * m) / 2^64 over t[0..L+1] (t[L+1] becomes 0). */
PK_ADX_TARGET
static inline void pk_adx_rowB(uint64_t *t, const uint64_t *m, uint64_t L4, uint64_t minv)
{
    uint64_t *tp = t; const uint64_t *bp = m; uint64_t n = L4;
    uint64_t q = t[0] * minv;
    uint64_t lo, hi, ph, x, c1;
    /* position 0: t[0] + lo(q m0) = 0 mod 2^64, only its carry survives; positions 1.. are
     * stored one limb down */
    __asm__ volatile(
        "mulx 0(%[b]), %[lo], %[ph]\n\t"
        "movq 0(%[t]), %[x]\n\t"
        "xorl %k[c1], %k[c1]\n\t"           /* CF = OF = 0 */
        "adcx %[lo], %[x]\n\t"               /* x = 0, CF = carry */
        "movq 8(%[b]), %[x]\n\t"
        "mulx %[x], %[lo], %[hi]\n\t"
        "movq 8(%[t]), %[x]\n\t"
        "adcx %[lo], %[x]\n\t"
        "adox %[ph], %[x]\n\t"
        "movq %[x], 0(%[t])\n\t"
        "mulx 16(%[b]), %[lo], %[ph]\n\t"
        "movq 16(%[t]), %[x]\n\t"
        "adcx %[lo], %[x]\n\t"
        "adox %[hi], %[x]\n\t"
        "movq %[x], 8(%[t])\n\t"
        "mulx 24(%[b]), %[lo], %[hi]\n\t"
        "movq 24(%[t]), %[x]\n\t"
        "adcx %[lo], %[x]\n\t"
        "adox %[ph], %[x]\n\t"
        "movq %[x], 16(%[t])\n\t"
        "movq %[hi], %[ph]\n\t"
        "leaq 32(%[b]), %[b]\n\t"
        "leaq 32(%[t]), %[t]\n\t"
        "leaq -1(%[n]), %[n]\n\t"
        "jrcxz 2f\n\t"
        "1:\n\t"
        "mulx 0(%[b]), %[lo], %[hi]\n\t"
        "movq 0(%[t]), %[x]\n\t"
        "adcx %[lo], %[x]\n\t"
        "adox %[ph], %[x]\n\t"
        "movq %[x], -8(%[t])\n\t"
        "mulx 8(%[b]), %[lo], %[ph]\n\t"
        "movq 8(%[t]), %[x]\n\t"
        "adcx %[lo], %[x]\n\t"
        "adox %[hi], %[x]\n\t"
        "movq %[x], 0(%[t])\n\t"
        "mulx 16(%[b]), %[lo], %[hi]\n\t"
        "movq 16(%[t]), %[x]\n\t"
        "adcx %[lo], %[x]\n\t"
        "adox %[ph], %[x]\n\t"
        "movq %[x], 8(%[t])\n\t"
        "mulx 24(%[b]), %[lo], %[ph]\n\t"
        "movq 24(%[t]), %[x]\n\t"
        "adcx %[lo], %[x]\n\t"
        "adox %[hi], %[x]\n\t"
        "movq %[x], 16(%[t])\n\t"
        "leaq 32(%[b]), %[b]\n\t"
        "leaq 32(%[t]), %[t]\n\t"
        "leaq -1(%[n]), %[n]\n\t"
        "jrcxz 2f\n\t"
        "jmp 1b\n\t"
        "2:\n\t"
        /* t points at t[L]: new t[L-1] = t[L] + ph + CF + OF; new t[L] = t[L+1] + carries */
        "movq 0(%[t]), %[x]\n\t"
        "movl $0, %k[lo]\n\t"
        "adcx %[lo], %[x]\n\t"
        "adox %[ph], %[x]\n\t"
        "movq %[x], -8(%[t])\n\t"
        "setc %b[lo]\n\t"
        "seto %b[hi]\n\t"
        "movzbl %b[lo], %k[lo]\n\t"
        "movzbl %b[hi], %k[hi]\n\t"
        "addq %[hi], %[lo]\n\t"
        "addq 8(%[t]), %[lo]\n\t"
        "movq %[lo], 0(%[t])\n\t"
        "movq $0, 8(%[t])\n\t"
        : [t] "+&r"(tp), [b] "+&r"(bp), [n] "+&c"(n), [lo] "=&r"(lo), [hi] "=&r"(hi),
          [ph] "=&r"(ph), [x] "=&r"(x), [c1] "=&r"(c1)
        : "d"(q)
        : "cc", "memory");
}

/* r = a b 2^(-64 L) mod m for a, b < m (L limbs, L a multiple of 4, m odd); t: scratch of
 * 2 L + 2 limbs. r may alias a or b. */
PK_ADX_TARGET static void pk_adx_mont(uint64_t *r, const uint64_t *a, const uint64_t *b, const uint64_t *m,
                                      int64_t L, uint64_t minv, uint64_t *t)
{
    uint64_t *d = t + L + 2;
    memset(t, 0, (size_t)(L + 2) * sizeof(uint64_t));
    for (int64_t i = 0; i < L; i++) {
        pk_adx_rowA(t, b, (uint64_t)(L / 4), a[i]);
        pk_adx_rowB(t, m, (uint64_t)(L / 4), minv);
    }
    /* t < 2m (t[L] its carry limb): keep t - m unless that borrows out of t[L] */
    uint64_t borrow = (uint64_t)mpn_sub_n((mp_ptr)d, (mp_srcptr)t, (mp_srcptr)m, (mp_size_t)L);
    uint64_t mask = (uint64_t)0 - ((~t[L] & borrow) & 1);
    for (int64_t j = 0; j < L; j++) r[j] = (t[j] & mask) | (d[j] & ~mask);
}

/* out = x^e mod m (all L limbs, L a multiple of 4, m odd with m < 2^(64 L), x < m; e of Le
 * limbs, every one of its 64 Le bits walked in fixed 5-bit windows). rr = 2^(128 L) mod m.
 * Scratch lives on the stack (at most ~40 KB at PK_ADX_MAXL) and is wiped. */
PK_ADX_TARGET static void pk_adx_powm(uint64_t *out, const uint64_t *x, const uint64_t *e, int64_t Le,
                                      const uint64_t *m, const uint64_t *rr, int64_t L)
{
    const int w = PK_ADX_WIN;
    const int64_t count = (int64_t)1 << PK_ADX_WIN;
    uint64_t tab[count * L], acc[L], sel[L], one[L], t[3 * L + 2];
    uint64_t m0 = m[0], inv = m0;
    for (int k = 0; k < 5; k++) inv *= 2 - m0 * inv;   /* m0^-1 mod 2^64 (Newton) */
    uint64_t minv = 0 - inv;
    memset(one, 0, sizeof one);
    one[0] = 1;
    pk_adx_mont(tab, rr, one, m, L, minv, t);           /* R mod m */
    pk_adx_mont(tab + L, x, rr, m, L, minv, t);         /* x R mod m */
    for (int64_t d = 2; d < count; d++)
        pk_adx_mont(tab + d * L, tab + (d - 1) * L, tab + L, m, L, minv, t);
    int64_t nwin = (64 * Le + w - 1) / w;
    pk_ct_select(acc, tab, count, L, pk_window_digit(e, Le, nwin - 1, w));
    for (int64_t j = nwin - 2; j >= 0; j--) {
        for (int s = 0; s < w; s++) pk_adx_mont(acc, acc, acc, m, L, minv, t);
        pk_ct_select(sel, tab, count, L, pk_window_digit(e, Le, j, w));
        pk_adx_mont(acc, acc, sel, m, L, minv, t);
    }
    pk_adx_mont(out, acc, one, m, L, minv, t);          /* out of Montgomery form */
    pk_wipe(tab, sizeof tab);
    pk_wipe(acc, sizeof acc);
    pk_wipe(sel, sizeof sel);
    pk_wipe(t, sizeof t);
}

#endif /* PPML_X86 */

/* out (Lm limbs) = (x mod m)^e mod m with the MULX/ADX power: x of Lx >= Lm limbs, e of Le
 * >= 1 limbs, m odd with Lm <= PK_ADX_MAXL limbs and a nonzero top limb (the caller checks
 * these, and ppml_cpu_adx()). The reductions (x mod m, R^2 mod m) go through
 * mpn_sec_div_r; the modulus is padded to a multiple of 4 limbs; stack copies are wiped.
 * Used by a lone ciphertext's CRT halves and, through the Python test entry, by
 * h_s^alpha before a key has its table. Returns 0 (-1 off x86-64, out untouched). */
static int pk_adx_powm_mod(uint64_t *out, const uint64_t *x, int64_t Lx, const uint64_t *e,
                           int64_t Le, const uint64_t *m, int64_t Lm)
{
#if PPML_X86
    int64_t L = (Lm + 3) / 4 * 4, Lw = 2 * L + 1, Lxx = Lx > Lw ? Lx : Lw;
    int64_t itch = Lxx + (int64_t)mpn_sec_div_r_itch((mp_size_t)Lxx, (mp_size_t)Lm);
    uint64_t mp[L], base[L], rr[L], o[L], pw[Lw], s[itch];
    memset(mp, 0, sizeof mp);
    memcpy(mp, m, (size_t)Lm * sizeof(uint64_t));
    memset(base, 0, sizeof base);
    memcpy(s, x, (size_t)Lx * sizeof(uint64_t));
    mpn_sec_div_r((mp_ptr)s, (mp_size_t)Lx, (mp_srcptr)m, (mp_size_t)Lm, (mp_ptr)(s + Lx));
    memcpy(base, s, (size_t)Lm * sizeof(uint64_t));
    memset(pw, 0, sizeof pw);
    pw[2 * L] = 1;                                      /* R^2 = 2^(128 L) */
    mpn_sec_div_r((mp_ptr)pw, (mp_size_t)Lw, (mp_srcptr)m, (mp_size_t)Lm, (mp_ptr)s);
    memset(rr, 0, sizeof rr);
    memcpy(rr, pw, (size_t)Lm * sizeof(uint64_t));
    pk_adx_powm(o, base, e, Le, mp, rr, L);
    memcpy(out, o, (size_t)Lm * sizeof(uint64_t));
    pk_wipe(o, sizeof o);
    pk_wipe(base, sizeof base);
    pk_wipe(rr, sizeof rr);
    pk_wipe(s, sizeof s);
    pk_wipe(pw, sizeof pw);
    return 0;
#else
    (void)out; (void)x; (void)Lx; (void)e; (void)Le; (void)m; (void)Lm;
    return -1;
#endif
}

#endif /* PPML_PAILLIER_ADX_H */
