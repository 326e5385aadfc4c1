"""Whether a reasoning model's earlier thinking goes back to the provider with the context.

Providers disagree. DeepSeek's thinking mode (V4) answers the second turn of a conversation with
``400 The reasoning_content in the thinking mode must be passed back to the API.`` unless the
earlier assistant messages carry their ``reasoning_content``; deepseek-reasoner (R1) answers 400
when they do; OpenAI validates message fields and rejects unknown ones; other servers ignore the
field or refuse it.

``ChatMagics.send_reasoning`` (also per profile) is True, False or ``"auto"``, the default: what
the endpoint is known to want (DeepSeek's API: yes, except for deepseek-reasoner; any other
host: no), unless a 400 that names the field taught otherwise for this endpoint and model in this
session (the request is then sent once more, the other way). The decision is made per request,
for the endpoint it goes to, so a thread that switches model mid-way sends each provider what it
accepts.

The cache key covers what was sent, thinking included or not. A cell looks its answer up under
both forms, so a stored answer replays whatever was decided when it was asked, also after a
restart, when nothing learned is remembered.
"""

from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

from nbchat.errors import ConfigError, NbchatError
from nbchat.messages import REASONING_FIELDS
from nbchat.settings import Settings

__all__ = ["ReasoningPolicy", "check_send_reasoning"]

_DEEPSEEK_HOST = "api.deepseek.com"
_REFUSES_IT = frozenset({"deepseek-reasoner"})  # R1: 400 when earlier thinking is sent back


def check_send_reasoning(value: object) -> bool | str:
    """The setting as given, or a `ConfigError` saying what it may be."""
    if value is True or value is False or value == "auto":
        return value  # type: ignore[return-value]
    raise ConfigError(f"send_reasoning must be True, False or 'auto', not {value!r}")


# The thinking's field named as a word: reasoning_content or reasoning, not reasoning_effort.
_NAMES_THE_FIELD = re.compile(
    "|".join(rf"\b{re.escape(field)}\b" for field in REASONING_FIELDS), re.IGNORECASE
)


class ReasoningPolicy:
    """Decides per request; remembers what a provider's 400 taught, per endpoint and model."""

    def __init__(self) -> None:
        self._learned: dict[tuple[str, str], bool] = {}

    def decide(self, settings: Settings) -> bool:
        """Whether earlier thinking goes back with this request."""
        setting = check_send_reasoning(settings.send_reasoning)
        if isinstance(setting, bool):
            return setting
        learned = self._learned.get(_where(settings))
        if learned is not None:
            return learned
        host = urlsplit(settings.base_url).hostname or ""
        return host == _DEEPSEEK_HOST and settings.model not in _REFUSES_IT

    def learn(self, settings: Settings, error: NbchatError, sent: bool) -> bool | None:
        """After a 400: the other decision, remembered, when the error names the thinking's
        field and the setting is "auto"; else None (the error stands)."""
        if settings.send_reasoning != "auto" or getattr(error, "status_code", None) != 400:
            return None
        said = f"{error} {json.dumps(getattr(error, 'body', None), default=str)}".lower()
        if not _NAMES_THE_FIELD.search(said):  # "reasoning_effort" is another matter
            return None
        self._learned[_where(settings)] = not sent
        return not sent


def _where(settings: Settings) -> tuple[str, str]:
    return settings.base_url.rstrip("/"), settings.model
