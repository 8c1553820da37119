"""The demo library's names without its audio: a catalog for benchmarks/voice.py in seconds.

Building the real demo library takes about 16 minutes (rendering, analysis,
embedding). The voice benchmark needs its names (artists, titles, albums as
the files' tags and catalog.demo give them) and a search that answers; each
track's vector is the embedder's text embedding of "title by artist".
Used when ``benchmarks/voice.py`` is run without ``--db``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def demo_names() -> list[tuple[str, str, str]]:
    """(title, artist, album) of every demo-library track, as the demo build names them."""
    from catalog.demo import SINGULARITY_DIR, WESNOTH_DIR, _package_overrides
    from catalog.demo_pieces import PIECES
    from catalog.tags import read_tags

    out = []
    for folder in (WESNOTH_DIR, SINGULARITY_DIR):
        for path in sorted(Path(folder).glob("*.ogg")):
            tags = read_tags(path)
            extra = _package_overrides(str(path)) or {}
            artist = tags.artist or tags.composer or extra.get("artist") or "Unknown"
            album = tags.album or extra.get("album") or "Unknown"
            out.append((tags.title, artist, album))
    out.extend((p.title, p.composer, p.album) for p in PIECES)
    return out


def build_names_library(url: str) -> int:
    """Fill the catalog at ``url`` with the demo library's names; the number of tracks."""
    from catalog.db import open_catalog
    from catalog.models import Embedding, Track
    from catalog.queries import get_or_create_album, get_or_create_artist
    from musicbert.embedder import Embedder

    names = demo_names()
    if not names:
        raise SystemExit("no demo-library sources found (wesnoth-1.16-music, singularity-music)")
    embedder = Embedder.load()
    vectors = embedder.embed_text([f"{title} by {artist}" for title, artist, _ in names])
    catalog = open_catalog(url)
    with catalog.session() as s:
        for n, (title, artist, album) in enumerate(names):
            a = get_or_create_artist(s, artist)
            track = Track(
                path=f"/demo/{n:03d}.ogg",
                content_hash=f"{n:064x}",
                title=title,
                artist=a,
                album=get_or_create_album(s, album, a, None),
                duration=120.0,
            )
            vec = np.asarray(vectors[n], dtype="<f4")
            track.embeddings.append(
                Embedding(model_id=embedder.model_id, dim=vec.size, vector=vec.tobytes())
            )
            s.add(track)
    return len(names)
