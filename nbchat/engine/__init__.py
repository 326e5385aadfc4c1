"""The engine (level 3): settings, threads in notebook order, a turn from request to record, the
answer cache, the session that runs every turn (replay, send, record, count), the tool loop
(notebook functions and tools of MCP servers), concurrent batches and ``--map``, in real time or
through the provider's batch API. No IPython, no display: it receives a live sink and returns
records and values.

May import: levels 0-2 (``nbchat.wire``, ``nbchat.mcp``, ``nbchat.prompt``, ``nbchat.schema``,
``nbchat.store``). Third party: none.
"""
