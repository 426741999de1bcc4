from django import forms

from brands.models import Role
from generation.forms import ModelChoiceField, class_field
from generation.models import GeneratorModel
from generation.seeds import SEED_MAX, TRUNCATION_PSI_RANGE

from .models import LibraryItem, humanise
from .pictures import direction_label
from .services import CANDIDATES_MAX


def _truncation_field(**kwargs):
    return forms.FloatField(
        min_value=TRUNCATION_PSI_RANGE[0],
        max_value=TRUNCATION_PSI_RANGE[1],
        initial=0.7,
        help_text="Lower is closer to the average face; 1 is untruncated.",
        **kwargs,
    )


class PersonaFromSeedForm(forms.Form):
    name = forms.CharField(max_length=120)
    handle = forms.SlugField(max_length=60, help_text="Unique within the brand, e.g. ava-lux.")
    bio = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    model = ModelChoiceField(queryset=GeneratorModel.objects.all(), empty_label=None)
    seed = forms.IntegerField(min_value=0, max_value=SEED_MAX, initial=42)
    truncation_psi = _truncation_field()
    class_index = class_field()


class CandidateGridForm(forms.Form):
    model = ModelChoiceField(queryset=GeneratorModel.objects.all(), empty_label=None)
    first_seed = forms.IntegerField(min_value=0, max_value=SEED_MAX, initial=0)
    count = forms.IntegerField(min_value=1, max_value=CANDIDATES_MAX, initial=12)
    truncation_psi = _truncation_field()
    class_index = class_field()


def layer_group_choices():
    """The names of the registered models' layer groups: the only ones that can be chosen."""
    names = sorted({group["name"] for model in GeneratorModel.objects.all() for group in model.layer_groups})
    return [(name, name) for name in names]


class PersonaBreedForm(forms.Form):
    base = forms.ModelChoiceField(queryset=None, empty_label=None, help_text="Keeps every other layer group.")
    donor = forms.ModelChoiceField(queryset=None, empty_label=None)
    layer_groups = forms.MultipleChoiceField(
        widget=forms.CheckboxSelectMultiple, help_text="The layer groups taken from the donor."
    )
    name = forms.CharField(max_length=120)
    handle = forms.SlugField(max_length=60)

    def __init__(self, *args, personas, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["base"].queryset = self.fields["donor"].queryset = personas
        self.fields["layer_groups"].choices = layer_group_choices()


class VersionPreconditionForm(forms.Form):
    """A change to a persona carries the version it was made against: if the
    persona has moved on meanwhile, the change is refused as a conflict."""

    expected_version = forms.IntegerField(widget=forms.HiddenInput)


class PersonaEditForm(VersionPreconditionForm):
    direction = forms.ModelChoiceField(queryset=None, empty_label=None)
    strength = forms.FloatField()

    def __init__(self, *args, directions, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["direction"].queryset = directions
        self.fields["direction"].label_from_instance = lambda d: (
            f"{direction_label(d)} (strength {d.strength_min:.2f} to {d.strength_max:.2f})"
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
    value = forms.ChoiceField(
        required=False,
        label="Outfit or gesture",
        help_text="On a model drawn from outfit and gesture labels (the bundled default), a look is an outfit and "
        "a pose a gesture: the persona keeps its face. Other models: a layer group and a source below.",
    )
    layer_group = forms.ChoiceField(
        required=False, help_text="The group it changes, e.g. fine (looks) or coarse (poses)."
    )
    seed = forms.IntegerField(min_value=0, max_value=SEED_MAX, required=False, help_text="Source: a seed …")
    truncation_psi = _truncation_field(required=False)
    class_index = class_field()
    source_version = forms.ModelChoiceField(
        queryset=None, required=False, help_text="… or one of your persona versions …"
    )
    direction = forms.ModelChoiceField(queryset=None, required=False, help_text="… or a direction, with a strength.")
    strength = forms.FloatField(required=False)

    def __init__(self, *args, versions, directions, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["source_version"].queryset = versions
        self.fields["direction"].queryset = directions
        self.fields["source_version"].label_from_instance = lambda v: f"@{v.persona.handle} v{v.number} ({v.operation})"
        labels = {}
        for model in GeneratorModel.objects.all():
            for attribute in ("outfit", "gesture"):
                for value in model.attribute_values(attribute):
                    labels[value] = f"{attribute}: {humanise(value)}"
        self.fields["value"].choices = [("", "—"), *sorted(labels.items(), key=lambda pair: pair[1])]
        self.fields["layer_group"].choices = [("", "—"), *layer_group_choices()]

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("truncation_psi") is None:
            cleaned["truncation_psi"] = 0.7
        cleaned["value"] = cleaned.get("value") or None
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
        self.fields["layer_groups"].choices = layer_group_choices()

    def clean_layer_groups(self):
        return self.cleaned_data["layer_groups"] or None


class PersonaRenameForm(forms.Form):
    name = forms.CharField(
        max_length=120,
        label="Name",
        help_text="The @handle stays: images and captions name it.",
        error_messages={"required": "A persona needs a name."},
    )


class PersonaDeleteForm(forms.Form):
    confirm = forms.CharField(max_length=61, label="Type the persona's handle to confirm", help_text="e.g. @ava or ava")

    def __init__(self, *args, handle, **kwargs):
        super().__init__(*args, **kwargs)
        self.handle = handle
        self.fields["confirm"].help_text = f"Type @{handle}: deleting cannot be undone."

    def clean_confirm(self):
        typed = self.cleaned_data["confirm"].strip().removeprefix("@")
        if typed != self.handle:
            raise forms.ValidationError(f"Type @{self.handle} to delete this persona.")
        return typed


class PersonaSearchForm(forms.Form):
    q = forms.CharField(required=False, max_length=120, label="Search by name or handle")
    archived = forms.ChoiceField(
        required=False,
        label="Show",
        choices=[("", "Active personas"), ("all", "Active and archived"), ("only", "Archived only")],
    )
