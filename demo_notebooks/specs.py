"""The demo notebooks, cell by cell. ``build_demos.py`` writes and records them.

A cell is ``md(text)`` or ``code(source)``; ``code(source, save_first=True)`` saves the notebook
before the cell runs (as you would press Ctrl-S), for cells that read the saved file.
The answers to every prompt below are in ``demo_answers.json``.
"""

# ruff: noqa: E501 - Markdown tables, prompts and JSON lines are notebook content, one per line

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from textwrap import dedent

from nbchat.engine.profiles import BUILTIN_PROFILES, DEFAULT_MODEL

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


DEMO_PRICES = (
    '%config ChatMagics.prices = {"*": {"input": 0.40, "output": 1.60, "cached_input": 0.10}}'
)
SETUP = code(
    f"""
    %load_ext nbchat
    %config ChatMagics.profile = "demo"
    # Made-up prices for the demo endpoint (US dollars per million tokens), so that footers
    # show a cost; real providers are priced by genai-prices, with no table needed.
    {DEMO_PRICES}
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
        The demo endpoint is not a real provider, so it has no price: this table gives its models
        made-up ones (US dollars per million tokens), for the footers to show a cost. OpenAI,
        DeepSeek, Mistral, Gemini, OpenRouter and many more are priced without it, from
        genai-prices; an endpoint with no known price says so once, never $0.
        """
    ),
    code(DEMO_PRICES),
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

        `%chat usage` counts this session's tokens and dollars: *spent* on answers fetched from
        the server, *saved* by answers replayed from the notebook. Run the notebook again and
        every answer is replayed: nothing is spent.
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
        - `reasoning.ipynb`: reasoning models: the thinking folded apart, passed back
          (`send_reasoning`), `--reasoning-effort`, `Answer.reasoning`.
        - `tools_and_schemas.ipynb`: notebook functions as tools (`--tools`), answers bound to
          Python objects (`--schema`, `--json`).
        - `data_and_figures.ipynb`: DataFrames, figures, `{In[n]}`/`{Out[n]}` in a prompt,
          `ChatMagics.context_chars`.
        - `batch.ipynb`: one cell over many items (`--map`): a column of reviews classified with
          `--schema`, concurrency and rate limits, replays and resumes, `nbchat.map`, and the
          provider's batch API at half price (`--batch`).
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
        again and both are replayed from the saved file: nothing is spent.

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
        url = profile.get("base_url", "`$MODEL_PROXY_HOST/models/openapi`")  # colab: set by Colab
        rows.append(f"| `{name}` | {url} | {key} | {model} |")
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

THINKER = "nbchat-demo-thinker"  # the demo endpoint's reasoning model

