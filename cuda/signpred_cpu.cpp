// Compiled copy of one round of the residual's sign prediction (inrcodec/models/signpred.py: ``_Kind.contributions``,
// ``_Kind.mine``, ``_Kind.targets``, ``predict``, and the update of the lines after the round's signs are known).
//
// Exactness: every value is an integer. A coefficient's contribution to a line is floor(|deq| x basis x 2^-shift),
// computed in double exactly as numpy does (|deq| x basis < 2^29, a power-of-two scale, floor); everything after it
// is int64 (lines < 2^21, operator values < 2^24, g < 2^47, Gram < 2^38, costs < 2^53), so the costs equal the
// numpy reference's float64 values (also exact) and the same hypothesis and margin class come out.
// tests/test_signpred.py holds this against the numpy path on random and real inputs.
#include <math.h>
#include <stdint.h>

#include <vector>

namespace {

// floor of a value below 2^31 in magnitude (a contribution: |deq| <= 2^16, |basis| <= 8100, scale <= 2^-14, below
// 2^15; a line: below 2^23), without a libm call (no SSE4.1 round is assumed); int32 truncation vectorises
inline double floor_exact(double v) {
    double t = (double)(int32_t)v;  // truncation toward zero
    return t > v ? t - 1.0 : t;
}

// sum of a[q] b[q], q < n (n a multiple of 8): four partial sums, so the additions do not wait on each other (the
// values are integers whose sums stay below 2^53: exact in any order)
inline double dot(const double* a, const double* b, int n) {
    double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
    for (int q = 0; q < n; q += 4) {
        s0 += a[q] * b[q];
        s1 += a[q + 1] * b[q + 1];
        s2 += a[q + 2] * b[q + 2];
        s3 += a[q + 3] * b[q + 3];
    }
    return (s0 + s1) + (s2 + s3);
}

}  // namespace

