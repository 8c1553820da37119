"""Write the QA set (benchmarks/qa_set.jsonl) from a built demo catalog.

Gold answers are read from the data: catalog rows, the stored audio analysis,
the file tags, and music21 scores (parsed here independently of the QA engine's
own score code). The questions come from templates in this file and from the
hand-written paraphrases in benchmarks/qa_paraphrases.yml.

    .venv/bin/python benchmarks/make_qa_set.py [--db URL] [--out benchmarks/qa_set.jsonl]
"""

from __future__ import annotations

import argparse
import json
import operator
import random
import sys
from collections import Counter
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant.qa.concepts import default_glossary  # noqa: E402
from assistant.qa.library import TrackInfo, load_snapshot  # noqa: E402
from catalog.db import open_catalog  # noqa: E402

TEMPLATES = {
    "artist": ["who performs {track}?", "who is {track} by?", "which artist plays {track}?"],
    "composer": ["who composed {track}?", "who wrote {track}?"],
    "album": ["what album is {track} on?", "which album has {track}?"],
    "year": ["what year is {track} from?", "when was {track} released?"],
    "duration": ["how long is {track}?", "what is the length of {track}?"],
    "licence": ["what licence is {track} under?", "what's the license of {track}?"],
    "tempo": ["what's the tempo of {track}?", "how many bpm is {track}?"],
    "key": ["what key is {track} in?", "what's the key of {track}?"],
    "mode": ["is {track} in a minor key?", "is {track} in a major key?"],
    "loudness": ["what's the loudness of {track}?", "how loud is {track} in dB?"],
    "time_signature": ["what is the time signature of {track}?"],
    "measures": ["how many measures does the score of {track} have?"],
    "highest_note": ["what is the highest note in {track}?"],
    "lowest_note": ["what is the lowest note in the score of {track}?"],
    "score_key": ["what key is the score of {track} in?"],
    "instrumentation": ["what is the instrumentation of the score of {track}?"],
    "concept": ["what is {article}{term}?", "what does {term} mean?", "define {term}"],
}
NOT_IN_LIBRARY = [
    "Bohemian Rhapsody",
    "Stairway to Heaven",
    "Moonlight Sonata",
    "Clair de Lune",
    "Hotel California",
    "The Four Seasons",
    "Billie Jean",
    "Ode to Joy",
]
NOT_IN_GLOSSARY = ["a theremin", "a glockenspiel", "dubstep", "a blorptastic"]


def pick(rng: random.Random, options: list[str]) -> str:
    return options[rng.randrange(len(options))]


def name_of(t: TrackInfo, titles: Counter) -> str:
    """The title, with the artist when another track shares the title."""
    return f"{t.title} by {t.artist}" if titles[t.title.casefold()] > 1 and t.artist else t.title


def score_gold(score_ref: str) -> dict | None:
    """Score facts computed here with music21, separately from assistant.qa.scores."""
    from music21 import corpus

    try:
        s = corpus.parse(score_ref)
    except Exception:
        return None
    if hasattr(s, "mergeScores"):  # an Opus (ABC voices) is one piece, as it is rendered
        s = s.mergeScores()
    ts = s.recurse().getElementsByClass("TimeSignature").first()
    parts = list(s.parts) or [s]
    pitches = sorted(s.flatten().pitches, key=lambda p: p.ps)
    k = s.analyze("key")
    return {
        "time_signature": ts.ratioString if ts is not None else None,
        "measures": max(len(p.getElementsByClass("Measure")) for p in parts),
        "highest_note": pitches[-1].nameWithOctave.replace("-", "b") if pitches else None,
        "lowest_note": pitches[0].nameWithOctave.replace("-", "b") if pitches else None,
        "score_key": f"{k.tonic.name.replace('-', 'b')} {k.mode}",
        "instrumentation": len(parts),
    }


