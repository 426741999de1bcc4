"""Import of the ``.pkl`` checkpoints written by NVIDIA's public StyleGAN2-ADA code
(and by the StyleGAN3 code base for its StyleGAN2 architecture).

Those files pickle each network through a "persistence" wrapper that embeds the
module's source code. The standard unpickler would import and run arbitrary globals;
``SafeUnpickler`` resolves only an allow-list of names, each to a function of ours that
builds plain data (dicts, tensors, NumPy scalars), never executes the embedded source,
and refuses anything else. The result is converted into our config and weights.
"""

from __future__ import annotations

import collections
import io
import pickle
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch

from .checkpoint import CheckpointError
from .config import GeneratorConfig
from .generator import Generator
from .ops import make_filter

SUPPORTED_PERSISTENCE_VERSIONS = {4, 5, 6}
KNOWN_CLASSES = {
    "Generator",
    "MappingNetwork",
    "SynthesisNetwork",
    "SynthesisBlock",
    "SynthesisLayer",
    "ToRGBLayer",
    "FullyConnectedLayer",
    "Conv2dLayer",
    "Discriminator",
    "DiscriminatorBlock",
    "DiscriminatorEpilogue",
    "MinibatchStdLayer",
    "AugmentPipe",
}


@dataclass
class PersistentObject:
    """A network object as the checkpoint describes it: class name + ``__dict__``."""

    class_name: str
    state: dict[str, Any]
    children: dict[str, PersistentObject] = field(default_factory=dict)


class EasyDict(dict):
    """Stands in for ``dnnlib.util.EasyDict`` (a dict with attribute access)."""


def _reconstruct_persistent_obj(meta: Any) -> PersistentObject:
    if not isinstance(meta, dict) or meta.get("type") != "class":
        raise CheckpointError("unsupported persistent object in checkpoint (expected a class record)")
    version = meta.get("version")
    if version not in SUPPORTED_PERSISTENCE_VERSIONS:
        raise CheckpointError(f"unsupported StyleGAN persistence version {version!r}")
    class_name = meta.get("class_name")
    if class_name not in KNOWN_CLASSES:
        raise CheckpointError(f"checkpoint holds an unknown network class {class_name!r}")
    state = meta.get("state")
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint record for {class_name} has no state")
    # meta["module_src"] is deliberately ignored: it is code, and we never run it.
    children = {name: child for name, child in (state.get("_modules") or {}).items() if child is not None}
    return PersistentObject(class_name=class_name, state=state, children=children)


def _load_storage_from_bytes(data: bytes) -> Any:
    if not isinstance(data, (bytes, bytearray)):
        raise CheckpointError("malformed tensor storage in checkpoint")
    # torch's weights-only unpickler is itself restricted to tensors and storages.
    return torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")


def _rebuild_tensor(storage: Any, storage_offset: int, size: tuple, stride: tuple, *_ignored: Any) -> torch.Tensor:
    if not isinstance(storage, torch.storage.TypedStorage):
        raise CheckpointError("malformed tensor in checkpoint")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # TypedStorage deprecation: the file format uses it
        base = torch.empty(0, dtype=storage.dtype).set_(storage._untyped_storage, 0, (storage.size(),), (1,))
    return torch.as_strided(base, tuple(size), tuple(stride), storage_offset).clone()


def _rebuild_parameter(data: torch.Tensor, requires_grad: bool, backward_hooks: Any) -> torch.Tensor:
    if not isinstance(data, torch.Tensor):
        raise CheckpointError("malformed parameter in checkpoint")
    return data


def _numpy_scalar(dtype: np.dtype, data: bytes | None = None) -> Any:
    if not isinstance(dtype, np.dtype) or dtype.hasobject or not isinstance(data, bytes):
        raise CheckpointError("checkpoint holds a NumPy scalar of an unsupported type")
    return np.frombuffer(data, dtype=dtype, count=1)[0]


def _numpy_dtype(name: Any, align: bool = False, copy: bool = False) -> np.dtype:
    dtype = np.dtype(name)
    if dtype.hasobject:
        raise CheckpointError("checkpoint holds a NumPy object dtype")
    return dtype


def _numpy_array(subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
    if subtype is not np.ndarray:
        raise CheckpointError("checkpoint holds an unsupported NumPy array type")
    return np.ndarray.__new__(np.ndarray, shape, np.dtype(dtype))


ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent_obj,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): _load_storage_from_bytes,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): set,
    ("dnnlib.util", "EasyDict"): EasyDict,
    ("numpy", "dtype"): _numpy_dtype,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
    ("numpy.core.multiarray", "_reconstruct"): _numpy_array,
    ("numpy._core.multiarray", "_reconstruct"): _numpy_array,
    ("numpy", "ndarray"): np.ndarray,
}


