"""A small library written through the ORM, shared by the query, stats and PostgreSQL tests."""

from __future__ import annotations

from catalog.db import Catalog
from catalog.models import AudioFeatures, Embedding, PlayHistory, Playlist, PlaylistItem, Tag, Track
from catalog.queries import get_or_create_album, get_or_create_artist

#: title, artist, album, track number, seconds, licence, source, attribution, tags
SAMPLE = [
    ("Halo", "Beyoncé", "I Am... Sasha Fierce", 2, 261.0, None, None, None, ["pop"]),
    ("Hello", "Adele", "25", 1, 295.0, None, None, None, ["pop", "soul"]),
    ("Svefn-g-englar", "Sigur Rós", "Ágætis byrjun", 2, 600.0, "CC BY 3.0", "web", "Sigur Rós",
     ["post-rock", "calm"]),
    ("Moonlight Sonata, Op. 27 No. 2", "Ludwig van Beethoven", "Piano Sonatas", 14, 900.0,
     "public domain", "music21 corpus", "rendered with FluidSynth", ["classical", "piano"]),
    ("Für Elise", "Ludwig van Beethoven", "Piano Sonatas", 1, 180.0, "public domain",
     "music21 corpus", "rendered with FluidSynth", ["classical", "piano"]),
    ("Hells Bells", "AC/DC", "Back in Black", 1, 312.0, None, None, None, ["rock"]),
    ("Back in Black", "AC/DC", "Back in Black", 6, 255.0, None, None, None, ["rock"]),
    ("Tape One", None, "Mixtape", 1, 30.0, "CC0", "my recorder", None, []),
]  # fmt: skip


def fill_sample(catalog: Catalog) -> dict[str, int]:
    """Add SAMPLE (plus features, an embedding, a playlist and a play); title -> track id."""
    ids: dict[str, int] = {}
    with catalog.session() as session:
        for n, (
            title,
            artist_name,
            album_title,
            number,
            seconds,
            lic,
            src,
            attr,
            tags,
        ) in enumerate(SAMPLE):
            artist = get_or_create_artist(session, artist_name)
            album = get_or_create_album(session, album_title, artist, 2000 + n)
            track = Track(
                path=f"/music/{n:02d} {title}.ogg",
                content_hash=f"{n:064x}",
                title=title,
                artist=artist,
                album=album,
                track_number=number,
                duration=seconds,
                licence=lic,
                source=src,
                attribution=attr,
            )
            for tag in tags:
                kind = "mood" if tag == "calm" else "instrument" if tag == "piano" else "genre"
                track.tags.append(Tag(name=tag, kind=kind, origin="file"))
            session.add(track)
            session.flush()
            ids[title] = track.id
        halo = session.get(Track, ids["Halo"])
        halo.tags.append(Tag(name="pop", kind="genre", origin="model", confidence=0.8))
        halo.features = AudioFeatures(tempo=80.0, key="B", mode="major")
        halo.embeddings.append(Embedding(model_id="test-model", dim=2, vector=b"\x00" * 8))
        playlist = Playlist(name="evening")
        playlist.items.append(PlaylistItem(track_id=ids["Hello"], position=0))
        session.add_all([playlist, PlayHistory(track_id=ids["Halo"], source="cli")])
    return ids
