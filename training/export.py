"""Export a trained run as the packaged default checkpoint.

Only the shared Transformer and its projection heads ship (``MusicBertModel``);
the pretraining heads stay in the run directory. The config is marked trained
(``untrained: false``), the weights are checksummed (SHA256SUMS), the size is
checked against the 25 MiB budget, and the result is loaded back through
``musicbert.embedder.load_checkpoint`` before the export counts as done.

Run: ``musicbert export RUN_DIR/final [--dest DIR]``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from musicbert.errors import CheckpointError

MAX_BYTES = 25 * 1024 * 1024


def save_encoder(model, directory: Path, training_info: dict | None = None) -> Path:
    """Save ``model`` (MusicBertForPreTraining or MusicBertModel) as a trained encoder."""
    import copy

    from musicbert.modeling_musicbert import MusicBertModel

    encoder = model.musicbert if hasattr(model, "musicbert") else model
    if not isinstance(encoder, MusicBertModel):
        raise CheckpointError(f"cannot export a {type(encoder).__name__}; expected MusicBertModel")
    encoder = copy.deepcopy(encoder).float().cpu().eval()
    encoder.config.untrained = False
    if training_info:
        encoder.config.training_info = training_info
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    encoder.save_pretrained(directory, safe_serialization=True)
    return directory


def export_checkpoint(source: Path, dest: Path, training_info: dict | None = None) -> str:
    """Copy a final checkpoint to ``dest`` after checking it; returns the new model id."""
    from musicbert.embedder import load_checkpoint
    from musicbert.modeling_musicbert import write_checksums

    source, dest = Path(source), Path(dest)
    model, _ = load_checkpoint(source)
    if model.config.untrained:
        raise CheckpointError(f"{source}: marked untrained; refusing to export it as the default")
    size = sum(p.stat().st_size for p in source.glob("*.safetensors"))
    if size > MAX_BYTES:
        raise CheckpointError(f"{source}: {size / 2**20:.1f} MiB exceeds the 25 MiB budget")
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in ("config.json", "model.safetensors"):
        shutil.copy2(source / name, tmp / name)
    if training_info:
        config = json.loads((tmp / "config.json").read_text())
        config["training_info"] = training_info
        (tmp / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    write_checksums(tmp)
    _, model_id = load_checkpoint(tmp)  # must open exactly as the Embedder will open it
    if dest.exists():
        shutil.rmtree(dest)
    tmp.rename(dest)
    return model_id
