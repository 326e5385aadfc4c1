"""The demo notebooks, cell by cell. ``build_demos.py`` writes and records them.

A cell is ``md(text)`` or ``code(source)``; ``code(source, save_first=True)`` saves the notebook
before the cell runs (as you would press Ctrl-S), for cells that read the saved file.
The answers to every prompt below are in ``demo_answers.json``.
"""

# ruff: noqa: E501 - Markdown tables, prompts and JSON lines are notebook content, one per line

from __future__ import annotations

from dataclasses import dataclass
from textwrap import dedent

from nbchat.settings import BUILTIN_PROFILES, DEFAULT_MODEL

__all__ = ["NOTEBOOKS", "Cell", "code", "md"]


@dataclass(frozen=True)
class Cell:
    """One cell of a demo notebook."""

    kind: str  # "markdown" or "code"
    source: str
    save_first: bool = False


def md(text: str) -> Cell:
    """A Markdown cell (dedented, stripped)."""
    return Cell("markdown", dedent(text).strip())


def code(source: str, *, save_first: bool = False) -> Cell:
    """A code cell (dedented, stripped)."""
    return Cell("code", dedent(source).strip(), save_first)


def recorded(name: str) -> Cell:
    """The note every demo carries near its top: where its answers come from."""
    more = (
        ""
        if name == "providers"
        else "; see `providers.ipynb` for Qwen, DeepSeek and local servers"
    )
    return md(
        f"""
        > **About the answers stored here.** They were recorded from nbchat's scripted demo
        > endpoint: the `demo` profile, a local server (`127.0.0.1:8765`) that replays canned
        > answers written for these demos. No real model was reachable when they were recorded.
        > Because every answer is stored in this notebook, it runs anywhere, offline and without a
        > key: `nbchat run --offline {name}.ipynb`.
        >
        > To talk to a real model, set a profile, e.g.
        > `%config ChatMagics.profile = "openai"` (the key is read from `$OPENAI_API_KEY`{more}),
        > and re-run with `--refresh` on the `%%chat` lines. (A new endpoint or model already misses every stored answer;
        > `--refresh` asks again even where one matches.)
        """
    )


SETUP = code(
    """
    %load_ext nbchat
    %config ChatMagics.profile = "demo"
    """
)

QUICKSTART = [
    md(
        """
        # nbchat quickstart

        Chat with any OpenAI-compatible model from a notebook. Each `%%chat` cell is one turn of
        a conversation: the cells above it are the context. The answer streams in, then stays in
        the cell's output, so running the notebook again replays it at no cost.
        """
    ),
    recorded("quickstart"),
    code("%load_ext nbchat"),
    md(
        """
        Choose the endpoint. A *profile* bundles a base URL, the environment variable that holds
        the key, and a model. This notebook uses `demo`; put `"openai"`, `"qwen"`, `"deepseek"`
        or `"ollama"` here to use a real model.
        """
    ),
    code('%config ChatMagics.profile = "demo"'),
    md(
        """
        ## A first question

        Everything below the `%%chat` line is the message.
        """
    ),
    code(
        """
        %%chat
        What is the difference between a list and a tuple in Python? Keep it short.
        """
    ),
    md(
        """
        ## A follow-up

        The `%%chat` cells above are the context, so "the two" needs no explanation.
        """
    ),
    code(
        """
        %%chat
        Which of the two is faster?
        """
    ),
    md(
        """
        ## Use an answer in Python

        `-o NAME` binds the answer's text to a variable.
        """
    ),
    code(
        """
        %%chat -o primes
        List the prime numbers below 30 as a JSON array, and nothing else.
        """
    ),
    code(
        """
        import json

        numbers = json.loads(primes)
        print(len(numbers), "primes, summing to", sum(numbers))
        """
    ),
    md(
        """
        ## What did it cost?

        `%chat usage` counts this session's tokens: *spent* on answers fetched from the server,
        *saved* by answers replayed from the notebook. Run the notebook again and every answer
        is replayed: the spent row stays at zero.
        """
    ),
    code("%chat usage"),
    md(
        """
        ## Next

        - `threads.ipynb`: the context, editing a turn, several threads, system prompts,
          `{variables}` in prompts.
        - `cache.ipynb`: replays, offline mode, `nbchat run`, `nbchat show`.
        - `raw_json.ipynb`: the JSON record stored with each answer.
        - `providers.ipynb`: OpenAI, Qwen, DeepSeek, vLLM, Ollama, llama.cpp, your own endpoint.
        """
    ),
]

