"""Start an encoder's embedding table from pretrained word vectors.

``align_vectors`` maps a tokenizer vocabulary onto a set of word vectors: each vocabulary entry
found among the vectors (exactly, or lower-cased) gets its vector; the others follow the
out-of-vocabulary policy; special tokens (``[PAD]``, ``[UNK]``, ``<s>``...) get zero rows.
It also measures coverage, the number that tells whether the vectors suit the data:
the share of the vocabulary found, and (given token counts) the share of training tokens.
"""

from __future__ import annotations

import re

import numpy as np

from encoderkit.errors import ConfigError

#: Out-of-vocabulary policies: N(0, sigma^2) with the vectors' own sigma, zeros, or the mean vector.
OOV_POLICIES = ("random", "zero", "mean")

#: Why a subword tokenizer cannot start from word vectors (for the embeddings builder's error).
SUBWORD_REFUSAL = (
    "pretrained word vectors need a word-level tokenizer (tokenizer.kind: word): the pieces of a "
    "subword tokenizer (BPE, WordPiece, Unigram, char), such as '##ing' or 'tion', are not words "
    "and have no vector in GloVe/word2vec/fastText files, so most of the table would stay random; "
    "set tokenizer.kind=word, or remove embedding.pretrained"
)

_SPECIAL = re.compile(r"^(\[[A-Za-z_]+\]|<[A-Za-z_/|]+>)$")


def is_special_token(token: str) -> bool:
    """``[PAD]``, ``[UNK]``, ``[CLS]``, ``<pad>``, ``<s>``, ``</s>``... : tokens without a word vector."""
    return bool(_SPECIAL.match(token))


def align_vectors(
    vocab: dict[str, int],
    words: list[str],
    vectors: np.ndarray,
    *,
    oov: str,
    token_counts: dict[str, int] | None = None,
    lowercase_fallback: bool = True,
    seed: int = 0,
) -> tuple[np.ndarray, dict]:
    """Build the (len(vocab), D) embedding matrix of a tokenizer vocabulary from word vectors.

    Args:
        vocab: Token -> row of the embedding table (the tokenizer's vocabulary).
        words: Words of the pretrained vectors (first occurrence wins on duplicates).
        vectors: (len(words), D) pretrained vectors.
        oov: Rows of tokens without a vector: "random" (N(0, sigma^2), sigma the standard
            deviation of the pretrained values, so they look like the others), "zero", or
            "mean" (the mean pretrained vector).
        token_counts: Token -> count in the training data, to report ``token_coverage`` and
            ``train_vocab_coverage``.
        lowercase_fallback: Try ``token.lower()`` when the token itself has no vector (cased
            tokenizer, lower-cased vectors such as GloVe 6B).
        seed: Seed of the "random" policy.

    Returns:
        ``(matrix, coverage)``: float32 matrix whose special-token rows are zero, and a dict:
        ``vocab_coverage`` (share of the vocabulary with a vector), ``found``, ``vocab_size``,
        ``dim``, and from ``token_counts`` (None without them): ``token_coverage`` (share of
        training token occurrences with a vector), ``train_vocab_coverage`` (share of the
        distinct tokens that occur in training with a vector), ``train_vocab_found`` and
        ``train_vocab_size``. Shares leave special tokens out of the denominator. With
        ``embedding.extend_vocab`` the vocabulary is mostly words added from the vectors, so
        ``vocab_coverage`` nears 100% whatever the data; ``train_vocab_coverage`` is the figure
        that says whether the vectors suit it.
    """
    if oov not in OOV_POLICIES:
        raise ConfigError(f"unknown embedding.oov {oov!r}; valid policies: {', '.join(OOV_POLICIES)}")
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or len(words) != vectors.shape[0]:
        raise ConfigError(f"{len(words)} words but vectors of shape {vectors.shape}: expected one row per word")
    if not vocab:
        raise ConfigError("the tokenizer vocabulary is empty; train or load the tokenizer first")
    size = max(vocab.values()) + 1
    dim = vectors.shape[1]
    row_of: dict[str, int] = {}
    for index, word in enumerate(words):
        row_of.setdefault(word, index)

    if oov == "random":
        sigma = float(vectors.std()) if vectors.size else 1.0
        matrix = np.random.default_rng(seed).normal(0.0, sigma, size=(size, dim)).astype(np.float32)
    elif oov == "mean":
        matrix = np.tile(vectors.mean(axis=0, dtype=np.float64).astype(np.float32), (size, 1))
    else:
        matrix = np.zeros((size, dim), dtype=np.float32)

    found_tokens: set[str] = set()
    special_tokens: set[str] = set()
    for token, row in vocab.items():
        if is_special_token(token):
            special_tokens.add(token)
            matrix[row] = 0.0
            continue
        source = row_of.get(token)
        if source is None and lowercase_fallback:
            source = row_of.get(token.lower())
        if source is not None:
            matrix[row] = vectors[source]
            found_tokens.add(token)

    ordinary = len(vocab) - len(special_tokens)
    coverage = {
        "vocab_coverage": len(found_tokens) / ordinary if ordinary else 0.0,
        "token_coverage": None,
        "found": len(found_tokens),
        "vocab_size": len(vocab),
        "dim": dim,
        "train_vocab_coverage": None,
        "train_vocab_found": None,
        "train_vocab_size": None,
    }
    if token_counts is not None:
        seen = {token: count for token, count in token_counts.items() if count > 0 and not is_special_token(token)}
        total = sum(seen.values())
        hit = sum(count for token, count in seen.items() if token in found_tokens)
        seen_found = sum(1 for token in seen if token in found_tokens)
        coverage.update(token_coverage=hit / total if total else 0.0,
                        train_vocab_coverage=seen_found / len(seen) if seen else 0.0,
                        train_vocab_found=seen_found, train_vocab_size=len(seen))
    return matrix, coverage


