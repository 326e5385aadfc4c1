"""A tool's result, as the protocol gives it (``CallToolResult`` as JSON), in the text a model
reads.

Text parts are the text, one after another. ``structuredContent`` is sent as JSON when the result
has no text (a server that sends both mirrors the one in the other, as the protocol asks). An
image or audio part becomes a summary line (``[image: image/png, 12 kB]``), never its bytes; an
embedded resource its text, or a summary; a resource link its URI. A result the server flagged
``isError`` starts with ``Error (isError):``, so the model and the user both see the flag.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = ["IS_ERROR", "result_text"]

IS_ERROR = "Error (isError): "


def result_text(result: Mapping[str, Any]) -> tuple[str, bool]:
    """The text of a tool's result, and whether the server flagged it ``isError``."""
    parts = result.get("content")
    lines = [_part_text(part) for part in (parts if isinstance(parts, list) else [])]
    has_text = any(isinstance(part, Mapping) and part.get("type") == "text" for part in parts or [])
    structured = result.get("structuredContent")
    if structured is not None and not has_text:
        lines.append(json.dumps(structured, ensure_ascii=False, default=str))
    text = "\n".join(lines)
    failed = result.get("isError") is True
    return (f"{IS_ERROR}{text or '(no message)'}" if failed else text), failed


def _part_text(part: Any) -> str:
    if not isinstance(part, Mapping):
        return "[a content part that is not an object]"
    kind = part.get("type")
    if kind == "text":
        return str(part.get("text", ""))
    if kind in ("image", "audio"):
        return f"[{kind}: {_mime(part)}, {_size(part.get('data'))}]"
    if kind == "resource_link":
        name = f" ({part['name']})" if isinstance(part.get("name"), str) else ""
        return f"[resource link: {part.get('uri', '?')}{name}]"
    if kind == "resource" and isinstance(part.get("resource"), Mapping):
        resource = part["resource"]
        if isinstance(resource.get("text"), str):
            return resource["text"]
        size = _size(resource.get("blob"))
        return f"[resource: {resource.get('uri', '?')}, {_mime(resource)}, {size}]"
    return f"[{str(kind)[:40]} content]"


def _mime(part: Mapping[str, Any]) -> str:
    mime = part.get("mimeType")
    return mime[:80] if isinstance(mime, str) else "unknown type"


def _size(data: Any) -> str:
    """The size of base64 ``data`` once decoded, as people read it."""
    if not isinstance(data, str):
        return "no data"
    size = len(data) * 3 // 4 - data[-2:].count("=")
    if size < 1_000:
        return f"{size} B"
    return f"{size / 1_000:.0f} kB" if size < 1_000_000 else f"{size / 1_000_000:.1f} MB"
