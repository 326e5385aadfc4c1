"""When earlier thinking goes back to a provider (`nbchat.engine.reasoning.ReasoningPolicy`):
what each endpoint wants, what a refusal teaches, and the padding a thinking model needs on a
thread that did not think.

tests/kernel/test_reasoning.py drives the same code through a real kernel and the fake server."""

from __future__ import annotations

from typing import Any

import pytest

from nbchat.engine.reasoning import ReasoningPolicy, check_send_reasoning
from nbchat.engine.settings import Settings
from nbchat.errors import APIError, BadRequestError, ConfigError, NbchatError

DEEPSEEK = "https://api.deepseek.com/v1"
OPENAI = "https://api.openai.com/v1"
LOCAL = "http://127.0.0.1:8000/v1"
# What DeepSeek's thinking mode says when the thinking was left out, and what its R1 and a
# strict validator (OpenAI's words) say when it was sent.
PASS_IT_BACK = "The reasoning_content in the thinking mode must be passed back to the API."
REMOVE_IT = "Please remove the reasoning_content from your input."
UNEXPECTED = "Additional properties are not allowed ('reasoning' was unexpected) - 'messages.1'"


def settings(base_url: str = LOCAL, model: str = "m", send: bool | str = "auto") -> Settings:
    return Settings(base_url=base_url, model=model, send_reasoning=send)


def refused(message: str, status: int = 400, body: Any = None) -> APIError:
    kind = BadRequestError if status == 400 else APIError
    return kind(
        f"The server rejected the request ({status}). {message}", status_code=status, body=body
    )


# -- ReasoningPolicy.decide -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base_url", "model", "expected"),
    [
        (DEEPSEEK, "deepseek-chat", True),
        ("https://api.deepseek.com", "deepseek-v4-pro", True),
        ("https://API.DeepSeek.com/v1/", "deepseek-chat", True),  # a host has no case
        (DEEPSEEK, "deepseek-reasoner", False),  # R1 refuses earlier thinking
        (OPENAI, "o3-mini", False),
        ("https://dashscope.aliyuncs.com/compatible-mode/v1", "qwen3-max", False),
        # OpenRouter's upstreams continue from their reasoning_details; Gemini's tool calls need
        # their thought signatures (extra_content) back.
        ("https://openrouter.ai/api/v1", "deepseek/deepseek-r1", True),
        ("https://generativelanguage.googleapis.com/v1beta/openai", "gemini-3-pro", True),
        (LOCAL, "deepseek-chat", False),  # the host decides, not the model's name
        ("https://api.deepseek.com.example.net/v1", "deepseek-chat", False),
        ("https://proxy.example.net/api.deepseek.com/v1", "deepseek-chat", False),
        ("https://openrouter.ai.example.net/api/v1", "deepseek/deepseek-r1", False),
    ],
)
def test_auto_sends_it_back_where_the_endpoint_wants_it(base_url, model, expected):
    assert ReasoningPolicy().decide(settings(base_url, model)) is expected


@pytest.mark.parametrize("send", [True, False])
@pytest.mark.parametrize(
    ("base_url", "model"),
    [(DEEPSEEK, "deepseek-chat"), (DEEPSEEK, "deepseek-reasoner"), (OPENAI, "o3")],
)
def test_true_and_false_are_obeyed_and_never_overruled(send, base_url, model):
    policy = ReasoningPolicy()
    fixed = settings(base_url, model, send)
    assert policy.decide(fixed) is send
    for error in (refused(PASS_IT_BACK), refused(REMOVE_IT)):
        assert policy.learn(fixed, error, sent=send) is None
    assert policy.decide(fixed) is send
    assert policy.decide(settings(base_url, model)) is (
        base_url == DEEPSEEK and model != "deepseek-reasoner"
    )


@pytest.mark.parametrize("value", ["yes", "Auto", "", None, 1, 0])
def test_a_setting_other_than_true_false_or_auto_is_refused(value):
    with pytest.raises(ConfigError, match="send_reasoning must be True, False or 'auto'"):
        check_send_reasoning(value)
    with pytest.raises(ConfigError):
        ReasoningPolicy().decide(settings(send=value))


