"""Identity guard benchmark: time of one check with N stored personas.

    python bench/identity_guard.py                # 100 000 personas in 100 brands
    python bench/identity_guard.py --personas 20000
    python bench/identity_guard.py --personas 20000 --learned   # force the learned guard on

Builds a throw-away SQLite database, model folder and Celery broker folder in a
temporary directory (removed at the end; DATABASE_URL and the broker settings are
ignored so that no real database or queue gets anything), registers the bundled
default generator, stores N personas of other brands (seed s with class s mod the
number of classes, ψ 0.7) with the fingerprints the guard reads — in W, and, the
bundled model shipping an identity embedding, the embedding of each persona's render —
then times a check for fresh seeds: the render's embedding (computed before the
transaction in the product) and avatars.identity.identity_guard_check, the first
check (builds the process's index), then warm checks, each after one more persona was
stored by another brand (so each includes the incremental refresh). Last, it checks
that another brand's persona is refused as the same person, at its own latent and
under another class (another latent, the same seed), that the average face (ψ 0) is
refused, and how many fresh seeds the stored personas leave free. The bundled model's
personas look too alike to its embedding for the learned guard (its
identity_measure.persona_match_rate; see generation.rendering), so it is guarded in W
unless ``--learned`` turns the learned guard on to measure it.
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
    parser.add_argument("--learned", action="store_true", help="guard with the identity embedding even so")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="identity-guard-bench-"))
    try:
        run(args, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def run(args, workdir: Path) -> None:
    os.environ["DATABASE_URL"] = f"sqlite:///{workdir / 'bench.sqlite3'}"
    os.environ["MODELS_ROOT"] = str(workdir / "models")
    os.environ["MEDIA_ROOT"] = str(workdir / "media")
    # Registering a model queues its directions: that message goes to a broker folder here.
    os.environ["CELERY_BROKER_URL"] = "filesystem://localhost/"
    os.environ["CELERY_BROKER_DIR"] = str(workdir / "broker")
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.exceptions import ValidationError
    from django.core.management import call_command
    from django.db import transaction

    from avatars.identity import identity_embedding, identity_guard_check, identity_learned_embedding
    from avatars.models import IdentityFingerprint, Persona
    from brands.models import Brand
    from generation.models import GeneratorModel
    from generation.rendering import identity_embed_latents
    from generation.rendering import latents_from_seeds as latents_of_class

    call_command("migrate", verbosity=0)
    call_command("load_default_model", verbosity=0)
    model = GeneratorModel.objects.get()
    if args.learned:
        from generation.stylegan.identity import load_identity_measure

        threshold = load_identity_measure(model.path).calibration.duplicate_threshold
        model.identity_measure = {**model.identity_measure, "duplicate_threshold": threshold}
        model.save(update_fields=["identity_measure"])
    basis = model.identity_basis_array()
    F4 = "<f4"

    def latents_from_seeds(seeds, truncation_psi=0.7, shift=0):
        """Seed s with class (s + shift) mod c_dim on a conditional model, in the order given."""
        if not model.c_dim:
            return latents_of_class(model=model, seeds=seeds, truncation_psi=truncation_psi)
        out = np.zeros((len(seeds), model.num_ws, model.w_dim), np.float32)
        labels = (np.array(seeds) + shift) % model.c_dim
        for label in np.unique(labels).tolist():
            rows = np.flatnonzero(labels == label)
            out[rows] = latents_of_class(
                model=model, seeds=[seeds[i] for i in rows], truncation_psi=truncation_psi, class_index=label
            )
        return out

    guard = (
        f"learned, duplicate threshold {model.identity_measure['duplicate_threshold']}"
        if model.identity_learned
        else "in W"
    )
    print(
        f"model {model.slug}: identity measure {model.identity_measure.get('name', 'pixel-structure')}, random "
        f"personas match at {model.identity_measure.get('persona_match_rate')} of pairs; guard {guard}; "
        f"W identity rows {model.identity_rows}"
    )

    started = time.perf_counter()
    brands = Brand.objects.bulk_create(Brand(name=f"B{i}", slug=f"b{i}") for i in range(args.brands + 1))
    chunk = 2000
    for first in range(0, args.personas, chunk):
        seeds = list(range(first, min(first + chunk, args.personas)))
        latents = latents_from_seeds(seeds)
        learned = identity_embed_latents(model=model, latents=latents) if model.identity_learned else None
        with transaction.atomic():
            personas = Persona.objects.bulk_create(
                Persona(brand=brands[s % args.brands], name=f"P{s}", handle=f"p{s}", model=model, seed=s) for s in seeds
            )
            fingerprints = []
            for i, (persona, latent) in enumerate(zip(personas, latents, strict=True)):
                w = identity_embedding(latent, model)
                fingerprints.append(IdentityFingerprint(
                    brand=persona.brand, persona=persona, model=model, embedding=w.tobytes(),
                    projected=(basis @ w).astype(F4).tobytes(),
                ))  # fmt: skip
                if learned is not None:
                    vector = learned[i].astype(F4).tobytes()
                    fingerprints.append(IdentityFingerprint(
                        brand=persona.brand, persona=persona, model=model, space="learned", embedding=vector,
                        projected=vector,
                    ))  # fmt: skip
            IdentityFingerprint.objects.bulk_create(fingerprints)
        print(f"  stored {seeds[-1] + 1} personas ({time.perf_counter() - started:.0f} s)", flush=True)
    print(f"stored {args.personas} personas in {time.perf_counter() - started:.1f} s")

    checker = brands[-1]
    queries = latents_from_seeds(list(range(10**9, 10**9 + args.checks + 1)))
    late = latents_from_seeds(list(range(2 * 10**9, 2 * 10**9 + args.checks)))

    def refusal(latent):
        """The refusal message for `checker` owning `latent` ('' when allowed), and the milliseconds."""
        t = time.perf_counter()
        try:
            embedding = identity_learned_embedding(model=model, latent=latent)
            identity_guard_check(brand=checker, model=model, latent=latent, embedding=embedding)
        except ValidationError as exc:
            return " ".join(exc.messages), (time.perf_counter() - t) * 1000
        return "", (time.perf_counter() - t) * 1000

    _, cold = refusal(queries[0])
    warm, refused = [], 0
    for i, latent in enumerate(queries[1:]):
        persona = Persona.objects.create(brand=brands[0], name="late", handle=f"late{i}", model=model)
        w = identity_embedding(late[i], model)
        IdentityFingerprint.objects.create(
            brand=brands[0], persona=persona, model=model, embedding=w.tobytes(),
            projected=(basis @ w).astype(F4).tobytes(),
        )  # fmt: skip
        message, ms = refusal(latent)
        warm.append(ms)
        refused += bool(message)

    duplicate = Persona.objects.unscoped().filter(brand=brands[1]).first()
    copy, _ = refusal(latents_from_seeds([duplicate.seed])[0])
    relabelled, _ = refusal(latents_from_seeds([duplicate.seed], shift=7)[0])
    average, _ = refusal(latents_from_seeds([3 * 10**9], truncation_psi=0.0)[0])
    print(f"first check (builds the index): {cold:.1f} ms")
    print(
        f"warm check with one new persona each (with the render's embedding when the guard is learned): median "
        f"{statistics.median(warm):.1f} ms, max {max(warm):.1f} ms over {len(warm)} checks "
        f"({args.personas + len(warm)} personas; target ≤ 50 ms)"
    )
    print(f"fresh seeds refused as someone else's person: {refused} of {len(warm)}")
    print(f"refuses another brand's persona (same latent): {'another brand' in copy}")
    print(f"refuses another brand's persona under another class (another latent): {'another brand' in relabelled}")
    print(f"refuses the average face (ψ 0): {'too close to the average face' in average}")


if __name__ == "__main__":
    main()
