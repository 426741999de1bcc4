import pytest
from django.core.management import call_command
from django.urls import reverse

from avatars.models import LibraryItem, Persona, PersonaVersion
from avatars.services import library_item_create
from brands.models import LayerGroupPermission
from generation.models import GeneratorModel
from generation.services.directions import directions_compute
from tests.web.test_pages import login


@pytest.fixture
def look(owner, brand, generator_model):
    return library_item_create(
        actor=owner, brand=brand, model=generator_model, kind="look", name="Gala", layer_group="fine", seed=5
    )


def test_it_shows_a_candidate_grid_whose_tiles_lead_to_the_create_form(client, member, brand, generator_model):
    login(client, member)
    url = reverse("persona-candidates", args=[brand.slug])
    response = client.get(url, {"model": generator_model.pk, "first_seed": 100, "count": 3, "truncation_psi": 0.6})
    assert response.content.count(b"data:image/png;base64,") == 3 and b"seed 102" in response.content
    assert generator_model.licence_note.encode() in response.content
    pick = client.get(
        reverse("persona-create", args=[brand.slug]), {"seed": 101, "model": generator_model.pk, "truncation_psi": 0.6}
    )
    assert b'value="101"' in pick.content
    too_many = client.get(url, {"model": generator_model.pk, "first_seed": 0, "count": 40, "truncation_psi": 0.6})
    assert b"less than or equal to 16" in too_many.content and b"data:image/png" not in too_many.content


def test_it_offers_the_classes_of_a_conditional_model_by_name(client, member, brand, settings, tmp_path):
    settings.MODELS_ROOT = tmp_path / "models"
    call_command("load_default_model")
    model = GeneratorModel.objects.get(slug="notionists-64")
    index = model.class_names.index("tie/point")
    login(client, member)
    url = reverse("persona-candidates", args=[brand.slug])
    query = {"model": model.pk, "first_seed": 0, "count": 2, "truncation_psi": 0.7}
    response = client.get(url, {**query, "class_index": index})
    assert f'<option value="{index}" selected>{index}: tie/point</option>' in response.content.decode()
    assert response.content.count(b"data:image/png;base64,") == 2
    out_of_range = client.get(url, {**query, "class_index": model.c_dim})
    assert b"Select a valid choice" in out_of_range.content and b"data:image/png" not in out_of_range.content


def head(persona):
    """What the persona page puts in its forms' hidden expected_version field."""
    persona.refresh_from_db()
    return persona.current_version_id


def test_it_edits_applies_and_rolls_back_from_the_persona_page(client, member, brand, persona, look, generator_model):
    directions_compute(model_id=generator_model.pk)
    direction = generator_model.directions.model_wide().get(name="coarse-pca-0")
    login(client, member)
    detail = reverse("persona-detail", args=[brand.slug, persona.pk])
    edit = reverse("persona-edit", args=[brand.slug, persona.pk])
    bad = client.post(edit, {"direction": direction.pk, "strength": 1e6, "expected_version": head(persona)})
    assert bad.status_code == 400 and b"Strength for coarse-pca-0 must be within" in bad.content
    edited = client.post(edit, {"direction": direction.pk, "strength": 0.1, "expected_version": head(persona)})
    assert edited.url == detail
    apply = reverse("persona-apply", args=[brand.slug, persona.pk])
    assert client.post(apply, {"item": look.pk, "expected_version": head(persona)}).url == detail
    first = PersonaVersion.objects.for_brand(brand).get(persona=persona, number=1)
    client.post(
        reverse("persona-rollback", args=[brand.slug, persona.pk, first.pk]), {"expected_version": head(persona)}
    )
    page = client.get(detail).content
    assert b"Rolled back" in page and b"Look applied" in page and b"Edited along a direction" in page
    persona.refresh_from_db()
    assert (persona.current_version.number, persona.current_version.sha256) == (4, first.sha256)


def test_it_refuses_a_change_that_does_not_say_which_version_it_was_made_against(client, member, brand, persona, look):
    login(client, member)
    apply = client.post(reverse("persona-apply", args=[brand.slug, persona.pk]), {"item": look.pk})
    assert apply.status_code == 400
    rollback = client.post(reverse("persona-rollback", args=[brand.slug, persona.pk, persona.current_version_id]))
    assert rollback.status_code == 400
    assert PersonaVersion.objects.for_brand(brand).filter(persona=persona).count() == 1


def test_it_breeds_from_a_form_and_shows_unknown_groups_as_errors(client, member, brand, persona, other_persona):
    login(client, member)
    url = reverse("persona-breed", args=[brand.slug])
    data = {"base": persona.pk, "donor": persona.pk, "layer_groups": "outfit", "name": "Kid", "handle": "kid"}
    assert b"Select a valid choice. outfit is not one of the available choices." in client.post(url, data).content
    assert client.post(url, {**data, "donor": other_persona.pk}).status_code == 200  # not offered: another brand's
    response = client.post(url, {**data, "layer_groups": "fine"})
    assert response.status_code == 302 and Persona.objects.for_brand(brand).filter(handle="kid").exists()


def test_it_manages_the_library_and_permissions(client, owner, member, viewer, brand, generator_model):
    login(client, member)
    url = reverse("library", args=[brand.slug])
    create_url = reverse("library-item-create", args=[brand.slug])
    permission_url = reverse("layer-group-permission-set", args=[brand.slug])
    data = {"kind": "look", "name": "Red", "model": generator_model.pk, "layer_group": "middle", "seed": 3}
    assert b"identity group" in client.post(create_url, data).content
    assert client.post(create_url, {**data, "layer_group": "fine"}).status_code == 302
    assert client.post(permission_url, {"role": "creator", "layer_groups": "fine"}).status_code == 403
    login(client, owner)
    assert client.post(permission_url, {"role": "creator", "layer_groups": "fine"}).status_code == 302
    assert LayerGroupPermission.objects.get(brand=brand).layer_groups == ["fine"]
    assert b"Red" in client.get(url).content
    login(client, viewer)
    assert client.get(url).status_code == 200 and client.post(create_url, {**data, "name": "X"}).status_code == 403
    assert LibraryItem.objects.for_brand(brand).count() == 1


def test_it_offers_only_the_models_layer_groups_for_permissions(client, owner, brand, generator_model):
    login(client, owner)
    url = reverse("layer-group-permission-set", args=[brand.slug])
    response = client.post(url, {"role": "creator", "layer_groups": ["fine", "x" * 100_000]})
    assert response.status_code == 400 and b"is not one of the available choices" in response.content
    assert not LayerGroupPermission.objects.filter(brand=brand).exists()
    page = client.get(reverse("library", args=[brand.slug])).content.decode()
    assert all(f'value="{name}"' in page for name in ("coarse", "middle", "fine"))
