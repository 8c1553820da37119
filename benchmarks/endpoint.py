"""End-pointing: the energy gate (assistant.endpoint) against Silero VAD, on the same recordings.

Synthesised commands (espeak-ng and flite voices) are put between 0.8 s of
lead and 1.5 s of trailing background, in three rooms: quiet (faint white
noise), a steady hum + hiss at -45 dBFS, and loud pink noise 20 dB under the
speech. Noise-only clips (white, pink, hum, near silence, reversed speech) test
rejection. Both end-pointers run the same streaming rule: speech starts after
~90 ms above threshold (200 ms pre-roll kept), decoding may start after
``early_s`` of silence, the utterance ends after ``hangover_s``. The energy gate
decides per 30 ms frame from levels; Silero (the ONNX model bundled with
faster-whisper) per 32 ms chunk from its speech probability (>= 0.5 speech,
< 0.35 silence). "wired" is assistant.endpoint as the assistant runs it: the gate in a
quiet room, Silero's probability where the noise floor is above NOISY_ROOM_DB.

Per clip: speech cut at the start (true start before the kept audio's start),
speech cut at the end (true end after the audio kept for decoding), wait from
the true end to the moment the decoding that is kept starts, an utterance ended inside the
speech (a pause taken for the end), and for noise-only clips whether speech
was (wrongly) found. Truth comes from the clean synthesised samples.

Usage: .venv/bin/python benchmarks/endpoint.py   (writes benchmarks/results/endpoint.json)
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from report import write_results

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TEXTS = [
    "play something by maxstack",
    "help",
    "who composed the deep path",
    "next track",
    "recommend some calm piano music, please",
    "how many tracks are there",
]
VOICES = [("en-us", 175), ("en-gb", 140), ("en+f3", 175), ("flite:slt", 175), ("flite:awb", 160)]
RATE = 16_000
# the gate alone, Silero alone, and what assistant.endpoint does (Silero in a noisy room)
VADS = ("energy", "silero", "wired")


def pink(n: int, rng: np.random.Generator) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(n))
    spectrum /= np.sqrt(np.maximum(np.arange(len(spectrum)), 1))
    x = np.fft.irfft(spectrum, n)
    return (x / np.sqrt(np.mean(x**2))).astype(np.float32)


def rooms(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    t = np.arange(n) / RATE
    hum = 0.5 * np.sin(2 * np.pi * 50 * t) + 0.3 * np.sin(2 * np.pi * 150 * t)
    hum = hum + 0.3 * rng.standard_normal(n)
    hum /= np.sqrt(np.mean(hum**2))
    return {
        "quiet": 10 ** (-70 / 20) * rng.standard_normal(n).astype(np.float32),
        "hum -45 dBFS": (10 ** (-45 / 20) * hum).astype(np.float32),
        "pink, SNR 20 dB": pink(n, rng),  # scaled per clip
    }


def energy_run(audio: np.ndarray, config, detector=None) -> dict:
    from assistant.endpoint import FRAME, Endpointer, looks_like_noise

    p = Endpointer(config, detector=detector)
    frame_s = FRAME / RATE
    early_at = None
    for i in range(0, len(audio) - FRAME + 1, FRAME):
        p.push(audio[i : i + FRAME])
        if p.start is not None and p.quiet_s == 0:
            early_at = None  # speech again: a decoding started in the pause is dropped
        if early_at is None and p.start is not None and p.quiet_s >= config.early_s:
            early_at = p.frames * frame_s
        if p.done:
            break
    if p.start is None:
        return {"found": False}
    kept = audio[p.start * FRAME : p.speech_stop() * FRAME]
    return {
        "found": not looks_like_noise(kept),
        "start": p.start * frame_s,
        "stop": p.speech_stop() * frame_s,
        "decode_at": early_at if early_at is not None else p.frames * frame_s,
        "end_at": (p.end or p.frames) * frame_s,
    }


def silero_run(audio: np.ndarray, config, model) -> dict:
    chunk = 512
    n = len(audio) // chunk * chunk
    probs = model(audio[:n]).reshape(-1)
    chunk_s = chunk / RATE
    start = None
    loud_run = quiet_run = 0
    last = None
    early_at = end_at = None
    for i, prob in enumerate(probs):
        if start is None:
            loud_run = loud_run + 1 if prob >= 0.5 else 0
            if loud_run >= 3:
                start = max(0.0, (i - 2) * chunk_s - config.pre_roll_s)
                last = i
            continue
        if prob >= 0.35:
            last, quiet_run, early_at = i, 0, None
        else:
            quiet_run += 1
        if early_at is None and quiet_run * chunk_s >= config.early_s:
            early_at = (i + 1) * chunk_s
        if quiet_run * chunk_s >= config.hangover_s:
            end_at = (i + 1) * chunk_s
            break
    if start is None:
        return {"found": False}
    stop = (last + 1) * chunk_s + config.early_s
    return {
        "found": True,
        "start": start,
        "stop": stop,
        "decode_at": early_at if early_at is not None else n / RATE,
        "end_at": end_at if end_at is not None else n / RATE,
    }


def run_vad(name: str, audio: np.ndarray, config, model) -> dict:
    """One of VADS on one clip: the energy gate, Silero alone, or the wired end-pointer."""
    from assistant.endpoint import SpeechDetector

    if name == "energy":
        return energy_run(audio, config)
    if name == "wired":
        return energy_run(audio, config, SpeechDetector.load())
    return silero_run(audio, config, model)


def main() -> int:
    from faster_whisper.vad import get_vad_model

    from assistant.endpoint import EndpointerConfig
    from assistant.voice import read_wav, write_speech

    config = EndpointerConfig(no_speech_timeout_s=float("inf"))
    model = get_vad_model()
    rng = np.random.default_rng(0)
    lead, trail = int(0.8 * RATE), int(1.5 * RATE)
    rows = []
    cost = dict.fromkeys(VADS, 0.0)
    audio_s = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for text in TEXTS:
            for voice, speed in VOICES:
                clean = read_wav(write_speech(text, Path(tmp) / "c.wav", voice, speed))
                clean = clean * (0.3 / np.max(np.abs(clean)))
                loud = np.flatnonzero(np.abs(clean) > 0.01 * 0.3)
                true_start = (lead + loud[0]) / RATE
                true_end = (lead + loud[-1] + 1) / RATE
                speech = np.concatenate([np.zeros(lead), clean, np.zeros(trail)]).astype(np.float32)
                for room, noise in rooms(len(speech), rng).items():
                    if room.startswith("pink"):
                        level = np.sqrt(np.mean(clean[loud[0] : loud[-1]] ** 2))
                        noise = noise * level * 10 ** (-20 / 20)
                    audio = (speech + noise).astype(np.float32)
                    audio_s += len(audio) / RATE
                    for name in VADS:
                        t0 = time.perf_counter()
                        out = run_vad(name, audio, config, model)
                        cost[name] += time.perf_counter() - t0
                        row = {"kind": "speech", "room": room, "vad": name, "text": text}
                        row["voice"] = f"{voice} -s {speed}"
                        row["found"] = out["found"]
                        if out["found"]:
                            row["start_cut_ms"] = 1000 * max(0.0, out["start"] - true_start)
                            row["end_cut_ms"] = 1000 * max(0.0, true_end - out["stop"])
                            row["decode_wait_ms"] = 1000 * (out["decode_at"] - true_end)
                            row["ended_early"] = bool(out["end_at"] < true_end)
                        rows.append(row)
        babble = read_wav(write_speech(" ".join(TEXTS), Path(tmp) / "b.wav", "en-us", 175))
        babble = babble[::-1][: 3 * RATE]  # reversed speech: voice-like, no words
        peak = float(np.max(np.abs(babble)))
        for i in range(6):
            n = 3 * RATE
            t = np.arange(n) / RATE
            noises = {
                "white": 0.1 * rng.standard_normal(n),
                "pink": 0.1 * pink(n, rng),
                "hum": 0.1 * np.sin(2 * np.pi * (50 + 10 * i) * t) + 0.01 * rng.standard_normal(n),
                "silence": 1e-4 * rng.standard_normal(n),
                "reversed speech": np.pad(babble, (0, n - len(babble))) * (0.3 / peak),
            }
            for kind, audio in noises.items():
                audio = audio.astype(np.float32)
                for name in VADS:
                    out = run_vad(name, audio, config, model)
                    rows.append({"kind": "noise", "room": kind, "vad": name, "found": out["found"]})
    summary: dict = {}
    print(f"{'room':18} {'vad':7} {'found':>6} {'start cut':>10} {'end cut':>8} "
          f"{'wait p50':>9} {'wait p95':>9} {'split':>6}")  # fmt: skip
    for room in sorted({r["room"] for r in rows if r["kind"] == "speech"}):
        for name in VADS:
            takes = [r for r in rows if r["kind"] == "speech" and r["room"] == room]
            takes = [r for r in takes if r["vad"] == name]
            found = [r for r in takes if r["found"]]
            waits = sorted(r["decode_wait_ms"] for r in found) or [float("nan")]
            s = {
                "found": len(found) / len(takes),
                "start_cut_ms_mean": statistics.fmean([r["start_cut_ms"] for r in found] or [0]),
                "start_cut_over_50ms": sum(r["start_cut_ms"] > 50 for r in found),
                "end_cut_ms_mean": statistics.fmean([r["end_cut_ms"] for r in found] or [0]),
                "decode_wait_ms_p50": waits[len(waits) // 2],
                "decode_wait_ms_p95": waits[min(len(waits) - 1, int(0.95 * len(waits)))],
                "ended_inside_speech": sum(r["ended_early"] for r in found),
            }
            summary[f"{room} / {name}"] = s
            print(
                f"{room:18} {name:7} {s['found']:>6.0%} {s['start_cut_ms_mean']:>8.0f}ms "
                f"{s['end_cut_ms_mean']:>6.0f}ms {s['decode_wait_ms_p50']:>7.0f}ms "
                f"{s['decode_wait_ms_p95']:>7.0f}ms {s['ended_inside_speech']:>6}"
            )
    print()
    for name in VADS:
        noise = [r for r in rows if r["kind"] == "noise" and r["vad"] == name]
        rejected = sum(not r["found"] for r in noise) / len(noise)
        summary[f"noise rejected / {name}"] = rejected
        by_kind = {
            k: sum(not r["found"] for r in noise if r["room"] == k)
            for k in sorted({r["room"] for r in noise})
        }
        print(f"noise-only clips rejected, {name:7} {rejected:>6.0%}  {by_kind}")
        ms = 1000 * cost[name] / audio_s
        summary[f"cost ms per audio s / {name}"] = round(ms, 2)
        print(f"cost per second of audio, {name:7} {ms:>6.2f} ms")
    summary["load_average"] = [round(x, 2) for x in os.getloadavg()]
    print(f"load average {summary['load_average']}")
    results = {"summary": summary, "clips": rows}
    write_results(
        ROOT / "benchmarks" / "results" / "endpoint.json", results, indent=1, default=float
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
