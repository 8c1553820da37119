"""The Table 1 evaluation: its metrics on known inputs, and ``musicbert evaluate`` end to end."""

from __future__ import annotations

import json

import numpy as np

from tests.alsa_harness import no_device_env, run_musicbert
from tests.training_cache import tiny_cache
from training.evaluate import retrieval_metrics, track_identification
from training.pretrain import TrainConfig, train


def test_retrieval_metrics_rank_the_diagonal():
    perfect = retrieval_metrics(np.eye(12))
    assert perfect["R@1"] == 1.0 and perfect["median_rank"] == 1.0
    worst = retrieval_metrics(-np.eye(12))  # every correct item ranks last of 12
    assert worst["R@10"] == 0.0 and worst["median_rank"] == 12.0


def test_track_identification_finds_the_other_half():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(10, 8))
    assert track_identification(a, a + 0.01 * rng.normal(size=a.shape)) == 1.0
    assert track_identification(a, a[::-1].copy()) == 0.0


def test_evaluate_command_writes_the_table_and_json(tmp_path):
    cache = tmp_path / "cache"
    tiny_cache(cache)
    config = TrainConfig(
        name="mim",
        cache=str(cache),
        out=str(tmp_path / "runs" / "mim_s0"),
        objectives={"contrastive": 1.0, "cpc": 0.5},
        steps=4,
        batch_size=4,
        warmup_steps=1,
        checkpoint_every=4,
        model={
            "hidden_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "intermediate_size": 64,
            "projection_dim": 16,
        },
    )
    train(config, progress=False)
    out, table = tmp_path / "eval.json", tmp_path / "table.md"
    args = ["evaluate", "--cache", str(cache), "--runs", str(tmp_path / "runs")]
    args += ["--out", str(out), "--markdown", str(table)]
    proc = run_musicbert(args, no_device_env(tmp_path / "home"), timeout=300)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    rows = result["rows"]
    assert result["split"] == "test" and result["clips"] == 8
    assert {"MFCC statistics", "MusicBERT, InfoNCE + CPC (MIM)"} <= set(rows)
    mim = rows["MusicBERT, InfoNCE + CPC (MIM)"]
    assert mim["_runs"] == [str(tmp_path / "runs" / "mim_s0" / "final")]
    assert 0.0 <= mim["R@10"]["mean"] <= 1.0 and mim["R@1"]["mean"] <= mim["R@10"]["mean"]
    assert table.read_text() == proc.stdout.rstrip("\n") + "\n"
    assert table.read_text().startswith("| representation | instrument SVM |")

    bad = run_musicbert(
        ["evaluate", "--cache", str(tmp_path / "none"), "--runs", "x"],
        no_device_env(tmp_path / "home"),
    )
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
