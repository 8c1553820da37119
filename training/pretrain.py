"""The pretraining loop: ``musicbert train --config FILE [--resume]``.

One script for every objective mix (weights in the config), on CPU or GPU, one
process or many (torchrun/DDP). AdamW with linear warm-up then cosine decay,
gradient clipping, bf16 autocast on CUDA. Batches are assembled on the training
device (``training.data.DeviceBatcher``) on CUDA, in numpy on the host otherwise
(``device_batches`` in the config overrides); the loop only waits for the device
at log and checkpoint steps. Checkpoints hold the model, optimiser,
scheduler, RNG states and step; combined with batches that are a pure function
of the step (``training.data``) and dropout reseeded per step, a resumed run
gives the same weights as an uninterrupted one. Metrics go to ``metrics.jsonl``
and ``loss.png`` in the run directory; the final weights are exported as a
``MusicBertModel`` checkpoint (``final/``) that ``Embedder.load`` opens.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from musicbert.errors import ConfigError

OBJECTIVES = ("mlm", "contrastive", "cpc", "tags")


@dataclass
class TrainConfig:
    """A run: data, objectives, optimisation, and the model's hyper-parameters."""

    name: str
    cache: str
    out: str
    objectives: dict[str, float] = field(
        default_factory=lambda: {"mlm": 1.0, "contrastive": 1.0, "cpc": 1.0, "tags": 1.0}
    )
    seed: int = 0
    steps: int = 600
    batch_size: int = 48
    lr: float = 5e-4
    weight_decay: float = 0.01
    warmup_steps: int = 50
    grad_clip: float = 1.0
    checkpoint_every: int = 200
    log_every: int = 10
    # batches built on the training device (DeviceBatcher): None = on CUDA only
    device_batches: bool | None = None
    model: dict = field(default_factory=dict)  # MusicBertConfig keyword arguments

    @classmethod
    def from_file(cls, path: str | Path, **overrides) -> TrainConfig:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: training config not found")
        try:
            if path.suffix in (".yml", ".yaml"):
                import yaml

                data = yaml.safe_load(path.read_text())
            else:
                data = json.loads(path.read_text())
        except (ValueError, OSError) as exc:
            raise ConfigError(f"{path}: unreadable training config ({exc})") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: a training config is a mapping of settings")
        data.update({k: v for k, v in overrides.items() if v is not None})
        try:
            config = cls(**data)
        except TypeError as exc:
            raise ConfigError(f"{path}: {exc}") from exc
        config.validate()
        return config

    def validate(self) -> None:
        unknown = set(self.objectives) - set(OBJECTIVES)
        if unknown:
            raise ConfigError(
                f"unknown objective(s) {sorted(unknown)}; choose from {', '.join(OBJECTIVES)}"
            )
        if not any(float(w) > 0 for w in self.objectives.values()):
            raise ConfigError("every objective weight is 0: nothing to train")
        if self.steps < 1 or self.batch_size < 2 or self.lr <= 0:
            raise ConfigError("steps >= 1, batch_size >= 2 and lr > 0 are required")

    def model_config(self, n_tags: int):
        from musicbert.configuration_musicbert import MusicBertConfig

        w = {k: float(self.objectives.get(k, 0.0)) for k in OBJECTIVES}
        kwargs = dict(self.model)
        kwargs.update(
            mlm_weight=w["mlm"],
            contrastive_weight=w["contrastive"],
            cpc_weight=w["cpc"],
            tag_weight=w["tags"],
            n_tags=n_tags,
            init_seed=self.seed,
        )
        return MusicBertConfig(**kwargs)


def lr_lambda(warmup: int, total: int):
    """Linear warm-up to the peak, then cosine decay to 0 at ``total``."""

    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return f


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _rng_states() -> dict:
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }


