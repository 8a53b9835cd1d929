// Per-sample MLP (Linear, ReLU, ..., Linear) forward and backward for the latent-grid model: its synthesis MLP
// (levels -> hidden -> C, once per pixel) and its context model (4d+3 -> hidden -> 2, once per latent).
//
// Why hand-written: torch runs these as (n x 7)@(7 x 24)-shaped GEMMs plus separate ReLU / ReLU-backward passes
// over n x width activations. With n ~ 400 k and widths of 2..24 every op streams its operands through memory,
// and the weight-gradient GEMMs (24 x n)@(n x 24) are long skinny reductions MKL handles badly: measured ~60 %
// of a latent-grid step. Here a block of BLK samples goes through all layers while it sits in L1 (activations
// feature-major, [width][BLK], so the sample loop vectorises), the backward recomputes the forward of the block
// instead of storing activations, and weight gradients accumulate per thread (double) and are reduced once.
//
// Layout of the parameters (one flat float buffer): for each layer l, W_l [dims[l+1]][dims[l]] then b_l.
// x[i, p] is at x[p * xs_p + i * xs_i] (any 2-D strides); same for out, grad_out and grad_x.
// C ABI (loaded with ctypes by inrcodec/kernels/latentgrid_mlp.py). The torch reference: mlp_torch() there.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>
#ifdef _OPENMP
#include <omp.h>
#endif

namespace {

constexpr int BLK = 64;
constexpr int MAX_LAYERS = 16;
// The kernels' vector (GCC/Clang vector extension: written once, builds for any target): one register of the
// widest unit the build targets (-march: native, or the level INRCODEC_LG_SIMD names; latentgrid_mlp.py). With
// AVX-512 the register file is 32 x 16 floats, so a block row (BLK = 64) is 4 registers and a tile of 4 outputs x
// 4 vectors (16 accumulators) fits beside its operands: each row load feeds 4 FMAs, each broadcast weight 4.
// Elsewhere 16 registers of 8 floats (two SSE registers each on baseline x86-64): tiles of 2 outputs x 4 vectors.
// Per lane the arithmetic is the same at every width (the same products summed in the same order), so without FMA
// contraction (the strict build, STRICT_FLAGS in latentgrid_mlp.py) every level computes the same bits.
#if defined(__AVX512F__)
constexpr int VW = 16, FWD_JT = 4, FWD_VT = 4, WG_JT = 4;
#else
constexpr int VW = 8, FWD_JT = 2, FWD_VT = 4, WG_JT = 1;
#endif
typedef float vf __attribute__((vector_size(4 * VW)));  // (aligned to its size)
constexpr int NV = BLK / VW;
static_assert(NV % FWD_VT == 0, "forward tiles split a block row evenly");

// Keeps a loaded row vector in a register: without it GCC folds the load into every FMA that uses it (one load
// per FMA; AVX-512 FMAs then wait on the load ports: the synthesis backward measured 19.2 -> 14.9 ms CPU with it).
#if defined(__AVX__)
#define KEEP_IN_REGISTER(v) asm("" : "+v"(v))
#else
#define KEEP_IN_REGISTER(v) (void)0
#endif

inline vf splatf(float a) { return vf{} + a; }
inline vf loadf(const float* p) { vf v; std::memcpy(&v, p, sizeof(v)); return v; }
inline void storef(float* p, vf v) { std::memcpy(p, &v, sizeof(v)); }

// out_t[0:BLK] = bias_t + sum_k w[t * w_so + k * w_sk] * rows[k][0:BLK] for the JT outputs t of a tile (rows k at
// base + k * BLK), ReLU before the store when RELU. Accumulators stay in registers, VT vectors of a row at a time;
// per lane: bias, then the products added in k order.
template <int JT, int VT, bool RELU>
inline void fwd_tile(const float* bias, const float* w, int64_t w_so, int64_t w_sk, const float* base, int k_n,
                     float* out) {
    for (int c0 = 0; c0 < NV; c0 += VT) {
        vf a[JT][VT];
        for (int t = 0; t < JT; ++t) {
            const vf b = splatf(bias ? bias[t] : 0.0f);
            for (int v = 0; v < VT; ++v) a[t][v] = b;
        }
        const float* col = base + c0 * VW;
        for (int k = 0; k < k_n; ++k) {
            vf x[VT];
            for (int v = 0; v < VT; ++v) {
                x[v] = loadf(col + k * BLK + v * VW);
                KEEP_IN_REGISTER(x[v]);
            }
            for (int t = 0; t < JT; ++t) {
                const vf wk = splatf(w[t * w_so + k * w_sk]);
                for (int v = 0; v < VT; ++v) a[t][v] += wk * x[v];
            }
        }
        const vf zero = splatf(0.0f);
        for (int t = 0; t < JT; ++t)
            for (int v = 0; v < VT; ++v) {
                vf o = a[t][v];
                if (RELU) o = o > zero ? o : zero;
                storef(out + t * BLK + c0 * VW + v * VW, o);
            }
    }
}

// All dout outputs of a layer: tiles of FWD_JT outputs, then the remainder one tile size down.
template <bool RELU>
inline void fwd_layer(const float* bias, const float* w, int64_t w_so, int64_t w_sk, const float* hin, int din,
                      int dout, float* hout) {
    int j = 0;
    for (; j + FWD_JT <= dout; j += FWD_JT)
        fwd_tile<FWD_JT, FWD_VT, RELU>(bias ? bias + j : nullptr, w + j * w_so, w_so, w_sk, hin, din, hout + j * BLK);
    if (FWD_JT > 2)
        for (; j + 2 <= dout; j += 2)
            fwd_tile<2, FWD_VT, RELU>(bias ? bias + j : nullptr, w + j * w_so, w_so, w_sk, hin, din, hout + j * BLK);
    for (; j < dout; ++j)
        fwd_tile<1, FWD_VT, RELU>(bias ? bias + j : nullptr, w + j * w_so, w_so, w_sk, hin, din, hout + j * BLK);
}

struct Net {
    int L;
    const int* dims;
    const float* params;
    int64_t off[MAX_LAYERS + 1];
    int maxw;
};

bool setup(Net& net, int L, const int* dims, const float* params) {
    if (L < 1 || L > MAX_LAYERS) return false;
    net.L = L;
    net.dims = dims;
    net.params = params;
    net.maxw = 0;
    int64_t o = 0;
    for (int l = 0; l <= L; ++l) {
        if (dims[l] < 1 || dims[l] > 4096) return false;
        net.maxw = std::max(net.maxw, dims[l]);
    }
    for (int l = 0; l < L; ++l) {
        net.off[l] = o;
        o += (int64_t)dims[l + 1] * dims[l] + dims[l + 1];
    }
    net.off[L] = o;
    return true;
}

inline void gather(const float* x, int64_t p0, int cnt, int d, int64_t s_p, int64_t s_i, float* buf) {
    for (int i = 0; i < d; ++i) {
        float* row = buf + i * BLK;
        const float* src = x + p0 * s_p + i * s_i;
        if (s_p == 1) {
            std::memcpy(row, src, sizeof(float) * cnt);
        } else {
            for (int p = 0; p < cnt; ++p) row[p] = src[p * s_p];
        }
        for (int p = cnt; p < BLK; ++p) row[p] = 0.0f;
    }
}

inline void scatter(const float* buf, int64_t p0, int cnt, int d, int64_t s_p, int64_t s_i, float* y) {
    for (int i = 0; i < d; ++i) {
        const float* row = buf + i * BLK;
        float* dst = y + p0 * s_p + i * s_i;
        if (s_p == 1) {
            std::memcpy(dst, row, sizeof(float) * cnt);
        } else {
            for (int p = 0; p < cnt; ++p) dst[p * s_p] = row[p];
        }
    }
}

// act: (L+1) slabs of [maxw][BLK]; slab 0 holds the input block. Fills slabs 1..n_layers (default: all L).
inline void forward_block(const Net& net, float* act, int n_layers = -1) {
    const int S = net.maxw * BLK;
    for (int l = 0; l < (n_layers < 0 ? net.L : n_layers); ++l) {
        const int din = net.dims[l], dout = net.dims[l + 1];
        const float* W = net.params + net.off[l];
        const float* b = W + (int64_t)dout * din;
        if (l < net.L - 1)
            fwd_layer<true>(b, W, din, 1, act + l * S, din, dout, act + (l + 1) * S);
        else
            fwd_layer<false>(b, W, din, 1, act + l * S, din, dout, act + (l + 1) * S);
    }
}

// Weight and bias gradients of one layer for the outputs j0..j0+JT-1: gW[j][i] += g[j] . hin[i] per lane (acc:
// one vf of lane partial sums per parameter), the JT gradient rows held in registers across the inputs i.
template <int JT>
inline void wgrad_tile(const float* g, const float* hin, int din, int j0, vf* gW, vf* gB) {
    vf grow[JT][NV];
    for (int t = 0; t < JT; ++t) {
        vf sb = grow[t][0] = loadf(g + (j0 + t) * BLK);
        for (int v = 1; v < NV; ++v) {
            grow[t][v] = loadf(g + (j0 + t) * BLK + v * VW);
            sb += grow[t][v];
        }
        gB[j0 + t] += (sb);
    }
    for (int i = 0; i < din; ++i) {
        const float* h = hin + i * BLK;
        if (JT == 1) {  // one row: two chains (the FMA latency), as the 16-register build needs
            vf s0 = grow[0][0] * loadf(h), s1 = grow[0][1] * loadf(h + VW);
            for (int v = 2; v < NV; v += 2) {
                s0 += grow[0][v] * loadf(h + v * VW);
                s1 += grow[0][v + 1] * loadf(h + (v + 1) * VW);
            }
            gW[(int64_t)j0 * din + i] += (s0 + s1);
        } else {  // JT independent chains
            vf hv[NV];
            for (int v = 0; v < NV; ++v) {
                hv[v] = loadf(h + v * VW);
                KEEP_IN_REGISTER(hv[v]);
            }
            for (int t = 0; t < JT; ++t) {
                vf s = grow[t][0] * hv[0];
                for (int v = 1; v < NV; ++v) s += grow[t][v] * hv[v];
                gW[(int64_t)(j0 + t) * din + i] += (s);
            }
        }
    }
}

// Backward of one block whose forward activations are in act ((L+1) slabs of [maxw][BLK]): g holds the gradient
// of the last layer's output (zero in padded lanes), gprev is scratch of the same size. Adds the weight gradients
// to acc (per-lane partial sums, net.off layout); returns the buffer holding the input gradient when need_gx.
inline float* backward_block(const Net& net, const float* act, float* g, float* gprev, vf* acc, bool need_gx) {
    const int S = net.maxw * BLK;
    for (int l = net.L - 1; l >= 0; --l) {
        const int din = net.dims[l], dout = net.dims[l + 1];
        const float* W = net.params + net.off[l];
        const float* hin = act + l * S;
        const float* hout = act + (l + 1) * S;
        if (l < net.L - 1) {  // ReLU after this layer: its output > 0 exactly where its input was
            for (int j = 0; j < dout; ++j) {
                float* gj = g + j * BLK;
                const float* hj = hout + j * BLK;
#pragma omp simd
                for (int p = 0; p < BLK; ++p) gj[p] = hj[p] > 0.0f ? gj[p] : 0.0f;
            }
        }
        vf* gW = acc + net.off[l];
        vf* gB = gW + (int64_t)dout * din;
        int j = 0;
        for (; j + WG_JT <= dout; j += WG_JT) wgrad_tile<WG_JT>(g, hin, din, j, gW, gB);
        for (; j < dout; ++j) wgrad_tile<1>(g, hin, din, j, gW, gB);
        if (l > 0 || need_gx) {  // gprev[i] = sum_j W[j][i] g[j]: the forward's tiles on the transposed weights
            fwd_layer<false>(nullptr, W, 1, din, g, dout, din, gprev);
            std::swap(g, gprev);
        }
    }
    return g;
}

// Per-thread vf weight-gradient partials -> one double total per thread (deterministic reduction afterwards).
inline void lanes_to_double(const std::vector<vf>& acc, std::vector<double>& mine) {
    mine.assign(acc.size(), 0.0);
    for (size_t k = 0; k < acc.size(); ++k) {
        double t = 0.0;
        for (int v = 0; v < VW; ++v) t += acc[k][v];
        mine[k] = t;
    }
}

// ... and that reduction: the threads' totals summed in thread order into the float gradients g (n_params)
inline void threads_to_grad(const std::vector<std::vector<double>>& totals, int64_t n_params, float* g) {
    for (int64_t k = 0; k < n_params; ++k) {
        double t = 0.0;
        for (const auto& part : totals)
            if (!part.empty()) t += part[k];
        g[k] = (float)t;
    }
}

int n_threads_for(int64_t n_blocks, int want) {
    int t = want > 0 ? want : 1;
    if (n_blocks < 2 * t) t = (int)std::max<int64_t>(1, n_blocks / 2);
    return t;
}

}  // namespace

