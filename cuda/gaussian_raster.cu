// CUDA twin of gaussian_raster_cpu.cpp: tile-based accumulated-sum rasterisation of 2D Gaussians, forward and
// backward, behind a C ABI on raw device pointers (loaded with ctypes by inrcodec/kernels/_loader.py; no torch
// headers, so it builds with plain nvcc: nvcc -O3 -shared -Xcompiler -fPIC --cudart=static -arch=sm_XY).
//
// Same layout and model as the CPU kernel (see gaussian_raster_math.h): means (N,2), chol (N,3), colors (N,C),
// image (H,W,C) float32 row-major; C <= 4 per call (the python side splits wider colours into groups).
//
// Pipeline (all on the caller's stream; temporary buffers from the stream-ordered allocator):
//   1. k_setup: per Gaussian conic/bbox (gr_setup) and the number of tiles it touches;
//   2. exclusive scan -> Gaussian-major entry offsets; one device->host copy of the total;
//   3. k_emit: (tile, entry) pairs, entry = Gaussian-major index; stable radix sort by tile, so every tile
//      lists its Gaussians in increasing id order (deterministic sums);
//   4. k_ranges: [start, end) of each tile in the sorted list;
//   5. forward: one 16x16 block per tile, Gaussians staged through shared memory in batches.
//      backward: per (tile, Gaussian) pair the block reduces its pixels' partial sums (warp shuffles, then
//      across warps through shared memory) into the pair's own slot; k_reduce sums each Gaussian's
//      contiguous slots and applies the chain rule (gr_chain). No atomics: bitwise reproducible.
#include <cuda_runtime.h>
#include <stdint.h>

#include <cub/cub.cuh>

#include "gaussian_raster_math.h"

namespace {

constexpr int T = GR_TILE;
constexpr int NT = GR_TILE * GR_TILE;  // threads per block, one per pixel of the tile
constexpr int NWARP = NT / 32;
constexpr int FWD_BATCH = NT;
constexpr int BWD_BATCH = 32;
constexpr unsigned FULL = 0xffffffffu;

// Tiles touched by Gaussian i (same rule as for_each_tile in the CPU kernel). Writes them to `out` when it is
// not null; returns how many.
__device__ int visit_tiles(const float* means, const float* chol, int i, const GrGauss& g, int cull, int tiles_x,
                           uint32_t* out) {
    if (g.x0 > g.x1 || g.y0 > g.y1) return 0;
    const int tr0 = g.y0 / T, tr1 = g.y1 / T, tc0 = g.x0 / T, tc1 = g.x1 / T;
    int n = 0;
    if (tr0 == tr1 || tc0 == tc1 || !cull) {
        for (int tr = tr0; tr <= tr1; ++tr)
            for (int tc = tc0; tc <= tc1; ++tc) {
                if (out) out[n] = (uint32_t)(tr * tiles_x + tc);
                ++n;
            }
        return n;
    }
    float a, b, c, det;
    gr_sigma(chol[3 * i], chol[3 * i + 1], chol[3 * i + 2], &a, &b, &c, &det);
    const float mx = means[2 * i], my = means[2 * i + 1];
    for (int tr = tr0; tr <= tr1; ++tr) {
        const int r0 = max(g.y0, tr * T), r1 = min(g.y1, tr * T + T - 1);
        int lo, hi;
        gr_band_columns(mx, my, a, b, c, det, r0 + 0.5f, r1 + 0.5f, &lo, &hi);
        lo = max(lo, g.x0);
        hi = min(hi, g.x1);
        for (int tc = lo / T; lo <= hi && tc <= hi / T; ++tc) {
            if (out) out[n] = (uint32_t)(tr * tiles_x + tc);
            ++n;
        }
    }
    return n;
}

__global__ void k_setup(int N, const float* __restrict__ means, const float* __restrict__ chol, int H, int W,
                        int tiles_x, GrGauss* __restrict__ g, int* __restrict__ cull, int* __restrict__ counts) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= N) return;
    GrGauss gg;
    const float l11 = chol[3 * i], l21 = chol[3 * i + 1], l22 = chol[3 * i + 2];
    int cu = 0;
    if (gr_setup(means[2 * i], means[2 * i + 1], l11, l21, l22, H, W, &gg)) {
        float a, b, c, det;
        gr_sigma(l11, l21, l22, &a, &b, &c, &det);
        cu = gr_well_conditioned(a, c, det);
    }
    g[i] = gg;
    cull[i] = cu;
    counts[i] = visit_tiles(means, chol, i, gg, cu, tiles_x, nullptr);
}

