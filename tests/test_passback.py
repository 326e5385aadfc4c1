"""What goes back to a provider besides the standard fields (`nbchat.wire.messages.wire`), where
(`nbchat.engine.reasoning.ReasoningPolicy`), and the padding a thinking model needs on a thread that
did not think (`pad_reasoning`)."""

from __future__ import annotations

from typing import Any

import pytest

from nbchat.engine.reasoning import ReasoningPolicy
from nbchat.engine.settings import Settings
from nbchat.errors import BadRequestError
from nbchat.wire.messages import carries_passback, pad_reasoning, reasoning_of, wire, wire_turn

DEEPSEEK = "https://api.deepseek.com/v1"
LOCAL = "http://127.0.0.1:8000/v1"
PASS_IT_BACK = "The reasoning_content in the thinking mode must be passed back to the API."
NO_SIGNATURE = "Function call is missing a thought_signature in functionCall parts."
UNEXPECTED = "Additional properties are not allowed ('extra_content' was unexpected)"
SIGNATURE = {"google": {"thought_signature": "c2ln"}}
CALL = {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}}
SIGNED = {**CALL, "extra_content": SIGNATURE}
TYPED = [
    {"type": "thinking", "thinking": [{"type": "text", "text": "Salt."}]},
    {"type": "text", "text": "Rocks."},
]


def settings(base_url: str = LOCAL, model: str = "m", send: bool | str = "auto") -> Settings:
    return Settings(base_url=base_url, model=model, send_reasoning=send)


def refused(message: str) -> BadRequestError:
    return BadRequestError(f"The server rejected the request (400). {message}", status_code=400)


# -- the two forms of a message ---------------------------------------------------------------


def test_a_tool_calls_provider_fields_go_back_only_with_the_thinking():
    message = {"role": "assistant", "content": None, "tool_calls": [SIGNED]}
    assert wire(message)["tool_calls"] == [CALL]
    assert wire(message, reasoning=True)["tool_calls"] == [SIGNED]
    assert message["tool_calls"] == [SIGNED], "the stored message is not changed"
    assert carries_passback(message)
    plain = {"role": "assistant", "content": None, "tool_calls": [{**CALL, "index": 0}]}
    assert not carries_passback(plain) and wire(plain) == wire(plain, reasoning=True)


def test_typed_parts_go_back_as_text_or_as_parts_with_their_thinking():
    message = {"role": "assistant", "content": TYPED}
    assert reasoning_of(message) == ("content", "Salt.")
    assert wire(message) == {"role": "assistant", "content": "Rocks."}
    assert wire(message, reasoning=True) == message, "no thinking field beside the parts"
    text_only = {"role": "assistant", "content": [TYPED[1]]}
    assert wire(text_only, reasoning=True) == {"role": "assistant", "content": "Rocks."}
    user = {"role": "user", "content": [{"type": "text", "text": "Hi"}]}
    assert wire(user) == user, "a user's parts (text, images) are never flattened"


def test_a_turn_with_provider_fields_has_two_forms():
    turn = [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": None, "tool_calls": [SIGNED]},
        {"role": "tool", "tool_call_id": "a", "content": "sunny"},
        {"role": "assistant", "content": "Sunny.", "reasoning_details": [{"type": "x"}]},
    ]
    plain, full = wire_turn(turn), wire_turn(turn, reasoning=True)
    assert plain[1]["tool_calls"] == [CALL] and "reasoning_details" not in plain[3]
    assert full[1]["tool_calls"] == [SIGNED] and full[3]["reasoning_details"] == [{"type": "x"}]


# -- padding ------------------------------------------------------------------------------------


def test_answers_without_thinking_are_padded_and_others_kept():
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "assistant", "content": "4", "reasoning_content": "2 + 2"},
        {"role": "assistant", "content": None, "tool_calls": [CALL], "reasoning_content": ""},
    ]
    padded = pad_reasoning(messages, "reasoning_content")
    assert [m.get("reasoning_content") for m in padded] == [None, " ", "2 + 2", " "]
    assert padded[2] is messages[2] and "reasoning_content" not in messages[1]


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
        (refused(UNEXPECTED), True, False, None),  # a strict endpoint refuses them
        (refused("Unknown field reasoning_details"), True, False, None),
    ],
    ids=["thought_signature", "extra_content", "reasoning_details"],
)
def test_a_400_naming_a_provider_field_teaches_too(error, sent, lesson, pad):
    policy = ReasoningPolicy()
    here = settings(LOCAL, "gemini")
    assert policy.learn(here, error, sent=sent) is lesson
    assert policy.decide(here) is lesson and policy.padding(here) == pad
