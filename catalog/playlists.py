"""Playlists: kept in the catalog, written out as M3U8 or XSPF, read back in.

In the catalog a playlist is a named, ordered list of tracks (``Playlist``,
``PlaylistItem``). ``export_playlist`` writes one as

* M3U8 (UTF-8 extended M3U): ``#EXTM3U``, then per track ``#EXTINF:<seconds>,<artist> -
  <title>`` and its path, relative to the playlist file's folder (default) or absolute;
* XSPF 1 (``http://xspf.org/ns/0/``): ``<trackList>`` of ``<track>`` with ``<location>``
  (a ``file://`` URI, or a relative URI), ``<title>``, ``<creator>``, ``<album>`` and
  ``<duration>`` in milliseconds;

files that VLC, mpv, Navidrome and most players read. ``import_playlist`` reads either
back: each entry is matched to a catalog track by path (absolute, or relative to the
playlist file), then by artist and title (folded case and accents), and what matched
nothing is reported, never guessed.
"""

from __future__ import annotations

import os
import urllib.parse
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import delete, func, select

from catalog.models import Playlist, PlaylistItem, Track
from catalog.names import clean_name, fold
from musicbert.errors import MusicBertError, NotFoundError

XSPF_NS = "http://xspf.org/ns/0/"
FORMATS = ("m3u8", "xspf")


class PlaylistFileError(MusicBertError):
    """A playlist file that cannot be read or written."""


@dataclass
class PlaylistEntry:
    """One track of a playlist, as written to (or read from) a file."""

    track_id: int | None
    path: str
    title: str | None = None
    artist: str | None = None
    album: str | None = None
    duration: float | None = None


@dataclass
class PlaylistInfo:
    name: str
    tracks: int
    seconds: float


@dataclass
class ImportResult:
    name: str
    matched: list[int] = field(default_factory=list)  # track ids, in file order
    unmatched: list[str] = field(default_factory=list)  # entries as written in the file
    by_path: int = 0
    by_name: int = 0
    created: bool = False


# --------------------------------------------------------------------------- the catalog


#: The width of ``playlists.name`` (PostgreSQL refuses longer text; SQLite would keep it).
MAX_PLAYLIST_NAME = 256


def playlist_name(name: str) -> str:
    """A playlist's name as stored: ``clean_name`` (no NUL, which PostgreSQL cannot store;
    single spaces), cut to the column's width."""
    return clean_name(name)[:MAX_PLAYLIST_NAME].strip()


def find_playlist(session, name: str) -> Playlist | None:
    """The playlist called ``name``, case folded (as it would be stored)."""
    wanted = playlist_name(name).casefold()
    for pl in session.scalars(select(Playlist)).all():
        if pl.name.casefold() == wanted or playlist_name(pl.name).casefold() == wanted:
            return pl
    return None


def list_playlists(catalog) -> list[PlaylistInfo]:
    with catalog.session() as s:
        rows = s.execute(
            select(Playlist.name, func.count(PlaylistItem.id), func.sum(Track.duration))
            .outerjoin(PlaylistItem, PlaylistItem.playlist_id == Playlist.id)
            .outerjoin(Track, Track.id == PlaylistItem.track_id)
            .group_by(Playlist.id)
            .order_by(Playlist.name)
        ).all()
    return [PlaylistInfo(n, int(c or 0), float(d or 0.0)) for n, c, d in rows]


def playlist_entries(catalog, name: str) -> tuple[str, list[PlaylistEntry]]:
    """(the playlist's own name, its tracks in order); NotFoundError names the others."""
    with catalog.session() as s:
        pl = find_playlist(s, name)
        if pl is None:
            names = list(s.scalars(select(Playlist.name).order_by(Playlist.name)))
            have = f"; playlists: {', '.join(names)}" if names else "; there are no playlists"
            raise NotFoundError(f"no playlist called {name!r}{have}")
        entries = []
        for item in pl.items:
            t = item.track
            entries.append(
                PlaylistEntry(
                    t.id,
                    t.path,
                    t.title,
                    t.artist.name if t.artist else None,
                    t.album.title if t.album else None,
                    float(t.duration) if t.duration else None,
                )
            )
        return pl.name, entries


def add_tracks(catalog, name: str, track_ids: list[int]) -> tuple[str, list[int], int, bool]:
    """Append tracks not already in the playlist (made when missing).

    Returns (the playlist's name, ids added, tracks in it now, whether it was created).
    """
    created = False
    with catalog.session() as s:
        pl = find_playlist(s, name)
        if pl is None:
            pl = Playlist(name=playlist_name(name))
            s.add(pl)
            s.flush()
            created = True
        have = {i.track_id for i in pl.items}
        start = s.scalar(
            select(func.coalesce(func.max(PlaylistItem.position), 0)).where(
                PlaylistItem.playlist_id == pl.id
            )
        )
        added = [i for i in dict.fromkeys(track_ids) if i not in have]
        for n, tid in enumerate(added, 1):
            s.add(PlaylistItem(playlist_id=pl.id, track_id=tid, position=start + n))
        return pl.name, added, len(have) + len(added), created