THREADS = [
    md(
        """
        # Threads: the notebook is the conversation

        The context of a `%%chat` cell is its thread's system prompt and the `%%chat` cells
        *above* it in the same thread, in notebook order. Each cell holds one turn.
        """
    ),
    recorded("threads"),
    SETUP,
    md(
        """
        ## A system prompt

        `--system` sets the thread's system prompt; nothing is sent.
        """
    ),
    code(
        """
        %%chat --system
        You are a patient Git mentor. Answer in at most three sentences.
        """
    ),
    code(
        """
        %%chat
        What does git rebase do?
        """
    ),
    code(
        """
        %%chat
        How is that different from merge?
        """
    ),
    md(
        """
        ## What will be sent

        `%chat history` shows the thread as the next `%%chat` cell would send it, with a rough
        token count (about four characters a token).
        """
    ),
    code("%chat history"),
    md(
        """
        ## Editing a cell replaces its turn

        Change the question in a `%%chat` cell above and run it again: its new question and
        answer **replace** its turn in place; they are not appended at the end. The cells below
        it see the new turn as their context when they run again, and since their requests
        changed, they are asked again; cells whose request did not change keep replaying their
        stored answers.

        (Headless runners such as `nbchat run` or `nbconvert` do not tell the kernel which cell
        is running, so there each run is simply the next turn, in order.)

        ## Several conversations: `--thread`

        A named thread has its own context: the questions below see nothing of the Git
        conversation, and it sees nothing of them.
        """
    ),
    code(
        """
        %%chat --thread sql
        Write a SQL query that counts the orders of each customer in a table orders(customer_id, total).
        """
    ),
    code(
        """
        %%chat --thread sql
        Only the customers who spent more than 100 in total.
        """
    ),
    code("%chat threads"),
    md(
        """
        ## Starting afresh: `--new`

        `--new` starts the thread over at this cell: nothing above it, turns or system prompt,
        is context any more, for this cell and the ones below it. (Put `--new` on a `--system`
        cell to start over with a new system prompt.)
        """
    ),
    code(
        """
        %%chat --new
        In one sentence: what is a Git tag?
        """
    ),
    code("%chat history"),
    md(
        """
        ## Python values in a prompt: `{name}`

        `{name}` is replaced by the value of the variable `name`. Every other brace is sent as
        written: code, JSON, dict literals, `{{double braces}}`, names that are not defined.
        """
    ),
    code("""error = "KeyError: 'price'\""""),
    code(
        """
        %%chat --thread debug
        Rows look like {"sku": "A1", "qty": 2}. This raises {error}:

            totals = {row["sku"]: row["price"] * row["qty"] for row in rows}

        How do I skip the rows that have no price?
        """
    ),
    md("What was sent: `{error}` was filled in, the dict and the code were left alone."),
    code("%chat history --thread debug"),
]

