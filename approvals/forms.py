"""Forms of the workflow settings page. They only gather input: which steps and
groups are acceptable is the services' call (workflow_update, reviewer_group_save),
whose ValidationErrors the views show on these forms."""

from django import forms

from brands.models import Role

from .models import StepMode
from .services import DECIDING_ROLES, WORKFLOW_STEPS_MAX

STEP_FIELDS = ("name", "roles", "group", "mode")


class WorkflowForm(forms.Form):
    """WORKFLOW_STEPS_MAX rows of step-<n>-name/-roles/-group/-mode; rows left
    blank are dropped, so an owner shortens the workflow by clearing rows."""

    def __init__(self, *args, groups, steps=(), **kwargs):
        initial = kwargs.setdefault("initial", {})
        group_ids = {group.pk for group in groups}
        for number, step in enumerate(steps, start=1):
            initial.update(
                {
                    f"step-{number}-name": step["name"],
                    f"step-{number}-roles": list(step["roles"]),
                    # A group removed since the revision was written is not offered again.
                    f"step-{number}-group": step.get("group") if step.get("group") in group_ids else None,
                    f"step-{number}-mode": step["mode"],
                }
            )
        super().__init__(*args, **kwargs)
        group_choices = [("", "No group")] + [(group.pk, group.name) for group in groups]
        for number in range(1, WORKFLOW_STEPS_MAX + 1):
            self.fields[f"step-{number}-name"] = forms.CharField(label=f"Step {number}", max_length=80, required=False)
            self.fields[f"step-{number}-roles"] = forms.MultipleChoiceField(
                label="Decided by members who are",
                choices=[(role, f"{Role(role).label}s") for role in DECIDING_ROLES],
                widget=forms.CheckboxSelectMultiple,
                required=False,
            )
            self.fields[f"step-{number}-group"] = forms.TypedChoiceField(
                label="or belong to the group",
                choices=group_choices,
                coerce=int,
                empty_value=None,
                required=False,
            )
            self.fields[f"step-{number}-mode"] = forms.ChoiceField(
                label="Who must approve",
                choices=StepMode.choices,
                widget=forms.RadioSelect,
                initial=StepMode.ANY,
                required=False,
            )

    @property
    def rows(self):
        """[(number, {field: bound field})] for the template, one per step row."""
        return [
            (number, {field: self[f"step-{number}-{field}"] for field in STEP_FIELDS})
            for number in range(1, WORKFLOW_STEPS_MAX + 1)
        ]

    def steps(self):
        """The filled rows in order, as workflow_update takes them (after is_valid())."""
        steps = []
        for number in range(1, WORKFLOW_STEPS_MAX + 1):
            row = {field: self.cleaned_data.get(f"step-{number}-{field}") for field in STEP_FIELDS}
            if not (row["name"] or "").strip() and not row["roles"] and row["group"] is None:
                continue
            steps.append({**row, "roles": row["roles"] or [], "mode": row["mode"] or StepMode.ANY})
        return steps


class ReviewerGroupForm(forms.Form):
    name = forms.CharField(max_length=80)
    members = forms.TypedMultipleChoiceField(
        coerce=int,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        error_messages={"invalid_choice": "Only members of this brand can be in its reviewer groups."},
    )

    def __init__(self, *args, members, group=None, **kwargs):
        if group is not None:
            kwargs.setdefault("initial", {}).update(
                {"name": group.name, "members": [user.pk for user in group.members.all()]}
            )
            # Each group's form has its own element ids; the field names stay plain.
            kwargs.setdefault("auto_id", f"id_group{group.pk}_%s")
        else:
            kwargs.setdefault("auto_id", "id_group_new_%s")
        super().__init__(*args, **kwargs)
        self.fields["members"].choices = [(user.pk, user.get_username()) for user in members]
