"""What nbchat keeps in notebooks (level 2): the record schema and its readers by version and
kind, request keys and cell keys, the chain that rebuilds a request from the records above it,
the output marker, the pending state of provider batches, reading saved notebooks, upgrading old
records, and finding leaked secrets.

May import: level 0 and ``nbchat.wire``. Third party: nbformat, only where a file is written.
"""
