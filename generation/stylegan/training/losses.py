"""StyleGAN2 losses (Karras et al. 2020, appendix B; Mescheder et al. 2018 for R1).

- Non-saturating logistic loss (Goodfellow et al. 2014):
  G minimises softplus(-D(G(z))); D minimises softplus(D(G(z))) + softplus(-D(x)).
- R1 regularisation: (gamma / 2) * E ||grad_x D(x)||^2 on reals, computed "lazily" every
  ``r1_interval`` D steps and multiplied by the interval so its average strength is
  unchanged (the paper's lazy regularisation; the optimiser's hyper-parameters are
  adjusted for it in ``loop.py``).
- Style-mixing regularisation: with probability ``style_mixing_prob`` a sample's W+ takes
  its rows from ``cutoff`` on from a second latent, so the network cannot assume that
  adjacent styles are correlated.

- Auxiliary classification (Odena et al. 2017, "AC-GAN"), optional: the discriminator's
  class head learns the labels of real images (cross-entropy), and the generator is
  rewarded when that head recognises the class it was asked for. The projection
  discriminator alone separates classes slowly; this gives the generator a direct
  gradient towards what tells the classes apart (outfit, gesture).
- Mode seeking (Mao et al. 2019, "Mode Seeking GANs"), optional: the batch is taken as
  pairs sharing one label, and the generator minimises
  1 / (mean |G(z1, c) - G(z2, c)| / mean |z1 - z2| + eps), so different latents must give
  different images. That batch shares one draw of the noise inputs: with noise of its own
  per image, the generator could meet the term with louder noise instead of different
  people. A conditional discriminator's minibatch standard deviation mostly sees
  the differences between classes, so it cannot catch one face drawn for every seed of a
  class; this term can.

- Identity consistency (ours), optional, with a frozen identity embedding E
  (generation.stylegan.identity): a look or a pose relabels a persona by moving its W+
  from its class's centre to the new class's (generation.stylegan.relabel), and the
  generator is trained so that this keeps the person: for a batch of latents w (class
  c1, truncated towards its centre by a random ψ in [0.5, 1]) and random other labels
  c2, it minimises 1 - cos(E(G(w)), E(G(relabel(w, c1 -> c2)))); the relabelled image
  also faces the discriminator under c2 (adversarial), so it looks real, and a frozen
  attribute classifier (the *teacher*, trained on the dataset's renders; not the one
  the metrics measure with) must read c2's attributes on it and c1's on the original:
  a fresh discriminator's class head is too weak a teacher early in a fine-tune, and
  without one the generator met the term by ignoring labels (gesture accuracy fell to
  16% within 2 kimg). A diversity part penalises
  different latents whose embeddings are closer than ``identity_margin`` (the real
  different-person median): different seeds must be different people, not one face
  with other hair. Each pair shares one draw of the noise inputs.

``GanLoss`` also keeps the generator's ``w_avg`` (the unconditional truncation centre) as
a running mean of w, as the mapping network's training is expected to.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..generator import Generator
from ..relabel import relabel
from .augment import diff_augment
from .discriminator import Discriminator


@dataclass
class LossConfig:
    r1_gamma: float = 1.0
    r1_interval: int = 16
    style_mixing_prob: float = 0.9
    augment: tuple[str, ...] = ()
    augment_fill: float = 1.0  # white: the background of our renders
    w_avg_beta: float = 0.995
    class_weight: float = 0.0  # auxiliary classification (needs D with aux_classifier)
    mode_seeking_weight: float = 0.0
    mode_seeking_eps: float = 1e-5
    identity_weight: float = 0.0  # needs ``identity`` (a frozen IdentityNetwork) and labels
    identity_diversity_weight: float = 0.0
    identity_margin: float = 0.0
    identity_batch: int = 8
    teacher_weight: float = 1.0


class GanLoss:
    def __init__(
        self,
        G: Generator,
        D: Discriminator,
        config: LossConfig,
        autocast=None,
        identity: torch.nn.Module | None = None,
        teacher: torch.nn.Module | None = None,
        teacher_targets: torch.Tensor | None = None,
    ) -> None:
        """``teacher``: a frozen attribute classifier (images -> (features, [logits per
        attribute])); ``teacher_targets`` [c_dim, attributes]: each class's value index."""
        self.G = G
        self.D = D
        self.config = config
        self._autocast = autocast or contextlib.nullcontext
        self.identity = identity
        self.teacher = teacher
        self.teacher_targets = teacher_targets
        if config.identity_weight > 0 and (identity is None or teacher is None):
            raise ValueError("the identity term needs an identity embedding and an attribute teacher")

    def run_G(
        self, z: torch.Tensor, c: torch.Tensor | None, update_w_avg: bool = True, noise_mode: str = "random"
    ) -> torch.Tensor:
        """Images for z [N, z_dim] and c, with per-sample style mixing."""
        with self._autocast():
            ws = self.G.mapping(z, c)
            if update_w_avg:
                with torch.no_grad():
                    w_avg = self.G.mapping.w_avg
                    w_avg.copy_(ws[:, 0].detach().float().mean(dim=0).lerp(w_avg, self.config.w_avg_beta))
            prob = self.config.style_mixing_prob
            if prob > 0:
                n, num_ws = ws.shape[:2]
                cutoff = torch.randint(1, num_ws, (n,), device=ws.device)
                cutoff = torch.where(torch.rand(n, device=ws.device) < prob, cutoff, torch.full_like(cutoff, num_ws))
                other = self.G.mapping(torch.randn_like(z), c)
                rows = torch.arange(num_ws, device=ws.device)[None, :, None]
                ws = torch.where(rows >= cutoff[:, None, None], other, ws)
            img = self.G.synthesis(ws, noise_mode=noise_mode)
        return img.float()

    @property
    def classifies(self) -> bool:
        return self.config.class_weight > 0

    def run_D(
        self, img: torch.Tensor, c: torch.Tensor | None, use_autocast: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(logits [N, 1], class logits [N, c_dim] when classifying, else None), in float32."""
        context = self._autocast() if use_autocast else contextlib.nullcontext()
        with context:
            img = diff_augment(img, self.config.augment, fill=self.config.augment_fill)
            if self.classifies:
                logits, class_logits = self.D(img, c, classify=True)
                return logits.float(), class_logits.float()
            return self.D(img, c).float(), None

    def _class_loss(self, class_logits: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(class_logits, c.argmax(dim=1))

    def generator_loss(self, z: torch.Tensor, c: torch.Tensor | None) -> tuple[torch.Tensor, dict[str, float]]:
        """The generator's loss for latents z [N, z_dim] and labels c, and its parts.

        With mode seeking the second half of the batch takes the first half's labels."""
        pairs = z.shape[0] // 2 if self.config.mode_seeking_weight > 0 else 0
        if pairs and c is not None:
            c = torch.cat([c[:pairs], c[:pairs], c[2 * pairs :]])
        fake = self.run_G(z, c, noise_mode="shared" if pairs else "random")
        logits, class_logits = self.run_D(fake, c)
        loss = F.softplus(-logits).mean()
        stats = {"G": loss.item()}
        if class_logits is not None:
            class_loss = self._class_loss(class_logits, c)
            loss = loss + self.config.class_weight * class_loss
            stats["G_class"] = class_loss.item()
        if pairs:
            image_distance = (fake[:pairs] - fake[pairs : 2 * pairs]).abs().mean(dim=[1, 2, 3])
            latent_distance = (z[:pairs] - z[pairs : 2 * pairs]).abs().mean(dim=1)
            ratio = (image_distance / latent_distance).mean()
            loss = loss + self.config.mode_seeking_weight / (ratio + self.config.mode_seeking_eps)
            stats["G_seek"] = ratio.item()
        if self.config.identity_weight > 0 and c is not None:
            identity_loss, identity_stats = self.identity_loss(z[: self.config.identity_batch], c)
            loss = loss + identity_loss
            stats.update(identity_stats)
        return loss, stats

    def identity_loss(self, z: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """The identity term for latents z [K, z_dim] (see the module docstring)."""
        k, c_dim = z.shape[0], c.shape[1]
        device = z.device
        c1 = F.one_hot(torch.randint(c_dim, (k,), device=device), c_dim).to(c.dtype)
        c2 = F.one_hot(torch.randint(c_dim, (k,), device=device), c_dim).to(c.dtype)
        psi = 0.5 + 0.5 * torch.rand(k, 1, 1, device=device)
        with self._autocast():
            mapped = self.G.mapping(z, c1)
            centre_from = self.G.mapping.class_centres(c1).unsqueeze(1)
            ws = centre_from + psi * (mapped - centre_from)
            relabelled = relabel(self.G, ws, c1, c2)
            img = self.G.synthesis(torch.cat([ws, relabelled]), noise_mode="shared").float()
        embeddings = self.identity(img)
        before, after = embeddings[:k], embeddings[k:]
        keep = 1 - (before * after).sum(dim=1).mean()
        logits, _ = self.run_D(img[k:], c2)
        realism = F.softplus(-logits).mean()
        _, attribute_logits = self.teacher(img)
        targets = self.teacher_targets.to(device)[torch.cat([c1, c2]).argmax(dim=1)]
        attributes = sum(F.cross_entropy(head, targets[:, i]) for i, head in enumerate(attribute_logits))
        loss = self.config.identity_weight * (keep + realism) + self.config.teacher_weight * attributes
        stats = {"G_id_keep": 1 - keep.item(), "G_id_teacher": attributes.item()}
        if self.config.identity_diversity_weight > 0:
            others = (before * before.roll(1, dims=0)).sum(dim=1)
            loss = loss + self.config.identity_diversity_weight * F.relu(others - self.config.identity_margin).mean()
            stats["G_id_other"] = others.mean().item()
        return loss, stats

    def discriminator_loss(
        self, real: torch.Tensor, real_c: torch.Tensor | None, z: torch.Tensor, gen_c: torch.Tensor | None
    ) -> tuple[torch.Tensor, dict[str, float]]:
        with torch.no_grad():
            fake = self.run_G(z, gen_c, update_w_avg=False)
        fake_logits, _ = self.run_D(fake, gen_c)
        real_logits, real_class_logits = self.run_D(real, real_c)
        loss = F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean()
        stats = {"D": loss.item(), "D_real": real_logits.mean().item(), "D_fake": fake_logits.mean().item()}
        if real_class_logits is not None:
            class_loss = self._class_loss(real_class_logits, real_c)
            loss = loss + self.config.class_weight * class_loss
            stats["D_class"] = class_loss.item()
        return loss, stats

    def r1_penalty(self, real: torch.Tensor, real_c: torch.Tensor | None) -> tuple[torch.Tensor, float]:
        """(gamma / 2) * ||grad D(real)||^2 * r1_interval, and the raw mean penalty.

        Computed in float32 (no autocast): a squared gradient norm is where reduced
        precision would hurt most, and it runs only every ``r1_interval`` steps."""
        real = real.detach().requires_grad_(True)
        logits, _ = self.run_D(real, real_c, use_autocast=False)
        (grad,) = torch.autograd.grad(logits.sum(), real, create_graph=True)
        penalty = grad.square().sum(dim=[1, 2, 3])
        loss = penalty.mean() * (self.config.r1_gamma / 2) * self.config.r1_interval
        # A zero-weight term keeps every D parameter in the graph.
        return loss + logits.mean() * 0, penalty.mean().item()
