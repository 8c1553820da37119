"""The rendered training corpus: music21 scores -> ~20 s clips with text descriptions.

Every clip is a known fact sheet (collection, composer, era, form, key, metre,
General MIDI instrument family, tempo, register), so its description is true by
construction and its labels feed the probes (instrument, tempo class, style).
Variation is controlled and seeded: each score is rendered a few times with a
different instrument family, tempo scale, transposition and register.

Splits are by *collection*: whole collections/composers are held out for
evaluation (``test``); a few pieces of the training collections are kept for
validation (``val``, used for choices such as the default configuration).
Essen folksongs are skipped (non-commercial licence). Rendering is resumable:
each clip is a FLAC named by its id plus one JSON line in ``clips.jsonl``.

Run: ``python -m training.corpus --out DIR --limit 2000 --workers 2``.
"""

from __future__ import annotations

import json
import random
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from musicbert.errors import MusicBertError

CLIP_SECONDS = 20.0
SAMPLE_RATE = 16000

#: instrument family -> (General MIDI programs, words used in descriptions)
FAMILIES: dict[str, tuple[tuple[int, ...], tuple[str, ...]]] = {
    "piano": ((0, 1), ("piano", "grand piano")),
    "organ": ((19, 20), ("church organ", "pipe organ")),
    "strings": ((48, 49), ("string ensemble", "strings")),
    "brass": ((61, 57), ("brass section", "trombones")),
    "woodwind": ((73, 71, 68), ("flute", "clarinet", "oboe")),
    "guitar": ((24, 25), ("nylon guitar", "acoustic guitar")),
    "choir": ((52, 53), ("choir", "voices")),
    "mallets": ((11, 46), ("vibraphone", "harp")),
}
#: program -> the words naming it (a description names the program actually used)
PROGRAM_WORDS = {
    prog: words[i] for programs, words in FAMILIES.values() for i, prog in enumerate(programs)
}
TEMPO_SCALES = (0.6, 0.8, 1.0, 1.25, 1.6)
TEMPO_CLASSES = ("slow", "moderate", "fast")

#: collection -> (composer shown in text, era, form, split)
COLLECTIONS: dict[str, tuple[str | None, str, str, str]] = {
    "bach": ("Bach", "baroque", "chorale", "train"),
    "palestrina": ("Palestrina", "renaissance", "mass movement", "train"),
    "ryansMammoth": (None, "nineteenth-century", "fiddle tune", "train"),
    "beethoven": ("Beethoven", "classical", "string quartet movement", "train"),
    "josquin": ("Josquin", "renaissance", "motet", "train"),
    "schumann_robert": ("Schumann", "romantic", "piano piece", "train"),
    "schumann_clara": ("Clara Schumann", "romantic", "song", "train"),
    "demos": (None, "various", "piece", "train"),
    "corelli": ("Corelli", "baroque", "trio sonata", "train"),
    "cpebach": ("C. P. E. Bach", "classical", "piece", "train"),
    "handel": ("Handel", "baroque", "piece", "train"),
    "joplin": ("Joplin", "ragtime", "rag", "train"),
    # held out for evaluation: never rendered into the training split
    "monteverdi": ("Monteverdi", "renaissance", "madrigal", "test"),
    "oneills1850": (None, "nineteenth-century", "Irish dance tune", "test"),
    "trecento": (None, "medieval", "trecento song", "test"),
    "haydn": ("Haydn", "classical", "string quartet movement", "test"),
    "mozart": ("Mozart", "classical", "string quartet movement", "test"),
}
SKIPPED = {"essenFolksong"}  # non-commercial licence
STYLE_OF = {  # the style label of a held-out collection (what the style probe predicts)
    "monteverdi": "madrigal",
    "oneills1850": "irish folk",
    "trecento": "medieval",
    "haydn": "classical quartet",
    "mozart": "classical quartet",
}


class CorpusError(MusicBertError):
    """The corpus cannot be built or read (bad directory, unreadable listing)."""


