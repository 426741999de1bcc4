"""Our CUDA kernels against the readable reference ops.

The GPU tests (marker ``gpu``) build the extension and compare values and gradients over
grids of arguments: float32 within 1e-5, float16 within 1e-3 (bfloat16 within 1e-2),
|ours - ref| <= tol + tol * |ref|. Low-precision results are compared with the reference
evaluated in float32 on the very same (low-precision) input values, so the tolerance
measures the kernel's error and not the reference's own per-step rounding. TF32 is
switched off so that the float32 reference is exact float32.

Without CUDA the GPU tests are skipped with the reason shown by ``pytest -ra``; the tests
without the marker check, on the CPU, the math the CUDA wrappers rely on.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Iterator

import pytest
import torch

from generation.stylegan.ops.bias_act import bias_act_reference
from generation.stylegan.ops.cuda.functions import bias_act_cuda, upfirdn2d_cuda, upfirdn2d_grad_padding
from generation.stylegan.ops.upfirdn2d import as_padding, as_pair, upfirdn2d_reference

CUDA = torch.cuda.is_available()
requires_cuda = pytest.mark.skipif(
    not CUDA,
    reason=f"CUDA is not available (torch {torch.__version__}, CUDA {torch.version.cuda}): GPU kernel tests skipped",
)

TOLERANCE = {torch.float32: 1e-5, torch.float16: 1e-3, torch.bfloat16: 1e-2, torch.float64: 1e-10}


def assert_close(ours: torch.Tensor, ref: torch.Tensor, tol: float, what: str) -> None:
    assert ours.shape == ref.shape, f"{what}: shape {tuple(ours.shape)} != {tuple(ref.shape)}"
    ours64, ref64 = ours.double(), ref.double()
    err = (ours64 - ref64).abs()
    bound = tol + tol * ref64.abs()
    bad = err > bound
    if bad.any():
        i = int(bad.flatten().nonzero()[0])
        raise AssertionError(
            f"{what}: {int(bad.sum())} of {bad.numel()} elements off; max error {float(err.max()):.3g}; "
            f"first at flat index {i}: ours {float(ours64.flatten()[i])!r}, ref {float(ref64.flatten()[i])!r}"
        )


# ---------------------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------------------

FILTERS = {
    # 1-D (separable) and asymmetric, so that a wrong flip cannot pass.
    "sep4": lambda: torch.tensor([1.0, 2.0, 5.0, 3.0]) / 11,
    # The synthesis network's binomial filter.
    "binomial": lambda: torch.tensor([1.0, 3.0, 3.0, 1.0]) / 8,
    # A random 2-D filter, not square.
    "2d3x5": lambda: torch.randn([3, 5], generator=torch.Generator().manual_seed(5)),
}
UPS = [1, 2, (2, 1)]
DOWNS = [1, 2, (1, 2)]
PADDINGS = [0, 2, [1, 2], [2, 1, 0, 3], [-1, 2, 1, -2]]


def upfirdn2d_cases() -> Iterator[dict]:
    for up, down, padding, flip, gain in itertools.product(UPS, DOWNS, PADDINGS, [False, True], [1.0, 4.0]):
        yield dict(up=up, down=down, padding=padding, flip_filter=flip, gain=gain)


def bias_act_cases() -> Iterator[tuple[list[int], int, dict]]:
    layouts = [([4, 5, 6, 7], 1), ([4, 5, 6, 7], 3), ([4, 5, 6, 7], 0), ([8, 16], 1), ([8, 16], 0), ([30], 0)]
    acts = [("linear", None), ("relu", None), ("lrelu", None), ("lrelu", 0.3)]
    for (shape, dim), (act, alpha), gain, clamp, bias in itertools.product(
        layouts, acts, [None, 1.0, 0.5], [None, -1.0, 0.5, 256.0], [True, False]
    ):
        yield shape, dim, dict(act=act, alpha=alpha, gain=gain, clamp=clamp, bias=bias)


def _inputs(shape, device, dtype, seed=0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=g) * scale).to(device=device, dtype=dtype)


# ---------------------------------------------------------------------------------------
# Checks (device-agnostic, so that they can also be pointed at a CPU twin of the kernels)
# ---------------------------------------------------------------------------------------


def check_upfirdn2d_values(device: str, dtype: torch.dtype, filter_name: str) -> int:
    f = FILTERS[filter_name]()
    x = _inputs([2, 3, 9, 10], device, dtype, seed=1)
    n = 0
    for case in upfirdn2d_cases():
        ours = upfirdn2d_cuda(x, f, **case)
        ref = upfirdn2d_reference(x.float(), f.to(device), **case)
        assert ours.dtype == dtype
        assert_close(ours, ref, TOLERANCE[dtype], f"upfirdn2d {dtype} {filter_name} {case}")
        n += 1
    return n


def check_upfirdn2d_layouts(device: str, dtype: torch.dtype) -> None:
    f = FILTERS["binomial"]()
    base = _inputs([4, 64, 34, 33], device, dtype, seed=2)
    variants = {
        "contiguous": base,
        "channels_last": base.contiguous(memory_format=torch.channels_last),
        "strided view": base[:, ::2, 1:-1, ::3],
    }
    for name, x in variants.items():
        for case in [
            dict(up=2, padding=[2, 1, 2, 1], gain=4.0),  # what upsample2d does with [1, 3, 3, 1]
            dict(down=2, padding=[1, 1, 1, 1]),  # a 2x down-sampling
            dict(padding=[1, 2, 2, 1]),  # a pure blur
        ]:
            ours = upfirdn2d_cuda(x, f, **case)
            ref = upfirdn2d_reference(x.float(), f.to(device), **case)
            assert_close(ours, ref, TOLERANCE[dtype], f"upfirdn2d {dtype} {name} {case}")


def check_upfirdn2d_grads(device: str, dtype: torch.dtype, filter_name: str) -> int:
    f = FILTERS[filter_name]()
    n = 0
    for case in upfirdn2d_cases():
        if case["gain"] != 1.0 and case["flip_filter"]:
            continue  # keep the grid small: gain and flip are checked separately below
        x = _inputs([2, 3, 9, 10], device, dtype, seed=3).requires_grad_(True)
        ours = upfirdn2d_cuda(x, f, **case)
        dy = _inputs(ours.shape, device, dtype, seed=4)
        (dx,) = torch.autograd.grad(ours, x, dy)
        x_ref = x.detach().float().requires_grad_(True)
        ref = upfirdn2d_reference(x_ref, f.to(device), **case)
        (dx_ref,) = torch.autograd.grad(ref, x_ref, dy.float())
        assert dx.dtype == dtype
        assert_close(dx, dx_ref, TOLERANCE[dtype], f"upfirdn2d grad {dtype} {filter_name} {case}")
        n += 1
    return n


def check_upfirdn2d_gradcheck(device: str) -> None:
    f2 = FILTERS["2d3x5"]().double()
    f1 = FILTERS["sep4"]().double()
    cases = [
        (f2, dict(up=2, down=1, padding=[2, 1, 1, 2])),
        (f2, dict(up=1, down=2, padding=[1, 0, 2, 1], flip_filter=True, gain=2.0)),
        (f1, dict(up=(2, 1), down=(1, 2), padding=[-1, 2, 1, -1])),
        (f1, dict(up=2, down=2, padding=3, gain=4.0)),
    ]
    for f, case in cases:
        x = _inputs([1, 2, 5, 6], device, torch.float64, seed=6).requires_grad_(True)
        fn = lambda t, f=f, case=case: upfirdn2d_cuda(t, f, **case)  # noqa: E731
        assert torch.autograd.gradcheck(fn, (x,)), case
        assert torch.autograd.gradgradcheck(fn, (x,)), case


def check_bias_act_values(device: str, dtype: torch.dtype) -> int:
    n = 0
    for shape, dim, case in bias_act_cases():
        x = _inputs(shape, device, dtype, seed=7, scale=2.0)
        b = _inputs([shape[dim]], device, dtype, seed=8) if case["bias"] else None
        kwargs = {k: v for k, v in case.items() if k != "bias"}
        ours = bias_act_cuda(x, b, dim=dim, **kwargs)
        ref = bias_act_reference(x.float(), None if b is None else b.float(), dim=dim, **kwargs)
        assert ours.dtype == dtype
        assert_close(ours, ref, TOLERANCE[dtype], f"bias_act {dtype} {shape} dim={dim} {case}")
        n += 1
    return n


def check_bias_act_layouts(device: str, dtype: torch.dtype) -> None:
    base = _inputs([3, 8, 5, 6], device, dtype, seed=9, scale=2.0)
    b = _inputs([8], device, dtype, seed=10)
    variants = {
        "channels_last": lambda t: t.contiguous(memory_format=torch.channels_last),
        "transposed": lambda t: t.transpose(2, 3),  # dense, not contiguous
        "strided view": lambda t: t[:, :, ::2, 1:],  # not dense
    }
    kwargs = dict(dim=1, act="lrelu", clamp=1.0)
    for name, view in variants.items():
        leaf = base.detach().clone().requires_grad_(True)
        bg = b.detach().clone().requires_grad_(True)
        ours = bias_act_cuda(view(leaf), bg, **kwargs)
        leaf_ref = base.detach().float().requires_grad_(True)
        br = b.detach().float().requires_grad_(True)
        ref = bias_act_reference(view(leaf_ref), br, **kwargs)
        assert_close(ours, ref, TOLERANCE[dtype], f"bias_act {dtype} {name}")
        dy = _inputs(ours.shape, device, dtype, seed=11)
        dx, db = torch.autograd.grad(ours, [leaf, bg], dy)
        dxr, dbr = torch.autograd.grad(ref, [leaf_ref, br], dy.float())
        assert_close(dx, dxr, TOLERANCE[dtype], f"bias_act dx {dtype} {name}")
        check_bias_grad(db, dbr, view(dx), 1, dtype, f"bias_act db {dtype} {name}")


def check_bias_grad(db, db_ref, dx, dim, dtype, what) -> None:
    """db against the reference; in low precision against the sum of our own dx.

    Our dx is already checked element by element; in float16 its rounding, summed over
    hundreds of terms, would swamp a 1e-3 tolerance on db, so there db is checked to be
    that sum (rounded once), and db_ref only loosely.
    """
    assert db.dtype == dtype
    if dtype in (torch.float32, torch.float64):
        assert_close(db, db_ref, TOLERANCE[dtype], what)
        return
    dims = [d for d in range(dx.ndim) if d != dim]
    total, magnitude = (
        (dx.double().sum(dims), dx.double().abs().sum(dims)) if dims else (dx.double(), dx.double().abs())
    )
    assert_close(db, total, TOLERANCE[dtype], what + " (vs the sum of dx)")
    scale = float(magnitude.max()) + 1.0
    assert_close(db, db_ref, TOLERANCE[dtype] * scale, what + " (vs the reference)")


def check_bias_act_grads(device: str, dtype: torch.dtype) -> int:
    n = 0
    for shape, dim, case in bias_act_cases():
        if not case["bias"]:
            continue
        kwargs = {k: v for k, v in case.items() if k != "bias"}
        x = _inputs(shape, device, dtype, seed=12, scale=2.0).requires_grad_(True)
        b = _inputs([shape[dim]], device, dtype, seed=13).requires_grad_(True)
        ours = bias_act_cuda(x, b, dim=dim, **kwargs)
        dy = _inputs(shape, device, dtype, seed=14)
        dx, db = torch.autograd.grad(ours, [x, b], dy)
        xr = x.detach().float().requires_grad_(True)
        br = b.detach().float().requires_grad_(True)
        ref = bias_act_reference(xr, br, dim=dim, **kwargs)
        dxr, dbr = torch.autograd.grad(ref, [xr, br], dy.float())
        what = f"bias_act grad {dtype} {shape} dim={dim} {case}"
        assert dx.dtype == dtype
        assert_close(dx, dxr, TOLERANCE[dtype], what + " dx")
        check_bias_grad(db, dbr, dx, dim, dtype, what + " db")
        n += 1
    return n


def check_bias_act_gradcheck(device: str) -> None:
    for act, clamp in [("linear", 0.8), ("relu", None), ("lrelu", 0.8), ("lrelu", None)]:
        x = _inputs([2, 3, 4], device, torch.float64, seed=15, scale=1.0).requires_grad_(True)
        b = _inputs([3], device, torch.float64, seed=16, scale=0.3).requires_grad_(True)
        fn = lambda t, c, act=act, clamp=clamp: bias_act_cuda(t, c, dim=1, act=act, gain=1.3, clamp=clamp)  # noqa: E731
        assert torch.autograd.gradcheck(fn, (x, b)), (act, clamp)
        assert torch.autograd.gradgradcheck(fn, (x, b)), (act, clamp)


# ---------------------------------------------------------------------------------------
# GPU tests
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cuda_ext():
    if not CUDA:
        pytest.skip("CUDA is not available")
    from generation.stylegan.ops.cuda.build import OpsBuildError, build_all, get_extension

    try:
        build_all()
    except OpsBuildError as exc:
        pytest.fail(f"building the CUDA ops failed on a CUDA machine:\n{exc}")
    ext = get_extension()
    assert ext is not None
    return ext


@pytest.fixture
def exact_fp32():
    """TF32 off, so that the float32 reference convolutions are exact float32."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


