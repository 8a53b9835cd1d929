// Decoder side of the image DCT residual (inrcodec/models/image_dct.py): exact integer 8x8 inverse transform of
// the quantised symbols, YCoCg -> RGB, added to the integer base with round-half-even and clipping, in one pass
// over the image; then the deblocking filter (inrcodec/models/deblock.py) in place. Compiled into the same C-ABI library as the CPU rasteriser (loaded by inrcodec/kernels/_loader.py).
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

#ifdef _OPENMP
#include <omp.h>
#endif

namespace {

// floor(s / 4 + 1/2) with ties to even (numpy's rint), branch-free for any int32 s.
inline int32_t rint_quarter(int32_t s) {
    const int32_t q = s >> 2;  // floor
    return q + (((s & 3) + (q & 1)) > 2);
}

// floor(x / 2^s + 1/2) of an integer-valued float below 2^24 in magnitude, as image_dct._round_shift computes it
// (exactly): on the integer, (x + 2^(s-1)) >> s; int conversions vectorise where floorf needs SSE4.1.
inline int32_t round_shift(float x, int s) { return ((int32_t)x + (1 << (s - 1))) >> s; }

// Inverse of one block's zigzag symbols into res (8x8, raster, 1/4 levels); false (res untouched) when the block
// codes nothing. Float32 on integers: every product and partial sum is an integer below 2^24, hence exact, and
// float vectorises where int32 multiplies need SSE4.1. Only the rows of coefficients that hold a non-zero are
// transformed (4 % of the symbols are non-zero at 1 bpp).
inline bool inverse_block(const int16_t* q, const int32_t* per, const int32_t* zi, const float* t8, int32_t clamp,
                          int s1, int s2, int32_t* res) {
    uint64_t w[16];
    memcpy(w, q, sizeof w);
    uint64_t any = 0;
    for (int i = 0; i < 16; ++i) any |= w[i];
    if (!any) return false;
    int32_t d[64];
    for (int p = 0; p < 64; ++p) {  // dequantise in zigzag order (vectorised)
        const int32_t v = (int32_t)q[p] * per[p];
        d[p] = v < -clamp ? -clamp : (v > clamp ? clamp : v);
    }
    float B[64];
    for (int r = 0; r < 64; ++r) B[r] = (float)d[zi[r]];  // to raster order: a gather, no branches
    unsigned rows = 0;
    for (int r = 0; r < 8; ++r) {
        int32_t nz = 0;
        for (int c = 0; c < 8; ++c) nz |= d[zi[r * 8 + c]];
        rows |= (unsigned)(nz != 0) << r;
    }
    float A[64];
    int nr = 0;
    int rid[8];
    for (int r = 0; r < 8; ++r) {  // a[r, j] = sum_c B[r, c] T[c, j]
        if (!(rows >> r & 1)) continue;
        float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (int c = 0; c < 8; ++c)
            for (int j = 0; j < 8; ++j) acc[j] += B[r * 8 + c] * t8[c * 8 + j];
        for (int j = 0; j < 8; ++j) A[nr * 8 + j] = (float)round_shift(acc[j], s1);
        rid[nr++] = r;
    }
    for (int i = 0; i < 8; ++i) {  // b[i, j] = sum_r T[r, i] a[r, j]
        float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (int k = 0; k < nr; ++k) {
            const float t = t8[rid[k] * 8 + i];
            for (int j = 0; j < 8; ++j) acc[j] += t * A[k * 8 + j];
        }
        for (int j = 0; j < 8; ++j) res[i * 8 + j] = round_shift(acc[j], s2);
    }
    return true;
}

template <typename T, int C>
void run(const int16_t* q, int BY, int BX, const int32_t* per, const int32_t* zi, const float* t8, int32_t clamp,
         int s1, int s2, const T* base, T* out, int H, int W, int32_t level, int32_t top, int nt) {
    const int64_t nblk = (int64_t)BY * BX;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) if (nt > 1)
    for (int by = 0; by < BY; ++by) {
        int32_t res[C][64];
        for (int bx = 0; bx < BX; ++bx) {
            bool any = false;
            for (int k = 0; k < C; ++k) {
                const int16_t* qb = q + ((int64_t)k * nblk + (int64_t)by * BX + bx) * 64;
                if (inverse_block(qb, per + k * 64, zi, t8, clamp, s1, s2, res[k])) {
                    any = true;
                } else {
                    for (int i = 0; i < 64; ++i) res[k][i] = 0;
                }
            }
            const int y0 = by * 8, x0 = bx * 8;
            const int y1 = y0 + 8 < H ? y0 + 8 : H, x1 = x0 + 8 < W ? x0 + 8 : W;
            const int n = (x1 - x0) * C;
            for (int y = y0; y < y1; ++y) {
                const int64_t a = ((int64_t)y * W + x0) * C;
                if (!any) {
                    memcpy(out + a, base + a, n * sizeof(T));
                    continue;
                }
                const int i0 = (y - y0) * 8;
                int32_t r[8 * C];  // the row's residual in the image's channel order, 1/4 levels
                for (int x = 0; x < 8; ++x) {
                    if (C == 3) {  // YCoCg -> RGB (image_dct._rgb_from_ycocg)
                        const int32_t Y = res[0][i0 + x], Co = res[1 % C][i0 + x], Cg = res[2 % C][i0 + x];
                        const int32_t t = Y - Cg;
                        r[x * C] = t + Co;
                        r[x * C + 1 % C] = Y + Cg;
                        r[x * C + 2 % C] = t - Co;
                    } else {
                        r[x] = res[0][i0 + x];
                    }
                }
                for (int i = 0; i < n; ++i) {
                    int32_t v = rint_quarter(4 * (int32_t)base[a + i] + level * r[i]);
                    v = v < 0 ? 0 : v;
                    out[a + i] = (T)(v > top ? top : v);
                }
            }
        }
    }
}

