"""Losses live outside models: models return logits, these turn them into a scalar.

- multi-class: cross-entropy with optional label smoothing ``eps`` and class weights ``w_c``:
  ``L = -sum_c w_y q_c log softmax(z)_c`` with ``q = (1 - eps) onehot(y) + eps / C``;
- multi-label: binary cross-entropy on sigmoid outputs, one independent decision per label.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from sklearn.utils.class_weight import compute_class_weight

from encoderkit.config import LossConfig
from encoderkit.errors import ConfigError


def class_weight_vector(config: LossConfig, labels: Sequence[str], train_targets: Sequence[int]) -> torch.Tensor | None:
    """Class weights in label order: None, "balanced" (n / (C * n_c), as scikit-learn) or a mapping."""
    if config.class_weights is None:
        return None
    if config.class_weights == "balanced":
        present = np.unique(train_targets)
        weights = np.ones(len(labels), dtype=np.float64)
        weights[present] = compute_class_weight("balanced", classes=present, y=np.asarray(train_targets))
        return torch.tensor(weights, dtype=torch.float32)
    unknown = sorted(set(config.class_weights) - set(labels))
    if unknown:
        raise ConfigError(f"loss.class_weights names unknown labels {unknown}; labels are: {', '.join(labels)}")
    return torch.tensor([config.class_weights.get(label, 1.0) for label in labels], dtype=torch.float32)


def classification_loss(config: LossConfig, multi_label: bool, weights: torch.Tensor | None) -> nn.Module:
    """The loss module for a classification run."""
    if multi_label:
        # For multi-label data a class weight scales the positive term of that label.
        return nn.BCEWithLogitsLoss(pos_weight=weights)
    return nn.CrossEntropyLoss(weight=weights, label_smoothing=config.label_smoothing)
