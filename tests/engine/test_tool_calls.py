"""Running a model's tool calls (`engine.tool_calls`): only offered functions run, arguments are
JSON checked against the signature, every failure goes back to the model as one line, Ctrl-C
is never caught."""

from __future__ import annotations

import datetime
import itertools
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import pydantic
import pytest

from nbchat.engine.tool_calls import (
    ERROR_LIMIT,
    RESULT_LIMIT,
    ToolBox,
    ToolResult,
    result_text,
    truncate,
)
from nbchat.errors import ConfigError


@dataclass
class Point:
    x: float
    y: float = 0.0


class City(pydantic.BaseModel):
    name: str
    founded: datetime.date


CALLS: list[tuple[str, Any]] = []  # what the functions below were called with, in order


def get_weather(city: str, unit: Literal["C", "F"] = "C") -> str:
    """Weather in a city."""
    CALLS.append(("get_weather", (city, unit)))
    return f"{city}: 21 {unit}"


def distance(a: Point, b: Point = Point(0, 0)) -> float:  # noqa: B008 - a default to keep
    """Distance between points."""
    CALLS.append(("distance", (a, b)))
    return ((a.x - b.x) ** 2 + (a.y - b.y) ** 2) ** 0.5


def divide(a: float, b: float) -> float:
    """a / b."""
    return a / b


def fail(message: str) -> None:
    """Raise."""
    raise ValueError(message)


@pytest.fixture(autouse=True)
def no_calls_yet():
    CALLS.clear()


def call(name: str, arguments: Any, call_id: str = "call_1") -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


BOX = ToolBox([get_weather, distance, divide, fail])


def test_a_successful_call():
    result = BOX.call(call("get_weather", '{"city": "Paris", "unit": "F"}'))
    assert result == ToolResult(
        call_id="call_1",
        name="get_weather",
        arguments='{"city": "Paris", "unit": "F"}',
        content="Paris: 21 F",
        failed=False,
        elapsed_s=result.elapsed_s,
    )
    assert result.message() == {"role": "tool", "tool_call_id": "call_1", "content": "Paris: 21 F"}
    assert CALLS == [("get_weather", ("Paris", "F"))]


def test_arguments_are_coerced_per_the_hints_and_defaults_left_to_the_function():
    result = BOX.call(call("distance", '{"a": {"x": "3", "y": 4}}'))
    assert result.content == "5.0"
    assert [("distance", (Point(3.0, 4.0), Point(0, 0)))] == CALLS
    assert CALLS[0][1][1] is distance.__defaults__[0]  # the function's own default object


def test_the_box_offers_its_specs_sorted():
    assert BOX.names == ["distance", "divide", "fail", "get_weather"]
    assert [s["function"]["name"] for s in BOX.specs] == BOX.names
    assert "divide" in BOX and "eval" not in BOX and len(BOX) == 4
    BOX.specs[0]["function"]["name"] = "changed"  # a copy
    assert BOX.specs[0]["function"]["name"] == "distance"


# -- what goes back to the model when the call cannot run ---------------------------------------


def failures() -> dict[str, dict[str, Any]]:
    return {
        "Error: there is no tool named 'eval'; the tools: distance, divide, fail, get_weather": (
            call("eval", '{"source": "1+1"}')
        ),
        "Error: get_weather: arguments are not valid JSON (Expecting value at line 1 column 9)": (
            call("get_weather", '{"city":}')
        ),
        "Error: get_weather: arguments must be a JSON object, not a list": (
            call("get_weather", '["Paris"]')
        ),
        "Error: get_weather: arguments must be a JSON object in a string, not an integer": (
            call("get_weather", 3)
        ),
        "Error: get_weather: city: Field required": call("get_weather", "{}"),
        "Error: get_weather: unit: Input should be 'C' or 'F'": (
            call("get_weather", '{"city": "Paris", "unit": "K"}')
        ),
        "Error: get_weather: country: not a parameter of this function": (
            call("get_weather", '{"city": "Paris", "country": "FR"}')
        ),
        "Error: distance: a.x: Input should be a valid number, unable to parse string as a "
        "number": call("distance", '{"a": {"x": "far"}}'),
        "Error: there is no tool named ''; the tools: distance, divide, fail, get_weather": (
            {"id": "call_1", "type": "function"}
        ),
    }


