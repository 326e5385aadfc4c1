"""Structured output in a real kernel: --schema binds a validated object, --json a parsed value;
a wrong answer fails in one line, binds nothing and is not stored; replay after a restart binds
the same object with no request; a server without json_schema is told to use --json."""

from __future__ import annotations

import json

import pytest

from nbchat.store.record import RECORD_MIME

from support.fake_openai import Fault
from support.kernel_driver import Kernel, save_notebook

SHAPES = '''\
import dataclasses
from typing import Literal
from typing_extensions import TypedDict  # pydantic reads typing's only from Python 3.12
from pydantic import BaseModel

class City(BaseModel):
    """A city and its tide."""
    name: str
    population: int
    tide: Literal["semidiurnal", "diurnal"]

@dataclasses.dataclass
class Station:
    code: str
    depth_m: float

class Reading(TypedDict):
    station: str
    level: float

RAW = {"title": "Point", "type": "object", "properties": {"x": {"type": "number"}},
       "required": ["x"], "additionalProperties": False}
'''


@pytest.fixture
def shapes(kernel: Kernel) -> Kernel:
    kernel.run(SHAPES, check=True)
    return kernel


def show(kernel: Kernel, expressions: str) -> str:
    return kernel.run(f"print({expressions})", check=True).stdout.strip()


def test_a_pydantic_schema_is_sent_strict_and_binds_an_instance(shapes: Kernel, server) -> None:
    done = shapes.run("%%chat --schema City -o city\nTell me about Brest.", cell_id="c1")
    assert done.status == "ok", done.error
    response_format = server.chat_requests[0].body["response_format"]
    assert response_format["type"] == "json_schema"
    spec = response_format["json_schema"]
    assert spec["name"] == "City" and spec["strict"] is True
    assert spec["schema"]["additionalProperties"] is False
    assert sorted(spec["schema"]["required"]) == ["name", "population", "tide"]
    assert show(shapes, "type(city).__name__, city.tide") == "City semidiurnal"
    assert done.data(RECORD_MIME), "a fitting answer is stored"


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        ("Station", "Station(code='<code>', depth_m=1.5)"),
        ("Reading", "{'station': '<station>', 'level': 1.5}"),
        ("RAW", "{'x': 1.5}"),
    ],
)
def test_dataclasses_typeddicts_and_json_schemas_bind_their_objects(
    shapes: Kernel, server, shape: str, expected: str
) -> None:
    shapes.run(f"%%chat --schema {shape} -o value\nOne, please.", cell_id="c1", check=True)
    assert show(shapes, "repr(value)") == expected


def test_json_binds_the_parsed_value(shapes: Kernel, server) -> None:
    shapes.run("%%chat --json -o data\nAnswer in JSON.", cell_id="c1", check=True)
    assert server.chat_requests[0].body["response_format"] == {"type": "json_object"}
    assert show(shapes, "data") == "{'answer': 'Answer in JSON.'}"


def test_schema_with_json_checks_here_what_the_server_was_not_told(shapes: Kernel, server) -> None:
    server.script(Fault(text='{"code": "BRE", "depth_m": 12}'))
    shapes.run("%%chat --schema Station --json -o s\nIn JSON.", cell_id="c1", check=True)
    assert server.chat_requests[0].body["response_format"] == {"type": "json_object"}
    assert show(shapes, "s") == "Station(code='BRE', depth_m=12.0)"
    server.script(Fault(text='{"code": "BRE"}'))
    failed = shapes.run("%%chat --schema Station --json -o t\nAgain.", cell_id="c2")
    assert failed.status == "error" and "depth_m" in failed.error["evalue"]


def test_an_answer_that_does_not_fit_binds_nothing_and_is_not_stored(
    shapes: Kernel, server
) -> None:
    server.script(Fault(text='{"name": "Brest", "population": "many", "tide": "diurnal"}'))
    failed = shapes.run("%%chat --schema City -o unfit\nBrest?", cell_id="c1")
    assert failed.status == "error"
    message = failed.error["evalue"]
    assert message.startswith("The answer does not fit City: population: ")
    assert "\n" not in message and "Traceback" not in "\n".join(failed.error["traceback"])
    assert failed.data(RECORD_MIME) == []
    (markdown,) = failed.data("text/html")
    assert '"population": "many"' in markdown and "not stored, nothing bound" in markdown
    assert show(shapes, "'unfit' in globals()") == "False"
    shapes.run("%%chat --schema City -o unfit\nBrest?", cell_id="c1", check=True)
    assert len(server.chat_requests) == 2, "the wrong answer was not stored: asked again"


def test_prose_instead_of_json_is_named(shapes: Kernel, server) -> None:
    server.script(Fault(text="Sure! Here it is."))
    failed = shapes.run("%%chat --json -o data\nJSON please", cell_id="c1")
    assert failed.error["evalue"].startswith("The answer does not fit JSON: the answer is not JSON")


