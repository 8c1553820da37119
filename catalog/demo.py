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
from catalog.ingest import IngestSummary, db_path, ingest, scan
from catalog.ingest_progress import IngestProgress, progress_file, track_count
from musicbert.paths import cache_dir

WESNOTH_DIR = Path("/usr/share/games/wesnoth/1.16/data/core/music")
SINGULARITY_DIR = Path("/usr/share/games/singularity/music")
#: Bump to re-render every piece (changes to the rendering or the table below).
RENDER_VERSION = "1"
MAX_SECONDS = 75.0
RENDER_WORKERS = 2

MUSIC21_LICENCE_NOTE = (
    "score from the music21 corpus (music21 is BSD-3-Clause; corpus terms in "
    "music21/corpus/license.txt), rendered with FluidSynth and the FluidR3_GM soundfont (MIT)"
)

QUARTET = (40, 40, 41, 42)  # violin, violin, viola, cello
ORGAN, CHOIR, BRASS, PIANO, FIDDLE, VIOLIN, FLUTE = 19, 52, 61, 0, 110, 40, 73
RECORDER, VOICE_OOHS, STRINGS, HARPSICHORD, CLARINET, OBOE = 74, 53, 48, 6, 71, 68
BANJO, ACCORDION, HARMONICA = 105, 21, 22

GM_NAMES = {
    0: "piano",
    6: "harpsichord",
    19: "church organ",
    21: "accordion",
    22: "harmonica",
    40: "violin",
    41: "viola",
    42: "cello",
    48: "string ensemble",
    52: "choir",
    53: "voice",
    61: "brass",
    68: "oboe",
    71: "clarinet",
    73: "flute",
    74: "recorder",
    105: "banjo",
    110: "fiddle",
}


@dataclass(frozen=True)
class Piece:
    """One corpus score and how to play it."""

    ref: str  # music21 corpus path, as corpus.parse takes it
    title: str
    composer: str
    album: str
    genre: str
    programs: tuple[int, ...]
    licence: str = "Public domain (composition); encoding from the music21 corpus"
    year: int | None = None
    tempo_scale: float = 1.0
    default_qpm: float = 100.0

    @property
    def slug(self) -> str:
        return self.ref.replace("/", "__").replace(" ", "_")


def _chorale(bwv: str, title: str, programs: tuple[int, ...], album: str) -> Piece:
    return Piece(
        f"bach/bwv{bwv}",
        f"Chorale BWV {bwv}: {title}",
        "Johann Sebastian Bach",
        album,
        "baroque chorale",
        programs,
        year=1730,
        tempo_scale=0.7,
        default_qpm=90,
    )


_ORGAN = "Bach Chorales on Organ (rendered)"
_CHOIR = "Bach Chorales for Choir (rendered)"
_BRASS = "Bach Chorales for Brass (rendered)"
_QUARTETS = "String Quartets (rendered)"
_PIANO = "Piano Pieces (rendered)"
_FIDDLE = "Ryan's Mammoth Collection: Fiddle Tunes (rendered)"
_VOCAL = "Renaissance and Trecento Vocal Music (rendered)"
_BAROQUE = "Baroque and Romantic Miscellany (rendered)"
_RYAN = "Public domain (Ryan's Mammoth Collection, Boston 1883); ABC from the music21 corpus"
_GPL_CONRAD = "GPL-2+ (ABC encoding (C) 1999 Laura E. Conrad); composition public domain"

