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

inline int nthreads_or_default(int nt) {
#ifdef _OPENMP
    return nt > 0 ? nt : omp_get_max_threads();
#else
    (void)nt;
    return 1;
#endif
}

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

// A 16-pixel tile row is R = 16 / L native GNU vectors of L floats (gcc/clang vector extensions). Oversized
// vectors or the auto-vectoriser both fall back to scalar code on these masked loops, so the width is explicit:
// the loops are templates instantiated for SSE2/NEON (L = 4) and AVX2 (8), picked at run time from the CPU's
// features (no -march=native needed), and for C = 1, 3 and any other C.
template <int L>
struct V;
template <>
struct V<4> {
    typedef float f __attribute__((vector_size(16)));
    typedef int i __attribute__((vector_size(16)));
};
template <>
struct V<8> {
    typedef float f __attribute__((vector_size(32)));
    typedef int i __attribute__((vector_size(32)));
};
#define GR_VINLINE static inline __attribute__((always_inline))
#define GR_MINLINE inline __attribute__((always_inline))
#if defined(__x86_64__) && defined(__GNUC__) && !defined(GR_NO_DISPATCH)
#define GR_X86_DISPATCH 1
#define GR_TARGET(t) __attribute__((target(t)))
#else
#define GR_TARGET(t)
#endif

// Halves of an 8-lane vector (memcpy compiles to a register extract; portable across gcc/clang versions, unlike
// __builtin_shufflevector, which gcc only has since 12).
template <class H, class F>
GR_VINLINE void halves(const F& v, H* lo, H* hi) {
    memcpy(lo, &v, sizeof(H));
    memcpy(hi, (const char*)&v + sizeof(H), sizeof(H));
}

// Does any lane of a comparison mask hold true? (Plain vector code: ISA-specific movemask intrinsics cannot be
// inlined into these templates, which are compiled for the default target before being inlined.)
GR_VINLINE bool any_lane(V<4>::i m) {
    typedef long long v2ll __attribute__((vector_size(16)));
    const v2ll t = (v2ll)m;
    return (t[0] | t[1]) != 0;
}
GR_VINLINE bool any_lane(V<8>::i m) {
    V<4>::i lo, hi;
    halves(m, &lo, &hi);
    return any_lane(lo | hi);
}

// Horizontal sums (a fixed tree, so results depend on nothing but the inputs).
GR_VINLINE float hsum(V<4>::f v) { return (v[0] + v[2]) + (v[1] + v[3]); }
GR_VINLINE float hsum(V<8>::f v) {
    V<4>::f lo, hi;
    halves(v, &lo, &hi);
    return hsum(lo + hi);
}

// exp(x) lane-wise for x in [-QMAX/2, 0] (callers mask q first); gr_expf_neg's algorithm without its clamp.
template <int L>
GR_VINLINE typename V<L>::f vexp_neg(typename V<L>::f x) {
    typedef typename V<L>::f vf;
    typedef typename V<L>::i vi;
    const vf t = x * 1.44269504088896341f;
    const vi n = __builtin_convertvector(t - 0.5f, vi);  // truncation toward 0 of a value <= -0.5: round(t)
    const vf fn = __builtin_convertvector(n, vf);
    const vf r = (x - fn * 0.693145751953125f) - fn * 1.428606765330187e-06f;
    vf p = r * (1.0f / 720.0f) + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    const vi bits = (n + 127) << 23;
    return p * (vf)bits;
}

// What a tile loop needs for one (tile, Gaussian) pair: pixel-centre x of the lanes, the bbox lane mask, the
// range of row vectors [k0, k1] that meet the bbox, and the rows [r0, r1].
template <int L>
struct Pair {
    static const int R = T / L;
    typedef typename V<L>::f vf;
    typedef typename V<L>::i vi;
    vi lm[R];
    int k0, k1, r0, r1;