def test_replay_after_a_restart_binds_the_same_object(shapes: Kernel, server, chat_env) -> None:
    path = chat_env / "shapes.ipynb"
    shapes.run(f"import os; os.environ['NBCHAT_NOTEBOOK'] = {str(path)!r}", check=True)
    cells = [("c0", SHAPES), ("c1", "%%chat --schema City -o city\nBrest?")]
    runs = {cell_id: shapes.run(source, cell_id=cell_id, check=True) for cell_id, source in cells}
    before = show(shapes, "repr(city)")
    save_notebook(path, [(cell_id, source, runs[cell_id]) for cell_id, source in cells])
    shapes.restart_offline(path)
    server.reset()
    for cell_id, source in cells:
        shapes.run(source, cell_id=cell_id, check=True)
    assert server.chat_requests == []
    assert show(shapes, "repr(city)") == before
    assert show(shapes, "type(city).__name__") == "City"


def test_a_changed_schema_is_a_changed_request(shapes: Kernel, server) -> None:
    shapes.run("%%chat --schema Station -o s\nOne.", cell_id="c1", check=True)
    shapes.run("%%chat --schema Station -o s\nOne.", cell_id="c1", check=True)
    assert len(server.chat_requests) == 1
    redefined = "@dataclasses.dataclass\nclass Station:\n    code: str\n    depth_ft: float"
    shapes.run(redefined, check=True)
    shapes.run("%%chat --schema Station -o s\nOne.", cell_id="c1", check=True)
    assert len(server.chat_requests) == 2 and show(shapes, "s.depth_ft") == "1.5"


def test_a_server_without_json_schema_is_told_to_use_json(shapes: Kernel, server) -> None:
    refusal = {"error": {"message": "response_format json_schema is not supported", "code": None}}
    server.script(Fault(status=400, body=refusal))
    failed = shapes.run("%%chat --schema City -o city\nBrest?", cell_id="c1")
    message = failed.error["evalue"]
    assert "json_schema is not supported" in message and "try --json" in message
    assert "\n" not in message


def test_ask_returns_the_value(shapes: Kernel, server) -> None:
    out = shapes.run(
        "import nbchat\nanswer = nbchat.ask('Brest?', schema=City)\n"
        "print(type(answer.value).__name__, answer.value.name)",
        check=True,
    )
    assert out.stdout.strip() == "City <name>"
    body = server.chat_requests[0].body
    assert json.dumps(body["response_format"]["json_schema"]["name"]) == '"City"'


def test_a_stored_answer_that_no_longer_fits_is_asked_again(shapes: Kernel, server) -> None:
    shapes.run("%%chat --json -o data\nGive me JSON about Brest.", cell_id="c1", check=True)
    changed = "%%chat --schema Station --json -o s\nGive me JSON about Brest."
    server.script(Fault(text='{"code": "BRE", "depth_m": 12}'))
    shapes.run(changed, cell_id="c1", check=True)
    assert len(server.chat_requests) == 2, "the stored {'answer': ...} does not fit: asked again"
    assert show(shapes, "s") == "Station(code='BRE', depth_m=12.0)"
    shapes.run(changed, cell_id="c1", check=True)
    assert len(server.chat_requests) == 2, "the new answer fits: replayed"


def test_any_exception_of_a_validator_is_a_misfit(shapes: Kernel, server) -> None:
    shapes.run(
        "@dataclasses.dataclass\nclass Picky:\n    code: str\n"
        "    def __post_init__(self):\n        raise TypeError('cannot label that')",
        check=True,
    )
    failed = shapes.run("%%chat --schema Picky -o p\nOne.", cell_id="c1")
    assert failed.error["evalue"] == ("The answer does not fit Picky: TypeError: cannot label that")
    assert "Traceback" not in "\n".join(failed.error["traceback"])


def test_a_500_that_names_json_schema_gets_the_advice_too(shapes: Kernel, server) -> None:
    shapes.run("%config ChatMagics.max_retries = 0", check=True)
    said = "Input should be 'text' or 'json_object' (loc: body.response_format.type)"
    server.script(Fault(status=500, body={"error": {"message": said}}))
    failed = shapes.run("%%chat --schema City -o city\nBrest?", cell_id="c1")
    assert "(500)" in failed.error["evalue"] and "try --json" in failed.error["evalue"]


def test_a_cut_off_answer_is_named_as_such(shapes: Kernel, server) -> None:
    server.script(Fault(text='{"name": "Bre', finish_reason="length"))
    failed = shapes.run("%%chat --schema City -o city\nBrest?", cell_id="c1")
    assert failed.error["evalue"] == (
        "The answer does not fit City: it was cut off by max_tokens (finish_reason: length): "
        "raise --max-tokens"
    )
