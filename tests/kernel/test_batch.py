"""``%%chat --map NAME --batch`` in a real kernel against the fake server's batch API: the cell
returns once the batch is made and its output follows it (a background poller binding ``-o``);
a re-run, in this kernel or another one from the saved file, re-attaches and never resubmits;
failed items are named and a re-run resubmits only them; ``--wait``, headless runs (nbclient),
the timeout and Ctrl-C; ``%chat batches`` and ``%chat batch cancel``."""

from __future__ import annotations

import json
import time
from pathlib import Path

from nbchat.cli.main import main
from nbchat.store.batch_record import read_stored
from nbchat.store.batch_state import BATCHES_MIME
from nbchat.store.record import RECORD_MIME

from support.env import TEST_KEY
from support.kernel_driver import WIDGET_MIME, Execution, Kernel, save_notebook
from support.nbfactory import write_notebook

REVIEWS = "reviews = ['great', 'awful', 'fine', 'great', 'meh']"
WORDS = ["great", "awful", "fine", "great", "meh"]
CELL = "%%chat --map reviews --batch -o labels\nClassify: {item}"
FAST = "%config ChatMagics.batch_poll_s = 0.1"


def show(kernel: Kernel, expression: str) -> str:
    return kernel.run(f"print({expression})", check=True).stdout.strip()


def slot(execution: Execution) -> dict:
    """The --map output (the summary, its record, its pending state)."""
    [output] = [o for o in execution.displays if "text/plain" in o.get("data", {})]
    return output["data"]


def lines_uploaded(server) -> list[list[str]]:
    """The prompts of each uploaded input file."""
    return [
        [json.loads(line)["body"]["messages"][-1]["content"] for line in content.splitlines()]
        for content in server.batch_api.files.values()
        if content.startswith(b'{"custom_id"')
    ]


def setup(kernel: Kernel, notebook: Path | None = None) -> None:
    kernel.run(REVIEWS, check=True)
    kernel.run(FAST, check=True)
    if notebook is not None:
        kernel.run(f"import os; os.environ['NBCHAT_NOTEBOOK'] = {str(notebook)!r}", check=True)


def test_the_cell_returns_once_the_batch_is_made_and_its_output_follows_it(
    kernel: Kernel, server
) -> None:
    setup(kernel)
    server.batch_api.hold = True
    started = time.monotonic()
    done = kernel.run(CELL, cell_id="c1")
    assert done.status == "ok", done.error
    assert time.monotonic() - started < 10
    data = slot(done)
    [batch] = data[BATCHES_MIME]["batches"]
    assert len(batch["keys"]) == 4, "one line per distinct request"
    assert lines_uploaded(server) == [
        ["Classify: great", "Classify: awful", "Classify: fine", "Classify: meh"]
    ]
    assert "5 items · 0 answered · 5 waiting for the provider's batch" in data["text/plain"]
    assert "The kernel is free: labels is bound when it ends" in data["text/plain"]
    assert server.chat_requests == [] and WIDGET_MIME not in data
    assert show(kernel, "'labels' in dir()") == "False", "-o waits for the answers"
    assert show(kernel, "6 * 7") == "42", "the kernel runs other cells meanwhile"
    reads = server.batch_api.counts["retrieve"]
    assert kernel.follow(lambda: server.batch_api.counts["retrieve"] >= reads + 2, timeout=10)
    server.batch_api.finish()
    assert kernel.follow(lambda: RECORD_MIME in slot(done), timeout=15)
    final = slot(done)
    assert BATCHES_MIME not in final
    assert [item["fills"] for item in final[RECORD_MIME]["items"]] == [[w] for w in WORDS]
    assert (
        "labels is bound to 5 values (the batch ended after the cell returned)"
        in (final["text/plain"])
    )
    labels = json.loads(show(kernel, "__import__('json').dumps(labels)"))
    assert labels == [f"Reply #1 to: Classify: {w}" for w in WORDS]
    assert server.chat_requests == []


