// CPU twin of gaussian_raster.cu: tile-based accumulated-sum rasterisation of 2D Gaussians, forward and backward.
// C ABI on raw float32 pointers (loaded with ctypes by inrcodec/kernels/_loader.py), OpenMP over 16x16 tiles.
// Build: setup.py (optional extension) or inrcodec.kernels.build_cpu_kernel(); flags -O3 -fopenmp
// -ffp-contract=off -fno-trapping-math (see gaussian_raster_math.h for why FMA contraction must stay off).
// Needs gcc or clang (GNU vector extensions); elsewhere the optional build fails and python uses torch.
//
// Layout: means (N,2) = (x, y); chol (N,3) = (l11, l21, l22); colors (N,C); image (H,W,C), all row-major.
// Binning: each Gaussian's bbox is cut into tile rows; per tile row the ellipse's column extent (1 px margin)
// selects the tiles, so needle-like Gaussians do not claim the empty corners of their bbox. Tile lists hold
// Gaussian ids in increasing order, so results do not depend on the thread count.
// Backward: every (tile, Gaussian) pair writes its partial sums into its own slot, laid out Gaussian-major;
// a second parallel pass sums each Gaussian's contiguous slots. No atomics, deterministic.
#include "cpu_threads.h"
#include "gaussian_raster_math.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>
#include <memory>
#include <new>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__x86_64__)
#include <immintrin.h>
#endif

// Wide GNU vectors are passed between always-inlined helpers only; silence gcc's note about their call ABI.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace {

const int T = GR_TILE;

// GrGauss plus whether binning may cull the bbox's tiles by the ellipse's extent per tile row (only for
// well-conditioned Gaussians, see gr_well_conditioned).
struct GP {
    GrGauss g;
    int cull;
};

struct Bins {
    int tiles_x = 0, tiles_y = 0;
    std::vector<GP> g;               // per Gaussian set-up
    std::vector<int64_t> goff;       // Gaussian-major entry offsets, size N + 1
    std::vector<int64_t> toff;       // tile-major entry offsets, size tiles + 1
    std::vector<int32_t> ids;        // tile-major: Gaussian id of each entry (increasing within a tile)
    std::vector<int64_t> gm;         // tile-major: Gaussian-major position of each entry (backward only)
};


// Calls f(tile_index) for each tile the Gaussian touches, in increasing tile order.
template <class F>
inline void for_each_tile(const float* means, const float* chol, int64_t i, const GP& gp, int tiles_x, F&& f) {
    const GrGauss& g = gp.g;
    if (g.x0 > g.x1 || g.y0 > g.y1) return;
    const int tr0 = g.y0 / T, tr1 = g.y1 / T, tc0 = g.x0 / T, tc1 = g.x1 / T;
    // A single tile row/column: the bbox is tight enough. Badly conditioned: no geometric culling.
    if (tr0 == tr1 || tc0 == tc1 || !gp.cull) {
        for (int tr = tr0; tr <= tr1; ++tr)
            for (int tc = tc0; tc <= tc1; ++tc) f(tr * tiles_x + tc);
        return;
    }
    float a, b, c, det;
    gr_sigma(chol[3 * i], chol[3 * i + 1], chol[3 * i + 2], &a, &b, &c, &det);
    const float mx = means[2 * i], my = means[2 * i + 1];
    for (int tr = tr0; tr <= tr1; ++tr) {
        const int r0 = std::max(g.y0, tr * T), r1 = std::min(g.y1, tr * T + T - 1);
        int lo, hi;
        gr_band_columns(mx, my, a, b, c, det, r0 + 0.5f, r1 + 0.5f, &lo, &hi);
        lo = std::max(lo, g.x0);
        hi = std::min(hi, g.x1);
        if (lo > hi) continue;
        for (int tc = lo / T; tc <= hi / T; ++tc) f(tr * tiles_x + tc);
    }
}

