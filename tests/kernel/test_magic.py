"""%%chat in a real kernel against the loopback server: threads, display, errors, commands."""

from __future__ import annotations

import json

import pytest

from nbchat.store.record import RECORD_MIME

from support.chat_cells import assert_short_error, chat, final_html, widget_html
from support.env import TEST_KEY
from support.fake_openai import Fault, answer_for
from support.html_check import visible_text
from support.kernel_driver import WIDGET_MIME


def sent_messages(server, index: int = -1) -> list[dict[str, str]]:
    return server.chat_requests[index].body["messages"]


def test_turns_carry_the_cells_above_as_context(kernel, server):
    chat(kernel, "First question", cell_id="c1", check=True)
    chat(kernel, "Second question", cell_id="c2", check=True)
    third = chat(kernel, "Third question", cell_id="c3", check=True)

    assert [m["content"] for m in sent_messages(server)] == [
        "First question",
        "Reply #1 to: First question",
        "Second question",
        "Reply #2 to: Second question",
        "Third question",
    ]
    assert [m["role"] for m in sent_messages(server)] == ["user", "assistant"] * 2 + ["user"]
    assert visible_text(final_html(third)).startswith("Reply #3 to: Third question")


def test_rerunning_an_edited_cell_replaces_its_turn(kernel, server):
    for cell_id, text in [("c1", "one"), ("c2", "two"), ("c3", "three")]:
        chat(kernel, text, cell_id=cell_id, check=True)

    chat(kernel, "two, edited", cell_id="c2", check=True)
    assert [m["content"] for m in sent_messages(server)] == [
        "one",
        "Reply #1 to: one",
        "two, edited",
    ]
    chat(kernel, "three", cell_id="c3", check=True)
    assert [m["content"] for m in sent_messages(server)] == [
        "one",
        "Reply #1 to: one",
        "two, edited",
        "Reply #2 to: two, edited",
        "three",
    ]
    assert len(server.chat_requests) == 5


def test_threads_are_separate_and_new_starts_afresh(kernel, server):
    chat(kernel, "alpha one", flags="--thread a", cell_id="c1", check=True)
    chat(kernel, "beta one", flags="--thread b", cell_id="c2", check=True)
    chat(kernel, "alpha two", flags="--thread a", cell_id="c3", check=True)
    assert [m["content"] for m in sent_messages(server)] == [
        "alpha one",
        "Reply #1 to: alpha one",
        "alpha two",
    ]
    chat(kernel, "alpha fresh", flags="--thread a --new", cell_id="c4", check=True)
    assert sent_messages(server) == [{"role": "user", "content": "alpha fresh"}]
    chat(kernel, "alpha after", flags="--thread a", cell_id="c5", check=True)
    assert [m["content"] for m in sent_messages(server)] == [
        "alpha fresh",
        "Reply #1 to: alpha fresh",
        "alpha after",
    ]


def test_system_cell_sends_nothing_and_governs_the_cells_below(kernel, server):
    system = chat(kernel, "You are terse.", flags="--system", cell_id="s", check=True)
    assert server.chat_requests == []
    assert "System prompt" in final_html(system)
    (record,) = system.data(RECORD_MIME)
    assert record["kind"] == "system"

    chat(kernel, "Hi", cell_id="c1", check=True)
    assert sent_messages(server) == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Hi"},
    ]


def test_interpolation_replaces_defined_names_and_leaves_other_braces(kernel, server):
    kernel.run("topic = 'tides'", check=True)
    body = 'Explain {topic}. Keep {undefined} and {"a": {"b": 1}} and {{topic}} and f"{x!r}".'
    chat(kernel, body, cell_id="c1", check=True)
    assert sent_messages(server)[-1]["content"] == (
        'Explain tides. Keep {undefined} and {"a": {"b": 1}} and {{topic}} and f"{x!r}".'
    )


def test_a_mistyped_name_is_sent_as_written_and_said_below_the_cell(kernel, server):
    kernel.run("df = 'the table'", check=True)
    done = chat(kernel, "Summarise {dff}, then {dff} again, and {nowhere}.", cell_id="c1")
    assert done.status == "ok", done.error
    assert (
        sent_messages(server)[-1]["content"] == "Summarise {dff}, then {dff} again, and {nowhere}."
    )
    notes = [line for line in done.notes.splitlines() if "not defined" in line]
    assert notes == [
        "nbchat: {dff}: not defined, sent as written (did you mean {df}?)",
        "nbchat: {nowhere}: not defined, sent as written",
    ]


