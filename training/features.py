"""The feature cache the training loop reads: its format, packing and reading.

Per-item audio features (``training.extract``: musicnn patch vectors and tag
probabilities computed by the embedder's own code, MFCC statistics) are packed
here with the MiniLM token states of every text (descriptions, pseudo-captions,
natural captions) into one ``cache.npz``. With these cached, an epoch costs only
the shared Transformer, and the cache (tens of MB, no audio) is what would travel
to a GPU machine (``save_cache(..., compact=True)``: int8 text states).

Build: ``musicbert features --corpus DIR --out DIR``.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from musicbert.errors import MusicBertError
from musicbert.musicnn import TAGS

#: what the musicnn numbers of a cache were computed by: 2 = ``Embedder.describe`` (the
#: run-time path: tail patch covered, tags averaged over every patch); 1 (unstamped) =
#: the old separate front-end. Older item files are extracted again; an older packed
#: cache is refused (rebuild it with ``musicbert features``) rather than misread.
FEATURES_VERSION = 2
N_MFCC = 20
FAMILY_NAMES = ("brass", "choir", "guitar", "mallets", "organ", "piano", "strings", "woodwind")
TEMPO_NAMES = ("slow", "moderate", "fast")
REGISTER_NAMES = ("low", "middle", "high")
#: tag targets: MTT's 50 soft probabilities, then one-hot facts of rendered clips
TAG_NAMES = (
    [f"mtt:{t}" for t in TAGS["MTT_musicnn"]]
    + [f"family:{n}" for n in FAMILY_NAMES]
    + [f"tempo:{n}" for n in TEMPO_NAMES]
    + [f"register:{n}" for n in REGISTER_NAMES]
)


class FeatureCacheError(MusicBertError):
    """A feature cache that is missing, incomplete or inconsistent."""


@dataclass
class Item:
    """One audio item of the cache (a rendered clip or a recording)."""

    item_id: str
    source: str  # "corpus" or "recording"
    split: str  # train / val / test
    labels: dict  # family, tempo_class, style, collection, register (corpus); track (rec.)
    offset: int  # first row in patches
    n_patches: int
    texts: list[int]  # text ids usable as training pairs
    query: int  # text id of the canonical description (retrieval queries)
    tag_target: list[float]


@dataclass
class FeatureCache:
    """The packed cache in memory."""

    items: list[Item]
    patches: np.ndarray  # (N, 200) float16
    tag_probs: np.ndarray  # (n_items, 100) float16: MSD 50 then MTT 50
    mfcc: np.ndarray  # (n_items, 2 * N_MFCC) float32 (whole item)
    mfcc_segments: dict[str, np.ndarray]  # "a"/"b": (n_items, 2 * N_MFCC) (recordings)
    texts: list[str]
    text_offsets: np.ndarray  # (n_texts + 1,) into text_states
    text_states: np.ndarray  # (tokens, 384) float16
    #: (100, 384) the text tower's reading of the concept names (``musicbert.concepts``),
    #: so a GPU machine without the text tower can train a concept model
    concept_states: np.ndarray | None = None

    def item_patches(self, i: int) -> np.ndarray:
        item = self.items[i]
        return self.patches[item.offset : item.offset + item.n_patches]

    def text_state(self, t: int) -> np.ndarray:
        return self.text_states[self.text_offsets[t] : self.text_offsets[t + 1]]

    def indices(self, split: str, source: str | None = None) -> list[int]:
        return [
            i
            for i, it in enumerate(self.items)
            if it.split == split and (source is None or it.source == source)
        ]


def _fact_target(facts: dict | None) -> np.ndarray:
    """One-hot family / tempo / register; recordings get the uniform prior (unknown)."""
    parts = []
    for names, key in (
        (FAMILY_NAMES, "family"),
        (TEMPO_NAMES, "tempo_class"),
        (REGISTER_NAMES, "register"),
    ):
        if facts is None:
            parts.append(np.full(len(names), 1.0 / len(names)))
        else:
            parts.append(np.eye(len(names))[names.index(facts[key])])
    return np.concatenate(parts)


def assemble(out_dir: Path, seed: int = 0, text_batch: int = 64) -> Path:
    """Pack the per-item files and the MiniLM token states of every text into ``cache.npz``."""
    from musicbert.concepts import concept_states
    from musicbert.text_tower import TextTower
    from training.captions import (
        distinctive_tags,
        natural_captions,
        pseudo_caption,
        ranked_tags_100,
    )
    from training.corpus import STYLE_OF, ClipFacts, describe, paraphrase

    files = sorted((out_dir / "items").glob("*.npz"))
    files = [f for f in files if not f.name.endswith(".tmp.npz") and f.stat().st_size]
    if not files:
        raise FeatureCacheError(f"{out_dir}/items: no extracted items; run extract first")
    stale = [f.name for f in files if _item_version(f) != FEATURES_VERSION]
    if stale:
        raise FeatureCacheError(
            f"{out_dir}/items: {len(stale)} item files (e.g. {stale[0]}) come from an older "
            f"front-end than version {FEATURES_VERSION}; run musicbert features again with "
            "the sources that made them, or move them away"
        )
    rng = random.Random(seed)
    texts: list[str] = []
    text_ids: dict[str, int] = {}

    def text_id(text: str) -> int:
        if text not in text_ids:
            text_ids[text] = len(texts)
            texts.append(text)
        return text_ids[text]

    items, patches, tags, mfcc, seg_a, seg_b = [], [], [], [], [], []
    offset = 0
    prior, bank = _caption_sources(files)
    nat = np.random.default_rng(seed)
    for f in files:
        with np.load(f) as z:
            meta = json.loads(str(z["meta"]))
            pen, tp, mf = z["patches"], z["tags"], z["mfcc"]
            a = z["mfcc_a"] if "mfcc_a" in z else mf
            b = z["mfcc_b"] if "mfcc_b" in z else mf
        probs = {
            "MSD_musicnn": tp[:50].astype(np.float64),
            "MTT_musicnn": tp[50:].astype(np.float64),
        }
        caption = pseudo_caption(probs)
        if meta["source"] == "corpus":
            facts = ClipFacts(**meta["facts"])
            query = text_id(describe(facts))
            own = [query, text_id(describe(facts, rng)), text_id(paraphrase(facts))]
            labels = {
                "family": facts.family,
                "tempo_class": facts.tempo_class,
                "collection": facts.collection,
                "register": facts.register,
                "style": STYLE_OF.get(facts.collection, facts.collection),
                "piece": facts.piece,
                "instrument": facts.instrument,
            }
            split, target_facts = facts.split, meta["facts"]
        elif meta["source"] == "real":  # a real recording: its metadata, then natural text
            from training.real_corpus import RealTrack, describe_metadata

            track = RealTrack(**meta["track"])
            query = text_id(describe_metadata(track))
            own = [query]
            labels = {
                "track": track.track_id,
                "package": track.package,
                "genre": track.genre,
                "title": track.title,
                "licence": track.licence,
                "start": meta["start"],
                "segment": meta["segment"],
            }
            split, target_facts = track.split, None
        elif meta["source"] == "catalog":  # a library track: its own metadata is its text
            query = text_id(meta["text"])
            own = [query]
            labels = {"track": f.stem}
            split, target_facts = "train", None
        else:
            title = meta["title"]
            where = (
                "Battle for Wesnoth game soundtrack" if "wesnoth" in meta["path"] else "a recording"
            )
            query = text_id(f"{where}: {title}")
            own = [query]
            labels = {"track": f.stem}
            split, target_facts = meta["split"], None
        own.append(text_id(caption))
        tp100 = tp.astype(np.float64)
        own += [text_id(t) for t in natural_captions(tp100, prior, nat)]
        if bank is not None:
            distinctive = {t for t, _ in distinctive_tags(tp100, prior)}
            improbable = {t for t in ranked_tags_100(tp100)[-40:]}
            own += [text_id(t) for t in bank.borrow(distinctive, improbable, nat)]
        target = np.concatenate([tp[50:].astype(np.float64), _fact_target(target_facts)])
        items.append(
            Item(
                f.stem,
                meta["source"],
                split,
                labels,
                offset,
                len(pen),
                sorted(set(own)),
                query,
                [round(float(v), 4) for v in target],
            )
        )
        offset += len(pen)
        patches.append(pen)
        tags.append(tp)
        mfcc.append(mf)
        seg_a.append(a)
        seg_b.append(b)
    assert len(TAGS["MTT_musicnn"]) + 14 == len(TAG_NAMES)

    tower = TextTower.load()
    states, offsets = [], [0]
    for start in range(0, len(texts), text_batch):
        enc = tower.encode(texts[start : start + text_batch])
        for row, mask in zip(enc.token_states, enc.attention_mask, strict=True):
            s = row[mask.bool()].numpy().astype(np.float16)
            states.append(s)
            offsets.append(offsets[-1] + len(s))
    cache = FeatureCache(
        items=items,
        patches=np.concatenate(patches),
        tag_probs=np.stack(tags),
        mfcc=np.stack(mfcc),
        mfcc_segments={"a": np.stack(seg_a), "b": np.stack(seg_b)},
        texts=texts,
        text_offsets=np.asarray(offsets, np.int64),
        text_states=np.concatenate(states),
        concept_states=concept_states(tower).numpy().astype(np.float32),
    )
    return save_cache(cache, out_dir / "cache.npz")


def _item_version(path: Path) -> int:
    with np.load(path) as z:
        return int(z["version"]) if "version" in z else 1


def _caption_sources(files: list[Path]):
    """The corpus's tag base rate and, where ../shared has them, MusicCaps's captions."""
    from musicbert.paths import shared_dir
    from training.captions import CaptionBank, tag_prior

    probs = []
    for f in files:
        with np.load(f) as z:
            probs.append(z["tags"].astype(np.float64))
    shared = shared_dir()
    csv = shared / "data" / "text" / "musiccaps_captions.csv" if shared else None
    bank = CaptionBank.load(csv) if csv is not None and csv.is_file() else None
    return tag_prior(np.stack(probs)), bank


def quantise_rows(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int8 rows and one float16 scale per row (absmax): half the size of float16."""
    x = np.asarray(x, np.float32)
    scale = np.abs(x).max(1, keepdims=True) / 127.0
    scale[scale == 0] = 1.0
    return np.round(x / scale).astype(np.int8), scale.astype(np.float16)


