"""Settings precedence: flag > profile > %config > environment > default."""

from __future__ import annotations

import pytest

from nbchat.errors import ConfigError
from nbchat.settings import BUILTIN_PROFILES, DEFAULT_MODEL, resolve_settings


def test_defaults_then_environment():
    assert resolve_settings({}, {}, {}, environ={}).model == DEFAULT_MODEL
    env = {"NBCHAT_MODEL": "env-model", "OPENAI_BASE_URL": "http://h/v1", "NBCHAT_OFFLINE": "1"}
    settings = resolve_settings({}, {}, {}, environ=env)
    assert (settings.model, settings.base_url, settings.offline) == (
        "env-model",
        "http://h/v1",
        True,
    )


def test_config_beats_environment_and_flags_beat_all():
    env = {"NBCHAT_MODEL": "env-model"}
    assert resolve_settings({"model": "cfg"}, {}, {}, environ=env).model == "cfg"
    assert resolve_settings({"model": "cfg"}, {"model": "flag"}, {}, environ=env).model == "flag"
    assert resolve_settings({"model": None}, {"model": None}, {}, environ=env).model == "env-model"


def test_profiles_bundle_endpoint_key_variable_and_model():
    qwen = resolve_settings({}, {"profile": "qwen"}, {}, environ={})
    assert qwen.base_url == BUILTIN_PROFILES["qwen"]["base_url"]
    assert qwen.api_key_env == "DASHSCOPE_API_KEY" and qwen.model == "qwen3-max"
    mine = {"local": {"base_url": "http://127.0.0.1:1/v1", "api_key_env": "", "model": "q"}}
    local = resolve_settings({"model": "cfg"}, {"profile": "local"}, mine, environ={})
    assert (local.model, local.api_key_env) == ("q", "")
    flagged = resolve_settings({}, {"profile": "local", "model": "x"}, mine, environ={})
    assert flagged.model == "x"


def test_bad_profiles_are_config_errors():
    with pytest.raises(ConfigError, match="Known profiles"):
        resolve_settings({}, {"profile": "nope"}, {}, environ={})
    with pytest.raises(ConfigError, match="Unknown setting"):
        resolve_settings({}, {"profile": "bad"}, {"bad": {"colour": "red"}}, environ={})


def test_options_merge_and_request_params():
    settings = resolve_settings(
        {"options": {"seed": 1}, "temperature": 0.0},
        {"options": {"top_p": 0.5}, "max_tokens": 9},
        {},
        environ={},
    )
    assert settings.request_params() == {
        "temperature": 0.0,
        "max_tokens": 9,
        "seed": 1,
        "top_p": 0.5,
    }


def test_masked_settings_never_show_the_key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-value-123456")
    shown = resolve_settings({}, {}, {}, environ={}).masked()
    assert "sk-secret" not in repr(shown)
    assert shown["api_key"] == "set ($OPENAI_API_KEY)"
