"""Voice commands: how often a spoken command does what the typed one does, and how fast.

Each in-domain command (names from the demo library) is spoken by espeak-ng
(several voices and speeds) and flite (three voices), end-pointed, recognised
by Whisper tiny.en with the library's names in its prompt, and handled by the
Assistant. A take is correct when its intent and key entity (the NLU's parse,
whatever turn came before) equal those of the same command typed (and the
typed command's intent is the expected one, else the command is reported as an
NLU miss, not counted).

End of speech -> answer, as ``assistant.voice.listen`` does it: decoding
starts once the speaker has been quiet for ``early_s`` (audio time), the
end-pointer confirms the end after ``hangover_s``, and the turn is handled
once both are done: max(early_s + decoding, hangover_s) + handling the turn
(decoding and handling measured here, on the speech ``listen`` would decode).

Two sets are measured and reported apart: COMMANDS, the set the recogniser
was developed against, and HELD_OUT, other phrasings and other demo-library
names that were not looked at while tuning (a guard against fitting the
recogniser to twenty sentences). NEW_HELD_OUT was written for issue 13 before its second
pass was tuned, and never tuned against (the second pass's weights were set on COMMANDS
alone); its one command the typed NLU misread ("i feel like listening to franz schubert")
it reads since three other wishes for an artist were added to the NLU data. The bonus for a
text the NLU understands (recognizer.UNDERSTOOD_CONFIDENCE) was written after this list's
misses had been seen; its constants are the own-words bonus and 0.5, not set on it. Festival's
voices (where installed) are a voice family held out the same way: reported per family, not
in the headline figures.

Usage: .venv/bin/python benchmarks/voice.py [--db URL] [--quick] [--threads N]
Writes benchmarks/results/voice.json. Targets: accuracy >= 97%, p50 <= 0.8 s, p95 <= 1.2 s.
pocketsphinx, measured by this script's previous version on the same commands
and the five espeak-ng voices: 85% / 81% (held out), 0.52 s median.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from report import write_results

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

# (command, expected intent, key entity name or None)
COMMANDS = [
    ("play battle music", "play_music", "track"),
    ("play the deep path", "play_music", "track"),
    ("play something by doug kaufman", "play_music", "artist"),
    ("play something by maxstack", "play_music", "artist"),
    ("put on siege of laurelmor", "play_music", "track"),
    ("how many tracks by maxstack", "ask_stats", "artist"),
    ("how many tracks are there", "ask_stats", None),
    ("who composed the deep path", "ask_track_info", "track"),
    ("recommend some calm piano music", "recommend", "mood"),
    ("play some epic orchestral music", "play_music", "mood"),
    ("next track", "playback_control", "control"),
    ("pause the music", "playback_control", "control"),
    ("volume up", "playback_control", "control"),
    ("what is playing", "ask_track_info", None),
    ("play something like this", "more_like_this", None),
    ("something faster", "refine", "direction"),
    ("how long is this track", "ask_track_info", "attribute"),
    ("what does tempo mean", "ask_concept", None),
    ("thank you", "thank", None),
    ("help", "help", None),
]
# not used while tuning: other phrasings (none of them an NLU example verbatim where a
# short command allows) and names the NLU examples do not contain
HELD_OUT = [
    ("play maple leaf rag", "play_music", "track"),
    ("put on into the shadows", "play_music", "track"),
    ("i want to hear orbital elevator", "play_music", "track"),
    ("play some music by scott joplin", "play_music", "artist"),
    ("play something by amy beach", "play_music", "artist"),
    ("how many songs are by joseph haydn", "ask_stats", "artist"),
    ("who wrote the king is dead", "ask_track_info", "track"),
    ("what key is journey's end in", "ask_track_info", "track"),
    ("how fast is this song", "ask_track_info", "attribute"),
    ("recommend some relaxing guitar music", "recommend", "instrument"),
    ("play some jazz", "play_music", "genre"),
    ("stop the music", "playback_control", "control"),
    ("turn the volume down", "playback_control", "control"),
    ("go back to the previous track", "playback_control", "control"),
    ("something slower", "refine", "direction"),
    ("more like this one", "more_like_this", None),
    ("what is a fugue", "ask_concept", None),
    ("hello there", "greet", None),
    ("goodbye", "goodbye", None),
    ("thanks so much", "thank", None),
]
# written before the second pass was tuned (issue 13) and never tuned against: new phrasings
# (none an NLU example verbatim) and demo-library names no other set uses
NEW_HELD_OUT = [
    ("play the dangerous symphony", "play_music", "track"),
    ("could you put on return to wesnoth", "play_music", "track"),
    ("i'd love to hear casualties of war", "play_music", "track"),
    ("let me hear elf land", "play_music", "track"),
    ("play some songs by clara schumann", "play_music", "artist"),
    ("i feel like listening to franz schubert", "play_music", "artist"),
    ("queue up some mattias westlund", "play_music", "artist"),
    ("how many tracks do we have by ryan reilly", "ask_stats", "artist"),
    ("how many pieces by claudio monteverdi", "ask_stats", "artist"),
    ("who is the composer of transience", "ask_track_info", "track"),
    ("what tempo is knalgan theme", "ask_track_info", "track"),
    ("what key is this piece in", "ask_track_info", "attribute"),
    ("can you recommend something sad", "recommend", "mood"),
    ("search for some harpsichord music", "search_music", "instrument"),
    ("skip to the next song", "playback_control", "control"),
    ("turn it up a little", "playback_control", "control"),
    ("resume playing", "playback_control", "control"),
    ("make it a bit faster", "refine", "direction"),
    ("find more songs like this", "more_like_this", None),
    ("explain what a hornpipe is", "ask_concept", None),
    ("good evening to you", "greet", None),
    ("okay see you later", "goodbye", None),
    ("what are you able to do", "help", None),
    ("no not right now", "deny", None),
]
SETS = {"main": COMMANDS, "held_out": HELD_OUT, "new_held_out": NEW_HELD_OUT}
VOICES = [
    ("en-us", 140),
    ("en-us", 175),
    ("en-gb", 140),
    ("en-gb", 175),
    ("en+f3", 175),
    ("flite:slt", 175),
    ("flite:rms", 175),
    ("flite:awb", 160),
]
# Festival's voices (text2wave: two diphone voices, one HTS voice): never looked at while
# tuning, reported apart from the eight above, left out where Festival is not installed
HELD_OUT_VOICES = [
    ("festival:kal_diphone", 175),
    ("festival:ked_diphone", 175),
    ("festival:cmu_us_slt_arctic_hts", 175),
]
TARGETS = {"command_accuracy": 0.97, "answer_s_p50": 0.8, "answer_s_p95": 1.2}


def family(voice: str) -> str:
    return voice.split(":")[0] if ":" in voice else "espeak-ng"


def key_of(parse, entity: str | None) -> tuple[str | None, str | None]:
    """The intent and key entity of a parse: the NLU's own, before the dialogue's context
    (the same text must score the same whatever turn came before it)."""
    if parse is None:
        return None, None
    value = parse.first(entity) if entity else None
    return parse.intent, (value.lower() if value else None)


def accuracy_of(rows: list[dict]) -> float:
    return sum(r["correct"] for r in rows) / max(1, len(rows))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="catalog URL (default: $MUSICBERT_DB or the home's SQLite)")
    parser.add_argument("--quick", action="store_true", help="three voices only")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for decoding")
    args = parser.parse_args()

    import shutil

    from assistant.dialogue import Assistant
    from assistant.phrasings import spoken_words
    from assistant.recognizer import load_model, normalise
    from assistant.voice import EndpointerConfig, Recognizer, speech_from_file, write_speech

    voices = [VOICES[1], VOICES[2], VOICES[5]] if args.quick else VOICES + HELD_OUT_VOICES
    for engine, program in (("flite", "flite"), ("festival", "text2wave")):
        if shutil.which(program) is None:
            print(f"{program} is not installed: {engine}'s voices are left out", file=sys.stderr)
            voices = [v for v in voices if family(v[0]) != engine]
    db_url = args.db or os.environ.get("MUSICBERT_DB")
    if db_url is None:  # the demo library's names, built in seconds (benchmarks/voice_library.py)
        from voice_library import build_names_library

        home = Path(tempfile.mkdtemp(prefix="voice-bench-"))
        os.environ["MUSICBERT_HOME"] = str(home)
        db_url = f"sqlite:///{home / 'catalog.db'}"
        print(f"demo-library names: {build_names_library(db_url)} tracks", file=sys.stderr)
    else:
        # the turns handled here write to the catalog (play history, a playlist a misheard
        # command made), and a playlist's name changes how the NLU parses: work on a copy
        from catalog.copy import copy_catalog
        from catalog.db import open_catalog

        copy = Path(tempfile.mkdtemp(prefix="voice-bench-db-")) / "catalog.db"
        copy_catalog(open_catalog(db_url), open_catalog(f"sqlite:///{copy}"))
        db_url = f"sqlite:///{copy}"
    started = time.perf_counter()
    assistant = Assistant.from_defaults(db_url=db_url, player=None)
    load_model(args.threads)
    recognizer = Recognizer.for_assistant(assistant)
    setup_s = time.perf_counter() - started
    hangover = EndpointerConfig().hangover_s
    early = EndpointerConfig().early_s

    rows = []
    nlu_misses = []
    with tempfile.TemporaryDirectory() as tmp:
        for set_name, commands in SETS.items():
            for text, intent, entity in commands:
                typed = key_of(assistant.nlu.parse(text), entity)
                if typed[0] != intent or (entity and typed[1] is None):
                    nlu_misses.append(
                        {"set": set_name, "command": text, "typed_parse": typed, "expected": intent}
                    )
                for voice, speed in voices:
                    wav = write_speech(text, Path(tmp) / "cmd.wav", voice, speed)
                    speech = speech_from_file(wav)
                    t0 = time.perf_counter()
                    heard = recognizer.recognize(speech)
                    t1 = time.perf_counter()
                    # the turn as Assistant.handle runs it, its parse kept for the key
                    parse = assistant.nlu.parse(heard.text) if heard.text else None
                    if parse is not None:
                        assistant.respond(parse)
                    t2 = time.perf_counter()
                    spoken = key_of(parse, entity)
                    rows.append(
                        {
                            "set": set_name,
                            "command": text,
                            "voice": voice,
                            "speed": speed,
                            "heard": heard.heard,
                            "text": heard.text,
                            "words_exact": heard.text == normalise(" ".join(spoken_words(text))),
                            "correct": spoken == typed and typed[0] == intent,
                            "spoken_parse": spoken,
                            "typed_parse": typed,
                            "decode_s": t1 - t0,
                            "handle_s": t2 - t1,
                            "answer_s": max(hangover, early + t1 - t0) + (t2 - t1),
                        }
                    )
    missed = {(m["set"], m["command"]) for m in nlu_misses}
    counted = [r for r in rows if (r["set"], r["command"]) not in missed]
    families = sorted({family(v) for v, _ in voices}, key=["espeak-ng", "flite", "festival"].index)
    by_family = {
        name: {
            f: accuracy_of([r for r in counted if r["set"] == name and family(r["voice"]) == f])
            for f in families
        }
        for name in SETS
    }
    # the targets are measured on the eight benchmark voices; Festival's are held out
    counted_all, counted = counted, [r for r in counted if family(r["voice"]) != "festival"]
    answer = [r["answer_s"] for r in rows]
    decode = [r["decode_s"] for r in rows]
    handle = [r["handle_s"] for r in rows]
    by_set = {name: accuracy_of([r for r in counted if r["set"] == name]) for name in SETS}
    by_voice = {
        name: {
            f"{v} -s {s}": accuracy_of(
                [r for r in counted_all if r["set"] == name and (r["voice"], r["speed"]) == (v, s)]
            )
            for v, s in voices
        }
        for name in SETS
    }
    accuracy = by_set["main"]
    summary = {
        "takes": len(rows),
        "takes_counted": {name: sum(r["set"] == name for r in counted) for name in SETS},
        "command_accuracy": round(accuracy, 3),
        "command_accuracy_held_out": round(by_set["held_out"], 3),
        "command_accuracy_new_held_out": round(by_set["new_held_out"], 3),
        "accuracy_by_family": {
            n: {f: round(a, 3) for f, a in v.items()} for n, v in by_family.items()
        },
        "accuracy_by_voice": {
            n: {k: round(a, 3) for k, a in v.items()} for n, v in by_voice.items()
        },
        "words_exact": {
            name: round(sum(r["words_exact"] for r in rows if r["set"] == name) / n_takes, 3)
            for name in SETS
            if (n_takes := sum(r["set"] == name for r in rows))
        },
        "answer_s_median": round(statistics.median(answer), 3),
        "answer_s_p95": round(percentile(answer, 0.95), 3),
        "decode_s_median": round(statistics.median(decode), 3),
        "handle_s_median": round(statistics.median(handle), 3),
        "decode_s_p95": round(percentile(decode, 0.95), 3),
        "hangover_s": hangover,
        "early_s": early,
        "threads": args.threads,
        "prompt": recognizer.prompt,
        "setup_s": round(setup_s, 2),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "targets": TARGETS,
        "ratio_accuracy_to_target": round(accuracy / TARGETS["command_accuracy"], 3),
        "ratio_held_out_accuracy_to_target": round(by_set["held_out"] / 0.95, 3),
        "ratio_answer_p50_to_target": round(statistics.median(answer) / 0.8, 3),
        "ratio_answer_p95_to_target": round(percentile(answer, 0.95) / 1.2, 3),
        "voices": [f"{v} -s {s}" for v, s in voices],
        "nlu_misses": nlu_misses,
    }
    for set_name, commands in SETS.items():
        print(f"{set_name + ' command':36} {'right':>6} {'exact':>6}  heard (first voice)")
        for text, _, _ in commands:
            takes = [r for r in rows if r["set"] == set_name and r["command"] == text]
            right = sum(r["correct"] for r in takes)
            same = sum(r["words_exact"] for r in takes)
            print(
                f"{text:36} {right:>3}/{len(takes):<2} {same:>3}/{len(takes):<2}  "
                f"{takes[0]['heard']}"
                + ("" if takes[0]["heard"] == takes[0]["text"] else f" -> {takes[0]['text']}")
            )
        print()
    print(f"{'voice':16}" + "".join(f"{name:>10}" for name in SETS))
    for v, s in voices:
        label = f"{v} -s {s}"
        print(f"{label:16}" + "".join(f"{by_voice[name][label]:>10.1%}" for name in SETS))
    print()
    print(f"{'metric':28} {'value':>8} {'target':>8}")
    print(f"{'command accuracy (main)':28} {accuracy:>8.1%} {'>= 97%':>8}")
    print(f"{'command accuracy (held out)':28} {by_set['held_out']:>8.1%} {'>= 95%':>8}")
    print(f"{'command accuracy (new held out)':28} {by_set['new_held_out']:>8.1%} {'>= 95%':>8}")
    print(f"{'by voice family (Festival held out)':28}")
    for f in families:
        shares = " ".join(f"{by_family[name][f]:>8.1%}" for name in SETS)
        print(f"{'  ' + f + ' (' + ', '.join(SETS) + ')':28} {shares}")
    for name, share in summary["words_exact"].items():
        print(f"{'words exactly right, ' + name:28} {share:>8.1%}")
    print(f"{'end of speech -> answer p50':28} {summary['answer_s_median']:>7.3f}s {'<= 0.8s':>8}")
    print(f"{'end of speech -> answer p95':28} {summary['answer_s_p95']:>7.3f}s {'<= 1.2s':>8}")
    print(
        f"{'  decoding p50 / p95':28} {summary['decode_s_median']:>7.3f}s "
        f"{summary['decode_s_p95']:>7.3f}s"
    )
    print(f"{'  the turn p50':28} {summary['handle_s_median']:>7.3f}s")
    print(f"{'  silence before decoding':28} {early:>7.3f}s (hangover {hangover:.2f}s)")
    print(f"{'load average (1, 5, 15 min)':28} {summary['load_average']}")
    if nlu_misses:
        print(f"\n{len(nlu_misses)} command(s) not counted (the typed text already misparsed):")
        for miss in nlu_misses:
            print(f"  {miss['command']!r}: {miss['typed_parse']} (expected {miss['expected']})")
    print()
    write_results(
        ROOT / "benchmarks" / "results" / "voice.json", {"summary": summary, "takes": rows}
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
