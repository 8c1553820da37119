"""The frozen front-end, run once: an fp16 feature cache the training loop reads.

musicnn (MSD) gives one 200-d penultimate vector per ~3 s patch; both taggers give
patch-averaged tag probabilities (for pseudo-captions and tag targets); MiniLM
gives token states for every text. With these cached, an epoch costs only the
shared Transformer, and the cache (tens of MB, no audio) is what would travel to
a GPU machine. MFCC statistics are cached too: they are the probes' baseline row.

Sources: the rendered corpus (``training.corpus``) and real recordings (the
Debian Wesnoth soundtrack and ``../shared/data/recordings``, read in place; at
most ``RECORDING_SECONDS`` of each). Per-item audio features are written one file
per item, so an interrupted run resumes; ``assemble`` then packs everything.

Run: ``python -m training.features --corpus DIR --out DIR``.
"""

from __future__ import annotations

import argparse
import json
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from musicbert.errors import MusicBertError
from musicbert.musicnn import TAGS

WESNOTH_MUSIC = Path("/usr/share/games/wesnoth/1.16/data/core/music")
RECORDING_SECONDS = 30.0
#: real-corpus tracks become clips of this length (the held-out clips people judge are
#: 15-30 s), at most ``REAL_SEGMENTS`` per track, spread over its first ``REAL_SPAN`` s
REAL_SEGMENT_SECONDS = 20.0
REAL_SEGMENTS = 6
REAL_SPAN = 240.0
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


def mfcc_stats(wave: np.ndarray, sr: int = 16000) -> np.ndarray:
    """Mean and standard deviation of 20 MFCCs over time (the classic baseline vector)."""
    import librosa

    m = librosa.feature.mfcc(y=wave.astype(np.float32), sr=sr, n_mfcc=N_MFCC)
    return np.concatenate([m.mean(1), m.std(1)]).astype(np.float32)