REASONING = [
    md(
        """
        # Reasoning models: the thinking apart from the answer

        Reasoning models write out their thinking before they answer. DeepSeek in thinking
        mode, Qwen3 on DashScope with thinking on, and vLLM or llama.cpp servers running such
        models send it in a field of its own (`reasoning_content`). nbchat shows it live, dimmed,
        above the answer, then folds it away in a *Thinking* block you can open. What `-o`
        binds and `nbchat.ask(...).text` returns is the answer alone.
        """
    ),
    recorded("reasoning"),
    SETUP,
    md(
        f"""
        ## A question to a thinking model

        The demo endpoint's thinking model, `{THINKER}`, behaves like DeepSeek's thinking mode.
        The footer counts the tokens it spent thinking among the completion tokens.
        """
    ),
    code(
        f"""
        %%chat -m {THINKER}
        A bat and a ball cost 1.10 in total. The bat costs 1.00 more than the ball. How much does the ball cost?
        """
    ),
    md(
        """
        ## A follow-up: the thinking goes back

        DeepSeek's thinking mode refuses a follow-up whose earlier answers come without their
        thinking (`400 The reasoning_content in the thinking mode must be passed back to the
        API.`), and so does the demo model. nbchat sends the thinking back where it knows it is
        wanted; this local imitation of DeepSeek has to say so (why, and when you would, is
        explained below):
        """
    ),
    code("%config ChatMagics.send_reasoning = True"),
    md(
        """
        `--raw` shows, under `sent`, the request as it went out: in JupyterLab open `sent` →
        `messages` → `1` to see the first answer's `reasoning_content` go back.
        """
    ),
    code(
        f"""
        %%chat -m {THINKER} --raw
        And if the bat cost 2.00 more than the ball, with the same total?
        """
    ),
    md(
        """
        ## From code: `Answer.reasoning`

        `nbchat.ask` does from code what a `%%chat` cell does; with a `thread` it continues
        that thread. Show the answer (the last line of the cell): its output is where it is
        stored, so that the notebook replays it.
        """
    ),
    code(
        f"""
        import nbchat

        answer = nbchat.ask(
            "Give the general rule: the ball's price for a total T and a difference D.",
            thread="default",
            model="{THINKER}",
        )
        answer
        """
    ),
    md(
        """
        `.text` is the answer alone, `.reasoning` the thinking, and `.request` what was sent
        for it: the earlier answers went back with their thinking.
        """
    ),
    code(
        """
        print("Thinking:", answer.reasoning)
        print("Answer:", answer.text)
        print()
        for message in answer.request["body"]["messages"]:
            text = " ".join(message["content"].split())
            sent_back = "  + its thinking" if "reasoning_content" in message else ""
            print(f"{message['role']:>9}: {text[:40]}…{sent_back}")
        """
    ),
    md(
        """
        ## When to set `send_reasoning`

        Providers disagree about earlier thinking:

        - **DeepSeek's thinking mode** requires it back, as above.
        - **OpenAI** checks every message field and refuses unknown ones, so it must never
          receive it; the older `deepseek-reasoner` (R1) refuses it too.
        - Most other servers ignore it.

        `%config ChatMagics.send_reasoning` decides. `"auto"`, the default, sends it to
        DeepSeek's API (except `deepseek-reasoner`) and to no other host; when a provider
        refuses a request with a 400 that names the field, nbchat sends that request once
        more the other way, and remembers which way worked for this endpoint and model until
        the kernel restarts. So with `"auto"` every case works, at the cost of one refused request
        per session where nbchat guessed wrong.

        Set `True` where you know the server wants the thinking back but it is not DeepSeek's
        own API (a local imitation like the demo endpoint, a proxy, a self-hosted model), and
        `False` for a server that chokes on it; a profile can carry the setting too
        (`"send_reasoning": True`). Replay does not depend on it: a stored answer is found
        however it was asked.

        ## `--reasoning-effort`

        `--reasoning-effort low|medium|high` sends `reasoning_effort`, which OpenAI's
        reasoning models (and some compatible servers) read to decide how long to think. It is
        part of the request, so changing it asks again. (OpenAI's models send back no
        thinking text, only its token count; the demo endpoint ignores the setting.)
        """
    ),
    code(
        f"""
        %%chat -m {THINKER} --thread quick --reasoning-effort low
        Is 221 a prime number?
        """
    ),
    md(
        """
        ## The thinking counts against `--max-tokens`

        Thinking tokens are completion tokens: a small `--max-tokens` can run out before the
        answer starts. nbchat says so, keeps the thinking in view, and suggests a larger limit.
        """
    ),
    code(
        f"""
        %%chat -m {THINKER} --thread quick --max-tokens 40
        Is 1001 a prime number?
        """
    ),
    md(
        """
        ## What did it cost?

        `%chat usage` counts the thinking among the completion tokens and says how much of
        them it was.
        """
    ),
    code("%chat usage"),
]

