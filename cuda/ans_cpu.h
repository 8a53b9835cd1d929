// constriction's ANS decoder (32-bit words, 64-bit state, 24-bit probabilities) and the models the compiled walks
// decode with: ``Categorical`` (perfect=False), ``Bernoulli`` (perfect=False), ``Uniform(2)``, and coefcoder's
// chunked adaptive binary counts (``coefcoder._chunked_bern``). Shared by cuda/coefcoder_cpu.cpp (the magnitudes)
// and cuda/signpred_cpu.cpp (the sign stream); every probability with the Python walks' IEEE operations, in order.
#pragma once
#include <stdint.h>

#include <algorithm>
#include <vector>

namespace ans_cpu {

const uint32_t PREC = 24, ONE = 1u << 24;
const int CAT_MAX = 18;  // the largest alphabet decoded (coefcoder's magnitudes 0..17)
const int CHUNKS = 4, CHUNK_MIN = 512;  // coefcoder._chunks: refreshes of the adaptive models within a pass

struct Ans {
    const uint32_t* w;
    int64_t n;  // words left (popped from the end)
    uint64_t state;
    bool bad = false;

    bool init(const uint32_t* words, int64_t count) {
        w = words;
        n = count;
        state = 0;
        if (!n) return true;
        uint32_t first = w[--n];
        if (!first) return false;
        state = first;
        while (n && state < (1ull << 32)) state = (state << 32) | w[--n];
        return true;
    }
    uint32_t quantile() const { return (uint32_t)(state & (ONE - 1)); }
    void advance(uint32_t q, uint32_t left, uint32_t prob) {
        state = (state >> PREC) * prob + (q - left);
        if (state < (1ull << 32) && n) state = (state << 32) | w[--n];
    }
};

// constriction's Categorical(probabilities, perfect=False) (from_floating_point_probabilities_fast): symbol s spans
// [left(s), left(s + 1)) with left(s) = (uint32)(cum(s) * scale) + s, cum(s) the running f64 sum of the
// probabilities before s, scale = (2^24 - n) / (their sum); the last symbol ends at 2^24.
struct Cat {
    uint32_t left[CAT_MAX + 1];
    int n;
    bool ok;
    void build(const double* p, int m) {
        n = m;
        double sum = 0.0;
        for (int i = 0; i < m; ++i) sum += p[i];
        ok = sum > 0.0 && sum < 1e300 && sum == sum;
        if (!ok) {  // constriction refuses such a table (the result is then rejected): any valid table, no UB casts
            for (int i = 0; i <= m; ++i) left[i] = i < m ? (uint32_t)i : ONE;
            return;
        }
        const double scale = (double)(ONE - (uint32_t)m) / sum;
        double cum = 0.0;
        for (int i = 0; i < m; ++i) {
            left[i] = (uint32_t)(cum * scale) + (uint32_t)i;
            cum += p[i];
        }
        left[m] = ONE;
    }
    int decode(Ans& a) const {
        const uint32_t q = a.quantile();
        int s = 0;
        while (s + 1 < n && left[s + 1] <= q) ++s;
        a.advance(q, left[s], left[s + 1] - left[s]);
        return s;
    }
};

inline int decode_bern(Ans& a, double p1) {
    const double p[2] = {1.0 - p1, p1};
    Cat c;
    c.build(p, 2);
    if (!c.ok) a.bad = true;
    return c.decode(a);
}

inline int decode_uniform2(Ans& a) {
    const uint32_t q = a.quantile();
    const int s = q >> (PREC - 1);
    a.advance(q, (uint32_t)s << (PREC - 1), 1u << (PREC - 1));
    return s;
}

inline void chunk_bounds(int64_t n, std::vector<int64_t>& b, int64_t chunks = CHUNKS, int64_t chunk_min = CHUNK_MIN) {
    int64_t parts = std::max<int64_t>(1, std::min<int64_t>(chunks, n / chunk_min));
    b.clear();
    for (int64_t j = 0; j <= parts; ++j) b.push_back(n * j / parts);
}

// coefcoder._chunked_bern
inline void chunked_bern(Ans& a, double (*st)[2], int nctx, const int32_t* ctx, int64_t n, int32_t* out,
                         std::vector<int64_t>& bounds) {
    chunk_bounds(n, bounds);
    for (size_t t = 0; t + 1 < bounds.size(); ++t) {
        const int64_t lo = bounds[t], hi = bounds[t + 1];
        if (lo >= hi) continue;
        for (int64_t i = lo; i < hi; ++i) {
            const int k = ctx[i];
            out[i] = decode_bern(a, st[k][1] / (st[k][0] + st[k][1]));
        }
        std::vector<int64_t> tot(nctx, 0), ones(nctx, 0);
        for (int64_t i = lo; i < hi; ++i) {
            ++tot[ctx[i]];
            ones[ctx[i]] += out[i];
        }
        for (int k = 0; k < nctx; ++k) {
            st[k][1] += (double)ones[k];
            st[k][0] += (double)tot[k] - (double)ones[k];
        }
    }
}

}  // namespace ans_cpu
