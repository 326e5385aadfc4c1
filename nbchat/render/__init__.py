"""Rendering (level 3): records to output bundles, model Markdown to sanitized HTML, folds of
thinking and tool calls, ``--map`` summaries and transcripts. Pure functions: nothing is shown
or sent from here.

May import: levels 0-2. Third party: markdown-it-py and its plugins, nh3 and Pygments, lazily,
only here.
"""