def build(db: str | None, seed: int = 7) -> list[dict]:
    rng = random.Random(seed)
    catalog = open_catalog(db)
    snap = load_snapshot(catalog)
    tracks = sorted(snap.tracks.values(), key=lambda t: t.id)
    if not tracks:
        raise SystemExit("the catalog is empty: build the demo library first (musicbert demo)")
    titles = Counter(t.title.casefold() for t in tracks)
    para = yaml.safe_load((ROOT / "benchmarks" / "qa_paraphrases.yml").read_text())
    items: list[dict] = []

    def add(qtype, question, gold, match, source="template", **extra):
        items.append(
            {
                "type": qtype,
                "question": question,
                "gold": gold,
                "match": match,
                "source": source,
                **extra,
            }
        )

    recordings = [t for t in tracks if not t.score_ref]
    scores = [t for t in tracks if t.score_ref]
    analysed = [t for t in tracks if t.analysed and t.tempo and t.key and not t.silent]

    # -- catalog facts ------------------------------------------------------------------------
    sample = rng.sample(tracks, min(len(tracks), 30))
    attrs = ["artist", "composer", "album", "year", "duration", "licence"]
    for i, t in enumerate(sample):
        attr = attrs[i % len(attrs)]
        value = {
            "artist": t.artist,
            "composer": t.composer,
            "album": t.album,
            "year": t.year,
            "duration": t.duration,
            "licence": t.licence,
        }[attr]
        if value is None:
            continue
        q = pick(rng, TEMPLATES[attr]).format(track=name_of(t, titles))
        if attr == "duration":
            add("facts", q, round(value, 1), "number", tolerance=1.0)
        elif attr == "year":
            add("facts", q, value, "number", tolerance=0)
        else:
            add("facts", q, value, "name")
    for attr, phrasings in para["facts"].items():
        for p in phrasings:
            if attr == "album_tracks":
                albums = sorted({t.album for t in tracks if t.album})
                album = rng.choice(albums)
                gold = sorted(t.title for t in tracks if t.album == album)
                add("facts", p.format(album=album), gold, "names", "paraphrase")
                continue
            t = rng.choice([t for t in tracks if getattr(t, attr, None) is not None])
            value = getattr(t, attr)
            q = p.format(track=name_of(t, titles))
            if attr == "duration":
                add("facts", q, round(value, 1), "number", "paraphrase", tolerance=1.0)
            elif attr == "year":
                add("facts", q, value, "number", "paraphrase", tolerance=0)
            else:
                add("facts", q, value, "name", "paraphrase")

    # -- audio analysis -----------------------------------------------------------------------
    for i, t in enumerate(rng.sample(analysed, min(len(analysed), 20))):
        attr = ["tempo", "key", "mode", "loudness"][i % 4]
        name = name_of(t, titles)
        if attr == "tempo":
            add(
                "audio",
                pick(rng, TEMPLATES["tempo"]).format(track=name),
                t.tempo,
                "number",
                tolerance=1.0,
            )
        elif attr == "key":
            add("audio", pick(rng, TEMPLATES["key"]).format(track=name), t.key_name, "key")
        elif attr == "mode":
            q = pick(rng, TEMPLATES["mode"]).format(track=name)
            asked = "minor" if "minor" in q else "major"
            add("audio", q, t.mode == asked, "yes_no")
        else:
            add(
                "audio",
                pick(rng, TEMPLATES["loudness"]).format(track=name),
                round(t.loudness_db, 1),
                "number",
                tolerance=0.2,
            )
    for attr, phrasings in para["audio"].items():
        for p in phrasings:
            t = rng.choice(analysed)
            q = p.format(track=name_of(t, titles))
            if attr == "tempo":
                add("audio", q, t.tempo, "number", "paraphrase", tolerance=1.0)
            elif attr == "key":
                add("audio", q, t.key_name, "key", "paraphrase")
            elif attr == "loudness":
                add("audio", q, round(t.loudness_db, 1), "number", "paraphrase", tolerance=0.2)
            else:
                add("audio", q, t.mode, "name", "paraphrase")
    # follow-ups: the second question names no track
    for t in rng.sample(analysed, min(len(analysed), 4)):
        name = name_of(t, titles)
        add(
            "audio",
            "and its tempo?",
            t.tempo,
            "number",
            "template",
            tolerance=1.0,
            context=[f"what key is {name} in?"],
        )
        add(
            "facts",
            "how long is it?",
            round(t.duration, 1),
            "number",
            "template",
            tolerance=1.0,
            context=[f"who performs {name}?"],
        )

    # -- content (ground truth: the instruments and genres the files are tagged with) ---------
    from assistant.qa.content import tag_names_label
    from assistant.qa.wording import CONTENT_LABELS

    safe_absent = [
        "piano",
        "guitar",
        "drums",
        "trumpet",
        "organ",
        "harpsichord",
        "harp",
        "choir",
        "synthesizer",
        "flute",
        "saxophone",
    ]
    tagged = [
        t for t in tracks if any(g.origin == "file" and g.kind == "instrument" for g in t.tags)
    ]
    for t in rng.sample(tagged, min(len(tagged), 12)):
        names = [g.name for g in t.tags if g.origin == "file" and g.kind == "instrument"]
        have = [
            lab
            for lab in CONTENT_LABELS["instrument"]
            if any(tag_names_label(n, lab, "instrument") for n in names)
        ]
        if not have:
            continue
        name = name_of(t, titles)
        label = rng.choice(have)
        add("content", f"is there {label} in {name}?", True, "yes_no", tags=names)
        absent = [lab for lab in safe_absent if lab not in have]
        # a keyboard or string part could be heard as a related instrument: skip close ones
        if "strings" in have or "violin" in have or "cello" in have:
            absent = [lab for lab in absent if lab not in ("harp",)]
        add("content", f"does {name} have {rng.choice(absent)} in it?", False, "yes_no", tags=names)
    genre_tagged = [
        t
        for t in recordings
        if any(
            g.origin == "file" and g.kind == "genre" and "classical" in g.name.lower()
            for g in t.tags
        )
    ]
    for t in rng.sample(genre_tagged, min(len(genre_tagged), 4)):
        add("content", f"is {name_of(t, titles)} classical music?", True, "yes_no")

    # -- aggregates -----------------------------------------------------------------------------
    artists = Counter(t.artist for t in tracks if t.artist)
    for artist, n in artists.most_common(4):
        add("aggregate", f"how many tracks by {artist} are there?", n, "number", tolerance=0)
    for p in para["aggregate"]["count_artist"]:
        artist = rng.choice(list(artists))
        add(
            "aggregate",
            p.format(artist=artist),
            artists[artist],
            "number",
            "paraphrase",
            tolerance=0,
        )
    add("aggregate", "how many tracks are in the library?", len(tracks), "number", tolerance=0)
    albums = sorted({t.album for t in tracks if t.album})
    for album in albums[:3]:
        total = sum(t.duration or 0 for t in tracks if t.album == album)
        add(
            "aggregate",
            f"what is the total length of {album}?",
            round(total, 1),
            "number",
            tolerance=2.0,
        )
    for p in para["aggregate"]["total_album"]:
        album = rng.choice(albums)
        total = sum(t.duration or 0 for t in tracks if t.album == album)
        add(
            "aggregate",
            p.format(album=album),
            round(total, 1),
            "number",
            "paraphrase",
            tolerance=2.0,
        )
    sup = {
        "fastest": (lambda t: t.tempo, max),
        "slowest": (lambda t: t.tempo, min),
        "longest": (lambda t: t.duration, max),
        "shortest": (lambda t: t.duration, min),
        "loudest": (lambda t: t.loudness_lufs, max),
        "quietest": (lambda t: t.loudness_lufs, min),
    }
    if not any(t.loudness_lufs is not None for t in tracks):  # analysed before LUFS: RMS
        sup["loudest"] = (lambda t: t.loudness_db, max)
        sup["quietest"] = (lambda t: t.loudness_db, min)

    def best(word, pool):
        get, fn = sup[word]
        vals = [(get(t), t) for t in pool if get(t) is not None]
        top = fn(v for v, _ in vals)
        return sorted(t.title for v, t in vals if v == top)

    for word in sup:
        add("aggregate", f"what is the {word} track?", best(word, tracks), "names")
    for artist in list(artists)[:2]:
        pool = [t for t in tracks if t.artist == artist]
        word = rng.choice(list(sup))
        add("aggregate", f"which is the {word} track by {artist}?", best(word, pool), "names")
    for p, word in zip(
        para["aggregate"]["superlative"], ["longest", "quietest", "slowest"], strict=True
    ):
        add("aggregate", p, best(word, tracks), "names", "paraphrase")
    minor = sorted(t.title for t in tracks if t.mode == "minor")
    major = sorted(t.title for t in tracks if t.mode == "major")
    add("aggregate", "which tracks are in a minor key?", minor, "names")
    add("aggregate", "how many tracks are in a major key?", len(major), "number", tolerance=0)
    add("aggregate", para["aggregate"]["list_minor"][0], minor, "names", "paraphrase")
    add("aggregate", para["aggregate"]["list_minor"][1], major, "names", "paraphrase")
    for bpm in (90, 120):
        gold = sorted(t.title for t in tracks if t.tempo and bpm * 0.95 <= t.tempo <= bpm * 1.05)
        add(
            "aggregate",
            f"which tracks are around {bpm} bpm?",
            gold,
            "names",
            note="'around' means within 5%",
        )
    lo, hi = 100, 130
    gold = sorted(t.title for t in tracks if t.tempo and lo <= t.tempo <= hi)
    add(
        "aggregate",
        para["aggregate"]["list_bpm"][1].format(lo=lo, hi=hi),
        gold,
        "names",
        "paraphrase",
    )
    gold = sorted(t.title for t in tracks if t.tempo and 140 * 0.95 <= t.tempo <= 140 * 1.05)
    add("aggregate", para["aggregate"]["list_bpm"][0].format(n=140), gold, "names", "paraphrase")

    # -- comparisons ----------------------------------------------------------------------------
    def pairs(k: int, ok) -> list[tuple[TrackInfo, TrackInfo]]:
        out, tries = [], 0
        while len(out) < k and tries < 5000:
            tries += 1
            a, b = rng.sample(analysed, 2)
            if titles[a.title.casefold()] > 1 or titles[b.title.casefold()] > 1:
                continue
            if ok(a, b):
                out.append((a, b))
        return out

    far_tempo = lambda a, b: abs(a.tempo - b.tempo) > 0.08 * max(a.tempo, b.tempo)  # noqa: E731
    far_len = lambda a, b: abs(a.duration - b.duration) > 2  # noqa: E731

    def winner(a: TrackInfo, b: TrackInfo, attr: str, wins) -> str:
        return a.title if wins(getattr(a, attr), getattr(b, attr)) else b.title

    # (how many pairs, far enough apart, the word, the attribute, which value wins)
    for k, far, word, attr, wins in (
        (5, far_tempo, "faster", "tempo", operator.gt),
        (2, far_tempo, "slower", "tempo", operator.lt),
        (3, far_len, "shorter", "duration", operator.lt),
    ):
        for a, b in pairs(k, far):
            add(
                "compare",
                f"which is {word}, {a.title} or {b.title}?",
                winner(a, b, attr, wins),
                "name",
            )
    from catalog.keys import same_key

    same = pairs(2, lambda a, b: same_key((a.key, a.mode), (b.key, b.mode)))
    diff = pairs(3, lambda a, b: not same_key((a.key, a.mode), (b.key, b.mode)))
    for a, b in same + diff:
        add(
            "compare",
            f"are {a.title} and {b.title} in the same key?",
            bool(same_key((a.key, a.mode), (b.key, b.mode))),
            "yes_no",
        )
    for k, far, word, attr in (
        (2, far_tempo, "faster", "tempo"),
        (1, far_len, "longer", "duration"),
    ):
        for a, b in pairs(k, far):
            question = para["compare"][word][0].format(a=a.title, b=b.title)
            add("compare", question, winner(a, b, attr, operator.gt), "name", "paraphrase")
    for a, b in pairs(1, lambda a, b: True):
        add(
            "compare",
            para["compare"]["same_key"][0].format(a=a.title, b=b.title),
            bool(same_key((a.key, a.mode), (b.key, b.mode))),
            "yes_no",
            "paraphrase",
        )

    # -- scores ---------------------------------------------------------------------------------
    score_attrs = [
        "time_signature",
        "measures",
        "highest_note",
        "lowest_note",
        "score_key",
        "instrumentation",
    ]
    for i, t in enumerate(rng.sample(scores, min(len(scores), 24))):
        gold = score_gold(t.score_ref)
        if gold is None:
            continue
        attr = score_attrs[i % len(score_attrs)]
        q = TEMPLATES[attr][0].format(track=name_of(t, titles))
        match = {"measures": "number", "instrumentation": "count", "score_key": "key"}.get(
            attr, "name"
        )
        add("score", q, gold[attr], match, tolerance=0)
    for attr, phrasings in para["score"].items():
        for p in phrasings if scores else []:
            t = rng.choice(scores)
            gold = score_gold(t.score_ref)
            match = {"measures": "number", "instrumentation": "count"}.get(attr, "name")
            add(
                "score",
                p.format(track=name_of(t, titles)),
                gold[attr],
                match,
                "paraphrase",
                tolerance=0,
            )

    # -- concepts -------------------------------------------------------------------------------
    glossary = default_glossary()
    for c in rng.sample(glossary.concepts, 18):
        article = (
            ""
            if c.term.endswith(("music", "s", "period"))
            or c.term
            in (
                "tempo",
                "bpm",
                "harmony",
                "syncopation",
                "counterpoint",
                "timbre",
                "rhythm",
                "loudness",
                "modulation",
                "transposition",
                "staccato",
                "melody",
            )
            else ("an " if c.term[0] in "aeiou" else "a ")
        )
        q = pick(rng, TEMPLATES["concept"]).format(term=c.term, article=article)
        add("concept", q, c.term, "term")
    for p in para["concept"]["definition"]:
        c = rng.choice([c for c in glossary.concepts if c.aliases])
        add("concept", p.format(term=c.aliases[0]), c.term, "term", "paraphrase")

    # -- questions the library cannot answer ----------------------------------------------------
    for name in NOT_IN_LIBRARY:
        attr = rng.choice(["composer", "duration", "tempo", "key", "year"])
        q = pick(rng, TEMPLATES[attr]).format(track=name)
        add("unanswerable", q, "no_track", "unknown")
    for phrase in NOT_IN_GLOSSARY:
        add("unanswerable", f"what is {phrase}?", "no_concept", "unknown")
    dupes = sorted({t.title for t in tracks if titles[t.title.casefold()] > 1})
    for title in dupes[:3]:
        add("unanswerable", f"what key is {title} in?", "ambiguous", "unknown")
    for t in rng.sample(recordings, min(len(recordings), 3)):
        if titles[t.title.casefold()] == 1:
            add(
                "unanswerable",
                f"what is the time signature of the score of {t.title}?",
                "no_score",
                "unknown",
            )
    for t in tracks:
        if (not t.analysed or t.silent or t.tempo is None) and titles[t.title.casefold()] == 1:
            add("unanswerable", f"what's the tempo of {t.title}?", "no_analysis", "unknown")

    items += nlu_examples(tracks, titles)
    for i, item in enumerate(items):
        item["id"] = f"{item['type']}-{i:03d}"
    return items


