"""The output marker (`metadata["nbchat"]`): written by one type, read back by one reader, the
same JSON nbchat 0.2 wrote, and a malformed field never breaks a reader."""

from __future__ import annotations

import pytest

from nbchat.store.marker import OutputMarker


@pytest.mark.parametrize(
    ("marker", "written"),
    [
        (OutputMarker(thread="t", replayed=False), {"thread": "t", "replayed": False}),
        (OutputMarker(thread="t"), {"thread": "t"}),
        (OutputMarker(incomplete=True), {"incomplete": True}),
        (OutputMarker(raw=True), {"raw": True}),
        (OutputMarker(raw=True, record=2), {"raw": True, "record": 2}),
        (
            OutputMarker(answered=5, replayed_items=2),
            {"batch": True, "answered": 5, "replayed": 2},
        ),
        (OutputMarker(note=True), {"note": True}),
    ],
)
def test_each_kind_of_output_is_written_as_0_2_wrote_it_and_read_back(marker, written):
    assert marker.to_json() == {"nbchat": written}
    assert OutputMarker.of({"metadata": marker.to_json()}) == marker


@pytest.mark.parametrize(
    ("metadata", "answers"),
    [
        ({"nbchat": {"thread": "t", "replayed": True}}, (1, 1)),
        ({"nbchat": {"thread": "t", "replayed": False}}, (1, 0)),
        ({"nbchat": {"replayed": False}}, (1, 0)),  # a --no-cache answer
        ({"nbchat": {"thread": "t"}}, (0, 0)),  # a system prompt
        ({"nbchat": {"batch": True, "answered": 5, "replayed": 2}}, (5, 2)),
        ({"nbchat": {"batch": True, "answered": "x", "replayed": -1}}, (0, 0)),
        ({"nbchat": {"replayed": "yes", "thread": 3}}, (0, 0)),
    ],
)
def test_what_an_output_stands_for(metadata, answers):
    marker = OutputMarker.of({"metadata": metadata})
    assert marker is not None and marker.answers == answers


@pytest.mark.parametrize(
    "output", [{}, {"metadata": None}, {"metadata": {"nbchat": []}}, "text", None, {"metadata": 1}]
)
def test_an_output_without_a_marker_or_with_a_broken_one_has_none(output):
    assert OutputMarker.of(output) is None


def test_a_raw_view_says_it_holds_the_record_only_with_a_schema_number():
    assert OutputMarker.of({"metadata": {"nbchat": {"raw": True, "record": True}}}).record is None
    assert OutputMarker.of({"metadata": {"nbchat": {"raw": True, "record": 1}}}).record == 1