def test_failures_are_one_line_results_and_nothing_runs():
    for content, tool_call in failures().items():
        result = BOX.call(tool_call)
        assert result.content == content
        assert result.failed
        assert result.elapsed_s == 0.0
        assert result.message()["content"] == content
    assert CALLS == []


def test_a_tool_call_that_is_not_an_object():
    result = BOX.call("get_weather(Paris)")
    assert result.failed and result.call_id == "" and result.name == ""
    assert result.content.startswith("Error: there is no tool named ''")


def test_model_output_is_never_evaluated():
    hostile = '{"city": __import__("os").system("touch /tmp/pwned")}'
    result = BOX.call(call("get_weather", hostile))
    assert result.content.startswith("Error: get_weather: arguments are not valid JSON")
    assert CALLS == []
    assert BOX.call(call("__import__", '{"name": "os"}')).failed


def test_arguments_nested_too_deeply_or_with_a_giant_number():
    result = BOX.call(call("get_weather", "[" * 100_000 + "]" * 100_000))
    assert result.content == "Error: get_weather: arguments are nested too deeply to read"
    result = BOX.call(call("divide", '{"a": ' + "9" * 5000 + ', "b": 1}'))
    assert result.content.startswith("Error: divide: arguments cannot be read (Exceeds the limit")


def test_arguments_sent_as_an_object_or_as_nothing():
    assert BOX.call(call("get_weather", {"city": "Oslo"})).content == "Oslo: 21 C"
    assert BOX.call(call("get_weather", {"city": "Oslo"})).arguments == '{"city": "Oslo"}'

    def now() -> float:
        return time.time()

    noarg = ToolBox([now])
    assert not noarg.call(call("now", "")).failed
    assert not noarg.call(call("now", "  ")).failed


# -- exceptions ---------------------------------------------------------------------------------


def test_an_exception_is_the_tools_result_without_traceback():
    result = BOX.call(call("divide", '{"a": 1, "b": 0}'))
    assert result.content == "ZeroDivisionError: float division by zero"
    assert result.failed
    result = BOX.call(call("fail", '{"message": "no such city"}'))
    assert result.content == "ValueError: no such city"


def test_an_exception_message_is_clipped():
    result = BOX.call(call("fail", json.dumps({"message": "x" * 5000})))
    assert result.content == "ValueError: " + "x" * (ERROR_LIMIT - 1) + "…"


