"""Ops with interchangeable implementations, in layers whose imports point downwards:

1. primitives: ``bias_act.py`` and ``upfirdn2d.py`` (readable pure-PyTorch references),
   ``fast_cpu.py`` (a fast CPU upfirdn2d) and ``cuda/`` (our CUDA kernels and their build);
2. ``dispatch.py``: picks a primitive's implementation per call;
3. ``modulated_conv2d.py``: the modulated convolution, a composite of the primitives (its
   reference, its fast CPU path, and the choice between them).
"""

from .dispatch import bias_act, upfirdn2d, upsample2d, use_reference_ops
from .modulated_conv2d import modulated_conv2d
from .upfirdn2d import filter_size, make_filter

__all__ = ["bias_act", "filter_size", "make_filter", "modulated_conv2d", "upfirdn2d", "upsample2d", "use_reference_ops"]
