"""Reading a file's own metadata with mutagen, with the file name as the fallback.

mutagen's "easy" interfaces give one dict-of-lists view over Vorbis comments (Ogg,
Opus, FLAC) and ID3 (MP3, WAV); a few extra keys (licence, source, attribution,
score reference, instrument) are mapped to ID3 TXXX frames so that files we write
ourselves (the demo renders) and files from elsewhere read the same way. A file
without tags, or with tags mutagen cannot parse, still gets a title (and maybe an
artist and track number) from its name: "01 - Artist - Title.mp3".
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import mutagen
from mutagen.easyid3 import EasyID3

# Extra keys for ID3, stored as TXXX frames (Vorbis comments take any key as-is).
_EXTRA_ID3 = {
    "license": "LICENSE",
    "source": "SOURCE",
    "attribution": "ATTRIBUTION",
    "score_ref": "SCORE_REF",
    "instrument": "INSTRUMENT",
    "description": "DESCRIPTION",
    "comment": "COMMENT",
}
for _key, _desc in _EXTRA_ID3.items():
    if _key not in EasyID3.valid_keys:
        EasyID3.RegisterTXXXKey(_key, _desc)


@dataclass
class FileTags:
    """Metadata for one file; ``from_filename`` says which fields were guessed from its name."""

    title: str
    artist: str | None = None
    album: str | None = None
    album_artist: str | None = None
    composer: str | None = None
    year: int | None = None
    track_number: int | None = None
    genres: list[str] = field(default_factory=list)
    licence: str | None = None
    copyright: str | None = None
    source: str | None = None
    attribution: str | None = None
    score_ref: str | None = None
    instruments: list[str] = field(default_factory=list)
    #: (name, kind) labels beyond genre/instrument, e.g. ("key: D minor", "other").
    labels: list[tuple[str, str]] = field(default_factory=list)
    from_filename: bool = False


def display_name(path: str | os.PathLike) -> str:
    """A printable, storable version of a file name (undecodable bytes become U+FFFD)."""
    raw = os.fsencode(os.fspath(path))
    return os.path.basename(raw).decode("utf-8", errors="replace")


def _first(tags, *keys: str) -> str | None:
    for key in keys:
        try:
            values = tags.get(key)
        except (KeyError, ValueError):
            values = None
        if not values:
            continue
        for value in values if isinstance(values, list) else [values]:
            text = _clean(str(value))
            if text:
                return text
    return None


def _all(tags, key: str) -> list[str]:
    try:
        values = tags.get(key) or []
    except (KeyError, ValueError):
        return []
    out: list[str] = []
    for value in values if isinstance(values, list) else [values]:
        for part in re.split(r"[;/\x00]", str(value)):
            text = _clean(part)
            if text and text not in out:
                out.append(text)
    return out


def _clean(text: str) -> str:
    text = text.replace("\x00", " ").strip()
    # Tags can carry lone surrogates from bad encodings: make them storable.
    text = text.encode("utf-8", errors="replace").decode("utf-8")
    return text[:500]


def _int_prefix(text: str | None) -> int | None:
    if not text:
        return None
    match = re.match(r"\s*(\d{1,4})", text)
    return int(match.group(1)) if match else None


def _year(text: str | None) -> int | None:
    if not text:
        return None
    match = re.search(r"(1[0-9]{3}|20[0-9]{2})", text)
    return int(match.group(1)) if match else None


def _prettify(stem: str) -> str:
    text = re.sub(r"[_]+", " ", stem)
    if " " not in text.strip():
        text = text.replace("-", " ")
    text = re.sub(r"\s+", " ", text).strip()
    if text and (text.islower() or text.isupper()):
        text = " ".join(w[:1].upper() + w[1:].lower() for w in text.split(" "))
    return text


def tags_from_filename(path: str | os.PathLike) -> FileTags:
    """Guess title, artist and track number from a name like '03 - Artist - Title.ogg'."""
    stem = os.path.splitext(display_name(path))[0].strip()
    track_number = None
    match = re.match(r"^(\d{1,3})\s*(?:[-._)]\s*|\s+)(.+)$", stem)
    if match and not re.match(r"^\d{1,3}\s*-\s*\d", stem):
        track_number, stem = int(match.group(1)), match.group(2).strip()
    artist = None
    parts = [p.strip() for p in re.split(r"\s+[-\u2013\u2014]\s+", stem) if p.strip()]
    if len(parts) >= 2:
        artist, stem = parts[0], " - ".join(parts[1:])
    title = _prettify(stem) or display_name(path) or "Untitled"
    return FileTags(
        title=title[:500],
        artist=artist,
        track_number=track_number,
        from_filename=True,
    )


def read_tags(path: str | os.PathLike) -> FileTags:
    """The file's tags, completed from its name; never raises for a bad or untagged file."""
    fallback = tags_from_filename(path)
    try:
        audio = mutagen.File(os.fsencode(os.fspath(path)), easy=True)
    except Exception:  # mutagen raises many types for damaged headers; the name still works
        audio = None
    tags = getattr(audio, "tags", None) if audio is not None else None
    if not tags:
        return fallback
    if not hasattr(tags, "get"):
        return fallback
    title = _first(tags, "title")
    licence = _first(tags, "license", "licence", "copyright_url")
    genres = _all(tags, "genre")
    result = FileTags(
        title=title or fallback.title,
        artist=_first(tags, "artist", "albumartist", "performer") or fallback.artist,
        album=_first(tags, "album"),
        album_artist=_first(tags, "albumartist"),
        composer=_first(tags, "composer"),
        year=_year(_first(tags, "date", "year", "originaldate")),
        track_number=_int_prefix(_first(tags, "tracknumber")) or fallback.track_number,
        genres=genres,
        licence=licence,
        copyright=_first(tags, "copyright"),
        source=_first(tags, "source", "website", "contact"),
        attribution=_first(tags, "attribution"),
        score_ref=_first(tags, "score_ref"),
        instruments=_all(tags, "instrument"),
        from_filename=title is None,
    )
    for key, label in (("key", "key"), ("tempo", "tempo"), ("bpm", "tempo")):
        value = _first(tags, key)
        if value:
            text = f"{label}: {value}" + (" bpm" if label == "tempo" and value.isdigit() else "")
            result.labels.append((text, "other"))
    return result


def write_tags(path: Path, values: dict[str, str | list[str]]) -> None:
    """Write Vorbis-comment style tags (FLAC/Ogg) or easy ID3 (MP3); used for demo renders."""
    audio = mutagen.File(os.fsencode(os.fspath(path)), easy=True)
    if audio is None:
        raise ValueError(f"{display_name(path)}: mutagen cannot tag this file type")
    if audio.tags is None:
        audio.add_tags()
    for key, value in values.items():
        if value is None or value == "" or value == []:
            continue
        audio[key] = value if isinstance(value, list) else [str(value)]
    audio.save()
