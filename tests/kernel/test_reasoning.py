"""Reasoning models in a real kernel: thinking shown apart and folded, passed back where the
provider requires it (the fake server's thinking model enforces DeepSeek's rule, its strict model
refuses unknown message fields, as OpenAI's does), replayed whatever was decided."""

from __future__ import annotations

import json
import re

from nbchat.store.record import RECORD_MIME

from support.fake_openai import PASS_IT_BACK, STRICT_MODEL, THINKING_MODEL, Fault, thinking_for
from support.html_check import WRAPPER
from support.kernel_driver import Execution, Kernel, save_notebook


def think(kernel: Kernel, body: str, cell_id: str, flags: str = "", **kwargs) -> Execution:
    return kernel.run(f"%%chat -m {THINKING_MODEL} {flags}\n{body}", cell_id=cell_id, **kwargs)


def record_of(execution: Execution) -> dict:
    (record,) = execution.data(RECORD_MIME)
    return record


def test_the_thinking_is_shown_apart_and_folded_away(kernel, server):
    done = think(kernel, "Why is the sky blue?", "c1", flags="-o answer", check=True)
    thought = "".join(
        thinking_for({"messages": [{"role": "user", "content": "Why is the sky blue?"}]})
    )
    markdown = done.data("text/html")[0]
    folded = re.escape(WRAPPER) + r"<details><summary>Thinking · \d+ words · \d+\.\d s"
    assert re.match(folded + "</summary>", markdown)
    assert thought.strip() in markdown and "</details>" in markdown
    answer = "Reply #1 to: Why is the sky blue?"
    assert markdown.index("</details>") < markdown.index(answer)
    plain = done.data("text/plain")[0]
    assert plain.startswith(answer) and thought.strip() not in plain, "plain text: the answer"
    assert kernel.run("print(answer)", check=True).stdout.strip() == answer
    record = record_of(done)
    assert record["messages"][1]["reasoning_content"] == thought
    assert "thinking)" in markdown, "the footer counts the thinking tokens"
    live = [
        m["content"]["data"]["state"]["value"]
        for m in done.messages
        if m["msg_type"] == "comm_msg"
        and "Thinking ·" in str(m["content"]["data"].get("state", {}).get("value", ""))
    ]
    assert live, "the live view showed the thinking as it came"


def test_a_second_turn_passes_the_thinking_back_where_the_provider_requires_it(kernel, server):
    think(kernel, "First", "c1", check=True)
    second = think(kernel, "Second", "c2", check=True)
    bodies = [r.body for r in server.chat_requests]
    assert len(bodies) == 3, "the thinking model refused once; nbchat learned and sent again"
    assert "reasoning_content" not in bodies[1]["messages"][1]
    assert bodies[2]["messages"][1]["reasoning_content"]
    assert record_of(second)["messages"][1]["content"].startswith("Reply #2")
    think(kernel, "Third", "c3", check=True)
    assert len(server.chat_requests) == 4, "learned for this endpoint and model: asked at once"
    assert server.chat_requests[-1].body["messages"][3]["reasoning_content"]


def test_a_strict_provider_never_receives_the_thinking(kernel, server):
    kernel.run("%config ChatMagics.send_reasoning = True", check=True)
    think(kernel, "First", "c1", check=True)
    kernel.run("%config ChatMagics.send_reasoning = 'auto'", check=True)
    switched = kernel.run(f"%%chat -m {STRICT_MODEL}\nSecond", cell_id="c2", check=True)
    sent = server.chat_requests[-1].body["messages"]
    assert all(set(m) <= {"role", "content"} for m in sent)
    assert record_of(switched)["messages"][1]["content"].startswith("Reply #2")


def test_a_decision_against_the_provider_fails_in_one_line(kernel, server):
    kernel.run("%config ChatMagics.send_reasoning = False", check=True)
    think(kernel, "First", "c1", check=True)
    failed = think(kernel, "Second", "c2")
    assert failed.status == "error" and PASS_IT_BACK in failed.error["evalue"]
    assert "Traceback" not in "\n".join(failed.error["traceback"])
    assert len(server.chat_requests) == 2, "an explicit setting is not second-guessed"


def test_answers_replay_after_a_restart_whatever_was_decided(kernel, server, chat_env):
    path = chat_env / "thinking.ipynb"
    kernel.run(f"import os; os.environ['NBCHAT_NOTEBOOK'] = {str(path)!r}", check=True)
    cells = [(f"c{n}", f"%%chat -m {THINKING_MODEL}\nQuestion {n}") for n in range(1, 4)]
    runs = {cell_id: kernel.run(source, cell_id=cell_id, check=True) for cell_id, source in cells}
    save_notebook(path, [(cell_id, source, runs[cell_id]) for cell_id, source in cells])
    kernel.restart_offline(path)
    server.reset()
    for cell_id, source in cells:
        again = kernel.run(source, cell_id=cell_id, check=True)
        assert "replayed" in again.data("text/html")[0]
    assert server.chat_requests == []


def test_cut_off_while_thinking_says_so_and_shows_the_thinking(kernel, server):
    done = think(kernel, "A hard one", "c1", flags="--max-tokens 3", check=True)
    markdown = done.data("text/html")[0]
    assert "cut off while thinking, no answer yet" in markdown and "--max-tokens" in markdown
    assert "<details><summary>Thinking" in markdown


def test_reasoning_effort_is_sent(kernel, server):
    kernel.run("%%chat --reasoning-effort high\nHi", cell_id="c1", check=True)
    assert server.chat_requests[-1].body["reasoning_effort"] == "high"


def test_hostile_thinking_never_runs(kernel, server):
    hostile = "```\nunclosed <img src=x onerror=alert(1)>\n<script>alert(2)</script>"
    server.script(Fault(text="Fine <b>answer</b>"))
    kernel.run("%config ChatMagics.send_reasoning = False", check=True)
    done = think(kernel, hostile, "c1", check=True)
    markdown = done.data("text/html")[0]
    body = markdown.split("</summary>", 1)[1]
    assert "<details>" not in body and "<summary>" not in body
    for live in [json.dumps(m["content"]) for m in done.messages if m["msg_type"] == "comm_msg"]:
        assert "<img src=x" not in live and "<script>" not in live


def test_a_replay_reports_the_form_that_was_sent(kernel, server, chat_env):
    path = chat_env / "form.ipynb"
    kernel.run(f"import os; os.environ['NBCHAT_NOTEBOOK'] = {str(path)!r}", check=True)
    cells = [
        ("c1", f"%%chat -m {THINKING_MODEL}\nFirst"),
        ("c2", f"%%chat -m {THINKING_MODEL} --raw\nSecond"),
    ]
    runs = {cell_id: kernel.run(source, cell_id=cell_id, check=True) for cell_id, source in cells}
    assert len(server.chat_requests) == 3, "refused once without the thinking, then learned"
    save_notebook(path, [(cell_id, source, runs[cell_id]) for cell_id, source in cells])
    kernel.restart_offline(path)
    server.reset()
    kernel.run(cells[0][1], cell_id="c1", check=True)
    replayed = kernel.run(cells[1][1], cell_id="c2", check=True)
    assert server.chat_requests == []
    (tree,) = replayed.data("application/json")
    sent = tree["sent"]["body"]["messages"]
    assert sent[1]["reasoning_content"], "the stored answer was asked with the thinking above"
    assert tree["key"] == runs["c2"].data("application/json")[0]["key"]