extern "C" {

// 2: row lists in lg_context2d_*, lg_conv2d_residual_*; 3: lg_simd_width; 4: lg_arm_rate_ctx2d
int lg_mlp_abi_version() { return 4; }

int lg_simd_width() { return VW; }  // floats per MLP vector: 16 with AVX-512, else 8

int lg_mlp_has_openmp() {
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

int lg_mlp_forward(const float* x, int64_t n, int64_t xs_p, int64_t xs_i, int L, const int* dims,
                   const float* params, float* out, int64_t os_p, int64_t os_i, int threads) {
    Net net;
    if (!setup(net, L, dims, params) || n < 0) return 1;
    const int64_t n_blocks = (n + BLK - 1) / BLK;
    const int nt = n_threads_for(n_blocks, threads);
    (void)nt;
#pragma omp parallel num_threads(nt)
    {
        std::vector<float> act((size_t)(L + 1) * net.maxw * BLK);
#pragma omp for schedule(static)
        for (int64_t blk = 0; blk < n_blocks; ++blk) {
            const int64_t p0 = blk * BLK;
            const int cnt = (int)std::min<int64_t>(BLK, n - p0);
            gather(x, p0, cnt, dims[0], xs_p, xs_i, act.data());
            forward_block(net, act.data());
            scatter(act.data() + (size_t)L * net.maxw * BLK, p0, cnt, dims[L], os_p, os_i, out);
        }
    }
    return 0;
}

// grad_params (float, size = total parameters) is overwritten; grad_x may be null (no input gradient).
int lg_mlp_backward(const float* x, int64_t n, int64_t xs_p, int64_t xs_i, int L, const int* dims,
                    const float* params, const float* grad_out, int64_t gs_p, int64_t gs_i, float* grad_x,
                    int64_t gxs_p, int64_t gxs_i, float* grad_params, int threads) {
    Net net;
    if (!setup(net, L, dims, params) || n < 0) return 1;
    const int64_t n_params = net.off[L];
    const int64_t n_blocks = (n + BLK - 1) / BLK;
    const int nt = n_threads_for(n_blocks, threads);
    // per-thread totals, summed in thread order afterwards: the same gradients on every run (the --seed contract)
    std::vector<std::vector<double>> totals((size_t)nt);
#pragma omp parallel num_threads(nt)
    {
        const int S = net.maxw * BLK;
        std::vector<float> act((size_t)(L + 1) * S);
        std::vector<float> ga((size_t)S), gb((size_t)S);
        std::vector<vf> acc((size_t)n_params, vf{});  // per-lane partial sums, reduced once at the end
#pragma omp for schedule(static)
        for (int64_t blk = 0; blk < n_blocks; ++blk) {
            const int64_t p0 = blk * BLK;
            const int cnt = (int)std::min<int64_t>(BLK, n - p0);
            gather(x, p0, cnt, dims[0], xs_p, xs_i, act.data());
            forward_block(net, act.data(), L - 1);  // the backward reads every layer's input, not the output
            float* g = ga.data();
            gather(grad_out, p0, cnt, dims[L], gs_p, gs_i, g);  // zero in padded lanes: they add nothing
            g = backward_block(net, act.data(), g, gb.data(), acc.data(), grad_x != nullptr);
            if (grad_x != nullptr) scatter(g, p0, cnt, dims[0], gxs_p, gxs_i, grad_x);
        }
        int tid = 0;
#ifdef _OPENMP
        tid = omp_get_thread_num();
#endif
        lanes_to_double(acc, totals[(size_t)tid]);
    }
    threads_to_grad(totals, n_params, grad_params);
    return 0;
}

}  // extern "C"

// ---------------------------------------------------------------------------------------------------------------
// Rate of the latents under the context model's Laplaces, fused: bits = sum_k -log2 P(bin of x_k), with
// mean_k = arm[k, 0], scale_k = 2^clamp(arm[k, 1], lo, hi); the value of each symbol's bits is capped at `cap`
// (the coder's floor on a symbol's probability) with the uncapped gradient kept. The same formulas as
// inrcodec/entropy/rate.py:laplace_rate_bits (its torch reference), on the upper side of the mean:
//   d = |x - mean|; tail bin (d >= 1/2): P = 1/2 exp(-(d - 1/2)/b) (1 - exp(-1/b))
//   bin straddling the mean:            P = 1 - 1/2 exp((d - 1/2)/b) - 1/2 exp(-(d + 1/2)/b)
// Replaces ~20 elementwise torch ops (and their backward) over every latent with one pass each way.

namespace {

constexpr double LN2 = 0.69314718055994530942;

// Branch-free so the loop vectorises (with -ffast-math GCC calls glibc's vector expf/logf): both bins' formulas
// are evaluated and one is selected. exp(-lo/b) etc. stay in (0, 1], so nothing overflows.
#pragma omp declare simd notinbranch
inline float laplace_bits(float d, float b, float* dbits_dd, float* dbits_db) {
    const float inv_b = 1.0f / b;
    const float lo = d - 0.5f, hi = d + 0.5f;
    const float ln2 = (float)LN2;
    // tail: log P = log 1/2 - lo/b + log(1 - e^{-1/b})
    const float e1 = std::exp(-inv_b);
    const float em = 1.0f - e1;  // float is enough: b <= 2^7, so 1/b >= 2^-7 and em >= ~2^-7
    const float t_logp = -0.69314718f - lo * inv_b + std::log(em);
    const float t_dd = -inv_b;
    const float t_db = lo * inv_b * inv_b - inv_b * inv_b * e1 / em;  // d/db log(1 - e^{-1/b}) = -e1/(b^2 em)
    // centre: P = 1 - 1/2 e^{lo/b} - 1/2 e^{-hi/b}
    const float e_lo = std::exp(std::fmin(lo, 0.0f) * inv_b), e_hi = std::exp(-hi * inv_b);
    const float p_raw = 1.0f - 0.5f * e_lo - 0.5f * e_hi;
    const bool p_ok = p_raw > 1e-30f;
    const float p = p_ok ? p_raw : 1e-30f;
    const float c_logp = std::log(p);
    const float c_dd = p_ok ? 0.5f * inv_b * (e_hi - e_lo) / p : 0.0f;
    const float c_db = p_ok ? 0.5f * inv_b * inv_b * (lo * e_lo - hi * e_hi) / p : 0.0f;
    const bool tail = lo >= 0.0f;
    const float logp = tail ? t_logp : c_logp;
    float bits = -logp / ln2;
    const bool pos = bits >= 0.0f;  // clamp(min=0) of the reference: no gradient below
    *dbits_dd = pos ? -(tail ? t_dd : c_dd) / ln2 : 0.0f;
    *dbits_db = pos ? -(tail ? t_db : c_db) / ln2 : 0.0f;
    return pos ? bits : 0.0f;
}



template <bool GRAD>
double rate_chunks(const float* __restrict x, const float* __restrict arm, int64_t n, float log2_lo, float log2_hi,
                   float cap, float grad, float* __restrict grad_x, float* __restrict grad_arm, int nt) {
    constexpr int64_t CH = 4096;  // chunks: float partial sums vectorise, the total is summed in double
    const int64_t n_chunks = (n + CH - 1) / CH;
    std::vector<double> parts((size_t)n_chunks);  // summed in order afterwards: deterministic for any thread count
    (void)nt;
#pragma omp parallel for schedule(static) num_threads(nt) if (n > 65536)
    for (int64_t c = 0; c < n_chunks; ++c) {
        const int k0 = 0, k1 = (int)(std::min(n, c * CH + CH) - c * CH);
        const float* xc = x + c * CH;
        const float* ac = arm + 2 * c * CH;
        float* gx = GRAD ? grad_x + c * CH : nullptr;
        float* ga = GRAD ? grad_arm + 2 * c * CH : nullptr;
        float part = 0.0f;
#pragma omp simd reduction(+ : part)
        for (int k = k0; k < k1; ++k) {
            const float mean = ac[2 * k], raw = ac[2 * k + 1];
            const float rc = std::fmin(std::fmax(raw, log2_lo), log2_hi);
            const float b = std::exp2(rc);
            const float diff = xc[k] - mean;
            float dd, db;
            const float bits = laplace_bits(std::fabs(diff), b, &dd, &db);
            part += std::fmin(bits, cap);
            if (GRAD) {
                const float sgn = diff > 0.0f ? 1.0f : (diff < 0.0f ? -1.0f : 0.0f);
                const float gd = grad * dd * sgn;
                // clamp passes the gradient on [lo, hi] (inclusive, as torch.clamp does)
                const float gb = (raw >= log2_lo && raw <= log2_hi) ? grad * db * b * (float)LN2 : 0.0f;
                gx[k] = gd;
                ga[2 * k] = -gd;
                ga[2 * k + 1] = gb;
            }
        }
        parts[(size_t)c] = part;
    }
    double sum = 0.0;
    for (double v : parts) sum += v;
    return sum;
}

}  // namespace

extern "C" {

// x: n contiguous latents; arm: (n, 2) contiguous rows (mean, raw log2 scale). Writes the total bits to *total;
// with with_grad != 0 also grad_x (n) and grad_arm ((n, 2)) = grad * d total / d inputs.
int lg_laplace_rate(const float* x, const float* arm, int64_t n, float log2_lo, float log2_hi, float cap,
                    int with_grad, float grad, float* grad_x, float* grad_arm, double* total, int threads) {
    const int nt = threads > 0 ? threads : 1;
    const double sum = with_grad ? rate_chunks<true>(x, arm, n, log2_lo, log2_hi, cap, grad, grad_x, grad_arm, nt)
                                 : rate_chunks<false>(x, arm, n, log2_lo, log2_hi, cap, 0.0f, nullptr, nullptr, nt);
    *total = sum;
    return 0;
}

}  // extern "C"

// ---------------------------------------------------------------------------------------------------------------
// Context MLP + rate, fused, forward and backward in one pass (torch reference: mlp_torch then laplace_rate_bits;
// inrcodec/kernels/latentgrid_arm.py). The rate's gradient with respect to the MLP's outputs needs nothing from the
// rest of the loss (the loss is linear in the total bits), so each 64-latent block goes forward through the MLP,
// through the Laplace rate, and straight back through the MLP while its activations are still in L1: no second
// forward pass in the backward (the separate MLP kernel recomputes it), no (n, 2) output round trip, one kernel
// instead of four. Gradients are for a unit upstream gradient; the autograd wrapper scales them.
// feats[i, p] at feats[p * fs_p + i * fs_i] (any 2-D strides; grad_feats the same); y: n latents; dims[L] must be 2
// (mean, raw log2 scale).
namespace {

// The 11 context features of sample (r, c) of a 2-D level y (H x W) with coarser level z (Hc x Wc, or null);
// see lg_context2d_forward below (the layout and the torch reference). Copies only: float for training, double for
// the coder (lg_context2d_f64).
template <class T>
inline void ctx2d_sample(const T* y, const T* z, int H, int W, int Hc, int Wc, T level_pos, int r, int c, T* fl) {
    const bool odd = ((r + c) & 1) != 0;
    if (z != nullptr) {
        const int pr = std::min(r / 2, Hc - 1), pc = std::min(c / 2, Wc - 1);
        const int rl = std::max(pr - 1, 0), rh = std::min(pr + 1, Hc - 1);
        const int cl = std::max(pc - 1, 0), ch = std::min(pc + 1, Wc - 1);
        const T* zr = z + (int64_t)pr * Wc;
        fl[0] = zr[pc];
        const T up = z[(int64_t)rl * Wc + pc], down = z[(int64_t)rh * Wc + pc];
        const T left = zr[cl], right = zr[ch];
        const bool er = (r & 1) == 0, ec = (c & 1) == 0;
        fl[1] = er ? up : down;
        fl[2] = er ? down : up;
        fl[3] = ec ? left : right;
        fl[4] = ec ? right : left;
    } else {
        fl[0] = fl[1] = fl[2] = fl[3] = fl[4] = T(0);
    }
    const T* yr = y + (int64_t)r * W;
    fl[5] = (odd && r > 0) ? yr[c - W] : T(0);
    fl[6] = (odd && r < H - 1) ? yr[c + W] : T(0);
    fl[7] = (odd && c > 0) ? yr[c - 1] : T(0);
    fl[8] = (odd && c < W - 1) ? yr[c + 1] : T(0);
    fl[9] = odd ? T(1) : T(0);
    fl[10] = level_pos;
}

// ctx2d_sample's adjoint: adds the 11 feature gradients f of sample (r, c) to gy (H x W) and gz (Hc x Wc, or null),
// element by element in this fixed order (an element reached twice, as on a one-row coarse level, sums the same way)
inline void ctx2d_scatter(const float* f, int H, int W, int Hc, int Wc, int r, int c, float* gy, float* gz) {
    if ((r + c) & 1) {
        float* g = gy + (int64_t)r * W + c;
        if (r > 0) g[-W] += f[5];
        if (r < H - 1) g[W] += f[6];
        if (c > 0) g[-1] += f[7];
        if (c < W - 1) g[1] += f[8];
    }
    if (gz != nullptr) {
        const int pr = std::min(r / 2, Hc - 1), pc = std::min(c / 2, Wc - 1);
        const int rl = std::max(pr - 1, 0), rh = std::min(pr + 1, Hc - 1);
        const int cl = std::max(pc - 1, 0), ch = std::min(pc + 1, Wc - 1);
        const bool er = (r & 1) == 0, ec = (c & 1) == 0;
        gz[(int64_t)pr * Wc + pc] += f[0];
        gz[(int64_t)rl * Wc + pc] += er ? f[1] : f[2];
        gz[(int64_t)rh * Wc + pc] += er ? f[2] : f[1];
        gz[(int64_t)pr * Wc + cl] += ec ? f[3] : f[4];
        gz[(int64_t)pr * Wc + ch] += ec ? f[4] : f[3];
    }
}

// Where a block's context features and latents come from: a feature matrix (any 2-D strides) and a latent vector,
// and where the gradients of a block go (gx: the features' gradients, [d0][BLK]; gd: the latents' direct ones):
// the feature gradient matrix (same strides as feats, may be null) and a latent gradient vector.
struct FeatsSource {
    const float* feats;
    int64_t fs_p, fs_i;
    const float* y;
    int d0;
    float* grad_feats;
    float* grad_y;
    bool need_gx() const { return grad_feats != nullptr; }
    void prepare(int) {}
    void finish(int) {}
    void fill(int64_t p0, int cnt, float* act0, float* yb) const {
        gather(feats, p0, cnt, d0, fs_p, fs_i, act0);
        std::memcpy(yb, y + p0, sizeof(float) * cnt);
    }
    void put_grad(int, int64_t p0, int cnt, const float* gx, const float* gd) const {
        if (grad_feats != nullptr) scatter(gx, p0, cnt, d0, fs_p, fs_i, grad_feats);
        std::memcpy(grad_y + p0, gd, sizeof(float) * cnt);
    }
};

// Or built on the fly from a 2-D level (samples in row-major order over the rows listed; null: all rows), with
// the gradients scattered straight onto the level and its coarser level (the adds of lg_context2d_backward):
// no (11, n) feature matrix and no feature-gradient matrix written and read back (two passes, ~10 % of a Kodak
// step). Thread 0 adds into gy/gz, every other thread into a zeroed private copy (kept between calls), summed in
// thread order at the end: deterministic for a given thread count (its rounding differs between thread counts).
struct Ctx2dSource {
    const float* y;
    const float* z;
    int H, W, Hc, Wc;
    float level_pos;
    const int* rows;
    float* gy;  // H x W, overwritten (null: no gradients)
    float* gz;  // Hc x Wc, overwritten (may be null)
    float* priv = nullptr;  // threads 1..nt-1: (H x W, then Hc x Wc) each
    int64_t priv_n = 0;
    bool need_gx() const { return true; }
    void prepare(int nt) {
        if (gy == nullptr) return;
        // kept between calls (the calling thread's): a fresh 2 MB per call for a Kodak level 0 is page faults
        static thread_local std::vector<float> store;
        priv_n = (int64_t)H * W + (gz != nullptr ? (int64_t)Hc * Wc : 0);
        const int64_t total = priv_n * std::max(nt - 1, 0);
        if ((int64_t)store.size() < total) store.resize((size_t)total);
        priv = store.data();
        const int64_t ny = (int64_t)H * W, nz = gz != nullptr ? (int64_t)Hc * Wc : 0;
        (void)nt;
#pragma omp parallel for schedule(static) num_threads(nt) if (ny > 65536)
        for (int64_t i = 0; i < ny; ++i) gy[i] = 0.0f;
        for (int64_t i = 0; i < nz; ++i) gz[i] = 0.0f;
#pragma omp parallel for schedule(static) num_threads(nt) if (total > 65536)
        for (int64_t i = 0; i < total; ++i) priv[i] = 0.0f;
    }
    void finish(int nt) {
        if (gy == nullptr || nt < 2) return;
        const int64_t ny = (int64_t)H * W, nz = gz != nullptr ? (int64_t)Hc * Wc : 0;
        (void)nt;
        // element by element, threads in order: the same bits whatever the OpenMP split of this loop
#pragma omp parallel for schedule(static) num_threads(nt) if (ny > 65536)
        for (int64_t i = 0; i < ny; ++i)
            for (int t = 0; t < nt - 1; ++t) gy[i] += priv[t * priv_n + i];
        for (int64_t i = 0; i < nz; ++i)
            for (int t = 0; t < nt - 1; ++t) gz[i] += priv[t * priv_n + ny + i];
    }
    void fill(int64_t p0, int cnt, float* act0, float* yb) const {
        int64_t i = p0 / W;
        int c = (int)(p0 - i * W);
        for (int p = 0; p < cnt; ++p) {
            const int r = rows != nullptr ? rows[i] : (int)i;
            float fl[11];
            ctx2d_sample(y, z, H, W, Hc, Wc, level_pos, r, c, fl);
            for (int k = 0; k < 11; ++k) act0[k * BLK + p] = fl[k];
            yb[p] = y[(int64_t)r * W + c];
            if (++c == W) {
                c = 0;
                ++i;
            }
        }
        for (int k = 0; k < 11; ++k)
            for (int p = cnt; p < BLK; ++p) act0[k * BLK + p] = 0.0f;
    }
    void put_grad(int tid, int64_t p0, int cnt, const float* gx, const float* gd) const {
        float* ty = tid == 0 ? gy : priv + (int64_t)(tid - 1) * priv_n;
        float* tz = gz == nullptr ? nullptr : (tid == 0 ? gz : ty + (int64_t)H * W);
        int64_t i = p0 / W;
        int c = (int)(p0 - i * W);
        for (int p = 0; p < cnt; ++p) {
            const int r = rows != nullptr ? rows[i] : (int)i;
            float f[11];
            for (int k = 0; k < 11; ++k) f[k] = gx[k * BLK + p];
            ty[(int64_t)r * W + c] += gd[p];
            ctx2d_scatter(f, H, W, Hc, Wc, r, c, ty, tz);
            if (++c == W) {
                c = 0;
                ++i;
            }
        }
    }
};

template <class Source>
int arm_rate_impl(Source& src, int64_t n, int L, const int* dims, const float* params, float log2_lo, float log2_hi,
                  float cap, float* grad_params, double* total, int threads) {
    Net net;
    if (!setup(net, L, dims, params) || n < 0 || dims[L] != 2) return 1;
    const bool with_grad = grad_params != nullptr;
    const int64_t n_params = net.off[L];
    const int64_t n_blocks = (n + BLK - 1) / BLK;
    const int nt = n_threads_for(n_blocks, threads);
    std::vector<double> block_bits((size_t)n_blocks);  // summed in order: the same total for any thread count
    std::vector<std::vector<double>> totals((size_t)nt);
    if (with_grad) src.prepare(nt);
#pragma omp parallel num_threads(nt)
    {
        const int S = net.maxw * BLK;
        std::vector<float> act((size_t)(L + 1) * S);
        std::vector<float> ga((size_t)S, 0.0f), gb((size_t)S);
        std::vector<vf> acc(with_grad ? (size_t)n_params : 0, vf{});
        float yb[BLK], gd_blk[BLK];
        int tid = 0;
#ifdef _OPENMP
        tid = omp_get_thread_num();
#endif
#pragma omp for schedule(static)
        for (int64_t blk = 0; blk < n_blocks; ++blk) {
            const int64_t p0 = blk * BLK;
            const int cnt = (int)std::min<int64_t>(BLK, n - p0);
            src.fill(p0, cnt, act.data(), yb);
            forward_block(net, act.data());
            const float* mean = act.data() + (size_t)L * S;
            const float* raw = mean + BLK;
            float* g = ga.data();  // rows: d bits / d mean, d bits / d raw (padded lanes stay 0)
            float part = 0.0f;
#pragma omp simd reduction(+ : part)
            for (int p = 0; p < cnt; ++p) {
                const float rc = std::fmin(std::fmax(raw[p], log2_lo), log2_hi);
                const float b = std::exp2(rc);
                const float diff = yb[p] - mean[p];
                float dd, db;
                const float bits = laplace_bits(std::fabs(diff), b, &dd, &db);
                part += std::fmin(bits, cap);
                const float sgn = diff > 0.0f ? 1.0f : (diff < 0.0f ? -1.0f : 0.0f);
                const float gd = dd * sgn;
                g[p] = -gd;
                g[BLK + p] = (raw[p] >= log2_lo && raw[p] <= log2_hi) ? db * b * (float)LN2 : 0.0f;
                gd_blk[p] = gd;
            }
            block_bits[(size_t)blk] = part;
            if (!with_grad) continue;
            for (int p = cnt; p < BLK; ++p) g[p] = g[BLK + p] = 0.0f;
            float* gx = backward_block(net, act.data(), g, gb.data(), acc.data(), src.need_gx());
            src.put_grad(tid, p0, cnt, gx, gd_blk);
        }
        if (with_grad) lanes_to_double(acc, totals[(size_t)tid]);
    }
    if (with_grad) src.finish(nt);
    double sum = 0.0;
    for (double v : block_bits) sum += v;
    *total = sum;
    if (with_grad) threads_to_grad(totals, n_params, grad_params);
    return 0;
}

}  // namespace

extern "C" {

int lg_arm_rate(const float* feats, int64_t fs_p, int64_t fs_i, const float* y, int64_t n, int L, const int* dims,
                const float* params, float log2_lo, float log2_hi, float cap, float* grad_feats, float* grad_y,
                float* grad_params, double* total, int threads) {
    if (L < 1 || L > MAX_LAYERS) return 1;
    FeatsSource src{feats, fs_p, fs_i, y, dims[0], grad_feats, grad_y};
    return arm_rate_impl(src, n, L, dims, params, log2_lo, log2_hi, cap, grad_params, total, threads);
}

// The same with the features of a 2-D level built per block (Ctx2dSource; dims[0] must be 11): the latents are
// y's samples on the rows listed (rows null: all H rows, n_rows = H), n = n_rows * W. With grad_params, grad_y
// (H x W) and grad_z (Hc x Wc, may be null) are overwritten with the gradients of the bits with respect to y (through
// the features and directly) and z.
int lg_arm_rate_ctx2d(const float* y, const float* z, int H, int W, int Hc, int Wc, float level_pos, const int* rows,
                      int n_rows, int L, const int* dims, const float* params, float log2_lo, float log2_hi,
                      float cap, float* grad_y, float* grad_z, float* grad_params, double* total, int threads) {
    if (L < 1 || L > MAX_LAYERS || dims[0] != 11 || H < 1 || W < 1) return 1;
    if (grad_params != nullptr && grad_y == nullptr) return 1;
    if (rows == nullptr) n_rows = H;
    for (int i = 0; rows != nullptr && i < n_rows; ++i)
        if (rows[i] < 0 || rows[i] >= H) return 1;
    const int64_t n = (int64_t)n_rows * W;
    Ctx2dSource src{y, z, H, W, Hc, Wc, level_pos, rows, grad_params ? grad_y : nullptr,
                    grad_params && z ? grad_z : nullptr, {}};
    return arm_rate_impl(src, n, L, dims, params, log2_lo, log2_hi, cap, grad_params, total, threads);
}

}  // extern "C"

// ---------------------------------------------------------------------------------------------------------------
// Context features of a 2-D latent level (torch reference: context_features() in inrcodec/models/latentgrid.py,
// which is dimension-generic and also what the exact coder uses). For sample (r, c) of y (H x W) with the coarser
// level z (Hc x Wc, parent (r/2, c/2), edges replicated), the 11 features are:
//   z[pr, pc]; per axis the nearer and farther neighbour of the parent along it (nearer = the side the sample
//   sits on); y[r-1, c], y[r+1, c], y[r, c-1], y[r, c+1] on odd samples ((r + c) odd; 0 outside and on even
//   samples); the odd flag; the level position. One pass instead of ~60 torch ops; backward scatters the same way.
// feats and its gradient are feature-major, (11, n_rows*W): the context MLP's gather then copies whole rows.
// rows: the level's rows to evaluate, in output order (null: all H rows, n_rows = H). The training step's rate
// term evaluates a random 1-in-k subset of the rows of its largest levels (context.py, rate_bits), so only those
// rows' features are built; their neighbours and parents are read from the whole level as always.
extern "C" {

int lg_context2d_forward(const float* y, const float* z, int H, int W, int Hc, int Wc, float level_pos,
                         const int* rows, int n_rows, float* feats, int threads) {
    const int nt = threads > 0 ? threads : 1;
    if (rows == nullptr) n_rows = H;
    for (int i = 0; rows != nullptr && i < n_rows; ++i)
        if (rows[i] < 0 || rows[i] >= H) return 1;
    const int64_t n = (int64_t)n_rows * W;
    (void)nt;
#pragma omp parallel num_threads(nt) if (n > 65536)
    {
    // one image row of all 11 features, then 11 row copies: writing 11 streams n floats apart sample by sample
    // (n often a multiple of 4 KiB) thrashed the L1's sets and took 4x longer
    std::vector<float> rowbuf((size_t)11 * W);
#pragma omp for schedule(static)
    for (int i = 0; i < n_rows; ++i) {
        const int r = rows != nullptr ? rows[i] : i;
        for (int c = 0; c < W; ++c) {
            float* f = rowbuf.data() + c;  // f[k * W]: feature k of this sample
            float fl[11];
            ctx2d_sample(y, z, H, W, Hc, Wc, level_pos, r, c, fl);
            for (int k = 0; k < 11; ++k) f[(size_t)k * W] = fl[k];
        }
        for (int k = 0; k < 11; ++k)  // feature-major: rows the MLP copies whole
            std::memcpy(feats + k * n + (int64_t)i * W, rowbuf.data() + (size_t)k * W, sizeof(float) * W);
    }
    }
    return 0;
}

// grad_y (H x W) and grad_z (Hc x Wc, may be null) are overwritten with the gradients from grad_feats
// ((11, n_rows*W) for the rows of the forward; rows null: all H).
// Threads: columns in chunks of CTX_CW, even chunks in one parallel pass, odd ones in a second. A sample in column
// c adds to columns c-1..c+1 of grad_y and (c/2)-1..(c/2)+1 of grad_z, so chunks two apart never touch the same
// element; every element gets its contributions in the same order for any thread count (deterministic).
namespace {
constexpr int CTX_CW = 64;

void context2d_backward_chunk(const float* gf, int64_t n, int H, int W, int Hc, int Wc, const int* rows, int n_rows,
                              int c0, int c1, float* gy, float* gz) {
    float buf[11][CTX_CW];  // this chunk's 11 feature gradients of one row (11 streams n apart, read row-wise)
    for (int i = 0; i < n_rows; ++i) {
        const int r = rows != nullptr ? rows[i] : i;
        for (int k = 0; k < 11; ++k) std::memcpy(buf[k], gf + k * n + (int64_t)i * W + c0, sizeof(float) * (c1 - c0));
        for (int c = c0; c < c1; ++c) {
            float f[11];
            for (int k = 0; k < 11; ++k) f[k] = buf[k][c - c0];
            ctx2d_scatter(f, H, W, Hc, Wc, r, c, gy, gz);
        }
    }
}
}  // namespace

int lg_context2d_backward(const float* gf, int H, int W, int Hc, int Wc, const int* rows, int n_rows, float* gy,
                          float* gz, int threads) {
    if (rows == nullptr) n_rows = H;
    for (int i = 0; rows != nullptr && i < n_rows; ++i)
        if (rows[i] < 0 || rows[i] >= H) return 1;
    const int64_t n = (int64_t)n_rows * W;
    std::fill(gy, gy + (int64_t)H * W, 0.0f);
    if (gz != nullptr) std::fill(gz, gz + (int64_t)Hc * Wc, 0.0f);
    const int n_chunks = (W + CTX_CW - 1) / CTX_CW;
    // chunks are independent only when parents map onto distinct coarse columns (the model's shapes: Wc = ceil(W/2))
    const bool parallel = threads > 1 && n > 65536 && (gz == nullptr || 2 * Wc >= W);
    const int nt = parallel ? threads : 1;
    (void)nt;
    for (int pass = 0; pass < 2; ++pass) {
#pragma omp parallel for schedule(static) num_threads(nt) if (parallel)
        for (int ch = pass; ch < n_chunks; ch += 2)
            context2d_backward_chunk(gf, n, H, W, Hc, Wc, rows, n_rows, ch * CTX_CW, std::min(W, ch * CTX_CW + CTX_CW),
                                     gy, gz);
    }
    return 0;
}

}  // extern "C"

// ---------------------------------------------------------------------------------------------------------------
// Separable resampling of a 2-D latent level onto the output grid (torch reference: _resample_axis along axis 0
// then axis 1, inrcodec/models/latentgrid/upsampling.py). Taps: for output row r, source rows ir[r*k + a] with
// weights wr[r*k + a]; for output column c, source columns ic[c*k + b] with weights wc[c*k + b].
// Columns first, on the small grid, then rows (the same linear map, rounding aside):
//   tmp[i, c] = sum_b wc[c, b] y[i, ic[c, b]]          (h x W: the only gathers, f times fewer than on H x W)
//   out[r, c] = sum_a wr[r, a] tmp[ir[r, a], c]        (H x W: k vectorised row axpys per output row)
// The backward applies the transposed maps: row scatter-adds (column-chunked so threads never share a row), then
// per small row the column scatter.
extern "C" {

int lg_upsample2d_forward(const float* y, int h, int w, const int64_t* ir, const float* wr, const int64_t* ic,
                          const float* wc, int k, int H, int W, float* tmp, float* out, int threads) {
    const int nt = threads > 0 ? threads : 1;
    (void)nt;
#pragma omp parallel num_threads(nt) if ((int64_t)H * W > 65536)
    {
#pragma omp for schedule(static)
        for (int i = 0; i < h; ++i) {
            const float* src = y + (int64_t)i * w;
            float* t = tmp + (int64_t)i * W;
            for (int c = 0; c < W; ++c) {
                float s = 0.0f;
                for (int b = 0; b < k; ++b) s += wc[(int64_t)c * k + b] * src[ic[(int64_t)c * k + b]];
                t[c] = s;
            }
        }
#pragma omp for schedule(static)
        for (int r = 0; r < H; ++r) {
            float* o = out + (int64_t)r * W;
            const float w0 = wr[(int64_t)r * k];
            const float* s0 = tmp + ir[(int64_t)r * k] * W;
#pragma omp simd
            for (int c = 0; c < W; ++c) o[c] = w0 * s0[c];
            for (int a = 1; a < k; ++a) {
                const float wa = wr[(int64_t)r * k + a];
                const float* src = tmp + ir[(int64_t)r * k + a] * W;
#pragma omp simd
                for (int c = 0; c < W; ++c) o[c] += wa * src[c];
            }
        }
    }
    return 0;
}

// gtmp: scratch (h x W).
int lg_upsample2d_backward(const float* g, int h, int w, const int64_t* ir, const float* wr, const int64_t* ic,
                           const float* wc, int k, int H, int W, float* gtmp, float* gy, int threads) {
    const int nt = threads > 0 ? threads : 1;
    (void)nt;
    const int64_t JC = 512;
    const int64_t n_chunks = (W + JC - 1) / JC;
#pragma omp parallel num_threads(nt) if ((int64_t)H * W > 65536)
    {
        // rows of gtmp receive from several output rows: split the columns between threads
#pragma omp for schedule(static)
        for (int64_t jc = 0; jc < n_chunks; ++jc) {
            const int c0 = (int)(jc * JC), c1 = (int)std::min<int64_t>(W, jc * JC + JC);
            for (int i = 0; i < h; ++i) std::fill(gtmp + (int64_t)i * W + c0, gtmp + (int64_t)i * W + c1, 0.0f);
            for (int r = 0; r < H; ++r) {
                const float* gr = g + (int64_t)r * W;
                for (int a = 0; a < k; ++a) {
                    const float wa = wr[(int64_t)r * k + a];
                    float* dst = gtmp + ir[(int64_t)r * k + a] * W;
#pragma omp simd
                    for (int c = c0; c < c1; ++c) dst[c] += wa * gr[c];
                }
            }
        }
#pragma omp for schedule(static)
        for (int i = 0; i < h; ++i) {
            const float* t = gtmp + (int64_t)i * W;
            float* d = gy + (int64_t)i * w;
            for (int j = 0; j < w; ++j) d[j] = 0.0f;
            for (int c = 0; c < W; ++c) {
                const float v = t[c];
                for (int b = 0; b < k; ++b) d[ic[(int64_t)c * k + b]] += wc[(int64_t)c * k + b] * v;
            }
        }
    }
    return 0;
}

}  // extern "C"

// ---------------------------------------------------------------------------------------------------------------
// 2-D convolution C -> C channels, k x k, with replicate padding of k/2 (torch reference: conv2d of
// _replicate_pad(x), inrcodec/models/latentgrid/synthesis.py). oneDNN handles 3-channel convolutions poorly (its
// backward was ~15 % of a step), and plain row axpys were load/store bound (~7 GFLOP/s). Here one register-tiled
// "valid" correlation does both the forward (on a replicate-padded copy) and the input gradient (on a zero-padded
// copy of the output gradient, with flipped, transposed weights): per output row, a tile of COT output channels x
// VT*8 columns stays in registers while every (input channel, tap) adds a broadcast weight times a row load.
// Weight gradients keep, per (input channel, tap row), COT x k accumulators in registers over a row, reduced per
// row into double, per 16-row chunk, chunks summed in order (the same result for any thread count).
// x, out: (C, H, W) contiguous; w: (C, C, k, k); b: (C).
namespace {

// The convolutions' vector: 8 floats on every level (their row loads are unaligned, at every tap offset; a 64-byte
// load crosses a cache line on 15 offsets in 16: 16-float tiles measured 3.8 / 10.6 ms against 2.9 / 8.3 for the
// two residual blocks forward / backward, 768 x 512, Zen 4).
constexpr int CVW = 8;
typedef float vc __attribute__((vector_size(4 * CVW)));
inline vc splatc(float a) { return vc{} + a; }
inline vc loadc(const float* p) { vc v; std::memcpy(&v, p, sizeof(v)); return v; }
inline void storec(float* p, vc v) { std::memcpy(p, &v, sizeof(v)); }
// columns per tile: CONV_VT vectors; COT (3) x 3 accumulators + 3 row vectors + 1 weight = 13 registers
constexpr int CONV_VT = 3;

template <int COT>
void conv_valid_row(const float* in, int Cin, int Hi, int Wi, const float* w, const float* bias, int co0, int K,
                    int r, int Wo, int Ho, float* out) {
    const int KK = K * K;
    int c0 = 0;
    for (; c0 + CVW * CONV_VT <= Wo; c0 += CVW * CONV_VT) {
        vc acc[COT][CONV_VT];
        for (int t = 0; t < COT; ++t)
            for (int v = 0; v < CONV_VT; ++v) acc[t][v] = splatc(bias ? bias[co0 + t] : 0.0f);
        for (int ci = 0; ci < Cin; ++ci) {
            for (int dr = 0; dr < K; ++dr) {
                const float* row = in + ((int64_t)ci * Hi + r + dr) * Wi + c0;
                const float* wt = w + ((int64_t)co0 * Cin + ci) * KK + dr * K;
                for (int dc = 0; dc < K; ++dc) {
                    vc xv[CONV_VT];
                    for (int v = 0; v < CONV_VT; ++v) xv[v] = loadc(row + dc + CVW * v);
                    for (int t = 0; t < COT; ++t) {
                        const vc wv = splatc(wt[(int64_t)t * Cin * KK + dc]);
                        for (int v = 0; v < CONV_VT; ++v) acc[t][v] += wv * xv[v];
                    }
                }
            }
        }
        for (int t = 0; t < COT; ++t)
            for (int v = 0; v < CONV_VT; ++v) storec(out + ((int64_t)(co0 + t) * Ho + r) * Wo + c0 + CVW * v, acc[t][v]);
    }
    for (int t = 0; t < COT; ++t) {  // tail columns
        const int co = co0 + t;
        for (int c = c0; c < Wo; ++c) {
            float s = bias ? bias[co] : 0.0f;
            for (int ci = 0; ci < Cin; ++ci)
                for (int dr = 0; dr < K; ++dr)
                    for (int dc = 0; dc < K; ++dc)
                        s += w[(((int64_t)co * Cin + ci) * K + dr) * K + dc] * in[((int64_t)ci * Hi + r + dr) * Wi + c + dc];
            out[((int64_t)co * Ho + r) * Wo + c] = s;
        }
    }
}

// Valid correlation of in (Cin, Ho + K - 1, Wo + K - 1) with w (Cout, Cin, K, K) into out (Cout, Ho, Wo).
void conv_valid(const float* in, int Cin, const float* w, const float* bias, int Cout, int K, int Ho, int Wo,
                float* out, int nt) {
    const int Hi = Ho + K - 1, Wi = Wo + K - 1;
    (void)nt;
#pragma omp parallel for schedule(static) num_threads(nt) if ((int64_t)Ho * Wo * Cout * Cin * K * K > 200000)
    for (int r = 0; r < Ho; ++r) {
        int co0 = 0;
        for (; co0 + 3 <= Cout; co0 += 3) conv_valid_row<3>(in, Cin, Hi, Wi, w, bias, co0, K, r, Wo, Ho, out);
        if (Cout - co0 == 2) conv_valid_row<2>(in, Cin, Hi, Wi, w, bias, co0, K, r, Wo, Ho, out);
        if (Cout - co0 == 1) conv_valid_row<1>(in, Cin, Hi, Wi, w, bias, co0, K, r, Wo, Ho, out);
    }
}

void pad_copy(const float* x, int C, int H, int W, int p, bool replicate, float* xp, int nt = 1) {
    const int Wp = W + 2 * p, Hp = H + 2 * p;
    (void)nt;
#pragma omp parallel for collapse(2) schedule(static) num_threads(nt) if ((int64_t)C * Hp * Wp > 262144)
    for (int ci = 0; ci < C; ++ci) {
        for (int r = 0; r < Hp; ++r) {
            float* dst = xp + ((int64_t)ci * Hp + r) * Wp;
            if (!replicate && (r < p || r >= p + H)) {
                std::fill(dst, dst + Wp, 0.0f);
                continue;
            }
            const int sr = std::min(std::max(r - p, 0), H - 1);
            const float* src = x + ((int64_t)ci * H + sr) * W;
            for (int c = 0; c < p; ++c) dst[c] = replicate ? src[0] : 0.0f;
            std::memcpy(dst + p, src, sizeof(float) * W);
            for (int c = 0; c < p; ++c) dst[p + W + c] = replicate ? src[W - 1] : 0.0f;
        }
    }
}

// Per row r: g_acc[co][ci][dr][dc] += sum_c g[co][r][c] * xp[ci][r + dr][c + dc]  (co in a tile of COT).
// K is a template parameter so that the COT x K accumulators are registers: with a run-time K the compiler kept
// them on the stack (a load and a store per FMA; the weight gradient took ~2x the rest of the backward).
// The COT x K vector sums of a row are added to vacc (per-lane partials, reduced into double once per chunk of
// rows by the caller: reducing 16 lanes into double per row and tap cost more than the row's FMAs); the tail
// columns' products go straight to gacc (double).
template <int COT, int K>
void conv_wgrad_row(const float* g, const float* xp, int C, int H, int W, int co0, int r, vc* vacc, double* gacc) {
    const int Wp = W + K - 1, Hp = H + K - 1;
    const int nfull = W / CVW * CVW;
    for (int ci = 0; ci < C; ++ci) {
        for (int dr = 0; dr < K; ++dr) {
            const float* xr = xp + ((int64_t)ci * Hp + r + dr) * Wp;
            vc acc[COT][K];
            for (int t = 0; t < COT; ++t)
                for (int dc = 0; dc < K; ++dc) acc[t][dc] = splatc(0.0f);
            for (int c = 0; c < nfull; c += CVW) {
                vc gv[COT];
                for (int t = 0; t < COT; ++t) gv[t] = loadc(g + ((int64_t)(co0 + t) * H + r) * W + c);
                for (int dc = 0; dc < K; ++dc) {
                    const vc xv = loadc(xr + c + dc);
                    for (int t = 0; t < COT; ++t) acc[t][dc] += gv[t] * xv;
                }
            }
            for (int t = 0; t < COT; ++t) {
                const float* gr = g + ((int64_t)(co0 + t) * H + r) * W;
                for (int dc = 0; dc < K; ++dc) {
                    const int64_t idx = (((int64_t)(co0 + t) * C + ci) * K + dr) * K + dc;
                    vacc[idx] += acc[t][dc];
                    if (nfull < W) {
                        double s = 0.0;
                        for (int c = nfull; c < W; ++c) s += (double)gr[c] * xr[c + dc];
                        gacc[idx] += s;
                    }
                }
            }
        }
    }
}

template <int K>
void conv_wgrad_rows(const float* g, const float* xp, int C, int H, int W, int r, vc* vacc, double* gacc) {
    int co0 = 0;
    for (; co0 + 3 <= C; co0 += 3) conv_wgrad_row<3, K>(g, xp, C, H, W, co0, r, vacc, gacc);
    if (C - co0 == 2) conv_wgrad_row<2, K>(g, xp, C, H, W, co0, r, vacc, gacc);
    if (C - co0 == 1) conv_wgrad_row<1, K>(g, xp, C, H, W, co0, r, vacc, gacc);
}

}  // namespace

extern "C" {

int lg_conv2d_forward(const float* x, int C, int H, int W, const float* w, const float* b, int k, float* xp,
                      float* out, int threads) {
    if (k < 1 || k > 5 || (k & 1) == 0) return 1;
    const int p = k / 2;
    pad_copy(x, C, H, W, p, true, xp, threads > 0 ? threads : 1);
    conv_valid(xp, C, w, b, C, k, H, W, out, threads > 0 ? threads : 1);
    return 0;
}

// xp: the padded input of the forward (recomputed here); gxp: scratch (C, H+2p, W+2p). Writes gx (C, H, W),
// gw (C, C, k, k), gb (C).
int lg_conv2d_backward(const float* x, const float* g, int C, int H, int W, const float* w, int k, float* xp,
                       float* gxp, float* gx, float* gw, float* gb, int threads) {
    if (k < 1 || k > 5 || (k & 1) == 0) return 1;  // conv_wgrad_row keeps k <= 5 accumulators per row
    const int p = k / 2, Wp = W + 2 * p, Hp = H + 2 * p;
    const int nt = threads > 0 ? threads : 1;
    (void)nt;
    pad_copy(x, C, H, W, p, true, xp, nt);
    // input gradient on the padded grid: full correlation = valid correlation of g zero-padded by k-1 (= 2p) with
    // the flipped kernel, channels transposed: wf[ci][co][a][b] = w[co][ci][k-1-a][k-1-b]
    // kept between calls (pad_copy writes every element): a fresh 5 MB buffer per call cost more in page faults
    // and zero-filling (~3.5 ms CPU per 768x512 block, measured) than the input-gradient convolution itself
    static thread_local std::vector<float> gpad;
    const size_t gpad_size = (size_t)C * (H + 4 * p) * (W + 4 * p);
    if (gpad.size() < gpad_size) gpad.resize(gpad_size);
    pad_copy(g, C, H, W, 2 * p, false, gpad.data(), nt);
    std::vector<float> wf((size_t)C * C * k * k);
    for (int co = 0; co < C; ++co)
        for (int ci = 0; ci < C; ++ci)
            for (int a = 0; a < k; ++a)
                for (int bb = 0; bb < k; ++bb)
                    wf[(((size_t)ci * C + co) * k + a) * k + bb] = w[(((size_t)co * C + ci) * k + (k - 1 - a)) * k + (k - 1 - bb)];
    conv_valid(gpad.data(), C, wf.data(), nullptr, C, k, Hp, Wp, gxp, nt);
    // replicate padding's backward: the interior rows are copied (threads), then the pad cells' gradients go to
    // the edge samples they copied (a few adds per row)
#pragma omp parallel for collapse(2) schedule(static) num_threads(nt) if ((int64_t)C * H * W > 262144)
    for (int ci = 0; ci < C; ++ci)
        for (int r = 0; r < H; ++r)
            std::memcpy(gx + ((int64_t)ci * H + r) * W, gxp + ((int64_t)ci * Hp + r + p) * Wp + p, sizeof(float) * W);
    for (int ci = 0; ci < C; ++ci) {
        const float* gpi = gxp + (int64_t)ci * Hp * Wp;
        float* gxi = gx + (int64_t)ci * H * W;
        for (int r = 0; r < Hp; ++r) {
            const int sr = std::min(std::max(r - p, 0), H - 1);
            const float* row = gpi + (int64_t)r * Wp;
            float* dst = gxi + (int64_t)sr * W;
            if (r < p || r >= p + H)
                for (int c = 0; c < W; ++c) dst[c] += row[p + c];
            for (int c = 0; c < p; ++c) {
                dst[0] += row[c];
                dst[W - 1] += row[p + W + c];
            }
        }
    }
    // weight and bias gradients: per 16-row chunk a double partial, chunks summed in order
    const int RC = 16;
    const int n_chunks = (H + RC - 1) / RC;
    const int64_t nw = (int64_t)C * C * k * k;
    std::vector<double> parts((size_t)n_chunks * (nw + C), 0.0);
#pragma omp parallel for schedule(static) num_threads(nt) if ((int64_t)H * W * C * C * k * k > 200000)
    for (int ch = 0; ch < n_chunks; ++ch) {
        double* part = parts.data() + (size_t)ch * (nw + C);
        std::vector<vc> vacc((size_t)nw, vc{});
        for (int r = ch * RC; r < std::min(H, ch * RC + RC); ++r) {
            if (k == 1) conv_wgrad_rows<1>(g, xp, C, H, W, r, vacc.data(), part);
            else if (k == 3) conv_wgrad_rows<3>(g, xp, C, H, W, r, vacc.data(), part);
            else conv_wgrad_rows<5>(g, xp, C, H, W, r, vacc.data(), part);
            for (int co = 0; co < C; ++co) {
                const float* gr = g + ((int64_t)co * H + r) * W;
                float s = 0.0f;
#pragma omp simd reduction(+ : s)
                for (int c = 0; c < W; ++c) s += gr[c];
                part[nw + co] += s;
            }
        }
        for (int64_t i = 0; i < nw; ++i) {
            double t = 0.0;
            for (int v = 0; v < CVW; ++v) t += vacc[(size_t)i][v];
            part[i] += t;
        }
    }
    for (int64_t i = 0; i < nw + C; ++i) {
        double s = 0.0;
        for (int ch = 0; ch < n_chunks; ++ch) s += parts[(size_t)ch * (nw + C) + i];
        if (i < nw) gw[i] = (float)s; else gb[i - nw] = (float)s;
    }
    return 0;
}

}  // extern "C"

// ---------------------------------------------------------------------------------------------------------------
// The synthesis' residual block, fused: out = act(x + conv(x)), act = ReLU (all blocks but the last) or identity
// (torch reference: x + conv_replicate_torch(x), then relu; synthesis.py). Saves the block's torch glue per step:
// the residual add, the ReLU and its mask backward, the gradient accumulation of the two uses of x and a
// contiguous copy, each a pass over C x H x W with its own allocation.
// Backward: g' = g * (out > 0) (ReLU) or g; gx = g' + conv_input_grad(g'); gw, gb from g'. gpre: scratch (C, H, W).
extern "C" {

int lg_conv2d_residual_forward(const float* x, int C, int H, int W, const float* w, const float* b, int k,
                               int relu, float* xp, float* out, int threads) {
    const int rc = lg_conv2d_forward(x, C, H, W, w, b, k, xp, out, threads);
    if (rc != 0) return rc;
    const int64_t n = (int64_t)C * H * W;
    const int nt = threads > 0 ? threads : 1;
    (void)nt;
#pragma omp parallel for simd schedule(static) num_threads(nt) if (n > 262144)
    for (int64_t i = 0; i < n; ++i) {
        const float v = out[i] + x[i];
        out[i] = (relu && v < 0.0f) ? 0.0f : v;
    }
    return 0;
}

int lg_conv2d_residual_backward(const float* x, const float* out, const float* g, int C, int H, int W,
                                const float* w, int k, int relu, float* xp, float* gxp, float* gpre, float* gx,
                                float* gw, float* gb, int threads) {
    const int64_t n = (int64_t)C * H * W;
    const int nt = threads > 0 ? threads : 1;
    (void)nt;
    const float* gin = g;
    if (relu) {  // out > 0 exactly where the pre-activation was > 0
#pragma omp parallel for simd schedule(static) num_threads(nt) if (n > 262144)
        for (int64_t i = 0; i < n; ++i) gpre[i] = out[i] > 0.0f ? g[i] : 0.0f;
        gin = gpre;
    }
    const int rc = lg_conv2d_backward(x, gin, C, H, W, w, k, xp, gxp, gx, gw, gb, threads);
    if (rc != 0) return rc;
#pragma omp parallel for simd schedule(static) num_threads(nt) if (n > 262144)
    for (int64_t i = 0; i < n; ++i) gx[i] += gin[i];  // the identity branch
    return 0;
}

}  // extern "C"

// ---------------------------------------------------------------------------------------------------------------
// The entropy coder's context MLP in exact float64 (reference: ExactArm in inrcodec/models/latentgrid/context.py,
// numpy). Weights are dyadic (integer * 2^-e) and every activation is floored to a multiple of 2^-frac_bits and
// clamped to +-cap, so every product and partial sum is exact in float64: the result does not depend on the order
// of the sums (nor on FMA contraction), and equals numpy's bit for bit. numpy spends ~90 % of a latent-grid
// decode in these skinny (n x 11) @ (11 x 16) products; here 64-sample blocks go through all layers in L1,
// 4 doubles per vector. params: per layer W (out, in) then b. feats (n, d0) rows; out (n, dims[L]) rows.
namespace {

typedef double v4d __attribute__((vector_size(32), aligned(32)));
constexpr int NVD = BLK / 4;

inline v4d splatd(double a) { return v4d{a, a, a, a}; }
inline v4d load4d(const double* p) { v4d v; std::memcpy(&v, p, sizeof(v)); return v; }
inline void store4d(double* p, v4d v) { std::memcpy(p, &v, sizeof(v)); }

inline double floor_fixed(double x, double scale, double inv_scale, double cap) {
    return std::fmin(std::fmax(std::floor(x * scale) * inv_scale, -cap), cap);
}

}  // namespace

extern "C" {

int lg_exact_arm(const double* feats, int64_t n, int L, const int* dims, const double* params, int frac_bits,
                 double cap, double* out, int threads) {
    if (L < 1 || L > MAX_LAYERS || n < 0 || frac_bits < 0 || frac_bits > 30) return 1;
    int maxw = 0;
    int64_t off[MAX_LAYERS + 1];
    int64_t o = 0;
    for (int l = 0; l <= L; ++l) {
        if (dims[l] < 1 || dims[l] > 4096) return 1;
        maxw = std::max(maxw, dims[l]);
    }
    for (int l = 0; l < L; ++l) {
        off[l] = o;
        o += (int64_t)dims[l + 1] * dims[l] + dims[l + 1];
    }
    const double scale = std::ldexp(1.0, frac_bits), inv_scale = std::ldexp(1.0, -frac_bits);
    const int64_t n_blocks = (n + BLK - 1) / BLK;
    const int nt = n_threads_for(n_blocks, threads);
    (void)nt;
#pragma omp parallel num_threads(nt)
    {
        std::vector<double> a((size_t)maxw * BLK), b((size_t)maxw * BLK);
#pragma omp for schedule(static)
        for (int64_t blk = 0; blk < n_blocks; ++blk) {
            const int64_t p0 = blk * BLK;
            const int cnt = (int)std::min<int64_t>(BLK, n - p0);
            const int d0 = dims[0];
            for (int i = 0; i < d0; ++i) {
                double* row = a.data() + (size_t)i * BLK;
                for (int p = 0; p < cnt; ++p) row[p] = floor_fixed(feats[(p0 + p) * d0 + i], scale, inv_scale, cap);
                for (int p = cnt; p < BLK; ++p) row[p] = 0.0;
            }
            double* hin = a.data();
            double* hout = b.data();
            for (int l = 0; l < L; ++l) {
                const int din = dims[l], dout = dims[l + 1];
                const double* W = params + off[l];
                const double* bias = W + (int64_t)dout * din;
                const bool relu = l < L - 1;
                for (int j = 0; j < dout; ++j) {
                    v4d acc[NVD];
                    for (int v = 0; v < NVD; ++v) acc[v] = splatd(0.0);
                    for (int k = 0; k < din; ++k) {
                        const v4d wk = splatd(W[(int64_t)j * din + k]);
                        const double* r = hin + (size_t)k * BLK;
                        for (int v = 0; v < NVD; ++v) acc[v] += wk * load4d(r + 4 * v);
                    }
                    double* orow = hout + (size_t)j * BLK;
                    for (int v = 0; v < NVD; ++v) store4d(orow + 4 * v, acc[v]);
                    for (int p = 0; p < BLK; ++p) {
                        double h = floor_fixed(orow[p] + bias[j], scale, inv_scale, cap);
                        orow[p] = relu ? std::fmax(h, 0.0) : h;
                    }
                }
                std::swap(hin, hout);
            }
            const int dl = dims[L];
            for (int p = 0; p < cnt; ++p)
                for (int j = 0; j < dl; ++j) out[(p0 + p) * dl + j] = hin[(size_t)j * BLK + p];
        }
    }
    return 0;
}

}  // extern "C"

// ---------------------------------------------------------------------------------------------------------------
// The coder's context features of a 2-D level in float64 (reference: context_features() in
// inrcodec/models/latentgrid/context.py, which the coder used through ~60 torch ops per pass). Only copies of the
// dequantised latents, zeros, the odd flag and the level position: bit-identical to the reference. parity -1: all
// samples; 0: even samples only; 1: odd only (row-major order, as numpy's boolean indexing returns them).
// feats: (count, 11) rows. Returns the number of rows written.
extern "C" {

int64_t lg_context2d_f64(const double* y, const double* z, int H, int W, int Hc, int Wc, double level_pos,
                         int parity, double* feats) {
    int64_t k = 0;
    for (int r = 0; r < H; ++r) {
        for (int c = 0; c < W; ++c) {
            const bool odd = ((r + c) & 1) != 0;
            if (parity >= 0 && (int)odd != parity) continue;
            ctx2d_sample(y, z, H, W, Hc, Wc, level_pos, r, c, feats + k * 11);
            ++k;
        }
    }
    return k;
}

}  // extern "C"
