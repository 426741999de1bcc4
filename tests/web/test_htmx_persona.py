"""The persona pages' htmx parts and pictures: the live images-and-jobs partial,
the render button's and the previews' partial answers, a version's face, a look
or pose tried on, a direction's strip and slider, the class tiles of the new
persona page. Every endpoint: members in, outsiders 404 (tests/web/test_pages.py
walks them all for outsiders and anonymous visitors too)."""

import base64
import io
import re

import numpy as np
import pytest
from django.urls import reverse
from PIL import Image

from avatars.models import PersonaVersion
from avatars.pictures import direction_label, strip_strengths
from avatars.services import library_item_create, persona_edit
from content.models import Asset
from generation.models import Direction, GenerationJob, GeneratorModel
from generation.rendering import latents_thumbnails
from generation.services.directions import directions_compute
from generation.services.jobs import generation_job_run
from tests.web.test_pages import login

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def direction(generator_model):
    directions_compute(model_id=generator_model.pk)
    return generator_model.directions.model_wide().get(name="coarse-pca-0")


@pytest.fixture
def look(owner, brand, generator_model):
    return library_item_create(
        actor=owner, brand=brand, model=generator_model, kind="look", name="Gala", layer_group="fine", seed=5
    )


def pixels(png):
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def url(name, *args):
    return reverse(name, args=list(args))


# --- live images and jobs -------------------------------------------------------------


def test_the_live_part_polls_while_a_render_is_pending_and_stops_when_it_is_done(
    client, member, brand, persona, media_root
):
    login(client, member)
    live = url("persona-live", brand.slug, persona.pk)
    assert 'hx-trigger="every 2s"' not in client.get(live).content.decode()

    # The Render button's htmx answer: the part itself, the job queued, asking for itself again.
    answer = client.post(url("persona-render", brand.slug, persona.pk), **HTMX)
    job = GenerationJob.objects.for_brand(brand).get()
    page = answer.content.decode()
    assert answer.status_code == 200 and "<html" not in page
    assert f'hx-get="{live}" hx-trigger="every 2s" hx-swap="outerHTML"' in page
    assert f'data-job="{job.pk}"' in page and "Queued" in page and "No images yet" in page
    # No "Render queued" message waits for the next full page: the part shows the job.
    assert "Render queued" not in client.get(url("persona-detail", brand.slug, persona.pk)).content.decode()

    generation_job_run(job_id=job.pk)
    done = client.get(live).content.decode()
    job.refresh_from_db()
    assert job.status == GenerationJob.Status.SUCCEEDED
    assert 'hx-trigger="every 2s"' not in done and "Succeeded" in done
    asset = Asset.objects.for_brand(brand).get(job=job)
    assert f'<img src="{url("asset-image", brand.slug, asset.pk)}"' in done


def test_a_plain_render_post_still_redirects_with_a_message_and_a_noscript_refresh(client, member, brand, persona):
    login(client, member)
    response = client.post(url("persona-render", brand.slug, persona.pk), follow=True)
    page = response.content.decode()
    assert "Render queued" in page
    assert '<noscript><meta http-equiv="refresh" content="5"></noscript>' in page


def test_outsiders_get_404_and_viewers_cannot_render(client, viewer, outsider, other_brand, brand, persona):
    login(client, outsider)
    assert client.get(url("persona-live", brand.slug, persona.pk)).status_code == 404
    assert client.post(url("persona-render", brand.slug, persona.pk), **HTMX).status_code == 404
    login(client, viewer)
    assert client.get(url("persona-live", brand.slug, persona.pk)).status_code == 200
    assert client.post(url("persona-render", brand.slug, persona.pk), **HTMX).status_code == 403
    assert not GenerationJob.objects.for_brand(brand).exists()


# --- live previews ---------------------------------------------------------------------


