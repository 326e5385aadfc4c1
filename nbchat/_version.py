"""nbchat's version, and the name it is installed by (``pip install nbchat-llm``)."""

__version__ = "0.2.0"
# On PyPI, "nbchat" is an unrelated project: nbchat is published as nbchat-llm, and still
# imported, loaded (%load_ext nbchat) and run (the nbchat command) as nbchat.
DISTRIBUTION = "nbchat-llm"