def test_a_restarted_kernel_reattaches_and_a_finished_batch_replays_with_no_request(
    kernel: Kernel, server, chat_env
) -> None:
    path = chat_env / "batch.ipynb"
    setup(kernel, path)
    server.batch_api.hold = True
    pending = kernel.run(CELL, cell_id="c1", check=True)
    again = kernel.run(CELL, cell_id="c1", check=True)  # the same kernel, before any save
    assert server.batch_api.counts["create"] == 1, "re-running never resubmits"
    save_notebook(path, [("c0", REVIEWS, None), ("c1", CELL, again)])
    assert TEST_KEY not in path.read_text(), "the pending state holds no key"
    kernel.restart()
    setup(kernel, path)
    server.batch_api.counts.clear()
    reattached = kernel.run(CELL, cell_id="c1", check=True)
    assert server.batch_api.counts == {"retrieve": 1}, "a status request, no submission"
    assert slot(reattached)[BATCHES_MIME] == slot(pending)[BATCHES_MIME] | {
        "batches": slot(reattached)[BATCHES_MIME]["batches"]
    }
    server.batch_api.finish()
    assert kernel.follow(lambda: RECORD_MIME in slot(reattached), timeout=15)
    save_notebook(path, [("c0", REVIEWS, None), ("c1", CELL, reattached)])
    kernel.restart()
    setup(kernel, path)
    server.reset()
    replayed = kernel.run(CELL, cell_id="c1", check=True)
    assert server.requests == [], "after completion: no request of any kind"
    assert "5 answered (5 replayed)" in slot(replayed)["text/plain"]
    assert show(kernel, "labels[4]") == "Reply #1 to: Classify: meh"


def test_a_reloaded_extension_reattaches_the_batch_the_file_does_not_hold_yet(
    kernel: Kernel, server
) -> None:
    """``%reload_ext nbchat`` (or unload, then load) before the frontend saved the notebook:
    the batches in flight are handed to the new extension, so a re-run re-attaches."""
    setup(kernel)
    server.batch_api.hold = True
    pending = kernel.run(CELL, cell_id="c1", check=True)
    kernel.run("%reload_ext nbchat", check=True)
    kernel.run("%unload_ext nbchat", check=True)
    kernel.run("%load_ext nbchat", check=True)
    again = kernel.run(CELL, cell_id="c1", check=True)
    assert server.batch_api.counts["create"] == 1, "the same items are never submitted twice"
    [made] = slot(pending)[BATCHES_MIME]["batches"]
    assert [batch["id"] for batch in slot(again)[BATCHES_MIME]["batches"]] == [made["id"]]
    server.batch_api.finish()
    assert kernel.follow(lambda: RECORD_MIME in slot(again), timeout=15)
    assert show(kernel, "labels[1]") == "Reply #1 to: Classify: awful"


def test_failed_items_are_named_and_a_rerun_resubmits_only_them(kernel: Kernel, server) -> None:
    setup(kernel)
    server.batch_api.item_errors["Classify: awful"] = "error"
    done = kernel.run(CELL, cell_id="c1", check=True)
    assert kernel.follow(lambda: RECORD_MIME in slot(done), timeout=15)
    final = slot(done)["text/plain"]
    assert "⚠ item 1 failed: The server rejected the request (400). Server said: Fake" in final
    assert "labels is bound to 5 values, None for 1 failed item" in final
    assert show(kernel, "labels[1], labels[0]") == "None Reply #1 to: Classify: great"
    assert len(slot(done)[RECORD_MIME]["items"]) == 4
    server.batch_api.item_errors.clear()
    rerun = kernel.run(CELL, cell_id="c1", check=True)
    assert lines_uploaded(server)[-1] == ["Classify: awful"], "only the failed item"
    assert kernel.follow(
        lambda: RECORD_MIME in slot(rerun) and BATCHES_MIME not in slot(rerun), timeout=15
    )
    assert show(kernel, "labels[1]") == "Reply #1 to: Classify: awful"
    server.batch_api.item_errors["Classify: awful"] = "error"
    kernel.run("reviews[1] = 'dreadful'", check=True)
    real_time = kernel.run(CELL.replace("--batch", "--no-batch"), cell_id="c1", check=True)
    assert [r.body["messages"][-1]["content"] for r in server.chat_requests] == [
        "Classify: dreadful"
    ], "in real time: the stored batch answers replay"
    assert "5 answered (4 replayed)" in slot(real_time)["text/plain"]


