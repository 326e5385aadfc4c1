"""Images from the notebook as parts of a user message: figures, PIL images, PNG and JPEG bytes.

A model is sent an image as a data URL (``data:image/png;base64,…``) inside an ``image_url``
content part. The bytes must be deterministic, because they are part of the request and so of the
key that finds a stored answer: the same figure must give the same bytes on every run. So a
figure is saved with every option that could vary pinned (dpi, margins, colours, and no
``Software`` metadata, which carries the matplotlib version), and a PIL image is saved with a
fixed compression level. Bytes from other encoders or other library versions may differ.

matplotlib, PIL and IPython are recognised by their class's module and name, never imported:
nbchat depends on none of them.
"""

from __future__ import annotations

import base64
import hashlib
import io
import struct
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from nbchat.errors import ConfigError
from nbchat.wire.redaction import mask_url

__all__ = [
    "MAX_IMAGE_BYTES",
    "ImagePart",
    "image_from_url",
    "image_part",
    "instance_of",
    "part_summary",
    "sniff_mime",
    "thumbnail",
    "token_estimate",
    "with_image_summaries",
]

# The largest image nbchat sends; OpenAI documents 20 MB per image, others accept less.
MAX_IMAGE_BYTES = 20 * 1024 * 1024
FIGURE_DPI = 100  # fixed, so the rcParams and the inline backend's dpi do not change the bytes
THUMBNAIL_SIDE = 160  # pixels: the longer side of the picture shown with a turn

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff"
_PIL_PNG_MODES = frozenset({"1", "L", "LA", "I", "I;16", "P", "RGB", "RGBA"})


def instance_of(value: object, qualname: str) -> bool:
    """Whether ``value``'s class, or a base class, is ``qualname`` (``"pandas.DataFrame"``).

    Only the top-level package and the class name are compared (pandas defines DataFrame in
    ``pandas.core.frame``), so the library never needs importing and subclasses count.
    """
    package, _, name = qualname.partition(".")
    return any(
        cls.__name__ == name and cls.__module__.partition(".")[0] == package
        for cls in type(value).__mro__
    )


def sniff_mime(data: bytes) -> str | None:
    """``image/png`` or ``image/jpeg`` by the bytes' magic number, else None."""
    if data.startswith(_PNG_MAGIC):
        return "image/png"
    if data.startswith(_JPEG_MAGIC):
        return "image/jpeg"
    return None


@dataclass(frozen=True)
class ImagePart:
    """An encoded image as sent to a model."""

    mime: str
    data: bytes = field(repr=False)
    size: tuple[int, int] | None = None  # (width, height) in pixels, when the header says

    @cached_property
    def digest(self) -> str:
        """The sha256 of the bytes, in hex: the image's identity."""
        return hashlib.sha256(self.data).hexdigest()

    @cached_property
    def url(self) -> str:
        """The bytes as a ``data:`` URL."""
        return f"data:{self.mime};base64,{base64.b64encode(self.data).decode('ascii')}"

    @property
    def summary(self) -> str:
        """``PNG image, 640×480, 45 kB``: what people are shown instead of the bytes."""
        kind = self.mime.removeprefix("image/").upper()
        dimensions = f", {self.size[0]}×{self.size[1]}" if self.size else ""
        return f"{kind} image{dimensions}, {_kilobytes(len(self.data))}"

    def part(self) -> dict[str, Any]:
        """The ``image_url`` content part of a user message."""
        return {"type": "image_url", "image_url": {"url": self.url}}


def image_part(value: object, *, label: str = "the image") -> ImagePart | None:
    """``value`` as an image part, or None when it is not an image.

    Images are a matplotlib Figure, a PIL Image, an ``IPython.display.Image`` and bytes that
    start like a PNG or a JPEG. Raises `ConfigError` (naming ``label``) for an image over
    `MAX_IMAGE_BYTES` or an ``IPython.display.Image`` that holds no PNG or JPEG bytes.
    """
    if instance_of(value, "matplotlib.Figure"):
        data = _figure_png(value)
    elif instance_of(value, "PIL.Image"):
        data = _pil_png(value)
    elif instance_of(value, "IPython.Image"):
        data = _ipython_image_bytes(value, label)
    elif isinstance(value, bytes | bytearray) and sniff_mime(bytes(value[:8])):
        data = bytes(value)
    else:
        return None
    mime = sniff_mime(data)
    if mime is None:  # our own encoders write PNG; this guards the IPython path
        raise ConfigError(f"{label} is not a PNG or JPEG image: save it as one")
    if len(data) > MAX_IMAGE_BYTES:
        raise ConfigError(
            f"{label} is a {_megabytes(len(data))} image, over the "
            f"{_megabytes(MAX_IMAGE_BYTES)} nbchat sends: make it smaller (lower dpi or resize)"
        )
    return ImagePart(mime, data, _png_size(data) if mime == "image/png" else _jpeg_size(data))


