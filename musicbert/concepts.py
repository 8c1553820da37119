"""The concept vocabulary a MusicBERT with ``concept_tokens`` reads beside the audio.

The paper feeds detected AudioSet concepts to the shared Transformer; here the
detector is musicnn, so the concepts are its 100 tags (50 MSD, then 50 MTT, the
order of ``Embedder``'s and the feature cache's tag probabilities). Each concept
token starts from the frozen text tower's reading of the tag's everyday name, so a
query that says "hip hop" and a clip whose tagger says "Hip-Hop" meet in one place.
"""

from __future__ import annotations

import torch

from musicbert.musicnn import TAGS
from musicbert.tagger import canonical_tag
from musicbert.vocabulary import PHRASES

CONCEPT_MODELS = ("MSD_musicnn", "MTT_musicnn")


def concept_names() -> list[str]:
    """The everyday name of each of the 100 concepts, in tag-probability order."""
    names = []
    for model in CONCEPT_MODELS:
        for tag in TAGS[model]:
            key = canonical_tag(tag)
            names.append(PHRASES[key][0] if key in PHRASES else key)
    return names


def concept_states(tower) -> torch.Tensor:
    """(100, 384) mean MiniLM token state of each concept name (``TextTower`` ``tower``)."""
    enc = tower.encode(concept_names())
    mask = enc.attention_mask.to(enc.token_states.dtype).unsqueeze(-1)
    return ((enc.token_states * mask).sum(1) / mask.sum(1)).float().cpu()
