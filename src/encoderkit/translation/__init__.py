"""Translation beyond the training recipe (``tasks/translate.py``): the ``encoderkit translate`` command
(``translation/cli.py``) and the run report (``translation/report.py``)."""
