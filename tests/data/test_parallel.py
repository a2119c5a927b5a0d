"""Parallel corpora: the three layouts, one-line errors naming file and line, the length filters, and
token-budget batches."""

from __future__ import annotations

import json

import pytest

from encoderkit.data.batching import TokenBudgetSampler
from encoderkit.data.parallel import filter_pairs, read_pairs
from encoderkit.errors import DataError
from support import shared


def write_sides(folder, name, source_lines, target_lines, source="de", target="en"):
    (folder / f"{name}.{source}").write_text("".join(line + "\n" for line in source_lines), encoding="utf-8")
    (folder / f"{name}.{target}").write_text("".join(line + "\n" for line in target_lines), encoding="utf-8")
    return folder / name


def test_reads_line_aligned_multi30k():
    pairs = read_pairs(shared("multi30k") / "val", "de", "en")
    assert len(pairs) == 1014
    assert pairs[0].source.startswith("Eine Gruppe von Männern") and pairs[0].target.startswith("A group of men")
    assert pairs[0].where.endswith("val.de:1")
    swapped = read_pairs(shared("multi30k") / "val", "en", "de")
    assert swapped[0].source == pairs[0].target


def test_unequal_line_counts_name_both_files_and_counts(tmp_path):
    prefix = write_sides(tmp_path, "train", ["Ein Hund.", "Eine Katze.", "Ein Haus."], ["A dog.", "A cat."])
    with pytest.raises(DataError) as error:
        read_pairs(prefix, "de", "en")
    message = str(error.value)
    assert "\n" not in message
    assert f"{tmp_path / 'train.de'} has 3 lines but {tmp_path / 'train.en'} has 2" in message


def test_an_empty_line_pair_and_an_empty_side_are_named_by_line(tmp_path):
    prefix = write_sides(tmp_path, "train", ["Ein Hund.", "  ", "Ein Haus."], ["A dog.", "", "A house."])
    with pytest.raises(DataError, match=r"train\.de:2 and .*train\.en:2 are both empty"):
        read_pairs(prefix, "de", "en")
    prefix = write_sides(tmp_path, "train", ["Ein Hund.", "Eine Katze."], ["A dog.", ""])
    with pytest.raises(DataError, match=r"train\.en:2 is empty but .*train\.de:2 is not"):
        read_pairs(prefix, "de", "en")


def test_a_byte_that_is_not_utf8_is_named_by_file_and_line(tmp_path):
    (tmp_path / "train.de").write_bytes("Ein Hund.\nEine M\xe4dchen.\n".encode("latin-1"))
    (tmp_path / "train.en").write_text("A dog.\nA girl.\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"train\.de:2: not valid UTF-8 \(byte 0xe4"):
        read_pairs(tmp_path / "train", "de", "en")


def test_missing_files_say_what_was_looked_for(tmp_path):
    with pytest.raises(DataError, match=r"data file not found: .*nothing \(looked for .*nothing.de / nothing.en"):
        read_pairs(tmp_path / "nothing", "de", "en")
    (tmp_path / "half.de").write_text("Ein Hund.\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"data file not found: .*half\.en"):
        read_pairs(tmp_path / "half", "de", "en")


def test_jsonl_and_tsv_pairs_and_their_missing_fields(tmp_path):
    jsonl = tmp_path / "pairs.jsonl"
    jsonl.write_text("\ufeff" + json.dumps({"de": "Ein Hund.", "en": "A dog."}) + "\n\n"
                     + json.dumps({"de": "Eine Katze.", "en": "A cat."}) + "\n", encoding="utf-8")
    assert [(p.source, p.target) for p in read_pairs(jsonl, "de", "en")] == [("Ein Hund.", "A dog."),
                                                                               ("Eine Katze.", "A cat.")]
    tsv = tmp_path / "pairs.tsv"
    tsv.write_text("en\tde\nA dog.\tEin Hund.\n", encoding="utf-8")
    assert read_pairs(tsv, "de", "en")[0].source == "Ein Hund."
    with pytest.raises(DataError, match=r"pairs\.tsv:2: no field 'fr' \(fields: en, de\); set translate.source"):
        read_pairs(tsv, "fr", "en")
    jsonl.write_text(json.dumps({"de": "Ein Hund.", "en": ""}) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"pairs\.jsonl:1: the text in field 'en' is empty"):
        read_pairs(jsonl, "de", "en")
    text = tmp_path / "pairs.txt"
    text.write_text("Ein Hund.\tA dog.\n", encoding="utf-8")
    with pytest.raises(DataError, match="line-aligned files .* or a JSONL, TSV or CSV file of pairs"):
        read_pairs(text, "de", "en")
    with pytest.raises(DataError, match="both 'de'"):
        read_pairs(tsv, "de", "de")


def test_filters_count_what_they_drop():
    lengths = [(5, 6), (200, 180), (3, 20), (10, 10), (1, 3), (1, 4)]
    kept, dropped = filter_pairs(lengths, max_tokens=128, max_ratio=3.0)
    assert kept == [0, 3, 4]
    assert dropped == {"too_long": 1, "ratio": 2}


def test_token_budget_batches_hold_their_budget_cover_everything_and_keep_their_count():
    lengths = [3, 17, 8, 8, 40, 2, 25, 11, 9, 5, 70, 6, 6, 13, 21, 4] * 5
    sampler = TokenBudgetSampler(lengths, 64, shuffle=True, seed=3)
    first = list(sampler)
    assert sorted(i for batch in first for i in batch) == list(range(len(lengths)))
    for batch in first:
        longest = max(lengths[i] for i in batch)
        assert len(batch) * longest <= 64 or len(batch) == 1  # the 70-token example gets a batch alone
        assert longest - min(lengths[i] for i in batch) <= 6  # a length bucket, not a mix
    sampler.set_epoch(1)
    second = list(sampler)
    assert len(first) == len(second) == len(sampler)
    assert sorted(map(sorted, first)) == sorted(map(sorted, second)) and first != second  # same batches, new order
    again = TokenBudgetSampler(lengths, 64, shuffle=True, seed=3)
    assert list(again) == first
    ordered = list(TokenBudgetSampler(lengths, 64, shuffle=False))
    assert [max(lengths[i] for i in b) for b in ordered] == sorted(max(lengths[i] for i in b) for b in ordered)
    with pytest.raises(ValueError):
        TokenBudgetSampler(lengths, 0)
