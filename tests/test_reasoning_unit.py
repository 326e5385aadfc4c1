"""The reasoning core without a kernel: when earlier thinking goes back (`ReasoningPolicy`), how
streamed thinking is folded apart from the answer (`CompletionBuilder`), and what a message
looks like when it is sent back as context (`wire`, `wire_turn`, `reasoning_of`).

tests/test_reasoning.py drives the same code through a real kernel and the fake server.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from nbchat.engine.reasoning import ReasoningPolicy, check_send_reasoning
from nbchat.engine.settings import Settings
from nbchat.errors import APIError, BadRequestError, ConfigError, NbchatError, ProtocolError
from nbchat.wire.completion import CompletionBuilder, has_answer
from nbchat.wire.messages import REASONING_FIELDS, WIRE_FIELDS, reasoning_of, wire, wire_turn

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


# -- CompletionBuilder: thinking folded apart from the answer ---------------------------------

FULL_META = {"id": "chatcmpl-1", "created": 1, "model": "thinker", "system_fingerprint": "fp"}
# No fingerprint: the builder keeps looking for it, so the first chunks take the checked path.
SHORT_META = {"id": "chatcmpl-1", "created": 1, "model": "thinker"}


def chunk(meta: dict[str, Any], index: int = 0, finish: str | None = None, **delta: Any) -> dict:
    choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
    return {**meta, "object": "chat.completion.chunk", "choices": [choice]}


paths = pytest.mark.parametrize("meta", [FULL_META, SHORT_META], ids=["fast-path", "checked-path"])
fields = pytest.mark.parametrize("field", REASONING_FIELDS)


@paths
@fields
def test_interleaved_thinking_and_answer_are_folded_apart(meta, field):
    builder = CompletionBuilder()
    returned = [
        builder.add(chunk(meta, role="assistant", content="")),
        builder.add(chunk(meta, **{field: "Let me "})),
        builder.add(chunk(meta, **{field: "think. "})),
        builder.add(chunk(meta, content="The answer")),
        builder.add(chunk(meta, **{field: "Check it. "})),
        builder.add(chunk(meta, content=" is 4.")),
        builder.add(chunk(meta, finish="stop")),
    ]
    assert returned == ["", "", "", "The answer", "", " is 4.", ""], "add() returns answer text"
    assert builder.text == "The answer is 4."
    assert builder.reasoning == "Let me think. Check it. "
    message = builder.result()["choices"][0]["message"]
    assert message == {
        "role": "assistant",
        "content": "The answer is 4.",
        field: "Let me think. Check it. ",
    }, "kept under the field it came in, and only that one"


@paths
def test_deepseeks_deltas_with_a_null_partner_field_fold_the_same(meta):
    builder = CompletionBuilder()
    builder.add(chunk(meta, role="assistant", content=None, reasoning_content=""))
    builder.add(chunk(meta, content=None, reasoning_content="Hmm. "))
    builder.add(chunk(meta, content=None, reasoning_content="Yes."))
    assert builder.add(chunk(meta, content="4", reasoning_content=None)) == "4"
    builder.add(chunk(meta, content="", reasoning_content=None, finish="stop"))
    message = builder.result()["choices"][0]["message"]
    assert message == {"role": "assistant", "content": "4", "reasoning_content": "Hmm. Yes."}


@paths
@fields
def test_take_reasoning_hands_out_only_what_is_new_of_the_first_choice(meta, field):
    builder = CompletionBuilder()
    builder.add(chunk(meta, role="assistant", content=""))
    assert builder.take_reasoning() == ""
    builder.add(chunk(meta, **{field: "one "}))
    builder.add(chunk(meta, **{field: "two "}))
    builder.add(chunk(meta, index=1, **{field: "elsewhere "}))
    assert builder.take_reasoning() == "one two "
    assert builder.take_reasoning() == "", "taken once"
    builder.add(chunk(meta, content="answer"))
    assert builder.take_reasoning() == "", "answer text is not thinking"
    builder.add(chunk(meta, **{field: "three"}))
    assert builder.take_reasoning() == "three"
    assert builder.reasoning == "one two three", "the whole thinking stays"
    second = builder.result()["choices"][1]["message"]
    assert second[field] == "elsewhere " and builder.text == "answer"


@paths
@fields
def test_a_stream_that_changes_spelling_keeps_one_field_the_first(meta, field):
    other = next(name for name in REASONING_FIELDS if name != field)
    builder = CompletionBuilder()
    builder.add(chunk(meta, role="assistant", content=""))
    builder.add(chunk(meta, **{field: "first "}))
    builder.add(chunk(meta, **{other: "second"}))
    builder.add(chunk(meta, content="done", finish="stop"))
    message = builder.result()["choices"][0]["message"]
    assert message == {"role": "assistant", "content": "done", field: "first second"}


@paths
def test_empty_thinking_adds_no_field(meta):
    builder = CompletionBuilder()
    builder.add(chunk(meta, role="assistant", content=""))
    builder.add(chunk(meta, reasoning_content=""))
    builder.add(chunk(meta, reasoning=""))
    builder.add(chunk(meta, content="plain", finish="stop"))
    message = builder.result()["choices"][0]["message"]
    assert message == {"role": "assistant", "content": "plain"}
    assert reasoning_of(message) is None


@paths
@pytest.mark.parametrize("thought", [["a list"], {"text": "x"}, 7])
def test_thinking_that_is_not_text_is_refused_and_changes_nothing(meta, thought):
    builder = CompletionBuilder()
    builder.add(chunk(meta, role="assistant", content=""))
    builder.add(chunk(meta, reasoning="kept "))
    before = builder.result()
    with pytest.raises(ProtocolError, match="reasoning"):
        builder.add(chunk(meta, reasoning=thought))
    assert builder.result() == before and builder.take_reasoning() == "kept "


@fields
def test_thinking_alone_is_an_answer_but_a_role_alone_is_not(field):
    builder = CompletionBuilder()
    builder.add(chunk(FULL_META, role="assistant", content=""))
    assert not builder.has_answer
    builder.add(chunk(FULL_META, **{field: "cut off while thinking"}))
    assert builder.has_answer, "a reasoning-only answer cut off by max_tokens is still one"
    assert has_answer(builder.result())


@pytest.mark.parametrize(
    ("message", "finish", "expected"),
    [
        ({"role": "assistant", "content": "", "reasoning_content": "thought"}, None, True),
        ({"role": "assistant", "content": None, "reasoning": "thought"}, None, True),
        ({"role": "assistant", "content": "", "reasoning_content": ""}, None, False),
        ({"role": "assistant", "content": "", "reasoning": None}, None, False),
        ({"role": "assistant", "content": ""}, "length", True),
    ],
)
def test_has_answer_of_a_whole_completion_counts_thinking(message, finish, expected):
    completion = {"choices": [{"index": 0, "message": message, "finish_reason": finish}]}
    assert has_answer(completion) is expected


# -- reasoning_of, wire, wire_turn ------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (None, None),
        ({}, None),
        ({"role": "assistant", "content": "hi"}, None),
        ({"reasoning_content": ""}, None),
        ({"reasoning": ["not", "text"]}, None),
        ({"reasoning": "b"}, ("reasoning", "b")),
        ({"reasoning_content": "a", "reasoning": "b"}, ("reasoning_content", "a")),
        ({"reasoning_content": "", "reasoning": "b"}, ("reasoning", "b")),
    ],
)
def test_reasoning_of_finds_the_first_field_with_text(message, expected):
    assert reasoning_of(message) == expected


EVERYTHING = {
    "role": "assistant",
    "content": "The answer.",
    "name": "helper",
    "refusal": None,
    "annotations": [],
    "audio": None,
    "function_call": None,
    "reasoning_content": "Thinking.",
    "reasoning": "Also thinking.",
    "reasoning_details": [{"type": "reasoning.text", "text": "Thinking."}],
    "provider_specific": {"x": 1},
}


def test_wire_never_sends_unknown_fields_and_thinking_only_when_asked():
    original = copy.deepcopy(EVERYTHING)
    plain = wire(EVERYTHING)
    assert plain == {"role": "assistant", "content": "The answer.", "name": "helper"}
    assert set(plain) <= set(WIRE_FIELDS)
    with_it = wire(EVERYTHING, reasoning=True)
    assert with_it == {
        **plain,
        "reasoning_content": "Thinking.",  # one thinking field, the first found
        "reasoning_details": [{"type": "reasoning.text", "text": "Thinking."}],  # OpenRouter's
    }
    assert original == EVERYTHING, "the stored message is not changed"


@fields
def test_wire_sends_the_thinking_back_in_the_field_it_came_in(field):
    message = {"role": "assistant", "content": "4", field: "2 + 2"}
    assert wire(message, reasoning=True) == {"role": "assistant", "content": "4", field: "2 + 2"}
    assert wire(message) == {"role": "assistant", "content": "4"}


def test_wire_with_reasoning_changes_nothing_for_messages_without_thinking():
    for message in (
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "4", "reasoning_content": ""},
        {"role": "tool", "tool_call_id": "call_1", "content": "21.5"},
    ):
        assert wire(message, reasoning=True) == wire(message)
        assert set(wire(message, reasoning=True)) <= set(WIRE_FIELDS)


def test_wire_fills_null_content_unless_there_are_tool_calls():
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    assert wire({"role": "assistant", "content": None}) == {"role": "assistant", "content": ""}
    assert wire({"role": "assistant"}) == {"role": "assistant", "content": ""}
    assert wire({"role": "assistant", "content": None, "tool_calls": [call]}) == {
        "role": "assistant",
        "content": None,
        "tool_calls": [call],
    }
    assert wire({"role": "assistant", "content": None, "tool_calls": []}) == {
        "role": "assistant",
        "content": "",
    }, "an empty list of calls is no call"


def test_a_streamed_and_a_whole_answer_go_back_the_same():
    builder = CompletionBuilder()
    for piece in ({"role": "assistant", "content": ""}, {"reasoning_content": "Sum. "}):
        builder.add(chunk(FULL_META, **piece))
    builder.add(chunk(FULL_META, content="4", finish="stop"))
    streamed = builder.result()["choices"][0]["message"]
    whole = {
        "role": "assistant",
        "content": "4",
        "reasoning_content": "Sum. ",
        "refusal": None,
        "annotations": [],
    }
    for reasoning in (False, True):
        assert wire(streamed, reasoning=reasoning) == wire(whole, reasoning=reasoning)


def tool_turn(*, answered: bool, thinking: str = "I should look.") -> list[dict[str, Any]]:
    """A turn whose answer called a tool (with or without its result in the turn)."""
    call = {"id": "call_1", "type": "function", "function": {"name": "level", "arguments": "{}"}}
    turn: list[dict[str, Any]] = [
        {"role": "user", "content": "How high?"},
        {"role": "assistant", "content": None, "tool_calls": [call], "reasoning_content": thinking},
    ]
    if answered:
        turn += [
            {"role": "tool", "tool_call_id": "call_1", "content": "4.2"},
            {"role": "assistant", "content": "4.2 m.", "reasoning_content": "Read it."},
        ]
    return turn


def test_wire_turn_keeps_answered_tool_calls_and_their_results():
    turn = tool_turn(answered=True)
    sent = wire_turn(turn)
    assert [m["role"] for m in sent] == ["user", "assistant", "tool", "assistant"]
    assert sent[1] == {"role": "assistant", "content": None, "tool_calls": turn[1]["tool_calls"]}
    assert sent[2] == {"role": "tool", "tool_call_id": "call_1", "content": "4.2"}


def test_wire_turn_drops_tool_calls_nobody_answered():
    sent = wire_turn(tool_turn(answered=False))
    assert sent == [
        {"role": "user", "content": "How high?"},
        {"role": "assistant", "content": ""},
    ]


def test_wire_turn_sends_the_thinking_of_every_answer_only_when_asked():
    turn = tool_turn(answered=True)
    without = wire_turn(turn)
    assert not any(reasoning_of(m) for m in without)
    assert all(set(m) <= set(WIRE_FIELDS) for m in without)
    with_it = wire_turn(turn, reasoning=True)
    assert [reasoning_of(m) for m in with_it] == [
        None,
        ("reasoning_content", "I should look."),
        None,
        ("reasoning_content", "Read it."),
    ]
    unanswered = wire_turn(tool_turn(answered=False), reasoning=True)[1]
    assert unanswered == {"role": "assistant", "content": "", "reasoning_content": "I should look."}