def replace_tracks(catalog, name: str, track_ids: list[int]) -> tuple[str, bool]:
    """Make the playlist hold exactly ``track_ids`` (made when missing)."""
    with catalog.session() as s:
        pl = find_playlist(s, name)
        created = pl is None
        if created:
            pl = Playlist(name=playlist_name(name))
            s.add(pl)
            s.flush()
        s.execute(delete(PlaylistItem).where(PlaylistItem.playlist_id == pl.id))
        for n, tid in enumerate(dict.fromkeys(track_ids), 1):
            s.add(PlaylistItem(playlist_id=pl.id, track_id=tid, position=n))
        return pl.name, created


# --------------------------------------------------------------------------- files out


def _uri(path: Path) -> str:
    return path.resolve().as_uri()


def _file_path(track_path: str, out_dir: Path, relative: bool) -> str:
    p = Path(track_path)
    if relative:
        try:
            return Path(os.path.relpath(p.resolve(), out_dir.resolve())).as_posix()
        except ValueError:  # another drive (Windows): absolute is all there is
            return str(p.resolve())
    return str(p.resolve())


def m3u8_text(name: str, entries: list[PlaylistEntry], out_dir: Path, relative: bool) -> str:
    lines = ["#EXTM3U", f"#PLAYLIST:{_one_line(name)}"]
    for e in entries:
        shown = " - ".join(x for x in (e.artist, e.title) if x) or Path(e.path).stem
        seconds = round(e.duration) if e.duration else -1
        lines.append(f"#EXTINF:{seconds},{_one_line(shown)}")
        lines.append(_file_path(e.path, out_dir, relative))
    return "\n".join(lines) + "\n"


def xspf_text(name: str, entries: list[PlaylistEntry], out_dir: Path, relative: bool) -> str:
    ET.register_namespace("", XSPF_NS)
    root = ET.Element(f"{{{XSPF_NS}}}playlist", version="1")
    ET.SubElement(root, f"{{{XSPF_NS}}}title").text = name
    tracks = ET.SubElement(root, f"{{{XSPF_NS}}}trackList")
    for e in entries:
        t = ET.SubElement(tracks, f"{{{XSPF_NS}}}track")
        where = _file_path(e.path, out_dir, relative)
        loc = urllib.parse.quote(where) if relative else _uri(Path(e.path))
        ET.SubElement(t, f"{{{XSPF_NS}}}location").text = loc
        for tag, value in (("title", e.title), ("creator", e.artist), ("album", e.album)):
            if value:
                ET.SubElement(t, f"{{{XSPF_NS}}}{tag}").text = value
        if e.duration:
            ET.SubElement(t, f"{{{XSPF_NS}}}duration").text = str(round(e.duration * 1000))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, "unicode") + "\n"


def export_playlist(
    catalog, name: str, out: str | Path, fmt: str | None = None, relative: bool = True
) -> tuple[Path, int]:
    """Write the playlist to ``out`` (a file, or a folder to name it in); (path, tracks)."""
    out = Path(out)
    title, entries = playlist_entries(catalog, name)
    if out.is_dir() or (not out.suffix and fmt):
        fmt = fmt or "m3u8"
        out = out / f"{_file_name(title)}.{fmt}"
    fmt = (fmt or out.suffix.lstrip(".")).lower()
    if fmt == "m3u":
        fmt = "m3u8"
    if fmt not in FORMATS:
        raise PlaylistFileError(f"unknown playlist format {fmt!r}: use .m3u8 or .xspf")
    out.parent.mkdir(parents=True, exist_ok=True)
    write = m3u8_text if fmt == "m3u8" else xspf_text
    try:
        out.write_text(write(title, entries, out.parent, relative), encoding="utf-8")
    except OSError as exc:
        raise PlaylistFileError(f"cannot write {out}: {exc.strerror or exc}") from exc
    return out, len(entries)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _file_name(name: str) -> str:
    keep = "".join(c if c.isalnum() or c in " -_" else "_" for c in name).strip()
    return "-".join(keep.split()) or "playlist"


# --------------------------------------------------------------------------- files in


