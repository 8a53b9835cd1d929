// OpenMP thread count shared by the CPU kernels: num_threads > 0 is taken as given, otherwise OpenMP's default
// (torch.get_num_threads() is passed in by the Python side; 0 means "whatever OpenMP would use").
#pragma once

#ifdef _OPENMP
#include <omp.h>
#endif

inline int threads_or_default(int num_threads) {
#ifdef _OPENMP
    return num_threads > 0 ? num_threads : omp_get_max_threads();
#else
    (void)num_threads;
    return 1;
#endif
}