@dataclass
class ClipFacts:
    """Everything known about one rendered clip; its description is built from this."""

    clip_id: str
    collection: str
    piece: str  # corpus path relative to the corpus root (+ #n for a tune of an opus)
    split: str  # train / val / test
    composer: str | None
    era: str
    form: str
    title: str | None
    time_signature: str | None
    key: str | None
    family: str
    program: int
    instrument: str
    qpm: float
    tempo_class: str
    transpose: int
    register: str  # low / middle / high
    seconds: float = 0.0
    path: str = ""


def tempo_class(qpm: float) -> str:
    """Three tempo classes from quarter notes per minute (labels of the tempo probe)."""
    if qpm < 80:
        return "slow"
    if qpm < 125:
        return "moderate"
    return "fast"


def describe(facts: ClipFacts, rng: random.Random | None = None) -> str:
    """A one-sentence description of a clip made only of its facts.

    >>> describe(ClipFacts("x", "bach", "p", "train", "Bach", "baroque", "chorale", None,
    ...     "4/4", "G major", "organ", 19, "church organ", 60.0, "slow", 0, "middle"))
    'a slow baroque chorale by Bach played on church organ in G major, 4/4'
    """
    words = [facts.tempo_class, facts.era, facts.form]
    text = "a " + " ".join(w for w in words if w)
    if facts.composer:
        text += f" by {facts.composer}"
    text += f" played on {facts.instrument}"
    if facts.register != "middle":
        text += f" in a {facts.register} register"
    if facts.key:
        text += f" in {facts.key}"
    if facts.time_signature:
        text += f", {facts.time_signature}"
    if rng is not None and facts.title and rng.random() < 0.3:
        text += f' ("{facts.title}")'
    return text


def paraphrase(facts: ClipFacts) -> str:
    """A shorter, differently worded description (search-query style)."""
    parts = [facts.instrument, facts.tempo_class, facts.form]
    if facts.composer:
        parts.append(facts.composer)
    return ", ".join(parts)


def corpus_root() -> Path:
    import music21

    return Path(music21.__file__).resolve().parent / "corpus"


def list_pieces() -> list[tuple[str, str]]:
    """(collection, relative path) of every usable bundled score, sorted."""
    from music21 import corpus

    root = corpus_root()
    out = []
    for path in corpus.getCorePaths():
        rel = Path(path).resolve().relative_to(root)
        collection = rel.parts[0]
        if collection in SKIPPED or collection not in COLLECTIONS:
            continue
        out.append((collection, str(rel)))
    return sorted(set(out))


def plan(limit: int, seed: int = 0, variations: int = 2, val_share: float = 0.08) -> list[dict]:
    """The fixed list of renders: piece, tune index, variation and split, seeded.

    Large collections are subsampled so that no collection dominates; held-out
    collections get one more variation so the probes have enough test clips.
    """
    rng = random.Random(seed)
    by_collection: dict[str, list[str]] = {}
    for collection, rel in list_pieces():
        by_collection.setdefault(collection, []).append(rel)
    caps = {
        "palestrina": 220,
        "bach": 200,
        "ryansMammoth": 70,
        "oneills1850": 15,
        "trecento": 50,
        "monteverdi": 50,
    }
    jobs = []
    for collection, rels in sorted(by_collection.items()):
        rels = sorted(rels)
        rng.shuffle(rels)
        rels = rels[: caps.get(collection, len(rels))]
        split = COLLECTIONS[collection][3]
        tunes = 3 if collection in ("ryansMammoth", "oneills1850") else 1
        for i, rel in enumerate(rels):
            piece_split = split
            if split == "train" and len(rels) >= 10 and i % round(1 / val_share) == 0:
                piece_split = "val"
            n_var = variations + (1 if split == "test" else 0)
            for tune in range(tunes):
                for v in range(n_var):
                    jobs.append(
                        {
                            "collection": collection,
                            "rel": rel,
                            "tune": tune,
                            "variation": v,
                            "split": piece_split,
                        }
                    )
    # interleave collections so a time-boxed run still covers every one; a piece's jobs
    # stay together so one worker parses it once
    groups: dict[str, list[dict]] = {}
    for job in jobs:
        groups.setdefault(job["rel"], []).append(job)
    order = sorted(groups)
    rng.shuffle(order)
    planned = [job for rel in order for job in groups[rel]]
    return planned[:limit]