CACHE = [
    md(
        """
        # The notebook is the cache

        Every answer is stored in its cell's output together with the exact request that
        produced it. Before sending, nbchat looks for a stored answer to *exactly* the same
        request: same endpoint, model, messages (the context included) and parameters. If there
        is one, it is replayed: no request, no tokens, the same text.
        """
    ),
    recorded("cache"),
    SETUP,
    md(
        """
        ## A replay costs nothing

        The two cells below ask the same question in a fresh thread (`--new`), so their requests
        are identical: the first is sent, the second replays the first's answer.
        """
    ),
    code(
        """
        %%chat --new --thread regex
        Write a regular expression that matches an ISO 8601 date such as 2024-05-01.
        """
    ),
    code(
        """
        %%chat --new --thread regex
        Write a regular expression that matches an ISO 8601 date such as 2024-05-01.
        """
    ),
    code("%chat usage"),
    md(
        """
        One answer was fetched (*spent*) and one replayed (*saved*). Run the whole notebook
        again and both are replayed from the saved file: the spent row shows zero.

        ## Offline mode

        With `NBCHAT_OFFLINE=1` in the kernel's environment nbchat never sends a request: stored
        answers are replayed, and a cell that has none fails with `OfflineMiss`, which says what
        changed (the prompt, the context above it, the model, the parameters or the endpoint).

        `nbchat run` executes a notebook headless, with the notebook's path in
        `NBCHAT_NOTEBOOK` so the stored answers are found; `--offline` sets `NBCHAT_OFFLINE=1`.
        It is how CI checks that these demos replay:

        ```console
        $ nbchat run --offline cache.ipynb
        cache.ipynb: 6 cells run, 2 answers (2 replayed, 0 asked), 0 errors
        ```

        It leaves the file as it is unless given `--inplace` or `-o OUT`.

        ## The command line reads the saved file

        `nbchat show` lists the stored turns and `nbchat stats` counts their tokens by model: no
        kernel, no network. (Save the notebook first: they read the file.)
        """
    ),
    code("!nbchat show cache.ipynb --width 120", save_first=True),
    code("!nbchat stats cache.ipynb"),
    md(
        """
        `nbchat export` writes a Markdown transcript (or JSON Lines), `nbchat verify` checks the
        records and that no API key leaked into them, `nbchat strip` removes them before you
        share the notebook.

        ## Asking again: `--refresh`

        ```
        %%chat --refresh --new --thread regex
        Write a regular expression that matches an ISO 8601 date such as 2024-05-01.
        ```

        `--refresh` skips the lookup and sends the request; the new answer is stored in place of
        the old one when you save. Remove the flag afterwards: while it is there the cell asks
        every time it runs, and fails offline. (It is not run here for that reason: this notebook
        must replay offline.)

        ## Not stored at all: `--no-cache`

        ```
        %%chat --no-cache
        Something you don't want kept in the notebook.
        ```

        `--no-cache` neither replays nor stores: the answer is shown, marked *not stored*, and
        leaves no record in the file. Like `--refresh`, such a cell asks every time, so it fails
        offline.

        ## When does a stored answer match?

        The cache key is a hash of the endpoint, the model, every message sent (system prompt and
        the turns above included, as a chain of digests) and the parameters such as
        `temperature`. Edit a prompt, a cell above it in the same thread, the model or a
        parameter, and the request is new. The API key is not part of it and is never stored.
        """
    ),
]