LOW_AND_FULL = [torch.float32, torch.float16, torch.bfloat16]


@pytest.mark.parametrize("dtype", LOW_AND_FULL, ids=str)
@pytest.mark.parametrize("filter_name", list(FILTERS))
@pytest.mark.gpu
@requires_cuda
@pytest.mark.usefixtures("cuda_ext", "exact_fp32")
def test_upfirdn2d_matches_reference(dtype, filter_name):
    assert check_upfirdn2d_values("cuda", dtype, filter_name) == 180


@pytest.mark.parametrize("dtype", LOW_AND_FULL, ids=str)
@pytest.mark.gpu
@requires_cuda
@pytest.mark.usefixtures("cuda_ext", "exact_fp32")
def test_upfirdn2d_layouts_and_generator_shapes(dtype):
    check_upfirdn2d_layouts("cuda", dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=str)
@pytest.mark.parametrize("filter_name", list(FILTERS))
@pytest.mark.gpu
@requires_cuda
@pytest.mark.usefixtures("cuda_ext", "exact_fp32")
def test_upfirdn2d_gradients_match_reference(dtype, filter_name):
    assert check_upfirdn2d_grads("cuda", dtype, filter_name) == 135


@pytest.mark.gpu
@requires_cuda
@pytest.mark.usefixtures("cuda_ext")
def test_upfirdn2d_gradcheck_float64():
    check_upfirdn2d_gradcheck("cuda")


