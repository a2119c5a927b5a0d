"""Fixtures of the export tests (tiny models come from ``support_models``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from support_models import tiny_bert_checkpoint


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    return tiny_bert_checkpoint(tmp_path_factory.mktemp("tiny-bert"))
