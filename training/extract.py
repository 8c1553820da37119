"""Audio to per-item feature files: what the embedder computes at run time, cached.

Every item (a rendered clip, a recording, a library track, a clip of a real
track) goes through ``Embedder.describe(..., keep_patches=True)``, the very code
that embeds and tags a track at ingest: musicnn's 200-d patch vectors (the
audio the shared Transformer reads) and both taggers' patch-averaged
probabilities (MSD 50 then MTT 50), so the training data cannot drift from what
the model sees at run time. MFCC statistics (the probes' baseline row) come too.

Sources: the rendered corpus (``training.corpus``), real recordings (the Debian
Wesnoth soundtrack and ``../shared/data/recordings``, read in place; at most
``RECORDING_SECONDS`` of each), a library's tracks and the real-music listing
(``training.real_corpus``). One file per item under ``items/``, each stamped
with ``FEATURES_VERSION``, so an interrupted run resumes and files written by an
older front-end are computed again; ``training.features.assemble`` packs them.

Run: ``musicbert features --corpus DIR --out DIR``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from musicbert.errors import MusicBertError
from training.features import FEATURES_VERSION, N_MFCC, FeatureCacheError

WESNOTH_MUSIC = Path("/usr/share/games/wesnoth/1.16/data/core/music")
RECORDING_SECONDS = 30.0
#: real-corpus tracks become clips of this length (the held-out clips people judge are
#: 15-30 s), at most ``REAL_SEGMENTS`` per track, spread over its first ``REAL_SPAN`` s
REAL_SEGMENT_SECONDS = 20.0
REAL_SEGMENTS = 6
REAL_SPAN = 240.0
SR = 16000


def mfcc_stats(wave: np.ndarray, sr: int = SR) -> np.ndarray:
    """Mean and standard deviation of 20 MFCCs over time (the classic baseline vector)."""
    import librosa

    m = librosa.feature.mfcc(y=wave.astype(np.float32), sr=sr, n_mfcc=N_MFCC)
    return np.concatenate([m.mean(1), m.std(1)]).astype(np.float32)


def item_features(embedder, wave: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(patches, 200) float16 musicnn patch vectors and (100,) float16 tag probabilities
    (MSD then MTT) of 16 kHz mono audio: ``Embedder.describe`` with ``keep_patches``."""
    desc = embedder.describe((wave, SR), tags=True, keep_patches=True)
    tags = np.concatenate([desc.tag_probs["MSD_musicnn"], desc.tag_probs["MTT_musicnn"]])
    return desc.patch_vectors.astype(np.float16), tags.astype(np.float16)


def _done(item_dir: Path, item_id: str) -> bool:
    """Whether ``item_id`` was extracted by this ``FEATURES_VERSION`` (older files: redo)."""
    marker = item_dir / f"{item_id}.done"
    if marker.is_file():
        return marker.read_text().strip() == str(FEATURES_VERSION)
    path = item_dir / f"{item_id}.npz"
    if not path.is_file():
        return False
    try:
        with np.load(path) as z:
            return "version" in z and int(z["version"]) == FEATURES_VERSION
    except (OSError, ValueError):
        return False


def _save(path: Path, **arrays) -> None:
    tmp = path.with_name(path.name[: -len(".npz")] + ".tmp.npz")
    np.savez(tmp, version=np.int64(FEATURES_VERSION), **arrays)
    tmp.rename(path)


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

    waves = [load(p, SR, max_seconds=seconds) for p in paths]
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
    embedder=None,
) -> int:
    """Write per-item audio features under ``out_dir/items``; returns the items done now.

    ``shard=(i, n)`` takes every n-th item from the i-th: n processes, one per core,
    share the work (``musicbert features --threads 1``: one torch thread each uses a
    core best). ``embedder``: an ``Embedder`` to compute with (default: the packaged
    checkpoint on the CPU, as ingest runs on a machine without a GPU).
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
    todo = [(i, meta) for i, meta in jobs if not _done(item_dir, i)]
    if not todo:
        return 0
    if embedder is None:
        from musicbert.embedder import Embedder

        embedder = Embedder.load(device="cpu")
    done = 0
    for item_id, meta in tqdm(todo, desc="features", unit="item"):
        if meta["source"] == "real":
            try:
                whole = _load_mix(meta["track"]["paths"], REAL_SPAN)
            except MusicBertError:
                continue
            n = int(REAL_SEGMENT_SECONDS * SR)
            for k, start in enumerate(meta["starts"]):
                wave = whole[int(start * SR) : int(start * SR) + n]
                if len(wave) < SR * 3:
                    continue
                pen, tags = item_features(embedder, wave)
                seg = dict(meta, start=start, segment=k)
                _save(
                    item_dir / f"{item_id}_s{k}.npz",
                    patches=pen,
                    tags=tags,
                    mfcc=mfcc_stats(wave),
                    meta=json.dumps(seg),
                )
            # the track's clips are all written
            (item_dir / f"{item_id}.done").write_text(f"{FEATURES_VERSION}\n")
            done += 1
            continue
        if meta["source"] == "corpus":
            wave, sr = sf.read(corpus_dir / meta["facts"]["path"], dtype="float32")
            if wave.ndim > 1:
                wave = wave.mean(1)
            if sr != SR:
                raise FeatureCacheError(f"{item_id}: rendered at {sr} Hz, expected SR")
        else:
            try:
                wave = load(meta["path"], SR, max_seconds=RECORDING_SECONDS)
            except MusicBertError:
                continue
        pen, tags = item_features(embedder, wave)
        extra = {}
        if meta["source"] == "recording":
            half = len(wave) // 2
            extra = {"mfcc_a": mfcc_stats(wave[:half]), "mfcc_b": mfcc_stats(wave[half:])}
        _save(
            item_dir / f"{item_id}.npz",
            patches=pen,
            tags=tags,
            mfcc=mfcc_stats(wave),
            meta=json.dumps(meta),
            **extra,
        )
        done += 1
    return done


def build(
    out_dir: Path,
    corpus_dir: Path | None = None,
    include_recordings: bool = True,
    shard: tuple[int, int] = (0, 1),
    catalog_url: str | None = None,
    real_listing: Path | None = None,
    compact: Path | None = None,
    extract_only: bool = False,
) -> dict:
    """Extract what is missing, then pack ``cache.npz`` (and a compact copy).

    A shard (``shard[1] > 1``) or ``extract_only`` packs nothing: the other shards may
    not be done. Returns ``{"extracted": n, "cache": path or None, "compact": ...}``.
    """
    from training.features import assemble, load_cache, save_cache

    n = extract(corpus_dir, out_dir, include_recordings, shard, catalog_url, real_listing)
    result: dict = {"extracted": n, "cache": None, "compact": None}
    if extract_only or shard[1] > 1:
        return result
    path = assemble(out_dir)
    result["cache"] = str(path)
    if compact is not None:
        result["compact"] = str(save_cache(load_cache(path), compact, compact=True))
    return result