class SafeUnpickler(pickle.Unpickler):
    """Resolves only ``ALLOWED_GLOBALS``; every other global is refused."""

    def find_class(self, module: str, name: str) -> Any:
        if module.startswith("dnnlib.tflib"):
            raise CheckpointError(
                "this is a TensorFlow-era StyleGAN checkpoint (dnnlib.tflib); only PyTorch "
                "StyleGAN2-ADA/StyleGAN3 .pkl files can be imported"
            )
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise CheckpointError(
                f"checkpoint refers to {module}.{name}, which is not allowed in a checkpoint"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        raise CheckpointError("checkpoint uses persistent ids, which StyleGAN .pkl files never do")


def read_pickle(source: BinaryIO) -> Any:
    """Unpickle with ``SafeUnpickler``; any failure becomes a CheckpointError."""
    try:
        return SafeUnpickler(source).load()
    except CheckpointError:
        raise
    except Exception as error:  # a malformed stream can fail in many ways
        raise CheckpointError(f"not a readable StyleGAN checkpoint: {type(error).__name__}: {error}") from None


def collect_tensors(obj: PersistentObject, prefix: str = "") -> dict[str, torch.Tensor]:
    """The persistent parameters and buffers of ``obj`` and its children, by dotted name."""
    tensors: dict[str, torch.Tensor] = {}
    skipped = set(obj.state.get("_non_persistent_buffers_set") or ())
    for kind in ("_parameters", "_buffers"):
        for name, tensor in (obj.state.get(kind) or {}).items():
            if tensor is not None and name not in skipped:
                tensors[prefix + name] = tensor
    for name, child in obj.children.items():
        tensors.update(collect_tensors(child, f"{prefix}{name}."))
    return tensors


def config_from_init_kwargs(generator: PersistentObject) -> GeneratorConfig:
    """Our config from the constructor arguments recorded in the checkpoint, truncating
    towards the global ``w_avg`` as NVIDIA's code does (``truncation_centre="global"``)."""
    args = generator.state.get("_init_args") or ()
    kwargs = dict(generator.state.get("_init_kwargs") or {})
    positional = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels")
    kwargs.update(zip(positional, args, strict=False))  # fewer positional arguments than names
    mapping = dict(kwargs.get("mapping_kwargs") or {})
    synthesis = dict(kwargs.get("synthesis_kwargs") or {})
    architecture = synthesis.get("architecture", "skip")
    if architecture != "skip":
        raise CheckpointError(
            f"only the 'skip' synthesis architecture is supported, this checkpoint uses {architecture!r}"
        )
    try:
        return GeneratorConfig(
            z_dim=int(kwargs["z_dim"]),
            w_dim=int(kwargs["w_dim"]),
            c_dim=int(kwargs["c_dim"]),
            img_resolution=int(kwargs["img_resolution"]),
            img_channels=int(kwargs["img_channels"]),
            mapping_layers=int(mapping.get("num_layers", 8)),
            mapping_lr_multiplier=float(mapping.get("lr_multiplier", 0.01)),
            embed_features=mapping.get("embed_features"),
            channel_base=int(synthesis.get("channel_base", 32768)),
            channel_max=int(synthesis.get("channel_max", 512)),
            num_fp16_res=int(synthesis.get("num_fp16_res", 0)),
            conv_clamp=None if synthesis.get("conv_clamp") is None else float(synthesis["conv_clamp"]),
            resample_filter=tuple(synthesis.get("resample_filter", (1, 3, 3, 1))),
            truncation_centre="global",
        )
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"checkpoint generator has unsupported constructor arguments: {error}") from None


def check_resample_filters(tensors: dict[str, torch.Tensor], config: GeneratorConfig, path: Path) -> None:
    """Remove the stored FIR filters (we derive them from the config) after checking them."""
    expected = make_filter(config.resample_filter)
    for name in [n for n in tensors if n.endswith("resample_filter")]:
        stored = tensors.pop(name)
        if stored.shape != expected.shape or not torch.allclose(stored, expected):
            raise CheckpointError(f"{path}: {name} is not the [1, 3, 3, 1] resampling filter this engine implements")


def import_stylegan2_pickle(path: str | Path, network: str = "G_ema") -> Generator:
    """Read ``network`` from a StyleGAN2-ADA/StyleGAN3 ``.pkl`` into our Generator."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            data = read_pickle(f)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint not found: {path}") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path} is not a StyleGAN2-ADA checkpoint: expected a dict of networks")
    record = data.get(network)
    if not isinstance(record, PersistentObject) or record.class_name != "Generator":
        found = ", ".join(map(str, data)) or "nothing"
        raise CheckpointError(f"{path} holds no generator named {network!r} (found: {found})")
    if record.children.get("synthesis") is None or record.children.get("mapping") is None:
        raise CheckpointError(f"{path}: generator {network!r} has no mapping or synthesis network")
    config = config_from_init_kwargs(record)
    tensors = {name: t.to(torch.float32) for name, t in collect_tensors(record).items()}
    check_resample_filters(tensors, config, path)
    generator = Generator(config)
    expected = generator.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong_shape = sorted(n for n in set(expected) & set(tensors) if expected[n].shape != tensors[n].shape)
    if missing or unexpected or wrong_shape:
        details = "; ".join(
            f"{label}: {', '.join(names[:5])}{' …' if len(names) > 5 else ''}"
            for label, names in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong_shape))
            if names
        )
        raise CheckpointError(f"{path}: the generator's weights do not match a StyleGAN2 generator ({details})")
    generator.load_state_dict(tensors, strict=True)
    return generator.eval().requires_grad_(False)
