// Decoder side of the image DCT residual (inrcodec/models/image_dct.py): exact integer 8x8 inverse transform of
// the quantised symbols, YCoCg -> RGB, added to the integer base with round-half-even and clipping, in one pass
// over the image. Compiled into the same C-ABI library as the CPU rasteriser (loaded by inrcodec/kernels/_loader.py).
//
// Exactness: image_dct's numpy reference (``add``) computes the same integers in float32 GEMMs whose products and
// partial sums are integers below 2^24 (so exact in any order); here they are int32 sums. The reference's
// rounding shift floor(x / 2^s + 1/2) is (x + 2^(s-1)) >> s, and rint(base + level * r / 4) (ties to even, in
// float32 for 8-bit, float64 for 16-bit images: both exact) is done on the integer 4 * base + level * r.
// The tables (zigzag order, the 8-point matrix, the steps per position) come from the caller: one source of truth.
#include <stdint.h>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace {

inline int32_t round_shift(int32_t x, int s) { return (x + (1 << (s - 1))) >> s; }

// floor(s / 4 + 1/2) with ties to even (numpy's rint), for any int64 s.
inline int64_t rint_quarter(int64_t s) {
    int64_t q = s >> 2;  // floor
    int64_t rem = s & 3;
    if (rem > 2 || (rem == 2 && (q & 1))) q += 1;
    return q;
}

// Inverse of one block's zigzag symbols into res (8x8, raster): 0 when the block codes nothing.
inline bool inverse_block(const int16_t* q, const int32_t* per, const int32_t* zz, const int32_t* t8, int32_t clamp,
                          int s1, int s2, int32_t* res) {
    int32_t B[64];
    bool any = false;
    for (int i = 0; i < 64; ++i) B[i] = 0;
    for (int p = 0; p < 64; ++p) {
        if (!q[p]) continue;
        any = true;
        int32_t v = (int32_t)q[p] * per[p];
        v = v < -clamp ? -clamp : (v > clamp ? clamp : v);
        B[zz[p]] = v;
    }
    if (!any) return false;
    int32_t A[64];
    for (int r = 0; r < 8; ++r) {  // a[r, j] = sum_c B[r, c] T[c, j]
        int32_t acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (int c = 0; c < 8; ++c) {
            const int32_t b = B[r * 8 + c];
            if (!b) continue;
            for (int j = 0; j < 8; ++j) acc[j] += b * t8[c * 8 + j];
        }
        for (int j = 0; j < 8; ++j) A[r * 8 + j] = round_shift(acc[j], s1);
    }
    for (int i = 0; i < 8; ++i) {  // b[i, j] = sum_r T[r, i] a[r, j]
        int32_t acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (int r = 0; r < 8; ++r) {
            const int32_t t = t8[r * 8 + i];
            for (int j = 0; j < 8; ++j) acc[j] += t * A[r * 8 + j];
        }
        for (int j = 0; j < 8; ++j) res[i * 8 + j] = round_shift(acc[j], s2);
    }
    return true;
}

template <typename T>
void run(const int16_t* q, int C, int BY, int BX, const int32_t* per, const int32_t* zz, const int32_t* t8,
         int32_t clamp, int s1, int s2, const T* base, T* out, int H, int W, int64_t level, int64_t top, int nt) {
    const int64_t nblk = (int64_t)BY * BX;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) if (nt > 1)
    for (int by = 0; by < BY; ++by) {
        int32_t res[3][64];
        for (int bx = 0; bx < BX; ++bx) {
            bool any = false;
            for (int k = 0; k < C; ++k) {
                const int16_t* qb = q + ((int64_t)k * nblk + (int64_t)by * BX + bx) * 64;
                if (!inverse_block(qb, per + k * 64, zz, t8, clamp, s1, s2, res[k])) {
                    for (int i = 0; i < 64; ++i) res[k][i] = 0;
                } else {
                    any = true;
                }
            }
            const int y0 = by * 8, x0 = bx * 8;
            const int y1 = y0 + 8 < H ? y0 + 8 : H, x1 = x0 + 8 < W ? x0 + 8 : W;
            for (int y = y0; y < y1; ++y) {
                const int64_t row = ((int64_t)y * W) * C;
                if (!any) {
                    for (int64_t i = row + (int64_t)x0 * C; i < row + (int64_t)x1 * C; ++i) out[i] = base[i];
                    continue;
                }
                for (int x = x0; x < x1; ++x) {
                    const int i = (y - y0) * 8 + (x - x0);
                    int64_t r[3];
                    if (C == 3) {  // YCoCg -> RGB in 1/4 levels (image_dct._rgb_from_ycocg)
                        const int64_t Y = res[0][i], Co = res[1][i], Cg = res[2][i], t = Y - Cg;
                        r[0] = t + Co;
                        r[1] = Y + Cg;
                        r[2] = t - Co;
                    } else {
                        r[0] = res[0][i];
                    }
                    const int64_t px = row + (int64_t)x * C;
                    for (int k = 0; k < C; ++k) {
                        int64_t v = rint_quarter(4 * (int64_t)base[px + k] + level * r[k]);
                        out[px + k] = (T)(v < 0 ? 0 : (v > top ? top : v));
                    }
                }
            }
        }
    }
}

}  // namespace

extern "C" {

// q: (C, BY, BX, 64) int16 zigzag symbols; per: (C, 64) steps per zigzag position; zz: (64,) raster index of each
// zigzag position; t8: (8, 8) int32 matrix (rows: frequencies); base/out: (H, W, C) uint8 (depth 1) or uint16
// (depth 2), out fully written. level: input levels per 8-bit level (1 or 257). Returns 0, or 1 on bad sizes.
int gr_dct_inverse_add_cpu(const int16_t* q, int C, int BY, int BX, const int32_t* per, const int32_t* zz,
                           const int32_t* t8, int32_t clamp, int s1, int s2, const void* base, void* out, int H, int W,
                           int depth, int level, int num_threads) {
    if ((C != 1 && C != 3) || BY < 0 || BX < 0 || H < 0 || W < 0 || (int64_t)BY * 8 < H || (int64_t)BX * 8 < W ||
        s1 < 1 || s2 < 1 || s1 > 30 || s2 > 30 || clamp < 0 || clamp > (1 << 16) || level < 1)
        return 1;
#ifdef _OPENMP
    const int nt = num_threads > 0 ? num_threads : omp_get_max_threads();
#else
    const int nt = 1;
    (void)num_threads;
#endif
    if (depth == 1)
        run<uint8_t>(q, C, BY, BX, per, zz, t8, clamp, s1, s2, (const uint8_t*)base, (uint8_t*)out, H, W, level, 255,
                     nt);
    else if (depth == 2)
        run<uint16_t>(q, C, BY, BX, per, zz, t8, clamp, s1, s2, (const uint16_t*)base, (uint16_t*)out, H, W, level,
                      65535, nt);
    else
        return 1;
    return 0;
}

}  // extern "C"