def _clip_id(job: dict) -> str:
    stem = job["rel"].replace("/", "_").rsplit(".", 1)[0]
    return f"{stem}_t{job['tune']}_v{job['variation']}"


_PARSED: dict[str, object] = {}  # the piece now being rendered, parsed once
_OPENINGS: dict[int, object] = {}  # its tunes' openings, by tune index


def _load_score(rel: str, tune: int):
    """A fresh copy of the opening of a score (rendering changes it).

    Only the measures a clip can reach at the fastest tempo are kept and copied:
    deep-copying a whole string quartet costs music21 tens of seconds (its spanner
    bookkeeping is quadratic), copying its first minute costs a fraction of one.
    """
    import copy

    from music21 import converter, stream

    from catalog.render import DEFAULT_QPM, excerpt, score_tempo

    if rel not in _PARSED:  # one piece at a time: jobs of a piece arrive together
        _PARSED.clear()
        _OPENINGS.clear()
        _PARSED[rel] = converter.parse(str(corpus_root() / rel))
    if tune not in _OPENINGS:
        parsed = _PARSED[rel]
        if isinstance(parsed, stream.Opus):
            scores = list(parsed.scores)
            parsed = scores[tune] if tune < len(scores) else None
        elif tune:
            parsed = None
        if parsed is not None:
            if hasattr(parsed, "mergeScores"):  # an ABC tune per voice parses as an Opus
                parsed = parsed.mergeScores()
            fastest = (score_tempo(parsed) or DEFAULT_QPM) * max(TEMPO_SCALES)
            opening = excerpt(parsed, CLIP_SECONDS * fastest / 60.0)
            if opening is not parsed:
                opening.metadata = copy.deepcopy(parsed.metadata)
            parsed = opening
        _OPENINGS[tune] = parsed
    opening = _OPENINGS[tune]
    return None if opening is None else copy.deepcopy(opening)


def _time_signature(score) -> str | None:
    from music21 import meter

    for ts in score.recurse().getElementsByClass(meter.TimeSignature):
        return ts.ratioString
    return None


def render_job(job: dict, out_dir: Path, seed: int = 0) -> ClipFacts | None:
    """Render one planned clip; None when the score cannot be used (parse failure, silence)."""
    from catalog.render import RenderError, render_score, score_tempo

    rng = random.Random(f"{seed}:{_clip_id(job)}")
    score = _load_score(job["rel"], job["tune"])
    if score is None:
        return None
    composer, era, form, _split = COLLECTIONS[job["collection"]]
    family = sorted(FAMILIES)[rng.randrange(len(FAMILIES))]
    program = rng.choice(FAMILIES[family][0])
    scale = rng.choice(TEMPO_SCALES)
    register = rng.choice(("low", "middle", "middle", "high"))
    shift = {"low": -12, "middle": 0, "high": 12}[register]
    transpose = rng.randint(-5, 5) + shift
    title = None
    if score.metadata is not None and score.metadata.title:
        title = str(score.metadata.title)[:60]
    ts = _time_signature(score)
    clip_id = _clip_id(job)
    path = out_dir / "audio" / f"{clip_id}.flac"
    try:
        base_qpm = score_tempo(score) or 100.0
        info = render_score(
            score,
            path,
            program=program,
            tempo_scale=scale,
            transpose=transpose,
            max_seconds=CLIP_SECONDS,
            sample_rate=SAMPLE_RATE,
        )
    except RenderError:
        return None
    if info.seconds < 4.0:  # too short to give two segments
        path.unlink(missing_ok=True)
        return None
    qpm = float(base_qpm * scale)
    return ClipFacts(
        clip_id=clip_id,
        collection=job["collection"],
        piece=f"{job['rel']}#{job['tune']}",
        split=job["split"],
        composer=composer,
        era=era,
        form=form,
        title=title,
        time_signature=ts,
        key=info.key,
        family=family,
        program=program,
        instrument=PROGRAM_WORDS[program],
        qpm=round(qpm, 1),
        tempo_class=tempo_class(qpm),
        transpose=transpose,
        register=register,
        seconds=round(info.seconds, 3),
        path=str(path.relative_to(out_dir)),
    )


