"""The test environment: the fake server's key, the variables no test inherits from the
developer, and what a kernel needs to talk to the fake server."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from support.fake_openai import FakeOpenAI

TEST_KEY = "sk-test-key-0123456789abcdef"
ISOLATED = ("OPENAI_", "NBCHAT_", "DASHSCOPE_", "DEEPSEEK_", "JPY_SESSION_NAME", "MODEL_PROXY_")


def kernel_env(server: FakeOpenAI) -> dict[str, str]:
    """The environment a kernel needs to talk to the fake server."""
    return {
        "OPENAI_BASE_URL": server.base_url,
        "OPENAI_API_KEY": TEST_KEY,
        "NBCHAT_MODEL": "peer-small",
    }
