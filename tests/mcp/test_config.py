"""Declared MCP servers (`mcp.config`): what a declaration may say, the secrets filled in from
the environment (never written in the notebook), and their redaction."""

from __future__ import annotations

import pytest

from nbchat.errors import ConfigError
from nbchat.mcp.config import REDACTED, ServerConfig, read_servers

TOKEN = "tok-0123456789abcdef"


def test_a_stdio_and_an_http_server() -> None:
    servers = read_servers(
        {
            "files": {"command": ["python", "-m", "srv"], "env": {"ROOT": "/d"}, "cwd": "~/x"},
            "search": {"url": "https://h.example/mcp", "headers_env": {"Authorization": "T"}},
            "short": {"command": "python -m srv --flag 'a b'"},
        }
    )
    files, search, short = servers["files"], servers["search"], servers["short"]
    assert (files.transport, files.command, files.env) == (
        "stdio",
        ("python", "-m", "srv"),
        (("ROOT", "/d"),),
    )
    assert search.transport == "http" and search.headers_env == (("Authorization", "T"),)
    assert short.command == ("python", "-m", "srv", "--flag", "a b")
    launch = files.launch({})
    assert launch.cwd is not None and not launch.cwd.startswith("~")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([], "mcp_servers is a dict of servers by name, not a list"),
        ({"a b": {"command": ["x"]}}, "'a b' is not a server name"),
        ({"s": "python x.py"}, "mcp_servers['s'] is a dict (command or url), not a string"),
        ({"s": {}}, "mcp_servers['s'] needs a command (stdio) or a url (streamable HTTP)"),
        ({"s": {"command": ["x"], "args": []}}, "unknown key(s) args; known: command, env"),
        ({"s": {"command": ["x"], "url": "http://h"}}, "a stdio server (command) takes no url"),
        ({"s": {"url": "http://h", "env": {}}}, "an HTTP server (url) takes no env"),
        ({"s": {"command": []}}, "command is a list of strings"),
        ({"s": {"command": ["x", 3]}}, "command is a list of strings, not an integer"),
        ({"s": {"command": ["x"], "env": {"A": 1}}}, "env is a dict of strings"),
        ({"s": {"command": ["x"], "cwd": 3}}, "cwd is a string, not an integer"),
        ({"s": {"url": "ftp://h/mcp"}}, "url is an http:// or https:// URL"),
        ({"s": {"url": "http://h:port/mcp"}}, "url is an http:// or https:// URL"),
        ({"s": {"url": "https://u:pw@h/mcp"}}, "the url holds credentials"),
    ],
)
def test_a_declaration_that_cannot_work_is_one_line(value: object, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        read_servers(value)
    assert message in str(error.value)
    assert "pw" not in str(error.value)


def test_secrets_come_from_the_environment_and_are_redacted() -> None:
    config = read_servers(
        {
            "s": {
                "url": "http://127.0.0.1:1/mcp",
                "headers_env": {"Authorization": "Bearer ${WEB_TOKEN}", "X-Key": "OTHER"},
            }
        }
    )["s"]
    environ = {"WEB_TOKEN": TOKEN, "OTHER": "other-secret", "GITHUB_TOKEN": "ghp_abcdefgh12"}
    launch = config.launch(environ)
    assert launch.headers == {"Authorization": f"Bearer {TOKEN}", "X-Key": "other-secret"}
    text = f"auth {TOKEN} and other-secret and ghp_abcdefgh12"
    assert launch.redact(text) == f"auth {REDACTED} and {REDACTED} and {REDACTED}"
    assert TOKEN not in repr(launch) and TOKEN not in repr(config)


def test_a_secret_read_with_its_newline_is_redacted_without_it() -> None:
    """``os.environ["DB_PASS"] = open("pass.txt").read()`` keeps the newline; the server (or
    its SDK) strips it before it shows the value."""
    config = read_servers({"s": {"command": ["srv"], "env": {"PASS": "$DB_PASS"}}})["s"]
    launch = config.launch({"DB_PASS": f"{TOKEN}\n", "API_KEY": f" {TOKEN[::-1]}\t"})
    assert launch.env == {"PASS": f"{TOKEN}\n"}, "given as it is"
    text = f"login failed for {TOKEN}; key={TOKEN[::-1]}."
    assert launch.redact(text) == f"login failed for {REDACTED}; key={REDACTED}."


def test_env_values_fill_in_variables_and_a_missing_one_is_named() -> None:
    config = ServerConfig("s", command=("x",), env=(("TOKEN", "$MY_TOKEN"), ("MODE", "fast")))
    assert config.launch({"MY_TOKEN": TOKEN}).env == {"TOKEN": TOKEN, "MODE": "fast"}
    with pytest.raises(ConfigError) as error:
        config.launch({})
    assert str(error.value) == (
        "MCP server 's': $MY_TOKEN (env TOKEN) is not set in the environment: set it before "
        "the server starts"
    )


def test_where_shows_no_credentials_or_query_values() -> None:
    config = ServerConfig("s", url="https://h.example:8443/mcp?key=abc")
    assert config.where == "https://h.example:8443/mcp?…"
    assert ServerConfig("t", command=("python", "a b.py")).where == "python 'a b.py'"