__global__ void k_emit(int N, const float* __restrict__ means, const float* __restrict__ chol,
                       const GrGauss* __restrict__ g, const int* __restrict__ cull, const int* __restrict__ offsets,
                       int tiles_x, uint32_t* __restrict__ keys, int* __restrict__ vals, int* __restrict__ gid_of) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= N) return;
    const int off = offsets[i];
    const int n = visit_tiles(means, chol, i, g[i], cull[i], tiles_x, keys + off);
    for (int k = 0; k < n; ++k) {
        vals[off + k] = off + k;
        gid_of[off + k] = i;
    }
}

__global__ void k_ranges(int M, const uint32_t* __restrict__ keys, int* __restrict__ start, int* __restrict__ end) {
    const int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= M) return;
    const uint32_t t = keys[j];
    if (j == 0 || keys[j - 1] != t) start[t] = j;
    if (j == M - 1 || keys[j + 1] != t) end[t] = j + 1;
}

template <int C>
__global__ void __launch_bounds__(NT) k_render_fwd(int H, int W, int tiles_x, const int* __restrict__ tstart,
                                                   const int* __restrict__ tend, const int* __restrict__ order,
                                                   const int* __restrict__ gid_of, const GrGauss* __restrict__ g,
                                                   const float* __restrict__ colors, float* __restrict__ out) {
    __shared__ GrGauss sg[FWD_BATCH];
    __shared__ float scol[FWD_BATCH * C];
    const int tile = blockIdx.x;
    const int tid = threadIdx.y * T + threadIdx.x;
    const int x = (tile % tiles_x) * T + threadIdx.x, y = (tile / tiles_x) * T + threadIdx.y;
    const bool inside = x < W && y < H;
    const float px = (float)x + 0.5f, py = (float)y + 0.5f;
    float acc[C];
#pragma unroll
    for (int c = 0; c < C; ++c) acc[c] = 0.0f;
    const int start = tstart[tile], end = tend[tile];
    for (int b = start; b < end; b += FWD_BATCH) {
        __syncthreads();
        if (b + tid < end) {
            const int i = gid_of[order[b + tid]];
            sg[tid] = g[i];
#pragma unroll
            for (int c = 0; c < C; ++c) scol[tid * C + c] = colors[(int64_t)i * C + c];
        }
        __syncthreads();
        const int n = min(FWD_BATCH, end - b);
        if (!inside) continue;
        for (int k = 0; k < n; ++k) {
            const GrGauss& G = sg[k];
            if (x < G.x0 || x > G.x1 || y < G.y0 || y > G.y1) continue;
            const float q = gr_q(&G, px, py);
            if (q <= GR_QMAX) {
                const float w = __expf(-0.5f * q);
#pragma unroll
                for (int c = 0; c < C; ++c) acc[c] += w * scol[k * C + c];
            }
        }
    }
    if (inside) {
#pragma unroll
        for (int c = 0; c < C; ++c) out[((int64_t)y * W + x) * C + c] = acc[c];
    }
}