def read_playlist_file(path: str | Path) -> tuple[str | None, list[PlaylistEntry]]:
    """(title if the file has one, entries) of an M3U/M3U8 or XSPF file."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PlaylistFileError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if path.suffix.lower() == ".xspf" or raw.lstrip().startswith(b"<"):
        return _read_xspf(raw, path)
    return _read_m3u(raw.decode("utf-8-sig", errors="replace"), path)


def _read_m3u(text: str, path: Path) -> tuple[str | None, list[PlaylistEntry]]:
    title = None
    entries = []
    info: tuple[float | None, str | None] = (None, None)
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if line.startswith("#PLAYLIST:"):
            title = line.split(":", 1)[1].strip() or None
        elif line.startswith("#EXTINF:"):
            head, _, shown = line[len("#EXTINF:") :].partition(",")
            try:
                seconds = float(head.split()[0]) if head.split() else None
            except ValueError:
                seconds = None
            info = (seconds if seconds and seconds > 0 else None, shown.strip() or None)
        elif not line.startswith("#"):
            artist, title_of = _split_shown(info[1])
            where = _local_path(line, path.parent)
            entries.append(PlaylistEntry(None, where, title_of, artist, None, info[0]))
            info = (None, None)
    return title, entries


def _read_xspf(raw: bytes, path: Path) -> tuple[str | None, list[PlaylistEntry]]:
    try:
        root = ET.fromstring(raw)
    except ET.ParseError as exc:
        raise PlaylistFileError(f"{path} is not valid XSPF: {exc}") from exc
    ns = {"x": XSPF_NS}
    if root.tag != f"{{{XSPF_NS}}}playlist":
        raise PlaylistFileError(f"{path} is not an XSPF playlist (root {root.tag!r})")
    title = root.findtext("x:title", default=None, namespaces=ns)
    entries = []
    for t in root.findall("x:trackList/x:track", ns):
        loc = (t.findtext("x:location", default="", namespaces=ns) or "").strip()
        ms = t.findtext("x:duration", default=None, namespaces=ns)
        entries.append(
            PlaylistEntry(
                None,
                _local_path(loc, path.parent) if loc else "",
                t.findtext("x:title", default=None, namespaces=ns),
                t.findtext("x:creator", default=None, namespaces=ns),
                t.findtext("x:album", default=None, namespaces=ns),
                float(ms) / 1000 if ms and ms.strip().isdigit() else None,
            )
        )
    return title, entries


def _split_shown(shown: str | None) -> tuple[str | None, str | None]:
    """ "Artist - Title" -> (artist, title); a bare title -> (None, title)."""
    if not shown:
        return None, None
    artist, sep, title = shown.partition(" - ")
    return (artist.strip(), title.strip()) if sep else (None, shown.strip())


def _local_path(location: str, base: Path) -> str:
    """A file path from an M3U line or an XSPF location (file URI, relative URI or path)."""
    if location.startswith("file:"):
        parsed = urllib.parse.urlparse(location)
        return urllib.parse.unquote(parsed.path)
    if "://" in location:
        return location  # a stream: kept as written, matched by name only
    if "%" in location:
        location = urllib.parse.unquote(location)
    p = Path(location)
    return str(p if p.is_absolute() else (base / p))


def match_entries(catalog, entries: list[PlaylistEntry]) -> tuple[list[PlaylistEntry], int, int]:
    """Fill each entry's ``track_id``: by path first, then by artist and title.

    Returns (entries, matched by path, matched by name); unmatched ones keep ``None``.
    """
    from catalog.models import Artist

    with catalog.session() as s:
        rows = s.execute(
            select(Track.id, Track.path, Track.title, Artist.name).outerjoin(
                Artist, Track.artist_id == Artist.id
            )
        ).all()
    by_path: dict[str, int] = {}
    for tid, p, _, _ in rows:
        by_path[p] = tid
        by_path.setdefault(os.path.realpath(p), tid)
    by_name: dict[tuple[str, str], int] = {}
    by_title: dict[str, list[int]] = {}
    for tid, _, title, artist in rows:
        by_name.setdefault((fold(artist or ""), fold(title or "")), tid)
        by_title.setdefault(fold(title or ""), []).append(tid)
    n_path = n_name = 0
    for e in entries:
        tid = by_path.get(e.path) or (by_path.get(os.path.realpath(e.path)) if e.path else None)
        if tid is not None:
            n_path += 1
        elif e.title:
            tid = by_name.get((fold(e.artist or ""), fold(e.title or "")))
            if tid is None and not e.artist and len(by_title.get(fold(e.title or ""), [])) == 1:
                tid = by_title[fold(e.title or "")][0]  # a bare title only when it is unique
            if tid is None and e.path:  # "Artist - Title" lines may be only the file name
                stem = fold(Path(e.path).stem)
                if len(by_title.get(stem, [])) == 1:
                    tid = by_title[stem][0]
            n_name += tid is not None
        e.track_id = tid
    return entries, n_path, n_name


def import_playlist(
    catalog, path: str | Path, name: str | None = None, replace: bool = False
) -> ImportResult:
    """Read a playlist file into the catalog under ``name`` (default: its title or file name).

    Adds the matched tracks (all of them in file order with ``replace``); the result
    lists each entry that matched nothing.
    """
    path = Path(path)
    title, entries = read_playlist_file(path)
    name = (name or title or path.stem).strip()
    entries, n_path, n_name = match_entries(catalog, entries)
    ids = [e.track_id for e in entries if e.track_id is not None]
    unmatched = [
        " - ".join(x for x in (e.artist, e.title) if x) or e.path
        for e in entries
        if e.track_id is None
    ]
    if replace:
        name, created = replace_tracks(catalog, name, ids)
    else:
        name, _added, _total, created = add_tracks(catalog, name, ids)
    return ImportResult(name, ids, unmatched, n_path, n_name, created)
