from django import forms

from . import EVENTS

EVENT_CHOICES = [(name, name) for name in EVENTS]


class EndpointForm(forms.Form):
    url = forms.CharField(label="URL", max_length=2000, widget=forms.URLInput(attrs={"size": 60}))
    description = forms.CharField(max_length=200, required=False)
    events = forms.MultipleChoiceField(choices=EVENT_CHOICES, widget=forms.CheckboxSelectMultiple)


class EndpointEditForm(EndpointForm):
    enabled = forms.BooleanField(required=False, help_text="Enabling again starts its failure count afresh.")


class RotateForm(forms.Form):
    overlap_hours = forms.IntegerField(
        label="Old secret stays valid for (hours)",
        min_value=0,
        max_value=168,
        initial=24,
        help_text="Both secrets sign every message meanwhile, so your receiver can switch without losing any.",
    )