def save_cache(cache: FeatureCache, path: Path, compact: bool = False) -> Path:
    """Write ``cache`` atomically (a temporary file renamed into place).

    ``compact`` stores the text token states as int8 with a scale per token (about
    0.4% error, half the size): what travels to a GPU machine with a size limit.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.npz")
    if compact:
        q, scale = quantise_rows(cache.text_states)
        text = {"text_states_q": q, "text_scales": scale}
    else:
        text = {"text_states": cache.text_states}
    (np.savez_compressed if compact else np.savez)(
        tmp,
        patches=cache.patches,
        tag_probs=cache.tag_probs,
        mfcc=cache.mfcc,
        mfcc_a=cache.mfcc_segments["a"],
        mfcc_b=cache.mfcc_segments["b"],
        text_offsets=cache.text_offsets,
        version=np.int64(FEATURES_VERSION),
        **text,
        items=json.dumps([item.__dict__ for item in cache.items]),
        texts=json.dumps(cache.texts),
        **({} if cache.concept_states is None else {"concept_states": cache.concept_states}),
    )
    tmp.rename(path)
    return path


def load_cache(path: str | Path) -> FeatureCache:
    """Read ``cache.npz`` (or a directory holding it)."""
    path = Path(path)
    if path.is_dir():
        path = path / "cache.npz"
    if not path.is_file():
        raise FeatureCacheError(f"{path}: no feature cache; run musicbert features")
    try:
        with np.load(path) as z:
            version = int(z["version"]) if "version" in z else 1
            if version != FEATURES_VERSION:
                raise FeatureCacheError(
                    f"{path}: feature cache version {version}, this code reads version "
                    f"{FEATURES_VERSION} (musicnn features as the embedder computes them); "
                    "rebuild it with musicbert features"
                )
            items = [Item(**d) for d in json.loads(str(z["items"]))]
            return FeatureCache(
                items=items,
                patches=z["patches"],
                tag_probs=z["tag_probs"],
                mfcc=z["mfcc"],
                mfcc_segments={"a": z["mfcc_a"], "b": z["mfcc_b"]},
                texts=json.loads(str(z["texts"])),
                text_offsets=z["text_offsets"],
                text_states=(
                    z["text_states"]
                    if "text_states" in z
                    else (z["text_states_q"] * z["text_scales"].astype(np.float32)).astype(
                        np.float16
                    )
                ),
                concept_states=z["concept_states"] if "concept_states" in z else None,
            )
    except (KeyError, ValueError, OSError) as exc:
        raise FeatureCacheError(f"{path}: unreadable feature cache ({exc})") from exc
