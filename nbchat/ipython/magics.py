"""The ``%%chat`` cell magic and the ``%chat`` line magic: parse, then hand over.

`ChatMagics` owns the configuration (the settings' traits, derived from
`engine.settings.Settings`, and a few of its own) and one `ChatKernel`; the magic reads the
running cell once, turns its flags into `CellOptions`, and runs the turn (`ipython.turn`), the
``--map`` batch (`ipython.mapping`) or a command (`ipython.commands`).

``%load_ext nbchat`` loads this module and the settings only: the engine, the HTTP client and
the renderer are imported by the first ``%chat`` (the kernel side, `ChatKernel`, is made then).
"""

from __future__ import annotations

import shlex
from functools import cached_property
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments
from traitlets import Dict, Integer, List, TraitError, Unicode, observe, validate

from nbchat.engine.settings import (
    DEFAULT_CONCURRENCY,
    DEFAULT_MAX_TOOL_CALLS,
    DEFAULT_MAX_TOOL_ROUNDS,
    DEFAULT_THREAD,
    EFFORTS,
)
from nbchat.errors import ConfigError
from nbchat.ipython.advice import in_words
from nbchat.ipython.help import help_text
from nbchat.ipython.options import Caller, parse_options
from nbchat.ipython.traits import SETTING_NAMES, ChatSettings

if TYPE_CHECKING:
    from nbchat.engine.session import ChatSession
    from nbchat.ipython.context import ChatKernel

__all__ = ["ChatMagics"]

_IN_FLIGHT = "_nbchat_batches_in_flight"  # the shell's attribute between an unload and a load


