"""The credential scan: what it finds, what it leaves alone, and that it stays linear."""

from __future__ import annotations

import json
import time

import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from nbchat.store.record import RECORD_MIME
from nbchat.store.secret_scan import (
    API_KEY,
    AUTHORIZATION,
    BEARER,
    FIELD,
    SK_KEY,
    Finding,
    find_secrets,
    is_credential_field,
    scan_json,
    scan_notebook,
    text_secret,
)

LEAKED = "sk-proj-" + "A1b2C3d4E5f6G7h8J9k0"
TOKEN = "abcdefghijklmnopqrstuvwxyz012345"


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        (f"my key is {LEAKED}, why 401?", SK_KEY),
        (f"export OPENAI_API_KEY={LEAKED}", SK_KEY),
        (f"key-{LEAKED}", SK_KEY),  # after a hyphen: still a word start
        ("sk-" + "a" * 19 + "1", SK_KEY),  # 20 key characters with a digit: the least
        (f"Authorization: Bearer {TOKEN}", BEARER),
        (f"curl -H 'authorization:bearer\t{TOKEN}'", BEARER),
        (f"Authorization: {TOKEN}", AUTHORIZATION),
        ('"Authorization": "Basic dXNlcjpwYXNzd29yZA=="', AUTHORIZATION),
        ("proxy-authorization = Token abcdefghijklmnop", AUTHORIZATION),
        ('config = {"api_key": "0123456789abcdefghijklmn"}', API_KEY),
        ("x-api-key: 0123456789abcdefghijklmn", API_KEY),
        ("DASHSCOPE_API_KEY='0123456789abcdefghijklmn'", API_KEY),
    ],
)
def test_credential_shaped_text_is_found(text, kind):
    assert text_secret(text) == kind


@pytest.mark.parametrize(
    "text",
    [
        "our risk-assessment-framework-for-2026 review",
        "ask-questions-about-2026-planning-and-budget",  # "sk-" inside a word
        "the fake server's key is sk-test-key",  # too short
        "sk-" + "a" * 30,  # no digit: a hyphenated word, not a key
        "sk-" + "a" * 18 + "1",  # 19 characters
        "client = OpenAI(api_key=os.environ['OPENAI_API_KEY'])",
        "send the header Authorization: Bearer <your key>",
        "Bearer tokens are sent in the Authorization header.",
        "authorization: required",
        "the api_key parameter is optional",
        "api_key = 'short1'",
        "",
    ],
)
def test_prose_and_code_about_keys_are_left_alone(text):
    assert text_secret(text) is None


# Inputs crafted against the patterns: each is scanned in well under the limit (0.1 s or less
# here; the regex this module replaced took 30 s on the first one).
ADVERSARIAL = {
    "sk- repeated": "sk-" * 40_000,
    "sk- after a letter, repeated": "xsk-" * 40_000,
    "sk- and one letter, repeated": "-sk-a" * 40_000,
    "sk-1 and a space, repeated": "sk-1 " * 40_000,
    "sk- then a long run": "sk-" + "a" * 1_000_000,
    "a long run of key characters": "A1_-" * 250_000,
    "Bearer repeated": "Bearer " * 40_000,
    "bearer and a tab, repeated": "bearer\t" * 50_000,
    "Bearer then a long gap": "Bearer" + " " * 1_000_000 + "x",
    "authorization then a long gap": "authorization:" + " " * 40_000,
    "authorization: repeated": "authorization: " * 40_000,
    "Authorization: Bearer repeated": "Authorization: Bearer " * 40_000,
    "Authorization: glued, repeated": "Authorization:Authorization:" * 30_000,
    "api_key= repeated": "api_key=" * 40_000,
    "api_key then quotes, repeated": 'api_key"' * 40_000,
    "api_key then a long gap": "api_key:" + " " * 1_000_000 + "x",
    "key= repeated": "key=" * 100_000,
    "quotes and colons": "\"'" * 200_000 + ":" + "'\"" * 200_000,
}


@pytest.mark.timeout(5)
@pytest.mark.parametrize("name", ADVERSARIAL)
def test_crafted_text_is_scanned_in_linear_time(name):
    text = ADVERSARIAL[name]
    started = time.perf_counter()
    text_secret(text)
    assert time.perf_counter() - started < 1.0, "a pattern went quadratic"


@pytest.mark.timeout(5)
def test_a_key_at_the_end_of_a_crafted_text_is_still_found():
    assert text_secret("sk-" * 40_000 + f" {LEAKED}") == SK_KEY
    assert text_secret("Bearer " * 40_000 + TOKEN) == BEARER


