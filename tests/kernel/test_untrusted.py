"""Keys and untrusted text in a real kernel: a key never shows (live, stored or in an error),
and model HTML is shown as text that never runs, in answers, folds, summaries and misfits."""

from __future__ import annotations

import json
import re
from html import unescape

from support.chat_cells import assert_short_error, chat, final_html, widget_html
from support.env import TEST_KEY
from support.fake_openai import Fault
from support.html_check import CODE, executable, visible_text
from support.kernel_driver import WIDGET_MIME


def test_a_key_read_from_a_file_with_its_newline_works_and_a_bad_key_never_shows(kernel, server):
    kernel.run(f"import os; os.environ['OPENAI_API_KEY'] = {TEST_KEY + chr(10)!r}", check=True)
    chat(kernel, "Hello", cell_id="c1", check=True)
    assert server.chat_requests[-1].headers["authorization"] == f"Bearer {TEST_KEY}"
    kernel.run(f"os.environ['OPENAI_API_KEY'] = {TEST_KEY + ' x' + chr(0x2019)!r}", check=True)
    failed = chat(kernel, "Again", cell_id="c2")
    assert failed.error["ename"] == "ConfigError" and "OPENAI_API_KEY" in failed.error["evalue"]
    assert TEST_KEY not in json.dumps(failed.outputs)
    assert failed.data(WIDGET_MIME) == []


def test_a_value_holding_a_key_is_refused_and_sent_only_when_allowed(kernel, server):
    other_key = "sk-deep-0123456789abcdef"
    kernel.run(f"import os; os.environ['DEEPSEEK_API_KEY'] = {other_key!r}", check=True)
    kernel.run(
        "cfg = {'openai': os.environ['OPENAI_API_KEY']}\n"
        "other = {'deepseek': os.environ['DEEPSEEK_API_KEY']}",
        check=True,
    )
    refused = chat(kernel, "Use {cfg}", cell_id="c1")
    assert_short_error(refused, "{cfg} holds the value of $OPENAI_API_KEY", "--allow-secrets")
    elsewhere = chat(kernel, "Use {other}", cell_id="c2")
    assert_short_error(elsewhere, "{other} holds the value of $DEEPSEEK_API_KEY")
    assert other_key not in json.dumps(elsewhere.outputs)
    kernel.run("items = [cfg['openai'], 'fine']", check=True)
    mapped = chat(kernel, "Say {item}", flags="--map items -o out", cell_id="c3")
    assert mapped.status == "error" and "$OPENAI_API_KEY" in mapped.error["evalue"]
    assert [r.body["messages"][-1]["content"] for r in server.chat_requests] == ["Say fine"]
    chat(kernel, "Use {cfg}", flags="--allow-secrets", cell_id="c4", check=True)
    assert TEST_KEY in server.chat_requests[-1].body["messages"][-1]["content"]


def test_an_echoed_key_is_never_shown_live_nor_kept(kernel, server):
    cut = len(TEST_KEY) // 2
    pieces = ["Your ", "key ", "is ", TEST_KEY[:cut], TEST_KEY[cut:], " and ", "more."]
    server.script(Fault(pieces=pieces, delay=0.05))
    done = chat(kernel, "Echo it", cell_id="c1", check=True)
    everything = json.dumps(done.messages)
    for piece in (TEST_KEY, TEST_KEY[:cut], TEST_KEY[cut:]):
        assert piece not in everything, "not in the live view's messages, nor the final output"
    assert "Your key is *** and more." in visible_text(final_html(done))
    assert any("Your key is ***" in visible_text(html) for html in widget_html(done))


def test_model_ids_that_echo_the_key_are_redacted(kernel, server):
    models = server.models
    server.models = (*models, f"echo-{TEST_KEY}", f"part-{TEST_KEY[3:18]}")
    try:
        listed = kernel.run("%chat models", cell_id="m", check=True)
    finally:
        server.models = models
    everything = json.dumps(listed.outputs)
    assert TEST_KEY not in everything and TEST_KEY[3:18] not in everything
    assert "echo-***" in listed.data("text/plain")[0]
    assert executable(listed.data("text/html")[0]) == []


