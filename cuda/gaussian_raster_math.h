// Per-Gaussian and per-pixel math of the 2D Gaussian rasteriser (accumulated summation, GaussianImage style).
// Included by the CPU kernel (gaussian_raster_cpu.cpp, plain C++) and the CUDA kernel (gaussian_raster.cu);
// the torch reference (inrcodec/kernels/gaussian_raster.py) repeats the same float32 operations in the same order.
//
// Model:   I(p) = sum_i c_i * w_i(p),   w_i(p) = exp(-q/2) if q <= GR_QMAX and p inside bbox_i, else 0,
//          q = d^T Sigma_i^{-1} d,  d = p - mu_i,  pixel (row y, column x) has centre p = (x + 0.5, y + 0.5).
// Sigma:   Sigma = L L^T + GR_COV_EPS * I with L = [[l11, 0], [l21, l22]]. The epsilon keeps degenerate factors
//          (l11 = 0 or l22 = 0, any sign) well defined: det >= GR_COV_EPS^2 > 0, no clamping, smooth gradients.
//          det is expanded analytically (no a*c - b*b cancellation for needle-thin Gaussians).
// Cutoff:  GR_QMAX = 9, i.e. the 3-sigma ellipse (weight >= exp(-4.5) = 0.011). The pixel bbox of the ellipse
//          (extent sqrt(QMAX * Sigma_xx) in x, sqrt(QMAX * Sigma_yy) in y, widened by a hair) is part of the
//          definition, so every implementation enumerates exactly the same (Gaussian, pixel) pairs.
// Exactness: the cutoff decision q <= QMAX must come out bit-identical in every implementation, otherwise a pixel
//          on the rim would differ by 0.011 * c. So q, the conic and the bbox use only correctly rounded IEEE
//          float32 ops in a fixed order (GR_ADD/GR_MUL/... below) and must be compiled without FMA contraction
//          (-ffp-contract=off on the host; explicit __f*_rn intrinsics on the device). exp() itself may differ
//          by an ulp or two between implementations; that only moves values, never the set of pairs.
#ifndef INRCODEC_GAUSSIAN_RASTER_MATH_H
#define INRCODEC_GAUSSIAN_RASTER_MATH_H

#include <math.h>
#include <string.h>

#ifdef __CUDACC__
#define GR_HD __host__ __device__ __forceinline__
#else
#define GR_HD static inline
#endif

// Shared constants (python side: inrcodec/kernels/gaussian_raster.py mirrors them, a test checks they agree).
#define GR_TILE 16
#define GR_QMAX 9.0f
#define GR_COV_EPS 1.0e-4f
// bbox extent = sqrt(QMAX * var) * GR_BBOX_REL + GR_BBOX_ABS: slack for float rounding of q on the rim.
#define GR_BBOX_REL 1.0009765625f  // 1 + 2^-10
#define GR_BBOX_ABS 0.015625f      // 2^-6 pixel

// Correctly rounded single ops. On the device nvcc would otherwise fuse a*b+c into an FMA; on the host the
// build passes -ffp-contract=off for the same reason.
#if defined(__CUDA_ARCH__)
#define GR_ADD(a, b) __fadd_rn((a), (b))
#define GR_SUB(a, b) __fsub_rn((a), (b))
#define GR_MUL(a, b) __fmul_rn((a), (b))
#define GR_DIV(a, b) __fdiv_rn((a), (b))
#define GR_SQRT(a) __fsqrt_rn(a)
#else
#define GR_ADD(a, b) ((a) + (b))
#define GR_SUB(a, b) ((a) - (b))
#define GR_MUL(a, b) ((a) * (b))
#define GR_DIV(a, b) ((a) / (b))
#define GR_SQRT(a) sqrtf(a)
#endif

// Everything a tile loop needs about one Gaussian, computed once per call.
typedef struct {
    float mx, my;   // mean (pixel units)
    float A, B, C;  // conic = Sigma^{-1} = [[A, B], [B, C]]
    int x0, x1;     // inclusive pixel-column range of the bbox, clipped to the image (x0 > x1: empty)
    int y0, y1;     // inclusive pixel-row range
} GrGauss;

GR_HD int gr_isfinite(float v) {
#ifdef __CUDA_ARCH__
    return isfinite(v);
#else
    return v == v && v - v == 0.0f;  // NaN fails the first test, +-inf the second (no -ffast-math here)
#endif
}

// Sigma entries a = Sigma_xx, b = Sigma_xy, c = Sigma_yy and det(Sigma) from the Cholesky factor.
GR_HD void gr_sigma(float l11, float l21, float l22, float* a, float* b, float* c, float* det) {
    const float s11 = GR_ADD(GR_MUL(l11, l11), GR_COV_EPS);
    const float s12 = GR_MUL(l11, l21);
    const float t = GR_ADD(GR_MUL(l21, l21), GR_MUL(l22, l22));
    const float s22 = GR_ADD(t, GR_COV_EPS);
    const float p = GR_MUL(l11, l22);
    // (l11^2 + e)(t + e) - (l11 l21)^2 = (l11 l22)^2 + e (s11 + t)   (exact algebra, no cancellation)
    *det = GR_ADD(GR_MUL(p, p), GR_MUL(GR_COV_EPS, GR_ADD(s11, t)));
    *a = s11;
    *b = s12;
    *c = s22;
}