@pytest.mark.timeout(5)
def test_crafted_field_names_and_values_are_scanned_in_linear_time():
    value = {
        "authorization" * 50_000: "Bearer " * 50_000,  # a name too long to be a header
        "x-api-key": "*" * 1_000_000 + "<key>",  # masked: no run of token characters
        **{f"api_key_{n}": "sk-" * 10 for n in range(50_000)},  # many fields
    }
    started = time.perf_counter()
    found = list(scan_json(value))
    assert time.perf_counter() - started < 2.0
    assert found == []


@pytest.mark.timeout(5)
def test_deeply_nested_json_is_walked_without_recursion():
    value: list = []
    innermost = value
    for _ in range(50_000):
        innermost.append([])
        innermost = innermost[0]
    innermost.append(f"Bearer {TOKEN}")
    ((path, kind),) = list(scan_json(value))
    assert kind == BEARER and path == "[0]" * 50_001


def test_json_paths_name_the_place_never_the_secret():
    record = {
        "prompt": f"oops {LEAKED}",
        "request": {
            "messages": [{"role": "user", "content": f"Authorization: Bearer {TOKEN}"}],
            "params": {"api_key": "abcdefgh12345678", "temperature": 0},
        },
        LEAKED: "a secret as a field name",
    }
    found = list(scan_json(record))
    assert found == [
        ("prompt", SK_KEY),
        ("request.messages[0].content", BEARER),
        ("request.params.api_key", FIELD),
        ("", SK_KEY),  # the field name itself: reported at its object
    ]
    assert list(find_secrets(record)) == [
        "prompt",
        "request.messages[0].content",
        "request.params.api_key",
        "record",
    ]
    assert LEAKED not in json.dumps(found)


@pytest.mark.parametrize(
    ("name", "value", "found"),
    [
        ("Authorization", "Bearer x1y2z3w4v5u6", True),
        ("x-api-key", "abcdefgh", True),
        ("OPENAI_API_KEY", "abcdefgh1234", True),
        ("apiKey", "abcdefgh1234", True),
        ("api_key", "<your key>", False),
        ("api_key", "********", False),
        ("api_key_env", "DASHSCOPE_API_KEY", False),  # names the variable, holds no key
        ("api_key", "", False),
    ],
)
def test_credential_fields(name, value, found):
    assert (list(scan_json({name: value})) == [(name, FIELD)]) is found


def test_credential_field_names():
    assert is_credential_field("Proxy-Authorization")
    assert not is_credential_field("authorization_url")
    assert not is_credential_field("x" * 1000 + "_api_key")


def leaky_notebook():
    """A notebook with a credential in every kind of place `nbchat verify` looks at."""
    notebook = new_notebook(metadata={"env": {"api_key": "abcdefgh12345678"}})
    notebook.cells = [
        new_markdown_cell(f"Use `Authorization: Bearer {TOKEN}`"),
        new_code_cell(
            f"client = OpenAI(api_key='{LEAKED}')",
            outputs=[
                new_output("stream", name="stdout", text=f"key={LEAKED}\n"),
                new_output("error", ename="AuthError", evalue=f"bad {LEAKED}", traceback=["x"]),
                new_output("error", ename="E", evalue="e", traceback=["ok", f"Bearer {TOKEN}"]),
                new_output("display_data", data={"text/plain": f"Bearer {TOKEN}"}),
                new_output("execute_result", data={"application/json": {"k": [LEAKED]}}),
                new_output("display_data", data={RECORD_MIME: {"prompt": LEAKED}}),
            ],
            metadata={"secrets": {"x-api-key": "abcdefgh12345678"}},
        ),
        new_code_cell("print('nothing here')", outputs=[new_output("stream", text="hi\n")]),
    ]
    return notebook


def test_a_notebook_is_scanned_everywhere_and_places_are_named():
    findings = list(scan_notebook(leaky_notebook()))
    assert findings == [
        Finding("notebook metadata at env.api_key", FIELD),
        Finding("cell 1, source", BEARER),
        Finding("cell 2, source", SK_KEY),
        Finding("cell 2, metadata at secrets.x-api-key", FIELD),
        Finding("cell 2, output 1, stdout", SK_KEY),
        Finding("cell 2, output 2, evalue", SK_KEY),
        Finding("cell 2, output 3, traceback at [1]", BEARER),
        Finding("cell 2, output 4, text/plain", BEARER),
        Finding("cell 2, output 5, application/json at k[0]", SK_KEY),
        Finding("cell 2, output 6, nbchat record at prompt", SK_KEY),
    ]
    assert LEAKED not in repr(findings) and TOKEN not in repr(findings)


def test_a_clean_notebook_has_no_findings():
    notebook = new_notebook(metadata={"language_info": {"name": "python"}})
    notebook.cells = [new_code_cell("%%chat\nWhat is an api_key?")]
    assert list(scan_notebook(notebook)) == []
