"""MusicBERT: music audio and text in one shared embedding space.

Importing the package is cheap: the public names below load their modules (and
torch / transformers) on first use, so the chat and ``musicbert --help`` start fast.

    from musicbert import Embedder
    emb = Embedder.load()
    emb.embed_text(["calm piano for reading"])       # (1, 256)
    emb.embed_audio(["song.ogg"])                    # (1, 256)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "Embedder": "musicbert.embedder",
    "AudioDescription": "musicbert.embedder",
    "ModelTag": "musicbert.embedder",
    "UntrainedModelWarning": "musicbert.embedder",
    "MusicBertConfig": "musicbert.configuration_musicbert",
    "MusicBertModel": "musicbert.modeling_musicbert",
    "MusicBertForPreTraining": "musicbert.modeling_musicbert",
    "MusicBertOutput": "musicbert.modeling_musicbert",
    "TextTower": "musicbert.text_tower",
    "EmptyTextError": "musicbert.text_tower",
    "TextTruncatedWarning": "musicbert.text_tower",
}

__all__ = [
    "AudioDescription",
    "Embedder",
    "EmptyTextError",
    "ModelTag",
    "MusicBertConfig",
    "MusicBertForPreTraining",
    "MusicBertModel",
    "MusicBertOutput",
    "TextTower",
    "TextTruncatedWarning",
    "UntrainedModelWarning",
]

if TYPE_CHECKING:  # pragma: no cover
    from musicbert.configuration_musicbert import MusicBertConfig
    from musicbert.embedder import AudioDescription, Embedder, ModelTag, UntrainedModelWarning
    from musicbert.modeling_musicbert import (
        MusicBertForPreTraining,
        MusicBertModel,
        MusicBertOutput,
    )
    from musicbert.text_tower import EmptyTextError, TextTower, TextTruncatedWarning


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'musicbert' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