def _set_rng_states(states: dict) -> None:
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if states.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def _forward(model, batch, objectives: dict[str, float]):
    use = {k: float(objectives.get(k, 0.0)) > 0 for k in OBJECTIVES}
    config = getattr(model, "module", model).config  # DDP wraps the model
    extra = {"concepts": batch.concepts} if getattr(config, "concept_tokens", False) else {}
    return model(
        audio_patches=batch.audio,
        audio_mask=batch.audio_mask,
        masked_patches=batch.masked if use["mlm"] else None,
        text_states=batch.text if use["contrastive"] else None,
        text_mask=batch.text_mask if use["contrastive"] else None,
        other_segment=batch.other if use["cpc"] else None,
        other_segment_mask=batch.other_mask if use["cpc"] else None,
        tag_targets=batch.tag_targets if use["tags"] else None,
        **extra,
    )


def make_batcher(
    cache,
    indices: list[int],
    config: TrainConfig,
    mask_probability: float,
    device: torch.device,
    rank: int = 0,
    world_size: int = 1,
):
    """The batcher of a run: on the device if ``config.device_batches`` (None: on CUDA)."""
    from training.data import Batcher, DeviceBatcher

    on_device = config.device_batches
    if on_device is None:
        on_device = device.type == "cuda"
    args = (cache, indices, config.batch_size, config.seed, mask_probability, rank, world_size)
    return DeviceBatcher(*args, device=device) if on_device else Batcher(*args)


def make_optimiser(model, config: TrainConfig, device: torch.device):
    """AdamW, no weight decay on biases and norms; the fused kernel on CUDA."""
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    return torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": config.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=config.lr,
        fused=True if device.type == "cuda" else None,
    )


def train_step(wrapped, model, batch, config: TrainConfig, optimiser, scheduler, autocast):
    """One optimisation step; returns (output, grad norm) as tensors (nothing waits)."""
    with autocast:
        output = _forward(wrapped, batch, config.objectives)
    optimiser.zero_grad(set_to_none=True)
    output.loss.backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
    optimiser.step()
    scheduler.step()
    return output, grad_norm


