"""One module per ``musicbert`` subcommand (``assistant.cli`` finds them), and the little
they share: opening the catalog to write to it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def writable_catalog(args, what: str) -> Iterator:
    """The catalog of ``--db``, checked writable before any slow work (``what`` names the
    work, for the message when it is read-only), closed afterwards."""
    from catalog.db import open_catalog
    from catalog.ingest import require_writable

    with open_catalog(args.db) as catalog:
        require_writable(catalog, what)
        yield catalog
