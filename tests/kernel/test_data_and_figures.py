"""The notebook's own material as context, in a real kernel: DataFrames as tables, figures as image
parts shown as thumbnails, ``{In[n]}``/``{Out[n]}``, the budget, and images stored once and
replayed with zero requests after a restart (the figure is drawn again, to the same bytes)."""

from __future__ import annotations

import base64
import json
import re

from nbchat.prompt.figures import THUMBNAIL_SIDE
from nbchat.store.record import RECORD_MIME
from nbchat.wire.images import image_from_url

from support.fake_openai import NO_IMAGES, TEXT_ONLY_MODEL
from support.kernel_driver import Execution, Kernel, save_notebook

FIGURE = """\
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
fig, ax = plt.subplots(figsize=(6.4, 4.8))
ax.plot([1, 3, 2, 5], marker="o")
ax.set_title("tides")
plt.close(fig)
"""
FRAME = """\
import pandas as pd
df = pd.DataFrame({"station": [f"s{i}" for i in range(40)], "level": [i / 4 for i in range(40)]})
"""


def record_of(execution: Execution) -> dict:
    (record,) = execution.data(RECORD_MIME)
    return record


def image_urls(message: dict) -> list[str]:
    content = message["content"]
    parts = content if isinstance(content, list) else []
    return [p["image_url"]["url"] for p in parts if p["type"] == "image_url"]


def test_a_dataframe_is_sent_whole_when_it_fits_and_shrinks_only_to_fit(
    kernel: Kernel, server
) -> None:
    kernel.run(FRAME, check=True)
    done = kernel.run("%%chat\nWhich station is highest?\n\n{df}", cell_id="c1", check=True)
    (sent,) = server.chat_requests[0].body["messages"]
    text = sent["content"]
    assert isinstance(text, str), "a table is text: content stays a str"
    assert text.startswith("Which station is highest?\n\npandas.DataFrame, 40 rows × 2 columns\n")
    assert "| level (float64) |" in text
    assert all(f"| s{i} | {i / 4:g} |" in text for i in range(40)), "every row: it fits"
    assert "more rows" not in text and "df: showed" not in done.notes
    assert record_of(done)["messages"][0]["content"] == text
    kernel.run("big = pd.concat([df] * 100, ignore_index=True)", check=True)
    shrunk = kernel.run("%%chat --new\nAnd here?\n\n{big}", cell_id="c2", check=True)
    table = server.chat_requests[1].body["messages"][-1]["content"].split("\n\n", 1)[1]
    assert table.startswith("pandas.DataFrame, 4,000 rows × 2 columns\n")
    assert 7_900 < len(table) <= 8_000, "as many head and tail rows as the budget holds"
    (note,) = [line for line in shrunk.notes.splitlines() if "big: showed" in line]
    shown = int(note.split("showed ")[1].split()[0])
    assert shown > 10 and f"| … {4_000 - shown:,} more rows |" in table, "said to both"


def test_a_figure_is_an_image_part_shown_as_a_thumbnail(kernel: Kernel, server) -> None:
    kernel.run(FIGURE, check=True)
    done = kernel.run("%%chat\nDescribe {fig} briefly.", cell_id="c1", check=True)
    (sent,) = server.chat_requests[0].body["messages"]
    kinds = [part["type"] for part in sent["content"]]
    assert kinds == ["text", "image_url", "text"]
    assert sent["content"][0]["text"] == "Describe " and sent["content"][2]["text"] == " briefly."
    (url,) = image_urls(sent)
    image = image_from_url(url)
    assert image is not None and image.mime == "image/png" and image.size is not None
    assert "(seeing 1 image)" in done.data("text/html")[0]

    thumbnails = done.data("image/png")
    assert len(thumbnails) == 1, "one thumbnail, shown with the turn"
    thumb = image_from_url(f"data:image/png;base64,{thumbnails[0]}")
    assert thumb is not None and thumb.size is not None and max(thumb.size) == THUMBNAIL_SIDE
    shown = [set(output.get("data", ())) for output in done.outputs]
    picture = next(i for i, kinds in enumerate(shown) if "image/png" in kinds)
    answer = next(i for i, kinds in enumerate(shown) if "text/html" in kinds)
    assert picture < answer, "the thumbnail is above the answer"

    stored = record_of(done)["messages"][0]
    assert stored == sent, "the record holds the message exactly as sent"
    plain = done.data("text/plain")
    assert any("PNG image, " in text and "sent]" in text for text in plain)


