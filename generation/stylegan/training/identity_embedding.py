"""Training the identity embedding of the demo domain on exact same-person pairs.

DiceBear's seed fixes the person (hair, eyes, eyebrows, nose, mouth, glasses, beard)
while outfit and gesture are passed explicitly, so one person can be rendered in any
number of outfits and gestures. Each training person is rendered in ``views``
different (outfit family, gesture) classes; an `IdentityNetwork` learns, with the
supervised contrastive loss of Khosla et al. 2020 ("Supervised Contrastive
Learning"), to map views of one person together and different people apart, so
whatever it keeps is invariant to outfit and gesture by construction.

Renders are augmented towards what a generator draws: small shifts, blur (a 64 px
generator's lines are softer than resvg's), pixel noise, brightness and contrast.

Evaluation uses people never seen in training (another DiceBear seed namespace): every
same-person pair (views of one person, which differ in outfit or gesture) and as many
random different-person pairs; it reports both similarity distributions and the
verification accuracy at the threshold that separates them best. That threshold and
the medians are the measure's calibration (`IdentityCalibration`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..identity import IdentityCalibration, IdentityNetwork, LearnedIdentity
from .augment import augment_translation
from .dataset import CLOTHES_FAMILIES, GESTURES, NotionistsRenderer

TRAIN_NAMESPACE = "identity-train"
HELDOUT_NAMESPACE = "identity-heldout"


def render_people(people: int, views: int, namespace: str, size: int = 64, progress=None) -> torch.Tensor:
    """uint8 [people, views, 3, size, size]: person p (DiceBear seed ``{namespace}-{p}``) in
    ``views`` distinct (outfit family, gesture) classes drawn from ``RandomState`` of p."""
    renderer = NotionistsRenderer()
    families = list(CLOTHES_FAMILIES)
    classes = [(family, gesture) for family in families for gesture in GESTURES]
    out = np.empty((people, views, size, size, 3), dtype=np.uint8)
    for p in range(people):
        rng = np.random.RandomState([sum(map(ord, namespace)), p])
        for v, k in enumerate(rng.choice(len(classes), size=views, replace=False)):
            family, gesture = classes[k]
            clothes = CLOTHES_FAMILIES[family][rng.randint(len(CLOTHES_FAMILIES[family]))]
            out[p, v] = np.asarray(renderer.render(f"{namespace}-{p}", clothes, gesture, size))
        if progress is not None:
            progress(p + 1, people)
    return torch.from_numpy(out).permute(0, 1, 4, 2, 3).contiguous()


def degrade(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random shift, blur, noise, brightness and contrast of images [N, 3, R, R] in [-1, 1]."""
    n = x.shape[0]
    x = augment_translation(x, ratio=1 / 32, fill=1.0, generator=generator)

    def rand(*shape):
        return torch.rand(*shape, generator=generator)

    blurred = F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    x = torch.lerp(x, blurred, rand(n, 1, 1, 1) * 0.8)
    x = x + torch.randn(x.shape, generator=generator) * rand(n, 1, 1, 1) * 0.1
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * (0.8 + 0.4 * rand(n, 1, 1, 1)) + mean + (rand(n, 1, 1, 1) - 0.5) * 0.2
    return x


def supervised_contrastive_loss(embeddings: torch.Tensor, person: torch.Tensor, temperature: float) -> torch.Tensor:
    """Khosla et al. 2020, L_out: embeddings [N, D] (unit), person ids [N]."""
    logits = embeddings @ embeddings.T / temperature
    self_mask = torch.eye(len(person), dtype=torch.bool)
    logits = logits.masked_fill(self_mask, float("-inf"))
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    positives = (person[:, None] == person[None]) & ~self_mask
    return -(log_prob.masked_fill(~positives, 0).sum(dim=1) / positives.sum(dim=1)).mean()


def _to_float(images: torch.Tensor) -> torch.Tensor:
    return images.to(torch.float32) / 127.5 - 1


def train_identity_network(
    people: torch.Tensor,
    steps: int = 2000,
    people_per_batch: int = 64,
    lr: float = 2e-3,
    temperature: float = 0.1,
    seed: int = 0,
    log=None,
) -> IdentityNetwork:
    """people: uint8 [P, V, 3, R, R] (V ≥ 2 views each) -> a trained network."""
    count, views = people.shape[:2]
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        network = IdentityNetwork()
        optimizer = torch.optim.AdamW(network.parameters(), lr=lr, weight_decay=1e-4)
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps)
        network.train()
        started = time.monotonic()
        for step in range(steps):
            chosen = torch.randperm(count, generator=gen)[:people_per_batch]
            batch = _to_float(people[chosen].flatten(0, 1))
            person = chosen.repeat_interleave(views)
            loss = supervised_contrastive_loss(network(degrade(batch, gen)), person, temperature)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            if log is not None and (step % 100 == 0 or step == steps - 1):
                log(f"step {step + 1}/{steps}: loss {loss.item():.3f} ({time.monotonic() - started:.0f} s)")
    return network.eval()


