"""The one place a command gets its MusicBERT embedder.

A query must be embedded by the model the library was embedded with, or search
compares vectors from two different spaces. So the choice is made here, once,
for every command: ``--checkpoint`` when given; otherwise the model most of the
catalog's vectors come from, loaded from where the catalog recorded it
(``catalog.embedding_models``); otherwise the packaged checkpoint. When the
model chosen has no vectors in the library, the person is told what to run.
"""

from __future__ import annotations

import functools
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

from catalog.db import Catalog
from catalog.embedding_models import record_checkpoint, recorded_checkpoint, vector_models


def _note(text: str) -> None:
    print(f"musicbert: note: {text}", file=sys.stderr)


def packaged_model_id() -> str | None:
    """The model id of the packaged checkpoint (hash of its weights), None without one."""
    from musicbert.checksums import file_sha256
    from musicbert.embedder import DEFAULT_CHECKPOINT

    weights = DEFAULT_CHECKPOINT / "model.safetensors"
    return f"musicbert-{file_sha256(weights)[:12]}" if weights.is_file() else None


def choose_checkpoint(
    catalog: Catalog, models: dict[str, int], note: Callable[[str], None] = _note
) -> str | None:
    """The checkpoint the catalog's vectors came from, when it is not the packaged one.

    ``models`` is ``vector_models(catalog)``, read once by the caller.
    """
    if not models:
        return None
    most = max(models.values())
    leaders = [m for m, n in models.items() if n == most]
    if packaged_model_id() in leaders:
        return None
    recorded = recorded_checkpoint(catalog, leaders[0])
    if recorded and Path(recorded).is_dir():
        note(f"using {recorded}, the checkpoint this library was embedded with")
        return recorded
    return None


@functools.lru_cache(maxsize=2)
def _load(checkpoint: str | None):
    """Each checkpoint is loaded once per process (the chat and the tests ask again).

    The untrained-model warning is given by ``load_embedder`` on every call instead.
    """
    from musicbert.embedder import Embedder, UntrainedModelWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UntrainedModelWarning)
        return Embedder.load(checkpoint)


def load_embedder(
    checkpoint: str | None = None,
    catalog: Catalog | None = None,
    note: Callable[[str], None] = _note,
    follow_library: bool = True,
):
    """The embedder for ``catalog``: ``checkpoint`` when given, else the library's own model.

    ``follow_library`` False means "the packaged model unless told otherwise" (what
    ``reindex`` moves a library to). A named checkpoint is recorded in the catalog,
    so later commands find it.
    """
    from musicbert import embedder as packaged

    models = vector_models(catalog) if catalog is not None else {}
    follow = follow_library and catalog is not None and checkpoint is None
    chosen = checkpoint or (choose_checkpoint(catalog, models, note) if follow else None)
    if chosen is None and (packaged.DEFAULT_CHECKPOINT / "config.json").is_file():
        chosen = packaged.DEFAULT_CHECKPOINT  # by path: the cache must not outlive a swap
    embedder = _load(str(Path(chosen).expanduser().resolve()) if chosen else None)
    if embedder.untrained:
        from musicbert.embedder import UntrainedModelWarning

        warnings.warn(
            f"no trained MusicBERT checkpoint: using a randomly initialised model "
            f"({embedder.model_id}); similarities are not meaningful",
            UntrainedModelWarning,
            stacklevel=2,
        )
    if catalog is None:
        return embedder
    if checkpoint is not None:
        record_checkpoint(catalog, str(embedder.model_id), str(Path(checkpoint).resolve()))
    if models and embedder.model_id not in models:
        note(
            f"this library's vectors come from {', '.join(models)}, not from the model loaded "
            f"({embedder.model_id}): run `musicbert reindex` to embed it with this model, or "
            "pass --checkpoint with the one it was embedded with"
        )
    return embedder
