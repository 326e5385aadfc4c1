"""The ``nbchat`` command (level 4): show, export, stats, verify, strip, upgrade and run.

May import: every level below but ``nbchat.ipython`` (the command runs without a kernel).
Third party: nbformat, and nbclient for ``run``.
"""
