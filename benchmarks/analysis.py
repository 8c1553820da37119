"""Audio analysis accuracy (key, tempo, loudness) and speed, on real and rendered music.

    python benchmarks/analysis.py [--rendered N] [--no-essentia]

Sets, and how each label was obtained (nothing here comes from GTZAN):

- real key dev set: recordings in ``../shared/data/recordings`` whose key a source states:
  Tchaikovsky's Dance of the Sugar Plum Fairy (Kevin MacLeod's recording; E minor, the
  score's key); Sorohan's jazz trumpet loop, from a pack stated to be "in F, mostly
  Blues and Dorian scale" (labelled F minor: Dorian is a minor mode); Brahms's Hungarian
  Dance No. 5 for string orchestra, whose file title says "in F sharp minor" (the piano
  original's key) but which is played in G minor, the key of the usual orchestral
  arrangements: the recording is at A440 (librosa's tuning estimate: 0 cents), its
  chroma peaks on D, G, Bb, A and F#, and ours and Essentia's three profiles all hear
  G minor (the v1 method said D major), so it is labelled G minor. That label
  leans on the estimators: read the real-set figures, Essentia's included, with that
  in mind. Each clip is also pitch-shifted by -5..+6 semitones (librosa's phase
  vocoder; the label moves with it) so every tonic occurs: 3 pieces x 12 = 36 clips.
  Three pieces are few: the rendered set carries more of the evidence.
- real tempo dev set: the eight Frets on Fire songs (Debian ``fretsonfire-songs-*``,
  the mixed ``song.ogg``), labelled with the tempo of the chart's ``notes.mid`` (the
  charter's beat grid, which must follow the recording for the game to be playable),
  one tempo per song (two songs' maps change tempo: their first tempo is used and the
  clip is the first 60 s); plus the trumpet loop (stated 90 bpm). Drones with no beat
  (Sonic Pi's ``ambi_drone``/``ambi_haunted_hum``/``ambi_lunar_land``/``ambi_glass_hum``,
  LMMS's pads and drones), expected to get no tempo.
- rendered set: the 50 pieces of ``catalog.demo.PIECES`` rendered with FluidSynth for 30 s,
  transposed by a different interval each; key label = music21's analysis of the
  rendered excerpt (as ``catalog.render`` stores it), tempo label = the quarter-note
  tempo used, and the score's time signature adds its beat and bar as metrical levels
  (a 6/8 jig's dotted-quarter beat is 2/3 of the quarter-note tempo).

Measures: key exact and MIREX-weighted (fifth 0.5, relative 0.3, parallel 0.2); tempo
within 4 % of the main pulse (strict) and of the pulse, half, double, third or triple
(any metrical level); drones given no tempo. "old" is the v1 method (KK profile on
power chroma; tempo by the prior-weighted ACF peak), computed from the same pass.
Essentia 2.1b6's KeyExtractor (AGPL; measured only, never imported by the package) is a
reference where installed. Writes ``benchmarks/results/analysis.json`` and the QA's
trust table ``catalog/analysis/trust.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from report import write_results  # noqa: E402

from catalog.analysis import FRAME_RATE, SR, TrackAnalyser  # noqa: E402
from catalog.analysis.key import (  # noqa: E402
    PITCH_CLASSES,
    PROFILES,
    estimate_key,
)
from catalog.analysis.tempo import TEMPO_MAX, TEMPO_MIN  # noqa: E402
from catalog.keys import key_label, mirex_score, pitch_class  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MUSICBERT_SHARED", ROOT.parent / "shared"))
RECORDINGS = SHARED / "data" / "recordings"
PKGS = Path.home() / ".cache" / "musicbert-train" / "pkgs"
CACHE = Path.home() / ".cache" / "musicbert-bench" / "analysis"
RESULTS = ROOT / "benchmarks" / "results" / "analysis.json"
TRUST = ROOT / "catalog" / "analysis" / "trust.json"

REAL_KEYS = [
    ("Hungarian_Dance_number_5_-_Allegro_in_F_sharp_minor_(string_orchestra).ogg", "G minor",
     "title: 'Allegro in F sharp minor'"),
    ("Kevin_MacLeod_-_P_I_Tchaikovsky_Dance_of_the_Sugar_Plum_Fairy.ogg", "E minor",
     "Tchaikovsky's score (E minor); arrangement assumed untransposed"),
    ("sorohanro_-_solo-trumpet-06.ogg", "F minor",
     "pack text: 'in F, mostly Blues and Dorian scale'"),
]  # fmt: skip
SHIFTS = range(-5, 7)
#: Unlabelled real music for the agreement check: (package, at most this many files).
AGREEMENT_PACKAGES = {
    "nexuiz-music": 8,  # electronic
    "fretsonfire-songs-muldjord": 4,  # metal (song.ogg)
    "fretsonfire-songs-sectoid": 4,  # rock
    "hedgewars-data": 8,
    "supertuxkart-data": 8,
    "hyperrogue-music": 8,
    "singularity-music": 8,
    "planetblupi-music-ogg": 8,
}
DRONES = [
    "sonic-pi-samples/usr/share/sonic-pi/samples/ambi_drone.flac",
    "sonic-pi-samples/usr/share/sonic-pi/samples/ambi_haunted_hum.flac",
    "sonic-pi-samples/usr/share/sonic-pi/samples/ambi_lunar_land.flac",
    "sonic-pi-samples/usr/share/sonic-pi/samples/ambi_glass_hum.flac",
    "lmms-common/usr/share/lmms/samples/stringsnpads/korg_poly6_drone01.ogg",
    "lmms-common/usr/share/lmms/samples/stringsnpads/space_strings01.ogg",
    "lmms-common/usr/share/lmms/samples/stringsnpads/nord_ambient01.ogg",
    "lmms-common/usr/share/lmms/samples/stringsnpads/heaven_strings01.ogg",
]


@dataclass
class Clip:
    name: str
    audio: np.ndarray
    source: str  # real / rendered / drone
    key: str | None = None
    tempo: float | None = None
    how: str = ""
    results: dict = field(default_factory=dict)
    #: more metrical levels (multiples of ``tempo``) the score's meter defines
    levels: tuple[float, ...] = ()


def _load(path: Path, offset: float = 0.0, seconds: float | None = None) -> np.ndarray:
    import librosa

    y, _ = librosa.load(str(path), sr=SR, mono=True, offset=offset, duration=seconds)
    return y.astype(np.float32)


def _cached(name: str, make) -> np.ndarray:
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"{name}.npy"
    if path.is_file():
        return np.load(path)
    y = make()
    np.save(path, y)
    return y


def transpose_key(key: str, steps: int) -> str:
    tonic, mode = key.split()
    return f"{PITCH_CLASSES[(pitch_class(tonic) + steps) % 12]} {mode}"


def real_key_clips() -> list[Clip]:
    import librosa

    clips = []
    if not RECORDINGS.is_dir():
        print(f"(no {RECORDINGS}: real key set skipped)")
        return clips
    for fname, key, how in REAL_KEYS:
        base = _cached(Path(fname).stem[:40], lambda f=fname: _load(RECORDINGS / f))
        for n in SHIFTS:

            def make(base=base, n=n):
                return librosa.effects.pitch_shift(base, sr=SR, n_steps=n).astype(np.float32)

            y = base if n == 0 else _cached(f"{Path(fname).stem[:40]}_{n:+d}", make)
            clips.append(Clip(f"{fname[:30]} {n:+d}", y, "real", transpose_key(key, n), how=how))
    return clips


def _midi_tempos(path: Path) -> list[float]:
    from music21 import midi

    mf = midi.MidiFile()
    mf.open(str(path))
    mf.read()
    mf.close()
    out = []
    for track in mf.tracks:
        for ev in track.events:
            if ev.type == midi.MetaEvents.SET_TEMPO:
                out.append(60e6 / int.from_bytes(ev.data, "big"))
    return out


def real_tempo_clips() -> list[Clip]:
    clips = []
    for notes in sorted(PKGS.glob("fretsonfire-songs-*/**/notes.mid")):
        song = notes.parent / "song.ogg"
        tempos = _midi_tempos(notes)
        if not song.is_file() or not tempos:
            continue
        name = notes.parent.name
        y = _cached(f"fof_{name}", lambda s=song: _load(s, 0.0, 60.0))
        clips.append(Clip(f"FoF {name}", y, "real", tempo=tempos[0], how="notes.mid tempo"))
    trumpet = RECORDINGS / "sorohanro_-_solo-trumpet-06.ogg"
    if trumpet.is_file():
        y = _cached("trumpet", lambda: _load(trumpet))
        clips.append(Clip("trumpet loop", y, "real", tempo=90.0, how="pack text: 90 bpm"))
    for rel in DRONES:
        path = PKGS / rel
        if path.is_file():
            y = _cached("drone_" + path.stem, lambda p=path: _load(p))
            clips.append(Clip(f"drone {path.stem}", y, "drone", how="a drone/pad sample"))
    return clips


def agreement_clips() -> list[Clip]:
    """Real music with no key label: 30 s from 30 s in, for the Essentia agreement check."""
    clips = []
    for package, limit in AGREEMENT_PACKAGES.items():
        files = [
            p
            for p in sorted((PKGS / package).rglob("*.ogg"))
            if p.stat().st_size > 500_000 and p.name not in ("guitar.ogg", "rhythm.ogg")
        ]
        for path in files[:limit]:
            name = f"{package}/{path.parent.name}/{path.stem}"
            y = _cached("agree_" + name.replace("/", "__"), lambda p=path: _load(p, 30.0, 30.0))
            if y.size >= 10 * SR:
                clips.append(Clip(name, y, "unlabelled"))
    return clips


def _meter(ref: str) -> str | None:
    """The score's first time signature, e.g. "6/8"."""
    from music21 import corpus, meter

    score = corpus.parse(ref)
    for ts in score.recurse().getElementsByClass(meter.TimeSignature):
        return ts.ratioString
    return None


