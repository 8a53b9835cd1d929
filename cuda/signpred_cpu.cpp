// Compiled sign prediction of the residual (inrcodec/models/signpred.py). ``sp_walk`` is the whole sign pass of
// ``signpred._walk`` in one call (units and their selection, the raw signs, the known border lines, per phase and
// round the hypothesis search, the adaptive "wrong" bits with their own ANS decoder (cuda/ans_cpu.h), the lines'
// update): decoding a stream, or, for the encoder, the bits and contexts it codes. ``sp_predict_round`` /
// ``sp_apply_round`` / ``sp_lines`` are one round's pieces (the Python walk's compiled helpers).
//
// Exactness: every value is an integer. A coefficient's contribution to a line is floor(|deq| x basis x 2^-shift),
// computed in double exactly as numpy does (|deq| x basis < 2^29, a power-of-two scale, floor); everything after it
// is int64 (lines < 2^21, operator values < 2^24, g < 2^47, Gram < 2^38, costs < 2^53), so the costs equal the
// numpy reference's float64 values (also exact) and the same hypothesis and margin class come out.
// tests/test_signpred.py holds this against the numpy path on random and real inputs.
#include <math.h>
#include <stdlib.h>
#include <stdint.h>

#include <algorithm>
#include <vector>

#include "ans_cpu.h"

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



const int MAXK = 12, MAXS = 8;

// one unit's hypothesis search (the body of sp_predict_round); scratch
struct Search {
    double e0[MAXS * 8], c[MAXK * MAXS * 8], g[MAXK], gram[MAXK * MAXK], t[MAXK], s[MAXK], m0[MAXK], m1[MAXK];
    double cost[1 << MAXK];
};

// blk (m) the unit's block ids, nb / ok (S) the block across each half-side and whether it is used (ids checked by
// the caller), sel (K) the slots, mag (K) their |dequantised| values (0 where the slot is empty, sel < 0)
void predict_unit(const double* full, const int64_t* blk, const int64_t* nb, const uint8_t* ok, int S,
                  const int32_t* spec, const int64_t* sel, const double* mag, int K, const double* basis, int L,
                  double scale, const double* op, const double* edges, int nedges, Search& w, double* pred,
                  int64_t* cls) {
    const double a0 = op[0], a1 = op[1], b1 = op[2], b2 = op[3];
    const int H = 1 << K;
    int E = 0;  // the used half-sides' operator values, packed
    int used[MAXS];
    for (int h = 0; h < S; ++h) {
        if (!ok[h]) continue;
        const int side = spec[2 * h + 1];
        const double* own = full + (blk[spec[2 * h]] * 4 + side) * 16;
        const double* nbl = full + (nb[h] * 4 + (side ^ 1)) * 16;  // top <-> bottom, left <-> right
        for (int x = 0; x < 8; ++x) w.e0[E + x] = a0 * own[x] + a1 * own[8 + x] + b1 * nbl[x] + b2 * nbl[8 + x];
        used[E / 8] = h;
        E += 8;
    }
    double* c = w.c;
    for (int k = 0; k < K; ++k) {  // the contributions on the used half-sides only
        const bool empty = sel[k] < 0;
        for (int u = 0; u < E / 8; ++u) {
            double l[16];
            if (empty) {
                for (int q = 0; q < 16; ++q) l[q] = 0.0;
            } else {
                const double* b = basis + sel[k] * L + used[u] * 16;
                for (int q = 0; q < 16; ++q) l[q] = floor_exact(mag[k] * b[q] * scale);
            }
            for (int x = 0; x < 8; ++x) c[k * E + u * 8 + x] = a0 * l[x] + a1 * l[8 + x];
        }
    }
    double *g = w.g, *gram = w.gram, *t = w.t, *s = w.s, *cost = w.cost;
    for (int k = 0; k < K; ++k) {
        g[k] = dot(&c[k * E], w.e0, E);
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
        const int k = __builtin_ctz(step);  // the bit a Gray code flips at this step
        cur -= 2.0 * s[k] * t[k];
        const double ds = -2.0 * s[k];  // s_k's change
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
        const int half = size >> 1;
        double lo = INFINITY, hi = INFINITY;
        for (int h = 0; h < half; ++h) {
            const double a = cost[h], b = cost[half + h];
            lo = a < lo ? a : lo;
            hi = b < hi ? b : hi;
            cost[h] = a < b ? a : b;
        }
        w.m0[k] = lo;
        w.m1[k] = hi;
        size = half;
    }
    for (int k = 0; k < K; ++k) {
        pred[k] = w.m0[k] <= w.m1[k] ? 1.0 : -1.0;
        const double margin = w.m0[k] > w.m1[k] ? w.m0[k] - w.m1[k] : w.m1[k] - w.m0[k];
        const double norm = 2.0 * gram[k * K + k];
        int64_t cl_ = 0;
        if (norm != 0.0)
            for (int q = 0; q < nedges; ++q) cl_ += margin >= edges[q] * norm;
        cls[k] = cl_;
    }
}

