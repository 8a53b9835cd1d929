// Decoder of gaussian+dct's restoration filters (inrcodec/models/restore.py, the numpy reference): the class of each
// 4x4 block from the decoded image's luma proxy (activity x direction of its Laplacians), then per channel the
// class's point-symmetric diamond filter. Integer arithmetic only (int32; |acc| <= 12 taps x 1023 x 1020 < 2^24),
// so every machine decodes the same image; the shift rounds half up with an arithmetic (floor) shift, as numpy's >>.
// Compiled into the same C-ABI library as the rasteriser (inrcodec/kernels/_loader.py).
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <vector>

#include "cpu_threads.h"

namespace {

const int MAX_TAPS = 12;
// one offset of each symmetric pair, per shape (restore.SHAPES): 5x5 diamond (6 taps), 7x7 diamond (12 taps)
const int SHAPE_TAPS[2] = {6, 12};
const int SHAPE_OFF[2][MAX_TAPS][2] = {
    {{0, 1}, {1, 0}, {1, 1}, {1, -1}, {0, 2}, {2, 0}},
    {{0, 1}, {1, 0}, {1, 1}, {1, -1}, {0, 2}, {2, 0}, {1, 2}, {2, 1}, {2, -1}, {1, -2}, {0, 3}, {3, 0}},
};
const int PAD = 3;

inline int clampi(int v, int lo, int hi) { return v < lo ? lo : (v > hi ? hi : v); }
inline int64_t absl(int64_t v) { return v < 0 ? -v : v; }

// One row of one channel: acc[x] = sum_k crow[k][x] (p[x + off_k] + p[x - off_k] - 2 p[x]), then the rounded shift
// and the clip. Tap-major loops over x, so they vectorise; an AVX2 clone where the CPU has it (same integers).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx2", "default")))
#endif
void filter_row(const int16_t* p, const int32_t* crow, int32_t* acc, const int* off, int taps, int W, int shift,
                uint8_t* orow, int C) {
    for (int x = 0; x < W; ++x) acc[x] = 0;
    for (int k = 0; k < taps; ++k) {
        const int16_t* a = p + off[k];
        const int16_t* b = p - off[k];
        const int32_t* c = crow + (size_t)k * W;
        for (int x = 0; x < W; ++x) acc[x] += c[x] * ((int32_t)a[x] + (int32_t)b[x] - 2 * (int32_t)p[x]);
    }
    const int32_t rnd = 1 << (shift - 1);
    for (int x = 0; x < W; ++x) orow[(int64_t)x * C] = (uint8_t)clampi(p[x] + ((acc[x] + rnd) >> shift), 0, 255);
}

}  // namespace

extern "C" {

// img: (H, W, C) uint8 (C 1 or 3), out: (H, W, C) uint8, fully written. thresholds: (n_act - 1,) non-decreasing;
// coefs: (C, n_act * n_dir, taps) int32 per channel and class (all zero: the channel is copied). Returns 0, or 1 on
// bad arguments.
int rs_apply_cpu(const uint8_t* img, uint8_t* out, int H, int W, int C, int shape, int shift, int n_act, int n_dir,
                 const int32_t* thresholds, const int32_t* coefs, int num_threads) {
    if (H < 1 || W < 1 || (C != 1 && C != 3) || shape < 0 || shape > 1 || shift < 1 || shift > 12 || n_act < 1 ||
        n_act > 16 || (n_dir != 1 && n_dir != 5))
        return 1;
    const int taps = SHAPE_TAPS[shape];
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
    // per channel: a padded int16 copy (edges replicated), then the filter row by row
    const int PW = W + 2 * PAD;
    std::vector<int16_t> pad((size_t)(H + 2 * PAD) * PW);
    int off[MAX_TAPS];
    for (int k = 0; k < taps; ++k) off[k] = SHAPE_OFF[shape][k][0] * PW + SHAPE_OFF[shape][k][1];
    for (int ch = 0; ch < C; ++ch) {
        const int32_t* cc = coefs + (int64_t)ch * n_cls * taps;
        bool any = false;
        for (int i = 0; i < n_cls * taps; ++i) any |= cc[i] != 0;
        if (!any) {
            for (int64_t i = 0; i < npx; ++i) out[i * C + ch] = img[i * C + ch];
            continue;
        }
        for (int y = -PAD; y < H + PAD; ++y) {
            const uint8_t* row = img + (int64_t)clampi(y, 0, H - 1) * W * C + ch;
            int16_t* dst = pad.data() + (int64_t)(y + PAD) * PW + PAD;
            for (int x = -PAD; x < W + PAD; ++x) dst[x] = row[(int64_t)clampi(x, 0, W - 1) * C];
        }
#pragma omp parallel num_threads(nt) if (nt > 1)
        {
            std::vector<int32_t> crow((size_t)taps * W), acc(W);
#pragma omp for schedule(static)
            for (int by = 0; by < BY; ++by) {
                for (int x = 0; x < W; ++x) {  // the block row's coefficients per pixel, tap-major
                    const int32_t* c = cc + (int64_t)cls[(size_t)by * BX + (x >> 2)] * taps;
                    for (int k = 0; k < taps; ++k) crow[(size_t)k * W + x] = c[k];
                }
                for (int y = by * 4; y < by * 4 + 4 && y < H; ++y)
                    filter_row(pad.data() + (int64_t)(y + PAD) * PW + PAD, crow.data(), acc.data(), off, taps, W,
                               shift, out + (int64_t)y * W * C + ch, C);
            }
        }
    }
    return 0;
}

}  // extern "C"
