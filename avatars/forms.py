from django import forms

from brands.models import Role
from generation.models import GeneratorModel

from .models import LibraryItem
from .services import CANDIDATES_MAX, SEED_MAX, TRUNCATION_PSI_RANGE


class ModelChoiceField(forms.ModelChoiceField):
    # The licence note is shown wherever a model is chosen.
    def label_from_instance(self, obj):
        return obj.choice_label


def _truncation_field(**kwargs):
    return forms.FloatField(
        min_value=TRUNCATION_PSI_RANGE[0],
        max_value=TRUNCATION_PSI_RANGE[1],
        initial=0.7,
        help_text="Lower is closer to the average face; 1 is untruncated.",
        **kwargs,
    )


def _class_choices():
    """Each conditional model's class labels by name, grouped by model."""
    groups = [
        (model.name, [(index, f"{index}: {name}") for index, name in enumerate(model.class_names)])
        for model in GeneratorModel.objects.exclude(class_names=[]).order_by("name")
    ]
    return [("", "none (unconditional models)"), *groups]


def _class_field():
    return forms.TypedChoiceField(
        choices=_class_choices,
        coerce=int,
        empty_value=None,
        required=False,
        label="Class label",
        help_text="Conditional models only, e.g. outfit family/gesture for the bundled model.",
    )


def _comma_list(text):
    return [part.strip() for part in text.split(",") if part.strip()]


class PersonaFromSeedForm(forms.Form):
    name = forms.CharField(max_length=120)
    handle = forms.SlugField(max_length=60, help_text="Unique within the brand, e.g. ava-lux.")
    bio = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    model = ModelChoiceField(queryset=GeneratorModel.objects.all(), empty_label=None)
    seed = forms.IntegerField(min_value=0, max_value=SEED_MAX, initial=42)
    truncation_psi = _truncation_field()
    class_index = _class_field()


class CandidateGridForm(forms.Form):
    model = ModelChoiceField(queryset=GeneratorModel.objects.all(), empty_label=None)
    first_seed = forms.IntegerField(min_value=0, max_value=SEED_MAX, initial=0)
    count = forms.IntegerField(min_value=1, max_value=CANDIDATES_MAX, initial=12)
    truncation_psi = _truncation_field()
    class_index = _class_field()


class PersonaBreedForm(forms.Form):
    base = forms.ModelChoiceField(queryset=None, empty_label=None, help_text="Keeps every other layer group.")
    donor = forms.ModelChoiceField(queryset=None, empty_label=None)
    layer_groups = forms.CharField(help_text="Taken from the donor, comma-separated, e.g. fine.")
    name = forms.CharField(max_length=120)
    handle = forms.SlugField(max_length=60)

    def __init__(self, *args, personas, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["base"].queryset = self.fields["donor"].queryset = personas

    def clean_layer_groups(self):
        return _comma_list(self.cleaned_data["layer_groups"])


class VersionPreconditionForm(forms.Form):
    """A change to a persona carries the version it was made against: if the
    persona has moved on meanwhile, the change is refused as a conflict."""

    expected_version = forms.IntegerField(widget=forms.HiddenInput, required=False)


class PersonaEditForm(VersionPreconditionForm):
    direction = forms.ModelChoiceField(queryset=None, empty_label=None)
    strength = forms.FloatField()

    def __init__(self, *args, directions, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["direction"].queryset = directions
        self.fields["direction"].label_from_instance = lambda d: (
            f"{d.name} ({d.get_kind_display()}; strength {d.strength_min:.2f} to {d.strength_max:.2f})"
        )


class LibraryApplyForm(VersionPreconditionForm):
    item = forms.ModelChoiceField(queryset=None, empty_label=None, label="Look or pose")

    def __init__(self, *args, items, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["item"].queryset = items


class LibraryItemForm(forms.Form):
    kind = forms.ChoiceField(choices=LibraryItem.Kind.choices)
    name = forms.CharField(max_length=120)
    model = ModelChoiceField(queryset=GeneratorModel.objects.all(), empty_label=None)
    layer_group = forms.CharField(max_length=40, help_text="The group it changes, e.g. fine (looks) or coarse (poses).")
    seed = forms.IntegerField(min_value=0, max_value=SEED_MAX, required=False, help_text="Source: a seed …")
    truncation_psi = _truncation_field(required=False)
    class_index = _class_field()
    source_version = forms.ModelChoiceField(queryset=None, required=False, help_text="… or one of your persona versions …")
    direction = forms.ModelChoiceField(queryset=None, required=False, help_text="… or a direction, with a strength.")
    strength = forms.FloatField(required=False)

    def __init__(self, *args, versions, directions, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["source_version"].queryset = versions
        self.fields["direction"].queryset = directions
        self.fields["source_version"].label_from_instance = lambda v: f"@{v.persona.handle} v{v.number} ({v.operation})"

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("truncation_psi") is None:
            cleaned["truncation_psi"] = 0.7
        return cleaned


class LayerGroupPermissionForm(forms.Form):
    role = forms.ChoiceField(choices=[(r.value, r.label) for r in Role if r != Role.OWNER])
    layer_groups = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="The layer groups this role may change; none ticked: no limit.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Only the names of the registered models' layer groups can be chosen.
        names = sorted({group["name"] for model in GeneratorModel.objects.all() for group in model.layer_groups})
        self.fields["layer_groups"].choices = [(name, name) for name in names]

    def clean_layer_groups(self):
        return self.cleaned_data["layer_groups"] or None


def _seed_list(text):
    """Comma-separated seeds: ASCII digits only (str.isdigit() alone also takes
    "³", "①" or "٣", which int() then refuses or reads as another digit)."""
    seeds = []
    for item in _comma_list(text):
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
    positive_seeds = forms.CharField(help_text="Seeds whose personas show the trait, comma-separated (see the candidate grid).")
    negative_seeds = forms.CharField(help_text="Seeds whose personas do not.")
    class_index = _class_field()

    def clean_positive_seeds(self):
        return _seed_list(self.cleaned_data["positive_seeds"])

    def clean_negative_seeds(self):
        return _seed_list(self.cleaned_data["negative_seeds"])
