"""Caption templates of schedules: str.format placeholders from a fixed list,
checked when the schedule is saved and filled in when a run's images finish."""

import re
import string

PLACEHOLDERS = ("persona", "handle", "look", "pose", "format", "date")
CAPTION_MAX = 2200  # Instagram's limit, the tightest of the usual networks
TEMPLATES_MAX = 20

_formatter = string.Formatter()


def template_check(template):
    """The template, or ValueError naming what is wrong: an unknown placeholder,
    an attribute or index in one, a conversion or format spec, unbalanced braces."""
    if not isinstance(template, str) or not template.strip():
        raise ValueError("A caption template cannot be empty.")
    if len(template) > CAPTION_MAX:
        raise ValueError(f"A caption template has at most {CAPTION_MAX} characters.")
    try:
        parsed = list(_formatter.parse(template))
    except ValueError as exc:
        raise ValueError(f"{template!r}: {exc} (write {{{{ and }}}} for literal braces).") from None
    for _literal, field, spec, conversion in parsed:
        if field is None:
            continue
        if field not in PLACEHOLDERS:
            known = ", ".join("{" + name + "}" for name in PLACEHOLDERS)
            raise ValueError(f"Unknown placeholder {{{field}}} in {template!r}; the placeholders are {known}.")
        if spec or conversion:
            raise ValueError(f"Placeholder {{{field}}} takes no conversion or format in {template!r}.")
    return template.strip()


def caption_render(template, **values):
    """The caption for one image; every placeholder has a value (empty when unknown)."""
    filled = {name: str(values.get(name) or "") for name in PLACEHOLDERS}
    # An empty placeholder leaves no double space behind.
    return re.sub(r"[ \t]{2,}", " ", template.format(**filled)).strip()[:CAPTION_MAX]
