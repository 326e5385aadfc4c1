"""The error tree (`nbchat.errors`): a leaf module, its hierarchy, and what a
stream error keeps of the partial answer."""

from __future__ import annotations

import ast
from pathlib import Path

from nbchat.errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    MalformedStreamError,
    NbchatError,
    ProtocolError,
    StreamError,
    StreamInterrupted,
    TruncatedStreamError,
)


def test_hierarchy():
    assert issubclass(StreamInterrupted, KeyboardInterrupt)
    assert issubclass(StreamInterrupted, StreamError)
    assert issubclass(MalformedStreamError, ProtocolError)
    assert issubclass(APITimeoutError, APIConnectionError)
    for cls in (APIError, APIConnectionError, StreamError, ProtocolError):
        assert issubclass(cls, NbchatError)


def test_stream_error_partial_text():
    partial = {"choices": [{"message": {"role": "assistant", "content": "half"}}]}
    assert TruncatedStreamError("x", partial=partial).partial_text == "half"
    assert TruncatedStreamError("x").partial_text == ""
    assert TruncatedStreamError("x", partial={"choices": []}).partial_text == ""


# -- the leaf ---------------------------------------------------------------------------------


def test_errors_is_a_leaf():
    tree = ast.parse(Path(__file__).parent.parent.joinpath("nbchat", "errors.py").read_text())
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in (node.names if isinstance(node, ast.Import) else [ast.alias(node.module)])
    }
    assert imported <= {"__future__", "typing", "enum", "collections"}