    GR_MINLINE void init(const GrGauss& g, const vi* lane, int xa, int ya, int yb) {
        const int jlo = g.x0 - xa, jhi = g.x1 - xa;
        for (int k = 0; k < R; ++k) lm[k] = (lane[k] >= jlo) & (lane[k] <= jhi);
        k0 = (jlo < 0 ? 0 : jlo) / L;
        k1 = (jhi > T - 1 ? T - 1 : jhi) / L;
        r0 = std::max(g.y0, ya);
        r1 = std::min(g.y1, yb);
    }
};

template <int L>
struct TileCtx {
    static const int R = T / L;
    typedef typename V<L>::f vf;
    typedef typename V<L>::i vi;
    vf px[R];
    vi lane[R];
    int ya, xa, yb, xb;

    GR_MINLINE void init(const Bins& B, int tile, int H, int W) {
        ya = (tile / B.tiles_x) * T;
        xa = (tile % B.tiles_x) * T;
        yb = std::min(ya + T, H) - 1;
        xb = std::min(xa + T, W) - 1;
        for (int j = 0; j < T; ++j) {
            px[j / L][j % L] = (float)(xa + j) + 0.5f;
            lane[j / L][j % L] = j;
        }
    }
};

// accf: planar tile accumulator, C * 16 * 16 floats (64-byte aligned). NC > 0: C known at compile time.
template <int L, int NC>
GR_VINLINE void render_tile_fwd_t(const Bins& B, const float* colors, int C_, int H, int W, int tile, float* accf,
                                  float* out) {
    typedef typename V<L>::f vf;
    typedef typename V<L>::i vi;
    const int R = T / L;
    const int C = NC > 0 ? NC : C_;
    TileCtx<L> tc;
    tc.init(B, tile, H, W);
    vf* acc = (vf*)accf;
    std::fill(accf, accf + (size_t)C * T * T, 0.0f);
    for (int64_t e = B.toff[tile]; e < B.toff[tile + 1]; ++e) {
        const int32_t id = B.ids[e];
        const GrGauss g = B.g[id].g;
        const float* col = colors + (int64_t)id * C;
        Pair<L> pr;
        pr.init(g, tc.lane, tc.xa, tc.ya, tc.yb);
        const float B2 = g.B + g.B;
        for (int r = pr.r0; r <= pr.r1; ++r) {
            const float dy = ((float)r + 0.5f) - g.my;
            const float t2 = B2 * dy;
            const float t1 = (g.C * dy) * dy;
            vf* arow = acc + (size_t)(r - tc.ya) * R;
            for (int k = pr.k0; k <= pr.k1; ++k) {
                const vf dx = tc.px[k] - g.mx;
                const vf q = (g.A * dx + t2) * dx + t1;  // gr_q_row lane-wise (no FMA: -ffp-contract=off)
                const vi in = (q <= GR_QMAX) & pr.lm[k];
                if (!any_lane(in)) continue;
                const vf w = (vf)((vi)vexp_neg<L>(-0.5f * (vf)((vi)q & in)) & in);
                for (int ch = 0; ch < C; ++ch) arow[(size_t)ch * T * R + k] += w * col[ch];
            }
        }
    }
    for (int r = tc.ya; r <= tc.yb; ++r)
        for (int x = tc.xa; x <= tc.xb; ++x) {
            float* o = out + ((int64_t)r * W + x) * C;
            for (int ch = 0; ch < C; ++ch) o[ch] = accf[((size_t)ch * T + (r - tc.ya)) * T + (x - tc.xa)];
        }
}

