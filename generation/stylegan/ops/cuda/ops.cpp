// Python bindings of persona-studio's CUDA ops (bias_act.cu, upfirdn2d.cu).
// The autograd-aware wrappers that call these live in functions.py.
#include <torch/extension.h>

#include <optional>

namespace persona_ops {
at::Tensor bias_act_forward(const at::Tensor& x, const std::optional<at::Tensor>& b, int64_t dim, int64_t act,
                            double alpha, double gain, double clamp);
at::Tensor bias_act_grad(const at::Tensor& dy, const at::Tensor& x, const std::optional<at::Tensor>& b,
                         int64_t dim, int64_t act, double alpha, double gain, double clamp);
at::Tensor upfirdn2d_forward(const at::Tensor& x, const at::Tensor& g, int64_t up_x, int64_t up_y, int64_t down_x,
                             int64_t down_y, int64_t pad_x0, int64_t pad_x1, int64_t pad_y0, int64_t pad_y1);
}  // namespace persona_ops

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
    m.doc() = "persona-studio StyleGAN2 CUDA ops: bias_act and upfirdn2d";
    m.def("bias_act", &persona_ops::bias_act_forward,
          "y = clamp(act(x + b) * gain); act codes 0 linear, 1 relu, 2 lrelu; clamp < 0 disables clamping",
          py::arg("x"), py::arg("b"), py::arg("dim"), py::arg("act"), py::arg("alpha"), py::arg("gain"),
          py::arg("clamp"));
    m.def("bias_act_grad", &persona_ops::bias_act_grad, "dy * d bias_act / dx, laid out like x", py::arg("dy"),
          py::arg("x"), py::arg("b"), py::arg("dim"), py::arg("act"), py::arg("alpha"), py::arg("gain"),
          py::arg("clamp"));
    m.def("upfirdn2d", &persona_ops::upfirdn2d_forward,
          "zero-insertion up-sampling, padding, correlation with the ready [fh, fw] filter g, down-sampling",
          py::arg("x"), py::arg("g"), py::arg("up_x"), py::arg("up_y"), py::arg("down_x"), py::arg("down_y"),
          py::arg("pad_x0"), py::arg("pad_x1"), py::arg("pad_y0"), py::arg("pad_y1"));
}
