"""The real data pipeline on one rendered clip: music21 + FluidSynth -> musicnn/MiniLM cache."""

from __future__ import annotations

import json

import numpy as np
import pytest

from training.corpus import COLLECTIONS, SKIPPED, plan, read_clips, render_job, write_split
from training.extract import extract
from training.features import assemble, load_cache


def test_plan_is_fixed_and_keeps_held_out_collections_apart():
    jobs = plan(400, seed=0)
    assert jobs == plan(400, seed=0)
    assert not any(j["collection"] in SKIPPED for j in jobs)
    for job in jobs:
        held_out = COLLECTIONS[job["collection"]][3] == "test"
        assert (job["split"] == "test") == held_out
    # a piece is never in two splits
    split_of: dict[str, str] = {}
    for job in plan(100000, seed=0):
        assert split_of.setdefault(job["rel"], job["split"]) == job["split"]


@pytest.mark.slow
def test_one_rendered_clip_through_the_feature_cache(tmp_path):
    job = {
        "collection": "bach",
        "rel": "bach/bwv66.6.mxl",
        "tune": 0,
        "variation": 0,
        "split": "train",
    }
    facts = render_job(job, tmp_path / "corpus")
    assert facts is not None and facts.seconds > 4.0
    assert facts.family and facts.instrument and facts.tempo_class in ("slow", "moderate", "fast")
    with (tmp_path / "corpus" / "clips.jsonl").open("w") as f:
        f.write(json.dumps(facts.__dict__) + "\n")
        f.write('{"clip_id": "x", "skipped": "unusable"}\n')
    assert [c.clip_id for c in read_clips(tmp_path / "corpus")] == [facts.clip_id]
    split = json.loads(write_split(tmp_path / "corpus").read_text())
    assert split["train"]["collections"] == ["bach"]

    assert extract(tmp_path / "corpus", tmp_path / "features", include_recordings=False) == 1
    assert extract(tmp_path / "corpus", tmp_path / "features", include_recordings=False) == 0
    cache = load_cache(assemble(tmp_path / "features"))
    item = cache.items[0]
    assert item.labels["family"] == facts.family and item.n_patches >= 2
    assert cache.patches.dtype == np.float16 and cache.patches.shape[1] == 200
    texts = [cache.texts[t] for t in item.texts]
    assert any(t.startswith("a ") and "Bach" in t for t in texts)
    assert cache.text_state(item.query).shape[1] == 384


def test_library_tracks_become_training_text_without_held_out_or_recorded_files(
    tmp_path, catalog_url
):
    from catalog.db import open_catalog
    from catalog.models import Tag, Track
    from catalog.queries import get_or_create_album, get_or_create_artist
    from training.extract import catalog_tracks

    files = {}
    for name in ("nebula", "mozart", "recorded", "gone"):
        files[name] = tmp_path / f"{name}.flac"
        if name != "gone":
            files[name].write_bytes(b"audio")  # only existence matters here
    url = catalog_url
    rows = [  # key, title, artist, album, source
        ("nebula", "Nebula", "Maxstack", "Endgame", None),
        ("mozart", "Quartet", "Mozart", "Quartets", "music21 corpus: mozart/k80/movement1"),
        ("recorded", "Battle", "Someone", None, None),
        ("gone", "Missing", "Someone", None, None),
    ]
    with open_catalog(url) as catalog, catalog.session() as s:
        for n, (key, title, artist, album, source) in enumerate(rows):
            a = get_or_create_artist(s, artist)
            track = Track(
                path=str(files[key]),
                content_hash=f"{n:064x}",
                title=title,
                artist=a,
                album=get_or_create_album(s, album, a),
                duration=10.0,
                source=source,
            )
            track.tags.append(Tag(name="ambient", kind="genre", origin="file"))
            track.tags.append(Tag(name="rock", kind="genre", origin="model"))
            s.add(track)
        s.commit()
    found = catalog_tracks(url, exclude={files["recorded"]})
    assert found == [(files["nebula"], "Nebula by Maxstack, from the album Endgame; ambient")]


def _synthetic_clip(corpus, seconds: float = 9.5):
    """One 16 kHz clip with made-up facts, written as the corpus writes its clips."""
    import soundfile as sf

    from training.corpus import ClipFacts

    rng = np.random.default_rng(5)
    t = np.arange(int(seconds * 16000)) / 16000
    wave = (0.3 * np.sin(2 * np.pi * 330 * t) + 0.02 * rng.standard_normal(t.size)).astype(
        np.float32
    )
    corpus.mkdir(parents=True)
    sf.write(corpus / "clip0.wav", wave, 16000, subtype="FLOAT")
    facts = ClipFacts(
        "clip0", "bach", "bach/x.mxl", "train", "J. S. Bach", "baroque", "chorale", "X",
        "4/4", "C major", "piano", 0, "piano", 90.0, "moderate", 0, "middle", seconds,
        "clip0.wav",
    )  # fmt: skip
    (corpus / "clips.jsonl").write_text(json.dumps(facts.__dict__) + "\n")
    return wave


def test_training_features_are_what_the_embedder_computes(tmp_path):
    """One audio -> musicnn path: the cached item equals ``Embedder.describe`` at run time."""
    from musicbert.embedder import Embedder
    from training.features import FEATURES_VERSION

    wave = _synthetic_clip(tmp_path / "corpus")
    embedder = Embedder.load(device="cpu")
    assert extract(tmp_path / "corpus", tmp_path / "f", False, embedder=embedder) == 1
    with np.load(tmp_path / "f" / "items" / "clip0.npz") as z:
        patches, tags, version = z["patches"], z["tags"], int(z["version"])
    desc = embedder.describe((wave, 16000), keep_patches=True)  # as ingest runs it
    assert version == FEATURES_VERSION
    assert patches.shape == (desc.patches, 200) == (4, 200)  # 3 patches + the covered tail
    np.testing.assert_array_equal(patches, desc.patch_vectors.astype(np.float16))
    run_time = np.concatenate([desc.tag_probs["MSD_musicnn"], desc.tag_probs["MTT_musicnn"]])
    np.testing.assert_array_equal(tags, run_time.astype(np.float16))


def test_features_of_an_older_front_end_are_extracted_again_not_misread(tmp_path):
    from training.features import FeatureCacheError

    _synthetic_clip(tmp_path / "corpus")
    items = tmp_path / "f" / "items"
    items.mkdir(parents=True)
    old = {"patches": np.zeros((3, 200), np.float16), "tags": np.zeros(100, np.float16)}
    np.savez(items / "clip0.npz", mfcc=np.zeros(40, np.float32), meta="{}", **old)  # unstamped
    np.savez(items / "gone.npz", mfcc=np.zeros(40, np.float32), meta="{}", **old)
    assert extract(tmp_path / "corpus", tmp_path / "f", include_recordings=False) == 1
    with np.load(items / "clip0.npz") as z:
        assert len(z["patches"]) == 4 and "version" in z
    with pytest.raises(FeatureCacheError, match="older front-end"):
        assemble(tmp_path / "f")  # gone.npz is still version 1: refused, not packed
    (items / "gone.npz").unlink()
    cache = tmp_path / "f" / "cache.npz"
    assemble(tmp_path / "f")
    with np.load(cache) as z:
        arrays = {k: z[k] for k in z.files if k != "version"}
    np.savez(cache, **arrays)  # a packed cache from before the version stamp
    with pytest.raises(FeatureCacheError, match="rebuild it with musicbert features"):
        load_cache(cache)