def extend_vocabulary(vocab: dict[str, int], words: list[str], max_words: int) -> dict[str, int]:
    """Append the ``max_words`` first (most frequent) pretrained words missing from ``vocab``.

    A word tokenizer trained on the training text maps every unseen word to ``[UNK]``, even when
    the pretrained vectors know it; on TREC 52% of the test questions (61% of a 10% validation
    split) contain such a word, 99% of which GloVe 6B has. Extending the vocabulary lets those
    words keep their vectors at test time. Existing ids are unchanged; new ids follow them.

    Args:
        vocab: Token -> id of the trained tokenizer.
        words: Pretrained words, most frequent first (GloVe/word2vec/fastText files are).
        max_words: How many of the first pretrained words to consider (bounds the table size).

    Returns:
        A new token -> id mapping (``vocab`` itself is not modified).
    """
    extended = dict(vocab)
    next_id = max(extended.values(), default=-1) + 1
    for word in words[:max_words]:
        if word not in extended:
            extended[word] = next_id
            next_id += 1
    return extended


def describe_coverage(coverage: dict, path: str = "") -> str:
    """One line for logs.

    ``"glove.6B.50d: 7,912 of 8,290 vocabulary entries have a pretrained vector (95.4% of the
    vocabulary, 99.1% of training tokens), dim 50"``; when the training vocabulary's own share
    differs (an extended vocabulary), it follows the vocabulary's: ``"(99.8% of the vocabulary,
    88.0% of the 3,210 distinct training tokens, 97.2% of training tokens)"``.
    """
    source = f"{path}: " if path else ""
    vocab_share = f"{coverage['vocab_coverage']:.1%}"
    parts = [f"{vocab_share} of the vocabulary"]
    train_share = coverage.get("train_vocab_coverage")
    if train_share is not None and f"{train_share:.1%}" != vocab_share:
        parts.append(f"{train_share:.1%} of the {coverage['train_vocab_size']:,} distinct training tokens")
    if coverage.get("token_coverage") is not None:
        parts.append(f"{coverage['token_coverage']:.1%} of training tokens")
    return (
        f"{source}{coverage['found']:,} of {coverage['vocab_size']:,} vocabulary entries have a pretrained vector "
        f"({', '.join(parts)}), dim {coverage['dim']}"
    )
