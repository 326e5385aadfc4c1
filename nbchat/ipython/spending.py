"""``%chat usage``: what this kernel session spent and what replaying saved, in tokens and
dollars, by model and thread, and the budget."""

from __future__ import annotations

from decimal import Decimal

from nbchat._text import plural, render_table
from nbchat.engine.ledger import Ledger, Tally
from nbchat.money.cost import usd
from nbchat.render.html import escape, table

__all__ = ["usage_view"]

HEADERS = ["model", "thread", "asked", "replayed", "prompt → completion tokens", "spent", "saved"]


def usage_view(ledger: Ledger, budget: float | None) -> tuple[str, str]:
    """The view's HTML (nbchat's markup, every text escaped) and plain text."""
    spent, saved = ledger.total(ledger.spent), ledger.total(ledger.saved)
    lines = [f"Spent: {plural(ledger.requests, 'request')}, {_tokens(spent)}, {spent.cost}."]
    if ledger.replays:
        replays = plural(ledger.replays, "answer")
        lines.append(f"Saved by replaying {replays}: {_tokens(saved)}, {saved.cost}.")
    else:
        lines.append("Nothing replayed yet.")
    if budget is not None:
        limit = Decimal(str(budget))
        left = max(limit - spent.cost.usd, Decimal(0))
        lines.append(f"Budget: {usd(spent.cost.usd)} of {usd(limit)} spent, {usd(left)} left.")
    unpriced = spent.cost.unknown + saved.cost.unknown
    if unpriced:
        lines.append(
            f"{plural(unpriced, 'answer')} had no known price and count as unpriced, not as "
            "$0: set %config ChatMagics.prices to price them."
        )
    rows = _rows(ledger)
    html = "".join(f"<p>{escape(line)}</p>" for line in lines)
    plain = "\n".join(lines)
    if rows:
        html += table(HEADERS, rows)
        plain += "\n" + "\n".join(render_table(HEADERS, rows))
    return html, plain


def _tokens(tally: Tally) -> str:
    text = f"{tally.prompt:,} → {tally.completion:,} tokens"
    extras = []
    if tally.cached and tally.prompt:
        extras.append(f"cached {tally.cached / tally.prompt:.0%}")
    if tally.thinking:
        extras.append(f"{tally.thinking:,} thinking")
    return f"{text} ({', '.join(extras)})" if extras else text


def _rows(ledger: Ledger) -> list[list[str]]:
    """One row per model and thread, in the order they were first seen."""
    rows = []
    for key in dict.fromkeys([*ledger.spent, *ledger.saved]):
        spent, saved = ledger.spent.get(key, Tally()), ledger.saved.get(key, Tally())
        prompt, completion = spent.prompt + saved.prompt, spent.completion + saved.completion
        rows.append(
            [
                key[0],
                key[1],
                str(spent.answers),
                str(saved.answers),
                f"{prompt:,} → {completion:,}",
                str(spent.cost) if spent.answers else "-",
                str(saved.cost) if saved.answers else "-",
            ]
        )
    return rows
