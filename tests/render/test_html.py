"""safe_html: model Markdown rendered in the kernel and sanitized; nothing executable leaves.

The attacker's payloads (tests/support/html_check.py), random Markdown, and benign Markdown that
must still render as before: headings, lists, tables, code, links, math, images shown as links.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nbchat.render.html import GrowingMarkdown, document, escape, markdown, sanitize, table

from support.html_check import CODE, HOSTILE, MATH, PAYLOAD, PLAIN_CODE, WRAPPER, executable
from support.paths import TESTS


def shown(text: str) -> str:
    return document(markdown(text))


def test_the_check_catches_what_runs():
    assert executable(PAYLOAD) and executable('<a href="javascript:x">a</a>')
    assert executable("<p onclick=x>") and executable("<style>body{}</style>")
    assert executable('<div style="background: url(x)">') and executable("<svg>")
    assert executable("<p><em>fine</em> <a href='https://a'>ok</a></p>") == []


@pytest.mark.parametrize("text", HOSTILE)
def test_attacker_payloads_render_inert(text):
    html = shown(text)
    assert executable(html) == []
    assert re.findall(r"<[^>]*\bon[a-z]+=", html) == []  # handlers only as escaped text


@pytest.mark.parametrize("text", HOSTILE)
def test_attacker_payloads_are_inert_in_every_wrapper_too(text):
    """Folded, in tables and as plain text: nbchat's own markup never lets text out."""
    html = document(
        f"<details><summary>{escape(text)}</summary>{markdown(text)}</details>"
        + table([text], [[text]])
        + f"<pre>{escape(text)}</pre>"
    )
    assert executable(html) == []


def test_the_family_one_payload_is_math_text_for_mathjax_not_html():
    html = shown(f"Docs: \\(http://a.com\\{PAYLOAD}\\)")
    math = re.search(re.escape(MATH) + "(.*?)</span>", html)
    assert math and math.group(1) == "\\(http://a.com\\&lt;img src=x onerror=alert(1)&gt;\\)"


def test_a_dollar_in_a_link_title_stays_in_the_attribute():
    html = shown('[a](http://x "$" onanimationstart=alert(1) "$")')
    assert "onanimationstart" not in re.sub(r"&[^;]+;|\"[^\"]*\"", "", html.split(">", 2)[1])
    assert executable(html) == []


def test_the_document_is_ignored_by_mathjax_except_the_math():
    html = shown("It costs $5 and $10, while $x^2$ is math.")
    assert html.startswith(WRAPPER)
    assert html.count("tex2jax_process") == 1
    assert MATH + "$x^2$</span>" in html


@pytest.mark.parametrize(
    ("text", "math"),
    [
        ("$a<b$", "$a&lt;b$"),
        ("\\(a<b\\)", "\\(a&lt;b\\)"),
        ("$$\na<b\n$$", "$$\na&lt;b\n$$"),
        ("\\[\na<b\n\\]", "\\[\na&lt;b\n\\]"),
        ("\\begin{align}a&<b\\end{align}", "\\begin{align}a&amp;&lt;b\\end{align}"),
    ],
)
def test_math_keeps_its_delimiters_as_escaped_tex(text, math):
    assert math in shown(text)


def test_benign_markdown_renders():
    html = shown(
        "# Title\n\nSome *emphasis*, **strong**, `code`, ~~gone~~ and a [link](https://a.b/c).\n\n"
        "- one\n- two\n\n1. first\n2. second\n\n> quoted\n\n| a | b |\n|:--|--:|\n| 1 | 2 |\n\n"
        "```python\ndef f(x):\n    return x < 1\n```\n\n![a chart](https://a.b/c.png)\n\n"
        "- [x] done\n\nhttps://bare.example/path\n\nSee [^1].\n\n[^1]: A note.\n"
    )
    for expected in [
        "<h1>Title</h1>",
        "<em>emphasis</em>",
        "<strong>strong</strong>",
        "<code>code</code>",
        "<s>gone</s>",
        '<a href="https://a.b/c" rel="noopener noreferrer">link</a>',
        "<li>one</li>",
        "<ol>",
        "<blockquote>",
        '<th style="text-align:left">a</th>',
        '<td style="text-align:right">2</td>',
        CODE + '<span class="k">def</span>',
        "&lt;",
        '<a href="https://a.b/c.png" rel="noopener noreferrer">image: a chart</a>',
        '<input disabled="" type="checkbox" checked="">',
        '<a href="https://bare.example/path" rel="noopener noreferrer">',
        'class="footnote-ref"',
    ]:
        assert expected in html, expected
    assert executable(html) == []
    assert "<style>.nbchat .highlight .k { color: var(--jp-mirror-editor-keyword-color" in html


