"""The ``%%chat`` cell magic and the ``%chat`` line magic: parse, call the session, render."""

from __future__ import annotations

import base64
import json
import os
import shlex
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments
from IPython.display import display
from traitlets import (
    Bool,
    Dict,
    Enum,
    Float,
    Integer,
    List,
    TraitError,
    Unicode,
    Union,
    validate,
)

from nbchat.engine.map import MapJob, run_map
from nbchat.engine.session import ChatSession, Outcome
from nbchat.engine.settings import BUILTIN_PROFILES, DEFAULTS, Settings, resolve_settings
from nbchat.engine.tool_calls import ToolBox
from nbchat.engine.turns import DEFAULT_MAX_TOOL_CALLS, TurnRequest
from nbchat.errors import (
    BatchError,
    ConfigError,
    NbchatError,
    StreamError,
    StructuredOutputError,
)
from nbchat.ipython.commands import help_text, run_command
from nbchat.ipython.live import LiveView, live_view
from nbchat.ipython.names import output_shape, tools_named
from nbchat.prompt.interpolate import interpolate
from nbchat.prompt.key_guard import KeyGuard
from nbchat.render.bundles import (
    answer_bundle,
    inspection,
    note_html,
    partial_bundle,
    raw_bundle,
    record_bundle,
    system_bundle,
)
from nbchat.render.html import document
from nbchat.schema.structured import JsonOutput, OutputSchema
from nbchat.store.notebook import NotebookRecords
from nbchat.wire.client import check_base_url
from nbchat.wire.completion import completion_reasoning
from nbchat.wire.images import ImagePart, thumbnail

__all__ = ["ChatMagics"]

_MIN_CONTEXT_CHARS = 200  # a table needs about 120 characters with no row at all
# Traits that are settings; None means "not configured here", so lower layers apply.
_SETTING_TRAITS = (
    "base_url", "api_key_env", "model", "temperature", "max_tokens", "system_prompt", "timeout",
    "connect_timeout", "max_retries", "stream", "update_rate", "offline", "cache", "profile",
    "options", "send_reasoning", "context_chars",
)  # fmt: skip


