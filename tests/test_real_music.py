"""Real-music training text and ranking: the vocabulary, natural captions, borrowed human
captions, lexical evidence and the Debian real-music corpus listing."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from catalog.lexical import fuse, tag_confidences, tag_evidence, title_evidence
from musicbert.musicnn import TAGS
from musicbert.tagger import canonical_tag
from musicbert.vocabulary import GENRES, INSTRUMENTS, MOODS, PHRASES, tags_in
from training.captions import CaptionBank, distinctive_tags, natural_captions, tag_prior
from training.extract import real_segments
from training.real_corpus import PACKAGES, describe_metadata, inventory, licence_of

NAMES = list(TAGS["MSD_musicnn"]) + list(TAGS["MTT_musicnn"])


def probs_with(**high: float) -> np.ndarray:
    p = np.full(100, 0.03)
    for name, value in high.items():
        p[NAMES.index(name.replace("_", " "))] = value
    return p


def test_every_musicnn_tag_has_everyday_words():
    canonical = {canonical_tag(t) for model in TAGS.values() for t in model}
    assert canonical <= set(PHRASES)
    for tag, phrases in PHRASES.items():
        assert phrases and phrases[0], tag
    assert {"hip-hop", "jazz", "metal"} <= GENRES and "mellow" in MOODS and "piano" in INSTRUMENTS


@pytest.mark.parametrize(
    "text, tags",
    [
        ("some chill rap", {"chill", "hip-hop"}),
        ("Hip-Hop", {"hip-hop"}),
        ("play EDM", {"electronic", "techno"}),
        ("R&B please", {"rnb"}),
        ("heavy metal", {"heavy metal", "metal"}),
        ("Death Metal", {"metal", "heavy metal"}),
        ("a fiddle tune", {"violin"}),
        ("what is the weather", set()),
        ("", set()),
    ],
)
def test_tags_in_reads_the_ways_people_name_tags(text, tags):
    assert tags_in(text) == tags


def test_distinctive_tags_rank_against_the_base_rate():
    corpus = np.stack([probs_with(rock=0.6), probs_with(rock=0.5, jazz=0.3), probs_with(rock=0.6)])
    prior = tag_prior(corpus)
    ranked = [t for t, _ in distinctive_tags(corpus[1], prior)]
    assert ranked[0] == "jazz"  # rock is as probable everywhere: jazz is what stands out
    assert distinctive_tags(np.full(100, 0.01), prior) == []


def test_natural_captions_use_everyday_words_of_the_clips_tags():
    prior = np.full(100, 0.05)
    p = probs_with(**{"Hip-Hop": 0.7, "Mellow": 0.4, "piano": 0.5})
    rng = np.random.default_rng(0)
    texts = natural_captions(p, prior, rng, n=30, metadata="Track by Someone")
    assert texts[-1] == "Track by Someone" and len(texts) == len(set(texts))
    said = set().union(*(tags_in(t) for t in texts[:-1]))
    assert "hip-hop" in said and said & {"mellow", "quiet"} and "piano" in said
    assert any("rap" in t for t in texts) and any("hip hop" in t for t in texts)
    assert not said & {"metal", "classical", "country"}
    again = natural_captions(p, prior, np.random.default_rng(0), n=30, metadata="Track by Someone")
    assert again == texts


def test_caption_bank_borrows_only_agreeing_captions(tmp_path):
    csv = tmp_path / "caps.csv"
    csv.write_text(
        "ytid,aspect_list,caption\n"
        "a,\"['hip hop', 'boom bap beat', 'male vocal rap']\",A rapper over a boom bap beat.\n"
        "b,\"['heavy metal', 'distorted guitar']\",Loud metal with distorted guitars.\n"
        "c,\"['hip hop', 'female vocal']\",A woman sings over a hip hop beat.\n"
        "d,\"['jazz']\",Only one aspect: never borrowed.\n"
    )
    bank = CaptionBank.load(csv)
    assert len(bank.rows) == 3
    rng = np.random.default_rng(0)
    got = bank.borrow({"hip-hop", "beat", "male vocals"}, {"female vocals"}, rng, k=3)
    assert got == ["A rapper over a boom bap beat."]
    assert bank.borrow({"jazz", "piano"}, set(), rng) == []


def test_lexical_evidence_and_fusion():
    tracks = [
        tag_confidences([("hip-hop", 0.6), ("beat", 0.5)]),
        tag_confidences([("Death Metal", 1.0)]),  # a file's own genre tag
        tag_confidences([]),
    ]
    rap = tag_evidence("play some rap", tracks)
    assert rap.tolist() == pytest.approx([0.6, 0.0, 0.0])
    assert tag_evidence("heavy metal", tracks)[1] == pytest.approx(1.0)
    assert not tag_evidence("something nice", tracks).any()
    titles = title_evidence("epic battle music", ["Battle Music", "Knolls", ""])
    assert titles.tolist() == pytest.approx([0.5, 0.0, 0.0])
    model = np.array([0.30, 0.35, 0.20], np.float32)
    order = np.argsort(-fuse(model, rap, titles))
    assert order[0] == 0  # the shared space alone would put the metal track first
    assert fuse(model, np.zeros(3), None).tolist() == pytest.approx(model.tolist())


def test_real_segments_spread_over_the_track():
    assert real_segments(5.0) == [0.0]
    assert real_segments(30.0) == [0.0]
    starts = real_segments(600.0)
    assert len(starts) == 6 and starts[0] == 0.0 and starts[-1] == pytest.approx(220.0)
    assert real_segments(50.0) == [0.0, 30.0]


def test_inventory_of_an_unpacked_package(tmp_path):
    root = tmp_path / "fretsonfire-songs-sectoid"
    song = root / "usr/share/games/fretsonfire/data/songs/sectoid/Metal madness"
    song.mkdir(parents=True)
    sr = 16000
    tone = (0.1 * np.sin(np.arange(sr * 10) * 0.05)).astype(np.float32)
    sf.write(song / "song.ogg", tone, sr)
    sf.write(song / "guitar.ogg", tone, sr)
    sf.write(song / "click.ogg", tone[: sr * 2], sr)  # too short: an effect, not music
    doc = root / "usr/share/doc/fretsonfire-songs-sectoid"
    doc.mkdir(parents=True)
    (doc / "copyright").write_text("Files: *\nCopyright: Sectoid\nLicense: GPL-2+\n")
    (tracks,) = [inventory(tmp_path)]
    assert len(tracks) == 1
    track = tracks[0]
    assert track.title == "Metal madness" and len(track.paths) == 2  # stems of one song
    assert track.split == "dev" and track.genre == "metal" and track.licence == "GPL-2+"
    assert track.duration == pytest.approx(10.0, abs=0.1)
    assert "Frets on Fire" in describe_metadata(track) and "metal" in describe_metadata(track)
    assert licence_of(tmp_path / "nowhere", "x").startswith("unknown")
    assert {p.split for p in PACKAGES.values()} == {"train", "dev"}


def test_tag_trust_thresholds_come_from_false_alarms_on_other_genres():
    from musicbert.tagger import trust_threshold, trusted
    from training.tag_trust import FLOOR, thresholds

    probs = np.full((40, 100), 0.05)
    genres = ["metal"] * 20 + ["classical"] * 20
    probs[:20, NAMES.index("Hip-Hop")] = np.linspace(0.1, 0.6, 20)  # fires on metal: wrong
    probs[:20, NAMES.index("heavy metal")] = 0.9  # right on metal clips: no false alarm
    probs[20:, NAMES.index("piano")] = 0.7  # an instrument: the dev set cannot contradict it
    table = thresholds(probs, genres)
    assert table["hip-hop"] > 0.5 and table["heavy metal"] == FLOOR and table["piano"] == FLOOR
    # the packaged table: every tag has a threshold of at least the floor
    assert trust_threshold("Hip-Hop") >= FLOOR and trust_threshold("no such tag") == FLOOR
    assert trusted("piano", 0.9) and not trusted("piano", 0.05)
