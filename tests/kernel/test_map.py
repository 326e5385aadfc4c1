"""``%%chat --map`` in a real kernel against the fake server (with latency, rate limits and
scripted faults): results in order, concurrency, the compact record, replay and resume, failures
that do not stop the others, --schema per item, offline, Ctrl-C, bounded frontend messages."""

from __future__ import annotations

import json

from nbchat.store.batch_record import read_stored
from nbchat.store.record import RECORD_MIME

from support.fake_openai import Fault
from support.html_check import WRAPPER
from support.kernel_driver import Execution, Kernel, save_notebook

REVIEWS = "reviews = ['great', 'awful', 'fine', 'great', 'meh']"


def show(kernel: Kernel, expressions: str) -> str:
    return kernel.run(f"print({expressions})", check=True).stdout.strip()


def batch_record(execution: Execution) -> dict:
    (record,) = execution.data(RECORD_MIME)
    assert record["kind"] == "batch"
    return record


def sent_prompts(server) -> list[str]:
    return sorted(request.body["messages"][-1]["content"] for request in server.chat_requests)


def test_each_item_is_one_standalone_request_and_results_keep_the_order(
    kernel: Kernel, server
) -> None:
    kernel.run(REVIEWS, check=True)
    kernel.run("%%chat\nAn earlier turn of the thread.", cell_id="c0", check=True)
    kernel.run("%%chat --system\nAnswer with one word.", cell_id="c1", check=True)
    server.reset()
    done = kernel.run("%%chat --map reviews -o labels\nClassify: {item}", cell_id="c2")
    assert done.status == "ok", done.error
    assert len(server.chat_requests) == 5, "one request per item, duplicates included"
    for request in server.chat_requests:
        system, user = request.body["messages"]
        assert system == {"role": "system", "content": "Answer with one word."}
        assert user["content"].startswith("Classify: ")
        assert "stream" not in request.body or request.body["stream"] is False
    labels = json.loads(show(kernel, "__import__('json').dumps(labels)"))
    assert labels == [f"Reply #1 to: Classify: {word}" for word in REVIEWS_WORDS]
    record = batch_record(done)
    assert [item["index"] for item in record["items"]] == [0, 1, 2, 3, 4]
    assert [item["fills"] for item in record["items"]] == [[word] for word in REVIEWS_WORDS]
    assert record["template"] == {"literals": ["Classify: ", ""], "paths": [""]}
    items = read_stored(record, 2)
    assert [r.answer for r in items] == labels and all(
        r.consistency_problem() is None for r in items
    )
    markdown = done.data("text/html")[0]
    assert markdown.startswith(WRAPPER + "<p><strong>--map reviews: 5 items · 5 answered")
    kernel.run("%%chat\nNext turn.", cell_id="c3", check=True)
    context = server.chat_requests[-1].body["messages"]
    assert [m["content"] for m in context if m["role"] == "user"] == [
        "An earlier turn of the thread.",
        "Next turn.",
    ], "a --map cell is not a turn of its thread"


REVIEWS_WORDS = ["great", "awful", "fine", "great", "meh"]


def test_series_and_dataframe_rows_keep_their_index(kernel: Kernel, server) -> None:
    kernel.run(
        "import pandas as pd\n"
        "df = pd.DataFrame({'city': ['Brest', 'Cadiz'], 'tide': [4.2, 1.1]}, index=['b', 'c'])",
        check=True,
    )
    kernel.run(
        "%%chat --map df -o out\nIs {item[city]} ({item.tide} m) tidal?", cell_id="c1", check=True
    )
    assert sent_prompts(server) == ["Is Brest (4.2 m) tidal?", "Is Cadiz (1.1 m) tidal?"]
    assert show(kernel, "type(out).__name__, list(out.index)") == "Series ['b', 'c']"
    kernel.run("cities = df.city", check=True)
    kernel.run("%%chat --map cities -o names\nWhere is {item}?", cell_id="c3", check=True)
    assert (
        show(kernel, "list(names.index), names['c']") == "['b', 'c'] Reply #1 to: Where is Cadiz?"
    )


