// Encoder side of gaussian+dct: the loss that prices the residual a Gaussian base leaves, with its gradient, in
// one pass over the 8x8 blocks (inrcodec/models/residual_loss.py holds the math and the torch reference; the
// kernel's Python side is inrcodec/kernels/residual_loss.py, tests in tests/test_residual_loss_kernel.py). Compiled
// into the same C-ABI library as the rasteriser; the kernel is in residual_loss_cpu_impl.inc, compiled once
// portable and once (gcc, x86-64) for AVX2, picked at run time as the residual decoder's
// (INRCODEC_DCT_PORTABLE=1 forces the portable copy).
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_simd.h"
#include "cpu_threads.h"
#if defined(__x86_64__)
#include <immintrin.h>
#endif

// Wide GNU vectors are passed between inlined helpers only; silence gcc's note about their call ABI.
#pragma GCC diagnostic ignored "-Wpsabi"

#define RL_NS rl_portable
#define RL_FMA 0
#include "residual_loss_cpu_impl.inc"
#undef RL_FMA
#undef RL_NS

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define RL_X86_DISPATCH 1
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#define RL_NS rl_avx2
#define RL_FMA 1
#include "residual_loss_cpu_impl.inc"
#undef RL_FMA
#undef RL_NS
#pragma GCC pop_options
#endif

extern "C" {

// pred, ref, grad: (H, W, C) float32, C 1 or 3 (grad fully written: d loss / d pred); d: (8, 8) DCT matrix;
// steps, weights: (C,) per channel; coded0 = lam * BITS_CODED (w / 12 added here per channel); klog = lam *
// BITS_PER_OCTAVE / ln 2; norm = delta^2 / (C * 8 BY * 8 BX); mse_weight: weight of the MSE (over H W C, unscaled)
// added to the loss. out: [sum of J, sum of squared errors]. Returns 0, 1 on bad sizes, 2 when out of memory.
int gr_residual_loss_cpu(const float* pred, const float* ref, float* grad, int H, int W, int C, const float* d,
                         const float* steps, const float* weights, float coded0, float klog, float scale, float norm,
                         float mse_weight, double* out, int num_threads) {
    if (H < 1 || W < 1 || (C != 1 && C != 3)) return 1;
    rl_portable::Params p;
    p.d = d;
    for (int c = 0; c < C; ++c) {
        p.steps[c] = steps[c];
        p.weights[c] = weights[c];
        p.coded0[c] = weights[c] / 12.0f + coded0;
    }
    p.klog = klog;
    p.scale = scale;
    p.norm = norm;
    p.mse_g = 2.0f * mse_weight / (float)((double)H * W * C);
    const int nt = threads_or_default(num_threads);
#ifdef RL_X86_DISPATCH
    if (avx2_copy_allowed()) {
        rl_avx2::Params q;
        memcpy(&q, &p, sizeof q);
        return rl_avx2::loss(pred, ref, grad, H, W, C, q, out, nt);
    }
#endif
    return rl_portable::loss(pred, ref, grad, H, W, C, p, out, nt);
}

}  // extern "C"