def test_the_same_figure_replays_and_is_stored_only_in_its_own_turn(
    kernel: Kernel, server, chat_env
) -> None:
    path = chat_env / "figures.ipynb"
    kernel.run(f"import os; os.environ['NBCHAT_NOTEBOOK'] = {str(path)!r}", check=True)
    cells = [
        ("c0", FIGURE),
        ("c1", "%%chat\nWhat trend does {fig} show?"),
        ("c2", "%%chat\nAnd in one word?"),
    ]
    runs = {cell_id: kernel.run(source, cell_id=cell_id, check=True) for cell_id, source in cells}
    second = server.chat_requests[1].body["messages"]
    assert len(image_urls(second[0])) == 1, "the image is context for the next turn"
    assert "data:image" not in json.dumps(record_of(runs["c2"])), "stored once, not copied"
    save_notebook(path, [(cell_id, source, runs[cell_id]) for cell_id, source in cells])
    assert path.read_text().count("data:image/png;base64,") == 1

    kernel.restart_offline(path)
    server.reset()
    replays = [kernel.run(source, cell_id=cell_id, check=True) for cell_id, source in cells]
    assert server.chat_requests == [], "the figure drawn again has the same bytes: same key"
    for replay in replays[1:]:
        assert "replayed" in replay.data("text/html")[0]
    assert replays[1].data("image/png"), "the thumbnail is shown with a replayed turn too"


def test_history_and_raw_views_summarise_images(kernel: Kernel, server) -> None:
    kernel.run(FIGURE, check=True)
    kernel.run("%%chat\nLook: {fig}", cell_id="c1", check=True)
    history = kernel.run("%chat history", check=True)
    table = history.data("text/plain")[0]
    assert "Look: [PNG image, " in table and "base64" not in history.data("text/html")[0]
    image_tokens = int(re.search(r"user +~(\d+)", table).group(1))
    assert 200 < image_tokens < 1000, "an image counts by its tiles, not its base64 length"
    raw = kernel.run("%chat raw", check=True)
    tree = json.dumps(raw.data("application/json")[0], ensure_ascii=False)
    assert "data:image/png;base64,… [PNG image, " in tree and "sha256 " in tree
    assert "iVBOR" not in tree, "no image bytes in a raw view"

    shown = kernel.run("%%chat --raw\nAgain: {fig}", cell_id="c2", check=True)
    (tree,) = shown.data("application/json")
    assert image_urls(tree["messages"][0])[0].startswith("data:image/png;base64,iVBOR"), (
        "the stored record keeps the bytes"
    )
    sent_urls = [url for m in tree["sent"]["body"]["messages"] for url in image_urls(m)]
    assert len(sent_urls) == 2 and all("…" in url for url in sent_urls), "sent: summarised"


def test_in_and_out_fill_in_from_the_session_history(kernel: Kernel, server) -> None:
    levels = kernel.run("levels = [3, 1, 2]\nsorted(levels)", check=True)
    (number,) = [
        m["content"]["execution_count"] for m in levels.messages if m["msg_type"] == "execute_input"
    ]
    kernel.run("%%chat\nWhy does {In[-2]} give {Out[-2]}?", cell_id="c1", check=True)
    kernel.run(f"%%chat\nAgain: {{In[{number}]}} and {{Out[999]}}.", cell_id="c2", check=True)
    first, _, second = (m["content"] for m in server.chat_requests[1].body["messages"])
    assert first == "Why does levels = [3, 1, 2]\nsorted(levels) give [1, 2, 3]?"
    assert second == "Again: levels = [3, 1, 2]\nsorted(levels) and {Out[999]}."


def test_an_object_over_the_budget_names_the_setting(kernel: Kernel, server) -> None:
    kernel.run("import pandas as pd\nwide = pd.DataFrame({f'c{i}': [i] for i in range(30)})")
    kernel.run("%config ChatMagics.context_chars = 200", check=True)
    failed = kernel.run("%%chat\nSummarise {wide}", cell_id="c1")
    assert failed.status == "error"
    assert "ChatMagics.context_chars = 200" in failed.error["evalue"]
    assert "Traceback" not in "\n".join(failed.error["traceback"])
    assert server.chat_requests == []
    refused = kernel.run("%config ChatMagics.context_chars = 10")  # IPython logs a TraitError
    assert "at least 200" in refused.stderr


def test_a_model_without_image_input_fails_in_one_line(kernel: Kernel, server) -> None:
    kernel.run(FIGURE, check=True)
    failed = kernel.run(f"%%chat -m {TEXT_ONLY_MODEL}\nWhat is {{fig}}?", cell_id="c1")
    assert failed.status == "error" and NO_IMAGES in failed.error["evalue"]
    assert "\n" not in failed.error["evalue"].strip()
    assert "Traceback" not in "\n".join(failed.error["traceback"])
    assert len(server.chat_requests) == 1, "a refused image is not retried"


def test_a_thumbnail_is_smaller_than_the_image(kernel: Kernel, server) -> None:
    kernel.run(FIGURE, check=True)
    done = kernel.run("%%chat\n{fig}", cell_id="c1", check=True)
    (url,) = image_urls(record_of(done)["messages"][0])
    full = base64.b64decode(url.partition(",")[2])
    (thumb,) = done.data("image/png")
    assert len(base64.b64decode(thumb)) * 4 < len(full)