@pytest.mark.parametrize("dtype", LOW_AND_FULL, ids=str)
@pytest.mark.gpu
@requires_cuda
@pytest.mark.usefixtures("cuda_ext", "exact_fp32")
def test_bias_act_matches_reference(dtype):
    assert check_bias_act_values("cuda", dtype) == 576


@pytest.mark.parametrize("dtype", LOW_AND_FULL, ids=str)
@pytest.mark.gpu
@requires_cuda
@pytest.mark.usefixtures("cuda_ext", "exact_fp32")
def test_bias_act_layouts(dtype):
    check_bias_act_layouts("cuda", dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=str)
@pytest.mark.gpu
@requires_cuda
@pytest.mark.usefixtures("cuda_ext", "exact_fp32")
def test_bias_act_gradients_match_reference(dtype):
    assert check_bias_act_grads("cuda", dtype) == 288


@pytest.mark.gpu
@requires_cuda
@pytest.mark.usefixtures("cuda_ext")
def test_bias_act_gradcheck_float64():
    check_bias_act_gradcheck("cuda")


@pytest.mark.gpu
@requires_cuda
@pytest.mark.usefixtures("cuda_ext", "exact_fp32")
def test_public_ops_dispatch_to_the_kernels():
    from generation.stylegan import ops
    from generation.stylegan.ops.cuda import cuda_ops_available

    assert cuda_ops_available()
    x = _inputs([2, 8, 16, 16], "cuda", torch.float16, seed=17)
    b = _inputs([8], "cuda", torch.float16, seed=18)
    f = FILTERS["binomial"]().cuda()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a successful build must not warn about a fallback
        y = ops.bias_act(x, b, act="lrelu", clamp=256)
        assert torch.equal(y, bias_act_cuda(x, b, act="lrelu", clamp=256))
        u = ops.upfirdn2d(x, f, up=2, padding=[2, 1, 2, 1], gain=4)
        assert torch.equal(u, upfirdn2d_cuda(x, f, up=2, padding=[2, 1, 2, 1], gain=4))


