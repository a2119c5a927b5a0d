"""Word vectors: train (word2vec through gensim, GloVe in PyTorch), load/save every common format,
evaluate (analogies, word similarity) and align them with a tokenizer's vocabulary."""

from encoderkit.wordvec.io import load_vectors, save_vectors

__all__ = ["load_vectors", "save_vectors"]