def test_config_refuses_a_base_url_with_credentials(kernel, server):
    # IPython's %config logs a refused value (TraitError) instead of failing the cell.
    refused = kernel.run("%config ChatMagics.base_url = 'https://user:secret@example.com/v1'")
    assert "environment variable" in refused.stderr and "secret" not in refused.stderr
    applied = "print(get_ipython().magics_manager.registry['ChatMagics'].base_url)"
    assert kernel.run(applied, check=True).stdout.strip() == "None"


HOSTILE = (
    "Plain **bold**.\n\n"
    "<img src=x onerror=\"alert('img')\"> <script>alert('script')</script>\n\n"
    "<iframe src=\"javascript:alert('iframe')\"></iframe> <!-- hidden instructions -->\n\n"
    "[click](javascript:alert('link')) and ![pixel](http://127.0.0.1:9/p.png)\n\n"
    "```html\n<b>kept as code</b>\n```\n\n"
    "See http://a/\\<img src=x onerror=\"alert('autolink')\"//> for more.\n\n"
    "Docs: \\(http://a.com\\<img src=x onerror=alert('math')>\\)\n\n"
    '[a](http://x "$" onanimationstart=alert(1) "$")\n\n'
    "\\\\(http://a.com/<img src=x onerror=alert('backslashes')>\\\\)\n"
)


def assert_inert(html: str) -> None:
    """Parsed as a browser would, nothing in it runs, fetches or navigates by itself."""
    assert executable(html) == [], html


def test_model_html_is_shown_as_text_and_never_runs(kernel, server):
    server.script(Fault(text=HOSTILE, delay=0.01))
    done = chat(kernel, "Say hi", cell_id="c1", check=True)
    html = final_html(done)
    assert_inert(html)
    assert "&lt;img" in html and "&lt;script" in html and "<strong>bold</strong>" in html
    code = re.search(re.escape(CODE) + "(.*?)</code></pre>", html, re.S)
    assert code and unescape(re.sub(r"<[^>]+>", "", code.group(1))) == "<b>kept as code</b>\n"
    # The live view rendered the same safe HTML while the answer streamed.
    live = widget_html(done)
    assert any("<strong>bold</strong>" in shown for shown in live), "the live view renders"
    for shown in live:
        assert_inert(shown)
    # ... and so do the history table and a partial answer.
    assert_inert(kernel.run("%chat history", cell_id="h", check=True).data("text/html")[0])
    server.script(Fault(text=HOSTILE, drop_after=60))
    failed = chat(kernel, "Again", cell_id="c2")
    assert failed.status == "error"
    assert_inert(final_html(failed))


def test_model_html_never_runs_in_folds_summaries_or_misfits(kernel, server):
    # A tool's result (the fold above the answer), an answer that is not the JSON asked for
    # (kept in sight), and a --map summary of hostile items and answers.
    kernel.run(f"def page() -> str:\n    return {HOSTILE!r}", check=True)
    server.script(Fault(tool_calls=[("page", {})]))
    folded = chat(kernel, "Fetch", flags="--tools page", cell_id="c1", check=True)
    assert_inert(final_html(folded))
    for shown in widget_html(folded):
        assert_inert(shown)
    assert "page({})" in final_html(folded) and "&lt;img src=x" in final_html(folded)
    server.script(Fault(text=HOSTILE))
    misfit = chat(kernel, "JSON please", flags="--json", cell_id="c2")
    assert misfit.status == "error" and "does not fit JSON" in misfit.error["evalue"]
    assert_inert(final_html(misfit))
    assert "&lt;img" in final_html(misfit)
    kernel.run(f"items = [{HOSTILE!r}]", check=True)
    server.script(Fault(text=HOSTILE))
    summary = chat(kernel, "Classify {item}", flags="--map items", cell_id="c3", check=True)
    assert_inert(final_html(summary))
    assert "&lt;img" in final_html(summary), "shown as text"
