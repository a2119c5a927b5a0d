"""Reading labelled text, splitting it, and batching it for training."""

from encoderkit.data.readers import Example, read_examples

__all__ = ["Example", "read_examples"]
