"""The fast CPU path and the readable references must agree."""

import itertools

import pytest
import torch
import torch.nn.functional as F

from generation.stylegan.ops import make_filter
from generation.stylegan.ops.bias_act import bias_act_reference
from generation.stylegan.ops.fast_cpu import upfirdn2d_fast
from generation.stylegan.ops.modulated_conv2d import modulated_conv2d_fast, modulated_conv2d_reference
from generation.stylegan.ops.upfirdn2d import upfirdn2d_reference


def random(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def test_upfirdn2d_reference_matches_a_direct_definition():
    # Zero-stuff, pad, true convolution, written out pixel by pixel for a tiny case.
    x = random(1, 1, 3, 3)
    f = random(2, 2, seed=1)
    up, (px0, px1) = 2, (1, 0)
    stuffed = torch.zeros(6, 6)
    stuffed[::2, ::2] = x[0, 0]
    padded = F.pad(stuffed, [px0, px1, px0, px1])
    out_size = padded.shape[0] - 2 + 1
    expected = torch.zeros(out_size, out_size)
    for i, j in itertools.product(range(out_size), repeat=2):
        window = padded[i : i + 2, j : j + 2]
        expected[i, j] = (window * f.flip([0, 1])).sum()
    actual = upfirdn2d_reference(x, f, up=up, padding=[px0, px1, px0, px1])
    assert torch.allclose(actual[0, 0], expected, atol=1e-6)


@pytest.mark.parametrize(
    "up,down,padding,flip,separable",
    [
        (1, 1, 1, False, False),
        (1, 1, [1, 1, 2, 2], True, False),
        (2, 1, [2, 1, 2, 1], False, False),
        (2, 1, [2, 1, 2, 1], True, True),
        (2, 1, [1, 1, 1, 1], False, False),
        (1, 2, 1, False, False),  # not a fast case: falls back to the reference
        (2, 2, [0, -1, 1, 0], False, True),
    ],
)
def test_fast_upfirdn2d_matches_the_reference(up, down, padding, flip, separable):
    x = random(2, 5, 7, 7)
    f = random(4, seed=2) if separable else random(4, 4, seed=2)
    expected = upfirdn2d_reference(x, f, up=up, down=down, padding=padding, flip_filter=flip, gain=3)
    actual = upfirdn2d_fast(x, f, up=up, down=down, padding=padding, flip_filter=flip, gain=3)
    assert actual.shape == expected.shape
    assert torch.allclose(actual, expected, atol=1e-5)


@pytest.mark.parametrize("act,clamp", [("linear", None), ("lrelu", None), ("lrelu", 0.5), ("relu", None)])
def test_bias_act_reference(act, clamp):
    x, b = random(2, 3, 4), random(3, seed=1)
    y = bias_act_reference(x, b, act=act, clamp=clamp)
    z = x + b[None, :, None]
    expected = {"linear": z, "lrelu": F.leaky_relu(z, 0.2) * 2**0.5, "relu": F.relu(z) * 2**0.5}[act]
    if clamp is not None:
        expected = expected.clamp(-clamp, clamp)
    assert torch.allclose(y, expected)
    with pytest.raises(ValueError, match="unknown activation"):
        bias_act_reference(x, act="swish")


@pytest.mark.parametrize(
    "up,demodulate,noise,act,clamp",
    [
        (1, True, "const", "lrelu", None),
        (2, True, "random", "lrelu", 0.3),
        (1, False, None, "linear", None),
        (2, True, None, "relu", None),
    ],
)
def test_fast_modulated_conv2d_matches_the_reference(up, demodulate, noise, act, clamp):
    n, i, o, k, res = 3, 6, 5, 3 if demodulate else 1, 8
    x, weight, styles = random(n, i, res, res), random(o, i, k, k, seed=1), random(n, i, seed=2)
    bias = random(o, seed=3)
    noise_tensor = {"const": random(res * up, res * up, seed=4), "random": random(n, 1, res * up, res * up, seed=4)}
    kwargs = dict(
        demodulate=demodulate, up=up, padding=k // 2, resample_filter=make_filter([1, 3, 3, 1]),
        noise=noise_tensor.get(noise), bias=bias, act=act, gain=1.7, clamp=clamp,
    )  # fmt: skip
    expected = modulated_conv2d_reference(x, weight, styles, **kwargs)
    actual = modulated_conv2d_fast(x, weight, styles, **kwargs)
    assert actual.shape == expected.shape == (n, o, res * up, res * up)
    assert torch.allclose(actual, expected, atol=1e-5)
    if clamp is not None:
        assert actual.abs().max() <= clamp


def test_the_fast_path_serves_inference_and_the_reference_serves_autograd():
    from generation.stylegan.ops.dispatch import implementation, use_reference_ops

    x = torch.zeros(1, 1, 2, 2)
    with torch.no_grad():
        assert implementation(x) == "fast_cpu"
        with use_reference_ops():
            assert implementation(x) == "reference"
    assert implementation(x) == "reference"