TOOLS_AND_SCHEMAS = [
    md(
        """
        # Tools and structured output

        Two ways to get more than prose from a model: let it call functions of your notebook
        (*tools*), and have it answer in a shape you define, bound to a Python object
        (*structured output*).
        """
    ),
    recorded("tools_and_schemas"),
    SETUP,
    md(
        """
        ## A table and a function that looks it up

        Tide predictions for four stations on one spring-tide day (realistic but illustrative
        numbers), and a function a model may call. Its signature, type hints and docstring
        (Google, NumPy and reST styles are read) say what it does and what it takes.
        """
    ),
    code(
        '''
        STATIONS = {
            "Brest": {"high_water": "06:12", "high_m": 6.9, "low_water": "12:27", "low_m": 0.9},
            "Saint-Malo": {"high_water": "07:03", "high_m": 12.1, "low_water": "13:24", "low_m": 1.4},
            "Dover": {"high_water": "10:51", "high_m": 6.8, "low_water": "17:12", "low_m": 0.6},
            "Avonmouth": {"high_water": "08:14", "high_m": 13.4, "low_water": "14:39", "low_m": 0.7},
        }
        calls = []  # every call that really runs in this kernel


        def lookup(station: str) -> dict:
            """Today's predicted high and low water at a tide station.

            Args:
                station: The station's name as the table spells it, e.g. "Brest".

            Returns:
                The times (local) and heights (metres above chart datum).
            """
            calls.append(station)
            if station not in STATIONS:
                raise ValueError(f"no station {station!r}; the stations: {', '.join(STATIONS)}")
            return STATIONS[station]
        '''
    ),
    md(
        """
        `%chat tools lookup` shows the tool spec a model will be sent for it: the description
        from the docstring's summary, a JSON Schema of the parameters from the signature, each
        described by its docstring entry.
        """
    ),
    code("%chat tools lookup"),
    md(
        """
        ## `--tools`: the model calls, the notebook runs

        `--tools lookup` offers the function to the model. When it asks for calls (here two at
        once), nbchat runs them in this kernel, sends their results back, and asks again until
        the model answers. The calls and their results are folded above the answer. Only the
        functions named in `--tools` can run, and only with arguments that fit their
        signature.
        """
    ),
    code(
        """
        %%chat --tools lookup
        Which has the larger tidal range today, Brest or Saint-Malo?
        """
    ),
    md(
        """
        A call that fails is not an error of the cell: the exception goes back to the model as
        the call's result, and the model can try again.
        """
    ),
    code(
        """
        %%chat --tools lookup
        When is low water at St Malo today?
        """
    ),
    md(
        """
        `--max-tool-rounds N` (default 10) stops a model that keeps calling; `nbchat.ask(...,
        tools=[lookup])` does the same from code.

        ## A replay never runs a function

        The record keeps the whole exchange: calls, results and the answer. Replaying shows
        them as they were, marked *stored results, not run again*, and runs nothing;
        `--refresh` asks the model again, and then the functions do run. `calls` below lists the calls that ran in this kernel: four when this
        notebook was recorded; `[]` when you run it again and the answers are replayed (try
        `nbchat run --offline tools_and_schemas.ipynb -o replayed.ipynb`).
        """
    ),
    code("calls"),
    md(
        """
        ## `--schema`: an answer bound to a Python object

        Describe the shape with a pydantic model (a dataclass, a TypedDict or a JSON Schema
        dict work too). `--schema NAME` sends it as `response_format` (strict where the schema
        allows), and `-o NAME` binds the validated object. An answer that does not fit fails the
        cell in one line that names the field; nothing is bound then.
        """
    ),
    code(
        """
        from pydantic import BaseModel, Field


        class Sighting(BaseModel):
            species: str = Field(description="common English name")
            count: int
            place: str


        class FieldNotes(BaseModel):
            date: str = Field(description="ISO 8601, e.g. 2025-05-03")
            observer: str
            sightings: list[Sighting]
        """
    ),
    code(
        """
        %%chat --thread notes --schema FieldNotes -o notes
        Saturday 3 May 2025, A. Moreau. Low water at Saint-Malo was at 13:24. On the Sillon beach about thirty oystercatchers fed along the tide line, and two grey herons stood on the groyne. Later, from the causeway to the Grand Bé, I counted four common seals hauled out on the rocks.
        """
    ),
    code(
        """
        total = sum(sighting.count for sighting in notes.sightings)
        print(f"{notes.date}, {notes.observer}: {total} animals of {len(notes.sightings)} species")
        notes.sightings[-1]
        """
    ),
    md(
        """
        Replaying binds the same object again, without a request. From code,
        `nbchat.ask(text, schema=FieldNotes).value` is the object.

        ## `--json`: any JSON object

        `--json` asks for a JSON object (`response_format` `json_object`; OpenAI wants the
        word "JSON" in the prompt) and `-o` binds it parsed. `--schema NAME --json` asks the
        same and checks the answer against the schema here, for servers that refuse
        `json_schema`.
        """
    ),
    code(
        """
        %%chat --thread sky --json -o bodies
        As JSON keyed by name: the mass in kg and the mean distance from Earth in km of the Moon and of the Sun.
        """
    ),
    code(
        """
        def tidal_pull(body: dict) -> float:
            # The tide-raising force of a body goes as its mass over the cube of its distance.
            return body["mass_kg"] / body["distance_km"] ** 3


        ratio = tidal_pull(bodies["Sun"]) / tidal_pull(bodies["Moon"])
        print(f"The Sun's tide-raising force is {ratio:.0%} of the Moon's.")
        """
    ),
]