// Per-Gaussian set-up and tile lists: a parallel counting sort. The Gaussians are cut into K contiguous
// chunks; pass 1 counts each chunk's entries per tile, a prefix sum over (tile, chunk) gives every chunk its
// place in every tile's list, pass 2 scatters. Each tile thus lists its Gaussians in increasing id order
// whatever the thread count, and chunks (not one range per thread) keep a descheduled thread from stalling the
// others on a busy machine. Returns false when the entries do not fit the int32 ids (absurd inputs).
bool bin(const float* means, const float* chol, int64_t N, int H, int W, int nt, bool want_gm, Bins& B) {
    const int KMAX = 8;  // tile lists of up to 8 tiles are remembered between the two passes
    B.tiles_x = (W + T - 1) / T;
    B.tiles_y = (H + T - 1) / T;
    const int ntiles = B.tiles_x * B.tiles_y;
    // chunks: at least 256 Gaussians each, at most 64, and at most ~4M (tile, chunk) counters
    const int K = (int)std::max<int64_t>(1, std::min<int64_t>({64, N / 256, (int64_t)(4 << 20) / ntiles}));
    B.g.resize(N);
    B.goff.resize(N + 1);
    std::vector<int32_t> tcount((size_t)K * ntiles, 0);
    std::unique_ptr<int32_t[]> first(new int32_t[(size_t)N * KMAX]);
    std::unique_ptr<int32_t[]> cnt(new int32_t[N]);
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) if (K > 1)
    for (int k = 0; k < K; ++k) {
        const int64_t i0 = N * k / K, i1 = N * (k + 1) / K;
        int32_t* tc = tcount.data() + (size_t)k * ntiles;
        for (int64_t i = i0; i < i1; ++i) {
            GP& gp = B.g[i];
            const float l11 = chol[3 * i], l21 = chol[3 * i + 1], l22 = chol[3 * i + 2];
            gp.cull = 0;
            if (gr_setup(means[2 * i], means[2 * i + 1], l11, l21, l22, H, W, &gp.g)) {
                float a, b, c, det;
                gr_sigma(l11, l21, l22, &a, &b, &c, &det);
                gp.cull = gr_well_conditioned(a, c, det);
            }
            int32_t n = 0;
            int32_t* fi = first.get() + i * KMAX;
            for_each_tile(means, chol, i, gp, B.tiles_x, [&](int t) {
                if (n < KMAX) fi[n] = t;
                ++n;
                ++tc[t];
            });
            cnt[i] = n;
        }
    }
    B.goff[0] = 0;
    for (int64_t i = 0; i < N; ++i) B.goff[i + 1] = B.goff[i] + cnt[i];
    const int64_t M = B.goff[N];
    if (M > INT32_MAX) return false;
    B.toff.resize(ntiles + 1);
    std::vector<int64_t> cur((size_t)K * ntiles);
    int64_t run = 0;
    for (int t = 0; t < ntiles; ++t) {
        B.toff[t] = run;
        for (int k = 0; k < K; ++k) {
            cur[(size_t)k * ntiles + t] = run;  // where chunk k's entries of tile t start
            run += tcount[(size_t)k * ntiles + t];
        }
    }
    B.toff[ntiles] = run;
    B.ids.resize(M);
    if (want_gm) B.gm.resize(M);
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) if (K > 1)
    for (int k = 0; k < K; ++k) {
        const int64_t i0 = N * k / K, i1 = N * (k + 1) / K;
        int64_t* cu = cur.data() + (size_t)k * ntiles;
        for (int64_t i = i0; i < i1; ++i) {
            int64_t e = B.goff[i];
            auto put = [&](int t) {
                const int64_t j = cu[t]++;
                B.ids[j] = (int32_t)i;
                if (want_gm) B.gm[j] = e;
                ++e;
            };
            if (cnt[i] <= KMAX) {
                const int32_t* fi = first.get() + i * KMAX;
                for (int n = 0; n < cnt[i]; ++n) put(fi[n]);
            } else {
                for_each_tile(means, chol, i, B.g[i], B.tiles_x, put);
            }
        }
    }
    return true;
}

// The tile loops, once per instruction set (see gaussian_raster_cpu_tiles.inc). The AVX2+FMA copy is compiled
// under a target pragma and picked at run time from the CPU's features, so no -march=native is needed.
// (gcc only: clang ignores `#pragma GCC target`; with clang the portable 4-lane copy is used.)
#define GR_NS base
#define GR_L 4
#define GR_FMA 0
#include "gaussian_raster_cpu_tiles.inc"
#undef GR_NS
#undef GR_L
#undef GR_FMA

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(GR_NO_DISPATCH)
#define GR_X86_DISPATCH 1
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#define GR_NS avx2
#define GR_L 8
#define GR_FMA 1
#include "gaussian_raster_cpu_tiles.inc"
#undef GR_NS
#undef GR_L
#undef GR_FMA
#pragma GCC pop_options
#endif

