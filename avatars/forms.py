from django import forms

from generation.models import GeneratorModel

from .services import SEED_MAX, TRUNCATION_PSI_RANGE


class PersonaFromSeedForm(forms.Form):
    name = forms.CharField(max_length=120)
    handle = forms.SlugField(max_length=60, help_text="Unique within the brand, e.g. ava-lux.")
    model = forms.ModelChoiceField(queryset=GeneratorModel.objects.all(), empty_label=None)
    seed = forms.IntegerField(min_value=0, max_value=SEED_MAX, initial=42)
    truncation_psi = forms.FloatField(
        min_value=TRUNCATION_PSI_RANGE[0],
        max_value=TRUNCATION_PSI_RANGE[1],
        initial=0.7,
        help_text="Lower is closer to the average face; 1 is untruncated.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The licence note is shown wherever a model is chosen.
        self.fields["model"].label_from_instance = lambda m: f"{m.name} ({m.licence_note})"
