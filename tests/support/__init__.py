"""What the tests share: the loopback fake server (``fake_openai``, with ``fake_shapes`` and
``fake_providers``), the kernel driver, builders of records and notebooks (``nbfactory``,
``forgery``), the HTML check, the test environment (``env``), the repository's paths (``paths``)
and the fixtures written by earlier nbchat versions (``fixtures/``).

Tests import them as ``from support.fake_openai import FakeOpenAI`` (pytest puts ``tests/`` on
the path); ``python tests/support/fake_openai.py --port 0`` runs the fake server on its own.
"""
