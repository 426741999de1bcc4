import numpy as np
import pytest
from django.core.exceptions import ValidationError

from audit.models import AuditEvent
from avatars.models import PersonaVersion, PersonaVersionImmutable
from avatars.services import persona_render_submit, persona_rollback
from content.models import Asset
from generation.services.jobs import generation_job_run


def test_it_starts_a_persona_with_version_1_from_its_seed(persona):
    version = persona.current_version
    assert (version.number, version.operation, version.parent) == (1, "seed", None)
    assert version.params == {"seed": 42, "truncation_psi": 0.7}
    assert version.latent_array().dtype == np.float32 and len(version.sha256) == 64


def test_it_refuses_to_change_or_delete_a_version(persona, brand):
    version = persona.current_version
    for attempt in (version.save, version.delete):
        with pytest.raises(PersonaVersionImmutable):
            attempt()
    versions = PersonaVersion.objects.for_brand(brand)
    with pytest.raises(PersonaVersionImmutable):
        versions.update(operation="edit")
    with pytest.raises(PersonaVersionImmutable):
        versions.delete()


def test_it_rolls_back_by_making_a_new_version_equal_to_an_old_one(persona, brand, owner):
    first = persona.current_version
    again = persona_rollback(actor=owner, brand=brand, persona=persona, version=first)
    persona.refresh_from_db()
    assert persona.current_version == again
    assert (again.number, again.operation, again.parent) == (2, "rollback", first)
    assert again.sha256 == first.sha256 and again.params["to_version"] == 1
    assert (
        AuditEvent.objects.for_brand(brand).filter(action="persona.version_created", target_id=str(again.pk)).exists()
    )


def test_it_refuses_a_rollback_to_another_personas_version(persona, other_persona, brand, owner):
    with pytest.raises(ValidationError, match="is not a version of @ava"):
        persona_rollback(actor=owner, brand=brand, persona=persona, version=other_persona.current_version)
    assert PersonaVersion.objects.for_brand(brand).count() == 1


def test_it_pins_jobs_and_assets_to_the_version_they_render(persona, brand, owner, media_root):
    first = persona.current_version
    job = persona_render_submit(actor=owner, brand=brand, persona=persona)
    persona_rollback(actor=owner, brand=brand, persona=persona, version=first)
    generation_job_run(job_id=job.pk)
    asset = Asset.objects.for_brand(brand).get(job=job)
    assert job.version == asset.version == first
    assert asset.metadata["provenance"]["version"] == 1
