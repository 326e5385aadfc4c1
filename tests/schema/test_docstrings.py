"""Parameter descriptions read from docstrings (`nbchat.schema.docstrings`): Google, NumPy
and reST styles."""

from __future__ import annotations

from nbchat.schema.docstrings import parse_docstring

# -- docstrings ---------------------------------------------------------------------------------


def test_google_docstring():
    doc = """Summary line
    continues here.

    Body text.

    Args:
        a (int): The a.
        b: The b,
            over two lines.
        *rest: Variadic.

    Returns:
        int: ignored.
    """
    assert parse_docstring(doc) == (
        "Summary line continues here.",
        {"a": "The a.", "b": "The b, over two lines.", "rest": "Variadic."},
    )


def test_google_variants_of_the_header():
    for header in ("Arguments:", "Parameters:", "Keyword Args:"):
        doc = f"S.\n\n{header}\n    x: The x.\n"
        assert parse_docstring(doc) == ("S.", {"x": "The x."})


def test_numpy_docstring():
    doc = """Summary.

    Parameters
    ----------
    a : int
        The a.
        Second line.
    b, c : float, optional
        Shared.
    flag
        No type given.

    Returns
    -------
    int
        Not a parameter.
    """
    assert parse_docstring(doc) == (
        "Summary.",
        {"a": "The a. Second line.", "b": "Shared.", "c": "Shared.", "flag": "No type given."},
    )


def test_rest_docstring():
    doc = """Summary.

    :param a: The a
        over two lines.
    :param int b: The b.
    :type b: int
    :keyword c: The c.
    :returns: nothing.
    """
    assert parse_docstring(doc) == (
        "Summary.",
        {"a": "The a over two lines.", "b": "The b.", "c": "The c."},
    )


def test_docstring_that_starts_with_a_section_has_no_summary():
    assert parse_docstring("Args:\n        x: The x.\n    ") == ("", {"x": "The x."})
    assert parse_docstring(":param x: The x.") == ("", {"x": "The x."})
    assert parse_docstring(None) == ("", {})


def test_summary_ends_at_a_numpy_header_without_a_blank_line():
    assert parse_docstring("Do it.\nParameters\n----------\nx : int\n    X.")[0] == "Do it."
