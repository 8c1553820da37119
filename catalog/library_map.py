"""A map of the library: the track vectors projected to 2-D, coloured, clusters labelled.

``library_map`` reads every track's MusicBERT vector, projects them with t-SNE
(scikit-learn; PCA first to 50 dimensions) or PCA (``method="pca"``, and always for
fewer than 5 tracks), colours each point by artist, genre (the surest genre tag) or
tempo, groups the points with k-means and writes each group's most common labels at its
centre, then saves a PNG with matplotlib (Agg, no display needed).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sqlalchemy import select

from catalog.models import Artist, AudioFeatures, Tag, Track
from catalog.vectors import CatalogVectors, normalise
from musicbert.errors import MusicBertError, NotFoundError

COLOR_BY = ("genre", "artist", "tempo")
#: Colours beyond this many are one grey "other" (a legend stays readable).
MAX_COLOURS = 10


class MapError(MusicBertError):
    """The map cannot be drawn or written."""


@dataclass
class MapPoint:
    track_id: int
    title: str
    x: float
    y: float
    colour: str | float | None  # the label (artist, genre) or the tempo
    cluster: int


@dataclass
class LibraryMap:
    method: str
    color_by: str
    points: list[MapPoint] = field(default_factory=list)
    clusters: dict[int, str] = field(default_factory=dict)  # cluster -> its label
    path: str | None = None

    def to_dict(self) -> dict:
        return {
            "method": self.method,
            "color_by": self.color_by,
            "file": self.path,
            "tracks": len(self.points),
            "clusters": {str(k): v for k, v in self.clusters.items()},
            "points": [p.__dict__ for p in self.points],
        }


def _track_info(catalog, ids: list[int]) -> dict[int, dict]:
    info: dict[int, dict] = {i: {"genres": [], "tags": []} for i in ids}
    with catalog.session() as s:
        for tid, title, artist, tempo in s.execute(
            select(Track.id, Track.title, Artist.name, AudioFeatures.tempo)
            .outerjoin(Artist, Track.artist_id == Artist.id)
            .outerjoin(AudioFeatures, AudioFeatures.track_id == Track.id)
            .where(Track.id.in_(ids))
        ):
            info[tid].update(title=title, artist=artist or "unknown artist", tempo=tempo)
        rows = s.execute(
            select(Tag.track_id, Tag.name, Tag.kind, Tag.confidence)
            .where(Tag.track_id.in_(ids))
            .order_by(Tag.confidence.desc())
        )
        for tid, name, kind, _conf in rows:
            if kind == "genre":
                info[tid]["genres"].append(name.lower())
            if kind in ("genre", "mood", "instrument"):
                info[tid]["tags"].append(name.lower())
    return info


def project(vectors: np.ndarray, method: str = "tsne", seed: int = 0) -> tuple[np.ndarray, str]:
    """(n, 2) coordinates and the method used."""
    n = len(vectors)
    if n < 5 or method == "pca":
        from sklearn.decomposition import PCA

        if n == 1:
            return np.zeros((1, 2)), "pca"
        xy = PCA(n_components=2, random_state=seed).fit_transform(vectors)
        return xy, "pca"
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    reduced = PCA(n_components=min(50, n - 1, vectors.shape[1]), random_state=seed).fit_transform(
        vectors
    )
    perplexity = float(max(2, min(30, (n - 1) // 3)))
    xy = TSNE(
        n_components=2, perplexity=perplexity, init="pca", random_state=seed, metric="cosine"
    ).fit_transform(reduced)
    return xy, "tsne"


def library_map(
    catalog,
    model_id: str,
    dim: int,
    out: str | Path | None = None,
    color_by: str = "genre",
    method: str = "tsne",
    clusters: int | None = None,
) -> LibraryMap:
    """Project, colour, label and (with ``out``) save the map as a PNG."""
    if color_by not in COLOR_BY:
        raise MapError(f"--color must be one of {', '.join(COLOR_BY)}, not {color_by!r}")
    ids, vecs = CatalogVectors(catalog, model_id, dim).all()
    if not len(ids):
        raise NotFoundError(
            "no track has a MusicBERT vector to place: run `musicbert ingest` or `reindex`"
        )
    xy, used = project(normalise(vecs), method)
    info = _track_info(catalog, [int(i) for i in ids])
    k = clusters or int(np.clip(round(np.sqrt(len(ids) / 2)), 1, 12))
    k = min(k, len(ids))
    if k > 1:
        from sklearn.cluster import KMeans

        groups = KMeans(n_clusters=k, n_init=10, random_state=0).fit_predict(xy)
    else:
        groups = np.zeros(len(ids), int)
    result = LibraryMap(used, color_by)
    for tid, (x, y), g in zip(ids.tolist(), xy, groups.tolist(), strict=True):
        t = info[tid]
        colour = {
            "artist": t.get("artist"),
            "genre": (t["genres"] or ["no genre"])[0],
            "tempo": t.get("tempo"),
        }[color_by]
        result.points.append(MapPoint(tid, t.get("title", ""), float(x), float(y), colour, g))
    for g in range(k):
        counts = Counter(
            tag for tid, gg in zip(ids.tolist(), groups.tolist(), strict=True) if gg == g
            for tag in dict.fromkeys(info[tid]["tags"])
        )  # fmt: skip
        result.clusters[g] = ", ".join(tag for tag, _ in counts.most_common(2)) or "unlabelled"
    if out is not None:
        result.path = str(draw(result, Path(out)))
    return result


def draw(m: LibraryMap, out: Path) -> Path:
    """Write the map as a PNG (matplotlib, Agg)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    xy = np.array([[p.x, p.y] for p in m.points])
    fig, ax = plt.subplots(figsize=(11, 8), dpi=100)
    if m.color_by == "tempo":
        tempi = np.array([np.nan if p.colour is None else float(p.colour) for p in m.points])
        known = ~np.isnan(tempi)
        ax.scatter(xy[~known, 0], xy[~known, 1], c="lightgrey", s=30, label="tempo unknown")
        sc = ax.scatter(xy[known, 0], xy[known, 1], c=tempi[known], cmap="viridis", s=40)
        fig.colorbar(sc, ax=ax, label="tempo (bpm)")
    else:
        counts = Counter(str(p.colour) for p in m.points)
        top = [name for name, _ in counts.most_common(MAX_COLOURS)]
        cmap = plt.get_cmap("tab10")
        for i, name in enumerate(top):
            sel = np.array([str(p.colour) == name for p in m.points])
            ax.scatter(xy[sel, 0], xy[sel, 1], s=40, color=cmap(i), label=f"{name} ({sel.sum()})")
        rest = np.array([str(p.colour) not in top for p in m.points])
        if rest.any():
            ax.scatter(xy[rest, 0], xy[rest, 1], s=30, color="lightgrey", label="other")
        ax.legend(loc="best", fontsize=8, title=m.color_by, frameon=True)
    for g, text in m.clusters.items():
        sel = np.array([p.cluster == g for p in m.points])
        cx, cy = xy[sel].mean(axis=0)
        ax.annotate(
            text,
            (cx, cy),
            ha="center",
            fontsize=10,
            weight="bold",
            bbox={"boxstyle": "round", "fc": "white", "alpha": 0.8},
        )
    ax.set_title(f"Your library: {len(m.points)} tracks ({m.method.upper()} of MusicBERT vectors)")
    ax.set_xticks([])
    ax.set_yticks([])
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        fig.savefig(out, format="png", bbox_inches="tight")
    except OSError as exc:
        raise MapError(f"cannot write {out}: {exc.strerror or exc}") from exc
    finally:
        plt.close(fig)
    return out
