"""A persona's settings: rename, archive and unarchive (creators and owners),
delete (owners, with a typed confirmation, refused while anything uses the
persona); the brand page's gallery (thumbnails, search, archived ones hidden)."""

import pytest
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.urls import reverse

from approvals.services import review_submit
from audit.models import AuditEvent
from avatars.models import Persona
from avatars.services import (
    persona_archive,
    persona_create_from_seed,
    persona_delete,
    persona_rename,
    persona_render_submit,
    persona_unarchive,
)
from campaigns.models import Campaign
from campaigns.services import campaign_submit
from content.models import Asset
from generation.models import GenerationJob
from generation.services.jobs import generation_job_run
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def login(client, user):
    assert client.login(username=user.get_username(), password=PASSWORD)


def url(name, brand, persona=None):
    return reverse(name, args=[brand.slug] if persona is None else [brand.slug, persona.pk])


def audit_rows(brand, action):
    return list(AuditEvent.objects.filter(brand=brand, action=action).order_by("pk"))


@pytest.fixture
def bea(owner, brand, generator_model):
    return persona_create_from_seed(
        actor=owner, brand=brand, model=generator_model, seed=5, name="Bea Lux", handle="bea", truncation_psi=0.7
    )


@pytest.fixture
def rendered(owner, brand, persona, media_root):
    """A render of the persona, stored (a draft image nobody reviews)."""
    job = persona_render_submit(actor=owner, brand=brand, persona=persona)
    generation_job_run(job_id=job.pk)
    return Asset.objects.for_brand(brand).get(job=job)


SETTINGS_POSTS = ("persona-rename", "persona-archive", "persona-unarchive", "persona-delete")


# --- who may ------------------------------------------------------------------------


def test_it_answers_404_to_outsiders_on_every_settings_action(client, outsider, other_brand, brand, persona):
    login(client, outsider)
    for name in SETTINGS_POSTS:
        assert client.post(url(name, brand, persona), {"name": "X", "confirm": "ava"}).status_code == 404, name
    assert client.get(url("persona-delete", brand, persona)).status_code == 404
    persona.refresh_from_db()
    assert persona.name == "Ava" and persona.archived_at is None
    assert not AuditEvent.objects.filter(actor=outsider, action__startswith="persona.").exists()


def test_it_answers_404_for_another_brands_persona_under_ones_own_brand(client, owner, brand, other_persona):
    login(client, owner)
    for name in SETTINGS_POSTS:
        assert client.post(url(name, brand, other_persona), {"name": "X", "confirm": "otto"}).status_code == 404
    assert Persona.objects.for_brand(other_persona.brand).get().name == "Otto"


def test_it_lets_viewers_see_no_settings_and_change_nothing(client, viewer, brand, persona):
    login(client, viewer)
    page = client.get(url("persona-detail", brand, persona))
    assert page.status_code == 200 and b'id="settings"' not in page.content
    for name in SETTINGS_POSTS:
        assert client.post(url(name, brand, persona), {"name": "X", "confirm": "ava"}).status_code == 403, name
    assert client.get(url("persona-delete", brand, persona)).status_code == 403
    persona.refresh_from_db()
    assert persona.name == "Ava" and persona.archived_at is None


def test_it_lets_creators_rename_and_archive_but_not_delete(client, member, brand, persona):
    login(client, member)
    page = client.get(url("persona-detail", brand, persona)).content.decode()
    assert 'id="settings"' in page and url("persona-rename", brand, persona) in page
    assert url("persona-archive", brand, persona) in page and url("persona-delete", brand, persona) not in page
    assert client.get(url("persona-delete", brand, persona)).status_code == 403
    assert client.post(url("persona-delete", brand, persona), {"confirm": "ava"}).status_code == 403
    with pytest.raises(Exception, match="may not do this"):
        persona_delete(actor=member, brand=brand, persona=persona)
    assert Persona.objects.for_brand(brand).filter(pk=persona.pk).exists()


# --- rename ---------------------------------------------------------------------------


def test_it_renames_a_persona_with_an_audit_row(client, member, brand, persona):
    login(client, member)
    response = client.post(url("persona-rename", brand, persona), {"name": "  Ava   Nova "})
    assert response.status_code == 302 and response.url.endswith("#settings")
    persona.refresh_from_db()
    assert persona.name == "Ava Nova" and persona.handle == "ava"
    [row] = audit_rows(brand, "persona.renamed")
    assert row.actor == member and row.target_id == str(persona.pk)
    assert row.before == {"name": "Ava"} and row.after == {"name": "Ava Nova", "handle": "ava"}
    assert "Renamed to Ava Nova." in client.get(response.url).content.decode()


