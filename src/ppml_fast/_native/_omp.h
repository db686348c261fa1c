/* OpenMP where the compiler has it; one thread where it does not (a build without
 * -fopenmp, e.g. Apple clang without libomp: the kernels then run serially, with the
 * same results, since every kernel splits its work into the same fixed blocks). */
#ifndef PPML_OMP_H
#define PPML_OMP_H

#ifdef _OPENMP
#include <omp.h>
#else
static inline int omp_get_thread_num(void) { return 0; }
static inline int omp_get_num_threads(void) { return 1; }
static inline int omp_get_max_threads(void) { return 1; }
#endif

#endif /* PPML_OMP_H */