def test_wait_shows_a_progress_bar_and_ctrl_c_stops_waiting_only(kernel: Kernel, server) -> None:
    setup(kernel)
    server.batch_api.steps = 3
    waited = kernel.run(CELL.replace("--batch", "--batch --wait"), cell_id="c1", check=True)
    assert any(
        WIDGET_MIME in m["content"].get("data", {})
        for m in waited.messages
        if m["msg_type"] == "display_data"
    )
    data = slot(waited)
    assert WIDGET_MIME not in data and BATCHES_MIME not in data and RECORD_MIME in data
    assert show(kernel, "labels[2]") == "Reply #1 to: Classify: fine"
    server.batch_api.hold = True
    kernel.run("reviews.append('new')", check=True)
    stopped = kernel.run(
        CELL.replace("--batch", "--batch --wait"), cell_id="c1", interrupt_after=1.5, timeout=30
    )
    assert stopped.status == "error" and stopped.error["ename"] == "BatchPending"
    batch_id = slot(stopped)[BATCHES_MIME]["batches"][0]["id"]
    assert stopped.error["evalue"] == (
        f"Batch {batch_id} no longer waited for (Ctrl-C): it goes on at the provider; run the "
        "cell again to pick up its answers."
    )
    assert RECORD_MIME in slot(stopped), "the replayed answers stay stored beside it"


def test_ctrl_c_while_submitting_keeps_the_batch_made_in_the_output(
    kernel: Kernel, server, tmp_path: Path
) -> None:
    """Two input files (a line limit of 3); Ctrl-C while the second is uploaded: the first
    batch exists at the provider, so its pending state is in the output and a restarted kernel
    re-attaches to it, submitting only the item not sent."""
    path = tmp_path / "nb.ipynb"
    setup(kernel, path)
    server.batch_api.hold = True
    split = (
        "import nbchat.engine.provider_batch as pb, nbchat.wire.batches as wb\n"
        "pb.ProviderBatchRun.__init__.__kwdefaults__['limits'] = pb.BatchLimits(lines=3)\n"
        "_upload, _calls = wb.BatchAPI.upload, []\n"
        "def _interrupted(api, content, *more):\n"
        "    _calls.append(1)\n"
        "    if len(_calls) == 2:\n"
        "        raise KeyboardInterrupt\n"
        "    return _upload(api, content, *more)\n"
        "wb.BatchAPI.upload = _interrupted"
    )
    try:
        kernel.run(split, check=True)
        stopped = kernel.run(CELL, cell_id="c1")
        assert stopped.status == "error" and stopped.error["ename"] == "BatchPending"
        assert "Stopped submitting (Ctrl-C): batch batch-" in stopped.error["evalue"]
        [batch] = slot(stopped)[BATCHES_MIME]["batches"]
        assert len(batch["keys"]) == 3 and server.batch_api.counts["create"] == 1
        save_notebook(path, [("c0", REVIEWS, None), ("c1", CELL, stopped)])
        kernel.restart()
        setup(kernel, path)
        kernel.run(
            "import nbchat.engine.provider_batch as pb\n"
            "pb.ProviderBatchRun.__init__.__kwdefaults__['limits'] = pb.BatchLimits(lines=3)",
            check=True,
        )
        kernel.run(CELL, cell_id="c1", check=True)
        assert server.batch_api.counts["create"] == 2, "the batch made is never submitted again"
        assert lines_uploaded(server)[-1] == ["Classify: meh"]
    finally:
        kernel.restart()  # nbchat's modules as they are, for the next tests


def test_a_rerun_whose_status_check_fails_keeps_the_pending_state(kernel: Kernel, server) -> None:
    """The re-run replaces the output that held the pending state: a failed status request must
    not leave it without (a restart would then submit, and pay for, the items again)."""
    setup(kernel)
    kernel.run("%config ChatMagics.max_retries = 0", check=True)
    server.batch_api.hold = True
    kernel.run(CELL, cell_id="c1", check=True)
    server.batch_api.retrieve_statuses.extend([503] * 50)  # the poller's checks fail too
    kernel.run("reviews.append('new')", check=True)
    rerun = kernel.run(CELL, cell_id="c1", check=True)
    data = slot(rerun)
    assert [len(b["keys"]) for b in data[BATCHES_MIME]["batches"]] == [4, 1]
    assert "Status check failed: The server failed (503)" in data["text/plain"]
    assert server.batch_api.counts["create"] == 2