@magics_class
class ChatMagics(Magics):
    """Chat with an OpenAI-compatible model; the notebook is the conversation and the cache."""

    base_url = Unicode(
        None,
        allow_none=True,
        config=True,
        help="Endpoint base URL. Default: $OPENAI_BASE_URL, else OpenAI's.",
    )
    api_key_env = Unicode(
        None,
        allow_none=True,
        config=True,
        help="Name of the environment variable that holds the API key "
        "(the key itself is never stored). Default: OPENAI_API_KEY.",
    )
    model = Unicode(
        None,
        allow_none=True,
        config=True,
        help="Model name. Default: $NBCHAT_MODEL, else gpt-4.1-mini.",
    )
    temperature = Float(None, allow_none=True, config=True, help="Sampling temperature.")
    max_tokens = Integer(None, allow_none=True, config=True, help="Cap on answer tokens.")
    system_prompt = Unicode(
        None,
        allow_none=True,
        config=True,
        help="System prompt of every thread without a --system cell.",
    )
    timeout = Float(
        None,
        allow_none=True,
        config=True,
        help=f"Seconds to wait for each piece of an answer. Default: {DEFAULTS.timeout:g}.",
    )
    connect_timeout = Float(
        None,
        allow_none=True,
        config=True,
        help=f"Seconds to wait for a connection. Default: {DEFAULTS.connect_timeout:g}.",
    )
    max_retries = Integer(
        None,
        allow_none=True,
        config=True,
        help="Retries of failed requests before the answer starts (429, 5xx, connection "
        f"errors). Default: {DEFAULTS.max_retries}.",
    )
    stream = Bool(
        None,
        allow_none=True,
        config=True,
        help=f"Stream answers as they are written. Default: {DEFAULTS.stream}.",
    )
    update_rate = Float(
        None,
        allow_none=True,
        config=True,
        help=f"Most live-view updates per second. Default: {DEFAULTS.update_rate:g}.",
    )
    offline = Bool(
        None,
        allow_none=True,
        config=True,
        help="Only replay stored answers; never send. Default: $NBCHAT_OFFLINE.",
    )
    cache = Bool(
        None,
        allow_none=True,
        config=True,
        help=f"Store answers in the notebook and replay them. Default: {DEFAULTS.cache}.",
    )
    profile = Unicode(
        None,
        allow_none=True,
        config=True,
        help="Profile applied to every cell (see `profiles`). Default: $NBCHAT_PROFILE.",
    )
    profiles = Dict(
        config=True,
        help="Named settings, e.g. {'local': {'base_url': 'http://127.0.0.1:8000/v1', "
        "'api_key_env': '', 'model': 'qwen3'}}. Built in: openai, qwen, "
        "qwen-intl, deepseek, ollama, vllm, llamacpp, colab, demo.",
    )
    options = Dict(config=True, help="Extra request fields sent with every request.")
    tools = List(
        Unicode(),
        config=True,
        help="Names of notebook functions offered to the model in every cell (--tools overrides).",
    )
    max_tool_calls = Integer(
        None,
        allow_none=True,
        config=True,
        help="Tool calls of one answer that run; the others go back to the model unrun, as "
        f"errors (--max-tool-calls overrides). Default: {DEFAULT_MAX_TOOL_CALLS}.",
    )
    context_chars = Integer(
        None,
        allow_none=True,
        config=True,
        help="Characters a {value} may take in a prompt (a DataFrame is shortened to fit, "
        f"marked; text is clipped, marked). Default: {DEFAULTS.context_chars}.",
    )
    send_reasoning = Union(
        [Bool(), Enum(["auto"])],
        default_value=None,
        allow_none=True,
        config=True,
        help="Send a reasoning model's earlier thinking back with the context: True, False or "
        "'auto' (what the endpoint wants: DeepSeek's thinking mode yes, OpenAI no; learned from "
        f"a 400 that names it). Default: {DEFAULTS.send_reasoning!r}.",
    )
    notebook = Unicode(
        None,
        allow_none=True,
        config=True,
        help="Path of this notebook, when nbchat cannot find it by itself.",
    )

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        self._cell_notes: list[str] = []
        self._cell_pictures: list[dict[str, str]] = []
        self.session = ChatSession(warn=self._note)

    @validate("update_rate")
    def _check_rate(self, proposal: dict[str, Any]) -> float | None:
        if proposal["value"] is not None and proposal["value"] <= 0:
            raise TraitError("update_rate must be > 0 updates per second")
        return proposal["value"]

    @validate("context_chars")
    def _check_context_chars(self, proposal: dict[str, Any]) -> int | None:
        if proposal["value"] is not None and proposal["value"] < _MIN_CONTEXT_CHARS:
            raise TraitError(f"context_chars must be at least {_MIN_CONTEXT_CHARS}")
        return proposal["value"]

    @validate("max_tool_calls")
    def _check_tool_calls(self, proposal: dict[str, Any]) -> int | None:
        if proposal["value"] is not None and proposal["value"] < 1:
            raise TraitError("max_tool_calls must be at least 1")
        return proposal["value"]

    @validate("max_retries")
    def _check_retries(self, proposal: dict[str, Any]) -> int | None:
        if proposal["value"] is not None and proposal["value"] < 0:
            raise TraitError("max_retries must be >= 0")
        return proposal["value"]

    @validate("base_url")
    def _check_base_url(self, proposal: dict[str, Any]) -> str | None:
        value = proposal["value"]
        if value is not None:
            try:
                check_base_url(value)
            except ConfigError as exc:
                raise TraitError(str(exc)) from None
        return value

    # -- settings --------------------------------------------------------------------------

    def settings(self, flags: dict[str, Any] | None = None) -> Settings:
        """The effective settings: flags over profile over %config over environment."""
        configured = {name: getattr(self, name) for name in _SETTING_TRAITS}
        return resolve_settings(configured, flags or {}, self.profiles)

    def notebook_records(self) -> NotebookRecords | None:
        """The saved notebook's records (None when unknown or unreadable)."""
        if self.notebook:
            self.session.saved.path = Path(self.notebook).expanduser()
        user_ns = self.shell.user_ns if self.shell else {}
        return self.session.notebook(user_ns, headless=self.frontend() == "headless")

    # -- the magic -------------------------------------------------------------------------

    @magic_arguments()
    @argument("-m", "--model", help="Model for this cell.")
    @argument("-p", "--profile", help="Profile for this cell (e.g. qwen, deepseek, ollama).")
    @argument("-t", "--temperature", type=float, help="Sampling temperature.")
    @argument("--max-tokens", type=int, help="Cap on the answer's tokens.")
    @argument(
        "--reasoning-effort",
        choices=("low", "medium", "high"),
        help="How hard a reasoning model thinks (OpenAI's reasoning_effort).",
    )
    @argument("--thread", default="default", help="Thread name (default: default).")
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
        help="Functions of the notebook the model may call (default: ChatMagics.tools).",
    )
    @argument(
        "--max-tool-rounds",
        type=int,
        default=10,
        metavar="N",
        help="Rounds of tool calls before the cell fails (default: 10).",
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
        "--concurrency", type=int, default=8, metavar="N", help="--map: requests at once (8)."
    )
    @argument("--rpm", type=float, metavar="N", help="--map: at most N requests a minute.")
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
        usage, config, notebook, help (%chat help explains each).
        """
        self._cell_notes = []
        self._cell_pictures = []
        if cell is None:
            run_command(self, line)
            return
        self.session.start_cell(self._cell_id(), self._cell_source())
        try:
            args = self.chat.parser.parse_args(shlex.split(line))
        except (ValueError, UsageError) as exc:  # unbalanced quotes, unknown flags
            raise ConfigError(f"%%chat: {exc}") from None
        self._turn(args, cell)

    def _flags(self, args: Any) -> dict[str, Any]:
        options: dict[str, Any] = {}
        for item in args.option:
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise ConfigError(f"--option takes KEY=JSON, not {item!r}")
            try:
                options[key.strip()] = json.loads(value)
            except ValueError:
                options[key.strip()] = value  # a bare word is a string
        return {
            "model": args.model,
            "profile": args.profile,
            "temperature": args.temperature,
            "max_tokens": args.max_tokens,
            "reasoning_effort": args.reasoning_effort,
            "stream": False if args.no_stream else None,
            "cache": False if args.no_cache else None,
            "options": options or None,
        }

    def _turn(self, args: Any, cell: str) -> None:
        if args.out is not None and not args.out.isidentifier():
            raise ConfigError(f"-o/--out needs a Python name, not {args.out!r}")
        if args.max_tool_rounds < 1:
            raise ConfigError("--max-tool-rounds must be at least 1")
        args.max_tool_calls = self.tool_call_cap(args.max_tool_calls, "--max-tool-calls")
        settings = self.settings(self._flags(args))
        if args.map is not None:
            self._map(args, cell, settings)
            return
        request = self._request(args, cell, settings)
        if args.system:
            record = self.session.add_system(request)
            data, metadata = system_bundle(record, store=settings.cache)
            display(data, raw=True, metadata=metadata)
            return
        outcome, view = self._ask(request, settings)
        record = outcome.record
        bundle = answer_bundle(
            record, replayed=outcome.replayed, store=settings.cache, with_record=not args.raw
        )
        if outcome.replayed:
            display(bundle[0], raw=True, metadata=bundle[1])
        else:
            view.finish(*bundle)
        if args.raw:
            sent = self.session.sent(record, outcome.turn)
            if settings.cache:
                data, metadata = record_bundle(record, sent)
            else:
                data, metadata = raw_bundle(inspection(record, sent))
            display(data, raw=True, metadata=metadata)
        if args.out:
            shaped = request.output is not None
            self.shell.user_ns[args.out] = outcome.value if shaped else record.answer

    def _request(self, args: Any, cell: str, settings: Settings) -> TurnRequest:
        """What the cell asks: its text with the notebook's values filled in, and its flags."""
        prompt = interpolate(cell, self.shell.user_ns, budget=settings.context_chars).strip()
        if not args.allow_secrets:
            self._key_guard(settings).check(prompt.fills)
        if not prompt.pieces:
            raise ConfigError("The cell is empty: write your message below %%chat.")
        if args.system and prompt.images:
            raise ConfigError("A system prompt holds text only: put the image in a %%chat cell.")
        for note in prompt.notes:
            self._note(f"nbchat: {note}")
        if args.json and "json" not in prompt.text.lower():
            self._note("nbchat: --json: some providers (OpenAI) refuse a prompt without 'JSON'.")
        if not args.system:
            self._show_pictures(prompt.images)
        content = prompt.content
        return TurnRequest(
            prompt.text,
            args.thread,
            self._cell_id(),
            args.new,
            args.refresh,
            source=self._cell_source(),
            content=content if isinstance(content, list) else None,
            tools=None if args.system else self.toolbox(args.tools),
            max_tool_rounds=args.max_tool_rounds,
            max_tool_calls=args.max_tool_calls,
            output=None if args.system else self._output(args),
        )

    def _ask(self, request: TurnRequest, settings: Settings) -> tuple[Outcome, LiveView]:
        """Run the turn with a live view (returned, for the final bundle); what arrived of a
        failed answer stays in sight, marked, and the error is raised."""
        view = live_view(
            settings.model,
            rate=settings.update_rate,
            frontend=self.frontend(),
            on_discard=self._reshow,
        )
        try:
            return self.session.run(request, settings, self.notebook_records(), view), view
        except StreamError as exc:
            thought = completion_reasoning(exc.partial)
            if exc.partial_text or thought or exc.exchange:
                view.finish(*partial_bundle(exc.partial_text, thought, exchange=exc.exchange))
            else:
                view.discard()
            raise
        except StructuredOutputError as exc:  # the whole answer, kept in sight, not stored
            note = "⚠ not the shape asked for: not stored, nothing bound"
            view.finish(*partial_bundle(exc.text, exchange=exc.exchange, note=note))
            raise
        except NbchatError as exc:  # after tools ran: what they did stays in sight
            if not exc.exchange:
                view.discard()
                raise
            note = "⚠ stopped after the tool calls above ran: not stored"
            view.finish(*partial_bundle("", exchange=exc.exchange, note=note))
            raise
        except BaseException:  # nbchat's errors and bugs alike: never leave a live widget behind
            view.discard()
            raise

    def _map(self, args: Any, cell: str, settings: Settings) -> None:
        """``--map NAME``: the cell once per item (`nbchat.engine.map`)."""
        refused = {"--tools": args.tools, "--system": args.system, "--raw": args.raw}
        refused["--new (items have no context)"] = args.new
        for flag in (flag for flag, given in refused.items() if given):
            raise ConfigError(f"--map does not take {flag}")
        if args.concurrency < 1:
            raise ConfigError("--concurrency must be at least 1")
        if args.rpm is not None and not args.rpm > 0:
            raise ConfigError("--rpm must be a number of requests a minute above 0")
        if args.map not in self.shell.user_ns:
            raise ConfigError(f"--map: {args.map!r} is not defined in the notebook")
        job = MapJob(
            args.map,
            self.shell.user_ns[args.map],
            cell,
            self.shell.user_ns,
            replace(settings, stream=False),
            output=self._output(args),
            thread=args.thread,
            cell_id=self._cell_id(),
            source=self._cell_source(),
            concurrency=args.concurrency,
            rpm=args.rpm,
            refresh=args.refresh,
            frontend=self.frontend(),
            note=self._note,
            guard=None if args.allow_secrets else self._key_guard(settings),
        )
        try:
            values = run_map(job, self.session, self.notebook_records())
        except BatchError as error:
            if args.out:
                self.shell.user_ns[args.out] = error.values
            raise
        if args.out:
            self.shell.user_ns[args.out] = values

    def _key_guard(self, settings: Settings) -> KeyGuard:
        """The keys of the environment: any profile's key variable, this request's, and every
        variable named like a secret."""
        profiles = [*BUILTIN_PROFILES.values(), *self.profiles.values()]
        names = [settings.api_key_env, *(p.get("api_key_env") for p in profiles)]
        return KeyGuard(os.environ, [name for name in names if isinstance(name, str)])

    def tool_call_cap(self, given: int | None, name: str) -> int:
        """Calls of one answer that run: ``given`` (the cell's flag, `ask`'s argument ``name``),
        else ``ChatMagics.max_tool_calls``, else the default."""
        cap = given if given is not None else self.max_tool_calls
        if cap is not None and cap < 1:
            raise ConfigError(f"{name} must be at least 1")
        return DEFAULT_MAX_TOOL_CALLS if cap is None else cap

    def toolbox(self, names: str | None) -> ToolBox | None:
        """The functions named (``"f,g"``; else ``ChatMagics.tools``) as a `ToolBox`."""
        return tools_named(self.shell.user_ns, names, self.tools)

    def _output(self, args: Any) -> OutputSchema | JsonOutput | None:
        return output_shape(self.shell.user_ns, args.schema, args.json)

    # -- kernel facts ----------------------------------------------------------------------

    def _parent(self) -> dict[str, Any]:
        """The execute request being run (an empty dict outside a kernel)."""
        kernel = getattr(self.shell, "kernel", None)
        if kernel is None:
            return {}
        try:
            parent = kernel.get_parent()
        except Exception:  # older ipykernel
            parent = getattr(kernel, "_parent_header", {}) or {}
        return parent if isinstance(parent, dict) else {}

    def running_cell(self) -> tuple[str | None, str]:
        """The running cell's id (when the frontend sent one) and its execution's message id:
        `nbchat.ask` places its turns in that cell."""
        parent = self._parent()
        return self._cell_id(), str((parent.get("header") or {}).get("msg_id", ""))

    def cell_place(self) -> tuple[str | None, str | None]:
        """The running cell's id (when the frontend sent one) and its code: where it is."""
        return self._cell_id(), self._cell_source()

    def _cell_id(self) -> str | None:
        """The cell id the frontend sent with this execute request, if any."""
        cell_id = (self._parent().get("metadata") or {}).get("cellId")
        return str(cell_id) if cell_id else None

    def _cell_source(self) -> str | None:
        """The cell's code as executed: finds the cell in a saved file without cell ids."""
        code = (self._parent().get("content") or {}).get("code")
        return code if isinstance(code, str) else None

    def knows_cells(self) -> bool:
        """Whether cells can be placed in the saved notebook: only when the frontend sends cell
        ids (JupyterLab, Notebook 7, VS Code); headless runners and terminals do not."""
        return self._cell_id() is not None

    def frontend(self) -> str:
        """ "interactive" (a frontend that sends cell ids), "headless" (nbclient, papermill,
        nbconvert: a kernel nobody watches) or "terminal" (no kernel)."""
        if getattr(self.shell, "kernel", None) is None:
            return "terminal"
        return "interactive" if self.knows_cells() else "headless"

    def _note(self, message: str) -> None:
        """A note for the user, shown quietly in the cell's output (and again if the output is
        cleared to remove a live view): not an error, so not in the red stderr box."""
        self._cell_notes.append(message)
        self._show_note(message)

    def _show_note(self, message: str) -> None:
        if self.frontend() == "terminal":
            print(message, file=sys.stderr)
            return
        bundle = {"text/html": document(note_html(message)), "text/plain": message}
        display(bundle, raw=True, metadata={"nbchat": {"note": True}})

    def _show_pictures(self, images: tuple[ImagePart, ...]) -> None:
        """Each image the cell sends, as a thumbnail above the answer (a line without PIL)."""
        for image in images:
            picture = thumbnail(image)
            bundle = {"text/plain": f"[{image.summary}, sent]"}
            if picture is not None:
                bundle["image/png"] = base64.b64encode(picture).decode("ascii")
            self._cell_pictures.append(bundle)
            display(bundle, raw=True)

    def _reshow(self) -> None:
        """What the cell showed before its live view, after the view cleared the output."""
        for message in self._cell_notes:
            self._show_note(message)
        for bundle in self._cell_pictures:
            display(bundle, raw=True)


# The cell form is the main one: its help reads "%%chat" (IPython's formatter adds one "%"), and
# `%%chat?` shows the regenerated text.
ChatMagics.chat.parser.prog = "%chat"


ChatMagics.chat.__doc__ = help_text(ChatMagics.chat.parser)
