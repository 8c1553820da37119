"""Real recordings to learn from: freely licensed soundtracks and songs packaged by Debian.

Rendered scores teach exact facts but do not sound like a person's library. These
packages hold about 24 hours of real, produced music in many styles (orchestral,
electronic, rock and metal, ambient, chiptune-like, world) under free licences.
They are fetched with ``apt-get download`` and unpacked with ``dpkg -x`` into a
cache folder (never installed, nothing committed); each track keeps its package,
licence and source so ``training.extract`` can record them.

Split by package, never by track: the dev set is whole packages the model never
trains on (Frets on Fire's songs, Nexuiz's soundtrack), so dev numbers measure music
from unseen artists, as a person's library would be. Dev labels come from facts
that need no listening: the files' own genre tags and the packages' descriptions.

Run: ``musicbert real-corpus --out ~/.cache/musicbert-train/real``.
"""

from __future__ import annotations

import json
import re
import subprocess
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

from musicbert.errors import MusicBertError

MIN_SECONDS = 8.0  # shorter files are sound effects or one-shot samples


class RealCorpusError(MusicBertError):
    """The real-music corpus could not be fetched or read."""


@dataclass(frozen=True)
class Package:
    """Where a package keeps its music and what its description says of it."""

    game: str  # what the music was written for, as the package says
    split: str  # "train" or "dev"
    style: str = ""  # the style the package's description or tags state, if any
    archives: tuple[str, ...] = ()  # zip archives (Quake-style .pk3) holding the music


PACKAGES: dict[str, Package] = {
    "hedgewars-data": Package("the Hedgewars game", "train"),
    "ufoai-music": Package("the UFO: Alien Invasion game", "train", archives=("0music.pk3",)),
    "hyperrogue-music": Package("the HyperRogue game", "train"),
    "warzone2100-music": Package("the Warzone 2100 game", "train"),
    "planetblupi-music-ogg": Package("the Planet Blupi game", "train"),
    "supertuxkart-data": Package("the SuperTuxKart racing game", "train"),
    "drascula-music": Package("the Drascula adventure game", "train"),
    "asc-music": Package("the Advanced Strategic Command game", "train"),
    "boswars-data": Package("the Bos Wars game", "train"),
    "singularity-music": Package("the Endgame: Singularity game", "train"),
    "sonic-pi-samples": Package("Sonic Pi's sample pack", "train"),
    "lmms-common": Package("LMMS's sample pack", "train"),
    "fretsonfire-songs-muldjord": Package("the Frets on Fire guitar game", "dev", "metal"),
    "fretsonfire-songs-sectoid": Package("the Frets on Fire guitar game", "dev", "metal"),
    "nexuiz-music": Package("the Nexuiz game", "dev", "electronic", archives=("music.pk3",)),
}

#: the genres the dev set can vouch for (files' own tags, package descriptions)
DEV_GENRES = ("classical", "electronic", "jazz", "metal")
AUDIO_SUFFIXES = {".ogg", ".flac", ".wav", ".mp3", ".opus"}
# genre tags that say where music was used, not what it sounds like
_NOT_A_GENRE = {"", "game", "game music", "soundtrack", "other", "(none)", "sound fx", "music"}


@dataclass
class RealTrack:
    """One piece of real music: its files (stems summed), where it came from, what is known."""

    track_id: str
    paths: list[str]  # one file, or the stems of one song (Frets on Fire)
    package: str
    split: str
    title: str
    artist: str | None
    genre: str | None  # from the file's own tag, or the package's stated style
    licence: str
    source: str
    duration: float


def fetch(out_dir: Path, packages: list[str] | None = None) -> Path:
    """Download and unpack ``packages`` (default: all) under ``out_dir/pkgs``; idempotent."""
    names = packages or list(PACKAGES)
    debs, pkgs = out_dir / "debs", out_dir / "pkgs"
    debs.mkdir(parents=True, exist_ok=True)
    pkgs.mkdir(parents=True, exist_ok=True)
    missing = [n for n in names if not list(debs.glob(f"{n}_*.deb"))]
    if missing:
        try:
            subprocess.run(["apt-get", "download", *missing], cwd=debs, check=True)
        except (OSError, subprocess.CalledProcessError) as exc:
            raise RealCorpusError(
                f"apt-get download {' '.join(missing)} failed ({exc}); run `apt-get update` "
                "first, or fetch the packages elsewhere into " + str(debs)
            ) from exc
    for name in names:
        target = pkgs / name
        if (target / ".unpacked").is_file():
            continue
        (deb,) = sorted(debs.glob(f"{name}_*.deb"))[-1:]
        subprocess.run(["dpkg", "-x", str(deb), str(target)], check=True)
        for archive in PACKAGES[name].archives:
            for found in target.rglob(archive):
                with zipfile.ZipFile(found) as z:
                    members = [m for m in z.namelist() if Path(m).suffix.lower() in AUDIO_SUFFIXES]
                    z.extractall(target / "unzipped", members)
        (target / ".unpacked").touch()
    return pkgs


def licence_of(package_dir: Path, name: str) -> str:
    """The first licence the package's Debian copyright file names (DEP-5 or free text)."""
    copyright_file = package_dir / "usr/share/doc" / name / "copyright"
    try:
        text = copyright_file.read_text(errors="replace")
    except OSError:
        return "unknown (no copyright file)"
    for line in text.splitlines():
        if line.startswith("License:") and line.split(":", 1)[1].strip():
            return line.split(":", 1)[1].strip()
    match = re.search(r"(GNU General Public License|GPL|Creative Commons|CC-BY[-\w.]*)", text)
    return match.group(1) if match else "see " + str(copyright_file)


