// Decoder side of the image DCT residual (inrcodec/models/image_dct.py): exact integer 8x8 inverse transform of
// the quantised symbols, YCoCg -> RGB, added to the integer base with round-half-even and clipping, in one pass
// over the image; then the deblocking filter (inrcodec/models/deblock.py) in place. Compiled into the same C-ABI
// library as the CPU rasteriser (loaded by inrcodec/kernels/_loader.py); the kernels are in dct_residual_cpu_impl.inc.
//
// Exactness: image_dct's numpy reference (``_inverse_add_reference``) computes the transform in float32 GEMMs whose
// products and partial sums are integers below 2^24 (so exact in any order); here the same float32 operations run
// on the same integers (only the rows holding a non-zero are transformed), with the same rounding shift
// floor(x / 2^s + 1/2); rint(base + level * r / 4) (ties to even; float32 for 8-bit, float64 for 16-bit images in
// the reference, both exact) is done on the integer 4 * base + level * r.
// The tables (zigzag order, the 8-point matrix, the steps per position) come from the caller: one source of truth.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_threads.h"

// The kernels, once per instruction set; the AVX2 copy is compiled under a target pragma and picked at run time
// (as the rasteriser's tile loops; gcc on x86-64 only, elsewhere the portable copy).
#define DR_NS portable
#include "dct_residual_cpu_impl.inc"
#undef DR_NS

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define DR_X86_DISPATCH 1
#pragma GCC push_options
#pragma GCC target("avx2")
#define DR_NS avx2
#include "dct_residual_cpu_impl.inc"
#undef DR_NS
#pragma GCC pop_options
#endif

namespace {

// The AVX2 copy where the CPU has it, unless INRCODEC_DCT_PORTABLE=1 (tests hold both copies to the reference).
inline bool use_avx2() {
#ifdef DR_X86_DISPATCH
    static const bool cpu = __builtin_cpu_supports("avx2");
    const char* v = getenv("INRCODEC_DCT_PORTABLE");
    return cpu && !(v && strcmp(v, "1") == 0);
#else
    return false;
#endif
}

// OpenMP threads to use: the caller's count, or OpenMP's default where it passes 0 (1 without OpenMP).

}  // namespace

extern "C" {

// In-place deblocking of an (H, W, C) uint8 image whose 8x8 blocks ``coded`` (BY, BX, uint8 0/1) hold a residual,
// with one set of thresholds: every vertical block edge, then every horizontal one on the result, an edge filtered
// where either block is coded and its four pixels are inside the image (deblock.deblock with a scalar step).
// Edges are 8 pixels apart and each changes only p0 and q0, so the order within a pass does not matter.
int gr_deblock_cpu(uint8_t* img, int H, int W, int C, const uint8_t* coded, int BY, int BX, int alpha, int beta,
                   int tc, int num_threads) {
    if (H < 0 || W < 0 || C < 1 || (int64_t)BY * 8 < H || (int64_t)BX * 8 < W || (BY - 1) * 8 >= H ||
        (BX - 1) * 8 >= W)
        return 1;
    const int nt = threads_or_default(num_threads);
#ifdef DR_X86_DISPATCH
    if (use_avx2()) {
        avx2::deblock_image(img, H, W, C, coded, BX, alpha, beta, tc, nt);
        return 0;
    }
#endif
    portable::deblock_image(img, H, W, C, coded, BX, alpha, beta, tc, nt);
    return 0;
}


// q: (C, BY, BX, 64) int16 zigzag symbols; per: (C, 64) steps per zigzag position; zz: (64,) raster index of each
// zigzag position; t8: (8, 8) int32 matrix (rows: frequencies); base/out: (H, W, C) uint8 (depth 1) or uint16
// (depth 2), out fully written. level: input levels per 8-bit level (1 or 257). Returns 0, or 1 on bad sizes.
int gr_dct_inverse_add_cpu(const int16_t* q, int C, int BY, int BX, const int32_t* per, const int32_t* zz,
                           const int32_t* t8, int32_t clamp, int s1, int s2, const void* base, void* out, int H, int W,
                           int depth, int level, int num_threads) {
    if ((C != 1 && C != 3) || BY < 0 || BX < 0 || H < 0 || W < 0 || (int64_t)BY * 8 < H || (int64_t)BX * 8 < W ||
        s1 < 1 || s2 < 1 || s1 > 24 || s2 > 24 || clamp < 0 || level < 1 || level > 257)
        return 1;
    for (int j = 0; j < 8; ++j) {  // the exactness bound: every partial sum of either pass below 2^24
        int64_t col = 0, row = 0;
        for (int c = 0; c < 8; ++c) {
            col += t8[c * 8 + j] < 0 ? -(int64_t)t8[c * 8 + j] : t8[c * 8 + j];
            row += t8[j * 8 + c] < 0 ? -(int64_t)t8[j * 8 + c] : t8[j * 8 + c];
        }
        if (col * clamp >= (1 << 24) || ((col * clamp >> s1) + 1) * row >= (1 << 24)) return 1;
    }
    const int nt = threads_or_default(num_threads);
    float t[64];
    int32_t zi[64];  // zigzag position of each raster index: only to check that zz is a permutation
    for (int i = 0; i < 64; ++i) {
        t[i] = (float)t8[i];
        zi[i] = -1;
    }
    for (int p = 0; p < 64; ++p) {
        if (zz[p] < 0 || zz[p] > 63 || zi[zz[p]] >= 0) return 1;  // not a permutation
        zi[zz[p]] = p;
    }
#ifdef DR_X86_DISPATCH
    if (use_avx2()) {
        if (depth == 1)
            avx2::run_c<uint8_t>(q, C, BY, BX, per, zz, t, clamp, s1, s2, (const uint8_t*)base, (uint8_t*)out, H, W,
                                 level, 255, nt);
        else if (depth == 2)
            avx2::run_c<uint16_t>(q, C, BY, BX, per, zz, t, clamp, s1, s2, (const uint16_t*)base, (uint16_t*)out, H,
                                  W, level, 65535, nt);
        else
            return 1;
        return 0;
    }
#endif
    if (depth == 1)
        portable::run_c<uint8_t>(q, C, BY, BX, per, zz, t, clamp, s1, s2, (const uint8_t*)base, (uint8_t*)out, H, W, level, 255,
                     nt);
    else if (depth == 2)
        portable::run_c<uint16_t>(q, C, BY, BX, per, zz, t, clamp, s1, s2, (const uint16_t*)base, (uint16_t*)out, H, W, level,
                      65535, nt);
    else
        return 1;
    return 0;
}

}  // extern "C"
