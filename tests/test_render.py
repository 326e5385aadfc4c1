"""Output bundles: what a saved notebook shows without a kernel."""

from __future__ import annotations

import json

import pytest
from nbfactory import make_record, make_system_record

from nbchat.record import RECORD_MIME
from nbchat.render import (
    answer_bundle,
    escape_markdown,
    footer,
    partial_bundle,
    raw_bundle,
    system_bundle,
    with_folds,
)


def test_answer_bundle_has_markdown_plain_and_the_record():
    record = make_record("Hi", "**Hello**", usage=(31, 212))
    data, metadata = answer_bundle(record)
    assert data["text/markdown"].startswith("**Hello**")
    assert "31 → 212 tokens" in data["text/markdown"]
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
    assert "incomplete, not stored" in data["text/markdown"]


def test_system_and_raw_bundles():
    data, _ = system_bundle(make_system_record("Line one\n\nLine three", thread="t"))
    assert "> Line one\n>\n> Line three" in data["text/markdown"]
    payload = {"a": [1, 2]}
    raw, metadata = raw_bundle(payload)
    assert raw["application/json"] == payload and json.loads(raw["text/plain"]) == payload
    assert metadata["application/json"] == {"expanded": False}


def rendered(markdown: str) -> str:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark").render(markdown)


@pytest.mark.parametrize("fence", ["```", "~~~", "````python"])
def test_a_fold_left_inside_an_open_fence_cannot_swallow_the_answer(fence):
    thinking = f"Let me check the report:\n{fence}\nload test: FAILED"
    html = rendered(with_folds([("Thinking", thinking)], "No: do not use it."))
    assert html.index("</details>") < html.index("<p>No: do not use it.</p>")
    assert "load test: FAILED" in html.split("</details>")[0]


def test_folds_that_close_keep_their_markdown():
    html = rendered(with_folds([("Tools", "a *b*"), ("Thinking", "```py\nx = 1\n```")], "Done"))
    assert "<em>b</em>" in html and '<code class="language-py">' in html
    assert html.count("<details>") == 2 and html.rstrip().endswith("<p>Done</p>")


def test_escaped_text_holds_no_tag_even_after_a_bare_url():
    hostile = "http://m/<img src=x onerror=alert(1)//> *b* [l](javascript:x) & \x1b[2J"
    escaped = escape_markdown(hostile)
    assert "<" not in escaped and ">" not in escaped and "\x1b" not in escaped
    assert escaped.startswith("http://m/&lt;img") and "\\*b\\*" in escaped and "&amp;" in escaped
    html = rendered(escaped)
    assert "<img" not in html and "<em>" not in html and "<a " not in html


def test_a_hostile_model_name_in_the_footer_stays_text():
    record = make_record("q", "a", model="http://m/<img src=x onerror=alert(1)//>")
    markdown = answer_bundle(record)[0]["text/markdown"]
    assert "<img" not in markdown and "&lt;img" in markdown


@pytest.mark.parametrize(
    "thinking",
    ["\\begin{x}\n\n```\nopen", "\t```\nx\r\n\r\n<img src=x onerror=alert(1)> $a$", "> q\n> ```\n"],
)
def test_a_fold_no_scan_is_sure_of_still_closes_before_the_answer(thinking):
    markdown = with_folds([("Thinking", thinking)], "The <b>answer</b>")
    html = rendered(markdown)
    assert html.index("</details>") < html.index("The &lt;b&gt;answer")
    assert "<img" not in html and "<b>" not in html
