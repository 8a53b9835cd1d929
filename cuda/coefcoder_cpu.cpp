// Compiled decoder of the format-2 residual symbols (inrcodec/models/coefcoder.py, ``decode``): the same walk
// (coded-block flags, then per frequency diagonal the magnitudes and "last" flags, then the signs) with its own
// ANS decoder, reproducing constriction's (32-bit words, 64-bit state, 24-bit probabilities; ``Categorical`` and
// ``Bernoulli`` with perfect=False, ``Uniform(2)``). Every model probability is computed with the IEEE operations of
// the Python walk, in its order (no FMA: see the build flags), so the same stream gives the same symbols.
//
// Safety: the caller trusts a result only when this returns 0, which needs the stream to end exactly where the
// reference's does (the sentinel decoded and the coder empty, as entropy.coding._finish checks); anything else
// (a malformed stream, or a model this port would quantise differently, which desynchronises the ANS state) returns
// non-zero and the Python reference decodes instead, with its own errors. tests/test_coefcoder_kernel.py holds the
// two against each other on real and random residuals.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "ans_cpu.h"

namespace {

const int N64 = 64;
const int K = 18, ESC = 17, CLASSES = 20;
const int LAST_CTX = 20, CBF_CTX = 24;
const double PRIOR = 4.0, MAG_DECAY = 0.25, FLAG_DECAY = 0.5;
const int GROUP_MIN = 2048;
const int OWN_W4 = 4, NB_W4 = 1, LUMA_W4 = 2;
using namespace ans_cpu;  // Ans, Cat, the binary models, CHUNKS / CHUNK_MIN
static_assert(K <= CAT_MAX, "Cat holds the magnitude alphabet");

// coefcoder._geometric_rows: (CLASSES, 3) counts -> (CLASSES, K) pmf rows
void geometric_rows(const double (*st)[3], double (*rows)[K]) {
    for (int c = 0; c < CLASSES; ++c) {
        const double n0 = st[c][0], nn = st[c][1], sm = st[c][2];
        const double z = (n0 + 0.5 * PRIOR) / (n0 + nn + PRIOR);
        const double mean = (sm + 0.5 * PRIOR) / (nn + 0.5 * PRIOR);
        const double r = mean / (1.0 + mean);
        double* row = rows[c];
        row[0] = z;
        row[1] = (1.0 - z) * (1.0 - r);
        for (int j = 2; j < K; ++j) row[j] = r;
        for (int j = 2; j < K; ++j) row[j] = row[j - 1] * row[j];
        row[ESC] *= 1.0 / (1.0 - r);
    }
}

// a walk's end (both formats): the signs, block-major over the non-zeros (unless the dct section codes them in
// their own stream, format 7 with sign prediction: the magnitudes stay unsigned); then the sentinel and an empty
// coder (entropy.coding._finish). 0 when the stream ended exactly as the reference requires, else 4
int finish_walk(Ans& a, int16_t* out, int64_t tot, bool with_signs, int64_t nesc, int64_t* n_escape) {
    if (with_signs)
        for (int64_t i = 0; i < tot * N64; ++i)
            if (out[i] && decode_uniform2(a)) out[i] = (int16_t)-out[i];
    if (decode_uniform2(a) != 1 || a.n != 0 || a.state != 0 || a.bad) return 4;
    *n_escape = nesc;
    return 0;
}

// coefcoder._Reader.cat's two ways of decoding the magnitudes of one chunk, classes cls[lo..hi) of nc, with the
// chunk's per-class tables rows[nc][K]; models: nc tables of scratch (formats 2 and 7 share this)
void decode_chunk(Ans& a, const double (*rows)[K], int nc, Cat* models, const int16_t* cls, int64_t lo, int64_t hi,
                  int16_t* m, std::vector<int64_t>& order) {
    const int64_t len = hi - lo;
    if (len >= GROUP_MIN) {  // class by class, in class order, each in the order of appearance
        std::vector<int64_t> cnt(nc + 1, 0);
        for (int64_t i = lo; i < hi; ++i) ++cnt[cls[i] + 1];
        for (int c = 0; c < nc; ++c) cnt[c + 1] += cnt[c];
        order.resize(len);
        std::vector<int64_t> pos(cnt.begin(), cnt.end() - 1);
        for (int64_t i = lo; i < hi; ++i) order[pos[cls[i]]++] = i;
        for (int c = 0; c < nc; ++c) {
            if (cnt[c + 1] == cnt[c]) continue;
            Cat& model = models[c];
            model.build(rows[c], K);
            if (!model.ok) a.bad = true;
            for (int64_t j = cnt[c]; j < cnt[c + 1]; ++j) m[order[j]] = (int16_t)model.decode(a);
        }
    } else {  // symbol by symbol; a class's table is the same for the whole chunk, so it is quantised once
        std::vector<char> built(nc, 0);
        for (int64_t i = lo; i < hi; ++i) {
            const int c = cls[i];
            if (!built[c]) {
                models[c].build(rows[c], K);
                if (!models[c].ok) a.bad = true;
                built[c] = 1;
            }
            m[i] = (int16_t)models[c].decode(a);
        }
    }
}

// coefcoder._chunked_cat: magnitudes of classes cls[0..n) into m
void chunked_cat(Ans& a, double (*st)[3], const int16_t* cls, int64_t n, int16_t* m, std::vector<int64_t>& bounds,
                 std::vector<int64_t>& order) {
    chunk_bounds(n, bounds);
    double rows[CLASSES][K];
    Cat models[CLASSES];
    for (size_t t = 0; t + 1 < bounds.size(); ++t) {
        const int64_t lo = bounds[t], hi = bounds[t + 1];
        if (lo >= hi) continue;
        geometric_rows(st, rows);
        decode_chunk(a, rows, CLASSES, models, cls, lo, hi, m, order);
        int64_t h[CLASSES][K];
        memset(h, 0, sizeof h);
        for (int64_t i = lo; i < hi; ++i) ++h[cls[i]][m[i]];
        for (int c = 0; c < CLASSES; ++c) {
            int64_t nz = 0, s = 0;
            for (int k = 1; k < K; ++k) {
                nz += h[c][k];
                s += h[c][k] * (k - 1);
            }
            st[c][0] += (double)h[c][0];
            st[c][1] += (double)nz;
            st[c][2] += (double)s;
        }
    }
}

// coefcoder._coded_block_flags: per channel, two checkerboard halves
void coded_block_flags(Ans& a, int C, int BY, int BX, std::vector<int32_t>& cbf, std::vector<int64_t>& bounds) {
    const int64_t nblk = (int64_t)BY * BX;
    double cst[CBF_CTX][2];
    for (auto& s : cst) s[0] = s[1] = 0.5;
    std::vector<int32_t> ctx, bits;
    std::vector<int64_t> where;
    for (int ch = 0; ch < C; ++ch) {
        int32_t* cb = cbf.data() + ch * nblk;
        for (int half = 0; half < 2; ++half) {
            ctx.clear();
            where.clear();
            for (int y = 0; y < BY; ++y)
                for (int x = 0; x < BX; ++x) {
                    if (((y + x) & 1) != half) continue;
                    const int64_t b = (int64_t)y * BX + x;
                    int32_t k = 5;
                    if (half) {
                        k = 0;
                        if (x > 0) k += cb[b - 1];
                        if (x < BX - 1) k += cb[b + 1];
                        if (y > 0) k += cb[b - BX];
                        if (y < BY - 1) k += cb[b + BX];
                    }
                    if (ch >= 1) k += 6 * cbf[b];
                    if (ch >= 2) k += 12 * cbf[nblk + b];
                    ctx.push_back(k);
                    where.push_back(b);
                }
            bits.resize(ctx.size());
            chunked_bern(a, cst, CBF_CTX, ctx.data(), (int64_t)ctx.size(), bits.data(), bounds);
            for (size_t i = 0; i < where.size(); ++i) cb[where[i]] = bits[i];
        }
    }
}


// -- format 7 (inrcodec/models/coefcoder7.py): checkerboard halves per pass, per (class, place on the diagonal) a
// histogram over a three-parameter class pmf, 16 refreshes, last flags with the diagonal's magnitude sum
namespace v7 {
// NCLS class sets of CLASSES: the two halves' (2), with the 16x16 groups known (TOOL_GROUPS) also a group's top-left
// block and its other three (4); arrays are sized for 4, a Model uses ncls of them
const int NCLS = 4 * CLASSES, WHERE = 3, NFINE = NCLS * WHERE, SAME_W4 = 4;
const int GROUP_FLAG_CTX = 6 * 3;  // image_tx16.FLAG_CTX
const int CHUNKS7 = 16, CHUNK_MIN7 = 256, LAST_CTX7 = LAST_CTX * 3;
const double TAU = 16.0, PRIOR1 = 2.0;

struct Model {
    double coarse[NCLS][4];
    double hist[NFINE][K];
    double total[NFINE];
    int ncls;
    explicit Model(int n = 2 * CLASSES) {
        memset(this, 0, sizeof *this);
        ncls = n;
    }
    void decay() {
        for (auto& r : coarse) for (double& v : r) v *= MAG_DECAY;
        for (auto& r : hist) for (double& v : r) v *= MAG_DECAY;
        for (double& v : total) v *= MAG_DECAY;
    }
    // coefcoder7._Model.table, the same IEEE operations in the same order
    void table(double (*rows)[K]) const {
        for (int c = 0; c < ncls; ++c) {
            const double n0 = coarse[c][0], n1 = coarse[c][1], n2 = coarse[c][2], s2 = coarse[c][3];
            const double z = (n0 + 0.5 * PRIOR) / (n0 + n1 + n2 + PRIOR);
            const double p1 = (n1 + 0.5 * PRIOR1) / (n1 + n2 + PRIOR1);
            const double mean = (s2 + 0.5 * PRIOR) / (n2 + 0.5 * PRIOR);
            const double r = mean / (1.0 + mean);
            double row[K];
            row[0] = z;
            row[1] = (1.0 - z) * p1;
            row[2] = (1.0 - z) * (1.0 - p1) * (1.0 - r);
            for (int j = 3; j < K; ++j) row[j] = r;
            for (int j = 3; j < K; ++j) row[j] = row[j - 1] * row[j];
            row[ESC] *= 1.0 / (1.0 - r);
            for (int w = 0; w < WHERE; ++w) {
                const int f = c * WHERE + w;
                const double den = total[f] + TAU;
                for (int j = 0; j < K; ++j) rows[f][j] = (hist[f][j] + TAU * row[j]) / den;
            }
        }
    }
    void update(const int16_t* k, const int16_t* m, int64_t n) {
        static thread_local int64_t h[NFINE][K];
        memset(h, 0, sizeof h[0] * ncls * WHERE);
        for (int64_t i = 0; i < n; ++i) ++h[k[i]][m[i]];
        for (int f = 0; f < ncls * WHERE; ++f) {
            int64_t t = 0;
            for (int j = 0; j < K; ++j) {
                hist[f][j] += (double)h[f][j];
                t += h[f][j];
            }
            total[f] += (double)t;
        }
        for (int c = 0; c < ncls; ++c) {
            int64_t z = 0, one = 0, two = 0, tail = 0;
            for (int w = 0; w < WHERE; ++w) {
                const int64_t* r = h[c * WHERE + w];
                z += r[0];
                one += r[1];
                for (int j = 2; j < K; ++j) two += r[j], tail += r[j] * (j - 2);
            }
            coarse[c][0] += (double)z;
            coarse[c][1] += (double)one;
            coarse[c][2] += (double)two;
            coarse[c][3] += (double)tail;
        }
    }
};

// coefcoder7._chunked_cat with coefcoder._Reader.cat's two ways of coding a chunk
void chunked_cat(Ans& a, Model& mod, const int16_t* cls, int64_t n, int16_t* m, std::vector<int64_t>& bounds,
                 std::vector<int64_t>& order) {
    chunk_bounds(n, bounds, CHUNKS7, CHUNK_MIN7);
    static thread_local double rows[NFINE][K];
    static thread_local Cat models[NFINE];
    for (size_t t = 0; t + 1 < bounds.size(); ++t) {
        const int64_t lo = bounds[t], hi = bounds[t + 1];
        if (lo >= hi) continue;
        mod.table(rows);
        const int64_t len = hi - lo;
        decode_chunk(a, rows, mod.ncls * WHERE, models, cls, lo, hi, m, order);
        mod.update(cls + lo, m + lo, len);
    }
}
// coefcoder7._group_flags: image_tx16.code_flags's two halves over the (GY, GX) groups, each group that has a coded
// block in any channel, context 3 x (its neighbours' flags, 5 in the first half) + class of its count of coded
// (block, channel) flags (image_tx16.NNZ_EDGES 3, 9); gmask / tl (nblk): the grouped blocks, their top-left ones
void group_flags(Ans& a, int C, int BY, int BX, const std::vector<int32_t>& cbf, uint8_t* flags, int GY, int GX,
                 std::vector<uint8_t>& gmask, std::vector<uint8_t>& tl, std::vector<int64_t>& bounds) {
    const int64_t nblk = (int64_t)BY * BX;
    std::vector<int32_t> cnt((size_t)GY * GX, 0), fl((size_t)GY * GX, 0), ctx, bits;
    std::vector<int64_t> where;
    for (int gy = 0; gy < GY; ++gy)
        for (int gx = 0; gx < GX; ++gx)
            for (int ch = 0; ch < C; ++ch)
                for (int dy = 0; dy < 2; ++dy)
                    for (int dx = 0; dx < 2; ++dx)
                        cnt[(size_t)gy * GX + gx] += cbf[ch * nblk + (int64_t)(2 * gy + dy) * BX + 2 * gx + dx];
    double st[GROUP_FLAG_CTX][2];
    for (auto& v : st) v[0] = v[1] = 0.5;
    for (int half = 0; half < 2; ++half) {
        ctx.clear();
        where.clear();
        for (int gy = 0; gy < GY; ++gy)
            for (int gx = 0; gx < GX; ++gx) {
                const int64_t g = (int64_t)gy * GX + gx;
                if (((gy + gx) & 1) != half || !cnt[g]) continue;
                int32_t nb = 5;
                if (half) {
                    nb = 0;
                    if (gx > 0) nb += fl[g - 1];
                    if (gx < GX - 1) nb += fl[g + 1];
                    if (gy > 0) nb += fl[g - GX];
                    if (gy < GY - 1) nb += fl[g + GX];
                }
                ctx.push_back(nb * 3 + (cnt[g] >= 9 ? 2 : cnt[g] >= 3 ? 1 : 0));
                where.push_back(g);
            }
        bits.resize(ctx.size());
        chunked_bern(a, st, GROUP_FLAG_CTX, ctx.data(), (int64_t)ctx.size(), bits.data(), bounds);
        for (size_t i = 0; i < where.size(); ++i) fl[where[i]] = bits[i];
    }
    gmask.assign(nblk, 0);
    tl.assign(nblk, 0);
    for (int gy = 0; gy < GY; ++gy)
        for (int gx = 0; gx < GX; ++gx) {
            const int64_t g = (int64_t)gy * GX + gx;
            flags[g] = (uint8_t)fl[g];
            if (!fl[g]) continue;
            for (int dy = 0; dy < 2; ++dy)
                for (int dx = 0; dx < 2; ++dx) gmask[(int64_t)(2 * gy + dy) * BX + 2 * gx + dx] = 1;
            tl[(int64_t)(2 * gy) * BX + 2 * gx] = 1;
        }
}
}  // namespace v7

}  // namespace

