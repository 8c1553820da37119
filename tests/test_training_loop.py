"""The pretraining loop on a tiny cache: losses, exact resume, DDP on gloo, export."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import load_file

from musicbert.errors import CheckpointError, ConfigError
from tests.training_cache import tiny_cache
from training.pretrain import TrainConfig, lr_lambda, train

TINY_MODEL = {
    "hidden_size": 32,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "projection_dim": 16,
}


def _config(tmp_path: Path, out: str, steps: int, **kw) -> TrainConfig:
    cache = tmp_path / "cache"
    if not (cache / "cache.npz").is_file():
        tiny_cache(cache)
    base = dict(
        name="t",
        cache=str(cache),
        out=str(tmp_path / out),
        steps=steps,
        batch_size=4,
        lr=3e-3,
        warmup_steps=2,
        checkpoint_every=2,
        log_every=1,
        model=TINY_MODEL,
    )
    base.update(kw)
    config = TrainConfig(**base)
    config.validate()
    return config


def _weights(final: Path) -> dict[str, torch.Tensor]:
    return load_file(str(final / "model.safetensors"))


def test_tiny_run_logs_every_objective_and_exports_a_trained_model(tmp_path):
    final = train(_config(tmp_path, "run", 6), progress=False)
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert {"mlm_loss", "contrastive_loss", "cpc_loss", "tag_loss"} <= set(rows[-1])
    assert (tmp_path / "run" / "loss.png").stat().st_size > 1000
    config = json.loads((final / "config.json").read_text())
    assert config["untrained"] is False
    assert not any(k.startswith(("tag_head", "reconstruction_head")) for k in _weights(final))


def test_single_objective_uses_only_its_loss(tmp_path):
    train(_config(tmp_path, "mlm", 2, objectives={"mlm": 1.0}), progress=False)
    row = json.loads((tmp_path / "mlm" / "metrics.jsonl").read_text().splitlines()[-1])
    assert "mlm_loss" in row and "contrastive_loss" not in row and "tag_loss" not in row


def test_resume_gives_identical_weights(tmp_path):
    straight = _weights(train(_config(tmp_path, "straight", 6), progress=False))
    assert train(_config(tmp_path, "resumed", 6), progress=False, stop_after=3) is None
    ckpt = torch.load(tmp_path / "resumed" / "checkpoint.pt", weights_only=False)
    assert ckpt["step"] == 3
    resumed = _weights(train(_config(tmp_path, "resumed", 6), resume=True, progress=False))
    assert straight.keys() == resumed.keys()
    for key in straight:
        assert torch.equal(straight[key], resumed[key]), key


def test_resume_with_device_batches_gives_identical_weights(tmp_path):
    kw = dict(device_batches=True, objectives={"mlm": 1.0, "contrastive": 1.0, "cpc": 0.5})
    straight = _weights(train(_config(tmp_path, "straight", 5, **kw), progress=False))
    summary = json.loads((tmp_path / "straight" / "summary.json").read_text())
    assert summary["batcher"] == "DeviceBatcher"
    assert train(_config(tmp_path, "resumed", 5, **kw), progress=False, stop_after=2) is None
    resumed = _weights(train(_config(tmp_path, "resumed", 5, **kw), resume=True, progress=False))
    assert straight.keys() == resumed.keys()
    for key in straight:
        assert torch.equal(straight[key], resumed[key]), key
    # host batches differ in their draws (not in kind): another run, as good a one
    host_config = _config(tmp_path, "host", 5, **kw | {"device_batches": False})
    host = _weights(train(host_config, progress=False))
    assert not all(torch.equal(straight[k], host[k]) for k in straight)


class _Recorder(torch.nn.Module):
    """Takes the arguments the loop gives a model; the config says if it reads concepts."""

    def __init__(self, concept_tokens: bool | None) -> None:
        super().__init__()
        self.config = SimpleNamespace()
        if concept_tokens is not None:
            self.config.concept_tokens = concept_tokens
        self.seen: dict = {}

    def forward(self, **kwargs):
        self.seen = kwargs
        return kwargs


def test_concepts_go_to_the_model_only_when_it_has_concept_tokens(tmp_path):
    from training.data import Batcher
    from training.features import load_cache
    from training.pretrain import _forward

    tiny_cache(tmp_path)
    cache = load_cache(tmp_path / "cache.npz")
    batch = Batcher(cache, cache.indices("train"), 4, seed=0).batch(0)
    objectives = {"contrastive": 1.0}
    for flag in (None, False):
        assert "concepts" not in _forward(_Recorder(flag), batch, objectives)
    seen = _forward(_Recorder(True), batch, objectives)
    assert seen["concepts"] is batch.concepts and seen["concepts"].shape == (4, 100)
    wrapped = torch.nn.Module()  # as DistributedDataParallel holds it: .module
    wrapped.module = _Recorder(True)
    wrapped.forward = wrapped.module.forward
    assert "concepts" in _forward(wrapped, batch, objectives)


def test_warmup_then_cosine():
    f = lr_lambda(4, 20)
    assert f(0) == pytest.approx(0.25) and f(3) == pytest.approx(1.0)
    assert f(4) == pytest.approx(1.0) and f(12) == pytest.approx(0.5) and f(20) == 0.0


def test_bad_configs_are_clear(tmp_path):
    with pytest.raises(ConfigError, match="unknown objective"):
        _config(tmp_path, "x", 2, objectives={"mlm": 1.0, "nope": 1.0})
    with pytest.raises(ConfigError, match="nothing to train"):
        _config(tmp_path, "x", 2, objectives={"mlm": 0.0})
    with pytest.raises(ConfigError, match="not found"):
        TrainConfig.from_file(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": "x", "cache": "c", "out": "o", "colour": 1}')
    with pytest.raises(ConfigError, match="colour"):
        TrainConfig.from_file(bad)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_ddp_two_gloo_processes_agree(tmp_path):
    config = _config(tmp_path, "ddp", 3)
    path = tmp_path / "ddp.json"
    path.write_text(json.dumps(config.__dict__))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(_free_port()),
        "-m",
        "tests.ddp_worker",
        str(path),
        str(tmp_path),
    ]
    done = subprocess.run(
        cmd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    w0 = torch.load(tmp_path / "rank0.pt")
    w1 = torch.load(tmp_path / "rank1.pt")
    assert w0.keys() == w1.keys()
    for key in w0:
        assert torch.equal(w0[key], w1[key]), key
    row = json.loads((tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()[-1])
    assert row["step"] == 3 and (tmp_path / "ddp" / "final" / "model.safetensors").is_file()


def test_export_round_trip_through_the_embedder(tmp_path):
    from musicbert.embedder import Embedder
    from training.export import export_checkpoint

    final = train(_config(tmp_path, "run", 2), progress=False)
    dest = tmp_path / "default"
    model_id = export_checkpoint(final, dest, {"steps": 2})
    embedder = Embedder.load(dest)
    assert embedder.model_id == model_id and not embedder.untrained
    assert embedder.dim == 16
    assert json.loads((dest / "config.json").read_text())["training_info"] == {"steps": 2}
    (dest / "model.safetensors").write_bytes(b"broken")
    with pytest.raises(CheckpointError):
        Embedder.load(dest)


def test_export_refuses_an_untrained_model(tmp_path):
    from musicbert.configuration_musicbert import MusicBertConfig
    from musicbert.modeling_musicbert import MusicBertModel
    from training.export import export_checkpoint

    MusicBertModel(MusicBertConfig(**TINY_MODEL)).save_pretrained(tmp_path / "raw")
    with pytest.raises(CheckpointError, match="untrained"):
        export_checkpoint(tmp_path / "raw", tmp_path / "dest")


def test_the_packaged_default_is_a_trained_checkpoint():
    from musicbert.embedder import DEFAULT_CHECKPOINT, Embedder

    if not (DEFAULT_CHECKPOINT / "config.json").is_file():
        pytest.skip("no packaged checkpoint in this checkout")
    size = (DEFAULT_CHECKPOINT / "model.safetensors").stat().st_size
    assert size <= 25 * 1024 * 1024
    embedder = Embedder.load(device="cpu")
    assert embedder.untrained is False and embedder.checkpoint == DEFAULT_CHECKPOINT
    assert embedder.model_id.startswith("musicbert-") and "untrained" not in embedder.model_id
    vectors = embedder.embed_text(["music played on flute", "fast music"])
    assert vectors.shape == (2, embedder.dim)
