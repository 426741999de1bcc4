"""Seed lists (teaching a direction) take ASCII digits only: str.isdigit()
also accepts "³" and "①", which int() refuses (a 500), and "٣", which int()
reads as 3."""

import pytest
from django.urls import reverse

from generation.forms import DirectionTeachForm
from generation.seeds import SEED_MAX


def seed_errors(positive):
    form = DirectionTeachForm(data={"positive_seeds": positive, "negative_seeds": "1"})
    form.is_valid()
    return form.errors.get("positive_seeds", []), form.cleaned_data.get("positive_seeds")


@pytest.mark.parametrize(
    "text, entry",
    [
        ("3, ³", "'³'"),  # superscript three
        ("①", "'①'"),  # circled one
        ("٣", "'٣'"),  # Arabic-Indic three
        ("12, 4٣", "'4٣'"),
        ("-3", "'-3'"),
        ("+3", "'+3'"),
        ("3.0", "'3.0'"),
        ("1 2", "'1 2'"),
        ("3-7", "'3-7'"),
        (str(SEED_MAX + 1), repr(str(SEED_MAX + 1))),
        ("9" * 900, "'99999999999999999999…'"),  # far longer than any seed
    ],
    ids=["superscript", "circled", "arabic-indic", "arabic-indic-inside", "negative", "plus", "decimal", "space",
         "range", "too-big", "thousands-of-digits"],
)
def test_it_refuses_a_seed_list_entry_that_is_not_an_ascii_whole_number(db, text, entry):
    errors, seeds = seed_errors(text)
    assert errors == [f"{entry} is not a seed (a whole number from 0 to {SEED_MAX})."]
    assert seeds is None


def test_it_reads_ascii_seed_lists(db):
    errors, seeds = seed_errors(f" 0, 7,42 ,, 007, {SEED_MAX}")
    assert errors == [] and seeds == [0, 7, 42, 7, SEED_MAX]


def test_it_answers_a_form_error_not_a_server_error_for_a_superscript_seed(client, owner, brand, generator_model):
    client.force_login(owner)
    response = client.post(
        reverse("direction-teach", args=[brand.slug]),
        {"model": generator_model.pk, "name": "smiling", "layer_group": "coarse",
         "positive_seeds": "1, ³", "negative_seeds": "①"},
    )  # fmt: skip
    assert response.status_code == 200
    assert "&#x27;³&#x27; is not a seed" in response.content.decode()
    assert "&#x27;①&#x27; is not a seed" in response.content.decode()


def test_it_refuses_an_oversized_seed_list_before_reading_it(db):
    errors, seeds = seed_errors("9" * 5000)
    assert errors == ["Ensure this value has at most 1000 characters (it has 5000)."] and seeds is None