def test_an_exception_without_a_message_or_with_a_broken_one():
    class Broken(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no")

    def quiet() -> None:
        raise KeyError

    def broken() -> None:
        raise Broken()

    box = ToolBox([quiet, broken])
    assert box.call(call("quiet", "{}")).content == "KeyError"
    assert box.call(call("broken", "{}")).content == "Broken"


def test_keyboard_interrupt_and_system_exit_are_never_caught():
    def interrupted() -> None:
        raise KeyboardInterrupt

    def leaves() -> None:
        sys.exit(3)

    box = ToolBox([interrupted, leaves])
    with pytest.raises(KeyboardInterrupt):
        box.call(call("interrupted", "{}"))
    with pytest.raises(SystemExit):
        box.call(call("leaves", "{}"))
    with pytest.raises(KeyboardInterrupt):
        box.call(call("interrupted", "{}", "a"))


# -- results ------------------------------------------------------------------------------------


class Unprintable:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")


def test_results_as_text():
    assert result_text("as is\n") == "as is\n"
    assert result_text({"b": [1, 2.5], "a": None}) == '{"b": [1, 2.5], "a": null}'
    assert result_text(None) == "null"
    assert result_text(Point(1, 2)) == '{"x": 1, "y": 2}'
    assert result_text(City(name="Oslo", founded=datetime.date(1040, 1, 1))) == (
        '{"name": "Oslo", "founded": "1040-01-01"}'
    )
    assert result_text({"when": datetime.datetime(2024, 5, 1, 12, 0)}) == (
        '{"when": "2024-05-01T12:00:00"}'
    )
    assert result_text({1, 2}) in ("[1, 2]", "[2, 1]")
    assert result_text("ünïcode") == "ünïcode"
    assert result_text(["ünïcode"]) == '["ünïcode"]'


def test_results_without_json_form():
    class Opaque:
        def __repr__(self) -> str:
            return "<Opaque 7>"

    assert result_text(Opaque()) == "<Opaque 7>"
    with pytest.raises(RuntimeError, match="no repr"):  # the call's failure (below)
        result_text(Unprintable())
    loop: list[Any] = []
    loop.append(loop)
    assert result_text(loop) == "[[...]]"


class Computed(pydantic.BaseModel):
    x: int = 1

    @pydantic.computed_field  # type: ignore[prop-decorator]
    @property
    def broken(self) -> int:
        raise RuntimeError("computed boom")


class Checked(pydantic.BaseModel):
    x: int

    @pydantic.field_validator("x")
    @classmethod
    def never(cls, value: int) -> int:
        raise RuntimeError("validator boom")  # not a ValueError: pydantic lets it through


def failing_generator(error: type[Exception]) -> Iterator[int]:
    yield 1
    raise error("gen boom")


def deeply_nested() -> list[Any]:
    value: list[Any] = []
    for _ in range(100_000):
        value = [value]
    return value


def test_a_result_that_fails_to_become_text_is_the_calls_error_result():
    def computed() -> Computed:
        return Computed()

    def generator() -> Iterator[int]:
        return failing_generator(RuntimeError)

    def generator_value_error() -> Iterator[int]:
        return failing_generator(ValueError)  # not taken for "no JSON form"

    def unprintable() -> Unprintable:
        return Unprintable()

    def nested() -> list[Any]:
        return deeply_nested()

    def checked(value: Checked) -> int:
        return value.x

    box = ToolBox([computed, generator, generator_value_error, unprintable, nested, checked])
    expected = {
        "computed": "RuntimeError: computed boom",
        "generator": "RuntimeError: gen boom",
        "generator_value_error": "ValueError: gen boom",
        "unprintable": "RuntimeError: no repr",
        "nested": "RecursionError: maximum recursion depth exceeded",
        "checked": "RuntimeError: validator boom",
    }
    for name, content in expected.items():
        arguments = '{"value": {"x": 1}}' if name == "checked" else "{}"
        result = box.call(call(name, arguments))
        assert result.failed, name
        assert result.content.startswith(content), (name, result.content)
        assert result.message()["content"] == result.content


def test_a_returned_generator_is_read_as_far_as_the_content_can_show():
    read = itertools.count()

    def many() -> Iterator[int]:  # endless, to a function that cannot tell
        return (next(read) for _ in range(1_000_000))

    def few() -> Iterator[str]:
        return iter(["a", "b"])

    result = ToolBox([many], limit=100).call(call("many", "{}"))
    assert next(read) == 51, "100 characters show at most 51 items"
    assert not result.failed and result.content.startswith("[0, 1, 2, ")
    assert result.content.endswith(" characters cut]") and result.cut > 0
    assert ToolBox([few]).call(call("few", "{}")).content == '["a", "b"]'


def test_truncation_says_how_much_was_cut():
    assert truncate("abc", 3) == ("abc", 0)
    assert truncate("abcdef", 4) == ("abcd\n[truncated: 2 of 6 characters cut]", 2)

    def big() -> str:
        return "y" * 50_000

    result = ToolBox([big]).call(call("big", "{}"))
    assert result.content == "y" * RESULT_LIMIT + "\n[truncated: 30,000 of 50,000 characters cut]"
    assert result.cut == 30_000
    assert ToolBox([big], limit=10).call(call("big", "{}")).cut == 49_990


def test_preview_is_one_safe_line():
    def shout() -> str:
        return "line one\nline two\x1b[31m " + "z" * 200

    result = ToolBox([shout]).call(call("shout", "{}"))
    assert "\n" not in result.preview and "\x1b" not in result.preview
    assert result.preview.startswith("line one line two\ufffd[31m z")
    assert len(result.preview) == 100 and result.preview.endswith("…")


def test_elapsed_time_is_the_functions():
    def slow() -> str:
        time.sleep(0.05)
        return "done"

    result = ToolBox([slow]).call(call("slow", "{}"))
    assert 0.05 <= result.elapsed_s < 2


# -- secrets and boxes --------------------------------------------------------------------------


def test_a_secret_is_redacted_before_the_result_is_cut():
    from nbchat.wire.redaction import Redactor

    key = "sk-live-0123456789abcdefghij"

    def leaky() -> str:
        return "x" * 16 + key

    def failing() -> str:
        raise ValueError("y" * (ERROR_LIMIT - 4) + key)

    redactor = Redactor(key)
    box = ToolBox([leaky, failing], limit=20)
    for name in ("leaky", "failing"):
        result = box.call(call(name, "{}"), redactor.text)
        assert "sk-l" not in result.content and "sk-" not in result.content, result.content


def test_an_empty_box_and_a_box_with_two_functions_of_one_name():
    assert (
        ToolBox([]).call(call("x", "{}")).content
        == "Error: there is no tool named 'x'; the tools: none"
    )

    def get_weather(city: str) -> str:
        return city

    with pytest.raises(ConfigError):
        ToolBox([globals()["get_weather"], get_weather])


# -- tools of MCP servers ----------------------------------------------------------------------


def test_an_mcp_tool_runs_on_its_server_by_the_name_it_is_sent_as():
    from nbchat.mcp.connection import Outcome

    from support.mcp_fake import FakeHub, text_result, tool

    def read(path: str) -> str:
        """The notebook's read."""
        return "notebook " + path

    hub = FakeHub(
        {"files": [tool("read"), tool("stat")]},
        answers={"stat": Outcome(text_result("no such file hub-secret", error=True))},
    )
    offered = ToolBox([read], mcp=hub.offer("mcp:files"))
    assert offered.unlisted and hub.listed == [], "naming the tools asks no server"
    box = offered.listed()
    assert box.names == ["files__read", "read", "stat"] and not box.unlisted
    assert box.origins() == {"files__read": ["files", "read"], "stat": ["files", "stat"]}
    assert [spec["function"]["name"] for spec in box.specs] == box.names
    assert box.call(call("read", '{"path": "a"}')).content == "notebook a"
    remote = box.call(call("files__read", '{"path": "a"}'))
    assert (remote.content, remote.failed, remote.elapsed_s) == ("read ok", False, 0.001)
    flagged = box.call(call("stat", "{}"))
    assert (flagged.content, flagged.failed) == ("Error (isError): no such file [redacted]", True)
    refused = box.call(call("stat", "[1]"))
    assert refused.content == "Error: stat: arguments must be a JSON object, not a list"
    assert hub.called == [("files", "read", {"path": "a"}), ("files", "stat", {})]


def test_a_servers_protocol_error_is_the_calls_result_and_a_server_failure_is_raised():
    from nbchat.errors import McpServerError
    from nbchat.mcp.connection import Outcome

    from support.mcp_fake import FakeHub, tool

    hub = FakeHub(
        {"files": [tool("bad"), tool("dead")]},
        answers={
            "bad": Outcome(failure="error", detail="MCPError: Invalid params"),
            "dead": McpServerError("MCP server 'files' stopped during dead"),
        },
    )
    box = ToolBox(mcp=hub.offer("mcp:files")).listed()
    result = box.call(call("bad", "{}"))
    assert (result.content, result.failed) == ("Error: MCPError: Invalid params", True)
    with pytest.raises(McpServerError):
        box.call(call("dead", "{}"))


def test_mcp_calls_start_together_and_unknown_names_never_reach_a_server():
    from support.mcp_fake import FakeHub, tool

    hub = FakeHub({"files": [tool("read")]})
    box = ToolBox(mcp=hub.offer("mcp:files")).listed()
    calls = [call("read", "{}"), call("nope", "{}"), call("read", "not json"), call("read", "{}")]
    started = box.start(calls)
    assert sorted(started) == [0, 3] and len(hub.called) == 2
    results = [box.call(c, pending=started.get(i)) for i, c in enumerate(calls)]
    assert [r.content for r in results] == [
        "read ok",
        "Error: there is no tool named 'nope'; the tools: read",
        "Error: read: arguments are not valid JSON (Expecting value at line 1 column 1)",
        "read ok",
    ]
    assert len(hub.called) == 2, "each call ran once, the unknown one never"
    stored = ToolBox(mcp=hub.offer("mcp:files")).listed().functions_only()
    assert stored.names == [] and stored.origins() is None