def test_a_rerun_that_fails_before_its_batch_run_keeps_the_pending_state(
    kernel: Kernel, server, tmp_path: Path
) -> None:
    """After a restart the map cell is run before the cell defining its list: it fails, and
    its new output (the error) replaces the one with the pending state. Saved so, the batch
    would be lost and the next run would submit (and pay for) its items again."""
    path = tmp_path / "nb.ipynb"
    setup(kernel, path)
    server.batch_api.hold = True
    pending = kernel.run(CELL, cell_id="c1", check=True)
    save_notebook(path, [("c0", REVIEWS, None), ("c1", CELL, pending)])
    kernel.restart()
    kernel.run(FAST, check=True)
    kernel.run(f"import os; os.environ['NBCHAT_NOTEBOOK'] = {str(path)!r}", check=True)
    failed = kernel.run(CELL, cell_id="c1")
    assert failed.status == "error" and "'reviews' is not defined" in failed.error["evalue"]
    [kept] = [o["data"] for o in failed.displays if BATCHES_MIME in o.get("data", {})]
    assert kept[BATCHES_MIME]["batches"] == slot(pending)[BATCHES_MIME]["batches"]
    assert "still pending at the provider" in kept["text/plain"]
    save_notebook(path, [("c0", REVIEWS, None), ("c1", CELL, failed)])
    kernel.restart()
    setup(kernel, path)
    server.batch_api.counts.clear()
    kernel.run(CELL, cell_id="c1", check=True)
    assert server.batch_api.counts == {"retrieve": 1}, "re-attached, nothing submitted again"


def test_waiting_outlasts_a_failed_status_check(kernel: Kernel, server) -> None:
    """A 503 on one status request (after the retries) while the cell waits: the wait (up to
    24 h headless) goes on, as the poller's does, instead of failing the cell."""
    setup(kernel)
    kernel.run("%config ChatMagics.max_retries = 0", check=True)
    server.batch_api.steps = 3
    server.batch_api.retrieve_statuses.append(503)
    waited = kernel.run(CELL.replace("--batch", "--batch --wait"), cell_id="c1")
    assert waited.status == "ok", waited.error
    assert RECORD_MIME in slot(waited) and show(kernel, "labels[4]") == "Reply #1 to: Classify: meh"


def test_ctrl_c_while_a_rerun_takes_over_from_the_poller_keeps_the_pending_state(
    kernel: Kernel, server
) -> None:
    """The re-run waits for its poller's request under way; Ctrl-C then must not leave the
    cell's output without the batch it replaced."""
    setup(kernel)
    server.batch_api.hold = True
    pending = kernel.run(CELL, cell_id="c1", check=True)
    server.batch_api.retrieve_delay = 3.0
    reads = server.batch_api.counts["retrieve"]
    assert kernel.follow(lambda: server.batch_api.counts["retrieve"] > reads, timeout=10)
    time.sleep(0.5)  # the poller's next request is under way (for 3 s)
    stopped = kernel.run(CELL, cell_id="c1", interrupt_after=1.0, timeout=30)
    server.batch_api.retrieve_delay = 0.0
    assert stopped.status == "error"
    [kept] = [o["data"] for o in stopped.displays if BATCHES_MIME in o.get("data", {})]
    assert kept[BATCHES_MIME]["batches"][0]["id"] == slot(pending)[BATCHES_MIME]["batches"][0]["id"]


def test_a_headless_run_waits_up_to_the_timeout_then_names_the_batch(
    kernel: Kernel, server
) -> None:
    setup(kernel)
    server.batch_api.hold = True
    timed_out = kernel.run(CELL.replace("--batch", "--batch --batch-timeout 0.5"))
    assert timed_out.status == "error", "no cell id: a headless run, which waits"
    batch_id = slot(timed_out)[BATCHES_MIME]["batches"][0]["id"]
    assert timed_out.error["evalue"] == (
        f"Batch {batch_id} still running after 0.5 s: it goes on at the provider; run the cell "
        "again to pick up its answers."
    )
    assert "Stopped waiting" in slot(timed_out)["text/plain"]
    server.batch_api.finish()
    picked = kernel.run(CELL)
    assert picked.status == "ok" and server.batch_api.counts["create"] == 1
    assert show(kernel, "labels[0]") == "Reply #1 to: Classify: great"