// Per (tile, Gaussian) pair: sums S = (sx, sy, sxx, sxy, syy, colour_0 .. colour_{C-1}) written to its slot.
// gtf: planar upstream gradient of the tile (C * 16 * 16 floats); lanesf: C * 16 floats of per-lane sums.
template <int L, int NC>
GR_VINLINE void render_tile_bwd_t(const Bins& B, const float* colors, int C_, int H, int W, int tile,
                                  const float* grad_out, float* gtf, float* lanesf, float* slots) {
    typedef typename V<L>::f vf;
    typedef typename V<L>::i vi;
    const int R = T / L;
    const int C = NC > 0 ? NC : C_;
    const int S = 5 + C;
    TileCtx<L> tc;
    tc.init(B, tile, H, W);
    vf* gt = (vf*)gtf;
    // Per-lane colour sums: in registers when C is a compile-time constant, else in the caller's buffer.
    vf lanes_local[NC > 0 ? NC * R : 1];
    vf* lanes = NC > 0 ? lanes_local : (vf*)lanesf;
    std::fill(gtf, gtf + (size_t)C * T * T, 0.0f);
    for (int r = tc.ya; r <= tc.yb; ++r)
        for (int x = tc.xa; x <= tc.xb; ++x) {
            const float* go = grad_out + ((int64_t)r * W + x) * C;
            for (int ch = 0; ch < C; ++ch) gtf[((size_t)ch * T + (r - tc.ya)) * T + (x - tc.xa)] = go[ch];
        }
    const vf zero = tc.px[0] - tc.px[0];
    for (int64_t e = B.toff[tile]; e < B.toff[tile + 1]; ++e) {
        const int32_t id = B.ids[e];
        const GrGauss g = B.g[id].g;
        const float* col = colors + (int64_t)id * C;
        Pair<L> pr;
        pr.init(g, tc.lane, tc.xa, tc.ya, tc.yb);
        const float B2 = g.B + g.B;
        vf sx = zero, sy = zero, sxx = zero, sxy = zero, syy = zero;
        for (int q = 0; q < C * R; ++q) lanes[q] = zero;
        for (int r = pr.r0; r <= pr.r1; ++r) {
            const float dy = ((float)r + 0.5f) - g.my;
            const float t2 = B2 * dy;
            const float t1 = (g.C * dy) * dy;
            const vf* grow = gt + (size_t)(r - tc.ya) * R;
            for (int k = 0; k < R; ++k) {  // fixed trip count: unrolled, so `lanes` can live in registers
                if (k < pr.k0 || k > pr.k1) continue;
                const vf dx = tc.px[k] - g.mx;
                const vf q = (g.A * dx + t2) * dx + t1;
                const vi in = (q <= GR_QMAX) & pr.lm[k];
                if (!any_lane(in)) continue;
                const vf w = (vf)((vi)vexp_neg<L>(-0.5f * (vf)((vi)q & in)) & in);
                vf gd = zero;
                for (int ch = 0; ch < C; ++ch) {
                    const vf gc = grow[(size_t)ch * T * R + k];
                    gd += col[ch] * gc;
                    lanes[ch * R + k] += w * gc;
                }
                const vf gq = -0.5f * w * gd;
                const vf gx = gq * dx;
                const vf gy = gq * dy;
                sx += gx;
                sy += gy;
                sxx += gx * dx;
                sxy += gx * dy;
                syy += gy * dy;
            }
        }
        float* out = slots + B.gm[e] * S;
        out[0] = hsum(sx);
        out[1] = hsum(sy);
        out[2] = hsum(sxx);
        out[3] = hsum(sxy);
        out[4] = hsum(syy);
        for (int ch = 0; ch < C; ++ch) {
            vf l = lanes[ch * R];
            for (int k = 1; k < R; ++k) l += lanes[ch * R + k];
            out[5 + ch] = hsum(l);
        }
    }
}

#define GR_TILE_ARGS_FWD const Bins &B, const float *colors, int C, int H, int W, int tile, float *acc, float *out
#define GR_TILE_ARGS_BWD                                                                                  \
    const Bins &B, const float *colors, int C, int H, int W, int tile, const float *grad_out, float *gt, \
        float *lanes, float *slots
typedef void (*FwdFn)(GR_TILE_ARGS_FWD);
typedef void (*BwdFn)(GR_TILE_ARGS_BWD);