DATA_AND_FIGURES = [
    md(
        """
        # Data and figures in a prompt

        `{name}` in a `%%chat` cell puts the value of a variable into the message, rendered for
        a model: a DataFrame as a compact table, a matplotlib figure as an image, and `{In[n]}`
        and `{Out[n]}` as the code and the result of an earlier execution.
        """
    ),
    recorded("data_and_figures"),
    SETUP,
    md(
        """
        ## A DataFrame: a compact table

        One day of hourly readings from a tide gauge (simulated: a tide of 12.42 hours, and
        one bad sample).
        """
    ),
    code(
        """
        import matplotlib.pyplot as plt
        import pandas as pd

        levels = [2.63, 4.05, 5.44, 6.44, 6.80, 6.44, 5.44, 4.05, 2.63, 1.53, 1.02, 1.23]
        levels += [2.11, 3.44, 4.88, 6.08, 6.73, 6.68, 5.92, 4.66, 3.21, 5.10, 1.15, 1.05]
        readings = pd.DataFrame({"hour": range(24), "level_m": levels})
        """
    ),
    md(
        """
        A DataFrame (pandas or polars) or a Series is sent as a line with its shape, then a
        Markdown table with each column's dtype. One that fits the budget (below) is sent whole;
        a longer one keeps as many of its first and last rows as fit, and both the model and you
        are told what was left out.
        """
    ),
    code(
        """
        %%chat
        Here are today's readings from the gauge:

        {readings}

        When were high and low water, and does anything look wrong?
        """
    ),
    md(
        """
        ## A figure: an image

        A matplotlib figure (or a PIL image, an `IPython.display.Image`, PNG or JPEG bytes)
        becomes an image part of the message, for models that read images. The cell shows a
        thumbnail of what was sent above the answer. A figure is saved with everything that
        could vary pinned (dpi, margins, no version in the file), so drawing it again (with the
        same matplotlib) gives the same bytes, the same request, and the stored answer replays.
        """
    ),
    code(
        """
        fig, ax = plt.subplots(figsize=(5, 2.5))
        ax.plot(readings["hour"], readings["level_m"], marker="o")
        ax.set(xlabel="hour", ylabel="water level (m)", title="Tide gauge, one day")
        ax.grid(alpha=0.3)
        """
    ),
    md("In a thread of its own, so the table above is not sent again:"),
    code(
        """
        %%chat --thread plot
        {fig}

        This plot shows one day of readings from a tide gauge. Is the spike at 21:00 real, or a fault of the gauge?
        """
    ),
    md(
        """
        `%chat history` (like `--raw` and `%chat raw`) shows an image as its size in pixels and
        bytes, never the bytes themselves:
        """
    ),
    code("%chat history --thread plot"),
    md(
        """
        The image is stored once, in the record of the turn that sent it; later turns of the
        thread refer to it, so a long conversation about a figure does not copy it into every
        answer.

        ## Code and results: `{In[n]}` and `{Out[n]}`

        `{In[n]}` is the code of execution `n` and `{Out[n]}` its result, as IPython numbers
        them. A negative `n` counts back from the cell itself: `{In[-1]}` is the `%%chat` cell,
        `{In[-2]}` the execution before it, here the cell just below:
        """
    ),
    code(
        """
        jumps = readings["level_m"].diff().abs()
        readings[jumps > 1.5]
        """
    ),
    code(
        """
        %%chat
        I flagged the hours where the level changed by more than 1.5 m since the hour before:

        ```python
        {In[-2]}
        ```

        which gives

        {Out[-2]}

        Is 1.5 m a good threshold?
        """
    ),
    md(
        """
        ## The budget: `ChatMagics.context_chars`

        Each value may take `ChatMagics.context_chars` characters (8,000 by default). A table
        or an array is sent whole when it fits and shrinks along its rows and items only to fit;
        other text is cut and says how
        much more there was. A table that does not fit even at its smallest is refused with
        an error that names the setting, rather than sent cut mid-way. (A `str` is your own
        text and is always sent whole.)
        """
    ),
    code("%config ChatMagics.context_chars = 200"),
    code(
        """
        %%chat --thread small
        How many readings are there, and at which hours?

        {readings}
        """
    ),
]