def _meter_levels(ratio: str | None) -> tuple[float, ...]:
    """The beat and bar of a meter as multiples of the quarter-note tempo: 6/8 has a
    dotted-quarter beat (2/3) and a bar of two of them (1/3); 3/2 a half-note beat (1/2)
    and a bar of three (1/6). These are metrical levels a listener may tap."""
    if not ratio:
        return ()
    num, den = (int(x) for x in ratio.split("/"))
    compound = den >= 8 and num % 3 == 0 and num > 3
    beat_quarters = 1.5 * 8 / den if compound else 4 / den
    return (1 / beat_quarters, 1 / (num * 4 / den))


def rendered_clips(count: int) -> list[Clip]:
    from catalog.demo_pieces import PIECES
    from catalog.render import render_score

    clips = []
    meta_path = CACHE / "rendered.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    chosen = PIECES[:: max(1, len(PIECES) // max(count, 1))][:count]
    for i, piece in enumerate(chosen):
        shift = (i * 5) % 12 - 5
        tag = f"{piece.slug}_{shift:+d}"
        if tag not in meta:
            from music21 import corpus

            out = CACHE / f"{tag}.wav"
            try:
                info = render_score(
                    corpus.parse(piece.ref), out, piece.programs, piece.tempo_scale,
                    shift, max_seconds=30.0, default_qpm=piece.default_qpm, sample_rate=SR,
                )  # fmt: skip
            except Exception as exc:  # a score that does not render is left out, said so
                print(f"  render {piece.ref}: {exc}")
                continue
            meta[tag] = {"key": info.key, "qpm": info.qpm, "title": piece.title}
        if "meter" not in meta[tag]:
            meta[tag]["meter"] = _meter(piece.ref)
        CACHE.mkdir(parents=True, exist_ok=True)
        meta_path.write_text(json.dumps(meta))
        m = meta[tag]
        y = _load(CACHE / f"{tag}.wav")
        clip = Clip(f"{m['title'][:30]} {shift:+d}", y, "rendered", m["key"], m["qpm"])
        clip.levels = _meter_levels(m["meter"])
        clip.how = f"score: music21 key analysis; quarter = {m['qpm']:.0f}; meter {m['meter']}"
        clips.append(clip)
    return clips


