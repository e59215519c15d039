"""A drop-in for OpenRL's ``Logger`` that writes the same run layout into a directory we choose.

OpenRL's own Logger invents ``log_path/project/scenario/exp/runN`` and needs tensorboardX; ours
writes exactly ``run_dir/log.txt`` (same line format, so OpenRL tooling and our replay read it)
and ``run_dir/logs/<tag>/<tag>/events.*`` (the ``add_scalars`` layout) with torch's writer.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch


class RunLogger:
    """Implements the part of ``openrl.utils.logger.Logger`` the on-policy driver calls."""

    def __init__(self, run_dir: Path, *, use_tensorboard: bool = True):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.use_wandb = False
        self.use_tensorboard = use_tensorboard
        self._log = logging.getLogger(f"openrl_ws.run.{id(self)}")
        self._log.setLevel(logging.INFO)
        self._log.propagate = False
        self._handler = logging.FileHandler(self.run_dir / "log.txt", encoding="utf-8")
        self._handler.setFormatter(logging.Formatter("%(asctime)s [%(levelname)s] %(message)s"))
        self._log.addHandler(self._handler)
        self.writer = None
        self._tag_writers: dict = {}
        if use_tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._writer_cls = SummaryWriter
            self.writer = SummaryWriter(str(self.run_dir / "logs"))

    def info(self, msg: str) -> None:
        self._log.info(msg)

    def log_info(self, infos: dict[str, Any], step: int) -> None:
        """One block of ``\\tname: value`` lines, and each value as its own add_scalars tag."""
        text = "\n"
        for key, value in infos.items():
            value = _scalar(value)
            text += f"\t{key}: {value}\n"
            if self.writer is not None:
                self._tag_writer(key).add_scalar(key, value, step)
        self._log.info(text)

    def log_learner_info(self, learner_id: int, infos: dict[str, Any], step: int) -> None:
        self.log_info({f"Learner_{learner_id}/{k}": v for k, v in infos.items()}, step)

    def _tag_writer(self, tag: str):
        """OpenRL's (tensorboardX ``add_scalars``) layout: one writer per tag in ``logs/<tag>/<tag>/``."""
        if tag not in self._tag_writers:
            safe = tag.replace("/", "_")
            self._tag_writers[tag] = self._writer_cls(str(self.run_dir / "logs" / safe / safe))
        return self._tag_writers[tag]

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        """A flat scalar in the root events file (the watchdog's own ``watchdog/*`` tags)."""
        if self.writer is not None:
            self.writer.add_scalar(tag, value, step)

    def flush(self) -> None:
        self._handler.flush()
        for writer in [self.writer, *self._tag_writers.values()]:
            if writer is not None:
                writer.flush()

    def close(self) -> None:
        self.flush()
        for writer in [self.writer, *self._tag_writers.values()]:
            if writer is not None:
                writer.close()
        self._log.removeHandler(self._handler)
        self._handler.close()


def _scalar(value: Any) -> float:
    if isinstance(value, torch.Tensor):
        return float(value.detach().float().mean().item())
    if isinstance(value, (int, float)):
        return float(value)
    return float(np.mean(value))