def test_out_binds_the_answer_text(kernel, server):
    chat(kernel, "Name a colour", flags="-o colour", cell_id="c1", check=True)
    shown = kernel.run("print(repr(colour))", check=True)
    assert shown.stdout.strip() == repr("Reply #1 to: Name a colour")


def test_final_output_is_one_markdown_bundle_with_the_record(kernel, server):
    done = chat(kernel, "Hello", cell_id="c1", check=True)
    displays = done.displays
    assert len(displays) == 1, "the widget must be replaced in place, not kept beside"
    data = displays[0]["data"]
    assert WIDGET_MIME not in data
    assert set(data) == {"text/html", "text/plain", RECORD_MIME}
    record = data[RECORD_MIME]
    assert record["schema"] == 2 and record["kind"] == "turn"
    assert record["cell_id"] == "c1" and record["thread"] == "default"
    assert record["messages"][0] == {"role": "user", "content": "Hello"}
    assert (record["parent"], record["request"]["system"]) == (None, None)
    assert record["request"]["base_url"] == server.base_url
    assert record["messages"][1] == {"role": "assistant", "content": "Reply #1 to: Hello"}
    assert record["responses"][0]["usage"]["total_tokens"] > 0
    assert record["key"].startswith("v2:")
    assert "peer-small" in data["text/html"] and "tokens" in data["text/html"]
    assert TEST_KEY not in json.dumps(done.outputs)
    assert done.count("comm_open") >= 1, "the live view is an ipywidgets view"


def test_no_stream_gives_the_same_record_shape(kernel, server):
    done = chat(kernel, "Hello", flags="--no-stream", cell_id="c1", check=True)
    assert server.chat_requests[-1].body["stream"] is False
    (record,) = done.data(RECORD_MIME)
    assert record["timing"]["streamed"] is False
    assert record["messages"][1]["content"] == "Reply #1 to: Hello"


def test_raw_adds_a_separate_collapsed_json_output(kernel, server):
    done = chat(kernel, "Hello", flags="--raw", cell_id="c1", check=True)
    displays = done.displays
    assert len(displays) == 2
    answer, raw = displays
    assert "application/json" not in answer["data"]
    assert raw["data"]["application/json"]["messages"][1]["content"] == "Reply #1 to: Hello"
    assert raw["metadata"]["application/json"] == {"expanded": False}


@pytest.mark.parametrize("flags", ["", "--no-stream"])
def test_raw_shows_the_whole_body_sent_first_and_the_digests_last(kernel, server, flags):
    done = chat(kernel, "Hello", flags=f"--raw {flags} -t 0.5", cell_id="c1", check=True)
    (tree,) = done.data("application/json")
    assert tree["sent"]["body"] == server.chat_requests[-1].body, "every field, as sent"
    assert ("stream_options" in tree["sent"]["body"]) == (flags == "")
    names = list(tree)
    assert names[:4] == ["sent", "cost", "messages", "responses"]  # cost: computed, not stored
    assert names[-3:] == ["key", "history", "parent"]
    assert tree["cost"] == {"usd": None, "shown": "price unknown", "basis": "no known price"}


def test_length_and_content_filter_are_shown_plainly(kernel, server):
    done = chat(kernel, "one two three four five", flags="--max-tokens 2", cell_id="c1", check=True)
    assert server.chat_requests[-1].body["max_tokens"] == 2
    assert "cut off" in final_html(done) and "length" in final_html(done)
    server.script(Fault(finish_reason="content_filter"))
    filtered = chat(kernel, "Something", cell_id="c2", check=True)
    assert "content filter" in final_html(filtered)


def test_option_passes_any_request_field(kernel, server):
    flags = '--option \'response_format={"type": "json_object"}\' --option seed=7 -t 0.2'
    chat(kernel, "Give JSON", flags=flags, cell_id="c1", check=True)
    body = server.chat_requests[-1].body
    assert body["response_format"] == {"type": "json_object"}
    assert body["seed"] == 7 and body["temperature"] == 0.2


def test_wrong_key_names_the_variable_not_the_key(kernel, server):
    kernel.run("import os; os.environ['OPENAI_API_KEY'] = 'sk-wrong-key-abcdefghijkl'")
    failed = chat(kernel, "Hello", cell_id="c1")
    message = assert_short_error(failed, "OPENAI_API_KEY", "401")
    assert "sk-wrong-key" not in message
    assert failed.data(RECORD_MIME) == []