// floor/ceil of v clamped to [lo, hi] (integer bounds, so clamping first gives the same result). Integer
// conversion instead of floorf/ceilf, which are library calls on baseline x86-64 (no SSE4.1). v is finite.
GR_HD int gr_floor_clamped(float v, int lo, int hi) {
    const float c = v < (float)lo ? (float)lo : (v > (float)hi ? (float)hi : v);
    const int i = (int)c;  // truncation toward zero
    return c < (float)i ? i - 1 : i;
}
GR_HD int gr_ceil_clamped(float v, int lo, int hi) {
    const float c = v < (float)lo ? (float)lo : (v > (float)hi ? (float)hi : v);
    const int i = (int)c;
    return c > (float)i ? i + 1 : i;
}

// Inclusive integer range [*lo, *hi] of pixel indices whose centre k + 0.5 lies within m +- ext, clipped to
// [0, n) (empty: *lo > *hi). m and ext are finite; they may be far outside the int range.
GR_HD void gr_pixel_range(float m, float ext, int n, int* lo, int* hi) {
    *lo = gr_ceil_clamped(GR_SUB(GR_SUB(m, ext), 0.5f), 0, n);
    *hi = gr_floor_clamped(GR_SUB(GR_ADD(m, ext), 0.5f), -1, n - 1);
}

// Per-Gaussian set-up. Returns 0 (and an empty bbox) for a Gaussian that must be skipped (non-finite input or
// a conic/bbox that overflowed); such a Gaussian contributes nothing and gets zero gradients.
GR_HD int gr_setup(float mx, float my, float l11, float l21, float l22, int H, int W, GrGauss* g) {
    float a, b, c, det;
    gr_sigma(l11, l21, l22, &a, &b, &c, &det);
    g->mx = mx;
    g->my = my;
    g->A = GR_DIV(c, det);
    g->B = -GR_DIV(b, det);
    g->C = GR_DIV(a, det);
    const float ex = GR_ADD(GR_MUL(GR_SQRT(GR_MUL(GR_QMAX, a)), GR_BBOX_REL), GR_BBOX_ABS);
    const float ey = GR_ADD(GR_MUL(GR_SQRT(GR_MUL(GR_QMAX, c)), GR_BBOX_REL), GR_BBOX_ABS);
    const int ok = gr_isfinite(mx) && gr_isfinite(my) && gr_isfinite(l11) && gr_isfinite(l21) &&
                   gr_isfinite(l22) && gr_isfinite(g->A) && gr_isfinite(g->B) && gr_isfinite(g->C) &&
                   gr_isfinite(ex) && gr_isfinite(ey);
    if (!ok) {
        g->x0 = 0; g->x1 = -1; g->y0 = 0; g->y1 = -1;
        return 0;
    }
    gr_pixel_range(mx, ex, W, &g->x0, &g->x1);
    gr_pixel_range(my, ey, H, &g->y0, &g->y1);
    return g->x0 <= g->x1 && g->y0 <= g->y1;
}

// q for offsets dx = px - mx, dy = py - my, in the one order every implementation uses:
//   q = (A*dx + (2B)*dy) * dx + (C*dy)*dy
// (row loops hoist t2 = (2B)*dy and t1 = (C*dy)*dy, which is the same sequence of roundings).
GR_HD float gr_q_row(float A, float t2, float t1, float dx) {
    return GR_ADD(GR_MUL(GR_ADD(GR_MUL(A, dx), t2), dx), t1);
}
GR_HD float gr_q(const GrGauss* g, float px, float py) {
    const float dx = GR_SUB(px, g->mx);
    const float dy = GR_SUB(py, g->my);
    const float B2 = GR_ADD(g->B, g->B);
    return gr_q_row(g->A, GR_MUL(B2, dy), GR_MUL(GR_MUL(g->C, dy), dy), dx);
}

// Geometric shortcuts (tile culling by bands, per-row column spans) rely on the ellipse computed in float being
// close to the set {q_float <= QMAX}. For needles with condition number above ~1e6 float rounding of q itself
// is too coarse for a 1 pixel margin, so such Gaussians take the plain bbox path (still exact, just slower).
GR_HD int gr_well_conditioned(float a, float c, float det) {
    const float tr = a + c;
    return tr * tr <= 1.0e6f * det;
}

// Conservative pixel-column range touched by the ellipse within the horizontal band of pixel centres
// py in [ya, yb] (used only to skip tiles, so it carries a 1 pixel margin instead of being exact).
// x(dy) = mx + (b/c) dy +- sqrt((QMAX c - dy^2) det) / c is concave/convex in dy, so its extreme over the
// band is at the clamped position of the global extreme dy* = +-b sqrt(QMAX / a).
GR_HD float gr_clampf(float v, float lo, float hi) { return v < lo ? lo : (v > hi ? hi : v); }

