"""The built-in profiles: the endpoints nbchat knows by name, their key variables and models."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nbchat.errors import ConfigError
from nbchat.wire.config import DEFAULT_BASE_URL

__all__ = ["BUILTIN_PROFILES", "COLAB_HOST", "DEFAULT_MODEL", "colab_url"]

DEFAULT_MODEL = "gpt-4.1-mini"

BUILTIN_PROFILES: dict[str, dict[str, Any]] = {
    "openai": {
        "base_url": DEFAULT_BASE_URL,
        "api_key_env": "OPENAI_API_KEY",
        "model": DEFAULT_MODEL,
    },
    "qwen": {
        "base_url": "https://dashscope.aliyuncs.com/compatible-mode/v1",
        "api_key_env": "DASHSCOPE_API_KEY",
        "model": "qwen3-max",
    },
    "qwen-intl": {
        "base_url": "https://dashscope-intl.aliyuncs.com/compatible-mode/v1",
        "api_key_env": "DASHSCOPE_API_KEY",
        "model": "qwen3-max",
    },
    "deepseek": {
        "base_url": "https://api.deepseek.com/v1",
        "api_key_env": "DEEPSEEK_API_KEY",
        "model": "deepseek-chat",
    },
    "ollama": {"base_url": "http://127.0.0.1:11434/v1", "api_key_env": "", "model": "llama3.2"},
    "vllm": {"base_url": "http://127.0.0.1:8000/v1", "api_key_env": "VLLM_API_KEY"},
    "llamacpp": {"base_url": "http://127.0.0.1:8080/v1", "api_key_env": ""},
    # The endpoint the demo notebooks' stored answers were recorded from: they replay offline.
    "demo": {"base_url": "http://127.0.0.1:8765/v1", "api_key_env": "", "model": "nbchat-demo"},
    # Google Colab's model proxy: its URL is $MODEL_PROXY_HOST + /models/openapi (`_colab`).
    "colab": {"api_key_env": "MODEL_PROXY_API_KEY", "model": "google/gemini-2.5-flash"},
}
COLAB_HOST = "MODEL_PROXY_HOST"  # set by Google Colab: the model proxy's URL


def colab_url(environ: Mapping[str, str]) -> str:
    """The base URL of Colab's model proxy (its key is paired with this host only)."""
    host = environ.get(COLAB_HOST, "").strip().rstrip("/")
    if not host:
        raise ConfigError(
            f"Profile 'colab' needs ${COLAB_HOST}, which Google Colab sets: run the notebook "
            "in Colab, or set it to the model proxy's URL."
        )
    return f"{host}/models/openapi"
