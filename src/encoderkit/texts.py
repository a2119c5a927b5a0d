"""The one rule for texts handed to a model, in Python and on the command line.

- A plain ``str`` is one text (``model.predict("Who wrote Hamlet ?")`` gives one label, as
  sentence-transformers' ``encode`` gives one vector), never a sequence of characters.
- Anything else must be a sequence of ``str``: ``None``, numbers and ``bytes`` are a ``TypeError``
  naming their position.
- An empty or whitespace-only text is an error naming its position: a model has nothing to read
  there, and silently returning a label for it (or dropping it) would misalign outputs with inputs.
"""

from __future__ import annotations

from collections.abc import Sequence

from encoderkit.errors import DataError


def as_text_list(texts, *, where: Sequence[str] | None = None) -> tuple[list[str], bool]:
    """Check ``texts`` and return ``(list of texts, single)``, ``single`` when a lone ``str`` was given.

    Args:
        texts: a ``str`` or a sequence of ``str`` (list, tuple, numpy array, pandas Series).
        where: optional names of the positions for messages (``["texts.txt:3", ...]``).

    Raises:
        TypeError: an item is not a ``str`` (its position and type named).
        DataError: an item is empty or whitespace only.
    """
    if isinstance(texts, str):
        items, single = [texts], True
    elif isinstance(texts, (bytes, bytearray)):
        raise TypeError("texts must be str, not bytes; decode them first (e.g. data.decode('utf-8'))")
    else:
        try:
            items = list(texts)
        except TypeError:
            raise TypeError(f"texts must be a str or a list of str, not {type(texts).__name__}") from None
        single = False
    for index, text in enumerate(items):
        name = where[index] if where is not None else f"texts[{index}]"
        if not isinstance(text, str):
            hint = "; decode it first (e.g. data.decode('utf-8'))" if isinstance(text, (bytes, bytearray)) else ""
            raise TypeError(f"{name} is {type(text).__name__}, not str{hint}")
        if not text.strip():
            raise DataError(f"{name} is empty; a model needs some text to read (remove it or fill it in)")
    return items, single
