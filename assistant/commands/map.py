"""``musicbert map [--color genre|artist|tempo] [--method tsne|pca] --out map.png [--json]``.

Thin: ``catalog.library_map.library_map`` projects the track vectors, labels the
clusters and writes the PNG; this prints where it went (or the points as JSON).
"""

from __future__ import annotations

import json


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "map",
        help="a picture of the library: tracks placed by sound, coloured, clusters labelled",
        description=(
            "Project every track's MusicBERT vector to 2-D (t-SNE, or PCA), colour the points "
            "by genre, artist or tempo, label the clusters with their commonest tags, and save "
            "a PNG."
        ),
    )
    parser.add_argument("--out", "-o", default="map.png", help="PNG to write (default map.png)")
    parser.add_argument("--color", "--colour", dest="color", default="genre",
                        choices=("genre", "artist", "tempo"))  # fmt: skip
    parser.add_argument("--method", default="tsne", choices=("tsne", "pca"))
    parser.add_argument("--clusters", type=int, help="how many clusters to label (default: auto)")
    parser.add_argument("--json", action="store_true", help="print the points and labels as JSON")
    parser.set_defaults(func=run)


def run(args) -> int:
    from assistant.model_loader import load_embedder
    from catalog.db import open_catalog
    from catalog.library_map import library_map

    with open_catalog(args.db) as catalog:
        embedder = load_embedder(args.checkpoint, catalog)  # whose vectors to place
        m = library_map(
            catalog, embedder.model_id, embedder.dim, args.out, args.color, args.method,
            args.clusters,
        )  # fmt: skip
    if args.json:
        print(json.dumps(m.to_dict(), indent=2, ensure_ascii=False))
    else:
        labels = "; ".join(m.clusters.values())
        print(f"wrote {m.path}: {len(m.points)} tracks ({m.method}), clusters: {labels}")
    return 0
