"""Output formats, derivatives, AI-content disclosure and the DRAFT mark for rendered images.

Pure functions over image bytes (Pillow); no Django, no settings, no storage.

Formats
-------
``FORMATS`` maps a campaign format to its publishable size, 1080 px wide::

    "1:1"  -> 1080 x 1080        "4:5"  -> 1080 x 1350        "9:16" -> 1080 x 1920

``format_render(png_bytes, fmt)`` turns a square generator output ("master") into one of them:

1. **Resampling.** The master is scaled to fit the format's width (a square master becomes
   exactly 1080 x 1080; a non-square one is scaled to fit inside the box) with Pillow's
   ``LANCZOS`` filter, for every model, the 64 px line-art default included. For photographic
   256-1024 px masters LANCZOS is the usual choice (sharpest of Pillow's filters without
   visible ringing at these factors). For the 64 px line-art busts (x16.875) we rendered
   NEAREST, LANCZOS, BICUBIC and "NEAREST to 1024, then LANCZOS" and looked at them at full
   size and scaled down: NEAREST (with or without an integer pre-step) turns the 1-2 px
   ink strokes into a staircase mosaic of uneven 16/17 px blocks and makes the face read
   as pixel art; LANCZOS gives continuous, slightly soft strokes that read as an ink
   drawing, eyes and mouth stay recognisable, and its overshoot clips at the black ink /
   white paper extremes, so no halo shows. The softness is the honest cost of a 64 px
   model; nothing we do here invents detail.
2. **Padding.** The scaled master is centred on a canvas of the format's size filled with
   the *background colour*: the per-channel median of the master's border ring (the
   outermost ``max(1, side // 64)`` pixels: 1 px at 64, 16 px at 1024). Line-art on white
   paper gets white bars, a dark render dark bars, so the seam between picture and bar
   mostly disappears; a median ignores the odd stroke or speck that touches the edge.
   Nothing is stretched and nothing is cropped: 4:5 adds 135 px above and below, 9:16
   420 px, and the centre 1080 x 1080 of every format is the 1:1 output pixel for pixel.
   What we saw: on the bundled model's renders the bars are indistinguishable from the
   paper (border median about (253, 252, 253)); where a render has specks or a dark stroke
   on its very edge, a faint line shows where picture meets bar. That is the model's own
   edge noise; we do not feather it away, which would change the master's pixels. Centred,
   not bottom-anchored: a bust cut off by the master's bottom edge then ends above a bar,
   but the face stays in the middle, clear of the UI that stories overlay top and bottom.

Masters in another mode than RGB (L, P, RGBA) are converted with ``convert("RGB")``; the
generators render opaque RGB.

Derivatives
-----------
``derivatives(image_bytes)`` returns ``{"web": ..., "thumbnail": ...}`` for any image,
normally a format render (clean, or draft-marked for previews; the caller decides):

- ``web``: JPEG, 1080 px wide (aspect kept, LANCZOS), quality 85, progressive, optimised,
  4:2:0 chroma (grey line-art has no chroma to lose; at 1:1 we saw no ringing round the ink).
- ``thumbnail``: WebP, 256 px wide (aspect kept, LANCZOS), lossy quality 80: a few KB, which
  a campaign board of hundreds of images needs; every current browser shows WebP.

Disclosure
----------
``disclosure_embed(image_bytes, *, fmt, generator, persona, brand, draft=True)`` writes an
XMP packet with IPTC ``Iptc4xmpExt:DigitalSourceType`` = ``trainedAlgorithmicMedia``,
``dc:creator`` (the generator), ``dc:description`` (persona, brand, generator, format, draft),
``xmp:CreatorTool`` and our own ``ps:`` fields (Generator, Persona, Brand, Format, Draft) into
a PNG (an uncompressed ``iTXt`` chunk, keyword ``XML:com.adobe.xmp``, right after ``IHDR``), a
JPEG (an ``APP1`` segment with the ``http://ns.adobe.com/xap/1.0/`` header, after ``APP0``/Exif)
or a WebP (an ``XMP `` chunk, the ``VP8X`` header added or flagged). It splices the packet
into the file's container instead of re-saving through Pillow (whose ``xmp=`` parameter,
present in the installed 12.x for JPEG and WebP, would re-encode a JPEG or lossy WebP and lose
quality again): the pixel data stays byte for byte the same. An existing XMP packet is
replaced, never duplicated. ``disclosure_read(image_bytes)`` parses it back into a dict
(Pillow reads the raw packet; we parse the XML with ``xml.etree`` because ``Image.getxmp()``
needs defusedxml, which is not installed; a packet with a DTD is refused).

Functions that re-encode the same picture carry the disclosure along: ``derivatives`` and
``draft_mark`` copy the input's XMP packet into their outputs, and ``format_render`` re-embeds
our disclosure with ``ps:Format`` set to the new format (a foreign packet is copied as is).

DRAFT mark
----------
``draft_mark(image_bytes)`` returns a PNG with "DRAFT · AI-generated" drawn along the
bottom-left to top-right diagonal, sized to span about 90% of it, in DejaVu Sans Bold (Pillow's
own default font when DejaVu is missing): white letters with a dark outline at ~70% opacity,
legible on white line-art and on dark renders alike, across the picture so that it cannot be
cropped away without losing the face. Pixels outside the letters are unchanged. We looked at
it on 1080 x 1350 white and dark renders and on 256 px ones: legible on all of them.

Released files
--------------
An approved asset is published without the mark: ``released_renditions(master_bytes, ...)``
takes the stored master (never marked; only its derivatives are) and makes the same three
files as ``asset_renditions`` through the same code (``_renditions``), with the DRAFT layer
left out and the disclosure's ``ps:Draft`` False ("approved for publication" in
``dc:description``). The master's pixels are decoded and re-encoded losslessly, so they are
those of the draft master exactly; the web JPEG and thumbnail are those of a plain resize.

Cost (bench/formats.py): PNG encoding dominates; zlib level 6 (Pillow's default, kept for the
stored files) takes about 0.12 s for a 1080 x 1350 picture on one CPU core, level 1 a third of
that for files about 30% larger.
"""