def test_it_shows_a_refused_name_in_the_settings_form(client, member, brand, persona):
    login(client, member)
    response = client.post(url("persona-rename", brand, persona), {"name": "   "})
    assert response.status_code == 400
    assert "A persona needs a name." in response.content.decode()
    persona.refresh_from_db()
    assert persona.name == "Ava" and not audit_rows(brand, "persona.renamed")


def test_it_writes_nothing_for_a_rename_to_the_same_name(owner, brand, persona):
    persona_rename(actor=owner, brand=brand, persona=persona, name="Ava")
    assert not audit_rows(brand, "persona.renamed")


# --- archive ---------------------------------------------------------------------------


def test_it_archives_and_unarchives_with_audit_rows(client, member, brand, persona):
    login(client, member)
    assert client.post(url("persona-archive", brand, persona)).status_code == 302
    persona.refresh_from_db()
    assert persona.archived
    page = client.get(url("persona-detail", brand, persona)).content.decode()
    assert "Archived " in page and url("persona-unarchive", brand, persona) in page
    assert url("persona-render", brand, persona) not in page  # no Render button
    # Archiving again changes nothing.
    assert client.post(url("persona-archive", brand, persona)).status_code == 302
    assert client.post(url("persona-unarchive", brand, persona)).status_code == 302
    persona.refresh_from_db()
    assert persona.archived_at is None
    [archived] = audit_rows(brand, "persona.archived")
    [unarchived] = audit_rows(brand, "persona.unarchived")
    assert archived.actor == member and archived.after["archived_at"] and archived.before == {"archived_at": None}
    assert unarchived.after["archived_at"] is None and unarchived.before["archived_at"] == archived.after["archived_at"]


def test_it_refuses_to_render_an_archived_persona(client, member, brand, persona):
    persona_archive(actor=member, brand=brand, persona=persona)
    with pytest.raises(ValidationError, match="is archived, so it is not rendered"):
        persona_render_submit(actor=member, brand=brand, persona=persona)  # `persona` is the stale row
    login(client, member)
    response = client.post(url("persona-render", brand, persona), follow=True)
    assert response.status_code == 200 and "is archived, so it is not rendered" in response.content.decode()
    htmx = client.post(url("persona-render", brand, persona), HTTP_HX_REQUEST="true")
    assert htmx.status_code == 409 and b"is archived" in htmx.content
    assert not GenerationJob.objects.for_brand(brand).exists()
    persona_unarchive(actor=member, brand=brand, persona=persona)
    assert persona_render_submit(actor=member, brand=brand, persona=persona).status == GenerationJob.Status.QUEUED


def test_it_refuses_an_archived_persona_in_a_new_campaign(client, member, brand, persona, bea):
    persona_archive(actor=member, brand=brand, persona=persona)
    persona.refresh_from_db()
    with pytest.raises(ValidationError, match="Ava is archived; unarchive it to use it in a campaign"):
        campaign_submit(
            actor=member, brand=brand, name="Spring", versions=[persona.current_version], formats=["1:1"], variants=1
        )
    # Nor can a stale row of it slip through: the render queue reads the database.
    persona.archived_at = None
    with pytest.raises(ValidationError, match="is archived"):
        campaign_submit(
            actor=member, brand=brand, name="Spring", versions=[persona.current_version], formats=["1:1"], variants=1
        )
    assert not Campaign.objects.for_brand(brand).exists()
    login(client, member)
    builder = client.get(reverse("campaign-create", args=[brand.slug])).content.decode()
    assert "Bea Lux" in builder and "Ava" not in builder


# --- delete -----------------------------------------------------------------------------


def test_it_deletes_a_persona_after_the_typed_confirmation_and_removes_its_files(
    client, owner, brand, persona, rendered, django_capture_on_commit_callbacks
):
    files = [rendered.image.name, rendered.web.name, rendered.thumbnail.name]
    files = [name for name in files if name]
    assert files and all(default_storage.exists(name) for name in files)
    login(client, owner)
    page = client.get(url("persona-delete", brand, persona)).content.decode()
    assert "1 version and 1 image" in page and "Type the persona" in page
    wrong = client.post(url("persona-delete", brand, persona), {"confirm": "eva"})
    assert wrong.status_code == 400 and "Type @ava to delete this persona." in wrong.content.decode()
    assert Persona.objects.for_brand(brand).filter(pk=persona.pk).exists()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url("persona-delete", brand, persona), {"confirm": "@ava"})
    assert response.status_code == 302 and response.url == url("brand-dashboard", brand)
    assert not Persona.objects.for_brand(brand).filter(pk=persona.pk).exists()
    assert not Asset.objects.for_brand(brand).exists() and not GenerationJob.objects.for_brand(brand).exists()
    assert not any(default_storage.exists(name) for name in files)
    [row] = audit_rows(brand, "persona.deleted")
    assert row.actor == owner and row.target_id == str(persona.pk)
    assert row.before == {
        "name": "Ava", "handle": "ava", "model": persona.model.slug, "versions": 1, "images": 1, "archived": False,
    }  # fmt: skip
    assert "Deleted Ava (@ava)" in client.get(response.url).content.decode()