# ---------------------------------------------------------------------------------------
# CPU tests: the math behind the wrappers
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("filter_name", ["sep4", "2d3x5"])
def test_upfirdn2d_gradient_is_an_upfirdn2d_with_the_grad_padding(filter_name):
    """The backward pass's formula, checked with the reference op and its autograd."""
    f = FILTERS[filter_name]().double()
    fh, fw = (f.shape[0], f.shape[0]) if f.ndim == 1 else tuple(f.shape)
    checked = 0
    for case in upfirdn2d_cases():
        up_x, up_y = as_pair(case["up"], "up")
        down_x, down_y = as_pair(case["down"], "down")
        px0, _, py0, _ = as_padding(case["padding"])
        x = _inputs([1, 2, 9, 10], "cpu", torch.float64, seed=19).requires_grad_(True)
        y = upfirdn2d_reference(x, f, **case)
        dy = _inputs(y.shape, "cpu", torch.float64, seed=20)
        (dx_autograd,) = torch.autograd.grad(y, x, dy)
        gx = upfirdn2d_grad_padding(fw, x.shape[3], y.shape[3], up_x, down_x, px0)
        gy = upfirdn2d_grad_padding(fh, x.shape[2], y.shape[2], up_y, down_y, py0)
        dx_formula = upfirdn2d_reference(
            dy, f, up=(down_x, down_y), down=(up_x, up_y), padding=[*gx, *gy],
            flip_filter=not case["flip_filter"], gain=case["gain"],
        )
        assert dx_formula.shape == x.shape, case
        assert_close(dx_formula, dx_autograd, 1e-12, f"adjoint {filter_name} {case}")
        checked += 1
    assert checked == 180


def test_wrappers_use_the_reference_for_cpu_tensors_without_warning():
    x = _inputs([2, 4, 6, 6], "cpu", torch.float32, seed=21)
    b = _inputs([4], "cpu", torch.float32, seed=22)
    f = FILTERS["binomial"]()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert torch.equal(
            bias_act_cuda(x, b, act="lrelu", clamp=0.5), bias_act_reference(x, b, act="lrelu", clamp=0.5)
        )
        assert torch.equal(upfirdn2d_cuda(x, f, up=2, padding=1), upfirdn2d_reference(x, f, up=2, padding=1))
