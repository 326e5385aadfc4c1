"""Figures and images from the notebook as image parts, and thumbnails of them.

The bytes must be deterministic, because they are part of the request and so of the key that
finds a stored answer: the same figure must give the same bytes on every run. So a figure is
saved with every option that could vary pinned (dpi, margins, colours, and no ``Software``
metadata, which carries the matplotlib version), and a PIL image is saved with a fixed
compression level. Bytes from other encoders or other library versions may differ.

matplotlib, PIL and IPython are recognised by their class's module and name, never imported
to check: nbchat depends on none of them.
"""

from __future__ import annotations

import io
from typing import Any

from nbchat.errors import ConfigError
from nbchat.wire.images import MAX_IMAGE_BYTES, ImagePart, megabytes, sniff_mime

__all__ = ["FIGURE_DPI", "THUMBNAIL_SIDE", "image_part", "instance_of", "thumbnail"]

FIGURE_DPI = 100  # fixed, so the rcParams and the inline backend's dpi do not change the bytes
THUMBNAIL_SIDE = 160  # pixels: the longer side of the picture shown with a turn
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
    image = ImagePart.of(data)
    if image is None:  # our own encoders write PNG; this guards the IPython path
        raise ConfigError(f"{label} is not a PNG or JPEG image: save it as one")
    if len(data) > MAX_IMAGE_BYTES:
        raise ConfigError(
            f"{label} is a {megabytes(len(data))} image, over the "
            f"{megabytes(MAX_IMAGE_BYTES)} nbchat sends: make it smaller (lower dpi or resize)"
        )
    return image


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
