from django import forms
from django.contrib.auth.forms import UserCreationForm

from brands.models import API_SCOPE_LABELS, Role
from brands.services import API_TOKEN_LIFETIME, API_TOKEN_LIFETIME_MAX


class InvitationForm(forms.Form):
    email = forms.EmailField(help_text="The link in the email works once, for 7 days.")
    role = forms.ChoiceField(choices=Role.choices, initial=Role.REVIEWER)


class MembershipRoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class RemovalForm(forms.Form):
    """No fields: carries the service's refusal back to the member's row."""


class InvitationSignupForm(UserCreationForm):
    """A new account for an invitee; its email is the invited address."""

    def __init__(self, *args, email, **kwargs):
        super().__init__(*args, **kwargs)
        self.instance.email = email


class ApiTokenForm(forms.Form):
    name = forms.CharField(max_length=120, help_text="What will use it, e.g. “Agency CI” or “Scheduling tool”.")
    scopes = forms.MultipleChoiceField(
        choices=[(scope, f"{label} ({scope})") for scope, label in API_SCOPE_LABELS.items()],
        widget=forms.CheckboxSelectMultiple,
        help_text="Grant only what the tool needs; it never does more than your own role allows.",
    )
    expires_in_days = forms.IntegerField(
        label="Expires in (days)",
        min_value=1,
        max_value=API_TOKEN_LIFETIME_MAX.days,
        initial=API_TOKEN_LIFETIME.days,
        help_text=f"At most {API_TOKEN_LIFETIME_MAX.days} days; make a new token before it expires.",
    )


class IdentityThresholdForm(forms.Form):
    identity_threshold = forms.FloatField(
        min_value=0,
        max_value=1,
        label="Identity flag threshold",
        widget=forms.NumberInput(attrs={"step": "0.01"}),
        help_text="Images whose identity score is below this are flagged on boards, asset pages and the approval "
        "queue (0 to 1; higher is stricter).",
    )
