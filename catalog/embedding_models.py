"""Which MusicBERT models a catalog's vectors come from, and where each one lives.

Vectors from different models live in different spaces, so a command must embed
its query with the model the library was embedded with. Every vector row names
its model id; the ``meta`` table remembers the checkpoint folder each id was
loaded from (``checkpoint:<model id>``), so that ``musicbert chat`` after
``musicbert --checkpoint X ingest`` uses X without being told again.
"""

from __future__ import annotations

from sqlalchemy import func, select

from catalog.db import Catalog
from catalog.models import Embedding, Meta

_PREFIX = "checkpoint:"


def _meta_key(model_id: str) -> str:
    return (_PREFIX + model_id)[:64]  # meta.key is 64 characters wide


def vector_models(catalog: Catalog) -> dict[str, int]:
    """Model id -> number of tracks with a vector from it, most used first."""
    with catalog.session() as session:
        rows = session.execute(
            select(Embedding.model_id, func.count()).group_by(Embedding.model_id)
        ).all()
    return dict(sorted(((m, int(n)) for m, n in rows), key=lambda r: -r[1]))


def recorded_checkpoint(catalog: Catalog, model_id: str) -> str | None:
    """The checkpoint folder ``model_id`` was loaded from when it embedded this catalog."""
    with catalog.session() as session:
        return session.scalar(select(Meta.value).where(Meta.key == _meta_key(model_id)))


def record_checkpoint(catalog: Catalog, model_id: str, checkpoint: str) -> None:
    """Remember where ``model_id`` was loaded from (nothing to do on a read-only catalog)."""
    if catalog.read_only:
        return
    with catalog.session() as session:
        session.merge(Meta(key=_meta_key(model_id), value=checkpoint))