# -- ReasoningPolicy.learn --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "sent", "lesson"),
    [
        (refused(PASS_IT_BACK), False, True),
        (refused(REMOVE_IT), True, False),
        (refused(UNEXPECTED), True, False),  # the other spelling
        (refused("Server said: INVALID FIELD REASONING_CONTENT"), True, False),  # any case
        # named only in the error body, e.g. as the offending parameter
        (
            refused("Bad request", body={"error": {"param": "messages[1].reasoning_content"}}),
            True,
            False,
        ),
    ],
    ids=["left-out", "sent-to-r1", "other-spelling", "upper-case", "in-the-body"],
)
def test_a_400_naming_the_field_teaches_the_other_way_for_that_endpoint_and_model(
    error, sent, lesson
):
    policy = ReasoningPolicy()
    here = settings(LOCAL, "thinker")
    assert policy.learn(here, error, sent=sent) is lesson
    assert policy.decide(here) is lesson
    assert policy.decide(settings(LOCAL + "/", "thinker")) is lesson, "a trailing / is the same"
    assert policy.decide(settings(LOCAL, "other")) is False, "another model did not learn it"
    assert policy.decide(settings("http://127.0.0.1:8001/v1", "thinker")) is False
    assert ReasoningPolicy().decide(here) is False, "nothing outlives the policy (a restart)"


def test_a_lesson_overrides_what_deepseek_is_known_to_want_and_the_last_lesson_wins():
    policy = ReasoningPolicy()
    deepseek = settings(DEEPSEEK, "deepseek-chat")
    assert policy.decide(deepseek) is True
    assert policy.learn(deepseek, refused(REMOVE_IT), sent=True) is False
    assert policy.decide(deepseek) is False
    assert policy.learn(deepseek, refused(PASS_IT_BACK), sent=False) is True
    assert policy.decide(deepseek) is True


@pytest.mark.parametrize(
    "error",
    [
        refused("Invalid value for 'temperature': must be at most 2."),
        refused("This model's maximum context length is 8192 tokens."),
        refused(PASS_IT_BACK, status=422),
        refused(PASS_IT_BACK, status=500),
        NbchatError(PASS_IT_BACK),  # no status at all
    ],
    ids=["other-400", "context-400", "422", "500", "no-status"],
)
def test_other_errors_teach_nothing(error):
    policy = ReasoningPolicy()
    for model, default in (("deepseek-chat", True), ("deepseek-reasoner", False)):
        here = settings(DEEPSEEK, model)
        assert policy.learn(here, error, sent=default) is None
        assert policy.decide(here) is default


def test_a_400_about_reasoning_effort_is_not_about_the_thinking():
    policy = ReasoningPolicy()
    openai = settings(OPENAI, "o3-mini")
    unsupported = "Unsupported parameter: 'reasoning_effort' is not supported with this model."
    body = {"error": {"message": unsupported, "param": "reasoning_effort"}}
    assert policy.learn(openai, refused(unsupported, body=body), sent=False) is None
    assert policy.decide(openai) is False


# -- padding and provider fields ----------------------------------------------------------------

NO_SIGNATURE = "Function call is missing a thought_signature in functionCall parts."
UNEXPECTED_EXTRA_CONTENT = "Additional properties are not allowed ('extra_content' was unexpected)"


def test_deepseek_pads_and_so_does_an_endpoint_whose_400_asked_for_it():
    policy = ReasoningPolicy()
    assert policy.padding(settings(DEEPSEEK, "deepseek-v4-pro")) == "reasoning_content"
    assert policy.padding(settings(DEEPSEEK, "deepseek-reasoner")) is None
    assert policy.padding(settings(DEEPSEEK, "deepseek-chat", send=False)) is None
    here = settings(LOCAL, "thinker")
    assert policy.padding(here) is None
    assert policy.learn(here, refused(PASS_IT_BACK), sent=False) is True
    assert policy.padding(here) == "reasoning_content"


def test_gemini_and_openrouter_are_sent_it_but_not_padded():
    policy = ReasoningPolicy()
    for base_url in (
        "https://generativelanguage.googleapis.com/v1beta/openai",
        "https://openrouter.ai/api/v1",
    ):
        assert policy.decide(settings(base_url)) is True
        assert policy.padding(settings(base_url)) is None


@pytest.mark.parametrize(
    ("error", "sent", "lesson", "pad"),
    [
        (refused(NO_SIGNATURE), False, True, None),  # Gemini wants its signatures
        (refused(UNEXPECTED_EXTRA_CONTENT), True, False, None),  # a strict endpoint refuses them
        (refused("Unknown field reasoning_details"), True, False, None),
    ],
    ids=["thought_signature", "extra_content", "reasoning_details"],
)
def test_a_400_naming_a_provider_field_teaches_too(error, sent, lesson, pad):
    policy = ReasoningPolicy()
    here = settings(LOCAL, "gemini")
    assert policy.learn(here, error, sent=sent) is lesson
    assert policy.decide(here) is lesson and policy.padding(here) == pad
