// Per-element arithmetic of our bias_act and upfirdn2d kernels.
//
// Pure functions with no PyTorch or CUDA runtime dependency, marked __host__ __device__ so
// that the same code runs in the kernels and can be exercised on the CPU.
// Written for persona-studio from the op definitions in ../bias_act.py and ../upfirdn2d.py.
#pragma once

#include <stdint.h>

#if defined(__CUDACC__)
#define PERSONA_HD __host__ __device__ __forceinline__
#else
#define PERSONA_HD inline
#endif

namespace persona_ops {

// ---------------------------------------------------------------------------------------
// bias_act
// ---------------------------------------------------------------------------------------

enum Activation : int { kLinear = 0, kRelu = 1, kLrelu = 2 };

// The activation itself.
template <typename T>
PERSONA_HD T activate(T z, int act, T alpha) {
    if (act == kRelu) return z > T(0) ? z : T(0);
    if (act == kLrelu) return z > T(0) ? z : z * alpha;
    return z;
}

// d act(z) / dz, with PyTorch's conventions at the kink: relu' (0) = 0, lrelu'(0) = alpha.
template <typename T>
PERSONA_HD T activate_slope(T z, int act, T alpha) {
    if (act == kRelu) return z > T(0) ? T(1) : T(0);
    if (act == kLrelu) return z > T(0) ? T(1) : alpha;
    return T(1);
}

// y = clamp(act(z) * gain); clamp < 0 means "no clamping".
template <typename T>
PERSONA_HD T bias_act_value(T z, int act, T alpha, T gain, T clamp) {
    T y = activate(z, act, alpha) * gain;
    if (clamp >= T(0)) y = y > clamp ? clamp : (y < -clamp ? -clamp : y);
    return y;
}

// dy/dz of bias_act_value. Like torch.clamp, the clamp passes the gradient where
// -clamp <= act(z) * gain <= clamp (boundaries included) and blocks it elsewhere.
template <typename T>
PERSONA_HD T bias_act_slope(T z, int act, T alpha, T gain, T clamp) {
    if (clamp >= T(0)) {
        T y = activate(z, act, alpha) * gain;
        if (y > clamp || y < -clamp) return T(0);
    }
    return activate_slope(z, act, alpha) * gain;
}

// ---------------------------------------------------------------------------------------
// upfirdn2d
// ---------------------------------------------------------------------------------------
//
// Along one axis, with input length `in`, up-sampling factor `up`, leading padding `pad0`,
// filter length `taps` and down-sampling factor `down`:
//   U[p] = X[p / up] when p % up == 0 (p in [0, in * up)), else 0      (zero insertion)
//   P[v] = U[v - pad0]                                                 (pad or crop)
//   Z[t] = sum_k P[t + k] * g[k]                                       (correlation)
//   Y[o] = Z[o * down]
// where g is the filter already flipped for true convolution and scaled by the gain.
// Only the taps that land on a real input sample contribute: P[o * down + k] is X[i] with
// i * up = o * down + k - pad0. TapRange gives those input indices i in [first, last).
// The tap index for input i is k = i * up + pad0 - o * down.

struct TapRange {
    int first;
    int last;  // exclusive
};

PERSONA_HD int ceil_div_nonneg(int a, int b) { return (a + b - 1) / b; }

PERSONA_HD TapRange input_taps(int o, int in, int up, int down, int pad0, int taps) {
    const int start = o * down - pad0;          // position in U of the first tap
    const int end = start + taps - 1;           // position in U of the last tap
    TapRange r;
    r.first = ceil_div_nonneg(start > 0 ? start : 0, up);
    r.last = end < 0 ? 0 : end / up + 1;
    if (r.last > in) r.last = in;
    if (r.first > r.last) r.first = r.last;
    return r;
}

// One output pixel of upfirdn2d for a single (n, c) plane.
//   x: the input plane, read as x[iy * sy + ix * sx]
//   g: the correlation filter [fh, fw], row-major, in the accumulation type
template <typename acc_t, typename scalar_t>
PERSONA_HD acc_t upfirdn2d_pixel(const scalar_t* x, int64_t sy, int64_t sx, const acc_t* g,
                                 int ox, int oy, int in_w, int in_h, int up_x, int up_y,
                                 int down_x, int down_y, int pad_x0, int pad_y0, int fw, int fh) {
    const TapRange ry = input_taps(oy, in_h, up_y, down_y, pad_y0, fh);
    const TapRange rx = input_taps(ox, in_w, up_x, down_x, pad_x0, fw);
    acc_t sum = acc_t(0);
    for (int iy = ry.first; iy < ry.last; ++iy) {
        const int ky = iy * up_y + pad_y0 - oy * down_y;
        const scalar_t* row = x + iy * sy;
        for (int ix = rx.first; ix < rx.last; ++ix) {
            const int kx = ix * up_x + pad_x0 - ox * down_x;
            sum += static_cast<acc_t>(row[ix * sx]) * g[ky * fw + kx];
        }
    }
    return sum;
}

}  // namespace persona_ops
