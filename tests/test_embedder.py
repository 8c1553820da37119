"""The embedding API end to end: real MiniLM, real musicnn, a random shared Transformer."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import soundfile as sf
import torch

from assistant.cli import main as cli_main
from musicbert.audio_io import probe
from musicbert.configuration_musicbert import MusicBertConfig
from musicbert.embedder import Embedder, UntrainedModelWarning, untrained_model_id
from musicbert.errors import AudioError, CheckpointError
from musicbert.logmel import PATCH_FRAMES, logmel, patchify
from musicbert.modeling_musicbert import CHECKSUM_FILE, MusicBertModel
from musicbert.text_tower import EmptyTextError, TextTruncatedWarning

SR = 16_000


pytestmark = pytest.mark.usefixtures("one_thread")


def tone(
    seconds: float, sr: int = SR, freq: float = 440.0, seed: int = 0, noise: float = 0.01
) -> np.ndarray:
    """Decaying tone pulses over a little noise: deterministic, not silent."""
    t = np.arange(int(seconds * sr)) / sr
    rng = np.random.default_rng(seed)
    wave = 0.4 * np.sin(2 * np.pi * freq * t) * np.exp(-((t % 0.5) * 4))
    return (wave + noise * rng.standard_normal(t.size)).astype(np.float32)


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        path = tmp_path_factory.mktemp("home")
        mp.setenv("MUSICBERT_HOME", str(path))
        # these tests exercise the no-checkpoint path: hide the packaged trained default
        mp.setattr("musicbert.embedder.DEFAULT_CHECKPOINT", path / "no-packaged-checkpoint")
        yield path


@pytest.fixture(scope="module")
def embedder(home):
    with pytest.warns(UntrainedModelWarning, match="randomly initialised"):
        return Embedder.load(device="cpu")


def three_patch_config(**overrides) -> MusicBertConfig:
    """A one-layer shared Transformer with a 3-patch window: windowing, exercised cheaply."""
    return MusicBertConfig(
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        projection_dim=24,
        max_audio_patches=3,
        **overrides,
    )


@pytest.fixture(scope="module")
def small_checkpoint(home, tmp_path_factory):
    """A saved shared Transformer with a 3-patch window, to exercise windowing cheaply."""
    path = tmp_path_factory.mktemp("ckpt")
    config = three_patch_config()
    torch.manual_seed(1)
    MusicBertModel(config).save_pretrained(path)
    return path


def manual_embedding(emb: Embedder, wave: np.ndarray) -> tuple[np.ndarray, int]:
    """The same computation without streaming: whole log-mel, patches, windows of patches.

    A concept model's windows also read their mean tag probabilities (MSD then MTT).
    """
    patches = torch.from_numpy(patchify(logmel(wave), cover_tail=True))
    concepts = bool(emb.config.concept_tokens)
    with torch.inference_mode():
        msd = emb.musicnn("MSD_musicnn")(patches)
        if concepts:
            mtt = emb.musicnn("MTT_musicnn")(patches)
            probs = torch.cat([msd.tag_probs, mtt.tag_probs], 1).double().numpy()
    vectors = msd.penultimate.numpy()
    window = emb.config.max_audio_patches
    total, weight = np.zeros(emb.dim), 0.0
    n = len(vectors)
    for s in range(0, n, window):
        size = len(vectors[s : s + window])
        # the last, short window uses the last full window
        chunk = slice(n - window, n) if size < window and s > 0 else slice(s, s + window)
        mean_probs = probs[chunk].mean(0) if concepts else None
        total += size * emb.audio_window_embedding(vectors[chunk], mean_probs)
        weight += size
    vec = total / weight
    return vec / np.linalg.norm(vec), n


def test_without_a_checkpoint_the_model_says_it_is_untrained(embedder):
    assert embedder.untrained is True
    assert embedder.dim == 256
    assert embedder.model_id == untrained_model_id(MusicBertConfig())
    assert "untrained-seed0" in embedder.model_id
    assert not any(p.requires_grad for p in embedder.model.parameters())
    # the random initialisation is reproducible, so the id means the same weights each time
    with pytest.warns(UntrainedModelWarning):
        again = Embedder.load(device="cpu")
    for a, b in zip(embedder.model.parameters(), again.model.parameters(), strict=True):
        assert torch.equal(a, b)


def test_text_embeddings_are_normalised_deterministic_and_batch_free(embedder):
    texts = ["calm piano for reading", "aggressive heavy metal", "calm piano for reading"]
    vecs = embedder.embed_text(texts)
    assert vecs.shape == (3, 256) and vecs.dtype == np.float32
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert np.allclose(vecs[0], vecs[2], atol=1e-6)
    assert embedder.last_truncated == [False, False, False]
    assert np.allclose(embedder.embed_text(["calm piano for reading"])[0], vecs[0], atol=1e-5)


def test_text_tower_gives_sentence_embeddings_for_the_nlu(embedder):
    vecs = embedder.text_tower.embed(["play something happy", "play a cheerful song"])
    assert vecs.shape == (2, 384)
    assert vecs[0] @ vecs[1] > 0.5


def test_awkward_text(embedder):
    with pytest.raises(EmptyTextError):
        embedder.embed_text([""])
    with pytest.raises(EmptyTextError):
        embedder.embed_text([])
    long = "a slow dreamy song with soft strings " * 300  # over 10,000 characters
    assert len(long) > 10_000
    with pytest.warns(TextTruncatedWarning):
        vec = embedder.embed_text([long, "short"])
    assert embedder.last_truncated == [True, False]
    assert np.isfinite(vec).all()


def test_streamed_audio_matches_the_whole_signal_computation(embedder):
    wave = tone(8.0)
    whole = embedder.describe((wave, SR), tags=False)
    blocks = [wave[i : i + 7777] for i in range(0, wave.size, 7777)]  # odd-sized blocks
    streamed = embedder.describe_stream(iter(blocks), tags=False)
    assert np.allclose(whole.embedding, streamed.embedding, atol=1e-5)
    want, n = manual_embedding(embedder, wave)
    assert whole.patches == streamed.patches == n == 3  # 2 full patches + the covered tail
    kept = embedder.describe((wave, SR), tags=False, keep_patches=True).patch_vectors
    assert kept.shape == (3, 200) and whole.patch_vectors is None
    assert np.allclose(whole.embedding, want, atol=1e-5)
    assert whole.duration == pytest.approx(8.0)


def test_audio_embedding_is_deterministic_and_normalised(embedder):
    wave = tone(4.0, seed=3)
    a = embedder.embed_audio([(wave, SR), (wave, SR)])
    assert a.shape == (2, 256) and a.dtype == np.float32
    assert np.array_equal(a[0], a[1])
    assert np.linalg.norm(a[0]) == pytest.approx(1.0, abs=1e-5)
    assert np.array_equal(embedder.embed_audio([(wave, SR)])[0], a[0])


def test_tags_cover_both_musicnn_models(embedder):
    desc = embedder.describe((tone(6.0), SR))
    assert set(desc.tag_probs) == {"MSD_musicnn", "MTT_musicnn"}
    assert all(p.shape == (50,) for p in desc.tag_probs.values())
    assert len(desc.tags) == 100
    confidences = [t.confidence for t in desc.tags]
    assert confidences == sorted(confidences, reverse=True)
    assert {t.kind for t in desc.tags} <= {"genre", "mood", "instrument", "other"}
    assert {t.source for t in desc.tags} == {"MSD_musicnn", "MTT_musicnn"}
    assert all(0.0 <= c <= 1.0 for c in confidences)
    assert len(desc.top_tags(3)) == 3


def test_audio_shorter_than_a_patch_is_padded(embedder):
    desc = embedder.describe((tone(0.4), SR), tags=False)
    assert desc.patches == 1
    assert np.isfinite(desc.embedding).all()
    assert np.linalg.norm(desc.embedding) == pytest.approx(1.0, abs=1e-5)
    one_frame = embedder.describe((np.full(10, 0.1, np.float32), SR), tags=False)
    assert one_frame.patches == 1


def test_silent_audio_gives_a_finite_vector_and_is_flagged(embedder):
    desc = embedder.describe((np.zeros(SR * 4, np.float32), SR))
    assert desc.silent is True
    assert np.isfinite(desc.embedding).all()
    assert all(np.isfinite(t.confidence) for t in desc.tags)
    assert embedder.describe((tone(4.0), SR), tags=False).silent is False


def test_any_sample_rate_and_channel_count(embedder):
    base = embedder.embed_audio([(tone(4.0, SR, noise=0), SR)])[0]
    resampled = embedder.embed_audio([(tone(4.0, 44_100, noise=0), 44_100)])[0]
    stereo = np.stack([tone(4.0, 22_050, noise=0), tone(4.0, 22_050, noise=0)], axis=1)
    from_stereo = embedder.embed_audio([(stereo, 22_050)])[0]
    assert float(base @ resampled) > 0.99
    assert float(base @ from_stereo) > 0.99


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_samples_are_refused(embedder, bad):
    wave = tone(2.0)
    wave[100] = bad
    with pytest.raises(AudioError, match="NaN or infinite"):
        embedder.embed_audio([(wave, SR)])
    with pytest.raises(AudioError, match="NaN or infinite"):
        embedder.describe_stream([tone(1.0), wave])


def test_unusable_audio_inputs_are_clear_errors(embedder, tmp_path):
    with pytest.raises(AudioError, match="no samples"):
        embedder.embed_audio([(np.zeros(0, np.float32), SR)])
    with pytest.raises(AudioError, match="sample rate"):
        embedder.embed_audio([(tone(1.0), 0)])
    with pytest.raises(AudioError, match="mono"):
        embedder.describe_stream([np.zeros((10, 2), np.float32)])
    with pytest.raises(AudioError):
        embedder.describe_stream([])
    with pytest.raises(AudioError):
        embedder.embed_audio([tmp_path / "missing.wav"])
    with pytest.raises(AudioError):
        embedder.embed_audio([42])


def test_a_file_is_streamed_whole(embedder, tmp_path):
    wave = tone(7.0, 22_050)
    path = tmp_path / "clip.flac"
    sf.write(path, wave, 22_050)
    desc = embedder.describe(path)
    assert desc.duration == pytest.approx(7.0, abs=0.01)
    assert desc.patches == 3
    in_memory = embedder.describe((wave, 22_050), tags=False)
    assert float(desc.embedding @ in_memory.embedding) > 0.9999


def test_a_real_recording(embedder, recordings):
    path = min(recordings, key=lambda p: probe(p).duration)
    desc = embedder.describe(path)
    frames = 1 + int(round(probe(path).duration * SR)) // 256
    assert desc.patches == -(-frames // PATCH_FRAMES)
    assert not desc.silent
    assert np.isfinite(desc.embedding).all()


def test_a_checkpoint_loads_with_its_weights_hash_as_id(home, small_checkpoint):
    emb = Embedder.load(small_checkpoint, device="cpu")
    sha = (small_checkpoint / CHECKSUM_FILE).read_text().split()[0]
    assert emb.model_id == f"musicbert-{sha[:12]}"
    assert emb.dim == 24
    # 8 patches with a 3-patch window: windows [0:3], [3:6] and the last 3 for the tail
    wave = tone(22.5, seed=5)
    desc = emb.describe((wave, SR), tags=False)
    want, n = manual_embedding(emb, wave)
    assert n == desc.patches == 8
    assert np.allclose(desc.embedding, want, atol=1e-5)
    text = emb.embed_text(["drums"])
    assert text.shape == (1, 24)


def test_a_corrupted_checkpoint_is_refused_by_file_name(home, small_checkpoint, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(small_checkpoint, broken)
    weights = broken / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"model\.safetensors.*sha256 mismatch"):
        Embedder.load(broken)
    (broken / CHECKSUM_FILE).unlink()
    weights.write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match=r"model\.safetensors"):
        Embedder.load(broken)
    (broken / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match=r"config\.json"):
        Embedder.load(broken)
    (broken / "config.json").unlink()
    with pytest.raises(CheckpointError, match=r"config\.json.*missing"):
        Embedder.load(broken)
    with pytest.raises(CheckpointError, match="not found"):
        Embedder.load(tmp_path / "nowhere")


def test_embed_command_prints_json(home, capsys, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UntrainedModelWarning)
        assert cli_main(["embed", "--text", "calm piano", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["dim"] == 256 and len(out["vector"]) == 256
    assert out["untrained"] is True and out["truncated"] is False
    path = tmp_path / "clip.wav"
    sf.write(path, tone(3.5), SR)
    assert cli_main(["embed", "--audio", str(path)]) == 0
    captured = capsys.readouterr()
    assert "UNTRAINED" in captured.out and "2 patches" in captured.out
    assert "untrained" in captured.err  # the warning, as one line
    assert cli_main(["embed", "--text", "   "]) == 2
    assert "empty text" in capsys.readouterr().err


def test_a_pretraining_checkpoint_loads_without_its_heads(home, tmp_path):
    from musicbert.modeling_musicbert import MusicBertForPreTraining

    config = MusicBertConfig(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
        projection_dim=24, untrained=False,
    )  # fmt: skip
    MusicBertForPreTraining(config).save_pretrained(tmp_path)
    emb = Embedder.load(tmp_path, device="cpu")
    assert emb.untrained is False and emb.dim == 24
    assert emb.model_id.startswith("musicbert-") and "untrained" not in emb.model_id


def test_importing_the_package_stays_light():
    import subprocess
    import sys

    code = "import sys, musicbert; print('torch' in sys.modules, musicbert.Embedder.__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "Embedder"]


def test_a_concept_model_reads_each_windows_tags(home, tmp_path):
    from musicbert.concepts import concept_names, concept_states

    config = three_patch_config(concept_tokens=4)
    torch.manual_seed(2)
    model = MusicBertModel(config)
    model.set_concept_states(torch.randn(100, 384))
    model.save_pretrained(tmp_path / "ckpt")
    emb = Embedder.load(tmp_path / "ckpt", device="cpu")
    assert torch.equal(emb.model.concept_states, model.concept_states)
    wave = tone(22.5, seed=6)
    got = emb.describe((wave, SR), tags=False).embedding  # concepts need the taggers anyway
    assert np.allclose(got, manual_embedding(emb, wave)[0], atol=1e-5)
    # the concepts change the vector: the same patches with other tag probabilities differ
    vectors = np.random.default_rng(0).standard_normal((3, 200)).astype(np.float32)
    a = emb.audio_window_embedding(vectors, np.eye(100)[0])
    b = emb.audio_window_embedding(vectors, np.eye(100)[50])
    assert not np.allclose(a, b, atol=1e-3)
    with pytest.raises(ValueError, match="concepts"):
        emb.audio_window_embedding(vectors)
    assert len(concept_names()) == 100
    states = concept_states(emb.text_tower)
    assert states.shape == (100, 384) and torch.isfinite(states).all()
