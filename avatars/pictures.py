"""Pictures and human labels the persona pages show: a version's face, a look
or pose tried on the current face, a strip of what a direction does, a class's
picture on the new-persona page. Each is rendered at once by the services'
previews (nothing is written) and kept in the cache, keyed by what it shows
(immutable versions, item and direction ids, the model's weights' sha256).
Permission checks are the services' own."""

import io
import re

import numpy as np
from django.core.cache import cache
from PIL import Image

from .models import humanise
from .services import persona_candidates_render, persona_edit_preview, persona_library_preview

# A day: a key names what the picture shows, so it never goes stale.
PICTURE_SECONDS = 24 * 3600

# What a model's layer groups change, in words (generation.layer_groups: coarse rows
# drive pose and face shape, middle rows the features, fine rows colour and texture).
GROUP_MEANINGS = {
    "coarse": "pose and shape",
    "middle": "facial features",
    "fine": "colour and detail",
}


def group_label(name):
    """'coarse' -> 'pose and shape'; another model's own group names as they are."""
    return GROUP_MEANINGS.get(name, humanise(name))


def class_label(name):
    """'light_jacket/waveLongArm' -> 'light jacket, wave long arm'."""
    return ", ".join(humanise(part) for part in str(name).split("/"))


_COMPUTED = re.compile(r"^(?P<group>.+)-(?P<kind>sefa|pca)-(?P<index>\d+)$")


def direction_label(direction):
    """A direction's name in words: 'coarse-sefa-0' -> 'Pose and shape: variation 1',
    'fine-towards-dark_jacket/point' -> 'Towards dark jacket, point (colour and detail)',
    a brand's own 'smiling' -> 'Smiling (facial features)'."""
    name, group = direction.name, group_label(direction.layer_group)
    computed = _COMPUTED.match(name)
    if computed:
        what = "variation" if computed["kind"] == "sefa" else "common difference"
        return f"{group.capitalize()}: {what} {int(computed['index']) + 1}"
    prefix = f"{direction.layer_group}-towards-"
    if name.startswith(prefix):
        return f"Towards {class_label(name.removeprefix(prefix))} ({group})"
    return f"{humanise(name.replace('-', ' ')).capitalize()} ({group})"


def strip_strengths(direction, count=5):
    """Strengths a direction's strip shows: its range's ends, 0 (the face as it is) between."""
    low, high = direction.strength_min, direction.strength_max
    half = count // 2
    below = [low * (half - i) / half for i in range(half)]
    above = [high * (i + 1) / half for i in range(half)]
    return [round(s, 3) for s in [*below, 0.0, *above] if direction.strength_min <= s <= direction.strength_max]


def _cached(key, make):
    picture = cache.get(key)
    if picture is None:
        picture = make()
        cache.set(key, picture, PICTURE_SECONDS)
    return picture


def version_picture(*, version):
    """PNG of a persona version's face (the model's constant noise): the same
    thumbnail the candidate grid and previews show."""
    from generation.rendering import latents_thumbnails

    model = version.persona.model

    def make():
        [png] = latents_thumbnails(model=model, latents=version.latent_array()[None])
        return png

    return _cached(f"pictures:version:{model.sha256}:{version.sha256}", make)


def library_item_picture(*, actor, brand, persona, item):
    """PNG of `persona`'s current face with the look or pose `item` applied
    (persona_library_preview; its refusal, a ValidationError, is raised)."""
    version = persona.current_version
    # A version (its latent and the class it stands under) never changes: its id names both.
    key = f"pictures:item:{persona.model.sha256}:{version.pk}:{version.sha256}:{item.pk}"
    return _cached(key, lambda: persona_library_preview(actor=actor, brand=brand, persona=persona, item=item)[1])


def direction_strip(*, actor, brand, persona, direction):
    """(strengths, PNG): `persona`'s current face moved along `direction` at each
    of strip_strengths, side by side, left to right (persona_edit_preview)."""
    strengths = strip_strengths(direction)
    version = persona.current_version
    key = f"pictures:strip:{persona.model.sha256}:{version.sha256}:{direction.pk}:{strengths}"

    def make():
        faces = []
        for strength in strengths:
            before, after = persona_edit_preview(
                actor=actor, brand=brand, persona=persona, direction=direction, strength=strength
            )
            faces.append(before if strength == 0 else after)
        images = [np.asarray(Image.open(io.BytesIO(png)).convert("RGB")) for png in faces]
        buffer = io.BytesIO()
        Image.fromarray(np.concatenate(images, axis=1)).save(buffer, format="PNG")
        return buffer.getvalue()

    return strengths, _cached(key, make)


def class_picture(*, actor, brand, model, seed, truncation_psi, class_index):
    """PNG of `seed` drawn in class `class_index` of a conditional model (or
    unconditionally, class None): a tile of the new-persona page's class chooser."""
    key = f"pictures:class:{model.sha256}:{seed}:{truncation_psi}:{class_index}"

    def make():
        [(_seed, png)] = persona_candidates_render(
            actor=actor, brand=brand, model=model, first_seed=seed, count=1,
            truncation_psi=truncation_psi, class_index=class_index,
        )  # fmt: skip
        return png

    return _cached(key, make)


def class_table(model):
    """The new-persona page's class chooser for a conditional model: rows of
    (outfit label, [(class index, gesture label)]) when the model records each
    class's outfit and gesture, else one row of every class."""
    attributes = model.class_attributes
    if attributes and len(attributes) == len(model.class_names) and all("outfit" in a for a in attributes):
        rows = {}
        for index, attribute in enumerate(attributes):
            rows.setdefault(attribute["outfit"], []).append((index, humanise(attribute.get("gesture", ""))))
        return [(humanise(outfit), cells) for outfit, cells in rows.items()]
    return [("", [(index, class_label(name)) for index, name in enumerate(model.class_names)])]