template <int C>
__global__ void __launch_bounds__(NT) k_render_bwd(int H, int W, int tiles_x, const int* __restrict__ tstart,
                                                   const int* __restrict__ tend, const int* __restrict__ order,
                                                   const int* __restrict__ gid_of, const GrGauss* __restrict__ g,
                                                   const float* __restrict__ colors,
                                                   const float* __restrict__ grad_out, float* __restrict__ slots) {
    constexpr int S = 5 + C;
    __shared__ GrGauss sg[BWD_BATCH];
    __shared__ float scol[BWD_BATCH * C];
    __shared__ int sent[BWD_BATCH];
    __shared__ float part[NWARP][BWD_BATCH][S];
    const int tile = blockIdx.x;
    const int tid = threadIdx.y * T + threadIdx.x;
    const int lane = tid & 31, warp = tid >> 5;
    const int x = (tile % tiles_x) * T + threadIdx.x, y = (tile / tiles_x) * T + threadIdx.y;
    const bool inside = x < W && y < H;
    const float px = (float)x + 0.5f, py = (float)y + 0.5f;
    float gpix[C];
#pragma unroll
    for (int c = 0; c < C; ++c) gpix[c] = inside ? grad_out[((int64_t)y * W + x) * C + c] : 0.0f;
    const int start = tstart[tile], end = tend[tile];
    for (int b = start; b < end; b += BWD_BATCH) {
        __syncthreads();
        if (tid < BWD_BATCH && b + tid < end) {
            const int e = order[b + tid];
            const int i = gid_of[e];
            sent[tid] = e;
            sg[tid] = g[i];
#pragma unroll
            for (int c = 0; c < C; ++c) scol[tid * C + c] = colors[(int64_t)i * C + c];
        }
        __syncthreads();
        const int n = min(BWD_BATCH, end - b);
        for (int k = 0; k < n; ++k) {  // uniform trip count: every lane takes part in the shuffles
            const GrGauss& G = sg[k];
            float v[S];
#pragma unroll
            for (int s = 0; s < S; ++s) v[s] = 0.0f;
            bool hit = false;
            if (inside && x >= G.x0 && x <= G.x1 && y >= G.y0 && y <= G.y1) {
                const float dx = GR_SUB(px, G.mx), dy = GR_SUB(py, G.my);
                const float q = gr_q(&G, px, py);
                if (q <= GR_QMAX) {
                    hit = true;
                    const float w = __expf(-0.5f * q);
                    float gd = 0.0f;
#pragma unroll
                    for (int c = 0; c < C; ++c) {
                        gd += scol[k * C + c] * gpix[c];
                        v[5 + c] = w * gpix[c];
                    }
                    const float gq = -0.5f * w * gd;
                    v[0] = gq * dx;
                    v[1] = gq * dy;
                    v[2] = v[0] * dx;
                    v[3] = v[0] * dy;
                    v[4] = v[1] * dy;
                }
            }
            if (__any_sync(FULL, hit)) {
#pragma unroll
                for (int s = 0; s < S; ++s)
                    for (int off = 16; off > 0; off >>= 1) v[s] += __shfl_down_sync(FULL, v[s], off);
            }
            if (lane == 0) {
#pragma unroll
                for (int s = 0; s < S; ++s) part[warp][k][s] = v[s];
            }
        }
        __syncthreads();
        for (int idx = tid; idx < n * S; idx += NT) {
            const int k = idx / S, s = idx % S;
            float sum = 0.0f;
#pragma unroll
            for (int w = 0; w < NWARP; ++w) sum += part[w][k][s];
            slots[(int64_t)sent[k] * S + s] = sum;
        }
    }
}

template <int C>
__global__ void k_reduce(int N, const float* __restrict__ chol, const GrGauss* __restrict__ g,
                         const int* __restrict__ offsets, const int* __restrict__ counts,
                         const float* __restrict__ slots, float* __restrict__ grad_means,
                         float* __restrict__ grad_chol, float* __restrict__ grad_colors) {
    constexpr int S = 5 + C;
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= N) return;
    float s[S];
#pragma unroll
    for (int k = 0; k < S; ++k) s[k] = 0.0f;
    for (int e = offsets[i]; e < offsets[i] + counts[i]; ++e) {
#pragma unroll
        for (int k = 0; k < S; ++k) s[k] += slots[(int64_t)e * S + k];
    }
#pragma unroll
    for (int c = 0; c < C; ++c) grad_colors[(int64_t)i * C + c] = s[5 + c];
    if (counts[i] == 0) {
        grad_means[2 * i] = grad_means[2 * i + 1] = 0.0f;
        grad_chol[3 * i] = grad_chol[3 * i + 1] = grad_chol[3 * i + 2] = 0.0f;
        return;
    }
    gr_chain(chol[3 * i], chol[3 * i + 1], chol[3 * i + 2], s[0], s[1], s[2], s[3], s[4],
             grad_means + 2 * i, grad_means + 2 * i + 1, grad_chol + 3 * i, grad_chol + 3 * i + 1,
             grad_chol + 3 * i + 2);
}

// Error codes: 0 ok, 1 bad arguments, 2 too many (tile, Gaussian) pairs, 1000 + cudaError_t otherwise.
#define GR_CK(expr)                                         \
    do {                                                    \
        const cudaError_t err_ = (expr);                    \
        if (err_ != cudaSuccess) return 1000 + (int)err_;   \
    } while (0)