def test_a_rerun_replays_and_a_changed_list_asks_only_for_what_is_new(
    kernel: Kernel, server, chat_env
) -> None:
    path = chat_env / "batch.ipynb"
    kernel.run(f"import os; os.environ['NBCHAT_NOTEBOOK'] = {str(path)!r}", check=True)
    cells = [("c0", REVIEWS), ("c1", "%%chat --map reviews -o labels\nClassify: {item}")]
    runs = {cell_id: kernel.run(source, cell_id=cell_id, check=True) for cell_id, source in cells}
    assert len(server.chat_requests) == 5
    again = kernel.run(cells[1][1], cell_id="c1", check=True)
    assert len(server.chat_requests) == 5 and "5 replayed" in again.data("text/plain")[0]
    save_notebook(path, [(cell_id, source, runs[cell_id]) for cell_id, source in cells])

    kernel.restart()
    kernel.run(f"import os; os.environ['NBCHAT_NOTEBOOK'] = {str(path)!r}", check=True)
    server.reset()
    kernel.run("reviews = ['great', 'awful', 'superb', 'fine', 'great', 'meh']", check=True)
    changed = kernel.run(cells[1][1], cell_id="c1", check=True)
    assert sent_prompts(server) == ["Classify: superb"], "only the new item is asked"
    assert len(batch_record(changed)["items"]) == 6, "the cell's record holds every item"
    kernel.run("os.environ['NBCHAT_OFFLINE'] = '1'\nreviews.append('new')", check=True)
    offline = kernel.run(cells[1][1], cell_id="c1")
    assert offline.status == "error"
    assert offline.error["evalue"] == (
        "1 of 7 items have no stored answer and offline mode is on: unset NBCHAT_OFFLINE to "
        "ask for them."
    )
    assert len(server.chat_requests) == 1
    table = kernel.run("%chat usage", check=True).data("text/plain")[0]
    assert table.startswith("Spent: 1 request, "), "the offline run sent (and counted) none"


def test_offline_items_asked_of_another_endpoint_replay_with_one_note(
    kernel: Kernel, server, tmp_path
) -> None:
    path = tmp_path / "map.ipynb"
    kernel.run(f"import os; os.environ['NBCHAT_NOTEBOOK'] = {str(path)!r}", check=True)
    cells = [("c0", REVIEWS), ("c1", "%%chat --map reviews -o labels\nClassify: {item}")]
    runs = {cell_id: kernel.run(source, cell_id=cell_id, check=True) for cell_id, source in cells}
    save_notebook(path, [(cell_id, source, runs[cell_id]) for cell_id, source in cells])
    kernel.run("%reload_ext nbchat", check=True)  # only the file remains
    kernel.run(
        "del os.environ['OPENAI_BASE_URL'], os.environ['OPENAI_API_KEY']\n"
        "os.environ['NBCHAT_OFFLINE'] = '1'",
        check=True,
    )
    replay = kernel.run(cells[1][1], cell_id="c1", check=True)
    assert "5 answered (5 replayed)" in replay.data("text/plain")[0]
    assert replay.notes.strip().splitlines()[-1] == (
        f"nbchat: offline: replayed 5 items as stored from {server.base_url} "
        "(the endpoint now is https://api.openai.com/v1)."
    )
    assert batch_record(replay)["request"]["base_url"] == server.base_url
    assert len(server.chat_requests) == 5, "nothing sent offline"


def test_requests_run_concurrently_within_the_limit(kernel: Kernel, server) -> None:
    server.latency = 0.3
    kernel.run("numbers = list(range(24))", check=True)
    done = kernel.run(
        "%%chat --map numbers --concurrency 6 -o out\nDouble {item}", cell_id="c1", timeout=30
    )
    assert done.status == "ok", done.error
    assert server.peak_in_flight == 6
    assert show(kernel, "out[23]") == "Reply #1 to: Double 23"
    updates = done.count("comm_msg")
    seconds = batch_record(done)["items"][-1]["timing"]["elapsed_s"] * 4 + 2  # 4 waves, loose
    assert updates <= 40 + 30 * seconds, (updates, seconds)


def test_a_rate_limit_pauses_every_worker_and_everything_is_answered(
    kernel: Kernel, server
) -> None:
    server.rate_limit = (4, 0.5)
    kernel.run("%config ChatMagics.max_retries = 4", check=True)
    kernel.run("numbers = list(range(12))", check=True)
    done = kernel.run("%%chat --map numbers -o out\nHalve {item}", cell_id="c1", timeout=60)
    assert done.status == "ok", done.error
    statuses = [request.path for request in server.chat_requests]
    assert len(statuses) > 12, "some requests were refused (429) and retried"
    assert show(kernel, "sum(x is None for x in out)") == "0"