extern "C" {

// n units; per unit: blocks (n, m) flat block ids into full (nfull, 4, 2, 8); nb (n, S) the block across each
// half-side, ok (n, S) whether it is used; spec (S, 2): (which of the unit's blocks, side); sel (n, K) slot of each
// predicted coefficient (-1: none), absdeq (n, m * 64) |dequantised coefficients|; basis (m * 64, S, 2, 8);
// op (a0, a1, b1, b2); edges (nedges) margin thresholds. Out: pred (n, K) +1 / -1, cls (n, K). Returns 0, or 1 on
// arguments out of range.
int sp_predict_round(const double* full, int64_t nfull, const int64_t* blocks, int m, const int64_t* nb,
                     const uint8_t* ok, int S, const int32_t* spec, const int64_t* sel, int K, const double* absdeq,
                     const double* basis, double scale, const int32_t* op, const double* edges, int nedges,
                     int64_t n, double* pred, int64_t* cls) {
    if (K < 1 || K > 12 || S < 1 || S > 8 || m < 1 || m > 4) return 1;
    for (int h = 0; h < S; ++h)
        if (spec[2 * h] < 0 || spec[2 * h] >= m || spec[2 * h + 1] < 0 || spec[2 * h + 1] > 3) return 1;
    const int L = S * 2 * 8;  // lines of a unit
    const double a0 = op[0], a1 = op[1], b1 = op[2], b2 = op[3];
    const int H = 1 << K;
    // doubles hold integers here: operator values < 2^24, contributions' < 2^16, dot products < 2^47, costs < 2^53
    // (see the header): exact, and cheaper than int64 multiplies without AVX-512
    std::vector<double> e0(S * 8), c((size_t)K * S * 8), g(K), gram((size_t)K * K), t(K), cost(H), s(K);
    std::vector<double> m0(K), m1(K);
    for (int64_t i = 0; i < n; ++i) {
        int E = 0;  // the used half-sides' operator values, packed
        int used[8];
        for (int h = 0; h < S; ++h) {
            int64_t blk = blocks[i * m + spec[2 * h]];
            int64_t nbk = nb[i * S + h];
            if (blk < 0 || blk >= nfull || nbk < 0 || nbk >= nfull) return 1;
            if (!ok[i * S + h]) continue;
            int side = spec[2 * h + 1];
            const double* own = full + (blk * 4 + side) * 16;
            const double* nbl = full + (nbk * 4 + (side ^ 1)) * 16;  // top <-> bottom, left <-> right
            for (int x = 0; x < 8; ++x) e0[E + x] = a0 * own[x] + a1 * own[8 + x] + b1 * nbl[x] + b2 * nbl[8 + x];
            used[E / 8] = h;
            E += 8;
        }
        for (int k = 0; k < K; ++k) {  // the contributions on the used half-sides only
            int64_t slot = sel[i * K + k];
            bool empty = slot < 0 || slot >= m * 64;
            double mag = empty ? 0.0 : absdeq[i * m * 64 + slot];
            for (int u = 0; u < E / 8; ++u) {
                double l[16];
                if (empty) {
                    for (int q = 0; q < 16; ++q) l[q] = 0.0;
                } else {
                    const double* b = basis + slot * L + used[u] * 16;
                    for (int q = 0; q < 16; ++q) l[q] = floor_exact(mag * b[q] * scale);
                }
                for (int x = 0; x < 8; ++x) c[k * E + u * 8 + x] = a0 * l[x] + a1 * l[8 + x];
            }
        }
        for (int k = 0; k < K; ++k) {
            g[k] = dot(&c[k * E], e0.data(), E);
            for (int j = k; j < K; ++j) gram[k * K + j] = gram[j * K + k] = dot(&c[k * E], &c[j * E], E);
        }
        // half the cost less constants, C(s) = sum_k s_k g_k + sum_{k<j} s_k s_j G_kj, over the hypotheses in Gray
        // code order: flipping s_k changes C by -2 s_k t_k, t_k = g_k + sum_{j != k} s_j G_kj (bit k of h: s_k = -1)
        double cur = 0.0;
        for (int k = 0; k < K; ++k) {
            s[k] = 1.0;
            cur += g[k];
            for (int j = k + 1; j < K; ++j) cur += gram[k * K + j];
        }
        for (int k = 0; k < K; ++k) {
            double v = g[k];
            for (int j = 0; j < K; ++j)
                if (j != k) v += gram[k * K + j];
            t[k] = v;
        }
        cost[0] = cur;
        int code = 0;
        for (int step = 1; step < H; ++step) {
            int k = __builtin_ctz(step);  // the bit a Gray code flips at this step
            cur -= 2.0 * s[k] * t[k];
            double ds = -2.0 * s[k];  // s_k's change
            s[k] = -s[k];
            for (int j = 0; j < K; ++j)
                if (j != k) t[j] += ds * gram[j * K + k];
            code ^= 1 << k;
            cost[code] = cur;
        }
        // per bit k the least cost with s_k = +1 / -1: fold the table from the top bit down (its halves are bit k =
        // 0 / 1 once the bits above are folded away), branch-free
        int size = H;
        for (int k = K - 1; k >= 0; --k) {
            int half = size >> 1;
            double lo = INFINITY, hi = INFINITY;
            for (int h = 0; h < half; ++h) {
                double a = cost[h], b = cost[half + h];
                lo = a < lo ? a : lo;
                hi = b < hi ? b : hi;
                cost[h] = a < b ? a : b;
            }
            m0[k] = lo;
            m1[k] = hi;
            size = half;
        }
        for (int k = 0; k < K; ++k) {
            pred[i * K + k] = m0[k] <= m1[k] ? 1.0 : -1.0;
            double margin = m0[k] > m1[k] ? m0[k] - m1[k] : m1[k] - m0[k];
            double norm = 2.0 * gram[k * K + k];
            int64_t cl_ = 0;
            if (norm != 0.0)
                for (int q = 0; q < nedges; ++q) cl_ += margin >= edges[q] * norm;
            cls[i * K + k] = cl_;
        }
    }
    return 0;
}

// After a round: the units' lines += sum_k sign_k cl_k (sign 0 for empty slots), written back into full; the
// contributions cl_k recomputed as sp_predict_round computes them (cheaper than storing them: memory-bound).
int sp_apply_round(double* full, int64_t nfull, const int64_t* blocks, int m, int S, const int32_t* spec,
                   const int64_t* sel, int K, const double* absdeq, const double* basis, double scale,
                   const double* sign, int64_t n) {
    if (S < 1 || S > 8 || m < 1 || m > 4) return 1;
    for (int h = 0; h < S; ++h)
        if (spec[2 * h] < 0 || spec[2 * h] >= m || spec[2 * h + 1] < 0 || spec[2 * h + 1] > 3) return 1;
    const int L = S * 2 * 8;
    for (int64_t i = 0; i < n * m; ++i)  // every index checked before anything is written
        if (blocks[i] < 0 || blocks[i] >= nfull) return 1;
    std::vector<double> acc(L);
    for (int64_t i = 0; i < n; ++i) {
        for (int q = 0; q < L; ++q) acc[q] = 0.0;
        for (int k = 0; k < K; ++k) {  // integers: exact in any order
            int64_t slot = sel[i * K + k];
            const double sg = sign[i * K + k];
            if (slot < 0 || slot >= m * 64 || sg == 0.0) continue;
            double mag = absdeq[i * m * 64 + slot];
            const double* b = basis + slot * L;
            for (int q = 0; q < L; ++q) acc[q] += sg * floor_exact(mag * b[q] * scale);
        }
        for (int s = 0; s < S; ++s) {
            double* own = full + (blocks[i * m + spec[2 * s]] * 4 + spec[2 * s + 1]) * 16;
            for (int t = 0; t < 16; ++t) own[t] += acc[s * 16 + t];
        }
    }
    return 0;
}

// Border lines of n units from their (n, M) signed dequantised coefficients: floor(sum_slot deq x basis[slot] x
// scale), (n, W); the sum over the non-zero coefficients only (most are zero), exact integers below 2^38.
int sp_lines(const double* deq, int64_t n, int M, const double* basis, int W, double scale, double* out) {
    if (M < 1 || W < 1 || W > 256) return 1;
    double acc[256];
    for (int64_t i = 0; i < n; ++i) {
        for (int q = 0; q < W; ++q) acc[q] = 0.0;
        const double* d = deq + i * M;
        for (int slot = 0; slot < M; ++slot) {
            const double v = d[slot];
            if (v == 0.0) continue;
            const double* b = basis + (int64_t)slot * W;
            for (int q = 0; q < W; ++q) acc[q] += v * b[q];
        }
        double* o = out + i * W;
        for (int q = 0; q < W; ++q) o[q] = floor_exact(acc[q] * scale);
    }
    return 0;
}

}  // extern "C"
