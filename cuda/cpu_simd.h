// Which copy of a kernel compiled twice (portable and AVX2) runs: shared by the DCT-residual and residual-loss
// kernels. INRCODEC_DCT_PORTABLE=1 forces the portable copy (the tests hold both copies to their references).
#pragma once

#include <stdlib.h>
#include <string.h>

// True where the CPU has AVX2 and the environment does not ask for the portable copy. Call only where the AVX2
// copy was compiled (x86-64 GCC: each kernel's *_X86_DISPATCH).
inline bool avx2_copy_allowed() {
#if defined(__x86_64__) && defined(__GNUC__)
    static const bool cpu = __builtin_cpu_supports("avx2");
    const char* v = getenv("INRCODEC_DCT_PORTABLE");
    return cpu && !(v && strcmp(v, "1") == 0);
#else
    return false;
#endif
}
