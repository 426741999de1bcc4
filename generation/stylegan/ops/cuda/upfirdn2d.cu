// upfirdn2d on CUDA: up-sample by zero insertion, pad, FIR-filter, down-sample.
//
// One thread per output pixel. Each thread visits only the filter taps that land on a
// real input sample (the inserted zeros and the padding contribute nothing), see
// kernel_math.cuh. The filter arrives ready for correlation: flipped for true
// convolution, scaled by the gain and made 2-D by the Python wrapper (functions.py).
// Sums run in float for half/bfloat16 inputs (double for double).
//
// Grid: blockIdx.y walks the N * C planes, blockIdx.x / threadIdx.x the pixels of a plane,
// so consecutive threads write consecutive output pixels of a row. The input may have any
// strides; the output is contiguous NCHW.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>

#include <algorithm>
#include <cstdlib>
#include <limits>

#include "kernel_math.cuh"

namespace persona_ops {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocksX = 1 << 20;
constexpr int64_t kMaxBlocksY = 65535;

struct UpfirdnParams {
    int64_t planes;    // N * C
    int64_t channels;  // C
    int64_t sx_n, sx_c, sx_h, sx_w;  // input strides, in elements
    int in_w, in_h;
    int out_w, out_h;
    int up_x, up_y;
    int down_x, down_y;
    int pad_x0, pad_y0;
    int fw, fh;
};

template <typename scalar_t>
__global__ void upfirdn2d_kernel(const scalar_t* __restrict__ x, const at::opmath_type<scalar_t>* __restrict__ g,
                                 scalar_t* __restrict__ y, UpfirdnParams p) {
    using acc_t = at::opmath_type<scalar_t>;
    const int plane_size = p.out_w * p.out_h;
    for (int64_t plane = blockIdx.y; plane < p.planes; plane += gridDim.y) {
        const int64_t n = plane / p.channels;
        const int64_t c = plane % p.channels;
        const scalar_t* src = x + n * p.sx_n + c * p.sx_c;
        scalar_t* dst = y + plane * plane_size;
        for (int idx = blockIdx.x * blockDim.x + threadIdx.x; idx < plane_size; idx += blockDim.x * gridDim.x) {
            const int ox = idx % p.out_w;
            const int oy = idx / p.out_w;
            const acc_t v = upfirdn2d_pixel<acc_t, scalar_t>(src, p.sx_h, p.sx_w, g, ox, oy, p.in_w, p.in_h, p.up_x,
                                                             p.up_y, p.down_x, p.down_y, p.pad_x0, p.pad_y0, p.fw, p.fh);
            dst[idx] = static_cast<scalar_t>(v);
        }
    }
}

int checked_int(int64_t v, const char* what) {
    TORCH_CHECK(v >= std::numeric_limits<int>::min() && v <= std::numeric_limits<int>::max(), "upfirdn2d: ", what,
                " (", v, ") does not fit in 32 bits");
    return static_cast<int>(v);
}

}  // namespace

at::Tensor upfirdn2d_forward(const at::Tensor& x, const at::Tensor& g, int64_t up_x, int64_t up_y, int64_t down_x,
                             int64_t down_y, int64_t pad_x0, int64_t pad_x1, int64_t pad_y0, int64_t pad_y1) {
    TORCH_CHECK(x.is_cuda(), "upfirdn2d: x must be a CUDA tensor");
    TORCH_CHECK(x.dim() == 4, "upfirdn2d: x must be [N, C, H, W], got ", x.sizes());
    TORCH_CHECK(g.dim() == 2 && g.size(0) >= 1 && g.size(1) >= 1, "upfirdn2d: filter must be a non-empty [fh, fw] tensor");
    TORCH_CHECK(g.device() == x.device(), "upfirdn2d: the filter must be on the device of x");
    const at::ScalarType acc_type = x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
    TORCH_CHECK(g.scalar_type() == acc_type, "upfirdn2d: the filter must be ", acc_type, " for ", x.scalar_type(),
                " input");
    TORCH_CHECK(up_x >= 1 && up_y >= 1 && down_x >= 1 && down_y >= 1, "upfirdn2d: up and down must be >= 1");

    const int64_t n = x.size(0), c = x.size(1), in_h = x.size(2), in_w = x.size(3);
    const int64_t fh = g.size(0), fw = g.size(1);
    const int64_t out_h = (in_h * up_y + pad_y0 + pad_y1 - fh) / down_y + 1;
    const int64_t out_w = (in_w * up_x + pad_x0 + pad_x1 - fw) / down_x + 1;
    TORCH_CHECK(in_h * up_y + pad_y0 + pad_y1 >= fh && in_w * up_x + pad_x0 + pad_x1 >= fw,
                "upfirdn2d: the padded input is smaller than the filter");

    UpfirdnParams p;
    p.planes = n * c;
    p.channels = c;
    p.sx_n = x.stride(0);
    p.sx_c = x.stride(1);
    p.sx_h = x.stride(2);
    p.sx_w = x.stride(3);
    // All positions along an axis lie within the up-sampled, padded length: keep it in int.
    checked_int(in_w * up_x + std::abs(pad_x0) + std::abs(pad_x1), "padded width");
    checked_int(in_h * up_y + std::abs(pad_y0) + std::abs(pad_y1), "padded height");
    p.in_w = static_cast<int>(in_w);
    p.in_h = static_cast<int>(in_h);
    p.out_w = static_cast<int>(out_w);
    p.out_h = static_cast<int>(out_h);
    checked_int(out_w * out_h, "output plane size");
    p.up_x = checked_int(up_x, "up_x");
    p.up_y = checked_int(up_y, "up_y");
    p.down_x = checked_int(down_x, "down_x");
    p.down_y = checked_int(down_y, "down_y");
    p.pad_x0 = checked_int(pad_x0, "pad_x0");
    p.pad_y0 = checked_int(pad_y0, "pad_y0");
    p.fw = checked_int(fw, "filter width");
    p.fh = checked_int(fh, "filter height");

    at::Tensor y = at::empty({n, c, out_h, out_w}, x.options().memory_format(at::MemoryFormat::Contiguous));
    if (y.numel() == 0) return y;
    const at::Tensor filter = g.contiguous();

    const c10::cuda::CUDAGuard guard(x.device());
    cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
    const int64_t plane_size = out_w * out_h;
    const dim3 grid(static_cast<unsigned>(std::min<int64_t>((plane_size + kThreads - 1) / kThreads, kMaxBlocksX)),
                    static_cast<unsigned>(std::min<int64_t>(p.planes, kMaxBlocksY)));
    AT_DISPATCH_FLOATING_TYPES_AND2(at::ScalarType::Half, at::ScalarType::BFloat16, x.scalar_type(),
                                    "persona_upfirdn2d", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        upfirdn2d_kernel<scalar_t><<<grid, kThreads, 0, stream>>>(x.data_ptr<scalar_t>(), filter.data_ptr<acc_t>(),
                                                                  y.data_ptr<scalar_t>(), p);
        C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
    return y;
}

}  // namespace persona_ops
