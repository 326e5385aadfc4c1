"""Real providers' shapes in a real kernel (the fake server answers in each, see
tests/support/fake_providers.py): what a cell shows live and keeps, what goes back on the next
turn, and after a restart from the saved notebook."""

from __future__ import annotations

import json

import nbformat

from nbchat.cli.main import main
from nbchat.store.record import RECORD_MIME

from support.fake_openai import PASS_IT_BACK, THINKING_MODEL, Fault, answer_for, thinking_for
from support.fake_providers import (
    ANSWERING_MODEL,
    AZURE_ROUTER_MODEL,
    ENCRYPTED,
    GEMINI_MODEL,
    MISTRAL_MODEL,
    ROUTER_MODEL,
    SIGNATURE,
    TAGGED_MODEL,
)
from support.kernel_driver import Execution, Kernel, save_notebook

NO_THINKING = " "  # what an answer without thinking carries to DeepSeek (V4 Pro refuses "")

LOOKUP = '''\
import json
looked_up = []

def lookup(city: str) -> str:
    """The weather in a city.

    Args:
        city: The city.
    """
    looked_up.append(city)
    return f"sunny in {city}"
'''


def ask(kernel: Kernel, prompt: str, cell_id: str, flags: str = "", **kwargs) -> Execution:
    return kernel.run(f"%%chat {flags}\n{prompt}", cell_id=cell_id, **kwargs)


def record_of(execution: Execution) -> dict:
    (record,) = execution.data(RECORD_MIME)
    return record


def html_of(execution: Execution) -> str:
    (html,) = execution.data("text/html")
    return html


def live_views(execution: Execution) -> list[str]:
    """Every value the live view was sent."""
    return [
        str(m["content"]["data"].get("state", {}).get("value", ""))
        for m in execution.messages
        if m["msg_type"] == "comm_msg"
    ]


def sent(server, index: int = -1) -> list[dict]:
    return server.chat_requests[index].body["messages"]


def expected(prompt: str, users: int = 1) -> tuple[str, str]:
    """The fake's answer to the ``users``-th user message ``prompt``, and its thinking."""
    messages = [{"role": "user", "content": "x"}] * (users - 1)
    body = {"messages": [*messages, {"role": "user", "content": prompt}]}
    return answer_for(body), "".join(thinking_for(body))


# -- 1. Mistral's typed parts --------------------------------------------------------------------


def test_typed_thinking_is_shown_apart_and_the_answer_bound(kernel, server):
    answer, thought = expected("Why is the sea salty?")
    done = ask(kernel, "Why is the sea salty?", "c1", f"-m {MISTRAL_MODEL} -o said", check=True)
    html = html_of(done)
    assert "<details><summary>Thinking · " in html
    assert thought.strip() in html and answer in html.split("</details>", 1)[1]
    assert any("Thinking ·" in view for view in live_views(done)), "shown live"
    assert kernel.run("print(said)", check=True).stdout.strip() == answer
    assert record_of(done)["messages"][1]["content"][0]["type"] == "thinking"
    ask(kernel, "And rivers?", "c2", f"-m {MISTRAL_MODEL}", check=True)
    assert sent(server)[1] == {"role": "assistant", "content": answer}, "the text goes back"


# -- 2, 3. Gemini: tool calls without index, thought signatures back ---------------------------


def test_gemini_tool_calls_run_apart_and_their_signatures_go_back(kernel, server):
    kernel.run(LOOKUP, check=True)
    server.script(Fault(tool_calls=[("lookup", {"city": "Paris"}), ("lookup", {"city": "Rome"})]))
    flags = f"-m {GEMINI_MODEL} --tools lookup"
    done = ask(kernel, "Weather in Paris and Rome?", "c1", flags, check=True)
    assert json.loads(kernel.run("print(json.dumps(looked_up))", check=True).stdout) == [
        "Paris",
        "Rome",
    ]
    assert html_of(done).count("lookup(") == 2
    # Refused once without the signature (the fake's host is not known to want it), then
    # sent again with it: learned for this endpoint and model.
    assert len(server.chat_requests) == 3
    calls = sent(server)[1]["tool_calls"]
    assert calls[0]["extra_content"] == {
        "google": {"thought_signature": SIGNATURE + calls[0]["id"]}
    }
    stored = record_of(done)["messages"][1]["tool_calls"]
    assert stored[0]["extra_content"] == calls[0]["extra_content"]
    ask(kernel, "Warmer tomorrow?", "c2", f"-m {GEMINI_MODEL}", check=True)
    assert sent(server)[1]["tool_calls"] == stored, "sent back on the next turn as well"


