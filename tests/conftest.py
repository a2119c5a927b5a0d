"""Fixtures shared by all tests (helpers live in support.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from support import make_trec_slice

torch.set_num_threads(2)


@pytest.fixture
def trec_slice(tmp_path: Path) -> dict[str, Path]:
    return make_trec_slice(tmp_path)