def test_unknown_model_says_how_to_list_models(kernel, server):
    failed = chat(kernel, "Hello", flags="-m no-such-model", cell_id="c1")
    assert_short_error(failed, "no-such-model", "%chat models")


def test_rate_limit_is_retried_then_explained(kernel, server):
    kernel.run("%config ChatMagics.max_retries = 1", check=True)
    fault = Fault(status=429, headers={"retry-after-ms": "10"})
    server.script(fault, fault)
    failed = chat(kernel, "Hello", cell_id="c1")
    assert_short_error(failed, "429", "2 attempts")
    assert len(server.chat_requests) == 2
    server.script(fault)
    chat(kernel, "Hello", cell_id="c1", check=True)


@pytest.mark.parametrize(
    ("fault", "reason"),
    [(Fault(drop_after=3), "dropped"), (Fault(error_after=3), "error mid-answer")],
)
def test_a_broken_stream_keeps_the_partial_answer_unstored(kernel, server, fault, reason):
    server.script(fault)
    failed = chat(kernel, "one two three four five six", cell_id="c1")
    assert_short_error(failed, reason)
    markdown = visible_text(final_html(failed))
    expected = "".join(
        answer_for(
            {"messages": [{"role": "user", "content": "one two three four five six"}]}
        ).split(" ")[:3]
    )
    assert markdown.replace(" ", "").startswith(expected)
    assert "incomplete, not stored" in markdown
    assert failed.data(RECORD_MIME) == []

    again = chat(kernel, "one two three four five six", cell_id="c1", check=True)
    assert len(server.chat_requests) == 2, "a partial answer is never replayed"
    assert again.data(RECORD_MIME)


def test_ctrl_c_keeps_the_partial_answer_and_the_kernel(kernel, server):
    server.script(Fault(chunks=400, delay=0.01))
    interrupted = chat(kernel, "Long answer please", cell_id="c1", interrupt_after=1.0)
    assert_short_error(interrupted, "Interrupted")
    markdown = visible_text(final_html(interrupted))
    assert markdown.startswith("w0 w1 ") and "incomplete, not stored" in markdown
    assert interrupted.data(RECORD_MIME) == []
    assert kernel.run("print(1 + 1)", check=True).stdout.strip() == "2"
    chat(kernel, "Next", cell_id="c2", check=True)
    assert [m["content"] for m in sent_messages(server)] == ["Next"], (
        "an interrupted turn is not context for the cells below"
    )


def test_a_huge_answer_costs_the_frontend_a_bounded_number_of_messages(kernel, server):
    server.script(Fault(chunks=30_000))
    done = chat(kernel, "Everything", cell_id="c1", check=True, timeout=120)
    (record,) = done.data(RECORD_MIME)
    text = record["messages"][1]["content"]
    assert text == "".join(f"w{i} " for i in range(30_000))
    elapsed = record["timing"]["elapsed_s"]
    widget_updates = done.count("comm_msg")
    # Two widgets (text, status) change per update, at <= 15 updates a second.
    assert widget_updates <= 2 * (15 * elapsed + 2) + 10, (widget_updates, elapsed)
    assert len(done.messages) < 200


def test_line_commands(kernel, server):
    chat(kernel, "Hello", flags="--thread t", cell_id="c1", check=True)
    history = kernel.run("%chat history --thread t", check=True)
    (plain,) = history.data("text/plain")
    assert "Hello" in plain and "Reply #1 to: Hello" in plain and "assistant" in plain

    threads = kernel.run("%chat threads", cell_id="x", check=True).data("text/plain")[0]
    assert threads.splitlines()[1].split() == ["t", "1", "no"]

    usage = kernel.run("%chat usage", check=True).data("text/plain")[0]
    assert "spent" in usage and "saved" in usage

    config = kernel.run("%chat config", check=True).data("text/plain")[0]
    (key_row,) = [line for line in config.splitlines() if line.startswith("api_key ")]
    assert key_row.split(None, 1)[1] == "set ($OPENAI_API_KEY)" and TEST_KEY not in config

    models = kernel.run("%chat models", check=True).data("text/plain")[0]
    assert "peer-small" in models and "peer-large" in models

    raw = kernel.run("%chat raw", check=True).data("application/json")[0]
    assert raw["messages"][0]["content"] == "Hello"
    chunks = kernel.run("%chat raw --chunks", check=True).data("application/json")[0]
    assert chunks[0]["object"] == "chat.completion.chunk"

    kernel.run("%chat reset --thread t", check=True)
    empty = kernel.run("%chat history --thread t", check=True).data("text/plain")[0]
    assert "empty" in empty

    bad = kernel.run("%chat frobnicate")
    assert bad.status == "error" and bad.error["ename"] == "ConfigError"


