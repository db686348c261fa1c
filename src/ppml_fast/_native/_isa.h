/* ISA levels of the native kernels: one header, included by every extension that has
 * vectorised variants.
 *
 *   PPML_ISA_GENERIC (0)  portable C, compiled for the build's baseline (x86-64: SSE2) and
 *                         auto-vectorised by the compiler; the only level off x86-64
 *   PPML_ISA_AVX2    (1)  AVX2 + FMA + BMI1/2 + AES-NI + PCLMUL (Haswell, Zen 1 and newer);
 *                         VAES-256 is a sub-feature a kernel checks on its own
 *   PPML_ISA_AVX512  (2)  AVX-512 F/DQ/BW/VL (Skylake-SP, Ice Lake, Zen 4 and newer); IFMA
 *                         and VAES-512 are sub-features a kernel checks on its own
 *
 * A kernel with variants compiles one body per level under PPML_TARGET_AVX2 /
 * PPML_TARGET_AVX512 (function attributes: no -m flags, no -march=native, so the wheel runs
 * on any x86-64) and dispatches on `ppml_isa`, the level Python chose at import
 * (ppml_fast._native, PPML_FAST_ISA, ppml_fast.set_isa). Every extension has its own copy
 * of `ppml_isa` (a static variable); Python sets all of them together.
 *
 * Compilers: GCC and clang get the x86 variants; any other compiler (MSVC) and any other
 * architecture (ARM) get the generic level only.
 */
#ifndef PPML_ISA_H
#define PPML_ISA_H

#define PPML_ISA_GENERIC 0
#define PPML_ISA_AVX2 1
#define PPML_ISA_AVX512 2

#if (defined(__x86_64__) || defined(__amd64__)) && (defined(__GNUC__) || defined(__clang__))
#define PPML_X86 1
#include <cpuid.h>
#include <immintrin.h>
#define PPML_TARGET_AVX2 \
    __attribute__((target("avx2,fma,bmi,bmi2,aes,pclmul,popcnt,sse4.2")))
#define PPML_TARGET_AVX2_VAES \
    __attribute__((target("avx2,fma,bmi,bmi2,aes,pclmul,popcnt,sse4.2,vaes,vpclmulqdq")))
#define PPML_TARGET_AVX512                                                                 \
    __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,avx2,fma,bmi,bmi2,aes,pclmul," \
                          "popcnt,sse4.2")))
#else
#define PPML_X86 0
#endif

/* The level this extension's kernels run at (set from Python; 0 until then). */
static int ppml_isa = PPML_ISA_GENERIC;

/* The highest level this CPU (and its operating system: the builtins check that the OS
 * saves the AVX / AVX-512 registers) supports. */
static inline int ppml_cpu_isa(void)
{
#if PPML_X86
    __builtin_cpu_init();
    int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
               __builtin_cpu_supports("bmi") && __builtin_cpu_supports("bmi2") &&
               __builtin_cpu_supports("aes") && __builtin_cpu_supports("pclmul") &&
               __builtin_cpu_supports("popcnt") && __builtin_cpu_supports("sse4.2");
    if (!avx2) return PPML_ISA_GENERIC;
    int avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                 __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
    return avx512 ? PPML_ISA_AVX512 : PPML_ISA_AVX2;
#else
    return PPML_ISA_GENERIC;
#endif
}

/* Sub-features, each meaningful only together with its level; asked once per extension
 * (CPUID can trap to the hypervisor in a virtual machine, so kernels do not ask per call). */
static inline int ppml_cpu_vaes(void)
{
    static int vaes = -1;
    if (vaes < 0) {
#if PPML_X86
        /* CPUID leaf 7: ECX bit 9 VAES, bit 10 VPCLMULQDQ (read directly: not every
         * compiler's __builtin_cpu_supports knows these names); the register state they
         * use is the AVX state that the avx2 level already checks. */
        unsigned int a, b, c, d;
        vaes = __get_cpuid_count(7, 0, &a, &b, &c, &d) && ((c >> 9) & 1u) && ((c >> 10) & 1u);
#else
        vaes = 0;
#endif
    }
    return vaes;
}

static inline int ppml_cpu_ifma(void)
{
    static int ifma = -1;
    if (ifma < 0) {
#if PPML_X86
        __builtin_cpu_init();
        ifma = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512ifma");
#else
        ifma = 0;
#endif
    }
    return ifma;
}

#endif /* PPML_ISA_H */
