"""Images as message parts: deterministic bytes, recognised without importing their libraries."""

from __future__ import annotations

import base64
import hashlib
import io
import subprocess
import sys

import matplotlib
import pytest
from IPython.display import Image as IPythonImage
from matplotlib.figure import Figure
from PIL import Image

from nbchat.errors import ConfigError
from nbchat.prompt.figures import THUMBNAIL_SIDE, image_part, instance_of, thumbnail
from nbchat.store.record import message_text
from nbchat.wire.images import (
    MAX_IMAGE_BYTES,
    ImagePart,
    image_from_url,
    part_summary,
    sniff_mime,
    token_estimate,
    with_image_summaries,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def make_figure(dpi: float = 100) -> Figure:
    figure = Figure(figsize=(4, 3), dpi=dpi)
    axes = figure.subplots()
    axes.plot([1, 3, 2, 5], label="series")
    axes.set_title("A title")
    axes.legend()
    return figure


def jpeg_bytes(size: tuple[int, int], **options: object) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 30, 40)).save(buffer, format="JPEG", **options)
    return buffer.getvalue()


def test_a_figure_renders_to_the_same_png_every_time():
    figure = make_figure()
    first, second = image_part(figure), image_part(figure)
    assert first is not None and second is not None
    assert first.mime == "image/png" and first.data.startswith(PNG_MAGIC)
    assert first.data == second.data
    assert first.digest == hashlib.sha256(first.data).hexdigest()
    assert image_part(make_figure()).data == first.data  # an equal figure, drawn anew


def test_figure_bytes_carry_no_version_and_ignore_dpi_settings():
    reference = image_part(make_figure()).data
    assert b"matplotlib" not in reference.lower() and b"Software" not in reference
    # The inline backend and rcParams change dpi; the bytes must not follow.
    with matplotlib.rc_context({"savefig.dpi": 300, "savefig.transparent": True}):
        assert image_part(make_figure(dpi=72)).data == reference


FIGURE_DIGEST_SCRIPT = """
from matplotlib.figure import Figure
from nbchat.prompt.figures import image_part
figure = Figure(figsize=(4, 3))
figure.subplots().plot([1, 3, 2, 5])
print(image_part(figure).digest)
"""


def test_a_figure_gives_the_same_bytes_in_another_process():
    digests = {
        subprocess.run(
            [sys.executable, "-c", FIGURE_DIGEST_SCRIPT],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout.strip()
        for _ in range(2)
    }
    assert len(digests) == 1 and len(digests.pop()) == 64


def test_figure_size_is_read_from_the_png():
    part = image_part(make_figure())
    assert part.size is not None
    width, height = part.size
    assert 300 < width <= 400 and 200 < height <= 300  # 4×3 inches at 100 dpi, cropped tight


def test_a_pil_image_becomes_a_deterministic_png():
    image = Image.new("RGB", (64, 32), (10, 200, 30))
    part = image_part(image)
    assert part.mime == "image/png" and part.size == (64, 32)
    assert image_part(Image.new("RGB", (64, 32), (10, 200, 30))).data == part.data
    assert Image.open(io.BytesIO(part.data)).getpixel((5, 5)) == (10, 200, 30)


def test_a_pil_image_png_cannot_hold_is_converted():
    part = image_part(Image.new("CMYK", (8, 6), (0, 255, 0, 0)))
    decoded = Image.open(io.BytesIO(part.data))
    assert part.size == (8, 6) and decoded.mode == "RGB"


@pytest.mark.parametrize("wrap", [bytes, bytearray])
def test_png_bytes_are_an_image(wrap):
    png = image_part(Image.new("L", (3, 7))).data
    part = image_part(wrap(png))
    assert part == ImagePart("image/png", png, (3, 7))


@pytest.mark.parametrize(
    ("options", "size"),
    [
        ({}, (33, 17)),
        ({"progressive": True}, (40, 9)),
        ({"exif": b"Exif\x00\x00" + b"\x00" * 40}, (5, 300)),
    ],
)
def test_jpeg_bytes_are_an_image_with_their_size(options, size):
    data = jpeg_bytes(size, **options)
    part = image_part(data)
    assert part.mime == "image/jpeg" and part.size == size and part.data == data


def test_other_values_are_not_images():
    assert image_part(b"GIF89a...") is None
    assert image_part(b"") is None
    assert image_part("\x89PNG\r\n\x1a\n") is None  # text, not bytes
    assert image_part([1, 2]) is None


def test_an_ipython_image_with_bytes_is_an_image():
    data = jpeg_bytes((12, 10))
    assert image_part(IPythonImage(data=data)) == ImagePart("image/jpeg", data, (12, 10))


def test_an_ipython_image_of_a_link_is_refused_in_one_line():
    with pytest.raises(ConfigError) as caught:
        image_part(IPythonImage(url="https://example.com/plot.png"), label="plot")
    message = str(caught.value)
    assert message.startswith("plot is an Image without its bytes") and "\n" not in message


def test_an_image_over_the_limit_is_refused_in_one_line():
    with pytest.raises(ConfigError) as caught:
        image_part(PNG_MAGIC + bytes(25 * 1024 * 1024), label="scan")
    assert str(caught.value) == (
        "scan is a 25 MB image, over the 20 MB nbchat sends: make it smaller (lower dpi or resize)"
    )
    with pytest.raises(ConfigError, match="over the 20 MB"):
        image_part(PNG_MAGIC + bytes(MAX_IMAGE_BYTES))
    assert image_part(PNG_MAGIC + bytes(MAX_IMAGE_BYTES - len(PNG_MAGIC))) is not None


def test_a_part_is_a_data_url_of_the_bytes():
    data = image_part(Image.new("RGB", (2, 2))).data
    part = ImagePart("image/png", data, (2, 2))
    assert part.part() == {"type": "image_url", "image_url": {"url": part.url}}
    prefix, _, encoded = part.url.partition(",")
    assert prefix == "data:image/png;base64" and base64.b64decode(encoded) == data
    assert part.summary == f"PNG image, 2×2, {len(data)} B"
    assert "data=" not in repr(part)  # megabytes of bytes stay out of tracebacks


def test_a_truncated_image_has_no_size():
    assert image_part(PNG_MAGIC + b"\x00" * 4) == ImagePart("image/png", PNG_MAGIC + bytes(4))
    assert image_part(b"\xff\xd8\xff\xe0\x00").size is None


def test_sniff_mime():
    assert sniff_mime(PNG_MAGIC + b"rest") == "image/png"
    assert sniff_mime(b"\xff\xd8\xff\xe0") == "image/jpeg"
    assert sniff_mime(b"\xff\xd8") is None


class LocalFrame:
    pass


LocalFrame.__module__ = "pandas.core.frame"


def test_instance_of_compares_package_and_class_name_through_bases():
    class Sub(LocalFrame):
        pass

    Sub.__name__ = "Mine"
    assert instance_of(Sub(), "pandas.LocalFrame")
    assert not instance_of(Sub(), "polars.LocalFrame")
    assert not instance_of(LocalFrame(), "pandas.DataFrame")
    assert instance_of(make_figure(), "matplotlib.Figure")


def png_part(size: tuple[int, int], color: tuple[int, int, int] = (10, 120, 200)) -> ImagePart:
    found = image_part(Image.new("RGB", size, color))
    assert found is not None
    return found


def test_a_data_url_reads_back_as_the_same_image():
    image = png_part((300, 200))
    again = image_from_url(image.url)
    assert again == image and again.size == (300, 200) and again.digest == image.digest
    encoded = base64.b64encode(jpeg_bytes((64, 48))).decode()
    jpeg = image_from_url(f"data:image/jpeg;base64,{encoded}")
    assert jpeg is not None and (jpeg.mime, jpeg.size) == ("image/jpeg", (64, 48))


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/a.png",
        "data:image/png;base64,not base64!",
        "data:image/png;base64," + base64.b64encode(b"GIF89a not a png").decode(),
        "data:text/plain;base64,aGVsbG8=",
        "data:image/png,rawbytes",
        "",
    ],
)
def test_anything_but_a_png_or_jpeg_data_url_is_not_an_image(url):
    assert image_from_url(url) is None