def test_reload_and_unload_are_clean(kernel, server):
    count = "print(sum(type(c).__name__ == 'ChatMagics' for c in get_ipython().configurables))"
    kernel.run("%reload_ext nbchat", check=True)
    kernel.run("%reload_ext nbchat", check=True)
    assert kernel.run(count, check=True).stdout.strip() == "1"
    chat(kernel, "Hello", cell_id="c1", check=True)
    kernel.run("%unload_ext nbchat", check=True)
    gone = chat(kernel, "Hello", cell_id="c2")
    assert gone.status == "error"
    assert "`%%chat` not found" in gone.stderr
    assert kernel.run(count, check=True).stdout.strip() == "0"


def test_profile_and_config_precedence(kernel, server):
    kernel.run(
        "%config ChatMagics.profiles = {'fake': {'base_url': '" + server.base_url + "', "
        "'api_key_env': 'OPENAI_API_KEY', 'model': 'peer-large'}}",
        check=True,
    )
    chat(kernel, "Hi", flags="-p fake", cell_id="c1", check=True)
    assert server.chat_requests[-1].body["model"] == "peer-large"
    chat(kernel, "Hi", flags="-p fake -m peer-small", cell_id="c2", check=True)
    assert server.chat_requests[-1].body["model"] == "peer-small"
    unknown = chat(kernel, "Hi", flags="-p nope", cell_id="c3")
    assert unknown.status == "error" and "Known profiles" in unknown.error["evalue"]


def test_raw_chunks_is_one_valid_output_and_a_note_after_a_replay(kernel, server):
    chat(kernel, "Hello", cell_id="c1", check=True)
    chunks = kernel.run("%chat raw --chunks", check=True)
    (output,) = chunks.displays
    assert output["metadata"]["nbchat"] == {"raw": True}
    assert output["data"]["application/json"][0]["object"] == "chat.completion.chunk"
    kernel.run("%reload_ext nbchat", check=True)
    note = kernel.run("%chat raw --chunks", check=True)
    assert "No answer was streamed" in note.stdout


def test_a_server_profile_without_a_model_asks_for_one(kernel, server):
    kernel.run("import os; del os.environ['NBCHAT_MODEL']", check=True)
    kernel.run(
        "%config ChatMagics.profiles = {'local': {'base_url': '"
        + server.base_url
        + "', 'api_key_env': 'OPENAI_API_KEY'}}",
        check=True,
    )
    failed = chat(kernel, "Hi", flags="-p local", cell_id="c1")
    assert failed.status == "error" and "-m MODEL" in failed.error["evalue"]
    assert server.chat_requests == []
    models = kernel.run("%chat models -p local", check=True).data("text/plain")[0]
    assert "peer-small" in models
    chat(kernel, "Hi", flags="-p local -m peer-large", cell_id="c1", check=True)


def test_a_bug_still_removes_the_live_widget_and_keeps_its_traceback(kernel, server):
    kernel.run(
        "get_ipython().magics_manager.registry['ChatMagics'].session.last_stream.keep = "
        "lambda *args, **kwargs: 1 / 0",
        check=True,
    )
    failed = chat(kernel, "Hello", cell_id="c1")
    assert failed.error["ename"] == "ZeroDivisionError", "a bug keeps its traceback"
    assert failed.data(WIDGET_MIME) == [], "no live widget is left in the output"


def test_options_cannot_change_the_model_or_messages_behind_the_key(kernel, server):
    failed = chat(kernel, "Hello", flags="--option model=other", cell_id="c1")
    assert failed.error["ename"] == "ConfigError" and "-m" in failed.error["evalue"]
    assert server.chat_requests == []


