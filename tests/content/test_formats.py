"""content/formats.py: campaign output formats from a square master, the web derivative
and thumbnail, XMP disclosure in PNG / JPEG / WebP, and the visible DRAFT mark."""

import io

import pytest
from PIL import Image, ImageChops, ImageDraw, ImageFont

from content import formats
from content.formats import (
    FORMATS,
    TRAINED_ALGORITHMIC_MEDIA,
    asset_renditions,
    derivatives,
    disclosure_embed,
    disclosure_read,
    draft_layer,
    draft_mark,
    format_render,
)

DISCLOSURE = {"generator": "notionists-64", "persona": "Ava <Stone> & co", "brand": "Acme"}


def encode(image, fmt="PNG", **options):
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def decode(data):
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def master(size=64, paper=(255, 255, 255), ink=(0, 0, 0), specks=True):
    """A line-art bust stand-in: a head and shoulders in `ink` on `paper`, with a few
    ink specks on the border (the median must ignore them)."""
    image = Image.new("RGB", (size, size), paper)
    draw = ImageDraw.Draw(image)
    s = size / 64
    draw.ellipse((22 * s, 10 * s, 42 * s, 34 * s), outline=ink, width=max(1, round(2 * s)))
    draw.arc((8 * s, 36 * s, 56 * s, 90 * s), 180, 360, fill=ink, width=max(1, round(2 * s)))
    draw.point((20 * s, 28 * s), fill=(128, 30, 200))
    if specks:
        for x in (3, 17, 40):
            draw.point((x * s, 0), fill=ink)
            draw.point((size - 1, x * s), fill=ink)
    return image


@pytest.mark.parametrize("size", [64, 256])
@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_it_renders_each_format_at_its_exact_publishable_size(fmt, size):
    out = decode(format_render(encode(master(size)), fmt))
    assert out.format == "PNG" and out.mode == "RGB"
    assert out.size == FORMATS[fmt]
    assert out.width == 1080


def test_it_knows_the_three_campaign_formats():
    assert FORMATS == {"1:1": (1080, 1080), "4:5": (1080, 1350), "9:16": (1080, 1920)}


def test_it_keeps_the_master_unstretched_and_uncropped_at_the_centre_of_every_format():
    png = encode(master())
    square = decode(format_render(png, "1:1"))
    assert square.tobytes() == master().resize((1080, 1080), Image.Resampling.LANCZOS).tobytes()
    for fmt in ("4:5", "9:16"):
        out = decode(format_render(png, fmt))
        top = (out.height - 1080) // 2
        assert out.crop((0, top, 1080, top + 1080)).tobytes() == square.tobytes(), fmt


@pytest.mark.parametrize(
    ("paper", "ink"),
    [((255, 255, 255), (0, 0, 0)), ((18, 20, 28), (240, 240, 240))],
    ids=["white-bordered", "dark-bordered"],
)
def test_it_pads_with_the_median_colour_of_the_masters_border(paper, ink):
    out = decode(format_render(encode(master(paper=paper, ink=ink)), "9:16"))
    bars = [out.crop((0, 0, 1080, 420)), out.crop((0, 1500, 1080, 1920))]
    for bar in bars:
        assert bar.getcolors() == [(1080 * 420, paper)]


def test_it_pads_a_1024_px_master_with_its_border_colour():
    out = decode(format_render(encode(master(1024, paper=(90, 60, 30), ink=(250, 240, 220))), "4:5"))
    assert out.size == (1080, 1350)
    assert out.getpixel((540, 10)) == (90, 60, 30) and out.getpixel((540, 1340)) == (90, 60, 30)


@pytest.mark.parametrize("fmt", ["3:2", "16:9", "", None, "1:1 "])
def test_it_refuses_an_unknown_format_naming_the_allowed_ones(fmt):
    with pytest.raises(ValueError, match=r"allowed: 1:1, 4:5, 9:16"):
        format_render(encode(master()), fmt)


def test_it_refuses_bytes_that_are_not_an_image():
    with pytest.raises(ValueError, match="not an image"):
        format_render(b"not a png", "1:1")


def test_it_makes_a_1080_px_web_jpeg_and_a_256_px_webp_thumbnail_keeping_the_aspect():
    made = derivatives(format_render(encode(master()), "4:5"))
    web, thumbnail = decode(made["web"]), decode(made["thumbnail"])
    assert (web.format, web.size) == ("JPEG", (1080, 1350))
    assert (thumbnail.format, thumbnail.size) == ("WEBP", (256, 320))
    assert len(made["thumbnail"]) < 30_000


@pytest.mark.parametrize(
    "make",
    [
        lambda image: encode(image),
        lambda image: encode(image, "JPEG", quality=85),
        lambda image: encode(image, "JPEG", quality=85, exif=Image.Exif()),
        lambda image: encode(image, "WEBP", quality=80),
        lambda image: encode(image.convert("RGBA"), "WEBP", lossless=True),
    ],
    ids=["png", "jpeg", "jpeg-with-exif", "webp-lossy", "webp-lossless-alpha"],
)
def test_it_round_trips_the_disclosure_without_touching_the_pixels(make):
    original = make(master(256))
    disclosed = disclosure_embed(original, fmt="4:5", **DISCLOSURE)

    found = disclosure_read(disclosed)
    assert found["ai_generated"] is True
    assert found["digital_source_type"] == TRAINED_ALGORITHMIC_MEDIA
    assert found["creator"] == ["notionists-64"]
    assert "Ava <Stone> & co" in found["description"] and "notionists-64" in found["description"]
    assert (found["generator"], found["persona"], found["brand"]) == ("notionists-64", "Ava <Stone> & co", "Acme")
    assert found["format"] == "4:5" and found["draft"] is True
    before, after = decode(original), decode(disclosed)
    assert (after.format, after.mode, after.size) == (before.format, before.mode, before.size)
    assert after.tobytes() == before.tobytes()


