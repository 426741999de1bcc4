// bias_act on CUDA: y = clamp(act(x + b) * gain), one thread per element.
//
// The bias is broadcast along one dimension `dim` of x. The kernels walk x in its memory
// order, so any dense layout (contiguous, channels_last, ...) works without a copy: the
// index along `dim` of the element at storage offset i is (i / stride[dim]) % size[dim].
// The arithmetic lives in kernel_math.cuh; it runs in float for half/bfloat16 inputs.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>

#include <algorithm>
#include <optional>

#include "kernel_math.cuh"

namespace persona_ops {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 65535;

int blocks_for(int64_t n) {
    return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>((n + kThreads - 1) / kThreads, kMaxBlocks)));
}

template <typename scalar_t>
__global__ void bias_act_forward_kernel(const scalar_t* __restrict__ x, const scalar_t* __restrict__ b,
                                        scalar_t* __restrict__ y, int64_t numel, int64_t b_step,
                                        int64_t b_len, int act, at::opmath_type<scalar_t> alpha,
                                        at::opmath_type<scalar_t> gain, at::opmath_type<scalar_t> clamp) {
    using acc_t = at::opmath_type<scalar_t>;
    const int64_t stride = static_cast<int64_t>(blockDim.x) * gridDim.x;
    for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < numel; i += stride) {
        acc_t z = static_cast<acc_t>(x[i]);
        if (b != nullptr) z += static_cast<acc_t>(b[(i / b_step) % b_len]);
        y[i] = static_cast<scalar_t>(bias_act_value<acc_t>(z, act, alpha, gain, clamp));
    }
}

// dx = dy * d(bias_act)/dx, recomputing x + b. The slope is piecewise constant in x, so the
// same kernel also gives the gradient of dx with respect to dy (double backward).
template <typename scalar_t>
__global__ void bias_act_grad_kernel(const scalar_t* __restrict__ dy, const scalar_t* __restrict__ x,
                                     const scalar_t* __restrict__ b, scalar_t* __restrict__ dx,
                                     int64_t numel, int64_t b_step, int64_t b_len, int act,
                                     at::opmath_type<scalar_t> alpha, at::opmath_type<scalar_t> gain,
                                     at::opmath_type<scalar_t> clamp) {
    using acc_t = at::opmath_type<scalar_t>;
    const int64_t stride = static_cast<int64_t>(blockDim.x) * gridDim.x;
    for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < numel; i += stride) {
        acc_t z = static_cast<acc_t>(x[i]);
        if (b != nullptr) z += static_cast<acc_t>(b[(i / b_step) % b_len]);
        dx[i] = static_cast<scalar_t>(static_cast<acc_t>(dy[i]) * bias_act_slope<acc_t>(z, act, alpha, gain, clamp));
    }
}

struct Prepared {
    at::Tensor x;
    at::Tensor b;  // undefined when there is no bias
    int64_t b_step = 1;
    int64_t b_len = 1;
};

Prepared prepare(const at::Tensor& x, const std::optional<at::Tensor>& b, int64_t dim, int64_t act) {
    TORCH_CHECK(x.is_cuda(), "bias_act: x must be a CUDA tensor");
    TORCH_CHECK(act == kLinear || act == kRelu || act == kLrelu, "bias_act: unknown activation code ", act);
    Prepared p;
    // Keep dense layouts as they are (the output copies them); compact anything else.
    p.x = x.is_non_overlapping_and_dense() ? x : x.contiguous();
    if (b.has_value() && b->defined()) {
        TORCH_CHECK(x.dim() > 0, "bias_act: x needs at least one dimension to add a bias");
        TORCH_CHECK(dim >= 0 && dim < x.dim(), "bias_act: dim ", dim, " out of range for ", x.dim(), "-D x");
        TORCH_CHECK(b->dim() == 1 && b->size(0) == x.size(dim), "bias_act: bias of shape ", b->sizes(),
                    " does not match dimension ", dim, " of x ", x.sizes());
        TORCH_CHECK(b->device() == x.device(), "bias_act: b must be on the device of x");
        TORCH_CHECK(b->scalar_type() == x.scalar_type(), "bias_act: b must have the dtype of x");
        p.b = b->contiguous();
        p.b_len = x.size(dim);
        p.b_step = p.b_len > 1 ? p.x.stride(dim) : 1;
    }
    return p;
}

}  // namespace

at::Tensor bias_act_forward(const at::Tensor& x, const std::optional<at::Tensor>& b, int64_t dim, int64_t act,
                            double alpha, double gain, double clamp) {
    Prepared p = prepare(x, b, dim, act);
    at::Tensor y = at::empty_like(p.x);
    const int64_t numel = p.x.numel();
    if (numel == 0) return y;
    const c10::cuda::CUDAGuard guard(p.x.device());
    cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
    AT_DISPATCH_FLOATING_TYPES_AND2(at::ScalarType::Half, at::ScalarType::BFloat16, p.x.scalar_type(),
                                    "persona_bias_act_forward", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        bias_act_forward_kernel<scalar_t><<<blocks_for(numel), kThreads, 0, stream>>>(
            p.x.data_ptr<scalar_t>(), p.b.defined() ? p.b.data_ptr<scalar_t>() : nullptr,
            y.data_ptr<scalar_t>(), numel, p.b_step, p.b_len, static_cast<int>(act),
            static_cast<acc_t>(alpha), static_cast<acc_t>(gain), static_cast<acc_t>(clamp));
        C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
    return y;
}

at::Tensor bias_act_grad(const at::Tensor& dy, const at::Tensor& x, const std::optional<at::Tensor>& b,
                         int64_t dim, int64_t act, double alpha, double gain, double clamp) {
    Prepared p = prepare(x, b, dim, act);
    TORCH_CHECK(dy.sizes() == x.sizes(), "bias_act_grad: dy of shape ", dy.sizes(), " does not match x ", x.sizes());
    TORCH_CHECK(dy.device() == x.device() && dy.scalar_type() == x.scalar_type(),
                "bias_act_grad: dy must have the device and dtype of x");
    // The kernel walks dy and x in the same storage order: give dy the layout of x.
    at::Tensor g = dy;
    if (dy.strides() != p.x.strides()) {
        g = at::empty_like(p.x);
        g.copy_(dy);
    }
    at::Tensor dx = at::empty_like(p.x);
    const int64_t numel = p.x.numel();
    if (numel == 0) return dx;
    const c10::cuda::CUDAGuard guard(p.x.device());
    cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
    AT_DISPATCH_FLOATING_TYPES_AND2(at::ScalarType::Half, at::ScalarType::BFloat16, p.x.scalar_type(),
                                    "persona_bias_act_grad", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        bias_act_grad_kernel<scalar_t><<<blocks_for(numel), kThreads, 0, stream>>>(
            g.data_ptr<scalar_t>(), p.x.data_ptr<scalar_t>(), p.b.defined() ? p.b.data_ptr<scalar_t>() : nullptr,
            dx.data_ptr<scalar_t>(), numel, p.b_step, p.b_len, static_cast<int>(act),
            static_cast<acc_t>(alpha), static_cast<acc_t>(gain), static_cast<acc_t>(clamp));
        C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
    return dx;
}

}  // namespace persona_ops
