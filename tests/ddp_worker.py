"""Run by torchrun in test_training_loop: train, then every rank saves its own weights."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from training.pretrain import TrainConfig, train


def main() -> None:
    config = TrainConfig(**json.loads(Path(sys.argv[1]).read_text()))
    out = Path(sys.argv[2])

    def save(model, rank: int) -> None:
        torch.save(
            {k: v.detach().clone() for k, v in model.state_dict().items()}, out / f"rank{rank}.pt"
        )

    train(config, progress=False, on_finish=save)


if __name__ == "__main__":
    main()
