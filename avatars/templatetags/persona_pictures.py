"""Human labels for technical names in templates (avatars.pictures)."""

from django import template

from avatars import pictures

register = template.Library()


@register.filter
def direction_label(direction):
    return pictures.direction_label(direction)


@register.filter
def group_label(name):
    return pictures.group_label(name)


@register.filter
def strip_strengths(direction):
    return pictures.strip_strengths(direction)


@register.filter
def strength_step(direction):
    """A slider step: about 40 stops across the direction's range."""
    return f"{(direction.strength_max - direction.strength_min) / 40:.4g}"


@register.filter
def licence_line(model):
    """The short licence line of GeneratorModel.choice_label, without the model's name."""
    label = model.choice_label
    prefix = f"{model.name} ("
    return label[len(prefix) : -1] if label.startswith(prefix) and label.endswith(")") else label
