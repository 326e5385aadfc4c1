"""Placeholders in a cell: {name}, {In[n]} and {Out[n]} filled in, every other brace left alone."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from PIL import Image

from nbchat.errors import ConfigError
from nbchat.prompt.figures import image_part
from nbchat.prompt.interpolate import Prompt, interpolate


class Broken:
    def __str__(self) -> str:
        raise RuntimeError("no")


NAMES = {"doc": "the text", "n": 3, "x": 1, "k": 1, "v": 2, "broken": Broken()}
TEXT_CASES = [
    ("Summarise {doc}", "Summarise the text"),
    ("{doc}{doc}", "the textthe text"),
    ("keep {missing}", "keep {missing}"),
    ('json {"a": {"b": 1}}', 'json {"a": {"b": 1}}'),
    ("jinja {{doc}}", "jinja {{doc}}"),
    ("code {x!r} {x:>3} {0} {}", "code {x!r} {x:>3} {0} {}"),
    ("set {1, 2} dict {k: v}", "set {1, 2} dict {k: v}"),
    ("n={n}", "n=3"),
    ("bad {broken}", "bad {broken}"),
    ("unbalanced { doc", "unbalanced { doc"),
]


@pytest.mark.parametrize(("text", "expected"), TEXT_CASES)
def test_interpolate_fills_plain_values_as_before(text, expected):
    prompt = interpolate(text, NAMES)
    assert prompt.content == prompt.text == expected
    assert prompt.images == ()


def test_a_value_that_cannot_be_rendered_is_left_with_a_note():
    assert interpolate("bad {broken}", NAMES).notes == (
        "broken: could not be rendered (RuntimeError); left as written",
    )


def test_an_undefined_name_is_left_as_written_with_a_note_naming_the_likely_one():
    # Sent as written (braces around a word are common in code), but a typo is said, once.
    prompt = interpolate("keep {missing} and {doc} and {dco} {missing}", NAMES)
    assert prompt.text == "keep {missing} and the text and {dco} {missing}"
    assert prompt.notes == (
        "{missing}: not defined, sent as written",
        "{dco}: not defined, sent as written (did you mean {doc}?)",
    )
    assert interpolate("code {x!r} {0} {} {k: v} {{missing}}", NAMES).notes == ()
    assert "did you mean" not in interpolate("{i1}", {"_i1": "x"}).notes[0]


# In and Out as IPython keeps them: In[0] is empty, In[-1] is the running cell.
HISTORY = {
    "In": ["", "x = 41", "x + 1", "print(x)", "%%chat\n{In[-2]}"],
    "Out": {2: 42},
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{In[1]}", "x = 41"),
        ("{Out[2]}", "42"),
        ("{In[-2]}", "print(x)"),
        ("{In[-3]} gives {Out[-3]}", "x + 1 gives 42"),
        ("{In[-1]}", "%%chat\n{In[-2]}"),
        (
            "{{In[1]}} {In[1] {In[x]} {In[ 1]} {Err[1]}",
            "{{In[1]}} {In[1] {In[x]} {In[ 1]} {Err[1]}",
        ),
    ],
)
def test_in_and_out_fill_in_from_the_history(text, expected):
    prompt = interpolate(text, HISTORY)
    assert prompt.text == expected and prompt.notes == ()


@pytest.mark.parametrize(
    ("text", "note"),
    [
        ("{In[0]}", "In[0]: no such execution in this session; left as written"),
        ("{In[5]}", "In[5]: no such execution in this session; left as written"),
        ("{In[-6]}", "In[-6]: no such execution in this session; left as written"),
        ("{Out[9]}", "Out[9]: no such execution in this session; left as written"),
        ("{Out[1]}", "Out[1]: execution 1 has no result; left as written"),
        ("{Out[-2]}", "Out[-2]: execution 3 has no result; left as written"),
    ],
)
def test_a_missing_execution_leaves_the_placeholder_with_a_note(text, note):
    prompt = interpolate(text, HISTORY)
    assert prompt.text == text and prompt.notes == (note,)


def test_history_outside_ipython_is_left_as_written():
    assert interpolate("{In[1]} {Out[-1]}", {}).notes == (
        "In[1]: no IPython history (In) in this namespace; left as written",
        "Out[-1]: no IPython history (In) in this namespace; left as written",
    )
    assert interpolate("{Out[1]}", {"Out": {1: "one"}}).text == "one"
    assert interpolate("{Out[1]}", {"In": ["", "1"]}).notes == (
        "Out[1]: no IPython history (Out) in this namespace; left as written",
    )


def test_in_prefers_the_code_as_typed():
    namespace = {**HISTORY, "_i3": "%time print(x)"}
    assert interpolate("{In[3]} {In[-2]} {In[1]}", namespace).text == (
        "%time print(x) %time print(x) x = 41"
    )


def test_out_is_rendered_like_any_value():
    prompt = interpolate("{Out[1]}", {"In": ["", "a"], "Out": {1: np.arange(3)}})
    assert prompt.text == "numpy.ndarray, shape (3,), dtype int64\n[0 1 2]"


def test_a_dataframe_becomes_a_table_with_its_notes():
    frame = pd.DataFrame({"n": range(100)})
    prompt = interpolate("Describe {df}.", {"df": frame}, budget=200)
    assert prompt.text.startswith(
        "Describe pandas.DataFrame, 100 rows × 1 column\n|  | n (int64) |"
    )
    assert "| … 90 more rows | … |" in prompt.text and prompt.text.endswith("| 99 | 99 |.")
    assert prompt.notes == ("df: showed 10 of 100 rows",)


def test_the_budget_is_per_value_and_refusal_names_the_setting():
    frame = pd.DataFrame({"n": range(100)})
    one = interpolate("{df}", {"df": frame}, budget=300)
    assert len(one.text) <= 300
    assert len(interpolate("{df} {df}", {"df": frame}, budget=300).text) == 2 * len(one.text) + 1
    with pytest.raises(ConfigError, match=r"^df renders to .* ChatMagics\.context_chars = 20:"):
        interpolate("{df}", {"df": frame}, budget=20)


def small_png() -> bytes:
    return image_part(Image.new("RGB", (4, 3), (255, 0, 0))).data


def test_images_become_parts_in_the_order_of_the_cell():
    figure = Figure(figsize=(2, 1))
    figure.subplots().plot([0, 1])
    namespace = {"fig": figure, "png": small_png(), "who": "me"}
    prompt = interpolate("Compare {fig} with {png}, says {who}.", namespace)
    fig_part, png_part = prompt.images
    assert png_part.data == small_png() and fig_part.mime == "image/png"
    assert prompt.content == [
        {"type": "text", "text": "Compare "},
        fig_part.part(),
        {"type": "text", "text": " with "},
        png_part.part(),
        {"type": "text", "text": ", says me."},
    ]
    assert prompt.text == f"Compare [{fig_part.summary}] with [{png_part.summary}], says me."
    assert json.loads(json.dumps(prompt.content)) == prompt.content  # ready for the request


def test_an_image_alone_is_a_list_of_one_part():
    prompt = interpolate("\n{png}\n", {"png": small_png()}).strip()
    assert prompt.content == [prompt.images[0].part()]
    assert prompt.text == f"[PNG image, 4×3, {len(small_png())} B]"


def test_strip_trims_the_ends_only():
    prompt = interpolate("  \n see {png}  and {png} \n\n", {"png": small_png()}).strip()
    assert [piece if isinstance(piece, str) else "IMG" for piece in prompt.pieces] == [
        "see ",
        "IMG",
        "  and ",
        "IMG",
    ]
    stripped = interpolate("  {doc}  ", NAMES).strip()
    assert stripped == Prompt(("the text",), fills=(("doc", "the text"),))
    assert interpolate("  ", NAMES).strip() == Prompt(())


def test_an_image_that_cannot_be_sent_stops_the_cell():
    huge = b"\x89PNG\r\n\x1a\n" + bytes(21 * 1024 * 1024)
    with pytest.raises(ConfigError, match=r"^scan is a 21 MB image, over the 20 MB"):
        interpolate("look at {scan}", {"scan": huge})


IPYTHON_SCRIPT = """
import json
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
for cell in ["x = 41", "x + 1", "%%capture\\nprint(x)"]:
    shell.run_cell(cell, store_history=True)
shell.run_cell(
    "from nbchat.prompt.interpolate import interpolate\\n"
    "prompt = interpolate('{In[1]}|{Out[2]}|{In[-2]}|{Out[-3]}|{Out[-2]}', get_ipython().user_ns)",
    store_history=True,
)
prompt = shell.user_ns["prompt"]
print(json.dumps([prompt.text, prompt.notes]))
"""


def test_history_numbers_are_those_of_a_real_ipython_shell():
    done = subprocess.run(
        [sys.executable, "-c", IPYTHON_SCRIPT],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    text, notes = json.loads(done.stdout.splitlines()[-1])
    assert text == "x = 41|42|%%capture\nprint(x)|42|{Out[-2]}"  # a magic as typed
    assert notes == ["Out[-2]: execution 3 has no result; left as written"]
