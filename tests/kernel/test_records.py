"""Schema 2 in a real kernel: records hold only their turn, and the full request is rebuilt.

The fake server records every request it receives, so "rebuilt" is checked against what was
really sent, not against another computation of it.
"""

from __future__ import annotations

import json

from nbchat.store.record import RECORD_MIME

from support.kernel_driver import Execution, Kernel, save_notebook


def run_thread(kernel: Kernel, count: int, prefix: str = "c") -> dict[str, Execution]:
    return {
        f"{prefix}{n}": kernel.run(f"%%chat\nQuestion {n}", cell_id=f"{prefix}{n}", check=True)
        for n in range(1, count + 1)
    }


def record_of(execution: Execution) -> dict:
    (record,) = execution.data(RECORD_MIME)
    return record


def raw_view(kernel: Kernel, n: int = 1) -> dict:
    return kernel.run(f"%chat raw {n}", check=True).data("application/json")[0]


REBUILD_LAST = """
import json
from nbchat.engine.queries import sent
kernel = get_ipython().magics_manager.registry["ChatMagics"].kernel
# no prepared turn: rebuilt from the records
print(json.dumps(sent(kernel.session, kernel.session.cache.history[-1], kernel.locator.last)))
"""


def test_a_record_holds_only_its_own_turn_and_points_at_the_one_above(kernel, server):
    runs = run_thread(kernel, 12)
    records = [record_of(runs[f"c{n}"]) for n in range(1, 13)]
    assert all(len(record["messages"]) == 2 for record in records)
    assert [r["parent"] for r in records[1:]] == [r["key"] for r in records[:-1]]
    assert all("context" not in record for record in records)
    sizes = [len(json.dumps(record)) for record in records]
    assert max(sizes) - min(sizes) < 80, sizes  # flat: no copy of the turns above
    assert len(server.chat_requests[-1].body["messages"]) == 23


def test_the_rebuilt_request_is_what_the_server_received(kernel, server):
    run_thread(kernel, 5)
    view = raw_view(kernel)
    assert view["sent"]["body"]["messages"] == server.chat_requests[-1].body["messages"]
    assert view["sent"]["url"] == server.base_url + "/chat/completions"
    # Edit the second cell and run it again, then the last: the last one's context mixes the
    # new turn 2 with turns 3 and 4 answered on top of the old one. Its record lists them all.
    kernel.run("%%chat\nQuestion 2, edited", cell_id="c2", check=True)
    last = record_of(kernel.run("%%chat\nQuestion 5", cell_id="c5", check=True))
    assert last["context"] and len(last["context"]) == 4
    received = server.chat_requests[-1].body["messages"]
    assert [m["content"] for m in received][2] == "Question 2, edited"
    rebuilt = json.loads(kernel.run(REBUILD_LAST, check=True).stdout)
    assert rebuilt["body"]["messages"] == received and "incomplete" not in rebuilt


def test_a_deleted_cell_above_leaves_replay_working_and_the_rebuild_says_so(
    kernel, server, chat_env
):
    path = chat_env / "deleted.ipynb"
    kernel.run(f"import os; os.environ['NBCHAT_NOTEBOOK'] = {str(path)!r}", check=True)
    cells = [(f"c{n}", f"%%chat\nQuestion {n}") for n in range(1, 5)]
    runs = run_thread(kernel, 4)
    save_notebook(path, [(cell_id, source, runs[cell_id]) for cell_id, source in cells])
    kernel.run("%reload_ext nbchat", check=True)
    server.reset()
    # The answer of question 3 is deleted after the others were answered: the rebuild of
    # question 4's request says what is missing; the cells above 3 still replay; question 4,
    # whose context (the turns above as they are now) lost turn 3, is asked again.
    data = json.loads(path.read_text())
    data["cells"][2]["outputs"] = []
    path.write_text(json.dumps(data))
    exported = kernel.run(
        "from nbchat.store.chain import rebuild\n"
        "from nbchat.store.notebook import NotebookWatcher\n"
        f"records = NotebookWatcher({str(path)!r}).get()\n"
        "last = [r for _, r in records.records()][-1]\n"
        "print(rebuild(last, records.by_key.get).missing)",
        check=True,
    )
    assert "no longer in this notebook" in exported.stdout
    for cell_id, source in cells[:2]:
        replay = kernel.run(source, cell_id=cell_id, check=True)
        assert "replayed" in replay.data("text/html")[0]
    assert server.chat_requests == []
    kernel.run(cells[3][1], cell_id="c4", check=True)
    assert [m["content"] for m in server.chat_requests[-1].body["messages"]][-1] == "Question 4"
    assert len(server.chat_requests) == 1, "its context changed: asked again"


def test_a_query_string_reaches_the_server_and_never_the_file(kernel, server, chat_env):
    url = server.base_url + "?api-version=2024-10-21&sig=s3cr3t-value-0123"
    kernel.run(
        f"%config ChatMagics.base_url = {url!r}\n%config ChatMagics.api_key_env = 'OPENAI_API_KEY'",
        check=True,
    )
    done = kernel.run("%%chat --raw\nHello", cell_id="c1", check=True)
    assert server.chat_requests[-1].path.endswith("/chat/completions?" + url.split("?")[1])
    text = json.dumps(done.outputs)
    assert "s3cr3t-value-0123" not in text and "2024-10-21" not in text
    record = done.outputs[-1]["data"]["application/json"]
    assert record["request"]["base_url"].endswith("/v1?api-version=***&sig=***")
    assert record["request"]["query_digest"]
    # Another query is another endpoint: no replay across it.
    kernel.run(f"%config ChatMagics.base_url = {url.replace('0123', '4567')!r}", check=True)
    kernel.run("%%chat\nHello", cell_id="c1", check=True)
    assert len(server.chat_requests) == 2


def test_ask_gives_the_full_request_it_answers(kernel, server):
    kernel.run("%%chat --thread t\nFirst", cell_id="c1", check=True)
    shown = kernel.run(
        "import nbchat\n"
        "answer = nbchat.ask('Second', thread='t')\n"
        "print(len(answer.request['body']['messages']), answer.record.parent is not None)",
        check=True,
    )
    assert shown.stdout.split() == ["3", "True"]
    assert server.chat_requests[-1].body["messages"][-1]["content"] == "Second"


def test_records_are_smaller_than_schema_1_would_store(kernel, server):
    runs = run_thread(kernel, 20)
    last = record_of(runs["c20"])
    as_v1 = len(json.dumps(server.chat_requests[-1].body))  # what 0.1 copied into the record
    assert len(json.dumps(last)) < as_v1
