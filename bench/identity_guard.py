"""Identity guard benchmark: time of one check with N stored personas.

    python bench/identity_guard.py                # 100 000 personas in 100 brands
    python bench/identity_guard.py --personas 20000

Builds a throw-away SQLite database in a temporary directory (removed at the
end; DATABASE_URL is ignored so that no real database gets the rows), registers the bundled default generator, stores N
personas of other brands with identities drawn through the mapping network
(seeds at ψ 0.7; seed s of class s mod the number of classes, the bundled model
being conditional), then times avatars.identity.identity_guard_check for fresh
seeds: the first check (builds the process's index), then warm checks, each
after one more persona was stored by another brand (so each includes the
incremental refresh). Only the persona and fingerprint rows are stored: the
guard reads nothing else. Last, it checks that another brand's exact face and
the average face (ψ 0) are both refused.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--personas", type=int, default=100_000)
    parser.add_argument("--brands", type=int, default=100)
    parser.add_argument("--checks", type=int, default=30)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="identity-guard-bench-"))
    try:
        run(args, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def run(args, workdir: Path) -> None:
    os.environ["DATABASE_URL"] = f"sqlite:///{workdir / 'bench.sqlite3'}"
    os.environ["MODELS_ROOT"] = str(workdir / "models")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.exceptions import ValidationError
    from django.core.management import call_command
    from django.db import transaction

    from avatars.identity import identity_embedding, identity_guard_check
    from avatars.models import IdentityFingerprint, Persona
    from brands.models import Brand
    from generation.models import GeneratorModel
    from generation.rendering import latents_from_seeds as latents_of_class

    call_command("migrate", verbosity=0)
    call_command("load_default_model", verbosity=0)
    model = GeneratorModel.objects.get()
    basis = model.identity_basis_array()

    def latents_from_seeds(*, model, seeds, truncation_psi):
        """Seed s with class s mod c_dim on a conditional model, in the order given."""
        if not model.c_dim:
            return latents_of_class(model=model, seeds=seeds, truncation_psi=truncation_psi)
        out = np.zeros((len(seeds), model.num_ws, model.w_dim), np.float32)
        order = np.array(seeds) % model.c_dim
        for label in np.unique(order).tolist():
            rows = np.flatnonzero(order == label)
            out[rows] = latents_of_class(
                model=model, seeds=[seeds[i] for i in rows], truncation_psi=truncation_psi, class_index=label
            )
        return out

    print(
        f"model {model.slug}: identity group {model.identity_group} rows {model.identity_rows}, "
        f"basis {basis.shape[0]}×{basis.shape[1]}, minimum distance {model.identity_min_distance:.3f}"
    )

    started = time.perf_counter()
    brands = Brand.objects.bulk_create(Brand(name=f"B{i}", slug=f"b{i}") for i in range(args.brands + 1))
    chunk = 5000
    for first in range(0, args.personas, chunk):
        seeds = list(range(first, min(first + chunk, args.personas)))
        latents = latents_from_seeds(model=model, seeds=seeds, truncation_psi=0.7)
        with transaction.atomic():
            personas = Persona.objects.bulk_create(
                Persona(brand=brands[s % args.brands], name=f"P{s}", handle=f"p{s}", model=model, seed=s) for s in seeds
            )
            fingerprints = []
            for persona, latent in zip(personas, latents, strict=True):
                embedding = identity_embedding(latent, model)
                fingerprints.append(
                    IdentityFingerprint(
                        brand=persona.brand,
                        persona=persona,
                        model=model,
                        embedding=embedding.tobytes(),
                        projected=(basis @ embedding).astype("<f4").tobytes(),
                    )
                )
            IdentityFingerprint.objects.bulk_create(fingerprints)
    print(f"stored {args.personas} personas in {time.perf_counter() - started:.1f} s")

    checker = brands[-1]
    queries = latents_from_seeds(model=model, seeds=list(range(10**9, 10**9 + args.checks + 1)), truncation_psi=0.7)
    late = latents_from_seeds(model=model, seeds=list(range(2 * 10**9, 2 * 10**9 + args.checks)), truncation_psi=0.7)

    def check(latent):
        t = time.perf_counter()
        identity_guard_check(brand=checker, model=model, latent=latent)
        return (time.perf_counter() - t) * 1000

    cold = check(queries[0])
    warm = []
    for i, latent in enumerate(queries[1:]):
        persona = Persona.objects.create(brand=brands[0], name="late", handle=f"late{i}", model=model)
        embedding = identity_embedding(late[i], model)
        IdentityFingerprint.objects.create(
            brand=brands[0],
            persona=persona,
            model=model,
            embedding=embedding.tobytes(),
            projected=(basis @ embedding).astype("<f4").tobytes(),
        )
        warm.append(check(latent))

    def refusal(latent):
        try:
            identity_guard_check(brand=checker, model=model, latent=latent)
        except ValidationError as exc:
            return " ".join(exc.messages)
        return ""

    duplicate = Persona.objects.unscoped().filter(brand=brands[1]).first()
    copy = refusal(latents_from_seeds(model=model, seeds=[duplicate.seed], truncation_psi=0.7)[0])
    average = refusal(latents_from_seeds(model=model, seeds=[3 * 10**9], truncation_psi=0.0)[0])
    print(f"first check (builds the index): {cold:.1f} ms")
    print(
        f"warm check with one new persona each: median {statistics.median(warm):.1f} ms, "
        f"max {max(warm):.1f} ms over {len(warm)} checks ({args.personas + len(warm)} personas)"
    )
    print(f"refuses another brand's face: {'another brand already owns' in copy}")
    print(f"refuses the average face (ψ 0): {'too close to the average face' in average}")


if __name__ == "__main__":
    main()
