import pytest

from encoderkit.config import TokenizerConfig
from encoderkit.tokenization import CLS, Tokenizer

TEXTS = ["What is the capital of France ?", "Who wrote Hamlet ?", "Ça coûte combien ?",
         "我爱北京天安门", "How many legs does a spider have ?"] * 4


@pytest.mark.parametrize("kind", ["word", "bpe", "wordpiece", "unigram", "char"])
def test_every_kind_trains_saves_and_reloads(tmp_path, kind):
    tokenizer = Tokenizer.train(TEXTS, TokenizerConfig(kind=kind, vocab_size=300, max_length=16))
    ids = tokenizer.encode_batch(["What is an atom ?", "x" * 100])
    assert ids[0][0] == tokenizer.cls_id
    assert len(ids[1]) <= 16  # truncated to max_length
    tokenizer.save(tmp_path)
    again = Tokenizer.load(tmp_path)
    assert again.encode_batch(["What is an atom ?"]) == ids[:1]
    assert again.max_length == 16 and again.pad_id == tokenizer.pad_id


def test_cjk_characters_split_without_segmenter():
    tokenizer = Tokenizer.train(TEXTS, TokenizerConfig(kind="word"))
    assert tokenizer.tokens("我爱北京") == [CLS, "我", "爱", "北", "京"]


def test_normalisation_options():
    plain = Tokenizer.train(TEXTS, TokenizerConfig(kind="word", lowercase=True, strip_accents=True))
    assert plain.tokens("ÇA Coûte") == [CLS, "ca", "coute"]
    cased = Tokenizer.train(TEXTS, TokenizerConfig(kind="word", lowercase=False))
    assert cased.tokens("Who") == [CLS, "Who"]


def test_min_frequency_and_vocab_size_limit_vocabulary():
    rare = Tokenizer.train(TEXTS[:5], TokenizerConfig(kind="word", min_frequency=2))
    assert "hamlet" not in rare.get_vocab()  # occurs once in TEXTS[:5]
    small = Tokenizer.train(TEXTS, TokenizerConfig(kind="word", vocab_size=12))
    assert small.vocab_size == 12