@torch.no_grad()
def embed_people(network: IdentityNetwork, people: torch.Tensor, batch: int = 512) -> torch.Tensor:
    """uint8 [P, V, 3, R, R] -> [P, V, D]."""
    flat = people.flatten(0, 1)
    out = torch.cat([network(_to_float(flat[i : i + batch])) for i in range(0, len(flat), batch)])
    return out.view(*people.shape[:2], -1)


@dataclass
class VerificationReport:
    same: np.ndarray
    different: np.ndarray
    threshold: float
    accuracy: float
    duplicate_threshold: float | None = None
    duplicate_false_match_rate: float | None = None

    def calibration(self) -> IdentityCalibration:
        return IdentityCalibration(
            threshold=round(self.threshold, 4),
            same_person_median=round(float(np.median(self.same)), 4),
            different_person_median=round(float(np.median(self.different)), 4),
            duplicate_threshold=None if self.duplicate_threshold is None else round(self.duplicate_threshold, 4),
        )

    def summary(self) -> dict:
        def describe(values):
            p05, median, p95 = (round(float(q), 4) for q in np.quantile(values, [0.05, 0.5, 0.95]))
            return {"pairs": len(values), "mean": round(float(values.mean()), 4), "p05": p05, "median": median,
                    "p95": p95}  # fmt: skip

        summary = {"same_person": describe(self.same), "different_person": describe(self.different),
                   "threshold": round(self.threshold, 4), "verification_accuracy": round(self.accuracy, 4)}  # fmt: skip
        if self.duplicate_threshold is not None:
            summary["duplicate_threshold"] = round(self.duplicate_threshold, 4)
            summary["duplicate_false_match_rate"] = self.duplicate_false_match_rate
        return summary


def best_threshold(same: np.ndarray, different: np.ndarray) -> tuple[float, float]:
    """(threshold, accuracy) maximising balanced accuracy of "similarity ≥ threshold = same"."""
    candidates = np.unique(np.concatenate([same, different]))
    same_sorted, different_sorted = np.sort(same), np.sort(different)
    true_accept = 1 - np.searchsorted(same_sorted, candidates, side="left") / len(same)
    true_reject = np.searchsorted(different_sorted, candidates, side="left") / len(different)
    balanced = (true_accept + true_reject) / 2
    best = int(np.argmax(balanced))
    below = different_sorted[different_sorted < candidates[best]]
    # Halfway between the last rejected different-person score and the first accepted one.
    threshold = (candidates[best] + below[-1]) / 2 if len(below) else candidates[best]
    return float(threshold), float(balanced[best])


def verification_report(embeddings: torch.Tensor, seed: int = 0) -> VerificationReport:
    """embeddings [P, V, D] of held-out people: every same-person pair and as many
    random different-person pairs."""
    people, views, _ = embeddings.shape
    e = embeddings.numpy()
    same = np.concatenate([(e[:, a] * e[:, b]).sum(axis=1) for a in range(views) for b in range(a + 1, views)])
    rng = np.random.RandomState(seed)
    p = rng.randint(people, size=(len(same), 2))
    p = p[p[:, 0] != p[:, 1]]
    v = rng.randint(views, size=(len(p), 2))
    different = (e[p[:, 0], v[:, 0]] * e[p[:, 1], v[:, 1]]).sum(axis=1)
    threshold, accuracy = best_threshold(same, different)
    # The identity guard's threshold: it catches 99% of same-person pairs; its rate of
    # false matches is counted over every pair of distinct held-out people.
    duplicate = max(float(np.quantile(same, 0.01)), threshold)
    cross = e[:, 0] @ e[:, 1].T
    false_matches = float((cross[~np.eye(people, dtype=bool)] >= duplicate).mean())
    return VerificationReport(
        same=same, different=different, threshold=threshold, accuracy=accuracy,
        duplicate_threshold=duplicate, duplicate_false_match_rate=round(false_matches, 6),
    )  # fmt: skip


def identity_measure_train(
    people: int = 6000,
    views: int = 4,
    heldout_people: int = 500,
    steps: int = 2000,
    seed: int = 0,
    log=print,
) -> tuple[LearnedIdentity, VerificationReport]:
    started = time.monotonic()
    log(f"rendering {people} training people × {views} views and {heldout_people} held-out people")
    train = render_people(people, views, TRAIN_NAMESPACE)
    heldout = render_people(heldout_people, views, HELDOUT_NAMESPACE)
    network = train_identity_network(train, steps=steps, seed=seed, log=log)
    report = verification_report(embed_people(network, heldout), seed=seed)
    info = {
        "data": f"DiceBear notionists, {people} people × {views} outfits/gestures, 64 px",
        "steps": steps,
        "train_seconds": round(time.monotonic() - started, 1),
        "heldout": {"people": heldout_people, "views": views, **report.summary()},
    }
    return LearnedIdentity(network, report.calibration(), info), report


def check_views(views: int) -> None:
    if views < 2:
        raise ValueError("each person needs at least 2 views")
    if views > math.prod((len(CLOTHES_FAMILIES), len(GESTURES))):
        raise ValueError("more views than (outfit, gesture) classes")