def test_the_slider_preview_answers_with_the_two_faces_alone(client, member, brand, persona, direction):
    login(client, member)
    data = {
        "direction": direction.pk,
        "strength": direction.strength_max,
        "expected_version": persona.current_version_id,
    }
    answer = client.post(url("persona-edit", brand.slug, persona.pk), {**data, "preview": "1"}, **HTMX)
    page = answer.content.decode()
    assert answer.status_code == 200 and "<html" not in page and "nothing is saved yet" in page
    before, after = (base64.b64decode(b) for b in re.findall(r"base64,([^\"]+)", page))
    assert before != after
    assert PersonaVersion.objects.for_brand(brand).filter(persona=persona).count() == 1


def test_a_refused_preview_says_why_in_place(client, member, brand, persona, direction):
    login(client, member)
    data = {"direction": direction.pk, "strength": 1e6, "expected_version": persona.current_version_id, "preview": "1"}
    answer = client.post(url("persona-edit", brand.slug, persona.pk), data, **HTMX)
    page = answer.content.decode()
    assert answer.status_code == 400 and "<html" not in page
    assert 'role="alert"' in page and "Strength for coarse-pca-0 must be within" in page


def test_a_look_tile_preview_answers_with_the_two_faces(client, member, brand, persona, look):
    login(client, member)
    data = {"item": look.pk, "expected_version": persona.current_version_id, "preview": "1"}
    answer = client.post(url("persona-apply", brand.slug, persona.pk), data, **HTMX)
    assert answer.status_code == 200 and answer.content.count(b"data:image/png;base64,") == 2
    assert b"<html" not in answer.content


# --- pictures --------------------------------------------------------------------------


def test_a_versions_picture_is_its_face(client, viewer, outsider, other_brand, other_persona, brand, persona):
    version = persona.current_version
    login(client, viewer)
    response = client.get(url("persona-version-picture", brand.slug, persona.pk, version.pk))
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    [expected] = latents_thumbnails(model=persona.model, latents=version.latent_array()[None])
    assert np.array_equal(pixels(response.content), pixels(expected))
    # Another brand's version under this persona, and an outsider: 404.
    theirs = other_persona.current_version
    assert client.get(url("persona-version-picture", brand.slug, persona.pk, theirs.pk)).status_code == 404
    login(client, outsider)
    assert client.get(url("persona-version-picture", brand.slug, persona.pk, version.pk)).status_code == 404


def test_a_look_tile_shows_the_face_with_the_look_and_a_refusal_in_words(
    client, member, viewer, outsider, brand, persona, look, generator_model
):
    login(client, member)
    tile = client.get(url("persona-item-picture", brand.slug, persona.pk, look.pk))
    face = client.get(url("persona-version-picture", brand.slug, persona.pk, persona.current_version_id))
    assert tile.status_code == 200 and tile["Content-Type"] == "image/png"
    assert not np.array_equal(pixels(tile.content), pixels(face.content))
    # A look the service refuses (its group became the model's identity group since): 409, in words.
    other = library_item_create(
        actor=member, brand=brand, model=generator_model, kind="look", name="Gala 2", layer_group="fine", seed=6
    )
    GeneratorModel.objects.filter(pk=generator_model.pk).update(identity_group="fine")
    refused = client.get(url("persona-item-picture", brand.slug, persona.pk, other.pk))
    assert refused.status_code == 409 and "would change the identity group 'fine'" in refused.content.decode()
    login(client, viewer)
    assert client.get(url("persona-item-picture", brand.slug, persona.pk, look.pk)).status_code == 403
    login(client, outsider)
    assert client.get(url("persona-item-picture", brand.slug, persona.pk, look.pk)).status_code == 404


def test_a_direction_strip_shows_the_face_at_each_strength(client, member, outsider, brand, persona, direction):
    login(client, member)
    strip = client.get(url("persona-direction-strip", brand.slug, persona.pk, direction.pk))
    assert strip.status_code == 200 and strip["Content-Type"] == "image/png"
    strengths = strip_strengths(direction)
    assert strengths[0] == pytest.approx(direction.strength_min, abs=1e-3) and 0.0 in strengths
    image = pixels(strip.content)
    size = persona.model.img_resolution
    assert image.shape[:2] == (size, size * len(strengths))
    faces = [image[:, i * size : (i + 1) * size] for i in range(len(strengths))]
    face = client.get(url("persona-version-picture", brand.slug, persona.pk, persona.current_version_id))
    # The middle one is the face as it is; the ends are not.
    assert np.array_equal(faces[strengths.index(0.0)], pixels(face.content))
    assert not np.array_equal(faces[0], faces[-1])
    login(client, outsider)
    assert client.get(url("persona-direction-strip", brand.slug, persona.pk, direction.pk)).status_code == 404


