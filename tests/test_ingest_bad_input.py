"""Every kind of bad input is ingested or skipped with a one-line reason; the run never dies.

Into a SQLite and a PostgreSQL catalog (``catalog_url``): names and tags that are not
clean text must be stored by both."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from sqlalchemy import select

from catalog.ingest import fs_path, ingest
from catalog.models import Track
from tests.audio_fixtures import tone, write_audio
from tests.catalogs import backend_catalog

catalog = pytest.fixture(name="catalog")(backend_catalog)


def _run(catalog, *paths):
    summary = ingest(catalog, list(paths), workers=1, progress=False)
    reasons = {os.path.basename(p): r for p, r in summary.skipped}
    for reason in reasons.values():
        assert reason and "\n" not in reason and "Traceback" not in reason
    return summary, reasons


def _tracks(catalog) -> dict[bytes, Track]:
    with catalog.session() as s:
        rows = s.scalars(select(Track)).all()
        for t in rows:
            _ = t.features
    return {os.path.basename(os.fsencode(fs_path(t.path))): t for t in rows}


def test_corrupt_file_is_skipped(catalog, tmp_path):
    good = write_audio(tmp_path / "good.ogg", seconds=3)
    data = good.read_bytes()
    rng = np.random.default_rng(0)
    garbage = rng.integers(0, 256, len(data) - 300, dtype=np.uint8).tobytes()
    (tmp_path / "corrupt.ogg").write_bytes(data[:300] + garbage)
    (tmp_path / "noise.flac").write_bytes(b"fLaC" + rng.integers(0, 256, 4000, np.uint8).tobytes())
    summary, reasons = _run(catalog, tmp_path)
    assert summary.added == 1
    assert "corrupt.ogg" in reasons and "noise.flac" in reasons


def test_zero_byte_file(catalog, tmp_path):
    (tmp_path / "empty.wav").write_bytes(b"")
    summary, reasons = _run(catalog, tmp_path)
    assert reasons == {"empty.wav": "empty file (0 bytes)"} and summary.added == 0


def test_text_file_named_mp3(catalog, tmp_path):
    (tmp_path / "letter.mp3").write_text("Dear friend,\n" * 200)
    _, reasons = _run(catalog, tmp_path)
    assert reasons["letter.mp3"] == "not an audio file (unrecognised format)"


def _truncated_library(folder: Path) -> None:
    """10 s files cut in half (FLAC, Ogg, WAV, MP3) and WAVs whose headers lie."""
    for ext in ("flac", "ogg", "wav", "mp3"):
        whole = write_audio(folder / f"whole.{ext}", seconds=10.0)
        data = whole.read_bytes()
        (folder / f"half.{ext}").write_bytes(data[: len(data) // 2])
        whole.unlink()
    wav = write_audio(folder / "source.wav", seconds=10.0).read_bytes()
    at = wav.index(b"data") + 4
    # a data chunk that says 100 bytes (2 ms) while 10 s follow, and one that says 30 s
    body = wav[at + 4 :]
    (folder / "says-2ms.wav").write_bytes(wav[:at] + struct.pack("<I", 100) + body)
    (folder / "says-30s.wav").write_bytes(wav[:at] + struct.pack("<I", 3 * len(body)) + body)
    (folder / "source.wav").unlink()


@pytest.mark.parametrize("workers", [1, 2])
def test_truncated_and_misdeclared_files_are_never_silent(catalog, tmp_path, workers):
    music = tmp_path / "music"
    music.mkdir()
    _truncated_library(music)
    summary = ingest(catalog, [music], workers=workers, progress=False)
    warned = {os.path.basename(p): w for p, w in summary.warnings}
    skipped = {os.path.basename(p): r for p, r in summary.skipped}
    # cut in half, whatever the format: ingested (what decodes), with a warning that says so
    assert set(warned) == {"half.flac", "half.ogg", "half.wav", "half.mp3", "says-30s.wav"}
    assert all(w.startswith("truncated") and "\n" not in w for w in warned.values()), warned
    assert "10.0 s" in warned["half.wav"] and "30.0 s" in warned["says-30s.wav"]
    # a header that declares 2 ms of a 10 s file: too little to use, and said why
    assert set(skipped) == {"says-2ms.wav"}
    reason = skipped["says-2ms.wav"]
    assert reason.startswith("mis-declared length") and "10.0 s" in reason
    tracks = _tracks(catalog)
    assert {os.fsdecode(name) for name in tracks} == set(warned)
    for name in (b"half.flac", b"half.ogg", b"half.wav", b"half.mp3"):
        assert 3.0 < tracks[name].duration < 5.5, (name, tracks[name].duration)
    lines = summary.lines()
    assert "warnings 5" in lines[0]
    assert sum(line.startswith("warning ") for line in lines) == 5
    assert summary.to_dict()["warnings"][0]["warning"].startswith("truncated")


def test_patch_length_is_the_models():
    from catalog.ingest_workers import PATCH_SECONDS
    from musicbert.logmel import HOP, PATCH_FRAMES, SR

    assert PATCH_SECONDS == PATCH_FRAMES * HOP / SR


@pytest.mark.slow
def test_tracks_shorter_than_a_patch_get_no_model_tags(catalog, tmp_path):
    from catalog.models import Tag
    from musicbert.embedder import Embedder

    write_audio(tmp_path / "blip.wav", seconds=1.0, freq=330)
    write_audio(tmp_path / "phrase.wav", seconds=8.0, freq=330)
    summary = ingest(catalog, [tmp_path], embedder=Embedder.load(), workers=1, progress=False)
    assert summary.added == 2 and summary.embedded == 2
    with catalog.session() as s:
        rows = s.execute(select(Track.title, Tag.origin).join(Tag, isouter=True)).all()
    origins = {title: {origin for t, origin in rows if t == title} for title, _ in rows}
    assert "model" not in origins["Blip"]
    assert "model" in origins["Phrase"]


def test_unreadable_paths(catalog, tmp_path):
    # Tests run as root, where chmod 000 does not stop reads; these cannot be read by anyone.
    (tmp_path / "dangling.flac").symlink_to(tmp_path / "nowhere.flac")
    os.mkfifo(tmp_path / "pipe.wav")  # opening it would block forever if we tried
    summary, reasons = _run(catalog, tmp_path, tmp_path / "absent.ogg")
    assert reasons["dangling.flac"] == "broken symbolic link"
    assert reasons["pipe.wav"] == "not a regular file (named pipe (FIFO))"
    assert reasons["absent.ogg"] == "no such file or folder"
    assert summary.added == 0


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_file_without_read_permission(catalog, tmp_path):
    locked = write_audio(tmp_path / "locked.wav")
    locked.chmod(0)
    _, reasons = _run(catalog, tmp_path)
    assert reasons["locked.wav"] == "permission denied"


def test_silent_file_is_ingested_and_flagged(catalog, tmp_path):
    sf.write(tmp_path / "silence.flac", np.zeros(16000 * 5, np.float32), 16000)
    summary, _ = _run(catalog, tmp_path)
    track = _tracks(catalog)[b"silence.flac"]
    assert summary.added == 1 and track.features.silent
    assert track.features.tempo is None and track.features.key is None


def test_nan_samples_are_skipped(catalog, tmp_path):
    samples = tone(2.0)
    samples[1000] = np.nan
    sf.write(tmp_path / "nan.wav", samples, 22050, subtype="FLOAT")
    _, reasons = _run(catalog, tmp_path)
    assert "NaN" in reasons["nan.wav"]


def test_fifth_of_a_second(catalog, tmp_path):
    write_audio(tmp_path / "blip.wav", seconds=0.2)
    summary, _ = _run(catalog, tmp_path)
    track = _tracks(catalog)[b"blip.wav"]
    assert summary.added == 1 and track.duration == pytest.approx(0.2, abs=0.005)
    assert track.features.tempo is None  # too short to measure a beat period


def test_non_utf8_and_emoji_names(catalog, tmp_path):
    raw_dir = os.fsencode(str(tmp_path))
    latin1 = os.path.join(raw_dir, b"caf\xe9 \xff.wav")  # Latin-1 bytes, invalid UTF-8
    write_audio(os.fsdecode(latin1))
    write_audio(tmp_path / "🎵 Ünïcødé – 夜曲.flac", freq=300, seed=3)
    summary, _ = _run(catalog, tmp_path)
    assert summary.added == 2
    tracks = _tracks(catalog)
    weird = tracks[b"caf\xe9 \xff.wav"]
    assert weird.title == "Caf\ufffd \ufffd"  # displayable; the stored path stays exact
    assert Path(fs_path(weird.path)).exists()
    assert tracks["🎵 Ünïcødé – 夜曲.flac".encode()].title == "夜曲"
    again, _ = _run(catalog, tmp_path)
    assert again.unchanged == 2  # the round trip through the database is exact


def test_missing_tags_fall_back_to_the_file_name(catalog, tmp_path):
    write_audio(tmp_path / "07 - Nobody - no_tags_here.ogg")
    _run(catalog, tmp_path)
    track = _tracks(catalog)[b"07 - Nobody - no_tags_here.ogg"]
    assert (track.title, track.track_number) == ("No Tags Here", 7)
    with catalog.session() as s:
        assert s.get(Track, track.id).artist.name == "Nobody"


def test_everything_at_once_never_dies(catalog, tmp_path):
    write_audio(tmp_path / "fine.flac")
    (tmp_path / "empty.ogg").write_bytes(b"")
    (tmp_path / "text.mp3").write_text("hello")
    (tmp_path / "cover.jpg").write_bytes(b"\xff\xd8\xff")
    (tmp_path / "gone.wav").symlink_to(tmp_path / "missing.wav")
    summary, reasons = _run(catalog, tmp_path)
    assert summary.added == 1
    assert set(reasons) == {"empty.ogg", "text.mp3", "cover.jpg", "gone.wav"}


_RSS_PROBE = """
import json, resource, sys
from catalog.ingest_workers import analyse_job
result = analyse_job(sys.argv[1])
print(json.dumps({"rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "duration": result.analysis and result.analysis["duration"],
                  "error": result.error}))
"""


def _peak_rss(path: Path) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", _RSS_PROBE, str(path)],
        check=True,
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_three_hour_file_in_bounded_memory(tmp_path):
    """3 h at 4 kHz (decoded to 16 kHz: 691 MB of float32 if held whole) analysed in streaming
    blocks; peak RSS must grow by far less than the decoded size compared with a 10 s file."""
    sr, block = 4000, 4000 * 600
    long = tmp_path / "three hours.flac"
    t = np.arange(block) / sr
    with sf.SoundFile(long, "w", sr, 1, format="FLAC") as handle:
        for i in range(18):  # 18 x 10 minutes
            handle.write((0.2 * np.sin(2 * np.pi * (220 + 10 * i) * t)).astype(np.float32))
    short = write_audio(tmp_path / "ten seconds.flac", seconds=10, sr=sr)
    big, small = _peak_rss(long), _peak_rss(short)
    assert big["error"] is None and big["duration"] == pytest.approx(10800, abs=1)
    growth_mib = (big["rss_kib"] - small["rss_kib"]) / 1024
    assert growth_mib < 100, f"peak memory grew by {growth_mib:.0f} MiB for a 3-hour file"
