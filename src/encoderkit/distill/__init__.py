"""Knowledge distillation: a small classifier trained on a large classifier's outputs.

    encoderkit distill TEACHER_MODEL_DIR configs/distill_trec_cnn.yaml

``augment.py`` makes more texts (Tang et al. 2019), ``teacher.py`` checks the teacher and caches its
logits, ``task.py`` is the recipe the runner follows; the loss is ``losses.DistillationLoss``.
"""
