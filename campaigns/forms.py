import uuid

from django import forms

from content.formats import FORMATS

from .services import MAX_VARIANTS

FORMAT_LABELS = {
    "1:1": "Square 1:1 (1080 × 1080)",
    "4:5": "Portrait 4:5 (1080 × 1350)",
    "9:16": "Story 9:16 (1080 × 1920)",
}


class CampaignForm(forms.Form):
    name = forms.CharField(max_length=120)
    brief = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    versions = forms.ModelMultipleChoiceField(
        queryset=None, widget=forms.CheckboxSelectMultiple, label="Personas",
        help_text="Each persona's current version is pinned: later edits do not change this campaign.",
    )  # fmt: skip
    looks = forms.ModelMultipleChoiceField(
        queryset=None,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="Outfits from the looks and poses library. None ticked: each persona in its own.",
    )
    poses = forms.ModelMultipleChoiceField(
        queryset=None,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="Gestures from the library. None ticked: each persona's own.",
    )
    formats = forms.MultipleChoiceField(
        choices=[(fmt, FORMAT_LABELS.get(fmt, fmt)) for fmt in FORMATS], widget=forms.CheckboxSelectMultiple,
        initial=["1:1"],
    )  # fmt: skip
    variants = forms.IntegerField(
        min_value=1, max_value=MAX_VARIANTS, initial=1,
        help_text="Renders of each combination with different fine noise (texture and strands, not the person).",
    )  # fmt: skip
    # Made when the form is shown: submitting the same form twice makes one campaign.
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=120)

    def __init__(self, *args, versions, looks, poses, **kwargs):
        kwargs.setdefault("initial", {}).setdefault("idempotency_key", uuid.uuid4().hex)
        super().__init__(*args, **kwargs)
        self.fields["versions"].queryset = versions
        self.fields["versions"].label_from_instance = lambda v: f"{v.persona.name} (@{v.persona.handle}, v{v.number})"
        self.fields["looks"].queryset = looks
        self.fields["poses"].queryset = poses
        for field in ("looks", "poses"):
            self.fields[field].label_from_instance = lambda item: f"{item.name} ({item.acts_on})"
