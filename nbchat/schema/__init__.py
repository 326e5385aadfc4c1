"""Python types and JSON Schema (level 2): a function's signature and docstring as a tool spec,
``--schema``/``--json`` as a ``response_format``, strict mode where it keeps the meaning, and
answers parsed and validated.

May import: level 0 and ``nbchat.wire``. Third party: pydantic, lazily, only here.
"""