template <typename T>
void run_c(const int16_t* q, int C, int BY, int BX, const int32_t* per, const int32_t* zi, const float* t8,
           int32_t clamp, int s1, int s2, const T* base, T* out, int H, int W, int32_t level, int32_t top, int nt) {
    if (C == 3)
        run<T, 3>(q, BY, BX, per, zi, t8, clamp, s1, s2, base, out, H, W, level, top, nt);
    else
        run<T, 1>(q, BY, BX, per, zi, t8, clamp, s1, s2, base, out, H, W, level, top, nt);
}

// H.264's normal filter across one edge, per channel: p1 p0 | q0 q1 are a[-2 * s], a[-s], a[0], a[s]
// (inrcodec/models/deblock.py, ``_filter``: the same integer arithmetic).
inline void filter_edge(uint8_t* a, int64_t s, int alpha, int beta, int tc) {
    const int p1 = a[-2 * s], p0 = a[-s], q0 = a[0], q1 = a[s];
    const int d = q0 - p0;
    if (!(abs(d) < alpha && abs(p1 - p0) < beta && abs(q1 - q0) < beta)) return;
    int delta = (d * 4 + (p1 - q1) + 4) >> 3;
    delta = delta < -tc ? -tc : (delta > tc ? tc : delta);
    const int np0 = p0 + delta, nq0 = q0 - delta;
    a[-s] = (uint8_t)(np0 < 0 ? 0 : (np0 > 255 ? 255 : np0));
    a[0] = (uint8_t)(nq0 < 0 ? 0 : (nq0 > 255 ? 255 : nq0));
}

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
#ifdef _OPENMP
    const int nt = num_threads > 0 ? num_threads : omp_get_max_threads();
#else
    const int nt = 1;
    (void)num_threads;
#endif
    const int64_t row = (int64_t)W * C;
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int y = 0; y < H; ++y) {  // vertical edges: columns 8k - 1 | 8k, 8k + 1 < W
        const uint8_t* cb = coded + (int64_t)(y >> 3) * BX;
        for (int k = 1; 8 * k + 1 < W; ++k) {
            if (!(cb[k - 1] | cb[k])) continue;
            uint8_t* a = img + y * row + (int64_t)(8 * k) * C;
            for (int c = 0; c < C; ++c) filter_edge(a + c, C, alpha, beta, tc);
        }
    }
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int k = 1; k < (H + 6) / 8; ++k) {  // horizontal edges: rows 8k - 1 | 8k, 8k + 1 < H
        if (8 * k + 1 >= H) continue;
        const uint8_t* up = coded + (int64_t)(k - 1) * BX;
        const uint8_t* dn = coded + (int64_t)k * BX;
        uint8_t* r = img + (int64_t)(8 * k) * row;
        for (int x = 0; x < W; ++x) {
            if (!(up[x >> 3] | dn[x >> 3])) continue;
            for (int c = 0; c < C; ++c) filter_edge(r + (int64_t)x * C + c, row, alpha, beta, tc);
        }
    }
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
#ifdef _OPENMP
    const int nt = num_threads > 0 ? num_threads : omp_get_max_threads();
#else
    const int nt = 1;
    (void)num_threads;
#endif
    float t[64];
    int32_t zi[64];  // zigzag position of each raster index
    for (int i = 0; i < 64; ++i) {
        t[i] = (float)t8[i];
        zi[i] = -1;
    }
    for (int p = 0; p < 64; ++p) {
        if (zz[p] < 0 || zz[p] > 63 || zi[zz[p]] >= 0) return 1;  // not a permutation
        zi[zz[p]] = p;
    }
    if (depth == 1)
        run_c<uint8_t>(q, C, BY, BX, per, zi, t, clamp, s1, s2, (const uint8_t*)base, (uint8_t*)out, H, W, level, 255,
                     nt);
    else if (depth == 2)
        run_c<uint16_t>(q, C, BY, BX, per, zi, t, clamp, s1, s2, (const uint16_t*)base, (uint16_t*)out, H, W, level,
                      65535, nt);
    else
        return 1;
    return 0;
}

}  // extern "C"