// the unit's lines += sum_k sign_k cl_k (sign 0: nothing), the contributions recomputed as predict_unit computes
// them (cheaper than storing them: memory-bound)
void apply_unit(double* full, const int64_t* blk, int S, const int32_t* spec, const int64_t* sel, const double* mag,
                const double* sign, int K, const double* basis, int L, double scale) {
    double acc[MAXS * 16];
    for (int q = 0; q < L; ++q) acc[q] = 0.0;
    for (int k = 0; k < K; ++k) {  // integers: exact in any order
        const double sg = sign[k];
        if (sel[k] < 0 || sg == 0.0) continue;
        const double* b = basis + sel[k] * L;
        for (int q = 0; q < L; ++q) acc[q] += sg * floor_exact(mag[k] * b[q] * scale);
    }
    for (int h = 0; h < S; ++h) {
        double* own = full + (blk[spec[2 * h]] * 4 + spec[2 * h + 1]) * 16;
        for (int t = 0; t < 16; ++t) own[t] += acc[h * 16 + t];
    }
}

bool spec_ok(const int32_t* spec, int S, int m) {
    if (S < 1 || S > MAXS || m < 1 || m > 4) return false;
    for (int h = 0; h < S; ++h)
        if (spec[2 * h] < 0 || spec[2 * h] >= m || spec[2 * h + 1] < 0 || spec[2 * h + 1] > 3) return false;
    return true;
}

// signpred._BLOCK_SIDES / _GROUP_SIDES: (which of the unit's blocks, side of that block) per half-side
const int32_t BLOCK_SPEC[8] = {0, 0, 0, 1, 0, 2, 0, 3};
const int32_t GROUP_SPEC[16] = {0, 0, 1, 0, 2, 1, 3, 1, 0, 2, 2, 2, 1, 3, 3, 3};
const int STEP_Y[4] = {-1, 1, 0, 0}, STEP_X[4] = {0, 0, -1, 1};

// the units of one kind and phase over all channels (signpred._Kind): rows channel-major, units in raster order
struct Plan {
    bool group = false;
    int m = 1, S = 4, rounds = 0, R = 0;
    const int32_t* spec = BLOCK_SPEC;
    const double* basis = nullptr;
    const int64_t* weight = nullptr;
    double scale = 0.0, clamp = 0.0;
    int64_t n = 0;
    std::vector<int64_t> blk, nb, sel;  // (n, m), (n, S), (n, R)
    std::vector<uint8_t> ok;            // (n, S)
    std::vector<int> ch;
};

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
    if (K < 1 || K > MAXK || !spec_ok(spec, S, m)) return 1;
    const double opd[4] = {(double)op[0], (double)op[1], (double)op[2], (double)op[3]};
    Search w;
    for (int64_t i = 0; i < n; ++i) {
        int64_t s[MAXK];
        double mag[MAXK];
        for (int h = 0; h < S; ++h) {
            const int64_t blk = blocks[i * m + spec[2 * h]], nbk = nb[i * S + h];
            if (blk < 0 || blk >= nfull || nbk < 0 || nbk >= nfull) return 1;
        }
        for (int k = 0; k < K; ++k) {
            const int64_t slot = sel[i * K + k];
            s[k] = slot < 0 || slot >= m * 64 ? -1 : slot;
            mag[k] = s[k] < 0 ? 0.0 : absdeq[i * m * 64 + slot];
        }
        predict_unit(full, blocks + i * m, nb + i * S, ok + i * S, S, spec, s, mag, K, basis, S * 16, scale, opd,
                     edges, nedges, w, pred + i * K, cls + i * K);
    }
    return 0;
}

