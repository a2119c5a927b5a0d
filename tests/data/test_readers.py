import json

import pandas as pd
import pytest

from encoderkit.data.readers import detect_format, iter_texts_with_lines, read_examples, read_texts
from encoderkit.errors import DataError

RECORDS = [
    {"question": "What is an atom ?", "kind": "DESC"},
    {"question": "Who was Galileo ?", "kind": "HUM"},
    {"question": "Where is Aspen ?", "kind": "LOC"},
]


def expected():
    return [(r["question"], (r["kind"],)) for r in RECORDS]


def as_pairs(examples):
    return [(e.text, e.labels) for e in examples]


def test_jsonl(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    assert as_pairs(read_examples(path, text_field="question", label_field="kind")) == expected()


@pytest.mark.parametrize("suffix,separator", [(".csv", ","), (".tsv", "\t")])
def test_csv_and_tsv(tmp_path, suffix, separator):
    path = tmp_path / f"d{suffix}"
    pd.DataFrame(RECORDS).to_csv(path, sep=separator, index=False)
    assert as_pairs(read_examples(path, text_field="question", label_field="kind")) == expected()


@pytest.mark.parametrize("name,opener", [("d.jsonl.gz", "gzip"), ("d.csv.bz2", "bz2"), ("d.tsv.xz", "lzma")])
def test_compressed_files_read_like_plain_ones(tmp_path, name, opener):
    import importlib

    plain = tmp_path / name.rsplit(".", 1)[0]
    if plain.suffix == ".jsonl":
        plain.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    else:
        pd.DataFrame(RECORDS).to_csv(plain, sep="," if plain.suffix == ".csv" else "\t", index=False)
    with importlib.import_module(opener).open(tmp_path / name, "wb") as handle:
        handle.write(plain.read_bytes())
    assert as_pairs(read_examples(tmp_path / name, text_field="question", label_field="kind")) == expected()


def test_compressed_file_with_bad_bytes_names_the_line(tmp_path):
    import gzip

    with gzip.open(tmp_path / "texts.txt.gz", "wb") as handle:
        handle.write("fine\ncaf\u00e9\n".encode("latin-1"))
    assert next(read_texts(tmp_path / "texts.txt.gz")) == "fine"
    with pytest.raises(DataError, match=r"texts.txt.gz:2: not valid UTF-8"):
        list(read_texts(tmp_path / "texts.txt.gz"))


def test_truncated_compressed_file_is_one_line(tmp_path):
    import gzip

    whole = gzip.compress("".join(json.dumps(r) + "\n" for r in RECORDS * 50).encode())
    (tmp_path / "cut.jsonl.gz").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DataError, match=r"cut.jsonl.gz: cannot decompress after line \d+ .*truncated or corrupt"):
        read_examples(tmp_path / "cut.jsonl.gz", text_field="question", label_field="kind")


def test_parquet(tmp_path):
    path = tmp_path / "d.parquet"
    pd.DataFrame(RECORDS).to_parquet(path)
    assert as_pairs(read_examples(path, text_field="question", label_field="kind")) == expected()


def test_fasttext_labels_single_and_multi(tmp_path):
    path = tmp_path / "d.txt"
    path.write_text("__label__DESC What is an atom ?\n__label__sport __label__news Final score 3-1\n")
    with pytest.raises(DataError, match="2 labels given; set classify.multi_label=true"):
        read_examples(path, fmt="fasttext")
    examples = read_examples(path, fmt="fasttext", multi_label=True)
    assert as_pairs(examples) == [("What is an atom ?", ("DESC",)), ("Final score 3-1", ("sport", "news"))]


def test_multi_label_strings_are_split(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"text": "goal!", "label": "sport, news"}) + "\n")
    assert read_examples(path, multi_label=True)[0].labels == ("sport", "news")


def test_non_utf8_reports_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b'{"text": "fine", "label": "a"}\n{"text": "caf\xe9", "label": "b"}\n')
    with pytest.raises(DataError, match=r"bad.jsonl:2: not valid UTF-8 \(byte 0xe9"):
        read_examples(path)


def test_missing_field_names_the_fields(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"body": "x", "label": "a"}) + "\n")
    with pytest.raises(DataError, match=r"d.jsonl:1: no field 'text' \(fields: body, label\); set data.text_field"):
        read_examples(path)


