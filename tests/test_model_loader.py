"""The one embedder loader follows the model a library was embedded with."""

from __future__ import annotations

import numpy as np
import torch

from assistant.model_loader import load_embedder
from catalog.db import open_catalog
from catalog.embedding_models import recorded_checkpoint, vector_models
from catalog.models import Embedding, Track
from musicbert.configuration_musicbert import MusicBertConfig
from musicbert.modeling_musicbert import MusicBertModel


def _small_checkpoint(path):
    config = MusicBertConfig(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
        projection_dim=24, max_audio_patches=3, untrained=False,
    )  # fmt: skip
    torch.manual_seed(3)
    MusicBertModel(config).save_pretrained(path)
    return path


def test_a_library_embedded_with_another_checkpoint_keeps_using_it(tmp_path, catalog_url):
    checkpoint = _small_checkpoint(tmp_path / "ckpt")
    catalog = open_catalog(catalog_url)
    notes: list[str] = []
    try:
        other = load_embedder(str(checkpoint), catalog, note=notes.append)
        assert recorded_checkpoint(catalog, other.model_id) == str(checkpoint.resolve())
        vector = np.asarray(other.embed_text(["calm piano"])[0], "<f4")
        with catalog.session() as s:
            track = Track(path="/music/a.ogg", content_hash="a" * 64, title="A", duration=10.0)
            track.embeddings.append(
                Embedding(model_id=other.model_id, dim=vector.size, vector=vector.tobytes())
            )
            s.add(track)
        assert vector_models(catalog) == {other.model_id: 1}

        followed = load_embedder(None, catalog, note=notes.append)
        assert followed.model_id == other.model_id
        assert any("the checkpoint this library was embedded with" in n for n in notes)

        notes.clear()  # reindex's choice: the packaged model, and the mismatch said
        packaged = load_embedder(None, catalog, note=notes.append, follow_library=False)
        assert packaged.model_id != other.model_id
        assert any("musicbert reindex" in n for n in notes)
    finally:
        catalog.close()
