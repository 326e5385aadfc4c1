"""Whether a reasoning model's earlier thinking goes back to the provider with the context.

Providers disagree. DeepSeek's thinking mode (V4) answers the second turn of a conversation with
``400 The reasoning_content in the thinking mode must be passed back to the API.`` unless the
earlier assistant messages carry their ``reasoning_content``; deepseek-reasoner (R1) answers 400
when they do; OpenAI validates message fields and rejects unknown ones; other servers ignore the
field or refuse it.

``ChatMagics.send_reasoning`` (also per profile) is True, False or ``"auto"``, the default: what
the endpoint is known to want (DeepSeek's API, except deepseek-reasoner; Gemini's, whose tool
calls carry thought signatures it needs back; OpenRouter's, whose ``reasoning_details`` its
upstreams need: yes; any other host: no), unless a 400 that names the field taught otherwise for
this endpoint and model in this session (the request is then sent once more, the other way).
The decision is made per request, for the endpoint it goes to, so a thread that switches model
mid-way sends each provider what it accepts. What goes back with the thinking is the provider's
own fields too (`nbchat.wire.messages.wire`).

DeepSeek wants ``reasoning_content`` on *every* earlier answer, so a thread whose earlier turns
came from a model that did not think is padded (`padding`): those answers go with a blank
``reasoning_content``. The padding is not part of the cache key: it is what the turns above
become when the thinking goes back, so the key of the thinking's form covers it.

The cache key covers what was sent, thinking included or not. A cell looks its answer up under
both forms, so a stored answer replays whatever was decided when it was asked, also after a
restart, when nothing learned is remembered.
"""

from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

from nbchat.engine.settings import Settings
from nbchat.errors import ConfigError, NbchatError
from nbchat.wire.messages import PASSBACK_FIELDS, REASONING_FIELDS

__all__ = ["NAMES_THE_FIELD", "ReasoningPolicy", "check_send_reasoning"]

_DEEPSEEK_HOST = "api.deepseek.com"
_REFUSES_IT = frozenset({"deepseek-reasoner"})  # R1: 400 when earlier thinking is sent back
# Hosts that want it back: DeepSeek (the thinking), Gemini (thought signatures on tool calls),
# OpenRouter (reasoning details).
_WANT_IT = frozenset({_DEEPSEEK_HOST, "generativelanguage.googleapis.com", "openrouter.ai"})
PADDED_FIELD = "reasoning_content"  # DeepSeek's, wanted on every earlier answer


def check_send_reasoning(value: object) -> bool | str:
    """The setting as given, or a `ConfigError` saying what it may be."""
    if value is True or value is False or value == "auto":
        return value  # type: ignore[return-value]
    raise ConfigError(f"send_reasoning must be True, False or 'auto', not {value!r}")


# A field that goes back with the thinking, named as a word (reasoning_content, reasoning,
# OpenRouter's reasoning_details, Gemini's extra_content or thought_signature; not
# reasoning_effort, another matter).
NAMES_THE_FIELD = re.compile(
    "|".join(
        rf"\b{re.escape(field)}\b"
        for field in (*REASONING_FIELDS, *PASSBACK_FIELDS, "extra_content", "thought_signature")
    ),
    re.IGNORECASE,
)


class ReasoningPolicy:
    """Decides per request; remembers what a provider's 400 taught, per endpoint and model."""

    def __init__(self) -> None:
        # (base URL, model) -> (send it, pad the answers that had none)
        self._learned: dict[tuple[str, str], tuple[bool, bool]] = {}

    def decide(self, settings: Settings) -> bool:
        """Whether earlier thinking goes back with this request."""
        setting = check_send_reasoning(settings.send_reasoning)
        if isinstance(setting, bool):
            return setting
        learned = self._learned.get(_where(settings))
        if learned is not None:
            return learned[0]
        return _host(settings) in _WANT_IT and settings.model not in _REFUSES_IT

    def padding(self, settings: Settings) -> str | None:
        """The field every earlier answer carries when the thinking goes back, those that had
        none blank (DeepSeek's thinking mode refuses a thread with an answer without it), or
        None when no padding is wanted."""
        if not self.decide(settings):
            return None
        learned = self._learned.get(_where(settings))
        if learned is not None and learned[1]:
            return PADDED_FIELD
        return PADDED_FIELD if _host(settings) == _DEEPSEEK_HOST else None

    def learn(self, settings: Settings, error: NbchatError, sent: bool) -> bool | None:
        """After a 400: the other decision, remembered, when the error names a field that goes
        back with the thinking and the setting is "auto"; else None (the error stands)."""
        if settings.send_reasoning != "auto" or getattr(error, "status_code", None) != 400:
            return None
        said = f"{error} {json.dumps(getattr(error, 'body', None), default=str)}".lower()
        if not NAMES_THE_FIELD.search(said):  # "reasoning_effort" is another matter
            return None
        pad = not sent and PADDED_FIELD in said
        self._learned[_where(settings)] = (not sent, pad)
        return not sent


def _host(settings: Settings) -> str:
    return urlsplit(settings.base_url).hostname or ""


def _where(settings: Settings) -> tuple[str, str]:
    return settings.base_url.rstrip("/"), settings.model