def test_code_in_an_unknown_language_is_plain_and_exact():
    code = "x <- 'a' & b\n<script>"
    html = shown(f"```weird\n{code}\n```")
    assert PLAIN_CODE + "x &lt;- 'a' &amp; b\n&lt;script&gt;\n</code></pre>" in html
    assert "<style>" not in html


def test_relative_links_only_as_in_page_anchors():
    html = shown("[up](../../api/terminals) [here](#part) [mail](mailto:a@b.c)")
    assert '<a rel="noopener noreferrer">up</a>' in html
    assert 'href="#part"' in html and 'href="mailto:a@b.c"' in html


def test_ids_come_only_from_footnotes():
    html = shown("[^n]\n\n[^n]: x")
    ids = re.findall(r' id="([^"]+)"', html)
    assert ids and all(re.fullmatch(r"fn(ref)?-[0-9a-f]{12}-\d+(:\d+)?", i) for i in ids)
    assert sanitize('<a id="jupyter-config-data">x</a>') == '<a rel="noopener noreferrer">x</a>'


def test_sanitize_is_the_last_word_on_our_own_markup():
    assert sanitize('<div class="nbchat jp-Notebook" data-x="1" style="color: red">x</div>') == (
        '<div class="nbchat" style="color:red">x</div>'
    )
    assert sanitize("<details open><summary>s</summary>b</details>") == (
        "<details><summary>s</summary>b</details>"
    )


def test_everything_shown_is_already_clean():
    """What `document` returns is a fixed point of the sanitizer (the style sheet aside)."""
    for text in [*HOSTILE, "```python\nx = 1\n```", "# h\n\n$x$"]:
        html = shown(text).split("<style>")[0]
        assert sanitize(html) == html


_MARKUP = st.sampled_from(
    [
        "<", ">", "&", '"', "'", "`", "```", "~~~", "$", "$$", "\\", "\\(", "\\)", "\\[", "\\]",
        "[", "]", "(", ")", "!", "*", "_", "#", "-", "|", ":", "\n", "\n\n", "    ", "\t",
        "http://a.b", "www.x.y", "javascript:", "data:", "<img", " src=x", " onerror=", "alert(1)",
        "<script>", "</code>", "<svg", "[^1]", "[x]:", "- [ ] ", "> ", "1. ", "\\begin{x}",
    ]
)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(_MARKUP, st.text(max_size=4)), max_size=40).map("".join))
def test_random_markdown_never_yields_an_executable_construct(text):
    assert executable(shown(text)) == []


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(_MARKUP, st.text(max_size=6)), max_size=60).map("".join))
def test_a_growing_answer_renders_as_a_whole_one_in_the_end(text):
    growing = GrowingMarkdown()
    for end in range(0, len(text), 7):
        assert executable(document(growing.html(text[:end]))) == []
    assert growing.html(text).replace("\n", "") == markdown(text).replace("\n", "") or (
        "[^" in text or "]:" in text  # a later definition does not reach settled blocks
    )


@pytest.mark.parametrize("text", ["<<$$00000000\n#<", "Para\n#<", "Para\n> x\n#<", "a\n-b"])
def test_a_line_still_being_written_may_join_the_block_above(text):
    """A "#" alone is a heading, "#<" the paragraph's next line (found by hypothesis)."""
    growing = GrowingMarkdown()
    for end in range(1, len(text) + 1):
        shown = growing.html(text[:end])
    assert shown == markdown(text)


def test_a_growing_answer_settles_its_blocks():
    growing = GrowingMarkdown()
    growing.html("Para one.\n\nPara two")
    growing.html("Para one.\n\nPara two.\n\n- item")
    assert growing._settled_lines == 4  # the paragraphs; the list may still grow


def test_the_same_text_renders_to_the_same_bytes_in_every_process():
    """Outputs are saved in the notebook: a re-run must not change them (Ammonia's attribute
    setting, for one, ordered attributes differently per process)."""
    script = (
        f"import sys; sys.path.insert(0, {str(TESTS)!r})\n"
        "from support.html_check import HOSTILE\n"
        "from nbchat.render.html import document, markdown\n"
        "text = '- [x] a\\n- [ ] b\\n\\n| a |\\n|:-|\\n| 1 |\\n\\n'\n"
        "text += '```python\\nx = 1\\n```\\n[^1]\\n\\n[^1]: n\\n\\n$x$'\n"
        "print(''.join(document(markdown(t)) for t in [*HOSTILE, text]))\n"
    )
    runs = {
        subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=True
        ).stdout
        for _ in range(4)
    }
    assert len(runs) == 1