def test_a_part_is_summarised_by_what_it_holds():
    image = png_part((640, 480))
    assert part_summary(image.part()) == image.summary
    assert image.summary.startswith("PNG image, 640×480, ")
    assert part_summary({"type": "image_url", "image_url": {"url": "https://x.test/a.png"}}) == (
        "image at https://x.test/a.png"
    )
    long_link = "https://x.test/" + "a" * 200
    assert len(part_summary({"type": "image_url", "image_url": {"url": long_link}})) < 100
    broken = {"type": "image_url", "image_url": {"url": "data:image/png;base64,@@"}}
    assert part_summary(broken) == "image (an unreadable data URL)"
    assert part_summary({"type": "image_url"}) == "image"


def test_message_text_shows_images_in_place():
    image = png_part((32, 16))
    before, after = {"type": "text", "text": "Before "}, {"type": "text", "text": " after"}
    content = [before, image.part(), after]
    assert message_text({"role": "user", "content": content}) == (f"Before [{image.summary}] after")


def test_a_thumbnail_fits_the_side_and_keeps_the_shape():
    small = thumbnail(png_part((1200, 600)))
    assert small is not None
    shown = image_part(small)
    assert shown is not None and shown.size == (THUMBNAIL_SIDE, THUMBNAIL_SIDE // 2)
    tiny = png_part((40, 30))
    assert thumbnail(tiny) == tiny.data, "a small PNG is its own thumbnail"
    jpeg = image_part(jpeg_bytes((800, 800)))
    assert jpeg is not None
    assert sniff_mime(thumbnail(jpeg) or b"") == "image/png"


def test_a_thumbnail_of_a_broken_image_is_none():
    assert thumbnail(ImagePart("image/png", PNG_MAGIC + b"truncated", (999, 999))) is None


def test_raw_views_show_a_summary_and_digest_instead_of_the_bytes():
    image = png_part((50, 40))
    content = [{"type": "text", "text": "x"}, image.part()]
    body = {"messages": [{"role": "user", "content": content}]}
    shown = with_image_summaries(body)
    url = shown["messages"][0]["content"][1]["image_url"]["url"]
    assert url == f"data:image/png;base64,… [{image.summary}; sha256 {image.digest[:16]}]"
    assert body["messages"][0]["content"][1] == image.part(), "the original is not changed"
    link = {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}}
    assert with_image_summaries([link, 3, "s"]) == [link, 3, "s"]


def test_image_tokens_are_estimated_by_tiles():
    assert token_estimate(png_part((512, 512))) == 85 + 170
    assert token_estimate(png_part((513, 512))) == 85 + 2 * 170
    assert token_estimate(png_part((1024, 1024))) == 85 + 4 * 170
    assert token_estimate(None) == 765