def read_clips(out_dir: Path) -> list[ClipFacts]:
    """Every clip rendered so far (the JSONL listing, last line per id wins)."""
    listing = Path(out_dir) / "clips.jsonl"
    if not listing.is_file():
        raise CorpusError(f"{listing}: no rendered corpus here; run musicbert corpus")
    clips: dict[str, ClipFacts] = {}
    for n, line in enumerate(listing.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by a kill; its clip is rendered again on resume
        if row.get("skipped"):
            continue
        try:
            clips[row["clip_id"]] = ClipFacts(**row)
        except TypeError as exc:
            raise CorpusError(f"{listing}:{n}: not a clip record ({exc})") from exc
    return sorted(clips.values(), key=lambda c: c.clip_id)


def _done_ids(listing: Path) -> set[str]:
    done = set()
    if listing.is_file():
        for line in listing.read_text().splitlines():
            try:
                done.add(json.loads(line)["clip_id"])
            except (json.JSONDecodeError, KeyError):
                continue
    return done


def _worker(args: tuple[list[dict], str, int]) -> list[dict]:
    jobs, out, seed = args
    rows = []
    for job in jobs:
        try:
            facts = render_job(job, Path(out), seed)
        except Exception as exc:  # music21 parse failures of odd scores: skip, note why
            rows.append({"clip_id": _clip_id(job), "skipped": f"{type(exc).__name__}"})
            continue
        if facts is None:
            rows.append({"clip_id": _clip_id(job), "skipped": "unusable"})
        else:
            rows.append(asdict(facts))
    return rows


def build(
    out_dir: Path, limit: int, workers: int = 2, seed: int = 0, time_budget: float | None = None
) -> int:
    """Render the planned clips not yet in ``out_dir``; returns the number rendered now."""
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from tqdm import tqdm

    out_dir.mkdir(parents=True, exist_ok=True)
    listing = out_dir / "clips.jsonl"
    done = _done_ids(listing)
    jobs = [j for j in plan(limit, seed) if _clip_id(j) not in done]
    # one chunk per piece: it is parsed once and copied for each variation
    chunks: list[list[dict]] = []
    for job in jobs:
        if chunks and chunks[-1][0]["rel"] == job["rel"]:
            chunks[-1].append(job)
        else:
            chunks.append([job])
    started = time.monotonic()
    rendered = 0
    with ProcessPoolExecutor(max_workers=workers) as pool, listing.open("a") as out:
        pending = {pool.submit(_worker, (chunk, str(out_dir), seed)) for chunk in chunks}
        bar = tqdm(total=len(jobs), desc="render", unit="clip")
        stopping = False
        for future in as_completed(pending):
            if future.cancelled():
                continue
            rows = future.result()
            for row in rows:
                out.write(json.dumps(row) + "\n")
                rendered += "skipped" not in row
            out.flush()
            bar.update(len(rows))
            if not stopping and time_budget and time.monotonic() - started > time_budget:
                # chunks already running finish and are recorded; queued ones are dropped
                stopping = True
                for f in pending:
                    f.cancel()
                print("time budget reached; run again to continue", file=sys.stderr)
        bar.close()
    write_split(out_dir)
    return rendered


def write_split(out_dir: Path) -> Path:
    """The fixed split (collection and piece lists per split) as JSON beside the clips."""
    out_dir = Path(out_dir)
    clips = read_clips(out_dir)
    split: dict[str, dict] = {}
    for c in clips:
        entry = split.setdefault(c.split, {"collections": set(), "pieces": set(), "clips": 0})
        entry["collections"].add(c.collection)
        entry["pieces"].add(c.piece)
        entry["clips"] += 1
    data = {
        k: {
            "collections": sorted(v["collections"]),
            "pieces": sorted(v["pieces"]),
            "clips": v["clips"],
        }
        for k, v in split.items()
    }
    path = out_dir / "split.json"
    path.write_text(json.dumps(data, indent=1))
    return path
