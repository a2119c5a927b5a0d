"""What an explanation scores: the units of a text (words, or tokens) and the token ids behind them.

Attributions are computed on token ids; a user reads words. ``encode_units`` keeps both: the ids the
model sees (special tokens included) and, for every unit, the positions of its pieces in those ids.
A word split into subword pieces (``hamlet ##es ##que``) is one unit whose score is the sum of its
pieces' scores; special tokens (``[CLS]``, ``[SEP]``) belong to no unit, so they are never shown
and never removed.
"""

from __future__ import annotations

from dataclasses import dataclass

LEVELS = ("word", "token")


@dataclass(frozen=True)
class EncodedText:
    """One text as the model sees it, with the units an explanation scores.

    Attributes:
        text: the original text.
        ids: token ids, special tokens included (the first window of a long text).
        units: the text of each unit as written in ``text`` (the tokenizer's piece where it has no offsets).
        pieces: for each unit, the positions in ``ids`` of its tokens.
        spans: for each unit, its ``(start, end)`` characters in ``text`` (``(0, 0)`` where unknown).
        tokens: the tokenizer's string for every id (for heatmaps, special tokens included).
        truncated: the text was longer than the model's ``max_length``; only the first window is explained.
    """

    text: str
    ids: tuple[int, ...]
    units: tuple[str, ...]
    pieces: tuple[tuple[int, ...], ...]
    spans: tuple[tuple[int, int], ...]
    tokens: tuple[str, ...]
    truncated: bool

    def without(self, drop: set[int]) -> list[int]:
        """The ids with the pieces of units ``drop`` (unit indices) left out; special tokens stay."""
        gone = {position for unit in drop for position in self.pieces[unit]}
        return [token for position, token in enumerate(self.ids) if position not in gone]

    def separators(self) -> list[str]:
        """The text before each unit (the original spacing, so a page shows the text as written)."""
        result, previous = [], 0
        for start, end in self.spans:
            if end <= start:
                result.append(" " if result else "")
                continue
            result.append(self.text[previous:start] if start >= previous else "")
            previous = max(previous, end)
        return result

    def baseline(self, pad_id: int) -> list[int]:
        """The ids with every unit's pieces replaced by padding (integrated gradients' baseline)."""
        inside = {position for unit in self.pieces for position in unit}
        return [pad_id if position in inside else token for position, token in enumerate(self.ids)]

    def only(self, keep: set[int]) -> list[int]:
        """The ids of units ``keep`` and the special tokens, in their original order."""
        return self.without(set(range(len(self.units))) - set(keep))


def encode_units(tokenizer, text: str, level: str = "word") -> EncodedText:
    """Tokenize ``text`` as the model does and group its tokens into units.

    Args:
        tokenizer: a ``TextTokenizer`` (trained or checkpoint); its backend truncates to ``max_length``.
        text: one text.
        level: ``word`` (pieces of one word summed into one unit; the tokenizer's own notion of a word,
            so punctuation is a word of its own) or ``token`` (every token is a unit).
    """
    encoding = tokenizer.backend.encode(text)
    pieces: list[list[int]] = []
    spans: list[list[int]] = []
    tokens: list[str] = []
    last_word = None
    for position, (special, word, (start, end), token) in enumerate(
            zip(encoding.special_tokens_mask, encoding.word_ids, encoding.offsets, encoding.tokens)):
        if special:
            continue
        if level == "word" and word is not None and word == last_word:
            pieces[-1].append(position)
            spans[-1][1] = max(spans[-1][1], end)
            tokens[-1] += token
            continue
        pieces.append([position])
        spans.append([start, end])
        tokens.append(token)
        last_word = word
    for span in spans:  # byte-level BPE counts the space before a word as part of it
        while span[0] < span[1] and text[span[0]].isspace():
            span[0] += 1
        while span[1] > span[0] and text[span[1] - 1].isspace():
            span[1] -= 1
    units = tuple(text[start:end] if end > start else token for (start, end), token in zip(spans, tokens))
    return EncodedText(text, tuple(encoding.ids), units, tuple(tuple(p) for p in pieces),
                       tuple((start, end) for start, end in spans), tuple(encoding.tokens), bool(encoding.overflowing))
