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

#include <string.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "ans_cpu.h"
#include "cpu_simd.h"

// The kernels, once per instruction set; the AVX2 copy compiled under a target pragma and picked at run time (as
// cuda/dct_residual_cpu.cpp's; gcc on x86-64 only, elsewhere the portable copy).
#define SP_NS portable
#include "signpred_cpu_impl.inc"
#undef SP_NS

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define SP_X86_DISPATCH 1
#pragma GCC push_options
#pragma GCC target("avx2")
#define SP_NS avx2
#include "signpred_cpu_impl.inc"
#undef SP_NS
#pragma GCC pop_options
#endif

extern "C" {

using namespace portable;  // the round helpers (the Python walk's) run the portable copy

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


// sp_walk, the whole sign pass of signpred._walk, in its form 1 or 2 (``form``: the order of the steps and
// the sides a unit uses). q (C * BY * BX, 64) int16: decoding (words given), the magnitudes in and the signed
// symbols out; encoding (words null), the signed symbols, and out come the raw signs' bits (raw_neg, n_raw),
// the "wrong" bits with their contexts in coding order (wrong, ctx, n_bits) and how many of them each step
// (phase, round) codes, in the steps' order (seg, 6 x maxr): the Python side codes them with constriction,
// the same stream. tx16 (BY, BX) the blocks of 16x16 groups or null; per (C, 64) steps per zigzag
// position; basis8 (64, 4, 2, 8) / basis16 (256, 8, 2, 8) and weight8 / weight16 as signpred's; ranks
// (K x maxr) the rank class of each selected place. Returns 0; 1 arguments out of range; 2 a malformed 16x16
// mask; 4 a stream that does not end exactly where it must (sentinel, empty coder); 5 out of memory.
// Decoding, the caller trusts q only on 0 (else the Python walk decodes, with its own errors).
int sp_walk(const uint32_t* words, int64_t nwords, int C, int BY, int BX, int16_t* q, const double* per,
            const uint8_t* tx16, const double* basis8, const double* basis16, const int64_t* weight8,
            const int64_t* weight16, int K, int rounds8, int rounds16, const int32_t* ranks, int nranks, int shift8,
            int shift16, double clamp8, double clamp16, const int32_t* op, const double* edges, int nedges,
            int form, uint8_t* raw_neg, int64_t* n_raw, int32_t* wrong, int32_t* ctx_out, int64_t* n_bits,
            int64_t* seg) {
#ifdef SP_X86_DISPATCH
    if (avx2_copy_allowed())
        return avx2::walk(words, nwords, C, BY, BX, q, per, tx16, basis8, basis16, weight8, weight16, K, rounds8,
                          rounds16, ranks, nranks, shift8, shift16, clamp8, clamp16, op, edges, nedges, form, raw_neg,
                          n_raw, wrong, ctx_out, n_bits, seg);
#endif
    return portable::walk(words, nwords, C, BY, BX, q, per, tx16, basis8, basis16, weight8, weight16, K, rounds8,
                          rounds16, ranks, nranks, shift8, shift16, clamp8, clamp16, op, edges, nedges, form, raw_neg,
                          n_raw, wrong, ctx_out, n_bits, seg);
}

}  // extern "C"
