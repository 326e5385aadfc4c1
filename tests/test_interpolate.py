"""{name} interpolation leaves every other brace alone."""

from __future__ import annotations

import pytest

from nbchat.interpolate import interpolate


class Broken:
    def __str__(self) -> str:
        raise RuntimeError("no")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Summarise {doc}", "Summarise the text"),
        ("{doc}{doc}", "the textthe text"),
        ("keep {missing}", "keep {missing}"),
        ('json {"a": {"b": 1}}', 'json {"a": {"b": 1}}'),
        ("jinja {{doc}}", "jinja {{doc}}"),
        ("code {x!r} {x:>3} {0} {}", "code {x!r} {x:>3} {0} {}"),
        ("set {1, 2} dict {k: v}", "set {1, 2} dict {k: v}"),
        ("n={n}", "n=3"),
        ("bad {broken}", "bad {broken}"),
        ("unbalanced { doc", "unbalanced { doc"),
    ],
)
def test_interpolate(text, expected):
    namespace = {"doc": "the text", "n": 3, "x": 1, "k": 1, "v": 2, "broken": Broken()}
    assert interpolate(text, namespace) == expected