# -- 3. after a restart, from the saved notebook -------------------------------------------------


def test_provider_fields_go_back_from_a_reloaded_thread(kernel, server, chat_env):
    path = chat_env / "providers.ipynb"
    kernel.run(f"import os; os.environ['NBCHAT_NOTEBOOK'] = {str(path)!r}", check=True)
    kernel.run(LOOKUP, check=True)
    cells = [
        ("c1", f"%%chat -m {ROUTER_MODEL}\nThink first."),
        ("c2", f"%%chat -m {GEMINI_MODEL} --tools lookup\nWeather in Oslo?"),
    ]
    runs = {"c1": kernel.run(cells[0][1], cell_id="c1", check=True)}
    server.script(Fault(tool_calls=[("lookup", {"city": "Oslo"})]))
    runs["c2"] = kernel.run(cells[1][1], cell_id="c2", check=True)
    save_notebook(path, [(cell_id, source, runs[cell_id]) for cell_id, source in cells])
    kernel.restart()
    kernel.run(f"import os; os.environ['NBCHAT_NOTEBOOK'] = {str(path)!r}", check=True)
    kernel.run("%config ChatMagics.send_reasoning = True", check=True)
    kernel.run(LOOKUP, check=True)  # its spec is part of the request (it is not run)
    server.reset()
    for cell_id, source in cells:
        assert "replayed" in html_of(kernel.run(source, cell_id=cell_id, check=True))
    assert server.chat_requests == [], "stored answers are found whatever form they were sent in"
    ask(kernel, "And now?", "c3", f"-m {ROUTER_MODEL}", check=True)
    router, _, gemini = sent(server)[1], sent(server)[2], sent(server)[3]
    assert ENCRYPTED in json.dumps(router["reasoning_details"])
    assert router["reasoning"]
    assert gemini["tool_calls"][0]["extra_content"]["google"]["thought_signature"]


def test_a_strict_provider_never_receives_provider_fields(kernel, server):
    kernel.run("%config ChatMagics.send_reasoning = True", check=True)
    ask(kernel, "Think first.", "c1", f"-m {ROUTER_MODEL}", check=True)
    kernel.run("%config ChatMagics.send_reasoning = 'auto'", check=True)
    ask(kernel, "Then answer.", "c2", "-m peer-strict", check=True)
    assert all(set(message) <= {"role", "content"} for message in sent(server))


# -- 5. OpenRouter's mid-stream error ------------------------------------------------------------


def test_an_error_beside_the_choices_fails_the_cell_in_one_line(kernel, server):
    error = {"code": 502, "message": "Token limit reached"}
    server.script(Fault(error_after=3, chunk_error=error, finish_reason="error"))
    failed = ask(kernel, "one two three four five", "c1")
    assert failed.status == "error"
    assert "Token limit reached" in failed.error["evalue"]
    assert len(failed.error["traceback"]) == 1
    html = html_of(failed)
    assert "<p>Reply #1 to:</p>" in html and "incomplete, not stored" in html
    assert failed.data(RECORD_MIME) == []
    ask(kernel, "one two three four five", "c1", check=True)
    assert len(server.chat_requests) == 2, "never replayed: asked again"


# -- 6. Azure's model router -----------------------------------------------------------------------


def test_the_model_that_answered_is_recorded(kernel, server):
    done = ask(kernel, "Route me", "c1", f"-m {AZURE_ROUTER_MODEL}", check=True)
    record = record_of(done)
    assert record["responses"][0]["model"] == ANSWERING_MODEL
    assert record["responses"][0]["id"]
    assert ANSWERING_MODEL in html_of(done)


# -- 7. <think> tags -------------------------------------------------------------------------------


def test_tagged_thinking_is_shown_and_stored_as_thinking(kernel, server):
    answer, thought = expected("Why is the sky blue?")
    done = ask(kernel, "Why is the sky blue?", "c1", f"-m {TAGGED_MODEL}", check=True)
    views = live_views(done)
    assert any("Thinking ·" in view for view in views)
    assert not any("think&gt;" in view or "<think>" in view for view in views)
    html = html_of(done)
    assert "<details><summary>Thinking · " in html
    assert "<think>" not in html and "think&gt;" not in html
    message = record_of(done)["messages"][1]
    assert message["content"] == answer
    assert message["reasoning_content"].strip() == thought.strip()


