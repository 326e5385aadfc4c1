"""Remedies said in the caller's words (`nbchat.ipython.advice`)."""

from __future__ import annotations

import pytest

from nbchat.errors import ContextLengthError, NbchatError, Remedy
from nbchat.ipython.advice import WORDS, in_words
from nbchat.ipython.options import Caller


def test_every_caller_has_words_for_every_remedy():
    for caller in Caller:
        assert set(WORDS[caller]) == set(Remedy), caller


def test_the_magic_names_flags_and_code_names_arguments():
    exc = ContextLengthError("The conversation is too long for the model", status_code=400)
    exc.advise(WORDS[Caller.MAGIC])
    assert str(exc).endswith(": start the thread afresh in this cell with --new")
    exc.advise(WORDS[Caller.CODE])
    assert str(exc).endswith(": start the thread afresh with new=True")
    assert "--new" not in str(exc), "advice replaces the previous caller's words"


def test_in_words_advises_errors_that_leave_it():
    with pytest.raises(NbchatError) as caught, in_words(Caller.CODE):
        raise ContextLengthError("too long", status_code=400)
    assert "new=True" in str(caught.value)
