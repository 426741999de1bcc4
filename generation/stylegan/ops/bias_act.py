"""Fused bias + activation: the readable reference.

y = clamp(act(x + b) * gain, -clamp, clamp), with the bias broadcast along ``dim``.
The gains keep the activations' second moment roughly constant (He et al. 2015),
as the StyleGAN2 paper's equalized learning rate assumes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Activation:
    function: Callable[[torch.Tensor, float], torch.Tensor]
    default_alpha: float
    default_gain: float


ACTIVATIONS: dict[str, Activation] = {
    "linear": Activation(lambda x, alpha: x, 0.0, 1.0),
    "relu": Activation(lambda x, alpha: F.relu(x), 0.0, math.sqrt(2)),
    "lrelu": Activation(lambda x, alpha: F.leaky_relu(x, alpha), 0.2, math.sqrt(2)),
}


def resolve_activation(act: str, alpha: float | None, gain: float | None) -> tuple[Activation, float, float]:
    """Look up ``act`` and fill in its default slope and gain."""
    if act not in ACTIVATIONS:
        raise ValueError(f"unknown activation {act!r}; expected one of {sorted(ACTIVATIONS)}")
    spec = ACTIVATIONS[act]
    return (
        spec,
        spec.default_alpha if alpha is None else float(alpha),
        spec.default_gain if gain is None else float(gain),
    )


def bias_act_reference(
    x: torch.Tensor,
    b: torch.Tensor | None = None,
    dim: int = 1,
    act: str = "linear",
    alpha: float | None = None,
    gain: float | None = None,
    clamp: float | None = None,
) -> torch.Tensor:
    """Reference bias + activation.

    x: any shape; b: [x.shape[dim]] or None. Returns a tensor shaped and typed like x.
    """
    spec, alpha, gain = resolve_activation(act, alpha, gain)
    if b is not None:
        if b.ndim != 1 or b.shape[0] != x.shape[dim]:
            raise ValueError(f"bias of shape {tuple(b.shape)} does not match dimension {dim} of {tuple(x.shape)}")
        x = x + b.to(x.dtype).reshape([-1 if i == dim else 1 for i in range(x.ndim)])
    x = spec.function(x, alpha)
    if gain != 1:
        x = x * gain
    if clamp is not None and clamp >= 0:
        x = x.clamp(-clamp, clamp)
    return x
