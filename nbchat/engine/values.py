"""What a turn's request and answer are worth beyond sending them: the answer as the object
the turn asked for (``--schema``, ``--json``), a stored answer that no longer fits, the advice a
refused ``json_schema`` request gets, and the same turn with the thinking above sent the other
way (`nbchat.engine.reasoning`)."""

from __future__ import annotations

from typing import Any

from nbchat.engine.reasoning import NAMES_THE_FIELD, ReasoningPolicy
from nbchat.engine.turns import PreparedTurn, prepare
from nbchat.errors import APIError, ContextLengthError, Remedy, StructuredOutputError
from nbchat.schema.structured import JsonOutput, OutputSchema, misfit
from nbchat.store.record import Record
from nbchat.wire.completion import finish_problem
from nbchat.wire.messages import carries_passback, reasoning_of

__all__ = ["MISFIT", "answer_value", "flipped_turn", "other_form", "stored_value", "with_advice"]


def other_form(turn: PreparedTurn, pad: str | None = None) -> PreparedTurn:
    """The same turn with the thinking above sent the other way (with it, padded with ``pad``,
    or without)."""
    return prepare(
        turn.request,
        turn.settings,
        turn.window,
        turn.cell_key,
        reasoning=not turn.send_reasoning,
        pad=pad,
        file_index=turn.file_index,
        with_v1_key=turn.v1_key is not None,
        endpoint=turn.endpoint,
    )


Shape = OutputSchema | JsonOutput
MISFIT = object()  # a stored answer that does not fit the shape asked for now


def stored_value(output: Shape | None, record: Record, *, offline: bool) -> Any:
    """The value of a stored answer, or `MISFIT` when it no longer fits the shape asked for
    (``--schema X --json`` and validators are checked here, not by the server, so the key does
    not cover them): it is then asked again, or, offline, the error says how to refresh it."""
    try:
        return answer_value(output, record)
    except StructuredOutputError as error:
        if offline:
            stale = StructuredOutputError(f"{error} (the stored answer)", text=error.text)
            stale.remedies = (Remedy.REFRESH_ONLINE,)
            raise stale from None
        return MISFIT


def answer_value(output: Shape | None, record: Record) -> Any:
    """The answer as the object of the shape a turn asked for (``turn.request.output``:
    --schema, --json), or None when it asked for none."""
    if output is None:
        return None
    try:
        return output.parse(record.answer)
    except StructuredOutputError as error:
        problem = finish_problem(record.finish_reason)
        if problem:  # the real reason: the answer stopped part-way
            error = StructuredOutputError(f"it was {problem}", text=error.text)
        shaped = StructuredOutputError(misfit(output, error), text=error.text)
        shaped.remedies = (Remedy.MORE_TOKENS,) if problem else ()
        raise shaped from None


def with_advice(error: APIError, turn: PreparedTurn) -> APIError:
    """An error with the way around it, when there is a known one: a refused request with a
    JSON schema answer format, or a provider that wants back thinking the thread's earlier
    answers do not have."""
    found = _schema_advice(error, turn) or _thinking_advice(error, turn)
    if found is None:
        return error
    fact, remedies = found
    advised = type(error)(
        f"{error} ({fact})",
        status_code=error.status_code,
        body=error.body,
        retries=error.retries,
    )
    advised.request_id = error.request_id
    advised.remedies = remedies
    return advised


def _schema_advice(error: APIError, turn: PreparedTurn) -> tuple[str, tuple[Remedy, ...]] | None:
    """Many compatible servers do not support ``json_schema`` (most answer 400, some 422 or
    even 500): when the refusal names it, --json is the way around."""
    response_format = turn.params.get("response_format")
    schema = isinstance(response_format, dict) and response_format.get("type") == "json_schema"
    said = f"{error} {error.body}".lower()
    named = "json_schema" in said or "response_format" in said
    if not schema or not named or isinstance(error, ContextLengthError):
        return None
    return "the endpoint may not support json_schema output", (Remedy.ANY_JSON,)


def _thinking_advice(error: APIError, turn: PreparedTurn) -> tuple[str, tuple[Remedy, ...]] | None:
    """A thinking model asked to continue a thread whose earlier answers came from a model that
    did not think, and the thinking could not be sent as it wants (DeepSeek's 400 "The
    reasoning_content in the thinking mode must be passed back")."""
    if error.status_code != 400 or turn.window is None:
        return None
    if not NAMES_THE_FIELD.search(f"{error} {error.body}"):
        return None
    answers = [m for t in turn.window.answered for m in t.messages if m.get("role") == "assistant"]
    if not any(reasoning_of(message) is None for message in answers):
        return None
    fact = "earlier answers of this thread came from a model that did not think"
    return fact, (Remedy.NEW_THREAD, Remedy.OTHER_THREAD)


def flipped_turn(
    policy: ReasoningPolicy, turn: PreparedTurn, added: list[dict[str, Any]], error: APIError
) -> PreparedTurn | None:
    """The turn with the thinking above sent the other way, when the provider's 400 names the
    thinking's field (and the thinking was there to send or leave out, or answers without it
    to pad); else None. The choice is learned for the endpoint and model (``policy``)."""
    window = turn.window
    differs = (window is not None and window.has_reasoning) or any(
        carries_passback(message) for message in added
    )
    answers = any(m.get("role") == "assistant" for m in turn.body(added)["messages"])
    if not differs and (turn.send_reasoning or not answers):
        return None
    if policy.learn(turn.settings, error, turn.send_reasoning) is None:
        return None
    pad = policy.padding(turn.settings)
    return other_form(turn, pad) if differs or pad is not None else None