# -- 9. a surrogate pair split across chunks ------------------------------------------------------


TEXT = "Tides 🌊 and the 🌙."


def test_split_surrogates_in_a_cell_are_joined_shown_and_stored(kernel, server):
    server.script(Fault(text=TEXT, split_surrogates=True, delay=0.002))
    done = ask(kernel, "Emoji please", "c1")
    assert done.status == "ok", done.error
    assert TEXT in html_of(done)
    assert record_of(done)["messages"][1]["content"] == TEXT
    # Each raw chunk holds half a character: shown replaced, never a traceback.
    chunks = kernel.run("%chat raw --chunks", check=True)
    assert "\ufffd" in json.dumps(chunks.data("application/json"), ensure_ascii=False)
    again = ask(kernel, "Emoji please", "c1", check=True)
    assert "replayed" in html_of(again) and len(server.chat_requests) == 1


def test_split_surrogates_headless_are_stored(capsys, chat_env, server):
    path = chat_env / "emoji.ipynb"
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(s) for s in ("%load_ext nbchat", "%%chat\nHi")]
    nbformat.write(notebook, path)
    server.script(Fault(text=TEXT, split_surrogates=True))
    code = main(["run", str(path), "--inplace"])
    out, err = capsys.readouterr()
    assert (code, err) == (0, ""), out
    (cell,) = [c for c in nbformat.read(path, as_version=4).cells if "%%chat" in c.source]
    (stored,) = [o["data"][RECORD_MIME] for o in cell.outputs if RECORD_MIME in o.get("data", {})]
    assert stored["messages"][1]["content"] == TEXT


def test_split_surrogates_in_thinking_and_from_ask(kernel, server):
    kernel.run("%config ChatMagics.send_reasoning = False", check=True)
    server.responses["Think in emoji"] = {"reasoning": "Hmm 🤔", "text": TEXT}
    try:
        server.script(Fault(split_surrogates=True))
        code = f"import nbchat\nanswer = nbchat.ask('Think in emoji', model={THINKING_MODEL!r})"
        done = kernel.run(f"{code}\nprint(answer.reasoning, answer.text)", cell_id="c1")
    finally:
        del server.responses["Think in emoji"]
    assert done.status == "ok", done.error
    assert done.stdout.strip() == f"Hmm 🤔 {TEXT}"


# -- 17. switching to a thinking model mid-thread --------------------------------------------------


def test_a_thread_switches_to_a_thinking_model(kernel, server):
    ask(kernel, "First", "c1", check=True)  # peer-small does not think
    second = ask(kernel, "Second", "c2", f"-m {THINKING_MODEL}", check=True)
    assert record_of(second)["messages"][1]["reasoning_content"]
    refused, padded = server.chat_requests[1].body, server.chat_requests[2].body
    assert "reasoning_content" not in refused["messages"][1]
    assert padded["messages"][1] == {
        "role": "assistant",
        "content": "Reply #1 to: First",
        "reasoning_content": NO_THINKING,
    }
    ask(kernel, "Third", "c3", f"-m {THINKING_MODEL}", check=True)
    assert len(server.chat_requests) == 4, "learned: asked at once"
    assert (
        sent(server)[1]["reasoning_content"] == NO_THINKING
        and sent(server)[3]["reasoning_content"]
        == record_of(second)["messages"][1]["reasoning_content"]
    )


def test_a_switch_that_cannot_be_sent_says_what_to_do(kernel, server):
    kernel.run("%config ChatMagics.send_reasoning = False", check=True)
    ask(kernel, "First", "c1", check=True)
    failed = ask(kernel, "Second", "c2", f"-m {THINKING_MODEL}")
    assert failed.status == "error" and len(failed.error["traceback"]) == 1
    message = failed.error["evalue"]
    assert PASS_IT_BACK in message and "--new" in message and "--thread" in message
    fresh = ask(kernel, "Second", "c2", f"-m {THINKING_MODEL} --new", check=True)
    assert record_of(fresh)["messages"][1]["reasoning_content"]
