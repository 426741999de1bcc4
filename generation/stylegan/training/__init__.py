"""Training for the StyleGAN2 engine (no Django imports), written from the papers:
Karras et al. 2020 ("Analyzing and Improving the Image Quality of StyleGAN"; "Training
Generative Adversarial Networks with Limited Data") and Zhao et al. 2020
("Differentiable Augmentation for Data-Efficient GAN Training").

- ``discriminator``: residual discriminator, minibatch stddev, projection conditioning.
- ``losses``: non-saturating logistic loss, lazy R1, style-mixing regularisation.
- ``augment``: DiffAugment colour / translation / cutout (never flips).
- ``dataset``: image folders (optionally labelled) and the DiceBear notionists demo set.
- ``loop``: the training loop: Adam, EMA, bf16/fp16, resumable safetensors checkpoints,
  sample grids, export of G_ema with ``generation.stylegan.save_generator``.
- ``metrics``: classifier-based conditioning accuracy, Fréchet distance, diversity.

Command line: ``python -m generation.stylegan.training {dataset,train,metrics} --help``.
"""

from .discriminator import Discriminator, DiscriminatorConfig
from .loop import PRESETS, TrainOptions, train

__all__ = ["Discriminator", "DiscriminatorConfig", "PRESETS", "TrainOptions", "train"]