BATCH = [
    md(
        """
        # Batch: one cell over many items

        Most real work with a model in a notebook is not a conversation but a column: classify,
        extract or summarise each row of a table. `%%chat --map NAME` sends the cell once per
        item of `NAME`, each item its own request, several at once; `-o` gets the answers in
        input order, and every answer is stored in the cell's output, so running the cell again
        costs nothing and a longer list asks only for what is new. At the end, `--batch` sends
        a column through the provider's own batch API instead, at half the price.
        """
    ),
    recorded("batch"),
    SETUP,
    md(
        """
        ## Ten customer reviews

        The reviews of a small shop for sailors and kayakers (invented for this demo).
        """
    ),
    code(
        """
        import pandas as pd

        reviews = pd.DataFrame(
            [
                ("tide clock", 5, "Set it once at high water and it has kept time for months."),
                ("dry bag", 2, "The roll-top leaked on my first kayak trip. Phone nearly lost."),
                ("rain jacket", 4, "Dry in a real downpour and packs small; the hood flaps in wind."),
                ("headlamp", 1, "Died after two weeks, and the battery cover cracked."),
                ("tide tables", 5, "Clear, pocket-sized, with moon phases. I buy one every year."),
                ("kayak paddle", 3, "Light and stiff, but the blade angle slips unless tightened hard."),
                ("wetsuit gloves", 4, "Warm enough for October swims; seams rubbed a little at first."),
                ("flask", 5, "Tea still hot after eight hours on the boat. Worth every penny."),
                ("dry bag", 2, "Delivery took three weeks and nobody answered my emails."),
                ("rain jacket", 3, "Great jacket, but the sizing runs small: order one size up."),
            ],
            columns=["product", "stars", "text"],
        )
        reviews
        """
    ),
    md(
        """
        ## The shape of a label

        With `--schema` each answer must fit a pydantic model (a dataclass, a TypedDict or a
        JSON Schema dict work too), as in `tools_and_schemas.ipynb`: here a sentiment from a
        fixed list, a topic of a word or two, and how sure the model is.
        """
    ),
    code(
        """
        from typing import Literal

        from pydantic import BaseModel, Field


        class Review(BaseModel):
            sentiment: Literal["positive", "negative", "mixed"]
            topic: str = Field(description="what the review is mostly about, in one or two words")
            confidence: float = Field(ge=0, le=1)
        """
    ),
    md(
        """
        ## `--map`: one request per review

        `--map NAME` takes the name of a variable: a list, a tuple, a range, a pandas Series,
        or a DataFrame, whose rows become dicts. It has to be a plain name, so bind the column
        first:
        """
    ),
    code('texts = reviews["text"]'),
    md(
        """
        In the cell, `{item}` stands for the item. Each review is sent as a request of its
        own, without the thread's earlier turns (a `--system` prompt of the thread still
        applies), and `-o labels` gets the answers in order: validated `Review` objects, in a
        pandas Series on the same index as `texts`. While it runs, the cell shows a progress
        bar (done / total, replayed, failed, tokens, items per second, time left); the summary
        below takes its place when the batch is done.
        """
    ),
    code(
        """
        %%chat --map texts --schema Review -o labels --concurrency 4
        Classify this customer review by sentiment and topic: {item}
        """
    ),
    md(
        """
        ## Back into the table

        Each label is a `Review`; `model_dump()` makes it a dict, and a DataFrame of those on the
        same index joins the reviews row by row.
        """
    ),
    code(
        """
        table = pd.DataFrame([label.model_dump() for label in labels], index=labels.index)
        labelled = reviews.join(table)
        labelled[["product", "stars", "sentiment", "topic", "confidence"]]
        """
    ),
    code('labelled["sentiment"].value_counts()'),
    md(
        """
        ## Running it again replays

        Here is the same cell again, as if you ran it a second time: every review has a stored
        answer, so nothing is sent, and the summary says they were replayed. The same goes
        after a restart, or for `nbchat run --offline batch.ipynb`: each item is found by its
        own request (endpoint, model, parameters, schema, system prompt and the item's text),
        wherever in the notebook it was stored.
        """
    ),
    code(
        """
        %%chat --map texts --schema Review -o labels --concurrency 4
        Classify this customer review by sentiment and topic: {item}
        """
    ),
    md(
        """
        ## A longer list asks only for what is new

        A new review comes in. With it added to the list, the same cell sends one request,
        for the new review, and replays the other ten.
        """
    ),
    code(
        """
        new_review = ("headlamp", 4, "The replacement works, and the new battery cover is much sturdier.")
        added = pd.DataFrame([new_review], columns=reviews.columns)
        reviews = pd.concat([reviews, added], ignore_index=True)
        texts = reviews["text"]
        """
    ),
    code(
        """
        %%chat --map texts --schema Review -o labels --concurrency 4
        Classify this customer review by sentiment and topic: {item}
        """
    ),
    md(
        """
        `%chat usage` counts what this session spent and what replays saved. When this notebook
        was recorded, the *Spent* line counted 11 requests: 10 for the first run and 1 for the
        new review; the 20 replayed answers were free. Run the notebook again and nothing is
        spent.
        """
    ),
    code("%chat usage"),
    md(
        """
        ## From code: `nbchat.map`

        `nbchat.map(template, items)` does the same from Python, with the same options
        (`schema=`, `json=`, `concurrency=`, `rpm=`, `model=`...). Given a DataFrame, each item
        is a row as a dict: `{item[stars]}` reaches into it (`{item.stars}` does too). Here, a
        reply to each negative review:
        """
    ),
    code(
        """
        import nbchat

        table = pd.DataFrame([label.model_dump() for label in labels], index=labels.index)
        unhappy = reviews[table["sentiment"] == "negative"]
        replies = nbchat.map(
            "Write a two-sentence reply from the shop to this {item[stars]}-star review "
            "of our {item[product]}: {item[text]}",
            unhappy,
        )
        """
    ),
    code(
        """
        for product, reply in zip(unhappy["product"], replies, strict=True):
            print(f"{product}: {reply}\\n")
        """
    ),
    md(
        """
        The summary of `nbchat.map` is shown in the output of the cell that calls it, and its
        answers are stored there, so this cell replays like the others.

        ## Concurrency and rate limits

        - `--concurrency N` (default 8) requests are in flight at once, sent from worker threads
          of the kernel while the cell shows the progress. Ten reviews at four at a time take
          about as long as three requests.
        - A `429 Too Many Requests`, or any answer with a `Retry-After` header, pauses **every**
          worker until the wait is over, not only the one that was refused, so the batch backs
          off as a whole instead of hammering the limit with its other workers.
        - `--rpm N` spaces the requests evenly to stay under N a minute (the first goes at once):
          `--rpm 60` on a free tier that allows 60.
        - An item's failed request is retried as any request is (`ChatMagics.max_retries`, with
          backoff); replayed items cost no request and count against no limit.

        ## What is stored

        The summary output of a `--map` cell holds one record of kind `batch`. What every item
        shares is stored once: the template (the cell's text around `{item}`), the endpoint,
        model and parameters (the schema among them), the system prompt. Per item, only its
        fill (the review's text), the answer, its token usage and timing. In this file that is
        about 2 kB for what the items share and, per item, its text plus about 450 bytes (JSON
        keys, ids, timing, and the file's indentation). Each `--map` cell stores every item it
        bound, replayed ones included, so the cell stands on its own. `-o` is not stored: it is
        bound again, from the stored answers, each time the cell runs.

        Each item's key is that of its own request, so a stored answer is found by any cell
        that sends the same request, as the re-runs above show. Edit the template, the schema
        or the model and every item is asked again; edit one review and only that one is.

        ## When items fail

        An item whose request fails after its retries, or whose answer does not fit the schema,
        does not stop the others. When the batch is done, `-o` is bound with `None` in the
        failed places, every answered item is stored, and then the cell fails with one line,
        such as

        ```text
        BatchError: 1 of 11 items failed: item 4: the answer does not fit Review: confidence: Input should be less than or equal to 1. The others are bound and stored; run the cell again to retry the failed ones.
        ```

        so *Run All* stops there rather than going on with holes in the data. Running the cell
        again replays the stored items and asks only for the failed ones. Ctrl-C stops the
        batch the same way: what completed is kept and stored, and the next run resumes. In
        offline mode (`NBCHAT_OFFLINE=1`) the stored items replay and the others fail, named.
        `nbchat.map` raises the same `BatchError`; its `.values` holds what was answered.
        """
    ),
    md(
        """
        ## At half price: the provider's batch engine

        For a long column that can wait, `--batch` hands the items to the endpoint's own batch
        API (`/files` and `/batches`: OpenAI, DashScope's compatible mode, Groq, Together)
        instead of sending them one by one: one uploaded file of requests, answered within 24
        hours, at half the price of real time and under rate limits of its own. The demo
        endpoint has a batch API too, so this notebook can show one.

        Here, a reply from the shop to every review. The template is the one `nbchat.map` used
        above for the negative reviews, so their replies are already in this notebook: they are
        replayed, and only the other reviews go into the batch. Items already stored are never
        resent, and identical items are sent once.

        A batch usually takes minutes to hours, and nbchat asks for its status every
        `ChatMagics.batch_poll_s` seconds (30 by default). The demo endpoint ends a batch after
        two status checks, so for this recording the interval is lowered to one second:
        """
    ),
    code("%config ChatMagics.batch_poll_s = 1"),
    code(
        """
        %%chat --map reviews --batch -o shop_replies
        Write a two-sentence reply from the shop to this {item[stars]}-star review of our {item[product]}: {item[text]}
        """
    ),
    md(
        """
        In JupyterLab the cell returns as soon as the batch is made, and the kernel is free
        while the provider works. Run that way against the demo endpoint, the output first
        read:

        ```text
        --map reviews: 11 items · 3 answered (3 replayed) · 8 waiting for the provider's batch · saved $0.00021 · 1.0 s
        #  reviews                                                       answer
        1  {'product': 'dry bag', 'stars': 2, 'text': 'The roll-top le…  We're sorry the roll-top let water in on your first trip; that seal should hold…
        3  {'product': 'headlamp', 'stars': 1, 'text': 'Died after two…  We're sorry your headlamp failed so soon; a cracked battery cover should never…
        8  {'product': 'dry bag', 'stars': 2, 'text': 'Delivery took t…  We're sorry your order took three weeks and that your emails went unanswered; t…
        batch-2: validating · 0 / 8 done · submitted 2026-12-06T17:38:43Z
        The kernel is free: shop_replies is bound when it ends; this output follows the batch (every 1 s).
        ```

        The three replies `nbchat.map` wrote are there already; the eight others wait for the
        batch. The output updates itself at each status check (*validating*, then
        *in_progress*), and when the batch ends it becomes the summary you see above, with
        `shop_replies is bound to 11 values (the batch ended after the cell returned).` as its
        last line. This notebook was recorded headless (nbclient), and headless runs always wait
        in the cell, as `--wait` does, so the output above is the final one: the answers are
        stored in it as the same batch record as a real-time `--map` (each batch answer marked
        with its batch's id), and `shop_replies` is bound, a pandas Series on the index of
        `reviews`.

        The demo's made-up price table has one price for real time and batch alike, so *spent*
        is the same per token as above. At a provider genai-prices knows, batch answers are
        priced at its batch rate, and the summary says what real time would have cost.
        """
    ),
    code(
        """
        pd.set_option("display.max_colwidth", None)
        reviews.assign(reply=shop_replies)[["product", "stars", "reply"]]
        """
    ),
    md(
        """
        `%chat batches` lists this notebook's provider batches: those this session submitted,
        and any the saved notebook's outputs still wait for, with their status. When this
        notebook was recorded it showed the batch above, collected. Run the notebook again and
        the cell above replays without submitting anything, so it says there is none.
        """
    ),
    code("%chat batches"),
    md(
        """
        ## Running it again replays, here too

        The answers of a batch are stored like those of a real-time `--map`, under the same
        keys: the same cell again sends nothing, not even a status check, and a real-time run
        (`--no-batch`) would find them as well.
        """
    ),
    code(
        """
        %%chat --map reviews --batch -o shop_replies
        Write a two-sentence reply from the shop to this {item[stars]}-star review of our {item[product]}: {item[text]}
        """
    ),
]