def test_the_direction_panel_carries_the_slider_of_that_direction(client, member, outsider, brand, persona, direction):
    login(client, member)
    panel = client.get(url("persona-direction-panel", brand.slug, persona.pk), {"direction": direction.pk}, **HTMX)
    page = panel.content.decode()
    assert panel.status_code == 200 and "<html" not in page
    assert f'min="{direction.strength_min:.4f}" max="{direction.strength_max:.4f}"' in page
    assert 'hx-trigger="input changed delay:300ms"' in page and direction_label(direction) in page
    assert url("persona-direction-strip", brand.slug, persona.pk, direction.pk) in page
    # The previous direction's preview is cleared out of band.
    assert '<div id="edit-preview" aria-live="polite" hx-swap-oob="true"></div>' in page
    assert client.get(url("persona-direction-panel", brand.slug, persona.pk), {"direction": "x"}).status_code == 404
    login(client, outsider)
    assert (
        client.get(url("persona-direction-panel", brand.slug, persona.pk), {"direction": direction.pk}).status_code
        == 404
    )


def test_the_persona_page_names_directions_in_words(client, member, brand, persona, direction):
    login(client, member)
    page = client.get(url("persona-detail", brand.slug, persona.pk)).content.decode()
    assert "Pose and shape: common difference 1" in page and ">coarse-pca-0<" not in page
    assert '<optgroup label="Pose and shape">' in page
    persona_edit(actor=member, brand=brand, persona=persona, direction=direction, strength=0.5)
    page = client.get(url("persona-detail", brand.slug, persona.pk)).content.decode()
    # The timeline: a picture of each version beside its plain description and a rollback.
    for version in PersonaVersion.objects.for_brand(brand).filter(persona=persona):
        assert url("persona-version-picture", brand.slug, persona.pk, version.pk) in page
    assert "Roll back to v1" in page and "Moved 0.5 along" in page


@pytest.mark.parametrize(
    ("name", "group", "label"),
    [
        ("coarse-sefa-0", "coarse", "Pose and shape: variation 1"),
        ("fine-pca-2", "fine", "Colour and detail: common difference 3"),
        ("middle-towards-dark_jacket/waveLongArms", "middle", "Towards dark jacket, wave long arms (facial features)"),
        ("big-smile", "middle", "Big smile (facial features)"),
        ("outfit-sefa-1", "outfit", "Outfit: variation 2"),
    ],
)
def test_a_direction_has_a_human_name(name, group, label):
    assert direction_label(Direction(name=name, layer_group=group)) == label


# --- the new persona page's class pictures -----------------------------------------------


def test_class_tiles_are_the_seed_drawn_in_each_class(client, member, viewer, outsider, brand, generator_model):
    login(client, member)
    page = client.get(url("persona-create", brand.slug), {"seed": 7, "truncation_psi": 0.5}).content.decode()
    # The placeholder model is unconditional: no class to choose, its seed's face shown.
    tile = url("class-picture", brand.slug, generator_model.pk, "none")
    assert '<input type="hidden" name="class_index" value="">' in page
    assert f"{tile}?seed=7&amp;truncation_psi=0.5" in page
    response = client.get(tile, {"seed": 7, "truncation_psi": 0.5})
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    refused = client.get(url("class-picture", brand.slug, generator_model.pk, 0), {"seed": 7})
    assert refused.status_code == 400 and "is unconditional" in refused.content.decode()
    assert client.get(tile, {"seed": "x"}).status_code == 400
    login(client, viewer)
    assert client.get(tile).status_code == 403
    login(client, outsider)
    assert client.get(tile).status_code == 404
