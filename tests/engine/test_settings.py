"""Settings precedence: flag > profile > %config > environment > default."""

from __future__ import annotations

import pytest

from nbchat.engine.profiles import BUILTIN_PROFILES, DEFAULT_MODEL
from nbchat.engine.settings import resolve_settings
from nbchat.errors import ConfigError


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


def test_a_key_goes_only_where_it_was_paired():
    # The environment pairs OPENAI_BASE_URL with OPENAI_API_KEY, as the openai SDK does.
    env = {"OPENAI_BASE_URL": "http://h/v1"}
    assert resolve_settings({}, {}, {}, environ=env).api_key_env == "OPENAI_API_KEY"
    # A profile or %config that moves the base URL must name its key variable: nothing can be
    # sent until it does (stored answers still replay) ...
    mine = {"mine": {"base_url": "https://example.com/v1", "model": "m"}}
    unpaired = resolve_settings({}, {"profile": "mine"}, mine, environ={})
    assert unpaired.api_key_env == ""
    with pytest.raises(ConfigError, match=r"Profile 'mine' .* api_key_env.*example\.com"):
        unpaired.client_config()
    assert "not paired" in unpaired.masked()["api_key"]
    configured = resolve_settings({"base_url": "https://example.com/v1"}, {}, {}, environ={})
    with pytest.raises(ConfigError, match=r"ChatMagics\.api_key_env"):
        configured.client_config()
    # ... even when a lower layer named one for another host.
    lower = resolve_settings({"api_key_env": "OTHER_KEY"}, {"profile": "mine"}, mine, environ={})
    with pytest.raises(ConfigError, match="Profile 'mine'"):
        lower.client_config()
    # A value that is not a URL (a key pasted in the wrong place) is never quoted back.
    pasted = {"p": {"base_url": "sk-proj-SECRETSECRET1234567890", "model": "m"}}
    problem = resolve_settings({}, {"profile": "p"}, pasted, environ={}).key_problem
    assert problem and "SECRET" not in problem
    assert "SECRET" not in str(resolve_settings({}, {"profile": "p"}, pasted, environ={}).masked())
    # Named (or "" for none), it is used; OpenAI's own host pairs with OPENAI_API_KEY.
    named = {"mine": {**mine["mine"], "api_key_env": "MINE_KEY"}}
    assert resolve_settings({}, {"profile": "mine"}, named, environ={}).api_key_env == "MINE_KEY"
    keyless = {"base_url": "http://127.0.0.1:1/v1", "api_key_env": ""}
    assert resolve_settings(keyless, {}, {}, environ={}).api_key_env == ""
    openai = {"base_url": "https://api.openai.com/v1/"}
    assert resolve_settings(openai, {}, {}, environ={}).api_key_env == "OPENAI_API_KEY"
    plain = resolve_settings({"base_url": "http://api.openai.com/v1"}, {}, {}, environ={})
    assert plain.key_problem, "not over plain http"
    # A profile that only changes the model keeps the pair below it.
    fast = {"fast": {"model": "small"}}
    paired = resolve_settings(keyless, {"profile": "fast"}, fast, environ=env)
    assert (paired.base_url, paired.api_key_env) == ("http://127.0.0.1:1/v1", "")


def test_config_shows_the_base_url_without_credentials_or_query_values():
    url = "https://user:pw@example.com/v1?api-version=2024-10-21&key=abcdef123456"
    shown = resolve_settings({"base_url": url, "api_key_env": ""}, {}, {}, environ={}).masked()
    assert "pw" not in shown["base_url"] and "abcdef123456" not in shown["base_url"]
    assert "2024-10-21" not in shown["base_url"] and "example.com/v1" in shown["base_url"]


# -- Google Colab's model proxy ----------------------------------------------------------------


COLAB = {"MODEL_PROXY_HOST": "https://mp.example.com/", "OPENAI_BASE_URL": "https://x.test/v1"}


def test_the_colab_profile_uses_the_model_proxy_and_its_own_key():
    colab = resolve_settings({}, {"profile": "colab"}, {}, environ=COLAB)
    assert colab.base_url == "https://mp.example.com/models/openapi"
    assert colab.api_key_env == "MODEL_PROXY_API_KEY" and colab.key_problem is None
    assert colab.model == "google/gemini-2.5-flash"
    assert resolve_settings({}, {"profile": "colab", "model": "m"}, {}, environ=COLAB).model == "m"
    # A %config base URL is below the profile: the proxy's key still goes to the proxy only.
    config = {"base_url": "https://elsewhere.test/v1", "api_key_env": "OTHER"}
    assert resolve_settings(config, {"profile": "colab"}, {}, environ=COLAB).base_url == (
        "https://mp.example.com/models/openapi"
    )


def test_the_colab_profile_outside_colab_says_what_it_needs():
    with pytest.raises(ConfigError, match=r"needs \$MODEL_PROXY_HOST, which Google Colab sets"):
        resolve_settings({}, {"profile": "colab"}, {}, environ={})
    mine = {"colab": {"base_url": "http://127.0.0.1:1/v1", "api_key_env": "", "model": "q"}}
    assert resolve_settings({}, {"profile": "colab"}, mine, environ={}).base_url == (
        "http://127.0.0.1:1/v1"
    ), "a profile of the user's own with that name wins"


def test_a_profiles_prices_join_the_ones_set_for_every_cell():
    config = {"prices": {"a": {"input": 1, "output": 1}, "b": {"input": 2, "output": 2}}}
    mine = {
        "gateway": {
            "base_url": "https://gw.example/v1",
            "api_key_env": "GW_KEY",
            "prices": {"b": {"input": 3, "output": 3}, "*": {"input": 9, "output": 9}},
        }
    }
    settings = resolve_settings(config, {"profile": "gateway"}, mine, environ={})
    # its "*" prices every model at its endpoint: the models named for every cell yield to it
    assert settings.prices == mine["gateway"]["prices"]
    mine["gateway"]["prices"] = {"b": {"input": 3, "output": 3}}
    settings = resolve_settings(config, {"profile": "gateway"}, mine, environ={})
    assert settings.prices == {
        "a": {"input": 1, "output": 1},
        "b": {"input": 3, "output": 3},  # the profile's own, for its endpoint
    }
    assert resolve_settings(config, {}, mine, environ={}).prices == config["prices"]


def test_a_profile_with_bad_prices_says_so():
    mine = {"p": {"base_url": "https://p.example/v1", "api_key_env": "", "prices": {"m": 1}}}
    with pytest.raises(ConfigError, match=r"prices\['m'\]: give 'input' and 'output'"):
        resolve_settings({}, {"profile": "p"}, mine, environ={})


def test_mcp_servers_and_their_timeout_are_settings_checked_when_set():
    from dataclasses import fields

    from nbchat.engine.settings import DEFAULT_MCP_TIMEOUT, Settings

    declared = {"files": {"command": ["python", "server.py"]}}
    chosen = resolve_settings({"mcp_servers": declared, "mcp_timeout": 5.0}, {}, {}, environ={})
    assert (chosen.mcp_servers, chosen.mcp_timeout) == (declared, 5.0)
    default = resolve_settings({}, {}, {}, environ={})
    assert (default.mcp_servers, default.mcp_timeout) == ({}, DEFAULT_MCP_TIMEOUT)
    rules = {f.name: f.metadata for f in fields(Settings)}
    with pytest.raises(ConfigError, match="mcp_servers\\['s'\\] needs a command"):
        rules["mcp_servers"]["check"]({"s": {}})
    assert rules["mcp_timeout"]["above"] == 0
