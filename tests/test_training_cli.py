"""One CLI surface: every training entry point is a ``musicbert`` subcommand, declared once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from assistant.cli import build_parser, main
from training.sweep import shares

ROOT = Path(__file__).resolve().parents[1]
TRAINING_COMMANDS = (
    "corpus",
    "real-corpus",
    "features",
    "train",
    "sweep",
    "evaluate",
    "tag-trust",
    "export",
    "rasa-env",
)


def test_every_training_entry_point_is_a_musicbert_subcommand():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert set(TRAINING_COMMANDS) <= set(sub.choices)


def test_declaring_every_command_loads_no_torch():
    code = (
        "import sys; from assistant.cli import build_parser; build_parser(); "
        "print('torch' in sys.modules, 'numpy' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_no_second_cli_surface_in_training():
    for path in [*(ROOT / "training").glob("*.py"), ROOT / "assistant" / "rasa_env.py"]:
        source = path.read_text()
        assert "argparse" not in source and "__main__" not in source, path.name


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--config", "{missing}/config.json"],
        ["evaluate", "--cache", "{missing}", "--runs", "{missing}", "--out", "{missing}/e.json"],
        ["tag-trust", "--cache", "{missing}", "--out", "{missing}/trust.json"],
        ["export", "{missing}/final", "--dest", "{missing}/ckpt"],
        ["features", "--corpus", "{missing}", "--out", "{missing}/f", "--no-recordings"],
    ],
)
def test_training_commands_follow_the_exit_code_convention(argv, tmp_path, capsys):
    missing = tmp_path / "missing"
    assert main([a.format(missing=missing) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("musicbert: ") and "Traceback" not in err and str(missing) in err


def test_bad_options_are_usage_errors(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["features", "--out", "x", "--shard", "2/2"])
    assert exc.value.code == 2
    assert "expected I/N" in capsys.readouterr().err


def test_sweep_deals_unfinished_runs_in_a_snake(tmp_path):
    done = tmp_path / "mim_s0" / "final"
    done.mkdir(parents=True)
    (done / "model.safetensors").write_bytes(b"")
    dealt = shares(tmp_path, [0, 1], ["mlm", "mim", "tags"], jobs=2)
    assert dealt == [["mlm:0", "mim:1", "tags:1"], ["tags:0", "mlm:1"]]  # mim:0 is finished
    assert shares(tmp_path, [0], ["mim"], jobs=2) == []