// After a round: the units' lines += sum_k sign_k cl_k (sign 0 for empty slots), written back into full.
int sp_apply_round(double* full, int64_t nfull, const int64_t* blocks, int m, int S, const int32_t* spec,
                   const int64_t* sel, int K, const double* absdeq, const double* basis, double scale,
                   const double* sign, int64_t n) {
    if (K < 1 || K > MAXK || !spec_ok(spec, S, m)) return 1;
    for (int64_t i = 0; i < n * m; ++i)  // every index checked before anything is written
        if (blocks[i] < 0 || blocks[i] >= nfull) return 1;
    for (int64_t i = 0; i < n; ++i) {
        int64_t s[MAXK];
        double mag[MAXK];
        for (int k = 0; k < K; ++k) {
            const int64_t slot = sel[i * K + k];
            s[k] = slot < 0 || slot >= m * 64 ? -1 : slot;
            mag[k] = s[k] < 0 ? 0.0 : absdeq[i * m * 64 + slot];
        }
        apply_unit(full, blocks + i * m, S, spec, s, mag, sign + i * K, K, basis, S * 16, scale);
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


// The whole sign pass of signpred._walk. q (C * BY * BX, 64) int16: decoding (words given), the magnitudes in and
// the signed symbols out; encoding (words null), the signed symbols, and out come the raw signs' bits (raw_neg,
// n_raw), the "wrong" bits with their contexts in coding order (wrong, ctx, n_bits) and how many of them each
// (phase 1..5, round) codes (seg, 5 x maxr): the Python side codes them with constriction, the same stream.
// tx16 (BY, BX) the blocks of 16x16 groups or null; per (C, 64) steps per zigzag position; basis8 (64, 4, 2, 8) /
// basis16 (256, 8, 2, 8) and weight8 / weight16 as signpred's; ranks (K x maxr) the rank class of each selected
// place. Returns 0; 1 arguments out of range; 2 a malformed 16x16 mask; 4 a stream that does not end exactly where
// it must (sentinel, empty coder); 5 out of memory. Decoding, the caller trusts q only on 0 (else the Python walk
// decodes, with its own errors).
int sp_walk(const uint32_t* words, int64_t nwords, int C, int BY, int BX, int16_t* q, const double* per,
            const uint8_t* tx16, const double* basis8, const double* basis16, const int64_t* weight8,
            const int64_t* weight16, int K, int rounds8, int rounds16, const int32_t* ranks, int nranks, int shift8,
            int shift16, double clamp8, double clamp16, const int32_t* op, const double* edges, int nedges,
            uint8_t* raw_neg, int64_t* n_raw, int32_t* wrong, int32_t* ctx_out, int64_t* n_bits, int64_t* seg) {
    using namespace ans_cpu;
    if (C < 1 || C > 3 || BY < 1 || BX < 1 || K < 1 || K > MAXK || rounds8 < 1 || rounds16 < 1 || rounds8 > 8 ||
        rounds16 > 8 || nranks < 1 || nedges < 0 || nedges > 8 || shift8 < 0 || shift8 > 30 || shift16 < 0 ||
        shift16 > 30)
        return 1;
    const int maxr = std::max(rounds8, rounds16);
    for (int i = 0; i < K * maxr; ++i)
        if (ranks[i] < 0 || ranks[i] >= nranks) return 1;
    const bool decoding = words != nullptr;
    try {
        const int64_t nblk = (int64_t)BY * BX, tot = C * nblk;
        const int NMC = nedges + 1, NCTX = nranks * NMC * 4;
        const double opd[4] = {(double)op[0], (double)op[1], (double)op[2], (double)op[3]};
        // signpred.block_phases
        std::vector<uint8_t> phase(nblk);
        for (int y = 0; y < BY; ++y)
            for (int x = 0; x < BX; ++x)
                phase[(int64_t)y * BX + x] = tx16 && tx16[(int64_t)y * BX + x] ? (uint8_t)(4 + ((y / 2 + x / 2) & 1))
                                                                                 : (uint8_t)(2 * (y & 1) + (x & 1));
        Plan plans[6];
        std::vector<uint8_t> predicted(tot * 64, 0);
        std::vector<std::pair<double, int>> cand;
        for (int p = 1; p <= 5; ++p) {
            Plan& u = plans[p];
            u.group = p >= 4;
            u.m = u.group ? 4 : 1;
            u.S = u.group ? 8 : 4;
            u.spec = u.group ? GROUP_SPEC : BLOCK_SPEC;
            u.rounds = u.group ? rounds16 : rounds8;
            u.R = K * u.rounds;
            u.basis = u.group ? basis16 : basis8;
            u.weight = u.group ? weight16 : weight8;
            u.scale = std::ldexp(1.0, -(u.group ? shift16 : shift8));
            u.clamp = u.group ? clamp16 : clamp8;
            for (int ch = 0; ch < C; ++ch)
                for (int y = 0; y < BY; ++y)
                    for (int x = 0; x < BX; ++x) {
                        const int64_t b = (int64_t)y * BX + x;
                        if (phase[b] != p || (u.group && ((y | x) & 1))) continue;
                        int64_t bl[4] = {b, b + 1, b + BX, b + BX + 1};
                        if (u.group) {  // a group is a whole 2x2 of the grid, all of it in the same phase
                            if (y + 1 >= BY || x + 1 >= BX) return 2;
                            for (int j = 0; j < 4; ++j)
                                if (phase[bl[j]] != p) return 2;
                        }
                        const int64_t off = ch * nblk;
                        bool any_ok = false;
                        for (int h = 0; h < u.S; ++h) {
                            const int j = u.spec[2 * h], side = u.spec[2 * h + 1];
                            const int64_t yy = bl[j] / BX + STEP_Y[side], xx = bl[j] % BX + STEP_X[side];
                            const bool inside = yy >= 0 && yy < BY && xx >= 0 && xx < BX;
                            const int64_t nbk = inside ? yy * BX + xx : 0;
                            const bool use = inside && phase[nbk] < p;
                            u.nb.push_back(off + nbk);
                            u.ok.push_back(use);
                            any_ok |= use;
                        }
                        for (int j = 0; j < u.m; ++j) u.blk.push_back(off + bl[j]);
                        u.ch.push_back(ch);
                        // the selection: the R non-zero slots of the largest |q| x step x weight (ties: the lower
                        // slot first, as a stable argsort), where the unit has a usable side
                        const size_t at = u.sel.size();
                        u.sel.resize(at + u.R, -1);
                        cand.clear();
                        if (any_ok)
                            for (int slot = 0; slot < u.m * 64; ++slot) {
                                const int a = std::abs((int)q[(off + bl[slot / 64]) * 64 + slot % 64]);
                                if (!a) continue;
                                const double score = ((double)a * per[ch * 64 + slot % 64]) * (double)u.weight[slot];
                                if (score > 0.0) cand.push_back({-score, slot});
                            }
                        const size_t take = std::min<size_t>(cand.size(), u.R);
                        std::partial_sort(cand.begin(), cand.begin() + take, cand.end());
                        for (size_t k = 0; k < take; ++k) {
                            const int slot = cand[k].second;
                            u.sel[at + k] = slot;
                            predicted[(off + bl[slot / 64]) * 64 + slot % 64] = 1;
                        }
                        ++u.n;
                    }
        }
        Ans a;
        if (decoding && !a.init(words, nwords)) return 4;
        // the raw signs, block-major
        int64_t nr = 0;
        for (int64_t i = 0; i < tot * 64; ++i) {
            if (!q[i] || predicted[i]) continue;
            if (decoding) {
                if (decode_uniform2(a)) q[i] = (int16_t)-q[i];
            } else {
                raw_neg[nr++] = q[i] < 0;
            }
        }
        if (!decoding) *n_raw = nr;
        // the known lines: 8x8 blocks from their own coefficients, groups' outer half-sides from the group's
        std::vector<double> full(tot * 64, 0.0);
        for (int64_t r = 0; r < tot; ++r) {
            const int ch = (int)(r / nblk);
            if (phase[r % nblk] >= 4) continue;
            const int16_t* v = q + r * 64;
            double acc[64];
            bool any = false;
            for (int t = 0; t < 64; ++t) acc[t] = 0.0;
            for (int slot = 0; slot < 64; ++slot) {
                if (!v[slot] || predicted[r * 64 + slot]) continue;
                double d = std::min(std::abs((double)v[slot]) * per[ch * 64 + slot], clamp8);
                if (v[slot] < 0) d = -d;
                const double* b = basis8 + slot * 64;
                for (int t = 0; t < 64; ++t) acc[t] += d * b[t];
                any = true;
            }
            if (!any) continue;
            const double sc = std::ldexp(1.0, -shift8);
            for (int t = 0; t < 64; ++t) full[r * 64 + t] = floor_exact(acc[t] * sc);
        }
        for (int p = 4; p <= 5; ++p) {
            const Plan& u = plans[p];
            for (int64_t i = 0; i < u.n; ++i) {
                double acc[128];
                for (int t = 0; t < 128; ++t) acc[t] = 0.0;
                const int ch = u.ch[i];
                for (int slot = 0; slot < 256; ++slot) {
                    const int64_t at = u.blk[i * 4 + slot / 64] * 64 + slot % 64;
                    if (!q[at] || predicted[at]) continue;
                    double d = std::min(std::abs((double)q[at]) * per[ch * 64 + slot % 64], clamp16);
                    if (q[at] < 0) d = -d;
                    const double* b = basis16 + slot * 128;
                    for (int t = 0; t < 128; ++t) acc[t] += d * b[t];
                }
                for (int h = 0; h < 8; ++h) {
                    double* own = full.data() + (u.blk[i * 4 + GROUP_SPEC[2 * h]] * 4 + GROUP_SPEC[2 * h + 1]) * 16;
                    for (int t = 0; t < 16; ++t) own[t] = floor_exact(acc[h * 16 + t] * u.scale);
                }
            }
        }
        // per phase and round: predict every unit's next K signs, code the "wrong" bits, update the lines
        std::vector<double> stats((size_t)NCTX * 2, 0.5);
        Search w;
        std::vector<int64_t> rows, bounds;
        std::vector<double> pred, mag;
        std::vector<int64_t> cls;
        std::vector<int32_t> ctx, bits;
        int64_t nb_out = 0;
        for (int p = 1; p <= 5; ++p)
            for (int r = 0; r < maxr; ++r) {
                if (!decoding) seg[(p - 1) * maxr + r] = 0;
                const Plan& u = plans[p];
                if (r >= u.rounds) continue;
                rows.clear();
                for (int64_t i = 0; i < u.n; ++i)
                    if (u.sel[i * u.R + r * K] >= 0) rows.push_back(i);
                if (rows.empty()) continue;
                const size_t n = rows.size();
                pred.resize(n * K);
                mag.resize(n * K);
                cls.resize(n * K);
                ctx.clear();
                for (size_t t = 0; t < n; ++t) {
                    const int64_t i = rows[t];
                    const int64_t* s = u.sel.data() + i * u.R + r * K;
                    for (int k = 0; k < K; ++k)
                        mag[t * K + k] = s[k] < 0 ? 0.0
                                                  : std::min(std::abs((double)q[u.blk[i * u.m + s[k] / 64] * 64 +
                                                                                s[k] % 64]) *
                                                                 per[u.ch[i] * 64 + s[k] % 64],
                                                             u.clamp);
                    predict_unit(full.data(), u.blk.data() + i * u.m, u.nb.data() + i * u.S, u.ok.data() + i * u.S,
                                 u.S, u.spec, s, &mag[t * K], K, u.basis, u.S * 16, u.scale, opd, edges, nedges, w,
                                 &pred[t * K], &cls[t * K]);
                    for (int k = 0; k < K; ++k)
                        if (s[k] >= 0)
                            ctx.push_back((int32_t)((((int64_t)ranks[r * K + k] * NMC + cls[t * K + k]) * 2 +
                                                     std::min(u.ch[i], 1)) * 2 + u.group));
                }
                bits.resize(ctx.size());
                if (decoding) {
                    chunked_bern(a, reinterpret_cast<double(*)[2]>(stats.data()), NCTX, ctx.data(),
                                 (int64_t)ctx.size(), bits.data(), bounds);
                } else {
                    size_t at = 0;
                    for (size_t t = 0; t < n; ++t) {
                        const int64_t i = rows[t];
                        const int64_t* s = u.sel.data() + i * u.R + r * K;
                        for (int k = 0; k < K; ++k)
                            if (s[k] >= 0) {
                                const bool neg = q[u.blk[i * u.m + s[k] / 64] * 64 + s[k] % 64] < 0;
                                bits[at++] = neg != (pred[t * K + k] < 0);
                            }
                    }
                    for (size_t j = 0; j < ctx.size(); ++j) {
                        wrong[nb_out + j] = bits[j];
                        ctx_out[nb_out + j] = ctx[j];
                    }
                    nb_out += (int64_t)ctx.size();
                    seg[(p - 1) * maxr + r] = (int64_t)ctx.size();
                }
                size_t at = 0;
                for (size_t t = 0; t < n; ++t) {
                    const int64_t i = rows[t];
                    const int64_t* s = u.sel.data() + i * u.R + r * K;
                    double sign[MAXK];
                    for (int k = 0; k < K; ++k) {
                        sign[k] = 0.0;
                        if (s[k] < 0) continue;
                        sign[k] = bits[at++] ? -pred[t * K + k] : pred[t * K + k];
                        int16_t& v = q[u.blk[i * u.m + s[k] / 64] * 64 + s[k] % 64];
                        const int16_t mg = (int16_t)std::abs((int)v);
                        v = sign[k] < 0 ? (int16_t)-mg : mg;
                    }
                    apply_unit(full.data(), u.blk.data() + i * u.m, u.S, u.spec, s, &mag[t * K], sign, K, u.basis,
                               u.S * 16, u.scale);
                }
            }
        if (!decoding) {
            *n_bits = nb_out;
            return 0;
        }
        if (decode_uniform2(a) != 1 || a.n != 0 || a.state != 0 || a.bad) return 4;
        return 0;
    } catch (...) {
        return 5;
    }
}

}  // extern "C"