def test_failed_items_do_not_stop_the_others_and_a_rerun_retries_only_them(
    kernel: Kernel, server
) -> None:
    kernel.run("numbers = list(range(10))", check=True)
    server.script(Fault(status=400), Fault(status=400))
    failed = kernel.run("%%chat --map numbers --concurrency 1 -o out\nSquare {item}", cell_id="c1")
    assert failed.status == "error"
    message = failed.error["evalue"]
    expected = "2 of 10 items failed: items 0, 1: The server rejected the request (400)"
    assert message.startswith(expected), "items that failed alike are named together"
    assert "run the cell again to retry the failed ones" in message and "\n" not in message
    assert show(kernel, "[i for i, x in enumerate(out) if x is None]") == "[0, 1]"
    assert len(batch_record(failed)["items"]) == 8
    summary = failed.data("text/plain")[0]
    assert "10 items · 8 answered · 2 failed" in summary
    shown = [o.get("text") or o.get("evalue") or json.dumps(o.get("data")) for o in failed.outputs]
    assert sum(text.count("rejected the request") for text in shown) == 1, "said once"
    server.reset()
    kernel.run(
        "%%chat --map numbers --concurrency 1 -o out\nSquare {item}", cell_id="c1", check=True
    )
    assert sent_prompts(server) == ["Square 0", "Square 1"]


def test_schema_per_item_binds_validated_objects(kernel: Kernel, server) -> None:
    kernel.run(
        "from pydantic import BaseModel\n"
        "class Label(BaseModel):\n    sentiment: str\n    score: int\n"
        "texts = ['good', 'bad', 'odd']",
        check=True,
    )
    server.script(Fault(), Fault(), Fault(text='{"sentiment": "x", "score": "high"}'))
    failed = kernel.run(
        "%%chat --map texts --schema Label --concurrency 1 -o labels\nRate: {item}", cell_id="c1"
    )
    assert server.chat_requests[0].body["response_format"]["json_schema"]["name"] == "Label"
    assert "item 2: The answer does not fit Label: score: " in failed.error["evalue"]
    assert show(kernel, "[type(x).__name__ for x in labels]") == "['Label', 'Label', 'NoneType']"


def test_a_missing_field_fails_that_item_and_a_cell_without_item_fails_at_once(
    kernel: Kernel, server
) -> None:
    kernel.run("rows = [{'city': 'Brest'}, {'town': 'Cadiz'}]", check=True)
    failed = kernel.run("%%chat --map rows -o out\nWhere is {item[city]}?", cell_id="c1")
    assert "1 of 2 items failed: item 1: item 1 has no ['city']" in failed.error["evalue"]
    assert sent_prompts(server) == ["Where is Brest?"]
    no_item = kernel.run("%%chat --map rows\nNo placeholder here", cell_id="c2")
    assert "the cell has no {item}" in no_item.error["evalue"]
    not_a_list = kernel.run("%%chat --map Out\n{item}", cell_id="c3")
    assert "dict is not a list of items" in not_a_list.error["evalue"]
    assert len(server.chat_requests) == 1


def test_ctrl_c_keeps_what_completed_and_the_next_run_resumes(kernel: Kernel, server) -> None:
    server.latency = 0.4
    kernel.run("numbers = list(range(12))", check=True)
    cell = "%%chat --map numbers --concurrency 2 -o out\nTriple {item}"
    interrupted = kernel.run(cell, cell_id="c1", interrupt_after=1.1, timeout=30)
    assert interrupted.status == "error"
    assert interrupted.error["evalue"].startswith("Batch interrupted: ")
    kept = len(batch_record(interrupted)["items"])
    assert 0 < kept < 12
    asked_before = len(server.chat_requests)
    server.latency = 0.0
    kernel.run(cell, cell_id="c1", check=True, timeout=30)
    assert len(server.chat_requests) - asked_before == 12 - kept, "only the rest is asked"


def test_map_from_code_shows_its_summary_and_replays(kernel: Kernel, server) -> None:
    code = "import nbchat\nres = nbchat.map('Echo {item}', ['a', 'b'])\nprint(res)"
    done = kernel.run(code, cell_id="c1", check=True)
    assert done.stdout.strip() == "['Reply #1 to: Echo a', 'Reply #1 to: Echo b']"
    assert len(batch_record(done)["items"]) == 2
    kernel.run(code, cell_id="c1", check=True)
    assert len(server.chat_requests) == 2, "the second run replays"
    server.script(Fault(status=400))
    caught = kernel.run(
        "try:\n    nbchat.map('Other {item}', ['x', 'y'], concurrency=1)\n"
        "except nbchat.BatchError as error:\n    print(error.values)",
        cell_id="c2",
        check=True,
    )
    assert caught.stdout.strip() == "[None, 'Reply #1 to: Other y']"


