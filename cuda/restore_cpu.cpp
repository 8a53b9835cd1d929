// Decoder of gaussian+dct's restoration filters (inrcodec/models/restore.py, the numpy reference): the class of each
// 4x4 block from the decoded image's luma proxy (activity x direction of its Laplacians), then per channel the
// class's point-symmetric diamond filter, plus (format 6) cross-channel taps: the other channels' second differences
// along the first n_cross[ch] offsets of the 5x5 diamond. Every tap is a (plane, offset) pair over the unfiltered
// image's padded planes. Integer arithmetic only (int32; |acc| <= 24 taps x 1023 x 1020 < 2^25),
// so every machine decodes the same image; the shift rounds half up with an arithmetic (floor) shift, as numpy's >>.
// Compiled into the same C-ABI library as the rasteriser (inrcodec/kernels/_loader.py).
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <vector>

#include "cpu_simd.h"
#include "cpu_threads.h"

namespace {

const int MAX_OWN = 12;
const int MAX_CROSS = 6;  // the 5x5 diamond's offsets
const int MAX_TAPS = MAX_OWN + 2 * MAX_CROSS;
// one offset of each symmetric pair, per shape (restore.SHAPES): 5x5 diamond (6 taps), 7x7 diamond (12 taps)
const int SHAPE_TAPS[2] = {6, 12};
const int SHAPE_OFF[2][MAX_OWN][2] = {
    {{0, 1}, {1, 0}, {1, 1}, {1, -1}, {0, 2}, {2, 0}},
    {{0, 1}, {1, 0}, {1, 1}, {1, -1}, {0, 2}, {2, 0}, {1, 2}, {2, 1}, {2, -1}, {1, -2}, {0, 3}, {3, 0}},
};
const int PAD = 3;

inline int clampi(int v, int lo, int hi) { return v < lo ? lo : (v > hi ? hi : v); }
inline int64_t absl(int64_t v) { return v < 0 ? -v : v; }

// One row of one channel: acc[x] = sum_k crow[k][x] (q_k[x + off_k] + q_k[x - off_k] - 2 q_k[x]) with q_k the row of
// tap k's plane (p, the channel's own, or another channel's), then the rounded shift and the clip. Tap-major loops
// over x, so they vectorise; compiled twice (portable and AVX2, picked at run time as the DCT-residual kernels:
// cpu_simd.h, INRCODEC_DCT_PORTABLE=1 forces the portable copy); the same integers either way.
inline __attribute__((always_inline)) void filter_row_body(const int16_t* p, const int16_t* const* rows,
                                                           const int32_t* crow, int32_t* acc, const int* off,
                                                           int taps, int W, int shift, uint8_t* orow, int C) {
    for (int x = 0; x < W; ++x) acc[x] = 0;
    for (int k = 0; k < taps; ++k) {
        const int16_t* q = rows[k];
        const int16_t* a = q + off[k];
        const int16_t* b = q - off[k];
        const int32_t* c = crow + (size_t)k * W;
        for (int x = 0; x < W; ++x) acc[x] += c[x] * ((int32_t)a[x] + (int32_t)b[x] - 2 * (int32_t)q[x]);
    }
    const int32_t rnd = 1 << (shift - 1);
    for (int x = 0; x < W; ++x) orow[(int64_t)x * C] = (uint8_t)clampi(p[x] + ((acc[x] + rnd) >> shift), 0, 255);
}

void filter_row_portable(const int16_t* p, const int16_t* const* rows, const int32_t* crow, int32_t* acc,
                         const int* off, int taps, int W, int shift, uint8_t* orow, int C) {
    filter_row_body(p, rows, crow, acc, off, taps, W, shift, orow, C);
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define RS_X86_DISPATCH 1
__attribute__((target("avx2"))) void filter_row_avx2(const int16_t* p, const int16_t* const* rows,
                                                     const int32_t* crow, int32_t* acc, const int* off, int taps,
                                                     int W, int shift, uint8_t* orow, int C) {
    filter_row_body(p, rows, crow, acc, off, taps, W, shift, orow, C);
}
#endif

using FilterRow = void (*)(const int16_t*, const int16_t* const*, const int32_t*, int32_t*, const int*, int, int, int,
                           uint8_t*, int);

FilterRow pick_filter_row() {
#ifdef RS_X86_DISPATCH
    if (avx2_copy_allowed()) return filter_row_avx2;
#endif
    return filter_row_portable;
}

}  // namespace

extern "C" {

// img: (H, W, C) uint8 (C 1 or 3), out: (H, W, C) uint8, fully written. thresholds: (n_act - 1,) non-decreasing;
// cross: (C,) cross-channel offsets per channel (0..6; 0 for a gray image); coefs: (C, n_act * n_dir, stride) int32
// per channel and class, the first own + (C - 1) x cross[ch] used: the own diamond's taps, then per other channel in
// channel order its cross taps (all zero: the channel is copied). Returns 0, or 1 on bad arguments.
int rs_apply_cpu(const uint8_t* img, uint8_t* out, int H, int W, int C, int shape, int shift, int n_act, int n_dir,
                 const int32_t* thresholds, const int32_t* cross, const int32_t* coefs, int stride, int num_threads) {
    if (H < 1 || W < 1 || (C != 1 && C != 3) || shape < 0 || shape > 1 || shift < 1 || shift > 12 || n_act < 1 ||
        n_act > 16 || (n_dir != 1 && n_dir != 5))
        return 1;
    const int own = SHAPE_TAPS[shape];
    for (int ch = 0; ch < C; ++ch)
        if (cross[ch] < 0 || cross[ch] > MAX_CROSS || (C == 1 && cross[ch]) || own + (C - 1) * cross[ch] > stride)
            return 1;
    const int n_cls = n_act * n_dir;
    const int BY = (H + 3) / 4, BX = (W + 3) / 4;
    const int nt = threads_or_default(num_threads);
    const int64_t npx = (int64_t)H * W;
    // luma proxy, padded by one pixel (edges replicated)
    const int LW = W + 2;
    std::vector<int16_t> lum((size_t)(H + 2) * LW);
    for (int y = -1; y <= H; ++y) {
        const uint8_t* row = img + (int64_t)clampi(y, 0, H - 1) * W * C;
        int16_t* dst = lum.data() + (int64_t)(y + 1) * LW;
        for (int x = -1; x <= W; ++x) {
            const uint8_t* p = row + (int64_t)clampi(x, 0, W - 1) * C;
            dst[x + 1] = C == 3 ? (int16_t)((p[0] + 2 * p[1] + p[2] + 2) >> 2) : (int16_t)p[0];
        }
    }
    std::vector<int32_t> cls((size_t)BY * BX);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int by = 0; by < BY; ++by) {
        for (int bx = 0; bx < BX; ++bx) {
            int64_t v = 0, h = 0, d0 = 0, d1 = 0;
            for (int y = by * 4; y < by * 4 + 4 && y < H; ++y) {
                const int16_t* r0 = lum.data() + (int64_t)y * LW + 1;
                const int16_t* r1 = r0 + LW;
                const int16_t* r2 = r1 + LW;
                for (int x = bx * 4; x < bx * 4 + 4 && x < W; ++x) {
                    const int c2 = 2 * r1[x];
                    v += absl(c2 - r0[x] - r2[x]);
                    h += absl(c2 - r1[x - 1] - r1[x + 1]);
                    d0 += absl(c2 - r0[x - 1] - r2[x + 1]);
                    d1 += absl(c2 - r0[x + 1] - r2[x - 1]);
                }
            }
            const int64_t act = v + h;
            int a = 0;
            while (a < n_act - 1 && thresholds[a] <= act) ++a;
            int d = 0;
            if (n_dir == 5) {
                const int64_t hv_max = v > h ? v : h, hv_min = v > h ? h : v;
                const int64_t dg_max = d0 > d1 ? d0 : d1, dg_min = d0 > d1 ? d1 : d0;
                if (!(hv_max <= 2 * hv_min && dg_max <= 2 * dg_min)) {
                    if (hv_max * dg_min > dg_max * hv_min)
                        d = v > h ? 1 : 2;
                    else
                        d = d0 > d1 ? 3 : 4;
                }
            }
            cls[(size_t)by * BX + bx] = d * n_act + a;
        }
    }
    // every channel's padded int16 copy (edges replicated): a channel's cross taps read the others' unfiltered planes
    const int PW = W + 2 * PAD;
    const int64_t plane = (int64_t)(H + 2 * PAD) * PW;
    std::vector<int16_t> pad((size_t)(plane * C));
    for (int ch = 0; ch < C; ++ch)
        for (int y = -PAD; y < H + PAD; ++y) {
            const uint8_t* row = img + (int64_t)clampi(y, 0, H - 1) * W * C + ch;
            int16_t* dst = pad.data() + ch * plane + (int64_t)(y + PAD) * PW + PAD;
            for (int x = -PAD; x < W + PAD; ++x) dst[x] = row[(int64_t)clampi(x, 0, W - 1) * C];
        }
    const FilterRow filter_row = pick_filter_row();
    for (int ch = 0; ch < C; ++ch) {
        const int32_t* cc = coefs + (int64_t)ch * n_cls * stride;
        const int taps = own + (C - 1) * cross[ch];
        bool any = false;
        for (int k = 0; k < n_cls; ++k)
            for (int i = 0; i < taps; ++i) any |= cc[(int64_t)k * stride + i] != 0;
        if (!any) {
            for (int64_t i = 0; i < npx; ++i) out[i * C + ch] = img[i * C + ch];
            continue;
        }
        // tap k: (plane, offset); the plane as an offset from the channel's own, so one row pointer serves all
        int off[MAX_TAPS];
        int64_t plane_of[MAX_TAPS];
        for (int k = 0; k < own; ++k) {
            off[k] = SHAPE_OFF[shape][k][0] * PW + SHAPE_OFF[shape][k][1];
            plane_of[k] = 0;
        }
        int k = own;
        for (int o = 0; o < C; ++o) {
            if (o == ch) continue;
            for (int j = 0; j < cross[ch]; ++j, ++k) {
                off[k] = SHAPE_OFF[0][j][0] * PW + SHAPE_OFF[0][j][1];
                plane_of[k] = (o - ch) * plane;
            }
        }
#pragma omp parallel num_threads(nt) if (nt > 1)
        {
            std::vector<int32_t> crow((size_t)taps * W), acc(W);
            const int16_t* rows[MAX_TAPS];
#pragma omp for schedule(static)
            for (int by = 0; by < BY; ++by) {
                for (int x = 0; x < W; ++x) {  // the block row's coefficients per pixel, tap-major
                    const int32_t* c = cc + (int64_t)cls[(size_t)by * BX + (x >> 2)] * stride;
                    for (int t = 0; t < taps; ++t) crow[(size_t)t * W + x] = c[t];
                }
                for (int y = by * 4; y < by * 4 + 4 && y < H; ++y) {
                    const int16_t* p = pad.data() + ch * plane + (int64_t)(y + PAD) * PW + PAD;
                    for (int t = 0; t < taps; ++t) rows[t] = p + plane_of[t];
                    filter_row(p, rows, crow.data(), acc.data(), off, taps, W, shift, out + (int64_t)y * W * C + ch,
                               C);
                }
            }
        }
    }
    return 0;
}

}  // extern "C"
