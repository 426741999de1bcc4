"""A channel's disclosure policy, checked on what would leave: the caption and
the bytes of the file itself (never what the database says about them)."""

from content.c2pa import brand_trust_anchor, c2pa_read
from content.formats import AI_SOURCE_TYPES, disclosure_read

# c2pa's verdicts on an untouched manifest: signed by the brand's key ("Trusted"
# with the brand's root as anchor; "Valid" when no anchor is known yet).
C2PA_ACCEPTED = frozenset({"Trusted", "Valid"})


def caption_problems(*, channel, caption):
    """Labels the channel requires that the caption lacks, in words (empty: fine)."""
    text = (caption or "").casefold()
    missing = [label for label in channel.caption_labels if label.casefold() not in text]
    if not missing:
        return []
    quoted = ", ".join(f"“{label}”" for label in missing)
    return [f"{channel.name} requires the caption to carry {quoted}."]


def file_problems(*, channel, brand, media, mime):
    """What the file lacks for the channel, in words (empty: fine)."""
    problems = []
    if channel.require_digital_source_type:
        try:
            found = disclosure_read(media)
        except ValueError as exc:
            found = {"digital_source_type": None, "draft": None}
            problems.append(f"The file's XMP metadata cannot be read ({exc}).")
        if found["digital_source_type"] not in AI_SOURCE_TYPES:
            problems.append(
                f"{channel.name} requires the IPTC DigitalSourceType “trainedAlgorithmicMedia” in the file; "
                f"it says {found['digital_source_type'] or 'nothing'}."
            )
        if found.get("draft"):
            problems.append("The file is still the draft (marked DRAFT); it has not been released.")
    if channel.require_c2pa:
        try:
            store = c2pa_read(media, mime=mime, trust_anchors=brand_trust_anchor(brand=brand))
        except Exception as exc:  # noqa: BLE001 - c2pa raises its own errors for broken stores
            store, reason = None, f"its C2PA manifest cannot be read ({type(exc).__name__})"
        else:
            reason = "it has no C2PA manifest"
        if store is not None and store.get("validation_state") not in C2PA_ACCEPTED:
            reason = f"its C2PA manifest does not validate ({store.get('validation_state')})"
            store = None
        if store is None:
            problems.append(f"{channel.name} requires a valid C2PA manifest in the file; {reason}.")
    return problems
