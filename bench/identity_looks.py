"""Looks and poses that keep the person: the identity targets of a conditional generator.

    python bench/identity_looks.py                        # the bundled default, both mechanisms
    python bench/identity_looks.py var/run/export --identity generation/default_model/identity

For 200 personas × every look (outfit family) and pose (gesture) other than their own it
prints (generation/stylegan/training/identity_metrics.py): the share of changes whose
before/after identity similarity reaches the real same-person median (target ≥ 90%),
the median similarity of two different personas against the real different-person
median (must stay below), and the classifier's accuracy on the attribute asked for
(targets ≥ 90% outfit, ≥ 80% gesture); for the relabelling mechanism the product uses
("shift") and, for comparison, re-mapping the seed ("remap").
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from generation.stylegan import load_generator  # noqa: E402
from generation.stylegan.identity import load_identity_measure, load_learned_identity  # noqa: E402
from generation.stylegan.training.identity_metrics import MECHANISMS, identity_looks_evaluate  # noqa: E402
from generation.stylegan.training.metrics import load_classifier  # noqa: E402

DEFAULT = ROOT / "generation" / "default_model"
TARGETS = {"identity kept (share ≥ real same-person median)": 0.9, "outfit accuracy": 0.9, "gesture accuracy": 0.8}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("generator", nargs="?", default=str(DEFAULT))
    parser.add_argument("--identity", help="identity embedding folder (default: the generator's identity/)")
    parser.add_argument("--classifier", default=str(DEFAULT / "classifier"))
    parser.add_argument("--personas", type=int, default=200)
    parser.add_argument("--mechanism", choices=[*MECHANISMS, "both"], default="both")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--out", help="merge the results into this metrics.json (the model card reads them)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    G = load_generator(args.generator, device="cpu")
    if not G.config.c_dim:
        sys.exit("error: this benchmark measures class-conditional generators (looks and poses are labels there)")
    measure = load_learned_identity(args.identity) if args.identity else load_identity_measure(args.generator)
    if measure.name != "learned":
        sys.exit(f"error: no identity embedding in {args.identity or Path(args.generator) / 'identity'}")
    classifier, _ = load_classifier(Path(args.classifier), channels=G.config.img_channels)
    training = json.loads((Path(args.generator) / "training.json").read_text())
    mechanisms = MECHANISMS if args.mechanism == "both" else (args.mechanism,)
    results = {}
    for mechanism in mechanisms:
        result = identity_looks_evaluate(
            G, measure, classifier, training["class_attributes"], personas=args.personas, mechanism=mechanism
        )
        results["identity_looks" if mechanism == "shift" else f"identity_looks_{mechanism}"] = result
        print(json.dumps(result, indent=1))
        kept, different = result["identity_kept"], result["different_personas"]
        print(f"{mechanism}: identity kept in {kept['share_at_or_above']:.1%} of {result['changes']} changes "
              f"(target ≥ 90%); different personas median {different['similarity_median']:.3f} vs real "
              f"{different['real_different_person_median']:.3f} (must be below); outfit "
              f"{result['outfit_accuracy']:.1%} (≥ 90%), gesture {result['gesture_accuracy']:.1%} (≥ 80%)")  # fmt: skip
    if args.out:
        path = Path(args.out)
        merged = json.loads(path.read_text()) if path.is_file() else {}
        path.write_text(json.dumps({**merged, **results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
