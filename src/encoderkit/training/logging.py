"""Metrics to JSON lines (one object per event) and to TensorBoard."""

from __future__ import annotations

import json
import time
from pathlib import Path


class MetricLogger:
    """Appends to ``metrics.jsonl`` and TensorBoard; ``resume_step`` drops what a killed run logged
    after its last checkpoint, so a resumed run's logs read as if it had never stopped."""

    def __init__(self, run_dir: Path, tensorboard: bool = True, resume_step: int | None = None):
        self.path = Path(run_dir) / "metrics.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume_step is not None and self.path.is_file():
            self._truncate_after(resume_step)
        self.writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                purge = {"purge_step": resume_step + 1} if resume_step is not None else {}
                self.writer = SummaryWriter(str(Path(run_dir) / "tensorboard"), **purge)
            except ImportError:  # tensorboard is a dependency, but a trimmed install still trains
                self.writer = None

    def _truncate_after(self, step: int) -> None:
        from encoderkit.files import atomic_write_text

        kept = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                if json.loads(line)["step"] <= step:
                    kept.append(line + "\n")
            except (json.JSONDecodeError, KeyError, TypeError):
                continue  # a line cut short by the kill
        atomic_write_text(self.path, "".join(kept))

    def log(self, split: str, step: int, values: dict[str, float], **extra) -> None:
        record = {"split": split, "step": step, "time": round(time.time(), 3), **extra, **values}
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        if self.writer is not None:
            for key, value in values.items():
                if isinstance(value, (int, float)):
                    self.writer.add_scalar(f"{split}/{key}", value, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.flush()
            self.writer.close()
