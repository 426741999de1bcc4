"""Layer groups: named, inclusive ranges of W+ rows of one generator model.

StyleGAN2's W+ rows drive the synthesis layers from 4×4 upwards, so a range of
rows controls a band of detail: coarse rows (4²–8²) pose and face shape, middle
rows (16²–32²) facial features, fine rows (64² and up) colour and texture. A
model's groups are stored as [{"name": ..., "start": ..., "end": ...}] and may be
renamed per model (pose / identity / outfit / colour); one of them is the
identity group, which looks and poses never touch.
"""

import re

import numpy as np
from django.core.exceptions import ValidationError

GROUP_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")
# Rows 0-3 and 4-7 are the 4²–8² and 16²–32² layers at any resolution; models
# too small for three such bands get three near-equal bands instead.
CONVENTIONAL_BANDS = (("coarse", 0, 3), ("middle", 4, 7))
DEFAULT_IDENTITY_GROUP = "middle"


def layer_groups_default(num_ws):
    """coarse / middle / fine for a model with `num_ws` rows of W+."""
    if num_ws >= 9:
        bands = [*CONVENTIONAL_BANDS, ("fine", 8, num_ws - 1)]
    else:
        parts = np.array_split(np.arange(num_ws), 3)
        named = zip(("coarse", "middle", "fine"), parts, strict=True)
        bands = [(name, int(p[0]), int(p[-1])) for name, p in named if len(p)]
    return [{"name": name, "start": start, "end": end} for name, start, end in bands]


def layer_groups_validate(groups, *, num_ws, identity_group):
    """Refuse groups that are malformed, outside 0..num_ws-1, overlapping or
    ambiguously named, and an identity group that is not one of them."""
    if not isinstance(groups, list) or not groups:
        raise ValidationError({"layer_groups": "Layer groups must be a non-empty list of {name, start, end}."})
    seen_names, taken_rows = set(), {}
    for group in groups:
        if not isinstance(group, dict) or set(group) != {"name", "start", "end"}:
            raise ValidationError(
                {"layer_groups": f"Each layer group needs exactly name, start and end; got {group!r}."}
            )
        name, start, end = group["name"], group["start"], group["end"]
        if not isinstance(name, str) or not GROUP_NAME.match(name):
            raise ValidationError(
                {"layer_groups": f"Layer group name {name!r} must be lower-case letters, digits, - or _."}
            )
        if name in seen_names:
            raise ValidationError({"layer_groups": f"Layer group names must be unique; {name!r} appears twice."})
        seen_names.add(name)
        if not (isinstance(start, int) and isinstance(end, int) and 0 <= start <= end <= num_ws - 1):
            raise ValidationError(
                {
                    "layer_groups": f"Layer group {name!r} must span rows within 0..{num_ws - 1} (start ≤ end); "
                    f"got {start!r}..{end!r}."
                }
            )
        for row in range(start, end + 1):
            if row in taken_rows:
                raise ValidationError(
                    {"layer_groups": f"Layer groups {taken_rows[row]!r} and {name!r} overlap at W+ row {row}."}
                )
            taken_rows[row] = name
    if identity_group not in seen_names:
        raise ValidationError(
            {
                "identity_group": f"The identity group {identity_group!r} is not one of the layer groups "
                f"({', '.join(sorted(seen_names))})."
            }
        )


def layer_group_rows(groups, name):
    """The W+ rows of the group called `name`; ValidationError if there is none."""
    for group in groups:
        if group["name"] == name:
            return list(range(group["start"], group["end"] + 1))
    known = ", ".join(g["name"] for g in groups)
    raise ValidationError({"layer_group": f"Unknown layer group {name!r}; this model has: {known}."})


def layer_groups_touched(groups, rows):
    """Names of the groups that contain any of `rows`; rows outside every group
    are reported as "ungrouped"."""
    names = []
    for row in sorted(set(rows)):
        name = next((g["name"] for g in groups if g["start"] <= row <= g["end"]), "ungrouped")
        if name not in names:
            names.append(name)
    return names