_TIDES_SERVER = (Path(__file__).resolve().parent / "tides_server.py").read_text(encoding="utf-8")
_INDENTED_SERVER = _TIDES_SERVER.strip().replace("\n", "\n        ")

MCP_TOOLS = [
    md(
        """
        # MCP servers as tools

        The tools people give models now come as MCP servers (files, databases, search, issue
        trackers). nbchat offers a server's tools to the model through the same loop as notebook
        functions, and stores the whole exchange in the notebook: running it again replays the
        calls and their results, and never starts or contacts the server. A query, a write or a
        paid search runs once.
        """
    ),
    recorded("mcp_tools"),
    SETUP,
    md(
        f"""
        ## A server

        `tides_server.py`, beside this notebook, is a small MCP server written with the official
        SDK (`pip install "nbchat-llm[mcp]"` brings it): today's tide predictions for four
        stations, over stdio.

        ```python
        {_INDENTED_SERVER}
        ```

        Declare it once. A server is a command (stdio) or a URL (streamable HTTP); a secret it
        needs comes from an environment variable (`headers_env`, or `$NAME` in an `env` value),
        never from the notebook. Nothing starts yet: a server starts when a cell first needs it.
        """
    ),
    code(
        """
        %config ChatMagics.mcp_servers = {"tides": {"command": ["python", "tides_server.py"]}}
        """
    ),
    md(
        """
        ## A question its tools answer

        `--tools mcp:tides` offers every tool of the server (`mcp:tides/tide` would offer one);
        the spec sent is the server's own name, description and input schema. The calls fold
        above the answer, as notebook functions' do; open the fold to see each call and its
        result.
        """
    ),
    code(
        """
        %%chat --tools mcp:tides
        Which station has the larger tidal range today, Brest or Dover?
        """
    ),
    md(
        """
        `%chat mcp` lists the declared servers, their state and their tools. In the run that
        recorded this notebook, the server had started for the cell above; run the notebook
        again and the cell above replays from its stored answer, so this says *not started*:
        replay never starts a server, and needs neither the server nor the SDK.
        """
    ),
    code("%chat mcp"),
    md(
        """
        ## Mixed with notebook functions

        A cell may offer both. A server's tool keeps its name unless another offered tool has
        it too; then it is sent as `tides__tide`, so it never stands in for your function.
        """
    ),
    code(
        '''
        def spring_tide(range_m: float) -> bool:
            """Whether a tidal range, in metres, is a spring-tide range at these stations."""
            return range_m > 5.5
        '''
    ),
    code(
        """
        %%chat --tools spring_tide,mcp:tides/tide
        Is Saint-Malo at a spring tide today?
        """
    ),
]

NOTEBOOKS: dict[str, list[Cell]] = {
    "quickstart": QUICKSTART,
    "threads": THREADS,
    "cache": CACHE,
    "raw_json": RAW_JSON,
    "providers": PROVIDERS,
    "reasoning": REASONING,
    "tools_and_schemas": TOOLS_AND_SCHEMAS,
    "data_and_figures": DATA_AND_FIGURES,
    "batch": BATCH,
    "mcp_tools": MCP_TOOLS,
}