def test_a_replayed_answer_is_saved_as_this_cells_turn(kernel, server):
    chat(kernel, "Same opening", flags="--thread a", cell_id="ca", check=True)
    replayed = chat(kernel, "Same opening", flags="--thread b", cell_id="cb", check=True)
    assert len(server.chat_requests) == 1, "same request, so the stored answer is replayed"
    (record,) = replayed.data(RECORD_MIME)
    assert (record["thread"], record["cell_id"]) == ("b", "cb")


def test_the_live_view_renders_markdown_and_the_final_swap_keeps_it(kernel, server):
    server.script(Fault(text="## Title\n\n- one\n- two", delay=0.02))
    done = chat(kernel, "List", cell_id="c1", check=True)
    shown = [html for html in widget_html(done) if "<h2>" in html]
    assert shown and "<h2>Title</h2>" in shown[-1]
    assert "<h2>Title</h2>\n<ul>\n<li>one</li>\n<li>two</li>\n</ul>" in final_html(done)


def test_a_headless_run_shows_no_widget_and_says_the_file_is_unknown(kernel, server):
    done = chat(kernel, "Hello", check=True)  # no cell id: nbclient, papermill, nbconvert
    assert done.count("comm_open") == 0 and done.data(WIDGET_MIME) == []
    assert "headless" in done.notes and "NBCHAT_NOTEBOOK" in done.notes
    assert "headless" not in done.stderr, "a note, not an error"
    assert visible_text(final_html(done)).startswith("Reply #1 to: Hello")
    again = chat(kernel, "Hello again", check=True)
    assert again.notes == "", "said once"


def test_a_cell_that_fails_before_the_answer_leaves_only_the_error(kernel, server):
    kernel.run("import os; os.environ['OPENAI_API_KEY'] = 'sk-wrong-key-abcdefghijkl'")
    failed = chat(kernel, "Hello", cell_id="c1")
    assert failed.status == "error"
    assert failed.displays == [], "no empty output where the live view was"
    assert [o["output_type"] for o in failed.outputs][-1] == "error"


def test_a_failed_turn_is_not_counted_as_a_turn(kernel, server):
    chat(kernel, "One", cell_id="c1", check=True)
    server.script(Fault(status=500), Fault(status=500), Fault(status=500))
    kernel.run("%config ChatMagics.max_retries = 0", check=True)
    assert chat(kernel, "Two", cell_id="c2").status == "error"
    threads = kernel.run("%chat threads", cell_id="x", check=True).data("text/plain")[0]
    assert threads.splitlines()[1].split() == ["default", "1", "no"]


def test_help_and_config_read_as_plain_text(kernel, server):
    help_text = kernel.run("print(get_ipython().find_cell_magic('chat').__doc__)", check=True)
    assert not help_text.stdout.lstrip().startswith("::") and "``" not in help_text.stdout
    assert help_text.stdout.lstrip().startswith("%%chat [-m MODEL]")
    kernel.run(
        "%config ChatMagics.profiles = {'az': {'base_url': "
        "'https://user:hunter2@example.com/v1?api-version=2024-10-21', 'api_key_env': 'AZ_KEY'}}",
        check=True,
    )
    config = kernel.run("%chat config -p az", check=True)
    plain = config.data("text/plain")[0]
    assert "hunter2" not in json.dumps(config.outputs) and "2024-10-21" not in plain
    assert "example.com/v1" in plain
    assert "'" not in plain and "None" not in plain, "values as written, not Python reprs"


def test_a_profile_that_moves_the_endpoint_must_name_its_key(kernel, server):
    kernel.run(
        "%config ChatMagics.profiles = {'mine': {'base_url': '" + server.base_url + "', "
        "'model': 'peer-small'}}",
        check=True,
    )
    failed = chat(kernel, "Hi", flags="-p mine", cell_id="c1")
    assert failed.error["ename"] == "ConfigError" and "api_key_env" in failed.error["evalue"]
    assert server.chat_requests == [], "the OpenAI key was not sent to the profile's host"


def test_raw_stores_the_record_once(kernel, server):
    done = chat(kernel, "Hello", flags="--raw", cell_id="c1", check=True)
    answer, raw = done.displays
    assert RECORD_MIME not in answer["data"]
    assert raw["metadata"]["nbchat"]["record"] == 2
    assert raw["data"]["application/json"]["messages"][0]["content"] == "Hello"
    assert len(raw["data"]["text/plain"]) < 300, "a summary, not a third copy"
    assert json.dumps(done.outputs).count('"Reply #1 to: Hello') <= 3
