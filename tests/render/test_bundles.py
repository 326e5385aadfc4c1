"""Output bundles: what a saved notebook shows without a kernel."""

from __future__ import annotations

import json
import re

import pytest

from nbchat.render.bundles import answer_bundle, footer, partial_bundle, raw_bundle, system_bundle
from nbchat.store.record import RECORD_MIME

from support.html_check import CODE, HOSTILE, PAYLOAD, executable
from support.nbfactory import make_record, make_system_record


def test_answer_bundle_has_html_plain_and_the_record_and_no_markdown():
    record = make_record("Hi", "**Hello**", usage=(31, 212))
    data, metadata = answer_bundle(record)
    assert data["text/html"].startswith(
        '<div class="nbchat tex2jax_ignore mathjax_ignore"><p><strong>Hello'
    )
    assert "31 → 212 tokens" in data["text/html"]
    assert "text/markdown" not in data  # a frontend that preferred it would parse model Markdown
    assert data[RECORD_MIME] == record.to_json()
    assert "application/json" not in data
    assert metadata["nbchat"]["replayed"] is False


def test_replayed_and_unstored_answers_say_so():
    record = make_record("Hi", "Hello")
    assert "replayed" in footer(record, replayed=True)
    data, _ = answer_bundle(record, store=False)
    assert RECORD_MIME not in data and "not stored" in data["text/plain"]


def test_length_and_content_filter_are_plain_in_the_footer():
    assert "cut off" in footer(make_record("Hi", "Hel", finish_reason="length"))
    assert "content filter" in footer(make_record("Hi", "", finish_reason="content_filter"))


def test_partial_bundle_never_carries_a_record():
    data, metadata = partial_bundle("Half an ans")
    assert RECORD_MIME not in data and metadata["nbchat"]["incomplete"] is True
    assert "incomplete, not stored" in data["text/html"]


def test_system_and_raw_bundles():
    data, _ = system_bundle(make_system_record("Line one\n\nLine three", thread="t"))
    html = data["text/html"]
    assert "<blockquote><p>Line one</p>\n<p>Line three</p>\n</blockquote>" in html
    payload = {"a": [1, 2]}
    raw, metadata = raw_bundle(payload)
    assert raw["application/json"] == payload and json.loads(raw["text/plain"]) == payload
    assert metadata["application/json"] == {"expanded": False}


def _folds(thinking: str, answer: str = "No: do not use it.") -> str:
    record = make_record("q", answer)
    record.messages[-1]["reasoning_content"] = thinking
    return answer_bundle(record)[0]["text/html"]


@pytest.mark.parametrize("fence", ["```", "~~~", "````python"])
def test_a_fold_left_inside_an_open_fence_cannot_swallow_the_answer(fence):
    html = _folds(f"Let me check the report:\n{fence}\nload test: FAILED")
    assert html.index("</details>") < html.index("<p>No: do not use it.</p>")
    assert "load test: FAILED" in re.sub(r"<[^>]+>", "", html.split("</details>")[0])


def test_folds_keep_their_markdown():
    html = _folds("a *b*\n\n```py\nx = 1\n```", "Done")
    assert "<summary>Thinking · 7 words</summary><p>a <em>b</em></p>" in html
    assert CODE + '<span class="n">x</span>' in html
    assert html.count("<details>") == 1 and "<p>Done</p>" in html.split("</details>")[1]


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_text_is_inert_in_every_bundle(hostile):
    """The answer, its thinking, the footer's model name, a partial answer, a system prompt,
    tool calls and their results: no executable construct."""
    record = make_record("q", hostile, model=hostile)
    record.messages[-1]["reasoning_content"] = hostile
    exchange = [
        {"role": "assistant", "content": hostile, "tool_calls": [_call(hostile)]},
        {"role": "tool", "tool_call_id": "c1", "content": hostile},
    ]
    bundles = [
        answer_bundle(record),
        partial_bundle(hostile, hostile, exchange=exchange, note=hostile),
        system_bundle(make_system_record(hostile)),
    ]
    for data, _ in bundles:
        assert executable(data["text/html"]) == [], data["text/html"]
        assert "\x1b" not in data["text/plain"]


def _call(name: str) -> dict:
    return {"id": "c1", "type": "function", "function": {"name": name, "arguments": name}}


def test_a_hostile_model_name_in_the_footer_stays_text():
    record = make_record("q", "a", model=f"http://m/{PAYLOAD}\\(x\\)")
    html = answer_bundle(record)[0]["text/html"]
    assert "<img" not in html and "&lt;img" in html and executable(html) == []
    assert "tex2jax_process" not in html  # the footer is never typeset


def test_a_structured_answer_shows_as_pretty_json_and_plain_text_keeps_it_exact():
    answer = '{"name": "Brest", "tide": ["high", "low"]}'
    params = {"response_format": {"type": "json_object"}}
    record = make_record("q", answer, params=params)
    data, _ = answer_bundle(record)
    assert (
        '<pre class="highlight" style="margin:1.5em 2em"><code><span class="p">{</span>\n'
        in data["text/html"]
    )
    assert data["text/plain"].startswith(answer)
    assert record.answer == answer


def test_a_structured_answer_that_is_not_json_shows_as_written():
    record = make_record("q", "Sorry, *no*.", params={"response_format": {"type": "json_object"}})
    assert "<em>no</em>" in answer_bundle(record)[0]["text/html"]
