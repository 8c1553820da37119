"""The real data pipeline on one rendered clip: music21 + FluidSynth -> musicnn/MiniLM cache."""

from __future__ import annotations

import json

import numpy as np
import pytest

from training.corpus import COLLECTIONS, SKIPPED, plan, read_clips, render_job, write_split
from training.features import assemble, extract, load_cache


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


def test_library_tracks_become_training_text_without_held_out_or_recorded_files(tmp_path):
    from catalog.db import open_catalog
    from catalog.models import Tag, Track
    from catalog.queries import get_or_create_album, get_or_create_artist
    from training.features import catalog_tracks

    files = {}
    for name in ("nebula", "mozart", "recorded", "gone"):
        files[name] = tmp_path / f"{name}.flac"
        if name != "gone":
            files[name].write_bytes(b"audio")  # only existence matters here
    url = f"sqlite:///{tmp_path / 'lib.db'}"
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
