"""Thinking written into the answer between ``<think>`` and ``</think>``.

DeepSeek-R1 and Qwen served without a reasoning parser (Together, Ollama, plain vLLM or
llama.cpp) put their thinking in ``content``, opening the answer with ``<think>``. When the tags
open the answer (after blank space at most), what they hold is thinking and the rest is the
answer; a ``<think>`` never closed is thinking cut off. Tags may arrive split across chunks, so
a stream's text is fed in piece by piece (`ThinkTags`) and held back only while it could still
be a tag; an answer that does not open with the tag is passed on untouched.
"""

from __future__ import annotations

__all__ = ["ThinkTags", "split_thinking"]

OPEN, CLOSE = "<think>", "</think>"


class ThinkTags:
    """Splits one answer's text as it arrives: `feed` returns the new (answer, thinking)."""

    __slots__ = ("_held", "state")

    def __init__(self) -> None:
        self.state = "start"  # start (undecided), inside (thinking), after (closed), answer
        self._held = ""

    @property
    def done(self) -> bool:
        """Whether every further piece is answer text as it is."""
        return self.state == "answer"

    def feed(self, text: str) -> tuple[str, str]:
        """The answer text and the thinking that ``text`` (the next piece) completes."""
        if self.state == "start":
            return self._start(text)
        if self.state == "inside":
            return self._inside(text)
        if self.state == "after":  # the blank space between the thinking and the answer
            text = text.lstrip()
            if text:
                self.state = "answer"
            return text, ""
        return text, ""

    def _start(self, text: str) -> tuple[str, str]:
        held = self._held + text
        opening = held.lstrip()
        if len(opening) < len(OPEN) and OPEN.startswith(opening):
            self._held = held  # blank, or what may be the start of the tag: wait
            return "", ""
        self._held = ""
        if opening.startswith(OPEN):
            self.state = "inside"
            return self._inside(opening[len(OPEN) :])
        self.state = "answer"
        return held, ""

    def _inside(self, text: str) -> tuple[str, str]:
        held = self._held + text
        end = held.find(CLOSE)
        if end >= 0:
            self._held, self.state = "", "after"
            answer, _ = self.feed(held[end + len(CLOSE) :])
            return answer, held[:end]
        keep = _partial_close(held)
        self._held = held[len(held) - keep :] if keep else ""
        return "", held[: len(held) - keep]

    def pending(self) -> tuple[str, str]:
        """What is held back, as the (answer, thinking) it would be if the text ended here."""
        if not self._held:
            return "", ""
        return ("", self._held) if self.state == "inside" else (self._held, "")


def _partial_close(text: str) -> int:
    """How many characters at the end of ``text`` could start ``</think>``."""
    for size in range(min(len(CLOSE) - 1, len(text)), 0, -1):
        if CLOSE.startswith(text[-size:]):
            return size
    return 0


def split_thinking(text: str) -> tuple[str, str] | None:
    """(answer, thinking) of a whole answer that opens with ``<think>``, else None."""
    if not text.lstrip().startswith(OPEN):
        return None
    tags = ThinkTags()
    answer, thinking = tags.feed(text)
    more_answer, more_thinking = tags.pending()
    return answer + more_answer, thinking + more_thinking
