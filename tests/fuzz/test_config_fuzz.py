"""Whatever a config file or an override holds, loading it succeeds or raises one-line ``ConfigError``.

Random bytes, random YAML documents (nested mappings of the real section names with random values)
and random ``a.b=c`` overrides go through ``load_config``; any other exception, or a message on
several lines, fails. Derandomized, so CI sees the same examples every run.
"""

from __future__ import annotations

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from encoderkit.config import RunConfig, load_config
from encoderkit.errors import ConfigError

FUZZ = settings(max_examples=200, deadline=None, derandomize=True, database=None)
SECTIONS = sorted(RunConfig.model_fields)
KEYS = st.sampled_from(SECTIONS + ["kind", "epochs", "lr", "hidden_size", "head", "loss", "metric", "x", ""])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
                    st.text(max_size=12), st.sampled_from(["cnn", "lstm", "pretrained", "macro_f1", "mean", "cls"]))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(KEYS, inner, max_size=4)), max_leaves=12)


def loads_or_one_line_error(path, overrides=()) -> None:
    try:
        load_config(path, list(overrides))
    except ConfigError as error:
        assert "\n" not in str(error), str(error)


@FUZZ
@given(st.binary(max_size=200))
def test_random_bytes(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("c") / "run.yaml"
    path.write_bytes(data)
    loads_or_one_line_error(path)


@FUZZ
@given(st.dictionaries(KEYS, VALUES, max_size=5))
def test_random_yaml_documents(tmp_path_factory, document):
    path = tmp_path_factory.mktemp("c") / "run.yaml"
    path.write_text(yaml.safe_dump(document))
    loads_or_one_line_error(path)


@FUZZ
@given(st.lists(st.tuples(st.lists(KEYS, min_size=1, max_size=3), st.text(max_size=15)), max_size=4))
def test_random_overrides(tmp_path_factory, pairs):
    path = tmp_path_factory.mktemp("c") / "run.yaml"
    path.write_text("encoder:\n  kind: cnn\npooling: max\n")
    loads_or_one_line_error(path, [".".join(keys) + "=" + value for keys, value in pairs])