from __future__ import annotations

import functools
import io
import math
import re
import struct
import zlib
from xml.etree import ElementTree

from PIL import Image, ImageDraw, ImageFont, ImageStat, PngImagePlugin, UnidentifiedImageError

PUBLISH_WIDTH = 1080
FORMATS: dict[str, tuple[int, int]] = {
    "1:1": (1080, 1080),
    "4:5": (1080, 1350),
    "9:16": (1080, 1920),
}
RESAMPLING = Image.Resampling.LANCZOS

WEB_WIDTH = 1080
WEB_QUALITY = 85
THUMBNAIL_WIDTH = 256
THUMBNAIL_QUALITY = 80
THUMBNAIL_REDUCING_GAP = 2.0
# zlib level of stored masters: level 1 writes a 1080 x 1920 master several times faster
# than Pillow's default 6, for files about a fifth larger (measured in bench/formats.py).
MASTER_PNG_COMPRESSION = 1

TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
# IPTC digital source types that mean "made by a trained model", in whole or in part.
AI_SOURCE_TYPES = frozenset(
    {
        TRAINED_ALGORITHMIC_MEDIA,
        "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia",
    }
)
# The disclosure may describe a format or the square master itself.
DISCLOSURE_FORMATS = (*FORMATS, "master")

DRAFT_TEXT = "DRAFT · AI-generated"
DRAFT_OPACITY = 0.7
# Looked up by name in the system's font folders first, then by Debian's path.
FONT_CANDIDATES = ("DejaVuSans-Bold.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")

NS = {
    "x": "adobe:ns:meta/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "dc": "http://purl.org/dc/elements/1.1/",
    "xmp": "http://ns.adobe.com/xap/1.0/",
    "Iptc4xmpExt": "http://iptc.org/std/Iptc4xmpExt/2008-02-29/",
    # Our own fields. An identifier, not a URL anyone fetches; changing it orphans the
    # fields of every file already written.
    "ps": "urn:persona-studio:xmp:1.0#",
}
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_XMP_KEYWORD = b"XML:com.adobe.xmp"
JPEG_XMP_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"
JPEG_MAX_SEGMENT = 0xFFFF - 2  # payload bytes after the length field
WEBP_XMP_FLAG = 0x04
WEBP_ALPHA_FLAG = 0x10

# Characters XML 1.0 cannot carry at all.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


# --------------------------------------------------------------------------- formats


def format_render(png_bytes: bytes, fmt: str) -> bytes:
    """The master scaled (LANCZOS) to the format's width and padded to its aspect ratio
    with the master's border colour, as PNG. Raises ValueError for an unknown format."""
    size = _format_size(fmt)
    master = _open_rgb(png_bytes)
    out = _encode(_fit_and_pad(master, size), "PNG")
    return _carry_disclosure(png_bytes, out, fmt=fmt)