def test_it_refuses_to_delete_a_persona_with_an_image_in_review(client, owner, creator, brand, persona, assets):
    review_submit(actor=creator, brand=brand, asset=assets[0])
    login(client, owner)
    page = client.get(url("persona-delete", brand, persona)).content.decode()
    assert "cannot be deleted now" in page and "1 image in review, approved, scheduled or published" in page
    assert "campaign “Spring”" in page and 'name="confirm"' not in page
    response = client.post(url("persona-delete", brand, persona), {"confirm": "ava"})
    text = response.content.decode()
    assert response.status_code == 409 and "@ava cannot be deleted: it is used by 1 image in review" in text
    assert "Archive it instead" in text
    assert Persona.objects.for_brand(brand).filter(pk=persona.pk).exists()
    assert Asset.objects.for_brand(brand).count() == len(assets)
    assert not audit_rows(brand, "persona.deleted")


def test_it_refuses_to_delete_a_persona_a_campaign_uses(owner, creator, brand, persona, assets):
    with pytest.raises(ValidationError, match="it is used by campaign “Spring”") as refused:
        persona_delete(actor=owner, brand=brand, persona=persona)
    assert refused.value.code == "persona_in_use"
    assert Persona.objects.for_brand(brand).filter(pk=persona.pk).exists()


def test_it_refuses_to_delete_a_persona_a_schedule_uses(owner, brand, persona):
    from publishing.services import schedule_create

    schedule_create(
        actor=owner, brand=brand, persona=persona, name="Daily", kind="cron", cron="0 9 * * *", timezone="UTC",
        formats=["1:1"], caption_templates=["{persona}"],
    )  # fmt: skip
    with pytest.raises(ValidationError, match="schedule “Daily”"):
        persona_delete(actor=owner, brand=brand, persona=persona)
    assert Persona.objects.for_brand(brand).filter(pk=persona.pk).exists()


# --- the gallery -------------------------------------------------------------------------


def test_it_shows_the_gallery_with_each_personas_current_face(client, viewer, brand, persona, bea):
    login(client, viewer)
    page = client.get(url("brand-dashboard", brand)).content.decode()
    for each in (persona, bea):
        picture = reverse("persona-version-picture", args=[brand.slug, each.pk, each.current_version_id])
        assert picture in page and url("persona-detail", brand, each) in page
        image = client.get(picture)
        assert image.status_code == 200 and image["Content-Type"] == "image/png"
        assert image.content.startswith(b"\x89PNG")


def gallery_names(client, brand, **query):
    page = client.get(url("brand-dashboard", brand), query).content.decode()
    gallery = page[page.index('id="persona-gallery"') :]
    return {name for name in ("Ava", "Bea Lux") if f'class="name">{name}<' in gallery}, page


def test_it_searches_the_gallery_by_name_or_handle(client, member, brand, persona, bea):
    login(client, member)
    assert gallery_names(client, brand)[0] == {"Ava", "Bea Lux"}
    assert gallery_names(client, brand, q="lux")[0] == {"Bea Lux"}
    assert gallery_names(client, brand, q="@AVA")[0] == {"Ava"}
    names, page = gallery_names(client, brand, q="nobody")
    assert names == set() and "has “nobody” in its name or handle" in page


def test_it_hides_archived_personas_unless_asked(client, member, brand, persona, bea):
    persona_archive(actor=member, brand=brand, persona=bea)
    login(client, member)
    names, page = gallery_names(client, brand)
    assert names == {"Ava"} and "1 archived persona hidden" in page
    assert gallery_names(client, brand, archived="all")[0] == {"Ava", "Bea Lux"}
    assert gallery_names(client, brand, archived="only")[0] == {"Bea Lux"}
    assert gallery_names(client, brand, archived="only", q="ava")[0] == set()


def test_it_answers_the_gallery_search_for_htmx_with_the_same_page(client, member, brand, persona, bea):
    login(client, member)
    response = client.get(url("brand-dashboard", brand), {"q": "bea"}, HTTP_HX_REQUEST="true")
    page = response.content.decode()
    assert response.status_code == 200 and 'id="persona-gallery"' in page and 'hx-select="#persona-gallery"' in page