def image_from_url(url: str) -> ImagePart | None:
    """The image a ``data:image/png;base64,…`` URL holds, or None for any other URL."""
    head, comma, payload = url.partition(",")
    if not comma or not head.startswith("data:image/") or not head.endswith(";base64"):
        return None
    try:
        data = base64.b64decode(payload, validate=True)
    except ValueError:
        return None
    mime = sniff_mime(data)
    if mime is None:
        return None
    return ImagePart(mime, data, _png_size(data) if mime == "image/png" else _jpeg_size(data))


def part_summary(part: dict[str, Any]) -> str:
    """What people are shown for an ``image_url`` content part: ``PNG image, 640×480, 45 kB``
    for a data URL, ``image at https://…`` for a link."""
    image_url = part.get("image_url")
    url = image_url.get("url") if isinstance(image_url, dict) else image_url
    if not isinstance(url, str):
        return "image"
    image = image_from_url(url)
    if image is not None:
        return image.summary
    if url.startswith("data:"):
        return "image (an unreadable data URL)"
    shown = mask_url(url)  # a signed link's credentials and query values are not shown
    return f"image at {shown[:80]}{'…' if len(shown) > 80 else ''}"


def with_image_summaries(value: Any) -> Any:
    """A copy of JSON ``value`` with the data URL of every ``image_url`` part replaced by its
    summary and digest (``data:image/png;base64,… [PNG image, 640×480, 45 kB; sha256 1a2b…]``):
    what a raw view shows instead of the bytes."""
    if isinstance(value, list):
        return [with_image_summaries(item) for item in value]
    if not isinstance(value, dict):
        return value
    if value.get("type") == "image_url" and isinstance(value.get("image_url"), dict):
        url = value["image_url"].get("url")
        image = image_from_url(url) if isinstance(url, str) else None
        if image is not None:
            shown = f"data:{image.mime};base64,… [{image.summary}; sha256 {image.digest[:16]}]"
            return {**value, "image_url": {**value["image_url"], "url": shown}}
    return {key: with_image_summaries(item) for key, item in value.items()}


def token_estimate(image: ImagePart | None) -> int:
    """Roughly the tokens a model counts for ``image``: OpenAI's rule (85, and 170 per 512-pixel
    tile), which others come near; 765 when the size is unknown."""
    if image is None or image.size is None:
        return 765
    width, height = image.size
    return 85 + 170 * -(-width // 512) * -(-height // 512)


def thumbnail(image: ImagePart, side: int = THUMBNAIL_SIDE) -> bytes | None:
    """A PNG of ``image`` at most ``side`` pixels on its longer side, to show with the turn
    (its bytes when already that small); None when PIL is not installed or cannot read it."""
    if image.size is not None and max(image.size) <= side and image.mime == "image/png":
        return image.data
    try:
        from PIL import Image  # matplotlib depends on it, so figures always have it
    except ImportError:
        return None
    try:
        with Image.open(io.BytesIO(image.data)) as opened:
            small = opened.copy()
        small.thumbnail((side, side))
        return _pil_png(small)
    except Exception:  # a truncated or exotic file: the summary line stands in for it
        return None


def _figure_png(figure: Any) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(
        buffer,
        format="png",
        dpi=FIGURE_DPI,
        bbox_inches="tight",  # as the inline backend shows it
        pad_inches=0.1,
        facecolor="auto",
        edgecolor="auto",
        transparent=False,
        metadata={"Software": None},
    )
    return buffer.getvalue()


def _pil_png(image: Any) -> bytes:
    if image.mode not in _PIL_PNG_MODES:  # CMYK, YCbCr, F…: PNG cannot hold them
        image = image.convert("RGBA" if "A" in image.mode else "RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()


def _ipython_image_bytes(image: Any, label: str) -> bytes:
    data = getattr(image, "data", None)
    if not isinstance(data, bytes):
        raise ConfigError(
            f"{label} is an Image without its bytes (a link): use Image(filename=...) or "
            "Image(data=...)"
        )
    return data


def _png_size(data: bytes) -> tuple[int, int] | None:
    if data[12:16] != b"IHDR" or len(data) < 24:
        return None
    width, height = struct.unpack(">II", data[16:24])
    return width, height


# Start-of-frame markers hold the size; C4 (Huffman tables), C8 and CC (arithmetic) do not.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xDA)})  # markers with no length field


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    position = 2
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker in _JPEG_STANDALONE:
            position += 2
            continue
        (length,) = struct.unpack(">H", data[position + 2 : position + 4])
        if marker in _JPEG_SOF and position + 9 <= len(data):
            height, width = struct.unpack(">HH", data[position + 5 : position + 9])
            return width, height
        position += 2 + length
    return None


def _kilobytes(count: int) -> str:
    return f"{count} B" if count < 1024 else f"{count / 1024:,.0f} kB"


def _megabytes(count: int) -> str:
    return f"{count / (1024 * 1024):,.1f} MB".replace(".0 MB", " MB")