def test_mathjax_2_and_3_are_told_what_to_skip_and_what_to_typeset():
    """JupyterLab runs MathJax 3 (mathjax_ignore / mathjax_process), nbconvert's templates
    MathJax 2 (tex2jax_*): both must skip prose (found in JupyterLab: "$5 and $10" typeset)."""
    html = shown("It costs $5 and $10, while \\(a\\) is math.")
    assert html.startswith(WRAPPER)
    assert MATH + "\\(a\\)</span>" in html


def test_display_math_in_brackets_shows_once_and_labels_only_where_written():
    assert "(a+b)" not in shown("\\[a+b\\]")
    assert "</div>" in shown("$$a$$ (eq1)") and "(eq1)" in shown("$$a$$ (eq1)")


def test_table_cells_read_left_unless_the_column_says_otherwise():
    html = shown("| a | b | c |\n|---|:-:|--:|\n| 1 | 2 | 3 |")
    assert '<td style="text-align:left">1</td>' in html
    assert '<td style="text-align:center">2</td>' in html
    assert '<td style="text-align:right">3</td>' in html
    assert '<td style="text-align:left">x</td>' in table(["h"], [["x"]])


# --- found by attack (issue 16 review) ----------------------------------------------------------


@pytest.mark.parametrize(
    "link",
    [
        "http:/lab/tree/secret.ipynb",
        "https:/hub/logout",
        "http:evil.com",
        "http:\\\\evil.com",
        "//evil.example/x",
        "file:///etc/passwd",
        "java\tscript:alert(1)",
    ],
)
def test_links_go_only_to_absolute_web_addresses_mail_or_the_page(link):
    """Ammonia reads http:/lab as absolute; the browser resolves it against the Jupyter server."""
    html = shown(f"[open]({link}) and [r]\n\n[r]: {link}")
    assert "href" not in html, html


def test_web_mail_and_in_page_links_stay():
    html = shown("[a](https://a.b/c) [m](mailto:x@y.z) [^1]\n\n[^1]: n")
    assert 'href="https://a.b/c"' in html and 'href="mailto:x@y.z"' in html
    assert 'href="#fn-' in html


@pytest.mark.parametrize(
    "tex",
    [
        "$\\href{javascript:alert(1)}{x}$",
        "\\(\\mmlToken{mi}[href='x']{x}\\)",
        "$$\\require{action}$$",
        "\\[\\class{jp-Dialog}{x}\\]",
        "$\\style{color:red}{x}$",
        "$\\def\\alpha{\\beta}\\alpha$",
        "\\begin{align}\\newcommand{\\x}{1}\\end{align}",
    ],
)
def test_tex_that_makes_html_or_macros_is_shown_as_text_never_typeset(tex):
    html = shown(tex)
    assert "tex2jax_process" not in html and "mathjax_process" not in html
    assert "<code>" in html


def test_ordinary_tex_with_similar_names_is_still_math():
    assert MATH in shown("$\\alpha\\hrefs + \\styles$")


def test_every_language_offered_has_a_lexer():
    from pygments.lexers import get_lexer_by_name

    from nbchat.render.code import _ALIASES, _LANGUAGES

    for name in sorted(_LANGUAGES | set(_ALIASES.values())):
        get_lexer_by_name(name)  # raises for a name Pygments does not have
    assert CODE in shown("```yml\na: 1\n```"), "yml is yaml"


def test_code_past_the_time_budget_is_plain_and_whole():
    from nbchat.render.code import budget

    with budget(0):
        html = document(markdown("```python\ndef f():\n    return 1\n```"))
    assert PLAIN_CODE + "def f():\n    return 1\n</code></pre>" in html


def test_the_budget_counts_reading_tokens_not_loading_a_lexer():
    """CPU time spent reading tokens, this thread's only: loading a lexer (milliseconds, once per
    process) or a busy machine does not turn the same answer plain, so it renders to the same
    bytes in every run."""
    from nbchat.render.code import _lexer, budget

    _lexer.cache_clear()
    with budget(0.002):
        html = document(markdown("```ruby\nputs 1\n```"))
    assert CODE in html, "a tiny fence fits 2 ms of reading, however long the import took"


def test_a_lone_surrogate_renders_as_a_replacement_character():
    assert "a \ufffd b" in shown("a \ud800 b")
    assert "\ufffd" in sanitize("<p>\udc80</p>")


@pytest.mark.parametrize(
    "text",
    [
        "\\(" * 500,
        "a: " * 300 + "x@y.com",
        "mailto:" * 300,
        "\\begin{align}\n" * 200,
        "\\[\n" * 300,
    ],
)
def test_inputs_that_made_the_plugins_quadratic_render_safely(text):
    """(Their speed is measured in benchmarks/bench_render.py: linear now.)"""
    assert executable(shown(text)) == []