// Device buffers of one binning, released on the stream when it goes out of scope.
struct Binning {
    cudaStream_t st;
    int N = 0, M = 0, ntiles = 0, tiles_x = 0;
    GrGauss* g = nullptr;
    int *cull = nullptr, *counts = nullptr, *offsets = nullptr;
    uint32_t *keys = nullptr, *keys_sorted = nullptr;
    int *vals = nullptr, *order = nullptr, *gid_of = nullptr, *tstart = nullptr, *tend = nullptr;
    void* temp = nullptr;

    explicit Binning(cudaStream_t s) : st(s) {}
    ~Binning() {
        void* ptrs[] = {g, cull, counts, offsets, keys, keys_sorted, vals, order, gid_of, tstart, tend, temp};
        for (void* p : ptrs)
            if (p) cudaFreeAsync(p, st);
    }
    template <class P>
    cudaError_t alloc(P** p, size_t n) {
        return cudaMallocAsync((void**)p, n * sizeof(P) + 16, st);  // +16: never a zero-byte request
    }

    int run(const float* means, const float* chol, int N_, int H, int W) {
        N = N_;
        tiles_x = (W + T - 1) / T;
        const int tiles_y = (H + T - 1) / T;
        ntiles = tiles_x * tiles_y;
        GR_CK(alloc(&g, N));
        GR_CK(alloc(&cull, N));
        GR_CK(alloc(&counts, N));
        GR_CK(alloc(&offsets, N));
        GR_CK(alloc(&tstart, ntiles));
        GR_CK(alloc(&tend, ntiles));
        GR_CK(cudaMemsetAsync(tstart, 0, ntiles * sizeof(int), st));
        GR_CK(cudaMemsetAsync(tend, 0, ntiles * sizeof(int), st));
        if (N == 0) return 0;
        const int bs = 256;
        k_setup<<<(N + bs - 1) / bs, bs, 0, st>>>(N, means, chol, H, W, tiles_x, g, cull, counts);
        GR_CK(cudaGetLastError());
        size_t temp_bytes = 0;
        GR_CK(cub::DeviceScan::ExclusiveSum(nullptr, temp_bytes, counts, offsets, N, st));
        GR_CK(alloc((char**)&temp, temp_bytes));
        GR_CK(cub::DeviceScan::ExclusiveSum(temp, temp_bytes, counts, offsets, N, st));
        int last_off = 0, last_cnt = 0;
        GR_CK(cudaMemcpyAsync(&last_off, offsets + N - 1, sizeof(int), cudaMemcpyDeviceToHost, st));
        GR_CK(cudaMemcpyAsync(&last_cnt, counts + N - 1, sizeof(int), cudaMemcpyDeviceToHost, st));
        GR_CK(cudaStreamSynchronize(st));
        const int64_t total = (int64_t)last_off + last_cnt;
        if (total > INT32_MAX / 16) return 2;
        M = (int)total;
        if (M == 0) return 0;
        GR_CK(alloc(&keys, M));
        GR_CK(alloc(&keys_sorted, M));
        GR_CK(alloc(&vals, M));
        GR_CK(alloc(&order, M));
        GR_CK(alloc(&gid_of, M));
        k_emit<<<(N + bs - 1) / bs, bs, 0, st>>>(N, means, chol, g, cull, offsets, tiles_x, keys, vals, gid_of);
        GR_CK(cudaGetLastError());
        int end_bit = 1;
        while ((1 << end_bit) < ntiles) ++end_bit;
        size_t sort_bytes = 0;
        GR_CK(cub::DeviceRadixSort::SortPairs(nullptr, sort_bytes, keys, keys_sorted, vals, order, M, 0, end_bit,
                                              st));
        cudaFreeAsync(temp, st);
        temp = nullptr;
        GR_CK(alloc((char**)&temp, sort_bytes));
        GR_CK(cub::DeviceRadixSort::SortPairs(temp, sort_bytes, keys, keys_sorted, vals, order, M, 0, end_bit, st));
        k_ranges<<<(M + bs - 1) / bs, bs, 0, st>>>(M, keys_sorted, tstart, tend);
        GR_CK(cudaGetLastError());
        return 0;
    }
};

template <int C>
int forward_c(const float* means, const float* chol, const float* colors, int N, int H, int W, float* out,
              cudaStream_t st) {
    Binning bn(st);
    const int rc = bn.run(means, chol, N, H, W);
    if (rc) return rc;
    k_render_fwd<C><<<bn.ntiles, dim3(T, T), 0, st>>>(H, W, bn.tiles_x, bn.tstart, bn.tend, bn.order, bn.gid_of,
                                                       bn.g, colors, out);
    GR_CK(cudaGetLastError());
    return 0;
}

