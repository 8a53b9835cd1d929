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

#include "cpu_simd.h"
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
    if (avx2_copy_allowed()) {
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
    if (avx2_copy_allowed()) {
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

// The 16x16 groups of image_dct's format 4 (inrcodec/models/image_tx16.py), written over ``out`` (which holds
// the 8x8 pass's result) where ``flags`` (GY, GX, uint8 0/1; GY = BY / 2, GX = BX / 2) is set: each group's four
// blocks of zigzag symbols are one 16x16 coefficient array (block (i, j) holds quadrant (i, j)), dequantised and
// clamped to +-clamp, inverted with t16 (16, 16, rows: frequencies) as image_tx16.inverse_groups does (a = C T,
// rounding shift s1; b = T^t a, rounding shift s2), YCoCg -> RGB, rint(base + level * r / 4) clipped.
// int32 arithmetic: every sum is bounded below 2^31 by the checks below (the reference's float64 is exact too).
int gr_tx16_add_cpu(const int16_t* q, int C, int BY, int BX, const int32_t* per, const int32_t* zz,
                    const int32_t* t16, int32_t clamp, int s1, int s2, const uint8_t* flags, int GY, int GX,
                    const void* base, void* out, int H, int W, int depth, int level) {
    if ((C != 1 && C != 3) || BY < 0 || BX < 0 || H < 0 || W < 0 || (int64_t)BY * 8 < H || (int64_t)BX * 8 < W ||
        GY != BY / 2 || GX != BX / 2 || s1 < 1 || s2 < 1 || s1 > 30 || s2 > 30 || clamp < 0 || level < 1 ||
        level > 257 || (depth != 1 && depth != 2))
        return 1;
    int64_t colmax = 0, rowmax = 0;
    for (int j = 0; j < 16; ++j) {
        int64_t col = 0, row = 0;
        for (int c = 0; c < 16; ++c) {
            col += llabs(t16[c * 16 + j]);
            row += llabs(t16[j * 16 + c]);
        }
        colmax = col > colmax ? col : colmax;
        rowmax = row > rowmax ? row : rowmax;
    }
    const int64_t lim = (int64_t)1 << 30;  // margin for the rounding offsets and YCoCg sums
    if (colmax * clamp >= lim || (((colmax * clamp) >> s1) + 1) * rowmax >= lim) return 1;
    int32_t zi[64];
    for (int i = 0; i < 64; ++i) zi[i] = -1;
    for (int p = 0; p < 64; ++p) {
        if (zz[p] < 0 || zz[p] > 63 || zi[zz[p]] >= 0) return 1;  // not a permutation
        zi[zz[p]] = p;
    }
    const int64_t nblk = (int64_t)BY * BX;
    const int32_t top = depth == 1 ? 255 : 65535;
    for (int gy = 0; gy < GY; ++gy) {
        for (int gx = 0; gx < GX; ++gx) {
            if (!flags[(int64_t)gy * GX + gx]) continue;
            int32_t res[3][256];
            for (int k = 0; k < C; ++k) {
                int32_t coef[256];
                memset(coef, 0, sizeof coef);
                unsigned rows = 0;
                for (int i = 0; i < 2; ++i)
                    for (int j = 0; j < 2; ++j) {
                        const int16_t* qb = q + ((int64_t)k * nblk + (int64_t)(2 * gy + i) * BX + 2 * gx + j) * 64;
                        for (int p = 0; p < 64; ++p) {
                            if (!qb[p]) continue;
                            int64_t v = (int64_t)qb[p] * per[k * 64 + p];
                            v = v < -clamp ? -clamp : (v > clamp ? clamp : v);
                            const int u = 8 * i + (zz[p] >> 3);
                            coef[u * 16 + 8 * j + (zz[p] & 7)] = (int32_t)v;
                            rows |= 1u << u;
                        }
                    }
                int32_t a[16][16];
                int rid[16], nr = 0;
                for (int u = 0; u < 16; ++u) {  // a[u, x] = sum_v C[u, v] T[v, x]
                    if (!(rows >> u & 1)) continue;
                    int32_t acc[16] = {0};
                    for (int v = 0; v < 16; ++v) {
                        const int32_t cv = coef[u * 16 + v];
                        if (!cv) continue;
                        for (int x = 0; x < 16; ++x) acc[x] += cv * t16[v * 16 + x];
                    }
                    for (int x = 0; x < 16; ++x) a[nr][x] = (acc[x] + (1 << (s1 - 1))) >> s1;
                    rid[nr++] = u;
                }
                for (int y = 0; y < 16; ++y) {  // b[y, x] = sum_u T[u, y] a[u, x]
                    int32_t acc[16] = {0};
                    for (int r = 0; r < nr; ++r) {
                        const int32_t tv = t16[rid[r] * 16 + y];
                        for (int x = 0; x < 16; ++x) acc[x] += tv * a[r][x];
                    }
                    for (int x = 0; x < 16; ++x) res[k][y * 16 + x] = (acc[x] + (1 << (s2 - 1))) >> s2;
                }
            }
            const int y0 = gy * 16, x0 = gx * 16;
            const int y1 = y0 + 16 < H ? y0 + 16 : H, x1 = x0 + 16 < W ? x0 + 16 : W;
            for (int y = y0; y < y1; ++y) {
                for (int x = x0; x < x1; ++x) {
                    const int i = (y - y0) * 16 + (x - x0);
                    int32_t r[3];
                    if (C == 3) {  // YCoCg -> RGB (image_dct._rgb_from_ycocg)
                        const int32_t t = res[0][i] - res[2][i];
                        r[0] = t + res[1][i];
                        r[1] = res[0][i] + res[2][i];
                        r[2] = t - res[1][i];
                    } else {
                        r[0] = res[0][i];
                    }
                    for (int k = 0; k < C; ++k) {
                        const int64_t a = ((int64_t)y * W + x) * C + k;
                        const int32_t b = depth == 1 ? ((const uint8_t*)base)[a] : ((const uint16_t*)base)[a];
                        const int64_t s = 4 * (int64_t)b + (int64_t)level * r[k];
                        int64_t v = (s >> 2) + ((((s & 3) + ((s >> 2) & 1)) > 2) ? 1 : 0);  // rint(s / 4), ties even
                        v = v < 0 ? 0 : (v > top ? top : v);
                        if (depth == 1)
                            ((uint8_t*)out)[a] = (uint8_t)v;
                        else
                            ((uint16_t*)out)[a] = (uint16_t)v;
                    }
                }
            }
        }
    }
    return 0;
}

}  // extern "C"