RAW_JSON = [
    md(
        """
        # The record: what nbchat stores with an answer

        Next to its Markdown, each answer output carries a JSON record under the MIME type
        `application/vnd.nbchat.v2+json`: the messages this turn added (the question and the
        answer as the provider returned it), what else was sent (model, parameters, system
        prompt, never the key), the response's metadata and timings, and a reference to the
        record of the turn above it, so a long thread's notebook grows by one turn per cell.
        Replays are made from it, and `nbchat show`, `export`, `stats` and `verify` read it.
        """
    ),
    recorded("raw_json"),
    SETUP,
    md(
        """
        ## `--raw`: the record as a JSON tree

        `--raw` shows the record below the answer as a collapsible tree in JupyterLab, with
        `sent`: the whole request as it went out (every message of the context, rebuilt from the
        records above it). The record is then stored there, once. `-t 0.2` sets the
        temperature, which the record keeps under `request.params`.
        """
    ),
    code(
        """
        %%chat --raw -t 0.2
        Which HTTP methods are idempotent?
        """
    ),
    md(
        """
        ## `%chat raw`: the record of an earlier answer

        `%chat raw` shows the record of the last answer of this session (with `sent`),
        `%chat raw 2` the one before, and so on.
        """
    ),
    code(
        """
        %%chat
        Which of those are also safe?
        """
    ),
    code("%chat raw"),
    md(
        """
        ## The fields

        | field | what it holds |
        |---|---|
        | `schema` | `2`, the version of this layout (readers accept every version they know: notebooks of nbchat 0.1 hold version 1, and `nbchat upgrade` rewrites them) |
        | `kind` | `"turn"`, or `"system"` for a `--system` cell |
        | `nbchat_version` | the nbchat that wrote it |
        | `thread`, `new_thread` | the thread, and whether this cell started it afresh (`--new`) |
        | `cell_id` | the cell's id as the kernel was told it; `null` here, because this notebook was run headless (nbclient sends no cell ids) |
        | `messages` | what this turn added: the user message as sent (after `{name}` interpolation), then the assistant's message as the provider returned it |
        | `key` | the cache key: `"v2:"` + SHA-256 of endpoint, model, parameters, system prompt, the turns above (as `history`) and the user message |
        | `history` | a digest of the turns above this one, as sent |
        | `parent` | the `key` of the record of the turn above (`null` for the first); `context`, when present, lists them all |
        | `request` | `base_url` (credentials and query values masked, the query kept as `query_digest`), `model`, `params` (`temperature`, ...) and `system`; never the key or headers |
        | `responses` | the `chat.completion` of each request, without the message (it is in `messages`): `finish_reason`, `usage` (tokens), `model`, `id` |
        | `timing` | `started_at`, `elapsed_s`, `first_token_s` (time to the first token) and `streamed` |
        | `stored_at` | when the answer was complete (UTC) |

        A record is data: replaying it never runs anything. Before replaying, nbchat checks that
        the key matches what the record says was sent, so an edited record is not replayed.

        ## `%chat raw --chunks`: the stream as it arrived

        After an answer streamed in this session, `%chat raw --chunks` shows the raw
        `chat.completion.chunk` objects the server sent; for a two-word answer (abridged):

        ```json
        {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "nbchat-demo", "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}]}
        {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "nbchat-demo", "choices": [{"index": 0, "delta": {"content": "Hi "}, "finish_reason": null}]}
        {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "nbchat-demo", "choices": [{"index": 0, "delta": {"content": "there!"}, "finish_reason": null}]}
        {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "nbchat-demo", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "nbchat-demo", "choices": [], "usage": {"prompt_tokens": 2, "completion_tokens": 2, "total_tokens": 4}}
        ```

        The chunks are not stored: the record keeps them folded into one `chat.completion`. A
        replayed answer was never streamed, so after a replay (e.g. when this notebook runs
        offline) there are no chunks, and `%chat raw --chunks` fails with *No streamed answer
        yet in this session*. That is why it is not run here.

        ## Checking the records

        `nbchat verify` checks every record of a saved notebook: well-formed, key consistent
        with its request, no API key anywhere.
        """
    ),
    code("!nbchat verify raw_json.ipynb", save_first=True),
]


def _profile_table() -> str:
    """The built-in profiles as a Markdown table, from the code so it cannot drift."""
    rows = ["| profile | base URL | key variable | default model |", "|---|---|---|---|"]
    for name, profile in BUILTIN_PROFILES.items():
        key = f"`{profile['api_key_env']}`" if profile.get("api_key_env") else "(none)"
        model = f"`{profile['model']}`" if profile.get("model") else "(none)"
        rows.append(f"| `{name}` | {profile['base_url']} | {key} | {model} |")
    return "\n".join(rows)


