"""A tool's result as a model reads it (`mcp.results`): text parts, structured content as JSON,
images and resources as summaries, the isError flag."""

from __future__ import annotations

import base64
import json

from nbchat.mcp.results import IS_ERROR, result_text

PNG = base64.b64encode(b"x" * 2_500).decode()


def text(value: str) -> dict:
    return {"type": "text", "text": value}


def test_text_parts_are_the_text() -> None:
    assert result_text({"content": [text("a"), text("b")]}) == ("a\nb", False)


def test_structured_content_is_json_when_there_is_no_text() -> None:
    structured = {"mean": 2.5, "ok": True}
    assert result_text({"content": [], "structuredContent": structured}) == (
        json.dumps(structured),
        False,
    )
    mirrored = {"content": [text('{"mean": 2.5}')], "structuredContent": {"mean": 2.5}}
    assert result_text(mirrored) == ('{"mean": 2.5}', False), "the text, not twice"


def test_images_audio_and_resources_are_summaries() -> None:
    result = {
        "content": [
            {"type": "image", "data": PNG, "mimeType": "image/png"},
            {"type": "audio", "data": "AAAA", "mimeType": "audio/wav"},
            {"type": "resource_link", "uri": "file:///a.txt", "name": "a"},
            {"type": "resource", "resource": {"uri": "file:///b.txt", "text": "inside b"}},
            {"type": "resource", "resource": {"uri": "file:///c.bin", "blob": PNG}},
            {"type": "video"},
            "junk",
        ]
    }
    assert result_text(result)[0].splitlines() == [
        "[image: image/png, 2 kB]",
        "[audio: audio/wav, 3 B]",
        "[resource link: file:///a.txt (a)]",
        "inside b",
        "[resource: file:///c.bin, unknown type, 2 kB]",
        "[video content]",
        "[a content part that is not an object]",
    ]


def test_an_error_result_says_so() -> None:
    assert result_text({"content": [text("no such file")], "isError": True}) == (
        f"{IS_ERROR}no such file",
        True,
    )
    assert result_text({"isError": True}) == (f"{IS_ERROR}(no message)", True)
    assert result_text({"isError": "yes"})[1] is False, "only true is the flag"