class _Frontend:
    """musicnn MSD + MTT on CPU, loaded once per process."""

    def __init__(self) -> None:
        import torch

        from musicbert.musicnn import load_musicnn

        self.torch = torch
        torch.set_num_threads(1)  # the CPU is shared; one thread per process wastes least
        self.msd = load_musicnn("MSD_musicnn")
        self.mtt = load_musicnn("MTT_musicnn")

    def __call__(self, wave: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from musicbert.logmel import logmel, patchify

        patches = patchify(logmel(wave))
        with self.torch.inference_mode():
            x = self.torch.from_numpy(patches)
            outs = [self.msd(x[i : i + 8]) for i in range(0, len(x), 8)]
            pen = self.torch.cat([o.penultimate for o in outs]).numpy()
            msd = self.torch.cat([o.tag_probs for o in outs]).mean(0).numpy()
            mtt = np.concatenate(
                [self.mtt(x[i : i + 8]).tag_probs.numpy() for i in range(0, len(x), 8)]
            ).mean(0)
        return pen.astype(np.float16), np.concatenate([msd, mtt]).astype(np.float16)


def recordings() -> list[tuple[Path, str, str]]:
    """(path, title, split) of the real recordings: half the Wesnoth tracks train, the rest test.

    ``../shared/data/recordings`` (when present) is test only: those tracks are
    never trained on, so track identification there is a clean test.
    """
    from musicbert.paths import shared_dir

    out = []
    wesnoth = sorted(WESNOTH_MUSIC.glob("*.ogg")) if WESNOTH_MUSIC.is_dir() else []
    for i, path in enumerate(wesnoth):
        out.append(
            (path, path.stem.replace("-", " ").replace("_", " "), "train" if i % 2 else "test")
        )
    shared = shared_dir()
    if shared is not None:
        for path in sorted((shared / "data" / "recordings").glob("*.ogg")):
            out.append((path, path.stem.replace("_", " "), "test"))
    return out


def catalog_tracks(url: str, exclude: set[Path]) -> list[tuple[Path, str]]:
    """(path, text) of a library's tracks, training material made of its own metadata.

    The text is what the library says of a track: title, artist, album, composer and
    its genre/mood/instrument tags from files or the user (never a model's guesses).
    Left out: files already used as recordings (``exclude``, whose halves may be
    test items) and renders of a held-out music21 collection (the demo library has
    some), so no evaluation clip leaks in.
    """
    from sqlalchemy import select
    from sqlalchemy.orm import selectinload

    from catalog.db import open_catalog
    from catalog.models import Track
    from training.corpus import COLLECTIONS

    held_out = {name for name, (*_rest, split) in COLLECTIONS.items() if split == "test"}
    excluded = {p.resolve() for p in exclude}
    out = []
    with open_catalog(url) as catalog, catalog.session() as session:
        query = select(Track).options(
            selectinload(Track.tags), selectinload(Track.artist), selectinload(Track.album)
        )
        for track in session.scalars(query.order_by(Track.id)):
            path = Path(track.path)
            source = track.source or ""
            if path.resolve() in excluded or not path.is_file():
                continue
            if (
                source.startswith("music21 corpus: ")
                and source.split(": ", 1)[1].split("/")[0] in held_out
            ):
                continue
            text = track.title
            if track.artist is not None:
                text += f" by {track.artist.name}"
            if track.album is not None and track.album.title != track.title:
                text += f", from the album {track.album.title}"
            if track.composer and (track.artist is None or track.composer != track.artist.name):
                text += f", composed by {track.composer}"
            words = sorted(  # the library's own tags, not ones a model guessed
                {t.name for t in track.tags if t.origin != "model" and t.kind != "other"}
            )
            if words:
                text += "; " + ", ".join(words[:6])
            out.append((path, text))
    return out


def _file_item_id(prefix: str, path: Path) -> str:
    """A file's item id: a prefix saying where it came from, then its name made safe."""
    return prefix + "".join(ch if ch.isalnum() else "_" for ch in path.stem)[:80]


def real_segments(duration: float) -> list[float]:
    """Start times (s) of the clips taken from a real track of ``duration`` seconds."""
    usable = min(duration, REAL_SPAN)
    n = int(min(REAL_SEGMENTS, max(1, usable // REAL_SEGMENT_SECONDS)))
    if n == 1:
        return [0.0]
    step = (usable - REAL_SEGMENT_SECONDS) / (n - 1)
    return [round(i * step, 2) for i in range(n)]


def _load_mix(paths: list[str], seconds: float) -> np.ndarray:
    """The first ``seconds`` of one file, or of several stems summed (peak-normalised)."""
    from musicbert.audio_io import load

    waves = [load(p, 16000, max_seconds=seconds) for p in paths]
    if len(waves) == 1:
        return waves[0]
    mix = np.zeros(max(len(w) for w in waves), np.float32)
    for w in waves:
        mix[: len(w)] += w
    peak = float(np.abs(mix).max()) if mix.size else 0.0
    return mix / peak * 0.9 if peak > 1.0 else mix


def extract(
    corpus_dir: Path | None,
    out_dir: Path,
    include_recordings: bool = True,
    shard: tuple[int, int] = (0, 1),
    catalog_url: str | None = None,
    real_listing: Path | None = None,
) -> int:
    """Write per-item audio features under ``out_dir/items``; returns the items done now.

    ``shard=(i, n)`` takes every n-th item from the i-th: n processes, one per core,
    share the work (each runs musicnn single-threaded, which uses a core best).
    """
    import soundfile as sf
    from tqdm import tqdm

    from musicbert.audio_io import load

    item_dir = out_dir / "items"
    item_dir.mkdir(parents=True, exist_ok=True)
    jobs: list[tuple[str, dict]] = []
    if corpus_dir is not None:
        from dataclasses import asdict

        from training.corpus import read_clips

        for clip in read_clips(corpus_dir):
            jobs.append((clip.clip_id, {"source": "corpus", "facts": asdict(clip)}))
    recorded = recordings()
    if include_recordings:
        for path, title, split in recorded:
            meta = {"source": "recording", "path": str(path), "title": title, "split": split}
            jobs.append((_file_item_id("rec_", path), meta))
    if catalog_url:
        for path, text in catalog_tracks(catalog_url, {p for p, _t, _s in recorded}):
            meta = {"source": "catalog", "path": str(path), "text": text}
            jobs.append((_file_item_id("lib_", path), meta))
    if real_listing is not None:
        from dataclasses import asdict

        from training.real_corpus import read_listing

        for track in read_listing(real_listing):
            meta = {
                "source": "real",
                "track": asdict(track),
                "starts": real_segments(track.duration),
            }
            jobs.append(("real_" + track.track_id.replace("/", "__"), meta))
    index, count = shard
    jobs = jobs[index::count]
    todo = [
        (i, meta)
        for i, meta in jobs
        if not (item_dir / f"{i}.npz").is_file() and not (item_dir / f"{i}.done").is_file()
    ]
    if not todo:
        return 0
    frontend = _Frontend()
    done = 0
    for item_id, meta in tqdm(todo, desc="features", unit="item"):
        if meta["source"] == "real":
            try:
                whole = _load_mix(meta["track"]["paths"], REAL_SPAN)
            except MusicBertError:
                continue
            n = int(REAL_SEGMENT_SECONDS * 16000)
            for k, start in enumerate(meta["starts"]):
                wave = whole[int(start * 16000) : int(start * 16000) + n]
                if len(wave) < 16000 * 3:
                    continue
                pen, tags = frontend(wave)
                seg = dict(meta, start=start, segment=k)
                tmp = item_dir / f"{item_id}_s{k}.tmp.npz"
                np.savez(tmp, patches=pen, tags=tags, mfcc=mfcc_stats(wave), meta=json.dumps(seg))
                tmp.rename(item_dir / f"{item_id}_s{k}.npz")
            (item_dir / f"{item_id}.done").touch()  # the track's clips are all written
            done += 1
            continue
        if meta["source"] == "corpus":
            wave, sr = sf.read(corpus_dir / meta["facts"]["path"], dtype="float32")
            if wave.ndim > 1:
                wave = wave.mean(1)
            if sr != 16000:
                raise FeatureCacheError(f"{item_id}: rendered at {sr} Hz, expected 16000")
        else:
            try:
                wave = load(meta["path"], 16000, max_seconds=RECORDING_SECONDS)
            except MusicBertError:
                continue
        pen, tags = frontend(wave)
        extra = {}
        if meta["source"] == "recording":
            half = len(wave) // 2
            extra = {"mfcc_a": mfcc_stats(wave[:half]), "mfcc_b": mfcc_stats(wave[half:])}
        tmp = item_dir / f"{item_id}.tmp.npz"
        np.savez(tmp, patches=pen, tags=tags, mfcc=mfcc_stats(wave), meta=json.dumps(meta), **extra)
        tmp.rename(item_dir / f"{item_id}.npz")
        done += 1
    return done


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
        raise FeatureCacheError(f"{path}: no feature cache; run python -m training.features")
    try:
        with np.load(path) as z:
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=None, help="rendered corpus directory")
    parser.add_argument("--out", type=Path, required=True, help="feature cache directory")
    parser.add_argument("--no-recordings", action="store_true")
    parser.add_argument(
        "--catalog", default=None, help="also train on this library's tracks (database URL)"
    )
    parser.add_argument(
        "--real", type=Path, default=None, help="real-music listing (training.real_corpus)"
    )
    parser.add_argument(
        "--compact", type=Path, default=None, help="also write a compact copy here (int8 text)"
    )
    parser.add_argument("--extract-only", action="store_true", help="do not pack (yet)")
    parser.add_argument(
        "--shard",
        default="0/1",
        help="I/N: extract every N-th item from the I-th (implies "
        "--extract-only; run N of these side by side, then once without --shard to pack)",
    )
    args = parser.parse_args(argv)
    try:
        index, count = (int(x) for x in args.shard.split("/"))
        if not 0 <= index < count:
            raise ValueError
    except ValueError:
        parser.error(f"--shard {args.shard!r}: expected I/N with 0 <= I < N, e.g. 0/2")
    n = extract(
        args.corpus, args.out, not args.no_recordings, (index, count), args.catalog, args.real
    )
    if args.extract_only or count > 1:  # a shard packs nothing: the others are not done
        print(f"extracted {n} new items")
        return 0
    path = assemble(args.out)
    print(f"extracted {n} new items; cache at {path}")
    if args.compact:
        print(f"compact copy at {save_cache(load_cache(path), args.compact, compact=True)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