template <int C>
int backward_c(const float* means, const float* chol, const float* colors, int N, int H, int W,
               const float* grad_out, float* grad_means, float* grad_chol, float* grad_colors, cudaStream_t st) {
    Binning bn(st);
    const int rc = bn.run(means, chol, N, H, W);
    if (rc) return rc;
    float* slots = nullptr;
    GR_CK(bn.alloc(&slots, (size_t)bn.M * (5 + C)));
    if (bn.M > 0) {
        k_render_bwd<C><<<bn.ntiles, dim3(T, T), 0, st>>>(H, W, bn.tiles_x, bn.tstart, bn.tend, bn.order,
                                                           bn.gid_of, bn.g, colors, grad_out, slots);
        GR_CK(cudaGetLastError());
    }
    const int bs = 256;
    k_reduce<C><<<(N + bs - 1) / bs, bs, 0, st>>>(N, chol, bn.g, bn.offsets, bn.counts, slots, grad_means,
                                                  grad_chol, grad_colors);
    const cudaError_t err = cudaGetLastError();
    cudaFreeAsync(slots, st);
    GR_CK(err);
    return 0;
}

}  // namespace

extern "C" {

int gr_cuda_abi_version(void) { return 1; }

const char* gr_cuda_error_string(int code) {
    if (code == 0) return "no error";
    if (code == 1) return "invalid arguments (sizes, or more than 4 channels)";
    if (code == 2) return "too many (tile, Gaussian) pairs";
    if (code >= 1000) return cudaGetErrorString((cudaError_t)(code - 1000));
    return "unknown error";
}

// out: (H, W, C) on the device, fully overwritten. device: the tensors' CUDA device index (this library links
// its own static runtime, whose current device is not torch's). stream: a cudaStream_t (torch's current stream).
int gr_forward_cuda(const float* means, const float* chol, const float* colors, int64_t N, int C, int H, int W,
                    float* out, int device, void* stream) {
    if (N < 0 || N > INT32_MAX || C < 1 || C > 4 || H < 0 || W < 0) return 1;
    if (H == 0 || W == 0) return 0;
    GR_CK(cudaSetDevice(device));
    cudaStream_t st = (cudaStream_t)stream;
    switch (C) {
        case 1: return forward_c<1>(means, chol, colors, (int)N, H, W, out, st);
        case 2: return forward_c<2>(means, chol, colors, (int)N, H, W, out, st);
        case 3: return forward_c<3>(means, chol, colors, (int)N, H, W, out, st);
        default: return forward_c<4>(means, chol, colors, (int)N, H, W, out, st);
    }
}

// Gradients (N,2), (N,3), (N,C) on the device, fully overwritten.
int gr_backward_cuda(const float* means, const float* chol, const float* colors, int64_t N, int C, int H, int W,
                     const float* grad_out, float* grad_means, float* grad_chol, float* grad_colors, int device,
                     void* stream) {
    if (N < 0 || N > INT32_MAX || C < 1 || C > 4 || H < 0 || W < 0) return 1;
    if (N == 0) return 0;
    GR_CK(cudaSetDevice(device));
    cudaStream_t st = (cudaStream_t)stream;
    if (H == 0 || W == 0) {
        GR_CK(cudaMemsetAsync(grad_means, 0, sizeof(float) * 2 * N, st));
        GR_CK(cudaMemsetAsync(grad_chol, 0, sizeof(float) * 3 * N, st));
        GR_CK(cudaMemsetAsync(grad_colors, 0, sizeof(float) * C * N, st));
        return 0;
    }
    switch (C) {
        case 1: return backward_c<1>(means, chol, colors, (int)N, H, W, grad_out, grad_means, grad_chol, grad_colors, st);
        case 2: return backward_c<2>(means, chol, colors, (int)N, H, W, grad_out, grad_means, grad_chol, grad_colors, st);
        case 3: return backward_c<3>(means, chol, colors, (int)N, H, W, grad_out, grad_means, grad_chol, grad_colors, st);
        default: return backward_c<4>(means, chol, colors, (int)N, H, W, grad_out, grad_means, grad_chol, grad_colors, st);
    }
}

}  // extern "C"