extern "C" {

// payload: the ANS words of a format-2 residual (nwords u32, little-endian, zero-padded as entropy.coding does);
// up/left: (64,) zigzag index of the coefficient above / left of each position (64 = none); starts: (16,) where each
// frequency diagonal starts in zigzag order (and 64); class_table: context value -> class (ntable entries).
// out: (C * BY * BX, 64) int16, block-major, fully written: signed magnitudes, |v| = 17 where an escape follows.
// n_escape: escapes to read from the blob after the stream. Returns 0 when the stream decoded and ended exactly as
// the reference requires; non-zero otherwise (then nothing in out is to be used).
static int decode_walk(const uint32_t* payload, int64_t nwords, int C, int BY, int BX, const int64_t* up,
                       const int64_t* left, const int64_t* starts, const int16_t* class_table, int64_t ntable,
                       int16_t* out, int64_t* n_escape, bool with_signs) {
    if (C < 1 || C > 3 || BY < 1 || BX < 1) return 1;
    try {
        Ans a;
        if (!a.init(payload, nwords)) return 2;
        const int64_t nblk = (int64_t)BY * BX;
        const int64_t tot = C * nblk;
        // out holds the magnitudes as they are decoded (block-major; the signs come last): the contexts read it
        memset(out, 0, sizeof(int16_t) * tot * N64);
        std::vector<int64_t> bounds, order;
        std::vector<int32_t> cbf(tot, 0);
        coded_block_flags(a, C, BY, BX, cbf, bounds);
        // -- magnitudes and last flags per frequency diagonal: luma, then both chroma channels together
        int64_t nesc = 0;
        std::vector<int16_t> cls, mags;
        std::vector<int64_t> idx, jsel;
        std::vector<int32_t> nzi, nbo, lctx, last;
        for (int g = 0; g < 2; ++g) {
            const int ch0 = g == 0 ? 0 : 1, ch1 = g == 0 ? 1 : C;
            if (ch0 >= ch1) continue;
            const int cg = ch1 - ch0;
            const int64_t off = ch0 * nblk, gn = cg * nblk;
            double mst[CLASSES][3];
            memset(mst, 0, sizeof mst);
            double fst[LAST_CTX][2];
            for (auto& s : fst) s[0] = s[1] = 0.5;
            std::vector<uint8_t> open(gn);
            for (int64_t i = 0; i < gn; ++i) open[i] = cbf[off + i] != 0;
            std::vector<int64_t> count(gn, 0);
            for (int d = 0; d < 15; ++d) {
                idx.clear();
                for (int64_t i = 0; i < gn; ++i)
                    if (open[i]) idx.push_back(i);
                if (idx.empty()) break;
                const int lo = (int)starts[d], hi = (int)starts[d + 1], w = hi - lo;
                const int64_t n = (int64_t)idx.size() * w;
                cls.resize(n);
                for (size_t t = 0; t < idx.size(); ++t) {
                    const int64_t i = idx[t], loc = i % nblk, row = loc / BX, col = loc % BX;
                    for (int p = 0; p < w; ++p) {
                        const int64_t u = up[lo + p], l = left[lo + p];  // 64: none (reads as zero)
                        auto tmpl = [&](int64_t j) -> int32_t {
                            const int16_t* b = out + (off + j) * N64;
                            return (u < N64 ? (int32_t)b[u] : 0) + (l < N64 ? (int32_t)b[l] : 0);
                        };
                        int32_t x4 = OWN_W4 * tmpl(i);
                        int32_t nb = 0;
                        if (col > 0) nb += tmpl(i - 1);
                        if (col < BX - 1) nb += tmpl(i + 1);
                        if (row > 0) nb += tmpl(i - BX);
                        if (row < BY - 1) nb += tmpl(i + BX);
                        x4 += NB_W4 * nb;
                        if (ch0) x4 += LUMA_W4 * (int32_t)out[loc * N64 + lo + p];
                        if (x4 < 0 || x4 >= ntable) return 3;
                        cls[t * w + p] = class_table[x4];
                    }
                }
                for (auto& s : mst) s[0] *= MAG_DECAY, s[1] *= MAG_DECAY, s[2] *= MAG_DECAY;
                mags.resize(n);
                chunked_cat(a, mst, cls.data(), n, mags.data(), bounds, order);
                nzi.assign(idx.size(), 0);
                for (size_t t = 0; t < idx.size(); ++t) {
                    const int64_t i = idx[t];
                    for (int p = 0; p < w; ++p) {
                        const int16_t m = mags[t * w + p];
                        out[(off + i) * N64 + lo + p] = m;
                        nesc += m == ESC;
                        nzi[t] += m != 0;
                    }
                }
                if (hi < N64) {
                    jsel.clear();
                    lctx.clear();
                    for (size_t t = 0; t < idx.size(); ++t) {
                        if (!nzi[t]) continue;
                        const int64_t i = idx[t], base = i - i % nblk, loc = i % nblk, row = loc / BX,
                                      col = loc % BX;
                        int32_t nb = 0;  // open neighbours (before this diagonal's flags)
                        if (col > 0) nb += open[base + loc - 1];
                        if (col < BX - 1) nb += open[base + loc + 1];
                        if (row > 0) nb += open[base + loc - BX];
                        if (row < BY - 1) nb += open[base + loc + BX];
                        jsel.push_back(i);
                        lctx.push_back((int32_t)std::min<int64_t>(count[i], 3) + 4 * nb);
                    }
                    for (auto& s : fst) s[0] *= FLAG_DECAY, s[1] *= FLAG_DECAY;
                    last.resize(lctx.size());
                    chunked_bern(a, fst, LAST_CTX, lctx.data(), (int64_t)lctx.size(), last.data(), bounds);
                    for (size_t t = 0; t < jsel.size(); ++t)
                        if (last[t]) open[jsel[t]] = 0;
                } else {
                    for (int64_t i : idx) open[i] = 0;
                }
                for (size_t t = 0; t < idx.size(); ++t) count[idx[t]] += nzi[t];
            }
        }
        return finish_walk(a, out, tot, with_signs, nesc, n_escape);
    } catch (...) {
        return 5;
    }
}

int cc_decode_format2(const uint32_t* payload, int64_t nwords, int C, int BY, int BX, const int64_t* up,
                      const int64_t* left, const int64_t* starts, const int16_t* class_table, int64_t ntable,
                      int16_t* out, int64_t* n_escape) {
    return decode_walk(payload, nwords, C, BY, BX, up, left, starts, class_table, ntable, out, n_escape, true);
}

// The same walk without the signs (coefcoder's ``signs=False``): out holds the magnitudes.
int cc_decode_format2_unsigned(const uint32_t* payload, int64_t nwords, int C, int BY, int BX, const int64_t* up,
                               const int64_t* left, const int64_t* starts, const int16_t* class_table,
                               int64_t ntable, int16_t* out, int64_t* n_escape) {
    return decode_walk(payload, nwords, C, BY, BX, up, left, starts, class_table, ntable, out, n_escape, false);
}

// The format-7 walk (coefcoder7._walk); arguments and result as cc_decode_format2's, class_table the wider one of
// coefcoder7._class_table and where (64,) the place of each zigzag position on its diagonal (0, 1, 2); with_signs 0:
// a stream without the signs (dct format 7 with sign prediction), out holds the magnitudes.
static int walk7(const uint32_t* payload, int64_t nwords, int C, int BY, int BX, const int64_t* up,
                 const int64_t* left, const int64_t* starts, const int16_t* class_table, int64_t ntable,
                 const int64_t* where, int16_t* out, int64_t* n_escape, int with_signs, uint8_t* gflags, int GY,
                 int GX) {
    using namespace v7;
    if (C < 1 || C > 3 || BY < 1 || BX < 1) return 1;
    if (gflags && (GY != BY / 2 || GX != BX / 2)) return 1;
    try {
        Ans a;
        if (!a.init(payload, nwords)) return 2;
        const int64_t nblk = (int64_t)BY * BX;
        const int64_t tot = C * nblk;
        memset(out, 0, sizeof(int16_t) * tot * N64);
        std::vector<int64_t> bounds, order;
        std::vector<int32_t> cbf(tot, 0);
        coded_block_flags(a, C, BY, BX, cbf, bounds);
        std::vector<uint8_t> gmask, tl;  // with the groups: grouped blocks, a group's top-left block
        if (gflags) group_flags(a, C, BY, BX, cbf, gflags, GY, GX, gmask, tl, bounds);
        int64_t nesc = 0;
        std::vector<int16_t> cls, mags;
        std::vector<int64_t> idx_all, idx, jsel;
        std::vector<int32_t> nzi, lctx, last;
        std::vector<int64_t> summ;
        auto model = std::make_unique<Model>();
        for (int g = 0; g < 2; ++g) {
            const int ch0 = g == 0 ? 0 : 1, ch1 = g == 0 ? 1 : C;
            if (ch0 >= ch1) continue;
            const int cg = ch1 - ch0;
            const int64_t off = ch0 * nblk, gn = cg * nblk;
            *model = Model(gflags ? 4 * CLASSES : 2 * CLASSES);
            double fst[LAST_CTX7][2];
            for (auto& s : fst) s[0] = s[1] = 0.5;
            std::vector<uint8_t> open(gn);
            for (int64_t i = 0; i < gn; ++i) open[i] = cbf[off + i] != 0;
            std::vector<int64_t> count(gn, 0);
            summ.assign(gn, 0);
            for (int d = 0; d < 15; ++d) {
                idx_all.clear();
                for (int64_t i = 0; i < gn; ++i)
                    if (open[i]) idx_all.push_back(i);
                if (idx_all.empty()) break;
                const int lo = (int)starts[d], hi = (int)starts[d + 1], w = hi - lo;
                model->decay();
                for (int half = 0; half < 2; ++half) {
                    idx.clear();
                    for (int64_t i : idx_all) {
                        const int64_t loc = i % nblk;
                        if (((loc / BX + loc % BX) & 1) == half) idx.push_back(i);
                    }
                    if (idx.empty()) continue;
                    const int64_t n = (int64_t)idx.size() * w;
                    cls.resize(n);
                    for (size_t t = 0; t < idx.size(); ++t) {
                        const int64_t i = idx[t], loc = i % nblk, row = loc / BX, col = loc % BX;
                        for (int p = 0; p < w; ++p) {
                            const int64_t u = up[lo + p], l = left[lo + p];
                            auto tmpl = [&](int64_t j) -> int32_t {
                                const int16_t* b = out + (off + j) * N64;
                                return (u < N64 ? (int32_t)b[u] : 0) + (l < N64 ? (int32_t)b[l] : 0);
                            };
                            // the neighbours' same position; with the groups none from a grouped neighbour
                            auto same = [&](int64_t j) -> int32_t {
                                return gflags && gmask[j % nblk] ? 0 : out[(off + j) * N64 + lo + p];
                            };
                            int32_t x4 = OWN_W4 * tmpl(i);
                            int32_t nb = 0, sm = 0;
                            if (col > 0) nb += tmpl(i - 1), sm += same(i - 1);
                            if (col < BX - 1) nb += tmpl(i + 1), sm += same(i + 1);
                            if (row > 0) nb += tmpl(i - BX), sm += same(i - BX);
                            if (row < BY - 1) nb += tmpl(i + BX), sm += same(i + BX);
                            x4 += NB_W4 * nb;
                            if (ch0) x4 += LUMA_W4 * (int32_t)out[loc * N64 + lo + p];
                            const bool grouped = gflags && gmask[loc];
                            if (half && !grouped) x4 += SAME_W4 * sm;
                            if (x4 < 0 || x4 >= ntable) return 3;
                            const int set = grouped ? (tl[loc] ? 2 : 3) : half;
                            cls[t * w + p] = (int16_t)((class_table[x4] + CLASSES * set) * WHERE + where[lo + p]);
                        }
                    }
                    mags.resize(n);
                    v7::chunked_cat(a, *model, cls.data(), n, mags.data(), bounds, order);
                    for (size_t t = 0; t < idx.size(); ++t) {
                        const int64_t i = idx[t];
                        int64_t s = 0;
                        for (int p = 0; p < w; ++p) {
                            const int16_t m = mags[t * w + p];
                            out[(off + i) * N64 + lo + p] = m;
                            nesc += m == ESC;
                            s += m;
                        }
                        summ[i] = s;
                    }
                }
                nzi.assign(idx_all.size(), 0);
                for (size_t t = 0; t < idx_all.size(); ++t)
                    for (int p = lo; p < hi; ++p) nzi[t] += out[(off + idx_all[t]) * N64 + p] != 0;
                if (hi < N64) {
                    jsel.clear();
                    lctx.clear();
                    for (size_t t = 0; t < idx_all.size(); ++t) {
                        if (!nzi[t]) continue;
                        const int64_t i = idx_all[t], base = i - i % nblk, loc = i % nblk, row = loc / BX,
                                      col = loc % BX;
                        int32_t nb = 0;
                        if (col > 0) nb += open[base + loc - 1];
                        if (col < BX - 1) nb += open[base + loc + 1];
                        if (row > 0) nb += open[base + loc - BX];
                        if (row < BY - 1) nb += open[base + loc + BX];
                        jsel.push_back(i);
                        lctx.push_back(((int32_t)std::min<int64_t>(count[i], 3) + 4 * nb) * 3 +
                                       (int32_t)std::min<int64_t>(summ[i] - 1, 2));
                    }
                    for (auto& s : fst) s[0] *= FLAG_DECAY, s[1] *= FLAG_DECAY;
                    last.resize(lctx.size());
                    chunked_bern(a, fst, LAST_CTX7, lctx.data(), (int64_t)lctx.size(), last.data(), bounds);
                    for (size_t t = 0; t < jsel.size(); ++t)
                        if (last[t]) open[jsel[t]] = 0;
                } else {
                    for (int64_t i : idx_all) open[i] = 0;
                }
                for (size_t t = 0; t < idx_all.size(); ++t) count[idx_all[t]] += nzi[t];
            }
        }
        return finish_walk(a, out, tot, with_signs, nesc, n_escape);
    } catch (...) {
        return 5;
    }
}

int cc_decode_format7(const uint32_t* payload, int64_t nwords, int C, int BY, int BX, const int64_t* up,
                      const int64_t* left, const int64_t* starts, const int16_t* class_table, int64_t ntable,
                      const int64_t* where, int16_t* out, int64_t* n_escape, int with_signs) {
    return walk7(payload, nwords, C, BY, BX, up, left, starts, class_table, ntable, where, out, n_escape, with_signs,
                 nullptr, 0, 0);
}

// The format-7 walk with the 16x16 group flags in the stream (image_dct TOOL_GROUPS, coefcoder7's ``groups``):
// flags (GY * GX, GY = BY / 2, GX = BX / 2) receives them.
int cc_decode_format7_groups(const uint32_t* payload, int64_t nwords, int C, int BY, int BX, const int64_t* up,
                             const int64_t* left, const int64_t* starts, const int16_t* class_table, int64_t ntable,
                             const int64_t* where, int16_t* out, int64_t* n_escape, int with_signs, uint8_t* flags,
                             int GY, int GX) {
    return walk7(payload, nwords, C, BY, BX, up, left, starts, class_table, ntable, where, out, n_escape, with_signs,
                 flags, GY, GX);
}

}  // extern "C"
