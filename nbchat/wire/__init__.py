"""The chat-completions protocol over HTTP (level 1).

Messages and their shapes, server-sent events, folding a stream (or a whole answer) into one
completion, retries, secrets kept out of what is shown, the one place httpx's errors become
nbchat's, and the client; the batch API (files of requests, batches, their output); image parts
as data. Knows nothing of notebooks, records or display.

May import: ``nbchat.errors`` and the private utilities at the top (``nbchat._text``,
``nbchat._json``, ``nbchat._files``). Third party: httpx, only here.
"""
