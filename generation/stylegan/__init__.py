"""Persona Studio's StyleGAN2 engine, written from the papers:

- Karras et al., "Analyzing and Improving the Image Quality of StyleGAN" (CVPR 2020):
  mapping network, weight demodulation, skip-architecture synthesis, noise inputs.
- Karras et al., "Training Generative Adversarial Networks with Limited Data"
  (NeurIPS 2020): the StyleGAN2-ADA configuration and checkpoint format.

This package imports no Django. Public API::

    from generation import stylegan as sg

    config = sg.GeneratorConfig(img_resolution=256, channel_base=16384)
    G = sg.random_generator(config, seed=0)          # seeded random weights
    sha = sg.save_generator(G, "models/demo")        # config.json + weights.safetensors
    G = sg.load_generator("models/demo", device="cpu", expected_sha256=sha)
    G = sg.import_stylegan2_pickle("network.pkl")    # safe import of NVIDIA .pkl files

    z = sg.seed_to_z(42, config.z_dim)[None]         # [1, z_dim]: a seed is a persona
    c = sg.class_label(config, None)                 # one-hot [c_dim], or None
    ws = G.mapping(z, c, truncation_psi=0.7)         # W+ [N, num_ws, w_dim]
    ws = sg.style_mix(ws, other_ws, layers=range(4)) # take rows 0-3 from other_ws
    img = G.synthesis(ws, noise_mode="const")        # [N, C, R, R] in about [-1, 1]
    pixels = sg.images_to_uint8(img)                 # [N, R, R, C] uint8

    cache = sg.ModelCache(max_size=2)                # per-process LRU of generators
    G = cache.get("models/demo", device="cuda")

- ``noise_mode``: "const" (the stored per-layer noise, deterministic), "seeded" (with
  ``noise_seeds=[...]``, one per sample: None keeps the constant noise, an int draws
  that sample's noise from the seed, the same on every device: a persona's variants), "random"
  (fresh noise from torch's RNG), "shared" (fresh noise, one draw for the whole batch, so
  that images differ only by their latents) or "none".
- ``truncation_psi`` pulls w towards a centre, ``truncation_cutoff`` truncates only the
  first N rows of W+. The centre is a property of the model, ``G.truncation_centre``
  (``G.config.truncation_centre``, saved in its config.json): ``"global"`` pulls towards
  ``w_avg``, w_avg + psi (w - w_avg), as NVIDIA's code does (every imported .pkl);
  ``"class"`` pulls a conditional generator's w towards its own class's centre, so a
  truncated latent keeps its class (models trained here, the bundled default included).
  ``G.mapping(z, c, truncation_psi=0.7, truncation_centre="global")`` overrides it for
  one call (None: the model's own); ``TRUNCATION_CENTRES`` lists the values.
- On CUDA the last ``num_fp16_res`` resolutions run in float16 with our own kernels
  (``ops.cuda``, built on first use or by ``python -m generation.stylegan build-ops``);
  on CPU everything runs in float32. ``ops.use_reference_ops()`` forces the readable
  pure-PyTorch ops.
- Outputs are deterministic for the same inputs on the same device.
- ``directions``: latent directions per model: ``sefa_directions`` (closed-form
  factorization of the style-affine weights of chosen W+ rows), ``ganspace_directions``
  (PCA of sampled w), ``interfacegan_direction`` (a linear boundary fitted on labelled
  w) and ``strength_range``.
- ``identity``: is this the same person? ``load_identity_measure(model_dir)`` gives the
  identity embedding a model ships (``identity/``), else a pixel-structure fallback;
  ``identity_similarity(measure, image, reference)`` is their cosine similarity, read
  against ``measure.calibration`` (threshold, same- and different-person medians).
- ``relabel``: looks and poses of a class-conditional model: ``relabel(G, ws, c_from,
  c_to)`` moves personas to another class by the shift between the class centres.
- ``training``: the GAN training loop, demo dataset and metrics
  (``python -m generation.stylegan.training --help``).
- Errors: ``CheckpointError`` (a ValueError) for unusable checkpoints; ValueError for
  bad shapes, labels, ranges or latents, and for a config with a field out of its bounds
  or a network above ``config.MAX_PARAMETER_BYTES`` (checked from the config alone,
  before anything is built; ``config.parameter_count()`` is the estimate), each with
  one line naming the field and the allowed range.

The operators' command line is ``python -m generation.stylegan --help``.
"""

# Recorded in every asset's provenance: renders are reproducible within one version.
__version__ = "1.1.0"

from .cache import ModelCache
from .checkpoint import CheckpointError, file_sha256, load_generator, read_config, save_generator
from .config import TRUNCATION_CENTRES, GeneratorConfig
from .generator import Generator, random_generator
from .latents import class_label, images_to_uint8, parse_range, seed_to_z, style_mix, validate_wplus
from .mapping import truncate
from .pickle_import import import_stylegan2_pickle

__all__ = [
    "TRUNCATION_CENTRES",
    "CheckpointError",
    "Generator",
    "GeneratorConfig",
    "ModelCache",
    "class_label",
    "file_sha256",
    "images_to_uint8",
    "import_stylegan2_pickle",
    "load_generator",
    "parse_range",
    "random_generator",
    "read_config",
    "save_generator",
    "seed_to_z",
    "style_mix",
    "truncate",
    "validate_wplus",
]
