"""Interoperability with other frameworks: ``encoderkit.interop.keras`` converts Keras encoders.

Nothing here imports Keras at import time; Keras is an optional extra (``encoderkit[keras]``).
"""
