"""Web processes that edit personas, apply looks and poses, breed and roll back
never load PyTorch: that work is NumPy row arithmetic (avatars.latents)."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import sys
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)

import numpy as np
from django.contrib.auth import get_user_model
from avatars.services import (
    library_item_create, persona_breed, persona_create, persona_edit, persona_library_apply, persona_rollback,
)
from brands.services import brand_create
from generation.models import Direction, GeneratorModel
import avatars.views, dashboard.views, generation.admin  # every page a web process serves

groups = [{"name": "coarse", "start": 0, "end": 1}, {"name": "middle", "start": 2, "end": 3},
          {"name": "fine", "start": 4, "end": 5}]
model = GeneratorModel.objects.create(
    name="No weights", slug="no-weights", directory="/nonexistent", sha256="0" * 64, config={"c_dim": 0},
    num_ws=6, w_dim=8, licence_note="test", layer_groups=groups, identity_group="middle",
)
direction = Direction.objects.create(
    model=model, name="up", kind="sefa", layer_group="fine", vector=np.ones(8, "<f4").tobytes(),
    strength_min=-3, strength_max=3,
)
owner = get_user_model().objects.create_user("owner", password="x")
brand = brand_create(actor=owner, name="Acme", slug="acme")
rng = np.random.default_rng(0)
ava = persona_create(actor=owner, brand=brand, model=model, latent=rng.standard_normal((6, 8)).astype("f4"),
                     name="Ava", handle="ava")
bob = persona_create(actor=owner, brand=brand, model=model, latent=rng.standard_normal((6, 8)).astype("f4"),
                     name="Bob", handle="bob")
first = ava.current_version
persona_edit(actor=owner, brand=brand, persona=ava, direction=direction, strength=1.5)
look = library_item_create(actor=owner, brand=brand, model=model, kind="look", name="Bob's", layer_group="fine",
                           source_version=bob.current_version)
persona_library_apply(actor=owner, brand=brand, persona=ava, item=look)
persona_breed(actor=owner, brand=brand, base=ava, donor=bob, layer_groups=["coarse"], name="Kid", handle="kid")
persona_rollback(actor=owner, brand=brand, persona=ava, version=first)
ava.refresh_from_db()
print("versions", ava.current_version.number, "torch loaded", "torch" in sys.modules)
"""


def test_it_edits_looks_breeds_and_rolls_back_without_loading_torch(tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "MEDIA_ROOT": str(tmp_path / "media"),
        "PYTHONPATH": str(ROOT),
    }
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "versions 4 torch loaded False" in result.stdout
