"""Form fields for choosing generator models, classes and seeds, and the form
that teaches a brand's own direction."""

from django import forms

from .models import GeneratorModel
from .seeds import SEED_MAX


class ModelChoiceField(forms.ModelChoiceField):
    # The licence note is shown wherever a model is chosen.
    def label_from_instance(self, obj):
        return obj.choice_label


def _all_models_conditional():
    return GeneratorModel.objects.exists() and not GeneratorModel.objects.filter(class_names=[]).exists()


def _class_choices():
    """Each conditional model's class labels by name, grouped by model, after
    "none" unless every registered model is conditional (each would refuse it)."""
    groups = [
        (model.name, [(index, f"{index}: {name}") for index, name in enumerate(model.class_names)])
        for model in GeneratorModel.objects.exclude(class_names=[]).order_by("name")
    ]
    return groups if _all_models_conditional() else [("", "none (unconditional models)"), *groups]


def _class_initial():
    # The first class rather than "none", which would make the first submit fail.
    return 0 if _all_models_conditional() else None


def class_field():
    return forms.TypedChoiceField(
        choices=_class_choices,
        initial=_class_initial,
        coerce=int,
        empty_value=None,
        required=False,
        label="Class label",
        help_text="Conditional models only, e.g. outfit family/gesture for the bundled model.",
    )


def comma_list(text):
    return [part.strip() for part in text.split(",") if part.strip()]


def seed_list(text):
    """Comma-separated seeds: ASCII digits only (str.isdigit() alone also takes
    "³", "①" or "٣", which int() then refuses or reads as another digit)."""
    seeds = []
    for item in comma_list(text):
        # 20 digits at most: int() refuses thousands of them with a ValueError.
        if not (item.isascii() and item.isdigit() and len(item) <= 20) or int(item) > SEED_MAX:
            shown = item if len(item) <= 24 else item[:20] + "…"
            raise forms.ValidationError(f"{shown!r} is not a seed (a whole number from 0 to {SEED_MAX}).")
        seeds.append(int(item))
    return seeds


class DirectionTeachForm(forms.Form):
    model = ModelChoiceField(queryset=GeneratorModel.objects.all(), empty_label=None)
    name = forms.SlugField(max_length=80, help_text="e.g. smiling")
    layer_group = forms.CharField(max_length=40, help_text="The group it acts on, e.g. coarse or middle.")
    # A labelled seed is about 11 characters: 64 of them, with room to spare.
    positive_seeds = forms.CharField(
        max_length=1000, help_text="Seeds whose personas show the trait, comma-separated (see the candidate grid)."
    )
    negative_seeds = forms.CharField(max_length=1000, help_text="Seeds whose personas do not.")
    class_index = class_field()

    def clean_positive_seeds(self):
        return seed_list(self.cleaned_data["positive_seeds"])

    def clean_negative_seeds(self):
        return seed_list(self.cleaned_data["negative_seeds"])