PROVIDERS = [
    md(
        """
        # Providers: any OpenAI-compatible endpoint

        nbchat speaks the OpenAI chat-completions protocol, so it works with OpenAI and with
        every server that imitates it. A *profile* bundles a base URL, the **name** of the
        environment variable that holds the key (the key itself is never stored) and a model.
        Choose one for every cell with `%config ChatMagics.profile = "..."`, or for one cell with
        `%%chat -p NAME`; `-m MODEL` overrides the model.

        No request goes to a real provider in this notebook: the cells only show settings, and
        the one `%%chat` cell is answered by the demo endpoint.
        """
    ),
    recorded("providers"),
    code("%load_ext nbchat"),
    md("## Built-in profiles\n\n" + _profile_table()),
    md(
        """
        ## OpenAI

        Export the key in the shell that starts Jupyter, never in the notebook:

        ```bash
        export OPENAI_API_KEY=...
        ```

        With no profile set nbchat already uses OpenAI (`$OPENAI_BASE_URL` overrides the URL);
        `%%chat -m gpt-4.1` picks another model.

        ## Qwen (DashScope, OpenAI-compatible mode)

        ```bash
        export DASHSCOPE_API_KEY=...
        ```

        Then `%%chat -p qwen` (model `qwen3-max`; e.g. `-m qwen-plus` for another), or
        `-p qwen-intl` for the international endpoint. `%chat config -p qwen` shows what a cell
        with that profile would use; the key only ever appears as *set* or *not set*:
        """
    ),
    code(
        """
        import os

        # For this demo only: a real key belongs in your shell's environment, not in a notebook.
        os.environ["DASHSCOPE_API_KEY"] = "placeholder-not-a-real-key"
        """
    ),
    code("%chat config -p qwen"),
    md(
        f"""
        ## DeepSeek

        ```bash
        export DEEPSEEK_API_KEY=...
        ```

        Then `%%chat -p deepseek` (model `deepseek-chat`; `-m deepseek-reasoner` for the
        reasoning model).

        ## A local server: vLLM, Ollama, llama.cpp

        Local servers need no key (vLLM reads `$VLLM_API_KEY` if you started it with
        `--api-key`). The vLLM and llama.cpp profiles have no model: name the one your server
        serves with `-m` (or `%config ChatMagics.model`), else nbchat sends its own default,
        `{DEFAULT_MODEL}`, which the server does not know.

        | server | start it | then |
        |---|---|---|
        | Ollama | `ollama pull llama3.2` (the server runs on port 11434) | `%%chat -p ollama` |
        | vLLM | `vllm serve Qwen/Qwen3-8B` (port 8000) | `%%chat -p vllm -m Qwen/Qwen3-8B` |
        | llama.cpp | `llama-server -m model.gguf --port 8080` | `%%chat -p llamacpp -m model` |

        `%chat models -p ollama` lists the models a server offers.

        ## Your own profile

        A profile is a dict of settings: `base_url`, `api_key_env` (`""` for no key), `model`,
        and any other setting such as `temperature` or `system_prompt`. A profile that sets
        `base_url` must name `api_key_env` too: a key is only ever sent to the host it was paired
        with, so `$OPENAI_API_KEY` never reaches your lab server by accident.
        """
    ),
    code(
        """
        lab = {
            "base_url": "http://gpu-box.internal:8000/v1",
            "api_key_env": "LAB_API_KEY",
            "model": "qwen3-32b",
            "temperature": 0.2,
        }
        %config ChatMagics.profiles = {"lab": lab}
        """
    ),
    code("%chat config -p lab"),
    md(
        """
        ## For every notebook: `ipython_config.py`

        Settings made with `%config` can live in your IPython profile
        (`~/.ipython/profile_default/ipython_config.py`), loading nbchat in every kernel:

        ```python
        c = get_config()  # noqa: F821

        c.InteractiveShellApp.extensions = ["nbchat"]
        c.ChatMagics.profile = "qwen"
        c.ChatMagics.profiles = {
            "lab": {"base_url": "http://gpu-box.internal:8000/v1", "api_key_env": "", "model": "qwen3-32b"},
        }
        c.ChatMagics.temperature = 0.3
        ```

        The environment works too: `NBCHAT_PROFILE`, `NBCHAT_MODEL`, `OPENAI_BASE_URL`,
        `NBCHAT_OFFLINE`. What wins, from strongest: a cell's flags, its profile, `%config` (or
        `ipython_config.py`), the environment, the built-in defaults.

        ## One question, answered by the demo endpoint
        """
    ),
    code(
        """
        %%chat -p demo
        In one sentence: what does "OpenAI-compatible" mean for an API?
        """
    ),
]

NOTEBOOKS: dict[str, list[Cell]] = {
    "quickstart": QUICKSTART,
    "threads": THREADS,
    "cache": CACHE,
    "raw_json": RAW_JSON,
    "providers": PROVIDERS,
}