def background_colour(image: Image.Image) -> tuple[int, int, int]:
    """The per-channel median of the image's border ring (``max(1, side // 64)`` px wide)."""
    image = image.convert("RGB")
    width, height = image.size
    ring = max(1, min(width, height) // 64)
    mask = Image.new("L", image.size, 255)
    if width > 2 * ring and height > 2 * ring:
        mask.paste(0, (ring, ring, width - ring, height - ring))
    return tuple(int(value) for value in ImageStat.Stat(image, mask).median)


def _format_size(fmt: str) -> tuple[int, int]:
    try:
        return FORMATS[fmt]
    except (KeyError, TypeError):
        allowed = ", ".join(FORMATS)
        raise ValueError(f"unknown output format {fmt!r}; allowed: {allowed}") from None


def _fit_and_pad(master: Image.Image, size: tuple[int, int]) -> Image.Image:
    width, height = size
    scale = min(width / master.width, height / master.height)
    scaled_size = (max(1, round(master.width * scale)), max(1, round(master.height * scale)))
    scaled = master if scaled_size == master.size else master.resize(scaled_size, RESAMPLING)
    if scaled.size == size:
        return scaled
    canvas = Image.new("RGB", size, background_colour(master))
    canvas.paste(scaled, ((width - scaled.width) // 2, (height - scaled.height) // 2))
    return canvas


# --------------------------------------------------------------------------- derivatives


def derivatives(image_bytes: bytes) -> dict[str, bytes]:
    """``{"web": JPEG 1080 px wide, "thumbnail": WebP 256 px wide}``, aspect kept, the
    input's XMP disclosure copied into both."""
    image = _open_rgb(image_bytes)
    web = _encode(
        _to_width(image, WEB_WIDTH), "JPEG", quality=WEB_QUALITY, optimize=True, progressive=True, subsampling="4:2:0"
    )
    thumbnail = _encode(_to_width(image, THUMBNAIL_WIDTH), "WEBP", quality=THUMBNAIL_QUALITY, method=4)
    return {
        "web": _carry_disclosure(image_bytes, web),
        "thumbnail": _carry_disclosure(image_bytes, thumbnail),
    }


def _to_width(image: Image.Image, width: int) -> Image.Image:
    if image.width == width:
        return image
    height = max(1, round(image.height * width / image.width))
    # Shrinking (1080 -> 256 px thumbnails) first reduces by a whole factor, then
    # resamples with LANCZOS: 2.4 times faster here, and the thumbnails looked the same.
    return image.resize((width, height), RESAMPLING, reducing_gap=THUMBNAIL_REDUCING_GAP)


# --------------------------------------------------------------------------- asset renditions


def asset_renditions(
    png_bytes: bytes, *, fmt: str | None, generator: str, persona: str, brand: str
) -> dict[str, bytes]:
    """Every file of a stored asset from one generator output, decoding it once:
    ``master`` (PNG: the format render, or the output itself when ``fmt`` is None,
    with the disclosure), ``web`` and ``thumbnail`` (the master with the DRAFT mark,
    as ``derivatives`` makes them, with the disclosure). The same pixels as
    ``format_render`` → ``disclosure_embed`` → ``draft_mark`` → ``derivatives``,
    without their PNG round trips; the master is compressed at MASTER_PNG_COMPRESSION."""
    source = _open_rgb(png_bytes)
    master_image = _fit_and_pad(source, _format_size(fmt)) if fmt else source
    disclosure = dict(fmt=fmt or "master", generator=generator, persona=persona, brand=brand)
    return _renditions(master_image, disclosure=disclosure, draft=True)


def released_renditions(
    master_bytes: bytes, *, fmt: str | None, generator: str, persona: str, brand: str
) -> dict[str, bytes]:
    """The files of an approved asset from its stored (draft) master: ``master`` (PNG,
    the same pixels, its disclosure saying ``ps:Draft`` False and "approved for
    publication"), ``web`` and ``thumbnail`` made as ``asset_renditions`` makes them,
    without the DRAFT mark. Whatever else the stored file carried (its C2PA manifest
    store above all) is left behind: the released master is encoded afresh from its
    pixels, so the caller signs it with a new manifest that names the draft as parent."""
    disclosure = dict(fmt=fmt or "master", generator=generator, persona=persona, brand=brand)
    return _renditions(_open_rgb(master_bytes), disclosure=disclosure, draft=False)


def _renditions(master_image: Image.Image, *, disclosure: dict, draft: bool) -> dict[str, bytes]:
    """master PNG, web JPEG and thumbnail WebP of one picture, each with the disclosure;
    with ``draft`` the derivatives carry the DRAFT mark (the master never does: it is
    marked when served, content.views)."""
    # Plain PNG text too, for tools that read no XMP.
    text = PngImagePlugin.PngInfo()
    for key, value in (("AI-Generated", "true"), ("Software", "Persona Studio"), ("Model", disclosure["generator"])):
        text.add_text(key, value)
    master_png = _encode(master_image, "PNG", compress_level=MASTER_PNG_COMPRESSION, pnginfo=text)
    master = disclosure_embed(master_png, draft=draft, **disclosure)
    shown = master_image
    if draft:
        shown = Image.alpha_composite(master_image.convert("RGBA"), _draft_layer(master_image.size)).convert("RGB")
    web = _encode(
        _to_width(shown, WEB_WIDTH), "JPEG", quality=WEB_QUALITY, optimize=True, progressive=True, subsampling="4:2:0"
    )
    thumbnail = _encode(_to_width(shown, THUMBNAIL_WIDTH), "WEBP", quality=THUMBNAIL_QUALITY, method=4)
    return {
        "master": master,
        "web": disclosure_embed(web, draft=draft, **disclosure),
        "thumbnail": disclosure_embed(thumbnail, draft=draft, **disclosure),
    }


# --------------------------------------------------------------------------- DRAFT mark


def draft_mark(image_bytes: bytes) -> bytes:
    """The image with "DRAFT · AI-generated" drawn across its diagonal, as PNG, same size;
    the input's XMP disclosure is kept."""
    image = _open_rgb(image_bytes)
    layer = _draft_layer(image.size)
    marked = Image.alpha_composite(image.convert("RGBA"), layer).convert("RGB")
    return _carry_disclosure(image_bytes, _encode(marked, "PNG"))


def draft_layer(size: tuple[int, int]) -> Image.Image:
    """The transparent RGBA layer that ``draft_mark`` composites over an image of ``size``;
    its non-zero alpha is exactly where the mark may change pixels."""
    return _draft_layer(tuple(size)).copy()


@functools.lru_cache(maxsize=16)
def _draft_layer(size: tuple[int, int]) -> Image.Image:
    """Cached per size (a campaign marks thousands of images of three sizes); read only."""
    width, height = size
    angle = math.atan2(height, width)
    cos, sin = math.cos(angle), math.sin(angle)
    # Text size grows linearly with the font size: measure once, then pick the size whose
    # rotated bounding box spans 90% of the picture in its tighter dimension.
    reference = 100
    text_width, text_height = _text_image(reference).size
    fit = min(
        0.9 * width / (text_width * cos + text_height * sin),
        0.9 * height / (text_width * sin + text_height * cos),
    )
    text = _text_image(max(6, int(reference * fit)))
    rotated = text.rotate(math.degrees(angle), resample=Image.Resampling.BICUBIC, expand=True)
    if rotated.width > width or rotated.height > height:  # only on tiny images, at the minimum font size
        left, top = max(0, (rotated.width - width) // 2), max(0, (rotated.height - height) // 2)
        rotated = rotated.crop((left, top, left + min(width, rotated.width), top + min(height, rotated.height)))
    layer = Image.new("RGBA", size, (0, 0, 0, 0))
    layer.alpha_composite(rotated, ((width - rotated.width) // 2, (height - rotated.height) // 2))
    return layer


def _text_image(size: int) -> Image.Image:
    """The mark's text, unrotated, on a transparent RGBA image just large enough."""
    font = _font(size)
    if isinstance(font, ImageFont.FreeTypeFont):
        return _draw_text(font, stroke=max(1, size // 14))
    # Pillow without FreeType: its fixed ~11 px bitmap font, on a dark box, scaled up.
    small = _draw_text(font, stroke=0)
    factor = max(1, round(size / 11))
    return small.resize((small.width * factor, small.height * factor), Image.Resampling.NEAREST)


def _draw_text(font, *, stroke: int) -> Image.Image:
    left, top, right, bottom = ImageDraw.Draw(Image.new("L", (1, 1))).textbbox(
        (0, 0), DRAFT_TEXT, font=font, stroke_width=stroke
    )
    pad = stroke + 2
    alpha = round(255 * DRAFT_OPACITY)
    dark = (20, 20, 20, alpha)
    text = Image.new("RGBA", (right - left + 2 * pad, bottom - top + 2 * pad), dark if stroke == 0 else (0, 0, 0, 0))
    options = {"stroke_width": stroke, "stroke_fill": dark} if stroke else {}
    ImageDraw.Draw(text).text((pad - left, pad - top), DRAFT_TEXT, font=font, fill=(255, 255, 255, alpha), **options)
    return text


@functools.lru_cache(maxsize=32)
def _font(size: int):
    """DejaVu Sans Bold from the system's font folders, else Pillow's bundled default
    (scalable from Pillow 10.1 on), else its old bitmap font."""
    for name in FONT_CANDIDATES:
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ImportError, OSError):
        return ImageFont.load_default()


# --------------------------------------------------------------------------- disclosure


def disclosure_embed(
    image_bytes: bytes, *, fmt: str, generator: str, persona: str, brand: str, draft: bool = True
) -> bytes:
    """``image_bytes`` (PNG, JPEG or WebP) with our XMP disclosure spliced in, replacing
    any XMP packet it had; pixel data untouched."""
    if fmt not in DISCLOSURE_FORMATS:
        raise ValueError(f"unknown format {fmt!r} for a disclosure; allowed: {', '.join(DISCLOSURE_FORMATS)}")
    fields = {"generator": generator, "persona": persona, "brand": brand}
    for name, value in fields.items():
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"disclosure needs a non-empty {name}")
        if _XML_INVALID.search(value):
            raise ValueError(f"disclosure {name} holds characters XML cannot carry: {value!r}")
    return xmp_splice(image_bytes, _xmp_packet(fmt=fmt, draft=bool(draft), **fields))


def disclosure_read(image_bytes: bytes) -> dict:
    """The disclosure in an image's XMP packet. Always the same keys; a file without XMP
    reads ``ai_generated: False`` and ``None`` elsewhere."""
    packet = xmp_packet_read(image_bytes)
    result = {
        "ai_generated": False,
        "digital_source_type": None,
        "creator": None,
        "description": None,
        "creator_tool": None,
        "generator": None,
        "persona": None,
        "brand": None,
        "format": None,
        "draft": None,
    }
    if packet is None:
        return result
    if b"<!DOCTYPE" in packet or b"<!ENTITY" in packet:
        raise ValueError("XMP packet with a DTD refused")
    try:
        root = ElementTree.fromstring(packet)
    except ElementTree.ParseError as error:
        raise ValueError(f"XMP packet is not well-formed XML: {error}") from None

    def prop(prefix, name):
        for description in root.iter(_q("rdf", "Description")):
            if (value := description.get(_q(prefix, name))) is not None:
                return value
            if (element := description.find(_q(prefix, name))) is not None:
                return element
        return None

    source_type = prop("Iptc4xmpExt", "DigitalSourceType")
    result["digital_source_type"] = _text(source_type)
    result["ai_generated"] = result["digital_source_type"] in AI_SOURCE_TYPES
    creator = prop("dc", "creator")
    if isinstance(creator, str):
        result["creator"] = [creator]
    elif creator is not None:
        result["creator"] = [li.text or "" for li in creator.iter(_q("rdf", "li"))] or [_text(creator)]
    description = prop("dc", "description")
    if isinstance(description, str) or description is None:
        result["description"] = description
    else:
        items = list(description.iter(_q("rdf", "li")))
        default = [li for li in items if li.get(XML_LANG) == "x-default"]
        result["description"] = (default or items)[0].text if items else _text(description)
    result["creator_tool"] = _text(prop("xmp", "CreatorTool"))
    for key, name in (("generator", "Generator"), ("persona", "Persona"), ("brand", "Brand"), ("format", "Format")):
        result[key] = _text(prop("ps", name))
    draft = _text(prop("ps", "Draft"))
    result["draft"] = None if draft is None else draft.strip().lower() == "true"
    return result


def _q(prefix: str, name: str) -> str:
    return f"{{{NS[prefix]}}}{name}"


def _text(value) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return (value.text or "").strip()


def _xmp_packet(*, fmt: str, generator: str, persona: str, brand: str, draft: bool) -> bytes:
    state = "draft, not approved for publication" if draft else "approved for publication"
    description = (
        f"AI-generated image of the virtual persona {persona} (brand {brand}), "
        f"rendered by the generator {generator}; format {fmt}; {state}."
    )
    e = _xml_escape
    namespaces = " ".join(f'xmlns:{prefix}="{uri}"' for prefix, uri in NS.items() if prefix not in ("x", "rdf"))
    xml = f"""<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="{NS["x"]}">
 <rdf:RDF xmlns:rdf="{NS["rdf"]}">
  <rdf:Description rdf:about="" {namespaces}>
   <Iptc4xmpExt:DigitalSourceType>{TRAINED_ALGORITHMIC_MEDIA}</Iptc4xmpExt:DigitalSourceType>
   <dc:creator><rdf:Seq><rdf:li>{e(generator)}</rdf:li></rdf:Seq></dc:creator>
   <dc:description><rdf:Alt><rdf:li xml:lang="x-default">{e(description)}</rdf:li></rdf:Alt></dc:description>
   <xmp:CreatorTool>Persona Studio ({e(generator)})</xmp:CreatorTool>
   <ps:Generator>{e(generator)}</ps:Generator>
   <ps:Persona>{e(persona)}</ps:Persona>
   <ps:Brand>{e(brand)}</ps:Brand>
   <ps:Format>{e(fmt)}</ps:Format>
   <ps:Draft>{"True" if draft else "False"}</ps:Draft>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="r"?>"""
    return xml.encode("utf-8")


def _xml_escape(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _carry_disclosure(source: bytes, out: bytes, *, fmt: str | None = None) -> bytes:
    """Copy ``source``'s XMP packet into ``out``; with ``fmt``, our own disclosure is
    rewritten for that format instead (a foreign packet is still copied as is)."""
    packet = xmp_packet_read(source)
    if packet is None:
        return out
    if fmt is not None:
        found = disclosure_read(source)
        if all(found[key] for key in ("generator", "persona", "brand")):
            return disclosure_embed(
                out,
                fmt=fmt,
                generator=found["generator"],
                persona=found["persona"],
                brand=found["brand"],
                draft=found["draft"] is not False,
            )
    return xmp_splice(out, packet)


# --------------------------------------------------------------------------- containers


def container(image_bytes: bytes) -> str:
    """ "PNG", "JPEG" or "WEBP", from the file's signature; ValueError otherwise."""
    if image_bytes.startswith(PNG_SIGNATURE):
        return "PNG"
    if image_bytes.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if len(image_bytes) >= 12 and image_bytes[:4] == b"RIFF" and image_bytes[8:12] == b"WEBP":
        return "WEBP"
    raise ValueError("not a PNG, JPEG or WebP file")


def xmp_packet_read(image_bytes: bytes) -> bytes | None:
    """The raw XMP packet Pillow finds in the file, or None."""
    container(image_bytes)
    with _open(image_bytes) as image:
        packet = image.info.get("xmp")
    if isinstance(packet, str):
        packet = packet.encode("utf-8")
    return packet or None


def xmp_splice(image_bytes: bytes, packet: bytes) -> bytes:
    """``image_bytes`` with ``packet`` as its only XMP packet, the rest of the file kept."""
    kind = container(image_bytes)
    if kind == "PNG":
        return _png_splice(image_bytes, packet)
    if kind == "JPEG":
        return _jpeg_splice(image_bytes, packet)
    return _webp_splice(image_bytes, packet)


def _png_splice(data: bytes, packet: bytes) -> bytes:
    chunks = []
    position = len(PNG_SIGNATURE)
    while position < len(data):
        if position + 12 > len(data):
            raise ValueError("malformed PNG: truncated chunk")
        (length,) = struct.unpack(">I", data[position : position + 4])
        end = position + 12 + length
        if end > len(data):
            raise ValueError("malformed PNG: truncated chunk")
        kind = data[position + 4 : position + 8]
        body = data[position + 8 : position + 8 + length]
        chunk = data[position:end]
        if not (kind == b"iTXt" and body.split(b"\x00", 1)[0] == PNG_XMP_KEYWORD):
            chunks.append((kind, chunk))
        position = end
        if kind == b"IEND":
            break
    if not chunks or chunks[0][0] != b"IHDR" or chunks[-1][0] != b"IEND":
        raise ValueError("malformed PNG: no IHDR first or no IEND")
    # keyword, NUL, compression flag 0, method 0, empty language tag NUL, empty translated keyword NUL, text
    body = PNG_XMP_KEYWORD + b"\x00\x00\x00\x00\x00" + packet
    itxt = struct.pack(">I", len(body)) + b"iTXt" + body + struct.pack(">I", zlib.crc32(b"iTXt" + body))
    return PNG_SIGNATURE + chunks[0][1] + itxt + b"".join(chunk for _, chunk in chunks[1:])


def _jpeg_splice(data: bytes, packet: bytes) -> bytes:
    payload = JPEG_XMP_HEADER + packet
    if len(payload) > JPEG_MAX_SEGMENT:
        raise ValueError(f"XMP packet of {len(packet)} bytes does not fit one JPEG APP1 segment")
    segments = []  # header segments between SOI and SOS, each (marker, bytes)
    position = 2
    while True:
        while data[position : position + 2] == b"\xff\xff":
            position += 1  # fill bytes
        if position + 4 > len(data) or data[position] != 0xFF:
            raise ValueError("malformed JPEG: no start of scan")
        marker = data[position + 1]
        if marker == 0xDA:  # start of scan: the rest is copied verbatim
            break
        (length,) = struct.unpack(">H", data[position + 2 : position + 4])
        end = position + 2 + length
        if length < 2 or end > len(data):
            raise ValueError("malformed JPEG: truncated segment")
        segment = data[position:end]
        if not (marker == 0xE1 and segment[4:].startswith(JPEG_XMP_HEADER)):
            segments.append((marker, segment))
        position = end
    insert_at = 0  # after JFIF (APP0) and Exif (APP1), which readers expect first
    while insert_at < len(segments) and (
        segments[insert_at][0] == 0xE0
        or segments[insert_at][1][:2] + segments[insert_at][1][4:10] == b"\xff\xe1Exif\x00\x00"
    ):
        insert_at += 1
    app1 = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    head = [segment for _, segment in segments]
    head.insert(insert_at, app1)
    return data[:2] + b"".join(head) + data[position:]


def _webp_splice(data: bytes, packet: bytes) -> bytes:
    chunks = []
    position = 12
    end_of_riff = min(len(data), 8 + struct.unpack("<I", data[4:8])[0])
    while position + 8 <= end_of_riff:
        kind = data[position : position + 4]
        (length,) = struct.unpack("<I", data[position + 4 : position + 8])
        body = data[position + 8 : position + 8 + length]
        if len(body) != length:
            raise ValueError("malformed WebP: truncated chunk")
        if kind != b"XMP ":
            chunks.append([kind, body])
        position += 8 + length + (length & 1)
    if not chunks:
        raise ValueError("malformed WebP: no chunks")
    if chunks[0][0] == b"VP8X":
        header = bytearray(chunks[0][1])
        header[0] |= WEBP_XMP_FLAG
        chunks[0][1] = bytes(header)
    else:
        width, height, alpha = _webp_simple_size(*chunks[0])
        flags = WEBP_XMP_FLAG | (WEBP_ALPHA_FLAG if alpha else 0)
        vp8x = bytes([flags, 0, 0, 0]) + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
        chunks.insert(0, [b"VP8X", vp8x])
    chunks.append([b"XMP ", packet])
    body = b"".join(
        kind + struct.pack("<I", len(chunk)) + chunk + (b"\x00" if len(chunk) & 1 else b"") for kind, chunk in chunks
    )
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WEBP" + body


def _webp_simple_size(kind: bytes, body: bytes) -> tuple[int, int, bool]:
    if kind == b"VP8L" and len(body) >= 5 and body[0] == 0x2F:
        (bits,) = struct.unpack("<I", body[1:5])
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, bool((bits >> 28) & 1)
    if kind == b"VP8 " and len(body) >= 10 and body[3:6] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", body[6:10])
        return width & 0x3FFF, height & 0x3FFF, False
    raise ValueError("malformed WebP: no VP8, VP8L or VP8X header")


# --------------------------------------------------------------------------- helpers


def _open(data: bytes) -> Image.Image:
    try:
        return Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise ValueError("not an image Pillow can read") from None


def _open_rgb(data: bytes) -> Image.Image:
    with _open(data) as image:
        image.load()
        return image if image.mode == "RGB" else image.convert("RGB")


def _encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()
