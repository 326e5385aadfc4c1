"""``%config ChatMagics.*``: the settings' traits, derived from `engine.settings.Settings`.

Each setting is declared once, as a field of `Settings` with its help and rules. Here each
becomes a configurable trait of the same name (``None`` by default: "not configured here", so
the environment and the built-in default apply), whose help says the default and whose value is
checked by the field's rules when it is set. `ChatSettings` carries them; `ChatMagics` inherits
it, so ``%config ChatMagics``, ``ipython_config.py`` and ``%config ChatMagics.model = ...`` all
see them.
"""

from __future__ import annotations

from dataclasses import MISSING, Field, fields
from typing import Any

from traitlets import Bool, Dict, Enum, Float, Integer, TraitError, TraitType, Unicode, Union
from traitlets.config import Configurable

from nbchat.engine.settings import Settings, check_setting
from nbchat.errors import ConfigError

__all__ = ["SETTING_NAMES", "ChatSettings", "check_setting"]


def _settings() -> list[Field[Any]]:
    return [f for f in fields(Settings) if "help" in f.metadata]


SETTING_NAMES = tuple(f.name for f in _settings())


def _default_doc(declared: Field[Any]) -> str:
    if "default_doc" in declared.metadata:
        return str(declared.metadata["default_doc"])
    if declared.default_factory is not MISSING:
        return repr(declared.default_factory())
    return "none" if declared.default is None else repr(declared.default).strip("'")


def _trait(declared: Field[Any]) -> TraitType[Any, Any]:
    """The trait of one setting, from its annotation and rules."""
    meta, kind = declared.metadata, str(declared.type)
    text = f"{meta['help']} Default: {_default_doc(declared)}."
    common: dict[str, Any] = {"allow_none": True, "config": True, "help": text}
    choices = meta.get("choices")
    if choices and "bool" in kind:  # True, False or a word ("auto")
        words = [choice for choice in choices if isinstance(choice, str)]
        return Union([Bool(), Enum(words)], default_value=None, **common)
    if choices:
        return Enum(list(choices), default_value=None, **common)
    if kind.startswith("dict"):
        return Dict(default_value=None, **common)
    for prefix, trait in (("bool", Bool), ("int", Integer), ("float", Float)):
        if kind.startswith(prefix):
            return trait(None, **common)
    return Unicode(None, **common)


def _checked(self: Any, proposal: dict[str, Any]) -> Any:
    try:
        check_setting(proposal["trait"].name, proposal["value"])
    except ConfigError as error:
        raise TraitError(str(error)) from None
    return proposal["value"]


def _chat_settings() -> type[Configurable]:
    from traitlets import MetaHasTraits, validate

    namespace: dict[str, Any] = {f.name: _trait(f) for f in _settings()}
    namespace["__doc__"] = "nbchat's settings (one trait per field of Settings)."
    namespace["_check_setting"] = validate(*SETTING_NAMES)(_checked)
    return MetaHasTraits("ChatSettings", (Configurable,), namespace)


ChatSettings = _chat_settings()