# ---- the v1 method, kept here only to measure it -------------------------------------


def old_tempo(acf: np.ndarray) -> float | None:
    lags = np.arange(acf.size, dtype=np.float64)
    with np.errstate(divide="ignore"):
        bpm = np.where(lags > 0, 60.0 * FRAME_RATE / np.maximum(lags, 1e-9), np.inf)
    valid = (bpm >= TEMPO_MIN) & (bpm <= TEMPO_MAX)
    prior = np.exp(-0.5 * np.log2(np.where(valid, bpm, 1.0) / 120.0) ** 2)
    score = np.where(valid, np.maximum(acf, 0.0) * prior, -np.inf)
    best = int(np.argmax(score))
    lag = float(best)
    if 0 < best < acf.size - 1:
        a, b, c = acf[best - 1], acf[best], acf[best + 1]
        if a - 2 * b + c < 0:
            lag += 0.5 * (a - c) / (a - 2 * b + c)
    return float(60.0 * FRAME_RATE / lag)


# ---- measuring -----------------------------------------------------------------------


def essentia_keys(y: np.ndarray) -> dict[str, str]:
    import essentia.standard as es

    out = {}
    for profile in ("bgate", "edma", "temperley"):
        key, scale, _ = es.KeyExtractor(profileType=profile, sampleRate=SR)(y)
        tonic = PITCH_CLASSES[pitch_class(key)]
        out[f"essentia {profile}"] = f"{tonic} {scale}"
    return out


