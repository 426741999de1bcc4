"""Identity of a generator's renders: how much each layer group changes a persona.

    python bench/identity_consistency.py                      # the bundled default
    python bench/identity_consistency.py var/run/export --pairs 64 --data var/heldout64

For pairs of seeds (one class, ψ 0.7) it copies one default layer group (coarse /
middle / fine) from the second seed into the first and prints the mean identity
similarity, under the model's identity measure (generation/stylegan/identity.py: the
embedding it ships, else the pixel fallback), of the result to the first seed's render;
"whole W+" copies every row, i.e. compares two different personas, which a model whose
seeds are different people scores well below its measure's threshold. With ``--data``
(a labelled dataset, e.g. held-out renders) it also scores pairs of real images of the
class: what two different people of that class score. Looks and poses of a conditional
model are labels: bench/identity_looks.py measures those.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from generation.layer_groups import layer_groups_default  # noqa: E402
from generation.stylegan import class_label, load_generator, seed_to_z  # noqa: E402
from generation.stylegan.identity import identity_similarity, load_identity_measure  # noqa: E402
from generation.stylegan.latents import images_to_uint8, style_mix  # noqa: E402
from generation.stylegan.training.dataset import load_dataset  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("generator", nargs="?", default=str(ROOT / "generation" / "default_model"))
    parser.add_argument("--pairs", type=int, default=32)
    parser.add_argument("--psi", type=float, default=0.7)
    parser.add_argument("--class-index", type=int, default=0)
    parser.add_argument("--data", help="a labelled dataset: also score pairs of its images of the class")
    args = parser.parse_args()

    torch.set_grad_enabled(False)
    G = load_generator(args.generator, device="cpu")
    measure = load_identity_measure(args.generator)
    config = G.config
    c = class_label(config, args.class_index if config.c_dim else None)
    c = None if c is None else c[None].expand(args.pairs, -1)
    z = torch.stack([seed_to_z(seed, config.z_dim) for seed in range(2 * args.pairs)])
    ws = G.mapping(z[: args.pairs], c, truncation_psi=args.psi)
    others = G.mapping(z[args.pairs :], c, truncation_psi=args.psi)

    def render(latents: torch.Tensor):
        return images_to_uint8(G.synthesis(latents, noise_mode="const"))

    originals = render(ws)
    groups = [(g["name"], range(g["start"], g["end"] + 1)) for g in layer_groups_default(config.num_ws)]
    print(f"{args.generator}: {args.pairs} seed pairs, class {args.class_index}, ψ {args.psi}, measure "
          f"{measure.name} (threshold {measure.calibration.threshold})")  # fmt: skip
    for name, rows in [*groups, ("whole W+", range(config.num_ws))]:
        mixed = render(style_mix(ws, others, rows))
        scores = [identity_similarity(measure, a, b) for a, b in zip(mixed, originals, strict=True)]
        print(f"  {name:>9} (rows {rows.start}-{rows.stop - 1}) from another seed: "
              f"similarity {statistics.mean(scores):.3f} (min {min(scores):.3f})")  # fmt: skip
    if args.data:
        dataset = load_dataset(args.data)
        reals = dataset.images[dataset.labels == args.class_index].permute(0, 2, 3, 1).numpy()
        pairs = min(args.pairs, len(reals) // 2)
        scores = [identity_similarity(measure, reals[i], reals[pairs + i]) for i in range(pairs)]
        print(f"  two real images of the class ({pairs} pairs): similarity {statistics.mean(scores):.3f} "
              f"(min {min(scores):.3f})")  # fmt: skip


if __name__ == "__main__":
    main()