def test_batches_are_listed_and_one_is_cancelled(kernel: Kernel, server) -> None:
    setup(kernel)
    server.batch_api.hold = True
    done = kernel.run(CELL, cell_id="c1", check=True)
    batch_id = slot(done)[BATCHES_MIME]["batches"][0]["id"]
    listed = kernel.run("%chat batches", check=True).data("text/plain")[0]
    assert listed.startswith("1 provider batch of this notebook")
    assert batch_id in listed and "in_progress" in listed and "0 / 4" in listed
    kernel.run("import os; os.environ['NBCHAT_OFFLINE'] = '1'", check=True)
    offline = kernel.run("%chat batches", check=True).data("text/plain")[0]
    assert "as last seen (offline: not checked)" in offline
    refused = kernel.run(f"%chat batch cancel {batch_id}")
    assert refused.status == "error" and "Offline mode is on" in refused.error["evalue"]
    assert server.batch_api.counts["cancel"] == 0, "offline: nothing is sent"
    kernel.run("del os.environ['NBCHAT_OFFLINE']", check=True)
    cancelled = kernel.run(f"%chat batch cancel {batch_id}", check=True).stdout
    assert cancelled.startswith(f"{batch_id} at {server.base_url}: cancelling.")
    assert kernel.follow(
        lambda: (
            RECORD_MIME in slot(done)
            or ("cancelled" in slot(done)["text/plain"] and BATCHES_MIME not in slot(done))
        ),
        timeout=15,
    )
    final = slot(done)["text/plain"]
    assert "item 0 failed: The batch did not answer it: batch_cancelled: Batch cancelled" in final
    assert "None for 5 failed items" in final


def test_an_endpoint_without_a_batch_api_fails_in_one_line(kernel: Kernel, server) -> None:
    setup(kernel)
    server.batch_api.missing_status = 405
    failed = kernel.run(CELL, cell_id="c1")
    assert failed.error["ename"] == "BatchUnsupported"
    message = failed.error["evalue"]
    assert message.startswith(f"{server.base_url} has no batch API (405 on /files) (request id")
    assert message.endswith("): send the items in real time with --no-batch")
    refused = kernel.run("%%chat --batch\nHi", cell_id="c2")
    assert refused.error["evalue"] == "--batch goes with --map"


def test_nbchat_run_waits_for_the_batch_and_saves_its_answers(capsys, chat_env, server) -> None:
    cells = ["%load_ext nbchat", FAST, REVIEWS, CELL, "print(labels[3])"]
    path = write_notebook(chat_env / "batch.ipynb", cells)
    server.batch_api.steps = 2
    code = main(["run", str(path), "--inplace"])
    out = capsys.readouterr().out
    assert code == 0, out
    saved = json.loads(path.read_text())
    outputs = [cell.get("outputs", []) for cell in saved["cells"] if cell["cell_type"] == "code"]
    [map_output] = [o for o in outputs[3] if RECORD_MIME in o.get("data", {})]
    assert BATCHES_MIME not in map_output["data"] and WIDGET_MIME not in map_output["data"]
    assert len(read_stored(map_output["data"][RECORD_MIME], 2)) == 5
    assert "".join(outputs[4][0]["text"]) == "Reply #1 to: Classify: great\n"
    assert server.chat_requests == [] and server.batch_api.counts["create"] == 1


def test_map_from_code_waits_for_its_batch_or_returns_none_at_once(kernel: Kernel, server) -> None:
    setup(kernel)
    code = "import nbchat\nres = nbchat.map('Echo {{item}}', ['a', 'b'], batch=True{more})\n"
    code += "print(res)"
    waited = kernel.run(code.format(more=""), cell_id="c1", check=True)
    assert waited.stdout.strip() == "['Reply #1 to: Echo a', 'Reply #1 to: Echo b']"
    assert server.batch_api.counts["create"] == 1 and server.chat_requests == []
    server.batch_api.hold = True
    returned = kernel.run(code.format(more=", wait=False").replace("'b'", "'c'"), cell_id="c2")
    assert returned.status == "ok" and returned.stdout.strip() == "None"
    assert BATCHES_MIME in slot(returned)
    refused = kernel.run("nbchat.map('{item}', ['a'], batch_timeout=5)", cell_id="c3")
    assert refused.error["evalue"] == "batch_timeout goes with batch=True"


def test_server_text_in_the_summary_is_inert(kernel: Kernel, server) -> None:
    from support.html_check import PAYLOAD, executable

    setup(kernel)
    server.batch_api.reject[2] = f"bad line {PAYLOAD}"
    server.responses["Classify: great"] = f"great {PAYLOAD} [x](javascript:alert(1))"
    done = kernel.run(CELL, cell_id="c1", check=True)
    assert kernel.follow(lambda: BATCHES_MIME not in slot(done), timeout=15)
    server.responses.clear()
    html = slot(done)["text/html"]
    assert "rejected its line 2: bad line &lt;img src=x onerror=alert(1)&gt;" in html
    assert executable(html) == []
