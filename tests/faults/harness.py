"""One training process of the fault-injection suite, which SIGKILLs itself at a chosen point.

    python harness.py RUN_CONFIG.json KIND N [fresh|resume]

KIND is ``none`` (run to the end), ``step`` (die before optimizer step N) or ``io`` (die at the
N-th file operation: before an ``os.replace``/rename, or halfway through writing a file, which is
left truncated). No ``finally`` block, no ``atexit`` handler runs: this is ``kill -9``.
The run resumes (``--resume``) when its output directory already holds something, or as the
fourth argument says (several processes under ``torchrun`` must not each look for themselves).
"""

from __future__ import annotations

import json
import os
import pathlib
import signal
import sys


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def install(kind: str, limit: int) -> None:
    import safetensors.torch
    import torch

    import encoderkit.files

    count = {"n": 0}

    def tick() -> bool:
        count["n"] += 1
        return count["n"] >= limit

    if kind == "step":
        real_step = torch.optim.AdamW.step

        def step(self, *args, **kwargs):
            if tick():
                die()
            return real_step(self, *args, **kwargs)

        torch.optim.AdamW.step = step
    if kind != "io":
        return

    def before(real):
        def wrapped(*args, **kwargs):
            if tick():
                die()
            return real(*args, **kwargs)
        return wrapped

    def halfway(real, path_of):
        def wrapped(*args, **kwargs):
            result = real(*args, **kwargs)
            if tick():
                path = pathlib.Path(path_of(*args, **kwargs))
                os.truncate(path, path.stat().st_size // 2)
                die()
            return result
        return wrapped

    os.replace = before(os.replace)
    encoderkit.files._exchange = before(encoderkit.files._exchange)
    safetensors.torch.save_file = halfway(safetensors.torch.save_file, lambda tensors, path, *a, **k: path)
    torch.save = halfway(torch.save, lambda obj, path, *a, **k: path)
    pathlib.Path.write_text = halfway(pathlib.Path.write_text, lambda self, *a, **k: self)


def main() -> None:
    config_path, kind, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
    import torch

    torch.set_num_threads(1)
    from encoderkit.config import validate_config
    from encoderkit.tasks.runner import run

    config = validate_config(json.loads(pathlib.Path(config_path).read_text()))
    output = pathlib.Path(config.output_dir)
    resume = sys.argv[4] == "resume" if len(sys.argv) > 4 else output.is_dir() and any(output.iterdir())
    install(kind, limit)
    run(config, resume=resume, echo=lambda *_: None)
    from encoderkit.distributed import close_process_group

    close_process_group()  # under torchrun: leave together (see its docstring)


if __name__ == "__main__":
    main()
