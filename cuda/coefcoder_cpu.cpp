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

// the existing 4-neighbours of cell i = (row, col) of a (rows, cols) grid: the sum of f over them
template <class F>
inline int32_t sum_neighbours(int64_t i, int64_t row, int64_t col, int rows, int cols, F f) {
    int32_t s = 0;
    if (col > 0) s += f(i - 1);
    if (col < cols - 1) s += f(i + 1);
    if (row > 0) s += f(i - cols);
    if (row < rows - 1) s += f(i + cols);
    return s;
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

// coefcoder._chunked_cat (format 2) / coefcoder7._chunked_cat (7): magnitudes of classes cls[0..n) into m, in
// chunks, each with the model's tables of the chunks before it (M: table, update, nclasses, its chunking, and
// scratch rows / cats for the tables; decode_chunk builds a table before it decodes with it)
template <class M>
void chunked_cat(Ans& a, M& mod, const int16_t* cls, int64_t n, int16_t* m, std::vector<int64_t>& bounds,
                 std::vector<int64_t>& order) {
    chunk_bounds(n, bounds, M::CHUNKS_, M::CHUNK_MIN_);
    for (size_t t = 0; t + 1 < bounds.size(); ++t) {
        const int64_t lo = bounds[t], hi = bounds[t + 1];
        if (lo >= hi) continue;
        mod.table(mod.rows);
        decode_chunk(a, mod.rows, mod.nclasses(), mod.cats, cls, lo, hi, m, order);
        mod.update(cls + lo, m + lo, hi - lo);
    }
}

// format 2's magnitude model (coefcoder._walk's stats): per class the counts (zeros, non-zeros, their sum - 1)
struct Model2 {
    static const int CHUNKS_ = CHUNKS, CHUNK_MIN_ = CHUNK_MIN;
    double st[CLASSES][3];
    double rows[CLASSES][K];  // scratch of chunked_cat
    Cat cats[CLASSES];
    Model2() { reset(); }
    void reset() { memset(st, 0, sizeof st); }
    int nclasses() const { return CLASSES; }
    void decay() {
        for (auto& s : st) s[0] *= MAG_DECAY, s[1] *= MAG_DECAY, s[2] *= MAG_DECAY;
    }
    // coefcoder._geometric_rows: the (CLASSES, K) pmf rows of the counts
    void table(double (*rows)[K]) const {
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
    void update(const int16_t* cls, const int16_t* m, int64_t n) {
        int64_t h[CLASSES][K];
        memset(h, 0, sizeof h);
        for (int64_t i = 0; i < n; ++i) ++h[cls[i]][m[i]];
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
};

// image_tx16.code_flags / coefcoder._coded_block_flags: binary flags fl over a (rows, cols) grid in two
// checkerboard halves, in raster order, for the cells where on(g); context ctx(g, nb) with nb 5 in the first half and
// the neighbours' flags (all from the first half) in the second
template <class On, class Ctx>
void checkerboard_flags(Ans& a, double (*st)[2], int nctx, int rows, int cols, int32_t* fl, On on, Ctx ctx_of,
                        std::vector<int64_t>& bounds) {
    std::vector<int32_t> ctx, bits;
    std::vector<int64_t> cells;
    for (int half = 0; half < 2; ++half) {
        ctx.clear();
        cells.clear();
        for (int y = 0; y < rows; ++y)
            for (int x = 0; x < cols; ++x) {
                const int64_t g = (int64_t)y * cols + x;
                if (((y + x) & 1) != half || !on(g)) continue;
                const int32_t nb =
                    half ? sum_neighbours(g, y, x, rows, cols, [&](int64_t j) { return fl[j]; }) : 5;
                ctx.push_back(ctx_of(g, nb));
                cells.push_back(g);
            }
        bits.resize(ctx.size());
        chunked_bern(a, st, nctx, ctx.data(), (int64_t)ctx.size(), bits.data(), bounds);
        for (size_t i = 0; i < cells.size(); ++i) fl[cells[i]] = bits[i];
    }
}

// coefcoder._coded_block_flags: per channel, two checkerboard halves
void coded_block_flags(Ans& a, int C, int BY, int BX, std::vector<int32_t>& cbf, std::vector<int64_t>& bounds) {
    const int64_t nblk = (int64_t)BY * BX;
    double cst[CBF_CTX][2];
    for (auto& s : cst) s[0] = s[1] = 0.5;
    for (int ch = 0; ch < C; ++ch)
        checkerboard_flags(
            a, cst, CBF_CTX, BY, BX, cbf.data() + ch * nblk, [](int64_t) { return true; },
            [&](int64_t b, int32_t nb) {
                return nb + (ch >= 1 ? 6 * cbf[b] : 0) + (ch >= 2 ? 12 * cbf[nblk + b] : 0);
            },
            bounds);
}

// the walk of format 2 (a magnitude's class: the class table's) with its magnitude model
struct Format2 : Model2 {
    static const int PASSES = 1, NLAST = LAST_CTX;  // one pass over a diagonal's open blocks
    void begin(Ans&, int, int, int, const std::vector<int32_t>&, std::vector<int64_t>&) {}
    Model2& model() { return *this; }
    bool grouped(int64_t) const { return false; }
    int16_t cls(int16_t c, int, bool, int64_t, int) const { return c; }
    int32_t last_ctx(int64_t count, int32_t nb, int64_t) const {
        return (int32_t)std::min<int64_t>(count, 3) + 4 * nb;
    }
};


// -- format 7 (inrcodec/models/coefcoder7.py): checkerboard halves per pass, per (class, place on the diagonal) a
// histogram over a three-parameter class pmf, 16 refreshes, last flags with the diagonal's magnitude sum
namespace v7 {
// NCLS class sets of CLASSES: the two halves' (2), with the 16x16 groups known (TOOL_GROUPS) also a group's top-left
// block and its other three (4); arrays are sized for 4, a Model uses ncls of them
const int NCLS = 4 * CLASSES, WHERE = 3, NFINE = NCLS * WHERE, SAME_W4 = 4;
const int GROUP_FLAG_CTX = 6 * 3;  // image_tx16.FLAG_CTX
const int LAST_CTX7 = LAST_CTX * 3;
const double TAU = 16.0, PRIOR1 = 2.0;

struct Model {
    static const int CHUNKS_ = 16, CHUNK_MIN_ = 256;
    double coarse[NCLS][4];
    double hist[NFINE][K];
    double total[NFINE];
    int ncls;
    double rows[NFINE][K];  // scratch of chunked_cat and update (members, not thread_local: no TLS lookups)
    Cat cats[NFINE];
    int64_t h[NFINE][K];
    explicit Model(int n = 2 * CLASSES) { reset(n); }
    void reset(int n) {  // in place: the model is large (scratch included)
        memset(this, 0, sizeof *this);
        ncls = n;
    }
    int nclasses() const { return ncls * WHERE; }
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

// coefcoder7._group_flags: image_tx16.code_flags's two halves over the (GY, GX) groups, each group that has a coded
// block in any channel, context 3 x (its neighbours' flags, 5 in the first half) + class of its count of coded
// (block, channel) flags (image_tx16.NNZ_EDGES 3, 9); gmask / tl (nblk): the grouped blocks, their top-left ones
void group_flags(Ans& a, int C, int BY, int BX, const std::vector<int32_t>& cbf, uint8_t* flags, int GY, int GX,
                 std::vector<uint8_t>& gmask, std::vector<uint8_t>& tl, std::vector<int64_t>& bounds) {
    const int64_t nblk = (int64_t)BY * BX;
    std::vector<int32_t> cnt((size_t)GY * GX, 0), fl((size_t)GY * GX, 0);
    for (int gy = 0; gy < GY; ++gy)
        for (int gx = 0; gx < GX; ++gx)
            for (int ch = 0; ch < C; ++ch)
                for (int dy = 0; dy < 2; ++dy)
                    for (int dx = 0; dx < 2; ++dx)
                        cnt[(size_t)gy * GX + gx] += cbf[ch * nblk + (int64_t)(2 * gy + dy) * BX + 2 * gx + dx];
    double st[GROUP_FLAG_CTX][2];
    for (auto& v : st) v[0] = v[1] = 0.5;
    checkerboard_flags(
        a, st, GROUP_FLAG_CTX, GY, GX, fl.data(), [&](int64_t g) { return cnt[g] != 0; },
        [&](int64_t g, int32_t nb) { return nb * 3 + (cnt[g] >= 9 ? 2 : cnt[g] >= 3 ? 1 : 0); }, bounds);
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

// the walk of format 7 (coefcoder7._walk): two checkerboard passes per diagonal, the second's classes knowing the
// first's magnitudes at the same position; a class is (class table's, class set, place on the diagonal); with the
// 16x16 groups (gflags) their flags after the coded-block flags, and the grouped blocks' own class sets
struct Format7 {
    static const int PASSES = 2, NLAST = v7::LAST_CTX7;
    const int64_t* where;
    uint8_t* gflags;  // null: no groups
    int GY, GX;
    std::vector<uint8_t> gmask, tl;
    std::unique_ptr<v7::Model> mod = std::make_unique<v7::Model>();
    Format7(const int64_t* where_, uint8_t* gflags_, int GY_, int GX_)
        : where(where_), gflags(gflags_), GY(GY_), GX(GX_) {}
    void begin(Ans& a, int C, int BY, int BX, const std::vector<int32_t>& cbf, std::vector<int64_t>& bounds) {
        if (gflags) v7::group_flags(a, C, BY, BX, cbf, gflags, GY, GX, gmask, tl, bounds);
    }
    void reset() { mod->reset(gflags ? 4 * CLASSES : 2 * CLASSES); }
    void decay() { mod->decay(); }
    v7::Model& model() { return *mod; }
    // a grouped block (its magnitudes' classes in the groups' sets; none of its same-position context is used)
    bool grouped(int64_t loc) const { return gflags && gmask[loc]; }
    int16_t cls(int16_t c, int half, bool grp, int64_t loc, int pos) const {
        const int set = grp ? (tl[loc] ? 2 : 3) : half;
        return (int16_t)((c + CLASSES * set) * v7::WHERE + where[pos]);
    }
    int32_t last_ctx(int64_t count, int32_t nb, int64_t summ) const {
        return ((int32_t)std::min<int64_t>(count, 3) + 4 * nb) * 3 + (int32_t)std::min<int64_t>(summ - 1, 2);
    }
};

// idx: the open blocks (its own function: inlined into the walk, this loop spilled its bound and ran 10 % of the
// format-2 decode)
__attribute__((noinline)) void open_blocks(const std::vector<uint8_t>& open, std::vector<int64_t>& idx) {
    idx.clear();
    const uint8_t* o = open.data();
    const int64_t n = (int64_t)open.size();
    for (int64_t i = 0; i < n; ++i)
        if (o[i]) idx.push_back(i);
}

// The walk of both formats (coefcoder._walk, coefcoder7._walk; the format's differences in Fmt): the coded-block
// flags, then per channel group (luma, then both chroma channels together) and frequency diagonal the open blocks'
// magnitudes in Fmt::PASSES checkerboard passes and their "last" flags; then the signs (finish_walk).
template <class Fmt>
int walk(Fmt& fmt, const uint32_t* payload, int64_t nwords, int C, int BY, int BX, const int64_t* up,
         const int64_t* left, const int64_t* starts, const int16_t* class_table, int64_t ntable, int16_t* out,
         int64_t* n_escape, bool with_signs) {
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
        fmt.begin(a, C, BY, BX, cbf, bounds);
        int64_t nesc = 0;
        std::vector<int16_t> cls, mags;
        std::vector<int64_t> idx_all, idx, jsel, summ;
        std::vector<int32_t> nzi, lctx, last;
        for (int g = 0; g < 2; ++g) {
            const int ch0 = g == 0 ? 0 : 1, ch1 = g == 0 ? 1 : C;
            if (ch0 >= ch1) continue;
            const int cg = ch1 - ch0;
            const int64_t off = ch0 * nblk, gn = cg * nblk;
            fmt.reset();
            double fst[Fmt::NLAST][2];
            for (auto& s : fst) s[0] = s[1] = 0.5;
            std::vector<uint8_t> open(gn);
            for (int64_t i = 0; i < gn; ++i) open[i] = cbf[off + i] != 0;
            std::vector<int64_t> count(gn, 0);
            summ.assign(gn, 0);  // per block: its magnitudes' sum and non-zeros on the diagonal
            nzi.assign(gn, 0);
            for (int d = 0; d < 15; ++d) {
                open_blocks(open, idx_all);
                if (idx_all.empty()) break;
                const int lo = (int)starts[d], hi = (int)starts[d + 1], w = hi - lo;
                fmt.decay();
                for (int half = 0; half < Fmt::PASSES; ++half) {
                    auto& pass = Fmt::PASSES == 1 ? idx_all : idx;  // the open blocks of this pass
                    if (Fmt::PASSES > 1) {
                        idx.clear();
                        for (int64_t i : idx_all) {
                            const int64_t loc = i % nblk;
                            if (((loc / BX + loc % BX) & 1) == half) idx.push_back(i);
                        }
                    }
                    if (pass.empty()) continue;
                    const int64_t n = (int64_t)pass.size() * w;
                    cls.resize(n);
                    for (size_t t = 0; t < pass.size(); ++t) {
                        const int64_t i = pass[t], loc = i % nblk, row = loc / BX, col = loc % BX;
                        const bool grouped = fmt.grouped(loc);
                        for (int p = 0; p < w; ++p) {
                            const int64_t u = up[lo + p], l = left[lo + p];  // 64: none (reads as zero)
                            auto tmpl = [&](int64_t j) -> int32_t {
                                const int16_t* b = out + (off + j) * N64;
                                return (u < N64 ? (int32_t)b[u] : 0) + (l < N64 ? (int32_t)b[l] : 0);
                            };
                            int32_t x4 = OWN_W4 * tmpl(i) + NB_W4 * sum_neighbours(i, row, col, BY, BX, tmpl);
                            if (ch0) x4 += LUMA_W4 * (int32_t)out[loc * N64 + lo + p];
                            if (half && !grouped)  // the neighbours' same position, none from a grouped one
                                x4 += v7::SAME_W4 * sum_neighbours(i, row, col, BY, BX, [&](int64_t j) -> int32_t {
                                          return fmt.grouped(j % nblk) ? 0 : out[(off + j) * N64 + lo + p];
                                      });
                            if (x4 < 0 || x4 >= ntable) return 3;
                            cls[t * w + p] = fmt.cls(class_table[x4], half, grouped, loc, lo + p);
                        }
                    }
                    mags.resize(n);
                    chunked_cat(a, fmt.model(), cls.data(), n, mags.data(), bounds, order);
                    for (size_t t = 0; t < pass.size(); ++t) {
                        const int64_t i = pass[t];
                        int64_t s = 0;
                        int32_t nz = 0;
                        for (int p = 0; p < w; ++p) {
                            const int16_t m = mags[t * w + p];
                            out[(off + i) * N64 + lo + p] = m;
                            nesc += m == ESC;
                            s += m;
                            nz += m != 0;
                        }
                        summ[i] = s;
                        nzi[i] = nz;
                    }
                }
                if (hi < N64) {
                    jsel.clear();
                    lctx.clear();
                    for (int64_t i : idx_all) {
                        if (!nzi[i]) continue;
                        const int64_t base = i - i % nblk, loc = i % nblk;
                        // open neighbours (before this diagonal's flags)
                        const int32_t nb = sum_neighbours(loc, loc / BX, loc % BX, BY, BX,
                                                          [&](int64_t j) -> int32_t { return open[base + j]; });
                        jsel.push_back(i);
                        lctx.push_back(fmt.last_ctx(count[i], nb, summ[i]));
                    }
                    for (auto& s : fst) s[0] *= FLAG_DECAY, s[1] *= FLAG_DECAY;
                    last.resize(lctx.size());
                    chunked_bern(a, fst, Fmt::NLAST, lctx.data(), (int64_t)lctx.size(), last.data(), bounds);
                    for (size_t t = 0; t < jsel.size(); ++t)
                        if (last[t]) open[jsel[t]] = 0;
                } else {
                    for (int64_t i : idx_all) open[i] = 0;
                }
                for (int64_t i : idx_all) count[i] += nzi[i];
            }
        }
        return finish_walk(a, out, tot, with_signs, nesc, n_escape);
    } catch (...) {
        return 5;
    }
}

bool valid_shape(int C, int BY, int BX) { return C >= 1 && C <= 3 && BY >= 1 && BX >= 1; }

}  // namespace

extern "C" {

// payload: the ANS words of a format-2 residual (nwords u32, little-endian, zero-padded as entropy.coding does);
// up/left: (64,) zigzag index of the coefficient above / left of each position (64 = none); starts: (16,) where each
// frequency diagonal starts in zigzag order (and 64); class_table: context value -> class (ntable entries).
// out: (C * BY * BX, 64) int16, block-major, fully written: signed magnitudes, |v| = 17 where an escape follows.
// n_escape: escapes to read from the blob after the stream. Returns 0 when the stream decoded and ended exactly as
// the reference requires; non-zero otherwise (then nothing in out is to be used).
int cc_decode_format2(const uint32_t* payload, int64_t nwords, int C, int BY, int BX, const int64_t* up,
                      const int64_t* left, const int64_t* starts, const int16_t* class_table, int64_t ntable,
                      int16_t* out, int64_t* n_escape) {
    if (!valid_shape(C, BY, BX)) return 1;
    Format2 fmt;
    return walk(fmt, payload, nwords, C, BY, BX, up, left, starts, class_table, ntable, out, n_escape, true);
}

// The same walk without the signs (coefcoder's ``signs=False``): out holds the magnitudes.
int cc_decode_format2_unsigned(const uint32_t* payload, int64_t nwords, int C, int BY, int BX, const int64_t* up,
                               const int64_t* left, const int64_t* starts, const int16_t* class_table,
                               int64_t ntable, int16_t* out, int64_t* n_escape) {
    if (!valid_shape(C, BY, BX)) return 1;
    Format2 fmt;
    return walk(fmt, payload, nwords, C, BY, BX, up, left, starts, class_table, ntable, out, n_escape, false);
}

// The format-7 walk (coefcoder7._walk); arguments and result as cc_decode_format2's, class_table the wider one of
// coefcoder7._class_table and where (64,) the place of each zigzag position on its diagonal (0, 1, 2); with_signs 0:
// a stream without the signs (dct format 7 with sign prediction), out holds the magnitudes.
int cc_decode_format7(const uint32_t* payload, int64_t nwords, int C, int BY, int BX, const int64_t* up,
                      const int64_t* left, const int64_t* starts, const int16_t* class_table, int64_t ntable,
                      const int64_t* where, int16_t* out, int64_t* n_escape, int with_signs) {
    if (!valid_shape(C, BY, BX)) return 1;
    try {
        Format7 fmt(where, nullptr, 0, 0);
        return walk(fmt, payload, nwords, C, BY, BX, up, left, starts, class_table, ntable, out, n_escape,
                    with_signs != 0);
    } catch (...) {
        return 5;
    }
}

// The format-7 walk with the 16x16 group flags in the stream (image_dct TOOL_GROUPS, coefcoder7's ``groups``):
// flags (GY * GX, GY = BY / 2, GX = BX / 2) receives them.
int cc_decode_format7_groups(const uint32_t* payload, int64_t nwords, int C, int BY, int BX, const int64_t* up,
                             const int64_t* left, const int64_t* starts, const int16_t* class_table, int64_t ntable,
                             const int64_t* where, int16_t* out, int64_t* n_escape, int with_signs, uint8_t* flags,
                             int GY, int GX) {
    if (!valid_shape(C, BY, BX) || (flags && (GY != BY / 2 || GX != BX / 2))) return 1;
    try {
        Format7 fmt(where, flags, GY, GX);
        return walk(fmt, payload, nwords, C, BY, BX, up, left, starts, class_table, ntable, out, n_escape,
                    with_signs != 0);
    } catch (...) {
        return 5;
    }
}

}  // extern "C"