def _title(path: Path, tags) -> str:
    for key in ("title", "TITLE"):
        if tags is not None and key in tags and str(tags[key][0]).strip():
            return str(tags[key][0]).strip()
    stem = path.parent.name if path.stem in ("song", "guitar", "rhythm") else path.stem
    stem = re.sub(r"^(hr3-|\d+[-_ .]+)", "", stem)
    return " ".join(re.sub(r"[-_]+", " ", stem).split()).strip() or path.stem


def _tag(tags, *keys: str) -> str | None:
    for key in keys:
        if tags is not None and key in tags and str(tags[key][0]).strip():
            return str(tags[key][0]).strip()
    return None


def inventory(pkgs_dir: Path, min_seconds: float = MIN_SECONDS) -> list[RealTrack]:
    """Every track of the unpacked packages, longest-first within a package, ids stable."""
    import mutagen

    tracks: list[RealTrack] = []
    for name, pkg in PACKAGES.items():
        root = pkgs_dir / name
        if not root.is_dir():
            continue
        licence = licence_of(root, name)
        groups: dict[Path, list[Path]] = {}
        for path in sorted(root.rglob("*")):
            if path.suffix.lower() not in AUDIO_SUFFIXES or not path.is_file():
                continue
            if name == "hedgewars-data" and "/Music/" not in str(path):
                continue  # the rest are sound effects
            if name.startswith("fretsonfire") and path.stem in ("song", "guitar", "rhythm"):
                groups.setdefault(path.parent, []).append(path)  # stems of one song
            else:
                groups[path] = [path]
        for key, paths in groups.items():
            try:
                info = mutagen.File(paths[0])
            except Exception:  # a file mutagen cannot parse is not worth training on
                continue
            if info is None or info.info.length < min_seconds:
                continue
            tags = info.tags
            file_genre = (_tag(tags, "genre", "GENRE") or "").strip()
            genre = None if file_genre.lower() in _NOT_A_GENRE else file_genre
            rel = key.relative_to(root)
            track_id = name + "/" + re.sub(r"[^\w]+", "_", str(rel.with_suffix("")))
            tracks.append(
                RealTrack(
                    track_id=track_id,
                    paths=[str(p) for p in paths],
                    package=name,
                    split=pkg.split,
                    title=_title(paths[0], tags),
                    artist=_tag(tags, "artist", "ARTIST"),
                    genre=genre or pkg.style or None,
                    licence=licence,
                    source=f"Debian package {name}, music of {pkg.game}",
                    duration=float(info.info.length),
                )
            )
    return tracks


def describe_metadata(track: RealTrack) -> str:
    """What the files and package say of a track, as a sentence (no model's guesses)."""
    text = f"{track.title}"
    if track.artist:
        text += f" by {track.artist}"
    text += f", music from {PACKAGES[track.package].game}"
    if track.genre:
        text += f"; {track.genre.lower()}"
    return text


def dev_pool(cache) -> list[int]:
    """One clip (its second, if it has several) of each dev/test track: the dev searches' pool.

    One clip per track, so that a long track does not count six times.
    """
    chosen: dict[str, tuple[int, int]] = {}  # track -> (distance from segment 1, item index)
    for i, item in enumerate(cache.items):
        if item.split not in ("dev", "test"):
            continue
        track = item.labels.get("track", item.item_id)
        segment = abs(int(item.labels.get("segment", 0)) - 1)
        if track not in chosen or segment < chosen[track][0]:
            chosen[track] = (segment, i)
    return sorted(i for _segment, i in chosen.values())


def dev_labels(cache) -> dict[int, str]:
    """item index -> genre, for the pool's clips whose genre is a fact (``DEV_GENRES``).

    Facts: a real-corpus track's file tag or package description; the held-out Wesnoth
    half's own genre tag ("Romantic Classical"); the words of a ``../shared`` recording's
    licence note ("Jazz Sampler", "Classical Sampler").
    """
    import mutagen

    from musicbert.vocabulary import tags_in
    from training.extract import _file_item_id, recordings

    said: dict[str, str] = {}
    for path, _title, split in recordings():
        if split != "test":
            continue
        note = path.with_suffix(".txt")
        try:
            if note.is_file():
                said[_file_item_id("rec_", path)] = note.read_text(errors="replace")
            else:
                said[_file_item_id("rec_", path)] = str(mutagen.File(path).tags["genre"][0])
        except (KeyError, TypeError, AttributeError, mutagen.MutagenError):
            continue
    labels = {}
    for i in dev_pool(cache):
        item = cache.items[i]
        named = tags_in(item.labels.get("genre") or said.get(item.item_id) or "")
        found = [g for g in DEV_GENRES if g in named]
        if len(found) == 1:
            labels[i] = found[0]
    return labels


def write_listing(tracks: list[RealTrack], path: Path) -> Path:
    path.write_text("".join(json.dumps(asdict(t)) + "\n" for t in tracks))
    return path


def read_listing(path: Path) -> list[RealTrack]:
    if not path.is_file():
        raise RealCorpusError(f"{path}: no real-music listing; run musicbert real-corpus")
    return [RealTrack(**json.loads(line)) for line in path.read_text().splitlines() if line]


def build_listing(out_dir: Path, packages: list[str] | None = None) -> tuple[list[RealTrack], Path]:
    """Fetch and unpack ``packages`` (default: all) under ``out_dir``, list their tracks
    and write ``out_dir/tracks.jsonl``; returns (tracks, listing path)."""
    tracks = inventory(fetch(out_dir, packages))
    return tracks, write_listing(tracks, out_dir / "tracks.jsonl")
