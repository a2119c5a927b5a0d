import bz2
import gzip
import lzma

import pytest

from encoderkit.compression import (compression_from_suffix, detect_compression, open_decompressed,
                                    without_compression_suffix)


@pytest.mark.parametrize("opener,name", [(gzip, "gz"), (bz2, "bz2"), (lzma, "xz")])
def test_compression_is_told_by_content_not_name(tmp_path, opener, name):
    path = tmp_path / "misnamed.txt"  # no compression suffix: the first bytes decide
    with opener.open(path, "wb") as handle:
        handle.write(b"one\ntwo\n")
    assert detect_compression(path) == name
    with open_decompressed(path) as handle:
        assert handle.read() == b"one\ntwo\n"


def test_plain_file_opens_as_is(tmp_path):
    path = tmp_path / "plain.jsonl.gz"  # a suffix that lies
    path.write_bytes(b'{"text": "hi"}\n')
    assert detect_compression(path) is None
    with open_decompressed(path) as handle:
        assert handle.read() == b'{"text": "hi"}\n'


def test_names():
    assert without_compression_suffix("data/train.jsonl.gz").name == "train.jsonl"
    assert without_compression_suffix("data/train.jsonl").name == "train.jsonl"
    assert compression_from_suffix("vectors.txt.xz") == "xz"
    assert compression_from_suffix("vectors.txt") is None