def test_refresh_asks_again_and_new_is_refused(kernel: Kernel, server) -> None:
    kernel.run("xs = ['a', 'b']", check=True)
    kernel.run("%%chat --map xs -o out\nEcho {item}", cell_id="c1", check=True)
    kernel.run("%%chat --map xs --refresh -o out\nEcho {item}", cell_id="c1", check=True)
    assert len(server.chat_requests) == 4
    refused = kernel.run("%%chat --map xs --new\nEcho {item}", cell_id="c1")
    assert "--map does not take --new" in refused.error["evalue"]
    for flags, message in (("--concurrency 0", "--concurrency must be"), ("--rpm 0", "--rpm must")):
        bad = kernel.run(f"%%chat --map xs {flags}\nEcho {{item}}", cell_id="c1")
        assert message in bad.error["evalue"]


def test_a_cut_off_item_fails_and_is_not_stored(kernel: Kernel, server) -> None:
    kernel.run("xs = ['a', 'b']", check=True)
    server.script(Fault(text="The answer was cut o", finish_reason="length"))
    failed = kernel.run("%%chat --map xs --concurrency 1 -o out\nEcho {item}", cell_id="c1")
    assert "item 0: cut off by max_tokens (finish_reason: length)" in failed.error["evalue"]
    assert show(kernel, "out[0], out[1]") == "None Reply #1 to: Echo b"
    assert [item["index"] for item in batch_record(failed)["items"]] == [1]


def test_a_validator_that_raises_fails_only_its_item(kernel: Kernel, server) -> None:
    kernel.run(
        "import dataclasses\n@dataclasses.dataclass\nclass Tag:\n    answer: str\n"
        "    def __post_init__(self):\n        if 'b' in self.answer: raise TypeError('no b')\n"
        "xs = ['a', 'b', 'c']",
        check=True,
    )
    failed = kernel.run("%%chat --map xs --json --schema Tag -o tags\n{item}", cell_id="c1")
    assert (
        "1 of 3 items failed: item 1: The answer does not fit Tag: TypeError: no b"
        in (failed.error["evalue"])
    )
    assert len(batch_record(failed)["items"]) == 2
    assert not any("widget-view" in json.dumps(o.get("data", {})) for o in failed.outputs)


def test_a_stored_batch_replays_without_a_key(kernel: Kernel, server) -> None:
    kernel.run("xs = ['a', 'b']", check=True)
    kernel.run("%%chat --map xs -o out\nEcho {item}", cell_id="c1", check=True)
    kernel.run(f"%config ChatMagics.base_url = {server.base_url!r}", check=True)
    again = kernel.run("%%chat --map xs -o out\nEcho {item}", cell_id="c1")
    assert again.status == "ok", again.error
    assert len(server.chat_requests) == 2


def test_a_cell_edited_into_a_map_is_no_longer_context(kernel: Kernel, server) -> None:
    kernel.run("%%chat\nOld question in c1", cell_id="c1", check=True)
    kernel.run("xs = ['a']", check=True)
    kernel.run("%%chat --map xs\nEcho {item}", cell_id="c1", check=True)
    kernel.run("%%chat\nBelow", cell_id="c2", check=True)
    assert [m["content"] for m in server.chat_requests[-1].body["messages"]] == ["Below"]


def test_a_setting_that_cannot_work_fails_the_cell_once(kernel: Kernel, server) -> None:
    kernel.run("xs = ['a', 'b']", check=True)
    kernel.run(f"%config ChatMagics.base_url = {server.base_url!r}", check=True)
    failed = kernel.run("%%chat --map xs -o out\nEcho {item}", cell_id="c1")
    message = failed.error["evalue"]
    assert message.startswith("%config ChatMagics.base_url is set without ChatMagics.api_key_env")
    assert "item" not in message.split(":", 1)[0] and server.chat_requests == []


def test_items_share_the_cells_advice_and_offline_wording(kernel: Kernel, server) -> None:
    kernel.run(
        "from pydantic import BaseModel\nclass City(BaseModel):\n    name: str\nxs = ['Brest']",
        check=True,
    )
    refusal = {"error": {"message": "response_format json_schema is not supported"}}
    server.script(Fault(status=400, body=refusal))
    refused = kernel.run("%%chat --map xs --schema City -o out\nAbout {item}", cell_id="c1")
    assert "try --json" in refused.error["evalue"]
    kernel.run("%%chat --map xs --json -o out\nAbout {item}", cell_id="c2", check=True)
    kernel.run("import os; os.environ['NBCHAT_OFFLINE'] = '1'", check=True)
    offline = kernel.run("%%chat --map xs --schema City --json -o out\nAbout {item}", cell_id="c2")
    assert "1 of 1 item failed: item 0: The answer does not fit City: " in offline.error["evalue"]
    assert "run online with --refresh" in offline.error["evalue"]
