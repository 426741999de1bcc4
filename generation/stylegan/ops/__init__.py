"""Ops with interchangeable implementations.

Each op has a readable pure-PyTorch reference (``bias_act.py``, ``upfirdn2d.py``,
``modulated_conv2d.py``), our own CUDA kernels (``cuda/``) for CUDA tensors, and a fast
CPU path (``fast_cpu.py``). ``dispatch.py`` picks one per call.
"""

from .dispatch import bias_act, modulated_conv2d, upfirdn2d, upsample2d, use_reference_ops
from .upfirdn2d import filter_size, make_filter

__all__ = ["bias_act", "filter_size", "make_filter", "modulated_conv2d", "upfirdn2d", "upsample2d", "use_reference_ops"]
