"""Fixtures of the explanation tests: tiny models of every family (see ``support_models``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from support_models import FAMILIES, build_classifier, tiny_bert_checkpoint


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    return tiny_bert_checkpoint(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="module")
def family_models() -> dict:
    return {name: build_classifier(sections) for name, sections in FAMILIES.items()}
