"""The kernel front end (level 4): the ``%%chat`` and ``%chat`` magics and their settings, the
running cell, the line commands, live views and progress bars, the poller that follows a
provider's batch, finding the notebook's file, and ``nbchat.ask``/``nbchat.map``.

May import: every level below. Third party: IPython, traitlets and ipywidgets, only here.
"""
