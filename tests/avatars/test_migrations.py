import numpy as np
import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("avatars", "0002_initial"), ("generation", "0002_layer_groups"), ("content", "0001_initial")]
AFTER = [
    ("avatars", "0003_persona_versions"),
    ("generation", "0003_generationjob_version"),
    ("content", "0002_asset_version"),
]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_it_moves_existing_latents_into_version_1_and_pins_jobs_and_assets_to_it():
    apps = migrate(BEFORE)
    User, Brand = apps.get_model("auth", "User"), apps.get_model("brands", "Brand")
    GeneratorModel, Persona = apps.get_model("generation", "GeneratorModel"), apps.get_model("avatars", "Persona")
    GenerationJob, Asset = apps.get_model("generation", "GenerationJob"), apps.get_model("content", "Asset")
    user = User.objects.create(username="u")
    brand = Brand.objects.create(name="B", slug="b")
    model = GeneratorModel.objects.create(
        name="M",
        slug="m",
        directory="m",
        sha256="0" * 64,
        config={"c_dim": 0},
        num_ws=2,
        w_dim=3,
        licence_note="x",
        layer_groups=[{"name": "all", "start": 0, "end": 1}],
        identity_group="all",
    )
    latent = np.arange(6, dtype="<f4").reshape(2, 3)
    persona = Persona.objects.create(
        brand=brand,
        name="P",
        handle="p",
        model=model,
        seed=5,
        truncation_psi=0.5,
        latent=latent.tobytes(),
        latent_num_ws=2,
        latent_w_dim=3,
        latent_sha256="a" * 64,
        created_by=user,
    )
    job = GenerationJob.objects.create(brand=brand, persona=persona, model=model)
    Asset.objects.create(brand=brand, persona=persona, job=job, image="x.png", width=1, height=1)

    apps = migrate(AFTER)
    persona = apps.get_model("avatars", "Persona").objects.get()
    version = persona.current_version
    assert (version.number, version.operation, version.params) == (1, "seed", {"seed": 5, "truncation_psi": 0.5})
    assert bytes(version.latent) == latent.tobytes() and version.created_by_id == user.pk
    assert apps.get_model("generation", "GenerationJob").objects.get().version_id == version.pk
    assert apps.get_model("content", "Asset").objects.get().version_id == version.pk
    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
