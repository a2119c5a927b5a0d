"""``encoderkit compare``: which encoder should I use for my data, on my machine?

    encoderkit compare --data my_data/                      # the shipped candidates, 3 seeds
    encoderkit compare --data my_data/ configs/cnn.yaml my.yaml --seeds 5 --budget-minutes 60

Every candidate (a run config) is trained by the one runner (``tasks.runner.run``) on the same data
over several seeds and on 10%, 30% and 100% of the training set, next to a TF-IDF + linear SVM
baseline; the report gives accuracy and macro-F1 with 95% bootstrap intervals, the spread over
seeds, size, speed, paired significance tests against the best, a learning curve and a
recommendation in plain words.

- ``candidates.py``  what is compared: the shipped configs, the user's configs, the baseline
- ``stats.py``       bootstrap intervals, the paired bootstrap test, McNemar's exact test, the Pareto front
- ``runner.py``      the work plan (seeds, data sizes, the time budget), resumable unit by unit
- ``report.py``      the summary, plots, the recommendation, report.md / report.json
- ``cli.py``         the command

Nothing heavy is imported here, so ``encoderkit --help`` stays fast.
"""
