"""PATCH (rename, archive, unarchive) and DELETE of a persona through the API:
roles, audit rows through the token, refusals as problem details."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from approvals.services import review_submit
from audit.models import AuditEvent
from avatars.models import Persona
from avatars.services import persona_create_from_seed
from generation.models import GenerationJob
from tests.api.test_api import assert_problem
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def persona_url(brand, persona):
    return reverse("api-persona", kwargs={"brand_slug": brand.slug, "persona_id": persona.pk})


def signed_in(user):
    client = APIClient()
    assert client.login(username=user.get_username(), password=PASSWORD)
    return client


@pytest.fixture
def spare(owner, brand, generator_model):
    return persona_create_from_seed(
        actor=owner, brand=brand, model=generator_model, seed=21, name="Spare", handle="spare"
    )


def test_it_renames_and_archives_in_one_patch_audited_with_the_token(api, token, brand, persona):
    assert api.get(persona_url(brand, persona)).json()["archived"] is False
    response = api.patch(persona_url(brand, persona), {"name": "Ava Nova", "archived": True}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["name"] == "Ava Nova" and body["handle"] == "ava" and body["archived"] is True
    assert body["archived_at"] and response["ETag"] == f'"version-{persona.current_version_id}"'
    renamed = AuditEvent.objects.get(brand=brand, action="persona.renamed")
    archived = AuditEvent.objects.get(brand=brand, action="persona.archived")
    assert renamed.after["via_api_token"] == token[0].pk and archived.after["via_api_token"] == token[0].pk
    back = api.patch(persona_url(brand, persona), {"archived": False}, format="json")
    assert back.status_code == 200 and back.json()["archived"] is False and back.json()["archived_at"] is None


def test_it_refuses_renders_and_campaigns_of_an_archived_persona(api, brand, persona):
    api.patch(persona_url(brand, persona), {"archived": True}, format="json")
    render = api.post(reverse("api-persona-render", kwargs={"brand_slug": brand.slug, "persona_id": persona.pk}))
    body = assert_problem(render, 400, "validation_error")
    assert "is archived, so it is not rendered" in body["detail"]
    campaign = api.post(
        reverse("api-campaigns", kwargs={"brand_slug": brand.slug}),
        {"name": "Spring", "personas": [persona.pk], "formats": ["1:1"], "variants": 1},
        format="json",
    )
    body = assert_problem(campaign, 400, "validation_error")
    assert "Ava is archived; unarchive it to use it in a campaign." in body["detail"]
    assert not GenerationJob.objects.for_brand(brand).exists()


def test_it_refuses_a_blank_name(api, brand, persona):
    body = assert_problem(api.patch(persona_url(brand, persona), {"name": " "}, format="json"), 400, "validation_error")
    assert body["errors"][0]["field"] == "name"
    assert Persona.objects.for_brand(brand).get(pk=persona.pk).name == "Ava"


def test_it_lets_creators_patch_but_only_owners_delete(member, viewer, brand, persona, spare):
    creator_api = signed_in(member)
    assert creator_api.patch(persona_url(brand, persona), {"name": "Eva"}, format="json").status_code == 200
    assert_problem(creator_api.delete(persona_url(brand, spare)), 403, "permission_denied")
    viewer_api = signed_in(viewer)
    assert_problem(viewer_api.patch(persona_url(brand, persona), {"archived": True}, format="json"), 403,
                   "permission_denied")  # fmt: skip
    assert Persona.objects.for_brand(brand).filter(pk=spare.pk).exists()
    assert Persona.objects.for_brand(brand).get(pk=persona.pk).archived_at is None


def test_it_deletes_a_persona_nothing_uses(api, brand, spare):
    response = api.delete(persona_url(brand, spare))
    assert response.status_code == 204
    assert not Persona.objects.for_brand(brand).filter(pk=spare.pk).exists()
    assert AuditEvent.objects.get(brand=brand, action="persona.deleted").before["handle"] == "spare"
    assert_problem(api.get(persona_url(brand, spare)), 404, "not_found")


def test_it_refuses_to_delete_a_persona_in_use_with_409(api, creator, brand, persona, assets):
    review_submit(actor=creator, brand=brand, asset=assets[0])
    body = assert_problem(api.delete(persona_url(brand, persona)), 409, "persona_in_use")
    assert "@ava cannot be deleted: it is used by 1 image in review" in body["detail"]
    assert "Archive it instead" in body["detail"]
    assert Persona.objects.for_brand(brand).filter(pk=persona.pk).exists()


def test_it_hides_another_brands_persona(outsider_api, brand, persona):
    assert_problem(outsider_api.patch(persona_url(brand, persona), {"name": "X"}, format="json"), 404, "not_found")
    assert_problem(outsider_api.delete(persona_url(brand, persona)), 404, "not_found")
    assert Persona.objects.for_brand(brand).get(pk=persona.pk).name == "Ava"
