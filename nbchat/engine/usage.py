"""Tokens spent on answers fetched and saved by answers replayed, in this kernel session."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from nbchat.wire.usage import reasoning_tokens

__all__ = ["Usage"]

_BUCKET = ("prompt", "completion", "thinking")


@dataclass
class Usage:
    """Tokens spent on fresh answers and saved by replayed ones, this session."""

    requests: int = 0
    replays: int = 0
    spent: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_BUCKET, 0))
    saved: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_BUCKET, 0))

    def add(self, bucket: dict[str, int], usage: Mapping[str, Any]) -> None:
        """Count one answer's usage into ``bucket`` (thinking: part of the completion)."""
        bucket["prompt"] += int(usage.get("prompt_tokens") or 0)
        bucket["completion"] += int(usage.get("completion_tokens") or 0)
        bucket["thinking"] += reasoning_tokens(dict(usage)) or 0
