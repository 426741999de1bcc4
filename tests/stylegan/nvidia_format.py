"""Writes test checkpoints in the StyleGAN2-ADA ``.pkl`` format from our own generators.

The public code pickles each network as a call of
``torch_utils.persistence._reconstruct_persistent_obj(meta)``; tensors pickle the usual
way (``torch._utils._rebuild_tensor_v2`` over ``torch.storage._load_from_bytes``).
Stand-in modules with those names let the standard pickler write the same byte stream
without NVIDIA's code.
"""

from __future__ import annotations

import collections
import pickle
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from generation.stylegan import Generator


class PersistentStandIn:
    def __init__(self, meta: dict) -> None:
        self.meta = meta

    def __reduce__(self):
        return (_reconstruct_persistent_obj, (self.meta,))


def _reconstruct_persistent_obj(meta):  # only ever pickled by reference, never called
    raise AssertionError("test stand-in")


class EasyDict(dict):
    pass


class _Placeholder:
    pass


def _install_stand_in_modules() -> None:
    persistence = types.ModuleType("torch_utils.persistence")
    persistence._reconstruct_persistent_obj = _reconstruct_persistent_obj
    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    util = types.ModuleType("dnnlib.util")
    util.EasyDict = EasyDict
    EasyDict.__module__ = "dnnlib.util"
    sys.modules.setdefault("torch_utils", types.ModuleType("torch_utils"))
    sys.modules.setdefault("dnnlib", types.ModuleType("dnnlib"))
    sys.modules["torch_utils.persistence"] = persistence
    sys.modules["dnnlib.util"] = util


def record(module: nn.Module, init_kwargs: dict | None = None, extra: dict | None = None) -> PersistentStandIn:
    """The persistent-object record of ``module`` and, recursively, its children."""
    state: dict[str, Any] = {
        "training": False,
        "_parameters": collections.OrderedDict(module._parameters),
        "_buffers": collections.OrderedDict(module._buffers),
        "_non_persistent_buffers_set": set(),
        "_modules": collections.OrderedDict((name, record(child)) for name, child in module._modules.items()),
        "_forward_hooks": collections.OrderedDict(),
        "_init_args": (),
        "_init_kwargs": EasyDict(init_kwargs or {}),
        **(extra or {}),
    }
    if hasattr(module, "weight_gain"):
        state["weight_gain"] = np.float64(module.weight_gain)
    meta = {
        "type": "class",
        "version": 6,
        "module_src": "raise RuntimeError('this source must never run')",
        "class_name": type(module).__name__,
        "state": state,
    }
    return PersistentStandIn(meta)


def generator_record(generator: Generator, extra: dict | None = None) -> PersistentStandIn:
    config = generator.config
    init_kwargs = {
        "z_dim": config.z_dim,
        "c_dim": config.c_dim,
        "w_dim": config.w_dim,
        "img_resolution": config.img_resolution,
        "img_channels": config.img_channels,
        "mapping_kwargs": EasyDict(num_layers=config.mapping_layers),
        "synthesis_kwargs": EasyDict(
            channel_base=config.channel_base,
            channel_max=config.channel_max,
            num_fp16_res=config.num_fp16_res,
            conv_clamp=config.conv_clamp,
        ),
    }
    return record(generator, init_kwargs, extra)


def write_checkpoint(path: Path, networks: dict[str, Any], protocol: int = 4) -> Path:
    _install_stand_in_modules()
    with open(path, "wb") as f:
        pickle.dump(networks, f, protocol=protocol)
    return path