typedef void (*FwdFn)(const Bins&, const float*, int, int, int, int, float*, float*, int);
typedef void (*BwdFn)(const Bins&, const float*, int, int, int, int, const float*, float*, float*, float*, int);

// 1 unless GR_NO_FACTOR=1 in the environment: the tile loops may use factorised weights (see the .inc file).
int allow_factor() {
    const char* v = getenv("GR_NO_FACTOR");
    return !(v && strcmp(v, "1") == 0);
}

// 0: 4 lanes (SSE2 / NEON), 1: AVX2 + FMA. GR_SIMD=sse in the environment forces the first (tests of both
// paths). (An AVX-512 build of the same loops measured slower on our VMs, so there is none.)
int simd_level() {
#ifdef GR_X86_DISPATCH
    __builtin_cpu_init();
    const char* cap = getenv("GR_SIMD");
    if (cap && strcmp(cap, "sse") == 0) return 0;
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? 1 : 0;
#else
    return 0;
#endif
}

FwdFn pick_fwd() {
#ifdef GR_X86_DISPATCH
    if (simd_level() == 1) return avx2::fwd;
#endif
    return base::fwd;
}
BwdFn pick_bwd() {
#ifdef GR_X86_DISPATCH
    if (simd_level() == 1) return avx2::bwd;
#endif
    return base::bwd;
}

}  // namespace

