"""Units of a text: subword pieces grouped into the words they spell, special tokens left out."""

from __future__ import annotations

import pytest

from support_models import build_classifier

from encoderkit.interpret.tokens import encode_units


@pytest.mark.parametrize("kind", ["wordpiece", "bpe", "unigram", "word"])
def test_pieces_of_a_word_form_one_unit_that_reads_as_written(kind):
    model = build_classifier({"encoder": {"kind": "bow"}, "pooling": "mean"}, tokenizer_kind=kind)
    text = "Who wrote Hamletesque ,  unbelievably ?"  # spaced like TREC: every tokenizer sees 6 words
    words = encode_units(model.tokenizer, text, "word")
    assert words.units == ("Who", "wrote", "Hamletesque", ",", "unbelievably", "?")
    tokens = encode_units(model.tokenizer, text, "token")
    if kind != "word":  # a 600-token vocabulary splits the rare words into pieces
        assert len(tokens.units) > len(words.units)
    # every non-special position belongs to exactly one unit, in order; [CLS] to none
    positions = [p for unit in words.pieces for p in unit]
    assert positions == sorted(positions) == [p for unit in tokens.pieces for p in unit]
    assert 0 not in positions and words.tokens[0] == "[CLS]"
    assert words.separators() == ["", " ", " ", " ", "  ", " "]
    assert "".join(s + u for s, u in zip(words.separators(), words.units)) == text


def test_leaving_units_out_and_keeping_only_some_keeps_special_tokens():
    model = build_classifier({"encoder": {"kind": "bow"}, "pooling": "mean"}, tokenizer_kind="wordpiece")
    text = encode_units(model.tokenizer, "Who wrote Hamletesque ?", "word")
    cls = text.ids[0]
    third = [text.ids[p] for p in text.pieces[2]]
    assert len(third) > 1  # "Hamletesque" is several pieces in a 600-token vocabulary
    assert text.without({2}) == [t for p, t in enumerate(text.ids) if p not in text.pieces[2]]
    assert text.only({2}) == [cls, *third]
    assert text.baseline(0) == [cls] + [0] * (len(text.ids) - 1)
    assert text.without(set()) == list(text.ids)