// One entry point per (SIMD width, channel specialisation); `target` makes each compile for its ISA.
#define GR_DEFINE_TILE_FNS(SUFFIX, TARGET, L)                                                                 \
    TARGET void fwd_##SUFFIX(GR_TILE_ARGS_FWD) {                                                             \
        if (C == 1) render_tile_fwd_t<L, 1>(B, colors, C, H, W, tile, acc, out);                             \
        else if (C == 3) render_tile_fwd_t<L, 3>(B, colors, C, H, W, tile, acc, out);                        \
        else render_tile_fwd_t<L, 0>(B, colors, C, H, W, tile, acc, out);                                    \
    }                                                                                                        \
    TARGET void bwd_##SUFFIX(GR_TILE_ARGS_BWD) {                                                             \
        if (C == 1) render_tile_bwd_t<L, 1>(B, colors, C, H, W, tile, grad_out, gt, lanes, slots);           \
        else if (C == 3) render_tile_bwd_t<L, 3>(B, colors, C, H, W, tile, grad_out, gt, lanes, slots);      \
        else render_tile_bwd_t<L, 0>(B, colors, C, H, W, tile, grad_out, gt, lanes, slots);                  \
    }

GR_DEFINE_TILE_FNS(base, , 4)
#ifdef GR_X86_DISPATCH
GR_DEFINE_TILE_FNS(avx2, GR_TARGET("avx2"), 8)
#endif

// 0: 4 lanes (SSE2 / NEON), 1: AVX2. GR_SIMD=sse in the environment forces the first (tests of both paths).
// (An AVX-512 build of the same loops measured slower on our VMs, so there is none.)
int simd_level() {
#ifdef GR_X86_DISPATCH
    __builtin_cpu_init();
    const char* cap = getenv("GR_SIMD");
    if (cap && strcmp(cap, "sse") == 0) return 0;
    return __builtin_cpu_supports("avx2") ? 1 : 0;
#else
    return 0;
#endif
}

FwdFn pick_fwd() {
#ifdef GR_X86_DISPATCH
    if (simd_level() == 1) return fwd_avx2;
#endif
    return fwd_base;
}
BwdFn pick_bwd() {
#ifdef GR_X86_DISPATCH
    if (simd_level() == 1) return bwd_avx2;
#endif
    return bwd_base;
}

}  // namespace

extern "C" {

// Bumped whenever the ABI below changes; the python loader refuses a library with another version.
int gr_cpu_abi_version(void) { return 2; }

// Hash of the sources this library was built from (see inrcodec/kernels/_loader.py), to detect stale builds.
#ifndef GR_SOURCE_HASH
#define GR_SOURCE_HASH "unknown"
#endif
const char* gr_cpu_source_hash(void) { return GR_SOURCE_HASH; }

// 0: 4-lane (SSE2/NEON), 1: AVX2 tile loops.
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
        if (!bin(means, chol, N, H, W, nthreads_or_default(num_threads), false, B)) return -1;
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
        if (!bin(means, chol, N, H, W, nthreads_or_default(num_threads), true, h->B)) {
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
    const int nt = nthreads_or_default(num_threads);
    try {
        Bins own;
        if (!hb && !bin(means, chol, N, H, W, nt, false, own)) return 2;
        const Bins& B = hb ? hb->B : own;
        const int ntiles = B.tiles_x * B.tiles_y;
        const FwdFn fwd = pick_fwd();
        int fail = 0;
#pragma omp parallel num_threads(nt) reduction(| : fail)
        {
            float* acc = (float*)aligned_alloc(64, sizeof(float) * C * T * T);
            if (!acc) {
                fail = 1;
            } else {
#pragma omp for schedule(dynamic, 1)
                for (int t = 0; t < ntiles; ++t) fwd(B, colors, C, H, W, t, acc, out);
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
    const int nt = nthreads_or_default(num_threads);
    const int S = 5 + C;
    try {
        Bins own;
        if (!hb && !bin(means, chol, N, H, W, nt, true, own)) return 2;
        const Bins& B = hb ? hb->B : own;
        const int ntiles = B.tiles_x * B.tiles_y;
        std::vector<float> slots((size_t)B.goff[N] * S);
        const BwdFn bwd = pick_bwd();
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
                    bwd(B, colors, C, H, W, t, grad_out, gt, lanes, slots.data());
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