GR_HD void gr_band_columns(float mx, float my, float a, float b, float c, float det, float ya, float yb,
                           int* lo, int* hi) {
    const float d0 = ya - my, d1 = yb - my;
    const float k = b / c;
    const float dstar = b * sqrtf(GR_QMAX / a);
    const float dr = gr_clampf(dstar, d0, d1);
    const float dl = gr_clampf(-dstar, d0, d1);
    const float sr = GR_QMAX * c - dr * dr, sl = GR_QMAX * c - dl * dl;
    const float hr = sqrtf((sr > 0.0f ? sr : 0.0f) * det) / c;
    const float hl = sqrtf((sl > 0.0f ? sl : 0.0f) * det) / c;
    const float xr = mx + k * dr + hr;
    const float xl = mx + k * dl - hl;
    const float slack = 1.0f + 1e-3f * (fabsf(xr - mx) + fabsf(xl - mx));
    *lo = gr_ceil_clamped(xl - 0.5f - slack, -1, 2000000000);
    *hi = gr_floor_clamped(xr - 0.5f + slack, -1, 2000000000);
}

// exp(x) for x <= 0 with ~2 ulp error: 2^n * P6(r), r = x - n ln2 in [-ln2/2, ln2/2], Taylor to degree 6
// (truncation error r^7/7! < 1.3e-7 relative). Branch-free so loops over it vectorise on the host.
GR_HD float gr_expf_neg(float x) {
#ifdef __CUDA_ARCH__
    return __expf(x);
#else
    x = x < -80.0f ? -80.0f : x;
    const float t = x * 1.44269504088896341f;
    const int n = (int)(t - 0.5f);  // truncation toward 0 of a value <= -0.5: rounds t to nearest
    const float fn = (float)n;
    const float r = (x - fn * 0.693145751953125f) - fn * 1.428606765330187e-06f;  // ln2 split hi + lo
    float p = 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    const int bits = (n + 127) << 23;
    float s;
    memcpy(&s, &bits, sizeof s);
    return p * s;
#endif
}

// Chain rule from per-Gaussian sums over its pixels to the parameters.
// Inputs (sums over contributing pixels, gq = dL/dq = -0.5 * w * sum_c colour_c * dL/dI_c):
//   sx = sum gq dx, sy = sum gq dy, sxx = sum gq dx^2, sxy = sum gq dx dy, syy = sum gq dy^2.
// q = A dx^2 + 2B dx dy + C dy^2 with dx = px - mx, so dq/dmx = -2(A dx + B dy), dq/dmy = -2(B dx + C dy),
// dq/dA = dx^2, dq/dB = 2 dx dy, dq/dC = dy^2. The conic K = Sigma^{-1} gives dL/dSigma = -K dL/dK K, and
// Sigma = L L^T + eps I gives dL/dL = 2 dL/dSigma L (lower triangle).
// Evaluated in double, conic included: for needle-like Gaussians the terms are ~1/det^2 and cancel, which in
// float32 costs several digits (the sums themselves are fine in float32). Once per Gaussian, so cheap.
GR_HD void gr_chain(float l11f, float l21f, float l22f, float sxf, float syf, float sxxf, float sxyf, float syyf,
                    float* g_mx, float* g_my, float* g_l11, float* g_l21, float* g_l22) {
    const double l11 = l11f, l21 = l21f, l22 = l22f, e = (double)GR_COV_EPS;
    const double a = l11 * l11 + e, b = l11 * l21, t = l21 * l21 + l22 * l22, c = t + e;
    const double p = l11 * l22;
    const double det = p * p + e * (a + t);
    const double A = c / det, B = -b / det, C = a / det;
    const double sx = sxf, sy = syf;
    *g_mx = (float)(-2.0 * (A * sx + B * sy));
    *g_my = (float)(-2.0 * (B * sx + C * sy));
    const double gA = sxxf, gB = 2.0 * (double)sxyf, gC = syyf;
    // Sigma = [[a, b], [b, c]] with b counted once: derivatives of (A, B, C) = (c, -b, a) / det.
    const double ga = -(gA * A * A + gB * A * B + gC * B * B);
    const double gb = -(2.0 * gA * A * B + gB * (A * C + B * B) + 2.0 * gC * B * C);
    const double gc = -(gA * B * B + gB * B * C + gC * C * C);
    // a = l11^2 + e, b = l11 l21, c = l21^2 + l22^2 + e
    *g_l11 = (float)(2.0 * l11 * ga + l21 * gb);
    *g_l21 = (float)(l11 * gb + 2.0 * l21 * gc);
    *g_l22 = (float)(2.0 * l22 * gc);
}

#endif  // INRCODEC_GAUSSIAN_RASTER_MATH_H
