"""Images as parts of a user message: PNG and JPEG bytes as an ``image_url`` data URL, their
size and summary, and what people are shown instead of the bytes.

A model is sent an image as a data URL (``data:image/png;base64,…``) inside an ``image_url``
content part. Making such bytes from the notebook's figures and images is the job of
`nbchat.prompt.figures`.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from nbchat.wire.redaction import mask_url

__all__ = [
    "MAX_IMAGE_BYTES",
    "ImagePart",
    "image_from_url",
    "megabytes",
    "part_summary",
    "sniff_mime",
    "token_estimate",
    "with_image_summaries",
]

# The largest image nbchat sends; OpenAI documents 20 MB per image, others accept less.
MAX_IMAGE_BYTES = 20 * 1024 * 1024

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff"


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

    @classmethod
    def of(cls, data: bytes) -> ImagePart | None:
        """PNG or JPEG bytes as an image part (its size read from the header); None for any
        other bytes."""
        mime = sniff_mime(data)
        if mime is None:
            return None
        return cls(mime, data, _png_size(data) if mime == "image/png" else _jpeg_size(data))


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
    return ImagePart.of(data)


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


def megabytes(count: int) -> str:
    """``20 MB``, ``1.5 MB``."""
    return f"{count / (1024 * 1024):,.1f} MB".replace(".0 MB", " MB")
