"""The player, for real through PortAudio and ALSA's file plugin (no mock of sounddevice).

Each test writes tones, runs the player in a subprocess whose default sound
device is a WAV file (tests/alsa_harness.py), and then looks at the samples
that arrived: their length, frequency and loudness.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.alsa_harness import dominant_frequency, no_device_env, rms, run_python, write_alsa_config


def tone(path: Path, freq: float, seconds: float, rate: int, amp: float = 0.5, channels: int = 1):
    t = np.arange(int(seconds * rate)) / rate
    wave = (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    sf.write(str(path), np.stack([wave] * channels, axis=1) if channels > 1 else wave, rate)
    return path


def run_player(tmp_path: Path, body: str) -> tuple[dict, np.ndarray, int]:
    """Run ``body`` with a Player ``p`` on the file card; return its JSON output and what played."""
    setup = write_alsa_config(tmp_path / "alsa")
    code = "import json\nfrom assistant.player import Player, PlayItem\n"
    code += "p = Player()\nout = {}\n" + textwrap.dedent(body) + "\np.close()\n"
    code += "print(json.dumps(out))\n"
    proc = run_python(code, setup.env())
    assert proc.returncode == 0, proc.stderr
    played, rate = setup.played()
    return json.loads(proc.stdout.strip().splitlines()[-1]), played, rate


def segments(played: np.ndarray, rate: int) -> list[tuple[int, int]]:
    """(start, end) frames of the non-silent stretches, split at gaps over 10 ms."""
    loud = np.abs(played.mean(axis=1)) > 1e-3
    gap = int(0.01 * rate)
    spans: list[tuple[int, int]] = []
    idx = np.flatnonzero(loud)
    if idx.size == 0:
        return spans
    start = prev = idx[0]
    for i in idx[1:]:
        if i - prev > gap:
            spans.append((start, prev + 1))
            start = i
        prev = i
    spans.append((start, prev + 1))
    return spans


def test_queue_plays_tones_in_order_at_the_right_pitch_and_level(tmp_path):
    a = tone(tmp_path / "a.wav", 440, 1.5, 22_050)
    b = tone(tmp_path / "b.ogg", 880, 1.0, 44_100, amp=0.4, channels=2)
    out, played, rate = run_player(
        tmp_path,
        f"""
        p.enqueue([PlayItem(1, {str(a)!r}, "A"), PlayItem(2, {str(b)!r}, "B")])
        p.set_volume(0.5)
        out["first"] = p.play().item.title
        out["done"] = p.wait_until_stopped(30)
        out["status"] = p.status().state
        """,
    )
    assert out == {"first": "A", "done": True, "status": "stopped"}
    spans = segments(played, rate)
    assert len(spans) == 1, spans  # gapless: the second track follows the first at once
    start, end = spans[0]
    assert abs((end - start) / rate - 2.5) < 0.05
    s2, e2 = start + int(1.5 * rate), end
    first, second = played[start + 100 : s2 - 100, 0], played[s2 + 100 : e2 - 100, 0]
    assert abs(dominant_frequency(first, rate) - 440) < 5
    assert abs(dominant_frequency(second, rate) - 880) < 5
    # a sine of amplitude A has RMS A/sqrt(2); the volume scales it
    assert rms(first) == pytest.approx(0.5 * 0.5 / np.sqrt(2), rel=0.05)
    assert rms(second) == pytest.approx(0.4 * 0.5 / np.sqrt(2), rel=0.05)
    assert np.allclose(played[s2:e2, 0], played[s2:e2, 1], atol=1e-3)  # stereo kept


def test_unplayable_track_is_skipped_with_a_reason(tmp_path):
    good = tone(tmp_path / "good.wav", 660, 0.5, 16_000)
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF....not really a wave file")
    out, played, rate = run_player(
        tmp_path,
        f"""
        p.enqueue([PlayItem(1, {str(bad)!r}, "Broken"), PlayItem(2, {str(good)!r}, "Good")])
        p.play()
        out["done"] = p.wait_until_stopped(30)
        out["error"] = p.status().error
        """,
    )
    assert out["done"] is True
    assert "could not play 'Broken'" in out["error"]
    spans = segments(played, rate)
    assert len(spans) == 1
    assert abs(dominant_frequency(played[spans[0][0] : spans[0][1], 0], rate) - 660) < 5


def test_pause_holds_position_and_resume_loses_nothing(tmp_path):
    long = tone(tmp_path / "long.wav", 300, 40.0, 8_000)
    out, played, rate = run_player(
        tmp_path,
        f"""
        import time
        p.enqueue([PlayItem(7, {str(long)!r}, "Long")])
        p.play()
        paused = p.pause()
        time.sleep(0.3)
        out["state"] = p.status().state
        out["held"] = p.status().elapsed == paused.elapsed
        out["early"] = paused.elapsed < 40
        out["resumed"] = p.resume().state
        out["done"] = p.wait_until_stopped(60)
        """,
    )
    assert out == {
        "state": "paused",
        "held": True,
        "early": True,
        "resumed": "playing",
        "done": True,
    }
    spans = segments(played, rate)
    total = sum(e - s for s, e in spans) / rate
    assert abs(total - 40.0) < 0.1  # every sample arrived once, pause or not
    assert abs(dominant_frequency(played[spans[0][0] : spans[0][1], 0], rate) - 300) < 2


def test_next_skips_and_stop_ends_playback(tmp_path):
    long = tone(tmp_path / "long.wav", 300, 40.0, 8_000)
    mid = tone(tmp_path / "mid.wav", 500, 0.5, 16_000)
    last = tone(tmp_path / "last.wav", 700, 40.0, 8_000)
    out, played, rate = run_player(
        tmp_path,
        f"""
        items = [PlayItem(1, {str(long)!r}, "L"), PlayItem(2, {str(mid)!r}, "M"),
                 PlayItem(3, {str(last)!r}, "Z")]
        p.enqueue(items)
        p.play()
        p.pause()
        out["next"] = p.next().item.title
        p.wait_until_stopped(0)  # no wait: just let the thread run
        import time
        while p.status().position < 2 and p.status().state != "stopped":
            time.sleep(0.005)
        out["after_mid"] = p.status().item.title
        out["stopped"] = p.stop().state
        out["prev"] = p.previous().item.title
        p.stop()
        """,
    )
    assert out == {"next": "M", "after_mid": "Z", "stopped": "stopped", "prev": "M"}
    played_seconds = sum(e - s for s, e in segments(played, rate)) / rate
    assert played_seconds < 60  # neither 40 s track played to its end


def test_no_output_device_is_a_clear_error(tmp_path):
    code = textwrap.dedent(
        """
        from assistant.player import Player
        from musicbert.errors import DeviceUnavailableError
        try:
            Player()
        except DeviceUnavailableError as exc:
            print("ERR", exc)
        """
    )
    proc = run_python(code, no_device_env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ERR no audio output device")
    assert "\n" not in proc.stdout.strip()


def test_volume_steps_are_bounded(tmp_path):
    out, _, _ = run_player(
        tmp_path,
        """
        p.set_volume(0.95)
        out["up"] = p.volume_up().volume
        out["up2"] = p.volume_up().volume
        p.set_volume(0.05)
        out["down"] = p.volume_down().volume
        try:
            p.play()
        except Exception as exc:
            out["empty"] = f"{type(exc).__name__}: {exc}"
        """,
    )
    assert out["up"] == 1.0 and out["up2"] == 1.0 and out["down"] == 0.0
    assert out["empty"] == "PlayerError: the play queue is empty; ask for some music first"


def test_long_track_is_streamed_not_loaded_whole(tmp_path):
    """Two minutes of 44.1 kHz stereo is 42 MB as float32; playing it must hold far less."""
    rate = 44_100
    path = tmp_path / "long.wav"
    with sf.SoundFile(str(path), "w", rate, 2, subtype="PCM_16") as handle:
        t = np.arange(rate) / rate
        second = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
        for _ in range(120):
            handle.write(np.stack([second, second], axis=1))
    out, played, played_rate = run_player(
        tmp_path,
        f"""
        import tracemalloc
        p.enqueue([PlayItem(1, {str(path)!r}, "Long")])
        tracemalloc.start()
        p.play()
        out["done"] = p.wait_until_stopped(120)
        out["peak_mb"] = tracemalloc.get_traced_memory()[1] / 1e6
        """,
    )
    assert out["done"] is True
    assert out["peak_mb"] < 5, out
    assert abs(sum(e - s for s, e in segments(played, played_rate)) / played_rate - 120) < 0.2


def test_completions_and_skips_are_reported(tmp_path):
    short = tone(tmp_path / "short.wav", 440, 0.3, 16_000)
    long = tone(tmp_path / "long.wav", 300, 40.0, 8_000)
    last = tone(tmp_path / "last.wav", 700, 0.2, 16_000)
    out, _played, _rate = run_player(
        tmp_path,
        f"""
        import time
        calls = []
        p.on_track_end = lambda item, outcome, secs: calls.append([item.title, outcome, secs])
        p.enqueue([PlayItem(1, {str(short)!r}, "S"), PlayItem(2, {str(long)!r}, "L"),
                   PlayItem(3, {str(last)!r}, "Z")])
        p.play()
        while p.status().item.title != "L" or p.status().elapsed < 0.2:
            time.sleep(0.005)
        p.next()
        p.wait_until_stopped(10)
        out["calls"] = calls
        """,
    )
    (s, s_outcome, s_secs), (l_, l_outcome, l_secs), (z, z_outcome, _z) = out["calls"]
    assert (s, s_outcome, l_, l_outcome, z, z_outcome) == (
        "S", "completed", "L", "skipped", "Z", "completed"
    )  # fmt: skip
    assert abs(s_secs - 0.3) < 0.05 and 0.1 < l_secs < 10