def analyse(clip: Clip, use_essentia: bool) -> float:
    start = time.perf_counter()
    analyser = TrackAnalyser()
    for i in range(0, clip.audio.size, 30 * SR):
        analyser.update(clip.audio[i : i + 30 * SR])
    result = analyser.finish()
    elapsed = time.perf_counter() - start
    r = clip.results
    r["ours"] = {"key": key_label(result.key, result.mode), "conf": result.key_confidence,
                 "tempo": result.tempo, "tempo_conf": result.tempo_confidence}  # fmt: skip
    for profile in PROFILES:
        r[f"profile {profile}"] = {"key": key_label(*estimate_key(analyser.chroma36, profile)[:2])}
    acf = analyser.acf / max(analyser.acf_windows, 1)
    r["old"] = {"key": key_label(*estimate_key(analyser.chroma_power, "krumhansl")[:2]),
                "tempo": old_tempo(acf) if analyser.acf_windows else None}  # fmt: skip
    if use_essentia and (clip.key or clip.source == "unlabelled"):
        for name, key in essentia_keys(clip.audio).items():
            r[name] = {"key": key}
    return elapsed


def tempo_hits(
    estimate: float | None, truth: float, extra: tuple[float, ...] = ()
) -> tuple[bool, bool]:
    """(within 4 % of the main pulse, within 4 % of a metrical level): the pulse, its half,
    double, third and triple, and the levels the score's meter adds (``extra``)."""
    if not estimate:
        return False, False
    strict = abs(estimate / truth - 1) <= 0.04
    levels = (1, 2, 0.5, 3, 1 / 3, *extra)
    return strict, any(abs(estimate / (truth * f) - 1) <= 0.04 for f in levels)


def key_table(clips: list[Clip]) -> dict[str, dict]:
    keyed = [c for c in clips if c.key]
    methods = sorted({m for c in keyed for m, v in c.results.items() if "key" in v})
    table = {}
    for m in methods:
        scores = [mirex_score(c.results[m]["key"], c.key) for c in keyed if m in c.results]
        table[m] = {"n": len(scores), "exact": float(np.mean([s == 1.0 for s in scores])),
                    "mirex": float(np.mean(scores))}  # fmt: skip
    return table


def agreement_table(clips: list[Clip]) -> dict[str, dict]:
    """MIREX-weighted agreement of ours and v1 with each Essentia profile (no labels)."""
    table: dict[str, dict] = {}
    for m in ("ours", "old"):
        for ref in ("essentia bgate", "essentia edma", "essentia temperley"):
            pairs = [
                (c.results[m]["key"], c.results[ref]["key"]) for c in clips if ref in c.results
            ]
            if pairs:
                scores = [mirex_score(a, b) for a, b in pairs]
                table[f"{m} vs {ref}"] = {"n": len(scores), "exact": float(np.mean(
                    [s == 1.0 for s in scores])), "mirex": float(np.mean(scores))}  # fmt: skip
    return table


def tempo_table(clips: list[Clip]) -> dict[str, dict]:
    timed = [c for c in clips if c.tempo]
    table = {}
    for m in ("ours", "old"):
        hits = [tempo_hits(c.results[m]["tempo"], c.tempo, c.levels) for c in timed]
        table[m] = {"n": len(hits), "strict": float(np.mean([h[0] for h in hits])),
                    "any_level": float(np.mean([h[1] for h in hits]))}  # fmt: skip
    return table


#: A key is stated without a hedge only where the benchmark found it right at least this often.
STATE_KEY_ABOVE = 2 / 3


