from django import forms
from django.contrib.auth.forms import UserCreationForm

from brands.models import Role


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