@magics_class
class ChatMagics(Magics, ChatSettings):  # type: ignore[misc, valid-type]
    """Chat with an OpenAI-compatible model; the notebook is the conversation and the cache."""

    profiles = Dict(
        config=True,
        help="Named settings, e.g. {'local': {'base_url': 'http://127.0.0.1:8000/v1', "
        "'api_key_env': '', 'model': 'qwen3'}}. Built in: openai, qwen, "
        "qwen-intl, deepseek, ollama, vllm, llamacpp, colab, demo.",
    )
    tools = List(
        Unicode(),
        config=True,
        help="Names of notebook functions offered to the model in every cell, and tools of MCP "
        "servers (mcp:NAME, mcp:NAME/TOOL) (--tools overrides).",
    )
    max_tool_calls = Integer(
        None,
        allow_none=True,
        config=True,
        help="Tool calls of one answer that run; the others go back to the model unrun, as "
        f"errors (--max-tool-calls overrides). Default: {DEFAULT_MAX_TOOL_CALLS}.",
    )
    notebook = Unicode(
        None,
        allow_none=True,
        config=True,
        help="Path of this notebook, when nbchat cannot find it by itself.",
    )

    @cached_property
    def kernel(self) -> ChatKernel:
        """The kernel side of nbchat, made by the first ``%chat`` (with the engine's imports)."""
        from nbchat.ipython.context import ChatKernel

        kernel = ChatKernel(self.shell, self)
        kernel.set_notebook(self.notebook)
        kept = self.shell.__dict__.pop(_IN_FLIGHT, None)
        if kept is not None:  # batches an earlier load submitted: a re-run re-attaches to them
            kernel.session.batches = kept
        return kernel

    @property
    def session(self) -> ChatSession:
        """The kernel's session: its answers, usage and HTTP connections."""
        return self.kernel.session

    def close(self) -> None:
        """Stop the batch pollers, close the session's HTTP connections and stop the MCP servers,
        if a ``%chat`` ever started any. Provider batches still running are left to the next
        load of nbchat (on the shell): the saved file may not show them yet, and a re-run of
        their cell must re-attach to them, never submit and pay for the same items again."""
        if "kernel" in self.__dict__:
            if self.session.batches.in_flight():
                setattr(self.shell, _IN_FLIGHT, self.session.batches)
            self.kernel.close()

    def configured(self) -> dict[str, Any]:
        """The settings set by ``%config`` (None: not set there)."""
        return {name: getattr(self, name) for name in SETTING_NAMES}

    @validate("max_tool_calls")
    def _check_cap(self, proposal: dict[str, Any]) -> int | None:
        if proposal["value"] is not None and proposal["value"] < 1:
            raise TraitError("max_tool_calls must be at least 1")
        return proposal["value"]

    @observe("notebook")
    def _notebook_named(self, change: dict[str, Any]) -> None:
        if "kernel" in self.__dict__:  # else the kernel side reads it when it is made
            self.kernel.set_notebook(change["new"])

    # -- the magic -------------------------------------------------------------------------

    @magic_arguments()
    @argument("-m", "--model", help="Model for this cell.")
    @argument("-p", "--profile", help="Profile for this cell (e.g. qwen, deepseek, ollama).")
    @argument("-t", "--temperature", type=float, help="Sampling temperature.")
    @argument("--max-tokens", type=int, help="Cap on the answer's tokens.")
    @argument(
        "--reasoning-effort",
        choices=EFFORTS,
        help="How hard a reasoning model thinks (OpenAI's reasoning_effort).",
    )
    @argument("--thread", default=DEFAULT_THREAD, help=f"Thread name (default: {DEFAULT_THREAD}).")
    @argument("--new", action="store_true", help="Start the thread afresh at this cell.")
    @argument(
        "--system",
        action="store_true",
        help="The cell sets the thread's system prompt; nothing is sent.",
    )
    @argument("--no-stream", action="store_true", help="Wait for the whole answer.")
    @argument("--raw", action="store_true", help="Also show the raw JSON record.")
    @argument("--refresh", action="store_true", help="Ask again even if an answer is stored.")
    @argument("--no-cache", action="store_true", help="Neither replay nor store an answer.")
    @argument(
        "-o",
        "--out",
        metavar="NAME",
        help="Bind the answer to this variable: its text, or with --schema/--json the object.",
    )
    @argument(
        "--tools",
        metavar="F,G",
        help="Functions of the notebook the model may call, and tools of MCP servers (mcp:NAME, "
        "mcp:NAME/TOOL) (default: ChatMagics.tools).",
    )
    @argument(
        "--max-tool-rounds",
        type=int,
        default=DEFAULT_MAX_TOOL_ROUNDS,
        metavar="N",
        help=f"Rounds of tool calls before the cell fails (default: {DEFAULT_MAX_TOOL_ROUNDS}).",
    )
    @argument(
        "--max-tool-calls",
        type=int,
        metavar="N",
        help="Tool calls of one answer that run; the others go back to the model unrun "
        f"(default: ChatMagics.max_tool_calls, {DEFAULT_MAX_TOOL_CALLS}).",
    )
    @argument(
        "--schema",
        metavar="NAME",
        help="The answer must fit this pydantic model, dataclass, TypedDict or JSON Schema dict.",
    )
    @argument("--json", action="store_true", help="The answer must be a JSON object.")
    @argument(
        "--map",
        metavar="NAME",
        help="Send the cell once per item of NAME (list, Series, DataFrame rows), {item} "
        "standing for the item; -o gets the answers in order.",
    )
    @argument(
        "--concurrency",
        type=int,
        default=DEFAULT_CONCURRENCY,
        metavar="N",
        help=f"--map: requests at once ({DEFAULT_CONCURRENCY}).",
    )
    @argument("--rpm", type=float, metavar="N", help="--map: at most N requests a minute.")
    @argument(
        "--batch",
        action="store_true",
        default=False,
        help="--map: through the provider's batch API (half price, within 24 h): the cell "
        "returns once the batch is made, and its output follows it; -o is bound when it ends.",
    )
    @argument(
        "--no-batch",
        dest="batch",
        action="store_false",
        help="--map: in real time (the default), the items no batch answered included.",
    )
    @argument(
        "--wait",
        action="store_true",
        help="--batch: wait in the cell for the batch (headless runs always do).",
    )
    @argument(
        "--batch-timeout",
        type=float,
        metavar="SECONDS",
        help="--batch: how long the cell waits (default: ChatMagics.batch_timeout, 24 h).",
    )
    @argument(
        "--allow-secrets",
        action="store_true",
        help="Send a {value} even if it holds the value of an API key variable (refused "
        "otherwise: the prompt reaches the provider and is stored in the notebook).",
    )
    @argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=JSON",
        help='Any other request field, e.g. --option \'response_format={"type": '
        '"json_object"}\'. Repeatable.',
    )
    @line_cell_magic
    def chat(self, line: str, cell: str | None = None) -> None:
        """Send the cell to the model as the next turn of a thread.

        The context is the thread's system prompt and the turns of the %%chat cells above this
        one. Stored answers are replayed without a request. {name} in the cell is replaced by
        the value of name (a DataFrame as a table, a figure as an image); {In[n]} and {Out[n]}
        by the code and the result of execution n.

        Line form: %chat COMMAND with COMMAND one of history, reset, threads, raw, models,
        usage, config, notebook, tools, mcp, batches, batch, help (%chat help explains each).
        """
        from nbchat.ipython.commands import run_command
        from nbchat.ipython.mapping import map_cell
        from nbchat.ipython.turn import run_turn

        running = self.kernel.begin()
        if cell is None:
            with in_words(Caller.MAGIC):
                run_command(self.kernel, line)
            return
        self.kernel.session.start_cell(running.cell_id, running.source)
        try:
            args = self.chat.parser.parse_args(shlex.split(line))
        except (ValueError, UsageError) as exc:  # unbalanced quotes, unknown flags
            raise ConfigError(f"%%chat: {exc}") from None
        with in_words(Caller.MAGIC):
            options = parse_options(args)
            if options.map is not None:
                map_cell(self.kernel, options, cell)
            else:
                run_turn(self.kernel, options, cell)


# The cell form is the main one: its help reads "%%chat" (IPython's formatter adds one "%"), and
# `%%chat?` shows the regenerated text.
ChatMagics.chat.parser.prog = "%chat"
ChatMagics.chat.__doc__ = help_text(ChatMagics.chat.parser)