extern "C" {

// Bumped whenever the ABI below changes; the python loader refuses a library with another version.
int gr_cpu_abi_version(void) { return 6; }

// Hash of the sources this library was built from (see inrcodec/kernels/_loader.py), to detect stale builds.
#ifndef GR_SOURCE_HASH
#define GR_SOURCE_HASH "unknown"
#endif
const char* gr_cpu_source_hash(void) { return GR_SOURCE_HASH; }

// 0: 4-lane (SSE2/NEON), 1: AVX2 + FMA tile loops.
int gr_cpu_simd_level(void) { return simd_level(); }

int gr_cpu_has_openmp(void) {
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

// Returns the number of (tile, Gaussian) pairs the binning produces, or -1 on failure (for tests/benchmarks).
int64_t gr_count_pairs_cpu(const float* means, const float* chol, int64_t N, int H, int W, int num_threads) {
    try {
        Bins B;
        if (!bin(means, chol, N, H, W, threads_or_default(num_threads), false, B)) return -1;
        return B.goff[N];
    } catch (...) {
        return -1;
    }
}

// Binning kept between a forward and its backward (fitting loops), so the backward does not redo it.
// gr_bins_create returns NULL on failure; the handle must be passed only with the same means/chol/H/W and
// released with gr_bins_free.
struct GrBinsHandle {
    Bins B;
    int64_t N;
    int H, W;
};

void* gr_bins_create(const float* means, const float* chol, int64_t N, int H, int W, int num_threads) {
    if (N < 0 || H < 0 || W < 0 || N > INT32_MAX) return nullptr;
    try {
        GrBinsHandle* h = new GrBinsHandle();
        h->N = N;
        h->H = H;
        h->W = W;
        if (!bin(means, chol, N, H, W, threads_or_default(num_threads), true, h->B)) {
            delete h;
            return nullptr;
        }
        return h;
    } catch (...) {
        return nullptr;
    }
}

void gr_bins_free(void* handle) { delete (GrBinsHandle*)handle; }

// out: (H, W, C) float32, fully overwritten. bins: NULL or a gr_bins_create handle for these inputs.
// Returns 0 on success, 1 on bad sizes (or a handle for other sizes), 2 on allocation failure.
int gr_forward_cpu(const float* means, const float* chol, const float* colors, int64_t N, int C, int H, int W,
                   float* out, int num_threads, const void* bins) {
    if (N < 0 || C < 0 || H < 0 || W < 0 || N > INT32_MAX) return 1;
    const GrBinsHandle* hb = (const GrBinsHandle*)bins;
    if (hb && (hb->N != N || hb->H != H || hb->W != W)) return 1;
    if (C == 0 || H == 0 || W == 0) return 0;
    const int nt = threads_or_default(num_threads);
    try {
        Bins own;
        if (!hb && !bin(means, chol, N, H, W, nt, false, own)) return 2;
        const Bins& B = hb ? hb->B : own;
        const int ntiles = B.tiles_x * B.tiles_y;
        const FwdFn fwd = pick_fwd();
        const int fa = allow_factor();
        int fail = 0;
#pragma omp parallel num_threads(nt) reduction(| : fail)
        {
            float* acc = (float*)aligned_alloc(64, sizeof(float) * C * T * T);
            if (!acc) {
                fail = 1;
            } else {
#pragma omp for schedule(dynamic, 1)
                for (int t = 0; t < ntiles; ++t) fwd(B, colors, C, H, W, t, acc, out, fa);
                free(acc);
            }
        }
        return fail ? 2 : 0;
    } catch (const std::bad_alloc&) {
        return 2;
    }
}

// Gradients (overwritten): grad_means (N,2), grad_chol (N,3), grad_colors (N,C). Same arguments and return
// codes as forward.
int gr_backward_cpu(const float* means, const float* chol, const float* colors, int64_t N, int C, int H, int W,
                    const float* grad_out, float* grad_means, float* grad_chol, float* grad_colors,
                    int num_threads, const void* bins) {
    if (N < 0 || C < 0 || H < 0 || W < 0 || N > INT32_MAX) return 1;
    const GrBinsHandle* hb = (const GrBinsHandle*)bins;
    if (hb && (hb->N != N || hb->H != H || hb->W != W)) return 1;
    if (N == 0) return 0;
    memset(grad_means, 0, sizeof(float) * 2 * N);
    memset(grad_chol, 0, sizeof(float) * 3 * N);
    if (C > 0) memset(grad_colors, 0, sizeof(float) * C * N);
    if (C == 0 || H == 0 || W == 0) return 0;
    const int nt = threads_or_default(num_threads);
    const int S = 5 + C;
    try {
        Bins own;
        if (!hb && !bin(means, chol, N, H, W, nt, true, own)) return 2;
        const Bins& B = hb ? hb->B : own;
        const int ntiles = B.tiles_x * B.tiles_y;
        std::vector<float> slots((size_t)B.goff[N] * S);
        const BwdFn bwd = pick_bwd();
        const int fa = allow_factor();
        int fail = 0;
#pragma omp parallel num_threads(nt) reduction(| : fail)
        {
            float* gt = (float*)aligned_alloc(64, sizeof(float) * C * T * T);
            float* lanes = (float*)aligned_alloc(64, sizeof(float) * C * T);
            if (!gt || !lanes) {
                fail = 1;
            } else {
#pragma omp for schedule(dynamic, 1)
                for (int t = 0; t < ntiles; ++t)
                    bwd(B, colors, C, H, W, t, grad_out, gt, lanes, slots.data(), fa);
            }
            free(gt);
            free(lanes);
        }
        if (fail) return 2;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1024)
        for (int64_t i = 0; i < N; ++i) {
            if (B.goff[i] == B.goff[i + 1]) continue;
            float s[5] = {0, 0, 0, 0, 0};
            float* gc = grad_colors + i * C;
            for (int64_t e = B.goff[i]; e < B.goff[i + 1]; ++e) {
                const float* v = slots.data() + (size_t)e * S;
                for (int k = 0; k < 5; ++k) s[k] += v[k];
                for (int ch = 0; ch < C; ++ch) gc[ch] += v[5 + ch];
            }
            gr_chain(chol[3 * i], chol[3 * i + 1], chol[3 * i + 2], s[0], s[1], s[2], s[3], s[4],
                     grad_means + 2 * i, grad_means + 2 * i + 1, grad_chol + 3 * i, grad_chol + 3 * i + 1,
                     grad_chol + 3 * i + 2);
        }
        return 0;
    } catch (const std::bad_alloc&) {
        return 2;
    }
}

}  // extern "C"
