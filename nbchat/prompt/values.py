"""A Python value rendered for a model: text within a budget, or an image.

What each kind of value becomes (`render_value`):

- a ``str`` is the user's own text: sent whole, as written, whatever its length (as ``{name}``
  always did; a long document is what a prompt is for, and the server says if it is too long);
- an image (`nbchat.wire.images`) becomes an image part;
- a pandas or polars DataFrame or Series becomes a line with its kind and shape and a Markdown
  table, each column headed ``name (dtype)`` and each cell cut at 40 columns: the whole table
  when it fits the budget; else the first and last 10 of more than 20 columns, and as many of
  its first and last rows as fit, the rows left out marked ``… 990 more rows``;
- a NumPy array becomes a line with its shape and dtype and NumPy's own print of it, summarised
  (``...``) when it is large;
- any other object becomes its ``_repr_markdown_()`` when that gives a str, else ``str(value)``
  (which is its ``repr`` unless its class says otherwise: containers, most objects).

Only the budget (``ChatMagics.context_chars`` characters, per value) decides what is cut:

- tables and arrays are sent whole when they fit, and shrink along their structure only to fit
  (fewer columns and rows, fewer items); when even their
  smallest form is over the budget they are refused with a `ConfigError` naming the setting,
  since a table or array cut mid-way would mislead;
- other objects' text has no structure to cut along: it is clipped at the budget and ends with
  ``… (N more characters)``.

Everything left out is said twice: in the text, for the model, and in the notes, for the user.
pandas, polars and NumPy are recognised by class name and module, never imported by nbchat.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from nbchat._text import clip, markdown_table
from nbchat.errors import ConfigError
from nbchat.prompt.figures import image_part, instance_of
from nbchat.wire.images import ImagePart

__all__ = ["BUDGET_SETTING", "DEFAULT_BUDGET", "Rendered", "render_value"]

BUDGET_SETTING = "ChatMagics.context_chars"
DEFAULT_BUDGET = 8000
MAX_COLUMNS = 20  # the first and last half of them, as pandas shows a wide frame
CELL_WIDTH = 40
_ARRAY_STEPS = ((1000, 3), (0, 3), (0, 2), (0, 1))  # (threshold, edgeitems): numpy's defaults first


@dataclass(frozen=True)
class Rendered:
    """A value as a model is sent it: ``text`` or ``image`` (exactly one), and notes for people."""

    text: str | None = None
    image: ImagePart | None = None
    notes: tuple[str, ...] = ()


def render_value(value: object, budget: int = DEFAULT_BUDGET, *, label: str = "value") -> Rendered:
    """``value`` rendered for a model, at most ``budget`` characters unless it is a ``str``.

    ``label`` names the value in notes and errors (``df``, ``Out[3]``). Raises `ConfigError`
    for a table or array whose smallest rendering is over ``budget``, or an image that cannot be
    sent (`nbchat.wire.images.image_part`).
    """
    if isinstance(value, str):
        return Rendered(str(value))
    image = image_part(value, label=label)
    if image is not None:
        return Rendered(image=image)
    table = _table(value)
    if table is not None:
        return _render_table(table, budget, label)
    if instance_of(value, "numpy.ndarray"):
        return _render_array(value, budget, label)
    return _clipped(_object_text(value), budget, label)


def _object_text(value: object) -> str:
    # Looked up on the class, as IPython does: a proxy's __getattr__ must not fake a method.
    markdown = getattr(type(value), "_repr_markdown_", None)
    if callable(markdown):
        try:
            text = markdown(value)
        except Exception:  # a broken rich repr falls back to the plain one, as in IPython
            text = None
        if isinstance(text, str):
            return text
    return str(value)


def _clipped(text: str, budget: int, label: str) -> Rendered:
    if len(text) <= budget:
        return Rendered(text)
    # Sized for the longest count the mark could report, so text and mark fit the budget.
    kept = max(budget - len(f"… ({len(text):,} more characters)"), 0)
    note = f"{label}: clipped to {kept:,} of {len(text):,} characters"
    return Rendered(text[:kept] + f"… ({len(text) - kept:,} more characters)", notes=(note,))


def _over_budget(label: str, size: int, budget: int, advice: str) -> ConfigError:
    return ConfigError(
        f"{label} renders to {size:,} characters at the least, over {BUDGET_SETTING} = "
        f"{budget}: raise it, or {advice}"
    )


# Tables -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Table:
    """A DataFrame or Series of either library, as rows of cells."""

    kind: str  # "pandas.DataFrame"
    length: int
    columns: list[str]  # headers, ``name (dtype)``
    index_header: str | None  # None: no index column (polars)
    rows: Callable[[int, int, list[int]], list[list[object]]]  # rows start..stop, columns chosen


def _table(value: Any) -> _Table | None:
    if instance_of(value, "pandas.DataFrame"):
        return _pandas_frame(value)
    if instance_of(value, "pandas.Series"):
        return _pandas_series(value)
    if instance_of(value, "polars.DataFrame"):
        return _polars_frame(value)
    if instance_of(value, "polars.Series"):
        return _polars_series(value)
    return None


def _pandas_frame(frame: Any) -> _Table:
    def rows(start: int, stop: int, columns: list[int]) -> list[list[object]]:
        part = frame.iloc[start:stop, columns]
        return [list(row) for row in part.itertuples(index=True, name=None)]

    headers = [
        _header(name, dtype) for name, dtype in zip(frame.columns, frame.dtypes, strict=True)
    ]
    return _Table("pandas.DataFrame", len(frame), headers, _index_header(frame), rows)


def _pandas_series(series: Any) -> _Table:
    def rows(start: int, stop: int, columns: list[int]) -> list[list[object]]:
        return [[index, item] for index, item in series.iloc[start:stop].items()]

    header = _header(series.name if series.name is not None else "", series.dtype)
    return _Table("pandas.Series", len(series), [header], _index_header(series), rows)


def _polars_frame(frame: Any) -> _Table:
    def rows(start: int, stop: int, columns: list[int]) -> list[list[object]]:
        names = [frame.columns[column] for column in columns]
        return [list(row) for row in frame.slice(start, stop - start).select(names).rows()]

    headers = [
        _header(name, dtype) for name, dtype in zip(frame.columns, frame.dtypes, strict=True)
    ]
    return _Table("polars.DataFrame", frame.height, headers, None, rows)


def _polars_series(series: Any) -> _Table:
    def rows(start: int, stop: int, columns: list[int]) -> list[list[object]]:
        return [[item] for item in series.slice(start, stop - start).to_list()]

    return _Table("polars.Series", len(series), [_header(series.name, series.dtype)], None, rows)


def _header(name: object, dtype: object) -> str:
    return f"{clip(str(name), CELL_WIDTH)} ({dtype})".lstrip()


def _index_header(value: Any) -> str:
    names = [str(name) for name in value.index.names if name is not None]
    return clip(", ".join(names), CELL_WIDTH)


def _render_table(table: _Table, budget: int, label: str) -> Rendered:
    """The whole table when it fits; else its first and last columns (of more than
    `MAX_COLUMNS`) and as many of its first and last rows as fit."""
    every = list(range(len(table.columns)))
    if _may_fit(table, table.length, every, budget):
        text = _table_text(table, table.length, 0, every)
        if len(text) <= budget:
            return Rendered(text)
    columns = _shown_columns(len(every))
    if len(columns) < len(every) and _may_fit(table, table.length, columns, budget):
        text = _table_text(table, table.length, 0, columns)
        if len(text) <= budget:
            return Rendered(text, notes=_table_notes(table, table.length, len(columns), label))
    rows = _most_rows(table, columns, budget)
    if rows is None:
        smallest = _table_text(table, 0, 0, columns)
        raise _over_budget(label, len(smallest), budget, "pass a slice with fewer columns")
    text = _table_text(table, rows, rows, columns)
    return Rendered(text, notes=_table_notes(table, 2 * rows, len(columns), label))


def _row_size(table: _Table, columns: list[int]) -> int:
    """The fewest characters a row of the table can take: ``| a | b |`` and its line break."""
    cells = len(columns) + (table.index_header is not None) + (len(columns) < len(table.columns))
    return 3 * cells + 2


def _may_fit(table: _Table, rows: int, columns: list[int], budget: int) -> bool:
    """Whether ``rows`` rows could fit at all (so a long table is not rendered whole to see)."""
    return rows * _row_size(table, columns) <= budget


def _most_rows(table: _Table, columns: list[int], budget: int) -> int | None:
    """The most rows ``n`` whose table of the first and last ``n`` rows fits (None: not even the
    table without rows). More rows never make a shorter text, so a binary search finds it."""
    high = min((table.length - 1) // 2, budget // (2 * _row_size(table, columns)))
    low = 0
    if len(_table_text(table, 0, 0, columns)) > budget:
        return None
    while low < high:
        middle = (low + high + 1) // 2
        if len(_table_text(table, middle, middle, columns)) <= budget:
            low = middle
        else:
            high = middle - 1
    return low


def _shown_columns(count: int) -> list[int]:
    if count <= MAX_COLUMNS:
        return list(range(count))
    half = MAX_COLUMNS // 2
    return [*range(half), *range(count - half, count)]


def _table_text(table: _Table, head: int, tail: int, columns: list[int]) -> str:
    omitted_columns = len(table.columns) - len(columns)
    omitted_rows = table.length - head - tail
    split = len(columns) // 2 if omitted_columns else len(columns)
    header = [table.columns[column] for column in columns]
    header[split:split] = ["…"] * (omitted_columns > 0)
    rows = table.rows(0, head, columns) if head else []
    tail_rows = table.rows(table.length - tail, table.length, columns) if tail else []
    index_width = int(table.index_header is not None)
    cells = [_row_cells(row, split + index_width, omitted_columns > 0) for row in rows]
    if omitted_rows:
        width = len(header) + index_width
        cells.append([f"… {_count(omitted_rows, 'more row')}"] + ["…"] * (width - 1))
    cells += [_row_cells(row, split + index_width, omitted_columns > 0) for row in tail_rows]
    if table.index_header is not None:
        header.insert(0, table.index_header)
    shape = f"{table.kind}, {_count(table.length, 'row')} × {_count(len(table.columns), 'column')}"
    if not header:
        return shape
    return f"{shape}\n{markdown_table(header, cells)}"


def _row_cells(row: Sequence[object], split: int, elided: bool) -> list[str]:
    cells = [clip(_cell(item), CELL_WIDTH) for item in row]
    cells[split:split] = ["…"] * elided
    return cells


def _count(number: int, word: str) -> str:
    return f"{number:,} {word}" if number == 1 else f"{number:,} {word}s"


def _cell(item: object) -> str:
    if isinstance(item, float):  # numpy's float64 too: six significant digits, as pandas shows
        return f"{item:.6g}"
    return str(item)


def _table_notes(table: _Table, rows: int, columns: int, label: str) -> tuple[str, ...]:
    left_out = []
    if rows < table.length:
        left_out.append(f"{rows:,} of {table.length:,} rows")
    if columns < len(table.columns):
        left_out.append(f"{columns:,} of {len(table.columns):,} columns")
    return (f"{label}: showed {' and '.join(left_out)}",) if left_out else ()


# Arrays -------------------------------------------------------------------------------------


def _render_array(array: Any, budget: int, label: str) -> Rendered:
    numpy = sys.modules["numpy"]  # loaded: ``array`` is one of its arrays
    shape = f"numpy.ndarray, shape {tuple(array.shape)}, dtype {array.dtype}"
    text = shape
    for threshold, edgeitems in _ARRAY_STEPS:
        preview = numpy.array2string(
            array, threshold=threshold, edgeitems=edgeitems, max_line_width=100
        )
        text = f"{shape}\n{preview}"
        if len(text) <= budget:
            summarised = array.size > threshold and any(n > 2 * edgeitems for n in array.shape)
            note = f"{label}: summarised {array.size:,} items" if summarised else None
            return Rendered(text, notes=(note,) if note else ())
    raise _over_budget(label, len(text), budget, "pass a slice")