def test_empty_text_is_an_error(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"text": "  ", "label": "a"}) + "\n")
    with pytest.raises(DataError, match="d.jsonl:1: the text in field 'text' is empty"):
        read_examples(path)


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(DataError, match="data file not found"):
        read_examples(tmp_path / "none.jsonl")
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(DataError, match="no examples found"):
        read_examples(tmp_path / "empty.jsonl")


def test_read_texts_plain_lines(tmp_path):
    path = tmp_path / "texts.txt"
    path.write_text("first line\nsecond line\n")  # the final newline ends a line, it is no blank line
    assert list(read_texts(path)) == ["first line", "second line"]


@pytest.mark.parametrize("blank", ["", "   ", "\t\r"])
def test_read_texts_refuses_a_blank_line_instead_of_shifting_the_outputs(tmp_path, blank):
    path = tmp_path / "texts.txt"
    path.write_text(f"first line\n{blank}\nthird line\n")
    with pytest.raises(DataError, match=r"^\S*texts.txt:2: the text is empty; remove the line or fill it in$"):
        list(read_texts(path))


def test_iter_texts_with_lines_numbers_each_text_by_its_line(tmp_path):
    (tmp_path / "a.txt").write_text("one\ntwo\n")
    assert list(iter_texts_with_lines(tmp_path / "a.txt")) == [(1, "one"), (2, "two")]
    # blank JSONL lines hold no record, so they are skipped, but the numbers still match the file
    (tmp_path / "b.jsonl").write_text('{"text": "one"}\n\n{"text": "three"}\n')
    assert list(iter_texts_with_lines(tmp_path / "b.jsonl")) == [(1, "one"), (3, "three")]
    (tmp_path / "c.csv").write_text('text,label\nfirst,x\n"second, quoted",y\n')
    assert list(iter_texts_with_lines(tmp_path / "c.csv", "auto", "text")) == [(2, "first"), (3, "second, quoted")]
    pd.DataFrame({"body": ["p", "q"]}).to_parquet(tmp_path / "d.parquet")
    assert list(iter_texts_with_lines(tmp_path / "d.parquet", text_field="body")) == [(1, "p"), (2, "q")]
    with pytest.raises(DataError, match="input file not found"):
        iter_texts_with_lines(tmp_path / "missing.txt")


BOM = "\ufeff"


@pytest.mark.parametrize("name,content", [
    ("excel.csv", "text,label\nhello,a\n"),
    ("excel.tsv", "text\tlabel\nhello\ta\n"),
    ("notepad.jsonl", '{"text": "hello", "label": "a"}\n'),
    ("labels.ft", "__label__a hello\n"),
])
def test_a_byte_order_mark_is_not_part_of_the_first_line(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(BOM + content, encoding="utf-8")
    assert as_pairs(read_examples(path)) == [("hello", ("a",))]


def test_a_byte_order_mark_in_plain_text_and_compressed_files(tmp_path):
    import gzip

    (tmp_path / "texts.txt").write_text(BOM + "hello\nworld\n", encoding="utf-8")
    assert list(read_texts(tmp_path / "texts.txt")) == ["hello", "world"]
    with gzip.open(tmp_path / "data", "wb") as handle:  # no suffix: the format is sniffed past the mark
        handle.write((BOM + '{"text": "hello", "label": "a"}\n').encode("utf-8"))
    assert detect_format(tmp_path / "data") == "jsonl"
    assert as_pairs(read_examples(tmp_path / "data")) == [("hello", ("a",))]


def test_odd_field_names_and_broken_csv_rows_stay_on_one_line(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text('"multi\nline",label\nx,a\n')
    with pytest.raises(DataError, match=r"d.csv:3: no field 'text' \(fields: 'multi\\nline', label\)"):
        read_examples(path)
    path.write_bytes(b"text,label\nfine,a\nbro\rken,b\n")  # a lone carriage return inside an unquoted cell
    with pytest.raises(DataError, match=r"d.csv:3: not a valid CSV row \(new-line character seen in unquoted field\); "
                                        r"check its quotes$"):
        read_examples(path)
    deep = tmp_path / "deep.jsonl"
    deep.write_text("[" * 100_000 + "\n")
    with pytest.raises(DataError, match=r"deep.jsonl:1: the JSON nests too deeply"):
        read_examples(deep)