def hedge_threshold(pairs: list[tuple[float, float]], bands=(0.0, 0.25, 0.5, 0.75)) -> dict:
    """Accuracy of keys in each confidence band (``pairs``: confidence, MIREX score); the
    hedge threshold is the top of the highest band (with at least 3 keys) where the exact
    key is wrong more than one time in three: below it the QA says "I'm not sure"."""
    out: dict = {"bands": []}
    threshold = 0.0
    for lo, hi in zip(bands, [*bands[1:], 1.0], strict=True):
        inside = [s for conf, s in pairs if lo <= conf < hi or (hi == 1.0 and conf == 1.0)]
        exact = float(np.mean([s == 1.0 for s in inside])) if inside else None
        mirex = float(np.mean(inside)) if inside else None
        out["bands"].append({"from": lo, "to": hi, "n": len(inside), "exact": exact,
                             "mirex": mirex})  # fmt: skip
        if exact is not None and len(inside) >= 3 and exact < STATE_KEY_ABOVE:
            threshold = hi
    out["hedge_below"] = threshold
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--rendered", type=int, default=50, help="demo pieces to render (default 50: all)"
    )
    parser.add_argument("--no-essentia", action="store_true")
    args = parser.parse_args(argv)
    try:
        import essentia.standard  # noqa: F401

        use_essentia = not args.no_essentia
    except ImportError:
        use_essentia = False
    sets = {
        "real": real_key_clips() + real_tempo_clips(),
        "rendered": rendered_clips(args.rendered),
    }
    unlabelled = agreement_clips() if use_essentia else []
    seconds = elapsed = 0.0
    for clips in sets.values():
        for clip in clips:
            elapsed += analyse(clip, use_essentia)
            seconds += clip.audio.size / SR
    for clip in unlabelled:  # not timed: speed is measured on the labelled sets
        analyse(clip, use_essentia)
    load = os.getloadavg()
    report: dict = {"sets": {}, "speed_x_realtime": seconds / elapsed,
                    "audio_minutes": seconds / 60, "load_average": load}  # fmt: skip
    for name, clips in sets.items():
        drones = [c for c in clips if c.source == "drone"]
        report["sets"][name] = {
            "key": key_table(clips),
            "tempo": tempo_table(clips),
            "drones_without_tempo": (
                f"{sum(c.results['ours']['tempo'] is None for c in drones)}/{len(drones)}"
                if drones
                else None
            ),
            "drones_pulse_clarity": [c.results["ours"]["tempo_conf"] for c in drones],
            "clips": [
                {"name": c.name, "key": c.key, "tempo": c.tempo, "how": c.how, "results": c.results}
                for c in clips
            ],  # fmt: skip
        }
    if unlabelled:
        report["agreement_with_essentia"] = {
            "what": "key agreement on unlabelled real game music (not accuracy)",
            "table": agreement_table(unlabelled),
            "clips": [{"name": c.name, "results": c.results} for c in unlabelled],
        }
    all_clips = [c for clips in sets.values() for c in clips]
    key_pairs = [(c.results["ours"]["conf"] or 0.0, mirex_score(c.results["ours"]["key"], c.key))
                 for c in all_clips if c.key]  # fmt: skip
    trust = {
        "source": "benchmarks/analysis.py (real key dev set + rendered set)",
        "key": hedge_threshold(key_pairs) | key_table(all_clips)["ours"],
        "tempo": tempo_table(all_clips)["ours"],
    }
    write_results(RESULTS, report, indent=1, default=float)
    TRUST.write_text(json.dumps(trust, indent=1) + "\n")
    for name, data in report["sets"].items():
        print(f"\n== {name} ==")
        print(f"{'key method':24s} {'n':>4s} {'exact':>6s} {'MIREX':>6s}")
        for m, row in data["key"].items():
            print(f"{m:24s} {row['n']:4d} {row['exact']:6.2f} {row['mirex']:6.2f}")
        print(f"{'tempo method':24s} {'n':>4s} {'strict':>6s} {'any':>6s}")
        for m, row in data["tempo"].items():
            print(f"{m:24s} {row['n']:4d} {row['strict']:6.2f} {row['any_level']:6.2f}")
        if data["drones_without_tempo"]:
            print(f"drones given no tempo: {data['drones_without_tempo']}")
    if unlabelled:
        print(f"\n== agreement with Essentia, {len(unlabelled)} unlabelled real tracks ==")
        for m, row in report["agreement_with_essentia"]["table"].items():
            print(f"{m:32s} {row['n']:4d} {row['exact']:6.2f} {row['mirex']:6.2f}")
    print(f"\nkey hedge below confidence {trust['key']['hedge_below']}: {trust['key']['bands']}")
    print(f"speed: {report['speed_x_realtime']:.0f}x real time over "
          f"{report['audio_minutes']:.1f} min, load average {load[0]:.2f}")  # fmt: skip
    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    print(f"commit {git.stdout.strip()}; wrote {RESULTS} and {TRUST}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
