"""Token usage as servers report it: counts added up over a turn's requests, the part of them a
reasoning model spent thinking, and the part of the prompt the provider had cached."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["cached_tokens", "reasoning_tokens", "summed_usage"]


def summed_usage(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Token counts added up, nested ones too (``completion_tokens_details.reasoning_tokens``)."""
    total: dict[str, Any] = {}
    for report in reports:
        for name, value in report.items():
            if isinstance(value, int) and not isinstance(value, bool):
                total[name] = total.get(name, 0) + value
            elif isinstance(value, dict):
                total[name] = summed_usage([total.get(name, {}), value])
    return total


def reasoning_tokens(usage: Mapping[str, Any]) -> int | None:
    """The completion tokens a reasoning model spent thinking, when the server says."""
    details = usage.get("completion_tokens_details")
    count = details.get("reasoning_tokens") if isinstance(details, dict) else None
    return count if isinstance(count, int) and not isinstance(count, bool) else None


def cached_tokens(usage: Mapping[str, Any]) -> int | None:
    """The prompt tokens the provider served from its prompt cache, when it says: OpenAI,
    DashScope and vLLM in ``prompt_tokens_details.cached_tokens``, DeepSeek in
    ``prompt_cache_hit_tokens``."""
    details = usage.get("prompt_tokens_details")
    count = details.get("cached_tokens") if isinstance(details, dict) else None
    if count is None:
        count = usage.get("prompt_cache_hit_tokens")
    return count if isinstance(count, int) and not isinstance(count, bool) else None