def autocast_for(device: torch.device):
    """bf16 autocast on CUDA, nothing elsewhere."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _losses(out) -> dict[str, float]:
    names = ("loss", "mlm_loss", "contrastive_loss", "cpc_loss", "tag_loss")
    return {n: float(getattr(out, n).detach()) for n in names if getattr(out, n) is not None}


def train(
    config: TrainConfig,
    resume: bool = False,
    progress: bool = True,
    on_finish=None,
    stop_after: int | None = None,
) -> Path | None:
    """Run (or resume) ``config``; returns the exported final checkpoint directory.

    ``on_finish(model, rank)`` is called on every rank with the trained model (used to
    check that DDP ranks agree). ``stop_after`` ends the run early at that step with a
    checkpoint (the schedule still spans ``config.steps``); it returns None then.
    """
    from tqdm import tqdm

    from musicbert.modeling_musicbert import MusicBertForPreTraining
    from training import distributed
    from training.features import load_cache

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dist_info = distributed.setup(device.type)
    if device.type == "cuda":
        device = torch.device("cuda", dist_info.local_rank)
    out = Path(config.out).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    cache = load_cache(Path(config.cache).expanduser())
    train_ids = cache.indices("train")
    n_tags = len(cache.items[train_ids[0]].tag_target)
    model_config = config.model_config(n_tags)

    _seed_everything(config.seed)
    model = MusicBertForPreTraining(model_config).to(device)
    if model_config.concept_tokens:
        if cache.concept_states is None:
            raise ConfigError(
                f"{config.cache}: the feature cache has no concept states; re-run "
                "musicbert features to pack it again"
            )
        model.musicbert.set_concept_states(torch.from_numpy(cache.concept_states))
    batcher = make_batcher(
        cache,
        train_ids,
        config,
        model_config.mask_probability,
        device,
        dist_info.rank,
        dist_info.world_size,
    )
    optimiser = make_optimiser(model, config, device)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lr_lambda(config.warmup_steps, config.steps)
    )
    step = 0
    ckpt_path = out / "checkpoint.pt"
    if resume and ckpt_path.is_file():
        state = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        scheduler.load_state_dict(state["scheduler"])
        _set_rng_states(state["rng"])
        step = int(state["step"])
    wrapped = model
    if dist_info.enabled:
        from torch.nn.parallel import DistributedDataParallel

        wrapped = DistributedDataParallel(
            model,
            device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=True,  # single-objective runs leave heads unused
        )
    autocast = autocast_for(device)
    metrics_file = out / "metrics.jsonl"
    if dist_info.is_main and not (resume and ckpt_path.is_file()):
        metrics_file.write_text("")
        (out / "train_config.json").write_text(json.dumps(asdict(config), indent=1))
    started = time.monotonic()
    model.train()
    bar = tqdm(
        total=config.steps,
        initial=step,
        desc=config.name,
        unit="step",
        disable=not (progress and dist_info.is_main),
        file=sys.stderr,
    )
    samples = 0
    last = min(config.steps, stop_after or config.steps)
    while step < last:
        # dropout randomness as a function of the step: identical after a resume
        torch.manual_seed(config.seed * 1_000_003 + step * 7919 + dist_info.rank)
        batch = batcher.batch(step).to(device)  # DeviceBatcher's is there already
        output, grad_norm = train_step(
            wrapped, model, batch, config, optimiser, scheduler, autocast
        )
        step += 1
        samples += config.batch_size * dist_info.world_size
        bar.update(1)
        if step % config.log_every == 0 or step == config.steps:
            row = {k: distributed.mean_across(v, dist_info) for k, v in _losses(output).items()}
            row.update(
                step=step,
                lr=scheduler.get_last_lr()[0],
                grad_norm=float(grad_norm),
                epoch=batcher.position(step - 1)[0],
                samples_per_s=samples / max(time.monotonic() - started, 1e-9),
            )
            if dist_info.is_main:
                with metrics_file.open("a") as f:
                    f.write(json.dumps(row) + "\n")
                bar.set_postfix(loss=f"{row['loss']:.3f}")
        if step % config.checkpoint_every == 0 or step == last:
            if dist_info.is_main:
                tmp = out / "checkpoint.pt.tmp"
                torch.save(
                    {
                        "model": model.state_dict(),
                        "optimiser": optimiser.state_dict(),
                        "scheduler": scheduler.state_dict(),
                        "rng": _rng_states(),
                        "step": step,
                        "config": asdict(config),
                    },
                    tmp,
                )
                tmp.replace(ckpt_path)
            distributed.barrier(dist_info)
    bar.close()
    if step < config.steps:  # stopped early on request: the checkpoint is the result
        distributed.teardown(dist_info)
        return None
    if on_finish is not None:
        on_finish(model, dist_info.rank)
    final = out / "final"
    if dist_info.is_main:
        export_final(model, final)
        summary = {
            "name": config.name,
            "steps": step,
            "wall_s": time.monotonic() - started,
            "device": str(device),
            "world_size": dist_info.world_size,
            "threads": torch.get_num_threads(),
            "batcher": type(batcher).__name__,
        }
        (out / "summary.json").write_text(json.dumps(summary, indent=1))
        plot_losses(metrics_file, out / "loss.png")
    distributed.barrier(dist_info)
    distributed.teardown(dist_info)
    return final


def export_final(model, directory: Path) -> None:
    """The shared Transformer alone (no pretraining heads), marked trained."""
    from training.export import save_encoder

    save_encoder(model, directory)


def plot_losses(metrics_file: Path, png: Path) -> None:
    """Each logged loss against the step, one line per objective (matplotlib Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in metrics_file.read_text().splitlines() if line.strip()]
    if not rows:
        return
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for key in ("loss", "mlm_loss", "contrastive_loss", "cpc_loss", "tag_loss"):
        pts = [(r["step"], r[key]) for r in rows if key in r]
        if pts:
            ax.plot(*zip(*pts, strict=True), label=key)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.legend()
    fig.tight_layout()
    fig.savefig(png, dpi=90)
    plt.close(fig)