#: attribute entity value -> (question type, gold getter, match kind, tolerance)
_NLU_ATTRIBUTES = {
    "tempo": ("audio", lambda t: t.tempo, "number", 1.0),
    "key": ("audio", lambda t: t.key_name, "key", 0),
    "loudness": ("audio", lambda t: t.loudness_db and round(t.loudness_db, 1), "number", 0.2),
    "duration": ("facts", lambda t: t.duration and round(t.duration, 1), "number", 1.0),
    "year": ("facts", lambda t: t.year, "number", 0),
    "artist": ("facts", lambda t: t.artist, "name", 0),
    "album": ("facts", lambda t: t.album, "name", 0),
    "licence": ("facts", lambda t: t.licence, "name", 0),
}


def nlu_examples(tracks: list[TrackInfo], titles: Counter) -> list[dict]:
    """Questions worded in the NLU training data (Rasa nlu.yml) that name a track and an
    attribute; the gold comes from the data. A check on wording this module did not write."""
    from assistant.nlu.rasa_format import load_nlu

    data = load_nlu()
    by_title = {}
    for t in tracks:
        by_title.setdefault(t.title.casefold(), []).append(t)
    out = []
    for ex in data.examples:
        if ex.intent != "ask_track_info":
            continue
        names = [e.value for e in ex.entities if e.entity == "track"]
        attrs = [e.value for e in ex.entities if e.entity == "attribute"]
        if len(names) != 1 or len(attrs) != 1 or attrs[0] not in _NLU_ATTRIBUTES:
            continue
        found = by_title.get(names[0].casefold(), [])
        if len(found) != 1:
            continue  # partial titles and duplicate titles are left to the tests
        qtype, getter, match, tol = _NLU_ATTRIBUTES[attrs[0]]
        gold = getter(found[0])
        if gold is None:
            continue
        out.append(
            {
                "type": qtype,
                "question": ex.text,
                "gold": gold,
                "match": match,
                "source": "nlu_examples",
                "tolerance": tol,
            }
        )
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", help="catalog URL (default: $MUSICBERT_DB or the home catalog)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "qa_set.jsonl"))
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    items = build(args.db, args.seed)
    with open(args.out, "w", encoding="utf-8") as fh:
        for item in items:
            fh.write(json.dumps(item, ensure_ascii=False) + "\n")
    counts = Counter(i["type"] for i in items)
    print(
        f"wrote {len(items)} questions to {args.out}: "
        + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
