"""MCP servers as a transport to tools (level 1): declared servers, started on first use.

`config` reads ``ChatMagics.mcp_servers`` (a stdio command, or a streamable HTTP URL) and fills
in the secrets it names from the environment, with the redaction that keeps them out of what is
shown; `hub` runs the official ``mcp`` SDK (async, anyio) on one event loop in a daemon thread
of its own and gives the engine a small synchronous face: list a server's tools, call one with a
timeout (several at once), close every server. `results` turns a tool's result (the protocol's
JSON) into the text a model reads. A server that fails to start, times out or dies becomes one
`nbchat.errors.McpServerError` line with its stderr's tail, secrets redacted. Knows nothing of
chat requests, notebooks, records or display; servers, tools and results are plain JSON here.

May import: ``nbchat.errors`` and the private utilities at the top (``nbchat._text``,
``nbchat._json``). Third party, only here and imported when a server is first used: the ``mcp``
SDK (``pip install "nbchat-llm[mcp]"``), with its anyio and httpx2.
"""
