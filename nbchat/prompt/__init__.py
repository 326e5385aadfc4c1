"""Notebook values as a prompt (level 2): ``{name}``, ``{In[n]}`` and ``{Out[n]}`` filled in,
DataFrames and arrays as text within a budget, figures and images as image parts, the per-item
template of ``--map``, and the guard that keeps API keys out of prompts.

May import: level 0 and ``nbchat.wire``. Third party: pandas, polars, NumPy, matplotlib and PIL
are recognised by name and used, lazily, only here.
"""