def test_it_replaces_the_disclosure_instead_of_adding_a_second_one():
    once = disclosure_embed(encode(master(), "JPEG"), fmt="1:1", **DISCLOSURE)
    twice = disclosure_embed(once, fmt="1:1", **{**DISCLOSURE, "persona": "Bo"}, draft=False)
    assert twice.count(b"trainedAlgorithmicMedia") == 1
    found = disclosure_read(twice)
    assert (found["persona"], found["draft"]) == ("Bo", False)


def test_it_reads_no_disclosure_from_a_plain_file():
    found = disclosure_read(encode(master()))
    assert found["ai_generated"] is False
    assert found["digital_source_type"] is None and found["draft"] is None


@pytest.mark.parametrize(
    "changes",
    [{"fmt": "2:3"}, {"persona": ""}, {"brand": "   "}, {"generator": "bad\x00name"}],
)
def test_it_refuses_a_disclosure_it_cannot_write(changes):
    arguments = {"fmt": "1:1", **DISCLOSURE, **changes}
    with pytest.raises(ValueError):
        disclosure_embed(encode(master()), **arguments)


def test_it_carries_the_disclosure_into_formats_marks_and_derivatives():
    disclosed = disclosure_embed(encode(master()), fmt="master", **DISCLOSURE)
    story = format_render(disclosed, "9:16")
    assert disclosure_read(story)["format"] == "9:16"
    marked = draft_mark(story)
    made = derivatives(marked)
    for data in (marked, made["web"], made["thumbnail"]):
        found = disclosure_read(data)
        assert found["ai_generated"] and found["persona"] == DISCLOSURE["persona"] and found["format"] == "9:16"


@pytest.mark.parametrize("size", [(1080, 1350), (256, 256), (1080, 1920)])
@pytest.mark.parametrize("paper", [(255, 255, 255), (0, 0, 0)], ids=["white", "black"])
def test_it_changes_pixels_only_where_the_draft_mark_is_drawn(size, paper):
    image = Image.new("RGB", size, paper)
    marked = decode(draft_mark(encode(image)))
    assert marked.size == size and marked.format == "PNG"

    changed = ImageChops.difference(marked.convert("RGB"), image).convert("L").point(lambda v: 255 if v else 0)
    drawn = draft_layer(size).getchannel("A").point(lambda v: 255 if v else 0)
    assert ImageChops.subtract(changed, drawn).getbbox() is None, "a pixel changed outside the mark"
    share = changed.histogram()[255] / (size[0] * size[1])
    assert 0.02 < share < 0.35, share  # visibly drawn on white and on black, and not a blanket over the face
    width, height = size
    corners = [(0, 0, width // 5, height // 5), (width - width // 5, height - height // 5, width, height)]
    assert all(changed.crop(box).getbbox() is None for box in corners)


def test_it_draws_the_draft_mark_over_a_real_picture_and_keeps_its_size():
    picture = format_render(encode(master(paper=(40, 40, 40), ink=(220, 220, 220))), "4:5")
    marked = decode(draft_mark(picture))
    assert marked.size == (1080, 1350)
    assert marked.tobytes() != decode(picture).tobytes()


@pytest.fixture
def fonts_cleared():
    formats._font.cache_clear()
    formats._draft_layer.cache_clear()
    yield
    formats._font.cache_clear()
    formats._draft_layer.cache_clear()


def test_it_falls_back_to_pillows_default_font_without_dejavu(monkeypatch, fonts_cleared):
    monkeypatch.setattr(formats, "FONT_CANDIDATES", ("NoSuchFont-Bold.ttf",))
    assert_a_visible_mark(draft_layer((256, 256)))


def test_it_falls_back_to_pillows_bitmap_font_without_freetype(monkeypatch, fonts_cleared):
    bitmap = ImageFont.load_default_imagefont()
    monkeypatch.setattr(formats, "FONT_CANDIDATES", ())
    monkeypatch.setattr(formats.ImageFont, "load_default", lambda size=None: bitmap)
    assert_a_visible_mark(draft_layer((1080, 1080)))


def assert_a_visible_mark(layer):
    alpha = layer.getchannel("A")
    left, top, right, bottom = alpha.getbbox()
    assert right - left > layer.width / 2 and bottom - top > layer.height / 2


@pytest.mark.parametrize("fmt", [None, *FORMATS])
def test_it_makes_an_assets_files_in_one_pass_with_the_pixels_of_the_step_by_step_chain(fmt):
    source = encode(master())
    renditions = asset_renditions(source, fmt=fmt, generator="g", persona="@p", brand="B")

    chained = format_render(source, fmt) if fmt else source
    chained = disclosure_embed(chained, fmt=fmt or "master", generator="g", persona="@p", brand="B")
    derived = derivatives(draft_mark(chained))
    for got, expected in ((renditions["master"], chained), (renditions["web"], derived["web"]),
                          (renditions["thumbnail"], derived["thumbnail"])):  # fmt: skip
        assert decode(got).tobytes() == decode(expected).tobytes()
        disclosure = disclosure_read(got)
        assert disclosure["ai_generated"] and disclosure["format"] == (fmt or "master") and disclosure["draft"]
