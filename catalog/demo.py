"""The demo library: freely licensed music that can be built on any Debian machine, offline.

Three sources, each track with licence, source and attribution recorded:

- ``wesnoth-1.16-music``: the Battle for Wesnoth soundtrack (orchestral, GPL-2+); the
  files' own tags name the composer of each piece.
- ``singularity-music``: the Endgame: Singularity soundtrack (electronic) by Maxstack
  (Max McCracken), CC BY-SA 3.0.
- ``PIECES``: scores from music21's bundled corpus, rendered to FLAC with FluidSynth
  and a Debian General MIDI soundfont (``catalog.render``), chosen for variety (organ,
  choir and brass chorales, string quartets, piano, fiddle tunes, renaissance and
  trecento vocal music, baroque). The Essen folksongs (unclear/non-commercial status)
  and the Humdrum files under the Ohio State licence agreement (palestrina) are left
  out. Rendered files carry their metadata as Vorbis comments, so re-ingesting them
  from scratch gives the same tracks; renders are cached under
  ``cache_dir("demo")`` and a second build only re-hashes files.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from catalog.db import Catalog
from catalog.demo_pieces import GM_NAMES, PIECES, Piece
from catalog.ingest import IngestSummary, analyse_pending, db_path, ingest, scan
from catalog.ingest_progress import IngestProgress, progress_file, track_count
from musicbert.paths import cache_dir

WESNOTH_DIR = Path("/usr/share/games/wesnoth/1.16/data/core/music")
SINGULARITY_DIR = Path("/usr/share/games/singularity/music")
#: Bump to re-render every piece (changes to the rendering or to ``catalog.demo_pieces``).
RENDER_VERSION = "1"
MAX_SECONDS = 75.0
RENDER_WORKERS = 2

MUSIC21_LICENCE_NOTE = (
    "score from the music21 corpus (music21 is BSD-3-Clause; corpus terms in "
    "music21/corpus/license.txt), rendered with FluidSynth and the FluidR3_GM soundfont (MIT)"
)


@dataclass
class DemoSummary:
    """What ``build_demo_library`` did and what the library holds."""

    rendered: int = 0  # pieces rendered in this run
    cached: int = 0  # pieces whose cached render was reused
    render_failed: list[tuple[str, str]] = field(default_factory=list)  # (corpus ref, reason)
    missing_sources: list[str] = field(default_factory=list)  # packages not installed
    sources: dict[str, int] = field(default_factory=dict)  # tracks per source folder
    ingest: IngestSummary | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["render_failed"] = [{"ref": r, "reason": why} for r, why in self.render_failed]
        out["ingest"] = self.ingest.to_dict() if self.ingest else None
        return out

    def headline(self) -> str:
        """One sentence for a person: "107 tracks from 3 sources (50 rendered from scores)"."""
        total = sum(self.sources.values())
        text = f"{total} tracks from {len(self.sources)} source(s)"
        if self.rendered or self.cached:
            text += f" ({self.rendered + self.cached} rendered from scores)"
        problems = len(self.render_failed) + len(self.missing_sources)
        if self.ingest is not None:
            problems += len(self.ingest.skipped)
        return text + (f"; {problems} problem(s), see `musicbert demo`" if problems else "")


def render_dir() -> Path:
    return cache_dir("demo")


def _render_one(piece: Piece, out: str, soundfont: str | None) -> tuple[str, str | None]:
    """Worker: parse, render and tag one piece. Returns (ref, error or None)."""
    import warnings

    warnings.simplefilter("ignore")  # music21's notes on the scores are not for a person
    from music21 import corpus

    from catalog.render import RenderError, render_score
    from catalog.tags import write_tags

    try:
        score = corpus.parse(piece.ref)
    except Exception as exc:  # music21 parse errors come in many types
        return piece.ref, f"cannot parse score: {type(exc).__name__}: {str(exc)[:100]}"
    tmp = Path(out).with_suffix(".tmp.flac")
    try:
        info = render_score(
            score,
            tmp,
            program=list(piece.programs),
            tempo_scale=piece.tempo_scale,
            soundfont=soundfont,
            max_seconds=MAX_SECONDS,
            default_qpm=piece.default_qpm,
        )
    except RenderError as exc:
        tmp.unlink(missing_ok=True)
        return piece.ref, str(exc)
    instruments = sorted({GM_NAMES.get(p, f"gm program {p}") for p in piece.programs})
    write_tags(
        tmp,
        {
            "title": piece.title,
            "artist": piece.composer,
            "composer": piece.composer,
            "album": piece.album,
            "albumartist": "music21 corpus renders",
            "genre": piece.genre,
            "date": str(piece.year) if piece.year else "",
            "license": piece.licence,
            "source": f"music21 corpus: {piece.ref}",
            "attribution": f"{piece.composer}, {piece.title}; {MUSIC21_LICENCE_NOTE}",
            "score_ref": piece.ref,
            "instrument": instruments,
            "tempo": str(round(info.qpm)),
            "key": info.key or "",
            "musicbert_render": RENDER_VERSION,
        },
    )
    os.replace(tmp, out)  # atomic: a killed render never leaves a half-written FLAC
    return piece.ref, None


def _is_current(path: Path) -> bool:
    if not path.is_file():
        return False
    import mutagen

    try:
        audio = mutagen.File(path)
        return bool(audio and audio.tags and audio.tags.get("musicbert_render") == [RENDER_VERSION])
    except Exception:
        return False


def render_pieces(
    pieces: tuple[Piece, ...] = PIECES,
    out_dir: Path | None = None,
    *,
    workers: int = RENDER_WORKERS,
    soundfont: str | None = None,
    progress: bool = True,
) -> tuple[int, int, list[tuple[str, str]]]:
    """Render every piece not already cached. Returns (rendered, cached, failures)."""
    import sys

    from tqdm import tqdm

    out_dir = out_dir or render_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    todo = [p for p in pieces if not _is_current(out_dir / f"{p.slug}.flac")]
    cached = len(pieces) - len(todo)
    failures: list[tuple[str, str]] = []
    if not todo:
        return 0, cached, failures
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    bar = tqdm(
        total=len(todo), desc="rendering", unit="piece", disable=not progress, file=sys.stderr
    )
    with ProcessPoolExecutor(
        max(1, workers), mp_context=multiprocessing.get_context(method)
    ) as pool:
        futures = [
            pool.submit(_render_one, p, str(out_dir / f"{p.slug}.flac"), soundfont) for p in todo
        ]
        for future in futures:
            try:
                ref, error = future.result()
            except Exception as exc:  # a crashed worker: report, keep going
                ref, error = "?", f"render worker failed: {type(exc).__name__}"
            if error:
                failures.append((ref, error))
            bar.update(1)
    bar.close()
    return len(todo) - len(failures), cached, failures


def _package_overrides(path: str) -> dict[str, Any] | None:
    """Licence, source and attribution for the two Debian soundtrack packages."""
    if path.startswith(str(WESNOTH_DIR) + os.sep):
        return {
            "licence": "GPL-2+",
            "source": "Debian package wesnoth-1.16-music (The Battle for Wesnoth soundtrack)",
            "attribution": "The Battle for Wesnoth soundtrack, https://www.wesnoth.org/",
            "artist": "Wesnoth music team",
            "album": "The Battle for Wesnoth OST",
        }
    if path.startswith(str(SINGULARITY_DIR) + os.sep):
        return {
            "licence": "CC BY-SA 3.0",
            "source": "Debian package singularity-music (Endgame: Singularity soundtrack)",
            "attribution": "Maxstack (Max McCracken), Endgame: Singularity soundtrack, "
            "http://emhsoft.com/singularity",
            "artist": "Maxstack",
        }
    return None


def _with_composer_attribution(path: str) -> dict[str, Any] | None:
    values = _package_overrides(path)
    if values and "wesnoth" in values["source"]:
        from catalog.tags import read_tags

        tags = read_tags(path)
        who = tags.composer or tags.artist or "the Wesnoth music team"
        year = f" ({tags.year})" if tags.year else ""
        values["attribution"] = f"{who}{year}, {values['attribution']}"
    return values


def starter_pieces(pieces: tuple[Piece, ...]) -> tuple[Piece, ...]:
    """The first piece of each album: rendered first, so a growing demo library holds some
    organ, choir, quartet, piano, fiddle... within its first minutes."""
    seen: set[str] = set()
    out = []
    for piece in pieces:
        if piece.album not in seen:
            seen.add(piece.album)
            out.append(piece)
    return tuple(out)


def demo_marker(catalog: Catalog) -> Path | None:
    """``X/name.demo.json`` beside the catalog: written when a demo build finished (its
    summary); None for an in-memory catalog."""
    progress = progress_file(catalog)
    return (
        None
        if progress is None
        else progress.with_name(progress.name.replace(".ingest.json", ".demo.json"))
    )


def demo_complete(catalog: Catalog) -> bool:
    """Whether a demo build ran to its end on this catalog (an interrupted one did not)."""
    marker = demo_marker(catalog)
    return marker is not None and marker.is_file()


def build_demo_library(
    catalog: Catalog,
    embedder: Any = None,
    *,
    pieces: tuple[Piece, ...] = PIECES,
    include_packages: bool = True,
    workers: int | None = None,
    progress: bool = True,
    overrides: Callable[[str], dict[str, Any] | None] | None = None,
    note: IngestProgress | None = None,
) -> DemoSummary:
    """Render (or reuse) the corpus pieces and ingest them with the two soundtracks.

    In the order that serves a person chatting while it grows: one piece per album is
    rendered first and ingested together with the soundtracks (one file of each folder
    in turn), then the other pieces are rendered and ingested, and only then is the whole
    library analysed (loudness, tempo, key: what search does not need). ``note`` is the progress
    file other processes read (one is written when not given); it says how many tracks
    the library will hold. Every step is resumable: a killed build run again reuses the
    cached renders and the committed tracks.
    """
    if note is None:
        with IngestProgress(catalog) as own:
            return build_demo_library(
                catalog, embedder, pieces=pieces, include_packages=include_packages,
                workers=workers, progress=progress, overrides=overrides, note=own,
            )  # fmt: skip
    summary = DemoSummary()
    folders = [render_dir()]
    if include_packages:
        for folder, package in (
            (WESNOTH_DIR, "wesnoth-1.16-music"),
            (SINGULARITY_DIR, "singularity-music"),
        ):
            if folder.is_dir():
                folders.append(folder)
            else:
                summary.missing_sources.append(
                    f"{package} is not installed (apt-get install {package})"
                )
    package_files = len(scan(folders[1:])[0]) if folders[1:] else 0
    others = track_count(catalog) - sum(_count_sources(catalog, folders).values())
    note.update(force=True, stage="rendering", expected=others + len(pieces) + package_files)
    wanted = {f"{p.slug}.flac" for p in pieces}
    first = starter_pieces(pieces)
    rest = tuple(p for p in pieces if p not in first)
    ingests: list[IngestSummary] = []
    for batch, extra in ((first, folders[1:]), (rest, [])):
        note.update(stage="rendering")
        rendered, cached, failed = render_pieces(batch, progress=progress)
        summary.rendered += rendered
        summary.cached += cached
        summary.render_failed += failed
        done = {f"{p.slug}.flac" for p in batch}
        paths: list[Path] = [
            p for p in sorted(folders[0].glob("*.flac")) if p.name in wanted and p.name in done
        ]
        if paths or extra:
            ingests.append(
                ingest(
                    catalog,
                    paths + extra,
                    embedder=embedder,
                    workers=workers,
                    progress=progress,
                    overrides=overrides or _with_composer_attribution,
                    note=note,
                    analysis=False,  # once, at the end: what search needs comes first
                )
            )
    ingests.append(
        analyse_pending(
            catalog,
            folders,
            workers=workers,
            progress=progress,
            note=note,
            completes=embedder is None,
        )  # fmt: skip
    )
    summary.ingest = _merged(ingests)
    note.update(force=True, stage="finishing")
    _refresh_package_metadata(catalog)
    summary.sources = _count_sources(catalog, folders)
    marker = demo_marker(catalog)
    if marker is not None:
        try:
            marker.write_text(json.dumps({"finished": time.time(), "headline": summary.headline()}))
        except OSError:
            pass
    return summary


def _merged(runs: list[IngestSummary]) -> IngestSummary:
    """One summary for the demo's ingest runs (counts added, lists joined)."""
    out = IngestSummary()
    for run in runs:
        for name, value in run.__dict__.items():
            if isinstance(value, list):
                getattr(out, name).extend(value)
            elif isinstance(value, dict):  # stages: tracks and seconds add up
                for stage, figures in value.items():
                    mine = out.stages.setdefault(stage, dict.fromkeys(figures, 0.0))
                    for key, number in figures.items():
                        mine[key] = mine.get(key, 0.0) + number
            else:
                setattr(out, name, getattr(out, name) + value)
    return out


def _refresh_package_metadata(catalog: Catalog) -> None:
    """Re-apply licence/source/attribution to package tracks (cheap; keeps old catalogs right)."""
    from sqlalchemy import select

    from catalog.ingest import fs_path
    from catalog.models import Track

    with catalog.session() as session:
        for folder in (WESNOTH_DIR, SINGULARITY_DIR):
            prefix = db_path(folder) + "/"
            rows = session.scalars(select(Track).where(Track.path.startswith(prefix))).all()
            for track in rows:
                values = _package_overrides(fs_path(track.path)) or {}
                for name in ("licence", "source"):
                    if values.get(name) and getattr(track, name) != values[name]:
                        setattr(track, name, values[name])
                if not track.attribution:
                    track.attribution = values.get("attribution")


def _count_sources(catalog: Catalog, folders: list[Path]) -> dict[str, int]:
    from sqlalchemy import func, select

    from catalog.models import Track

    counts: dict[str, int] = {}
    with catalog.session() as session:
        for folder in folders:
            prefix = db_path(folder) + "/"
            counts[str(folder)] = session.scalar(
                select(func.count()).select_from(Track).where(Track.path.startswith(prefix))
            )
    return counts
