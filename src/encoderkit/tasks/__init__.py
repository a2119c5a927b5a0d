"""Tasks: what a text encoder is used for. One registry, a plain dict (no reflection, no plugins).

Each task is one module implementing the ``Task`` contract of ``tasks/base.py``; the runner
(``tasks/runner.py``) trains any of them, and ``encoderkit.load()`` returns the task's predictor.
"""

from __future__ import annotations

from encoderkit.errors import ConfigError
from encoderkit.tasks.base import Task
from encoderkit.tasks.classify import ClassifyTask
from encoderkit.tasks.retrieve import RetrieveTask
from encoderkit.tasks.translate import TranslateTask

TASKS: dict[str, type] = {
    "classify": ClassifyTask,
    "retrieve": RetrieveTask,
    "translate": TranslateTask,
}


def get_task(name: str) -> Task:
    """The task registered as ``name``; an unknown name lists the known ones."""
    if name not in TASKS:
        raise ConfigError(f"unknown task {name!r}; valid tasks: {', '.join(TASKS)}")
    return TASKS[name]()


__all__ = ["TASKS", "Task", "get_task"]
