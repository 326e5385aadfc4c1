"""What the tests share (imported as ``from support.fake_openai import FakeOpenAI``: pytest puts
``tests/`` on the path).

- The loopback fake server: ``fake_openai`` (also a program: ``python
  tests/support/fake_openai.py --port 0``), with ``fake_shapes`` and ``fake_providers``; its own
  tests sit beside it.
- Kernels: ``kernel_driver`` (a real kernel driven as a frontend does), ``chat_cells`` (%%chat
  cells and what they show).
- Records and notebooks: ``nbfactory``, ``forgery`` (forged records and every reader),
  ``fixtures/`` (notebooks written by earlier nbchat versions), ``demos``.
- The wire and the command: ``chat_client`` (requests, MockTransport clients), ``command`` (the
  ``nbchat`` command in-process), ``tool_samples`` (what tool specs are made from).
- The browser: ``jupyterlab`` (the server and Chromium), ``lab_page`` (a notebook's page),
  ``hostile_page`` (the attacker's text and the checks that none of it ran), ``html_check``.
- ``env`` (the test key and environment) and ``paths`` (where things are in the repository).
"""
