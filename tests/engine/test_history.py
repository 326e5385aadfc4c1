"""The rows of ``%chat history``: every message whole, tool calls and results named, thinking
that goes back shown, and what ``%chat reset`` says a cell would send."""

from __future__ import annotations

import base64
import io

from PIL import Image

from nbchat.engine.history import HistoryRow, history_rows, reset_line


def png_url(width: int, height: int) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


CALL = {"id": "call_1", "type": "function", "function": {"name": "level", "arguments": "{}"}}


def test_each_message_is_a_row_with_its_calls_results_and_thinking():
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Look:"}, {
            "type": "image_url", "image_url": {"url": png_url(1024, 512)}}]},
        {"role": "assistant", "content": None, "tool_calls": [CALL],
         "reasoning_content": "I should call level."},
        {"role": "tool", "tool_call_id": "call_1", "content": "4.2"},
        {"role": "tool", "tool_call_id": "call_9", "content": "lost"},
        {"role": "assistant", "content": "It is 4.2 m.\n\nHigh water."},
    ]  # fmt: skip
    rows = history_rows(messages)
    assert [(row.number, row.role) for row in rows] == [
        (1, "system"), (2, "user"), (3, "assistant"), (4, "tool"), (5, "tool"), (6, "assistant"),
    ]  # fmt: skip
    assert rows[1].text.startswith("Look:[PNG image, 1024×512, ")
    assert rows[1].tokens == 1 + 85 + 170 * 2, "the image by its tiles"
    assert rows[2].calls == ("level({})",) and rows[2].preview == "→ level({})"
    assert rows[2].thinking == "I should call level." and not rows[2].complete
    assert rows[2].whole == "(thinking, sent back) I should call level.\n→ level({})"
    assert rows[3].preview == "level({}) → 4.2" and rows[3].complete
    assert rows[3].whole == "result of level({}):\n4.2"
    assert rows[4].result_of == "?", "a result whose call is not above it"
    assert rows[5].preview == "It is 4.2 m. High water." and not rows[5].complete
    assert rows[5].whole == "It is 4.2 m.\n\nHigh water."


def test_results_name_their_own_call_when_ids_are_repeated_or_missing():
    def level(station: str, call_id: str | None) -> dict:
        call = {"type": "function", "function": {"name": "level", "arguments": station}}
        return call if call_id is None else {"id": call_id, **call}

    for ids in (["dup", "dup"], [None, None], ["call_0", "call_1"]):
        both = [level("B", ids[0]), level("C", ids[1])]
        messages = [
            {"role": "user", "content": "Both?"},
            {"role": "assistant", "content": None, "tool_calls": both},
            {"role": "tool", "tool_call_id": ids[0] or "", "content": "4.2"},
            {"role": "tool", "tool_call_id": ids[1] or "", "content": "1.1"},
            # a later round that numbers its calls from 0 again
            {"role": "assistant", "content": None, "tool_calls": [level("D", ids[0])]},
            {"role": "tool", "tool_call_id": ids[0] or "", "content": "9.9"},
        ]  # fmt: skip
        results = [row.preview for row in history_rows(messages) if row.role == "tool"]
        assert results == ["level(B) → 4.2", "level(C) → 1.1", "level(D) → 9.9"], ids


def test_a_long_message_is_clipped_in_its_preview_only():
    text = "word " * 40
    (row,) = history_rows([{"role": "user", "content": text}])
    assert len(row.preview) == 70 and row.preview.endswith("…")
    assert row.whole == text and not row.complete and row.tokens == 50
    assert HistoryRow(number=1, role="user", text="", tokens=1).whole == ""


def test_reset_says_what_a_cell_would_send_of_each_thread():
    assert reset_line(3, None, {"a": 2, "b": 1, "c": 0}, file=True) == (
        "Forgot 3 turns of every thread run in this kernel; the saved notebook's answers count "
        "in their place until the cells run again. A %%chat cell here would now send 2 earlier "
        "turns of thread 'a', 1 earlier turn of thread 'b', no earlier turn of thread 'c' "
        "(%chat history lists them; %%chat --new starts a thread afresh)."
    )
    assert "would now send no earlier turn (" in reset_line(0, None, {}, file=False)
