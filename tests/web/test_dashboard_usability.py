"""Pages a marketer can read: sensible class defaults, plain-language version
descriptions, and a short licence line with the full note one click away."""

import pytest
from django.core.management import call_command
from django.urls import reverse

from avatars.forms import CandidateGridForm, PersonaFromSeedForm
from avatars.models import Persona, PersonaVersion
from avatars.services import (
    library_item_create,
    persona_breed,
    persona_create_from_seed,
    persona_edit,
    persona_library_apply,
    persona_rollback,
)
from generation.forms import DirectionTeachForm
from generation.management.commands.load_default_model import LICENCE_NOTE
from generation.models import GeneratorModel
from generation.services.directions import directions_compute
from tests.web.test_pages import login


@pytest.fixture
def conditional_model(db, settings, tmp_path):
    """The bundled notionists-64: conditional, 60 classes."""
    settings.MODELS_ROOT = tmp_path / "models"
    call_command("load_default_model")
    return GeneratorModel.objects.get(slug="notionists-64")


def class_options(form):
    return [value for value, _ in form.fields["class_index"].choices]


# --- the class label's default ---------------------------------------------------


def test_with_only_conditional_models_the_class_defaults_to_the_first_and_none_is_gone(conditional_model):
    for form in (PersonaFromSeedForm(), CandidateGridForm(), DirectionTeachForm()):
        assert "" not in class_options(form)
        assert form["class_index"].value() == 0


def test_with_an_unconditional_model_registered_none_stays_the_default(conditional_model, generator_model):
    form = PersonaFromSeedForm()
    assert class_options(form)[0] == "" and form["class_index"].value() is None
    assert f'<optgroup label="{conditional_model.name}">' in str(form["class_index"])


def test_the_first_submit_of_the_create_form_with_its_defaults_creates_the_persona(
    client, member, brand, conditional_model
):
    login(client, member)
    url = reverse("persona-create", args=[brand.slug])
    page = client.get(url).content.decode()
    first_class = conditional_model.class_names[0]
    # The class is chosen with pictures, a real one preselected.
    assert '<input type="radio" name="class_index" value="0" checked>' in page
    assert page.count('name="class_index"') == conditional_model.c_dim
    assert "none (unconditional models)" not in page
    # What a browser sends when only the name and handle are filled in.
    form = PersonaFromSeedForm()
    defaults = {name: form[name].value() for name in ("seed", "truncation_psi", "class_index")}
    response = client.post(url, {"name": "Nova", "handle": "nova", "model": conditional_model.pk, **defaults})
    persona = Persona.objects.for_brand(brand).get(handle="nova")
    assert response.status_code == 302 and persona.current_version.params["class_index"] == 0
    detail = client.get(response.url).content.decode()
    assert f"Created from seed 42, ψ 0.7, class {first_class}" in detail


# --- version descriptions -----------------------------------------------------------


def test_the_persona_page_describes_each_version_in_plain_words(client, owner, brand, persona, generator_model):
    directions_compute(model_id=generator_model.pk)
    direction = generator_model.directions.model_wide().get(name="coarse-pca-0")
    look = library_item_create(
        actor=owner, brand=brand, model=generator_model, kind="look", name="Dark jacket", layer_group="fine", seed=5
    )
    pose = library_item_create(
        actor=owner, brand=brand, model=generator_model, kind="pose", name="Wave", layer_group="coarse", seed=6
    )
    persona_edit(actor=owner, brand=brand, persona=persona, direction=direction, strength=0.8)
    persona_library_apply(actor=owner, brand=brand, persona=persona, item=look)
    persona_library_apply(actor=owner, brand=brand, persona=persona, item=pose)
    first = PersonaVersion.objects.for_brand(brand).get(persona=persona, number=1)
    persona_rollback(actor=owner, brand=brand, persona=persona, version=first)
    login(client, owner)
    page = client.get(reverse("persona-detail", args=[brand.slug, persona.pk])).content.decode()
    for text in (
        "Created from seed 42, ψ 0.7",
        "Moved 0.8 along &#x27;coarse-pca-0&#x27; (coarse layers)",
        "Look &#x27;Dark jacket&#x27; on fine layers",
        "Pose &#x27;Wave&#x27; on coarse layers",
        "Rolled back to v1",
    ):
        assert text in page, text
    assert "{&#x27;" not in page and "truncation_psi" not in page


def test_a_bred_persona_says_whose_layers_it_took(owner, brand, persona, generator_model):
    donor = persona_create_from_seed(
        actor=owner, brand=brand, model=generator_model, seed=9, name="Bo", handle="bo", truncation_psi=0.7
    )
    child = persona_breed(
        actor=owner, brand=brand, base=persona, donor=donor, layer_groups=["middle", "fine"], name="Cy", handle="cy"
    )
    assert child.current_version.description == "Bred from @ava v1 with the middle and fine layers of @bo v1"


@pytest.mark.parametrize(
    ("operation", "params", "expected"),
    [
        ("seed", {"seed": 7, "truncation_psi": 1.0}, "Created from seed 7, ψ 1"),
        ("edit", {"direction": "smiling", "layer_group": "coarse", "strength": -1.5},
         "Moved -1.5 along 'smiling' (coarse layers)"),
        ("rollback", {"to_version": 2, "to_sha256": "ab"}, "Rolled back to v2"),
        # Params without the keys this version of the code records fall back to the operation.
        ("edit", {}, "Edited along a direction"),
        ("look", {"name": "Gala"}, "Look applied"),
        ("mix", {"base": "ava"}, "Bred from two personas"),
    ],
)  # fmt: skip
def test_a_version_description_from_its_params(operation, params, expected):
    assert PersonaVersion(operation=operation, params=params).description == expected


# --- licence line -------------------------------------------------------------------


def test_a_models_choice_label_carries_a_short_licence_line():
    def label(note):
        return GeneratorModel(name="M", licence_note=note).choice_label

    assert label("Random weights placeholder for tests") == "M (Random weights placeholder for tests)"
    assert label("CC BY 4.0. Attribution required.") == "M (CC BY 4.0)"
    short = label(LICENCE_NOTE)
    assert short == "M (Ours: trained by Persona Studio on its own renders of…)"
    assert len(short.removeprefix("M (").removesuffix(")")) <= 61


def test_model_dropdowns_show_the_short_line_and_the_persona_page_the_whole_note(
    client, member, brand, conditional_model
):
    login(client, member)
    create = client.get(reverse("persona-create", args=[brand.slug])).content.decode()
    options = create[
        create.index('<select name="model"') : create.index("</select>", create.index('<select name="model"'))
    ]
    assert conditional_model.choice_label in options and "usable commercially" not in options
    # The whole note is one click away: inside a closed <details>.
    licence = create[create.index('<details class="licence">') : create.index("</details>")]
    assert "(art by Zoish, CC0 1.0); usable commercially." in licence
    persona = persona_create_from_seed(
        actor=member, brand=brand, model=conditional_model, seed=1, name="Nia", handle="nia", class_index=3
    )
    detail = client.get(reverse("persona-detail", args=[brand.slug, persona.pk])).content.decode()
    assert f'<details class="licence"><summary>Model {conditional_model.name}: Ours: trained by' in detail
    assert "(art by Zoish, CC0 1.0); usable commercially." in detail