PIECES: tuple[Piece, ...] = (
    _chorale("66.6", "Christ unser Herr zum Jordan kam", (ORGAN,), _ORGAN),
    _chorale("269", "Aus meines Herzens Grunde", (ORGAN,), _ORGAN),
    _chorale("347", "Ach Gott, wie manches Herzeleid", (ORGAN,), _ORGAN),
    _chorale("153.1", "Schau, lieber Gott, wie meine Feind", (ORGAN,), _ORGAN),
    _chorale("86.6", "Es ist das Heil uns kommen her", (ORGAN,), _ORGAN),
    _chorale("1.6", "Wie schön leuchtet der Morgenstern", (CHOIR,), _CHOIR),
    _chorale("10.7", "Meine Seel erhebt den Herren", (CHOIR,), _CHOIR),
    _chorale("101.7", "Vater unser im Himmelreich", (CHOIR,), _CHOIR),
    _chorale("140.7", "Wachet auf, ruft uns die Stimme", (CHOIR,), _CHOIR),
    _chorale("4.8", "Christ lag in Todesbanden", (CHOIR,), _CHOIR),
    _chorale("80.8", "Ein feste Burg ist unser Gott", (BRASS,), _BRASS),
    _chorale("227.11", "Jesu, meine Freude", (BRASS,), _BRASS),
    Piece(
        "haydn/opus74no1/movement1",
        "String Quartet Op. 74 No. 1: I. Allegro moderato",
        "Joseph Haydn",
        _QUARTETS,
        "classical string quartet",
        QUARTET,
        year=1793,
        default_qpm=120,
    ),
    Piece(
        "haydn/opus74no1/movement2",
        "String Quartet Op. 74 No. 1: II. Andantino grazioso",
        "Joseph Haydn",
        _QUARTETS,
        "classical string quartet",
        QUARTET,
        year=1793,
        default_qpm=76,
    ),
    Piece(
        "haydn/opus74no1/movement3",
        "String Quartet Op. 74 No. 1: III. Menuetto",
        "Joseph Haydn",
        _QUARTETS,
        "classical string quartet",
        QUARTET,
        year=1793,
        default_qpm=132,
    ),
    Piece(
        "haydn/opus74no1/movement4",
        "String Quartet Op. 74 No. 1: IV. Finale. Vivace",
        "Joseph Haydn",
        _QUARTETS,
        "classical string quartet",
        QUARTET,
        year=1793,
        default_qpm=150,
    ),
    Piece(
        "mozart/k80/movement1",
        "String Quartet No. 1, K. 80: I. Adagio",
        "Wolfgang Amadeus Mozart",
        _QUARTETS,
        "classical string quartet",
        QUARTET,
        year=1770,
        default_qpm=60,
    ),
    Piece(
        "mozart/k80/movement3",
        "String Quartet No. 1, K. 80: III. Menuetto",
        "Wolfgang Amadeus Mozart",
        _QUARTETS,
        "classical string quartet",
        QUARTET,
        year=1770,
        default_qpm=120,
    ),
    Piece(
        "mozart/k155/movement1",
        "String Quartet No. 2, K. 155: I. Allegro",
        "Wolfgang Amadeus Mozart",
        _QUARTETS,
        "classical string quartet",
        QUARTET,
        year=1772,
        default_qpm=132,
    ),
    Piece(
        "mozart/k458/movement1",
        "String Quartet No. 17 'The Hunt', K. 458: I. Allegro",
        "Wolfgang Amadeus Mozart",
        _QUARTETS,
        "classical string quartet",
        QUARTET,
        year=1784,
        default_qpm=160,
    ),
    Piece(
        "beethoven/opus18no3",
        "String Quartet Op. 18 No. 3: I. Allegro",
        "Ludwig van Beethoven",
        _QUARTETS,
        "classical string quartet",
        QUARTET,
        year=1798,
        default_qpm=132,
    ),
    Piece(
        "beethoven/opus59no1/movement1",
        "String Quartet Op. 59 No. 1: I. Allegro",
        "Ludwig van Beethoven",
        _QUARTETS,
        "classical string quartet",
        QUARTET,
        year=1806,
        default_qpm=120,
    ),
    Piece(
        "schumann_robert/opus41no1/movement1",
        "String Quartet Op. 41 No. 1: I. Introduzione",
        "Robert Schumann",
        _QUARTETS,
        "romantic string quartet",
        QUARTET,
        year=1842,
        default_qpm=72,
    ),
    Piece(
        "joplin/maple_leaf_rag",
        "Maple Leaf Rag",
        "Scott Joplin",
        _PIANO,
        "ragtime",
        (PIANO,),
        year=1899,
        default_qpm=92,
    ),
    Piece(
        "mozart/k545/movement1_exposition",
        "Piano Sonata No. 16, K. 545: I. Allegro",
        "Wolfgang Amadeus Mozart",
        _PIANO,
        "classical piano",
        (PIANO,),
        year=1788,
        default_qpm=132,
    ),
    Piece(
        "schumann_clara/polonaise_op1n1",
        "Polonaise Op. 1 No. 1",
        "Clara Schumann",
        _PIANO,
        "romantic piano",
        (PIANO,),
        year=1831,
        default_qpm=96,
    ),
    Piece(
        "schumann_clara/polonaise_op1n2",
        "Polonaise Op. 1 No. 2",
        "Clara Schumann",
        _PIANO,
        "romantic piano",
        (PIANO,),
        year=1831,
        default_qpm=96,
    ),
    Piece(
        "schumann_clara/polonaise_op1n3",
        "Polonaise Op. 1 No. 3",
        "Clara Schumann",
        _PIANO,
        "romantic piano",
        (PIANO,),
        year=1831,
        default_qpm=96,
    ),
    Piece(
        "beach/prayer_of_a_tired_child",
        "Prayer of a Tired Child, Op. 75 No. 4",
        "Amy Beach",
        _PIANO,
        "romantic piano",
        (PIANO,),
        year=1915,
        default_qpm=66,
        licence="CC BY-SA (engraving (C) 2017 Michael Scott Cuthbert); composition "
        "public domain (1915)",
    ),
    Piece(
        "cpebach/h186",
        "Sonata H. 186",
        "Carl Philipp Emanuel Bach",
        _PIANO,
        "baroque keyboard",
        (HARPSICHORD,),
        year=1760,
        default_qpm=100,
    ),
    Piece(
        "ryansMammoth/AcaciaReel",
        "Acacia Reel",
        "Traditional",
        _FIDDLE,
        "fiddle reel",
        (FIDDLE,),
        licence=_RYAN,
        year=1883,
        default_qpm=110,
    ),
    Piece(
        "ryansMammoth/AdmiralsHornpipe",
        "Admiral's Hornpipe",
        "Traditional",
        _FIDDLE,
        "fiddle hornpipe",
        (VIOLIN,),
        licence=_RYAN,
        year=1883,
        default_qpm=100,
    ),
    Piece(
        "ryansMammoth/HasteToTheWeddingJig",
        "Haste to the Wedding (Jig)",
        "Traditional",
        _FIDDLE,
        "fiddle jig",
        (FIDDLE,),
        licence=_RYAN,
        year=1883,
        default_qpm=110,
    ),
    Piece(
        "ryansMammoth/LottasFavoriteJig",
        "Lotta's Favorite Jig",
        "Traditional",
        _FIDDLE,
        "fiddle jig",
        (FLUTE,),
        licence=_RYAN,
        year=1883,
        default_qpm=110,
    ),
    Piece(
        "ryansMammoth/BonanzaHornpipe",
        "Bonanza Hornpipe",
        "Traditional",
        _FIDDLE,
        "fiddle hornpipe",
        (BANJO,),
        licence=_RYAN,
        year=1883,
        default_qpm=100,
    ),
    Piece(
        "ryansMammoth/42dHighlandRegimentStrathspey",
        "42d Highland Regiment Strathspey",
        "Traditional",
        _FIDDLE,
        "fiddle strathspey",
        (FIDDLE,),
        licence=_RYAN,
        year=1883,
        default_qpm=90,
    ),
    Piece(
        "ryansMammoth/FaganAndFentonsClog",
        "Fagan and Fenton's Clog",
        "Traditional",
        _FIDDLE,
        "fiddle clog",
        (ACCORDION,),
        licence=_RYAN,
        year=1883,
        default_qpm=100,
    ),
    Piece(
        "ryansMammoth/PaddyMilesFricasseeReel",
        "Paddy Miles' Fricassee Reel",
        "Traditional",
        _FIDDLE,
        "fiddle reel",
        (HARMONICA,),
        licence=_RYAN,
        year=1883,
        default_qpm=110,
    ),
    Piece(
        "josquin/milleRegrets",
        "Mille regretz",
        "Josquin des Prez",
        _VOCAL,
        "renaissance vocal",
        (CHOIR,),
        licence=_GPL_CONRAD,
        year=1520,
        default_qpm=80,
    ),
    Piece(
        "josquin/adieuMesAmours",
        "Adieu mes amours",
        "Josquin des Prez",
        _VOCAL,
        "renaissance vocal",
        (VOICE_OOHS,),
        licence=_GPL_CONRAD,
        year=1500,
        default_qpm=90,
    ),
    Piece(
        "josquin/laPlusDesPlus",
        "La plus des plus",
        "Josquin des Prez",
        _VOCAL,
        "renaissance vocal",
        (RECORDER,),
        licence=_GPL_CONRAD,
        year=1500,
        default_qpm=90,
    ),
    Piece(
        "josquin/petiteCamusette",
        "Petite camusette",
        "Josquin des Prez",
        _VOCAL,
        "renaissance vocal",
        (CHOIR,),
        licence=_GPL_CONRAD,
        year=1520,
        default_qpm=90,
    ),
    Piece(
        "luca/gloria",
        "Gloria (Q15)",
        "D. Luca",
        _VOCAL,
        "trecento vocal",
        (CHOIR,),
        licence="CC BY-SA 3.0 (encoding (C) 2010 Michael Scott Cuthbert)",
        year=1420,
        default_qpm=90,
    ),
    Piece(
        "monteverdi/madrigal.3.1",
        "La giovinetta pianta (Madrigals Book 3 No. 1)",
        "Claudio Monteverdi",
        _VOCAL,
        "renaissance madrigal",
        (CHOIR,),
        year=1592,
        default_qpm=90,
    ),
    Piece(
        "monteverdi/madrigal.4.1",
        "Madrigals Book 4 No. 1: Ah dolente partita",
        "Claudio Monteverdi",
        _VOCAL,
        "renaissance madrigal",
        (VOICE_OOHS,),
        year=1603,
        default_qpm=80,
    ),
    Piece(
        "trecento/PMFC_06_8-In Verde Prato",
        "In verde prato",
        "Jacopo da Bologna",
        _VOCAL,
        "trecento vocal",
        (RECORDER,),
        year=1350,
        default_qpm=90,
    ),
    Piece(
        "corelli/opus3no1/1grave",
        "Sonata da chiesa Op. 3 No. 1: Grave",
        "Arcangelo Corelli",
        _BAROQUE,
        "baroque trio sonata",
        (STRINGS,),
        year=1689,
        default_qpm=60,
        licence="CC BY (encoding (C) 2014); composition public domain",
    ),
    Piece(
        "handel/rinaldo/lascia_chio_pianga",
        "Lascia ch'io pianga (Rinaldo)",
        "George Frideric Handel",
        _BAROQUE,
        "baroque aria",
        (OBOE, STRINGS),
        year=1711,
        default_qpm=60,
    ),
    Piece(
        "weber/concertino_clarinet",
        "Clarinet Concertino, Op. 26",
        "Carl Maria von Weber",
        _BAROQUE,
        "romantic concertino",
        (CLARINET, PIANO),
        year=1811,
        default_qpm=80,
        licence="Public domain (encoding released to the public domain in 1998)",
    ),
    Piece(
        "schubert/Lindenbaum",
        "Der Lindenbaum (Winterreise)",
        "Franz Schubert",
        _BAROQUE,
        "romantic lied",
        (CLARINET, PIANO),
        year=1827,
        default_qpm=80,
    ),
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
    in turn), then the other pieces are rendered and ingested. ``note`` is the progress
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
                )
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
