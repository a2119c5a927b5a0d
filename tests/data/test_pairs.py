"""Retrieval pair files, ranking sets and the no-duplicates batch sampler."""

import pytest

from encoderkit.data.batching import NoDuplicatesBatchSampler
from encoderkit.data.pairs import Pair, ranking_set_from_pairs, read_pairs, read_ranking_set
from encoderkit.errors import DataError


def test_no_text_repeats_within_a_batch_and_every_example_is_used():
    # 200 pairs over 50 distinct queries: a query repeats 4 times, as in caption-1 -> captions 2-5 files.
    texts = [(f"query {i % 50}", f"answer {i}") for i in range(200)]
    sampler = NoDuplicatesBatchSampler(texts, batch_size=8, seed=1)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 25
    for batch in batches:
        queries = [texts[i][0] for i in batch]
        assert len(queries) == len(set(queries))
    assert sorted(i for batch in batches for i in batch) == list(range(200))
    assert sampler.skipped == 0


def test_the_order_depends_only_on_seed_and_epoch():
    texts = [(f"q{i}", f"p{i}") for i in range(30)]
    first, second = NoDuplicatesBatchSampler(texts, 8, seed=3), NoDuplicatesBatchSampler(texts, 8, seed=3)
    assert list(first) == list(second)
    second.set_epoch(1)
    assert list(first) != list(second)


def test_a_text_repeated_more_often_than_there_are_batches_sits_out():
    texts = [("same query", f"p{i}") for i in range(6)] + [(f"q{i}", f"x{i}") for i in range(6)]
    sampler = NoDuplicatesBatchSampler(texts, batch_size=6, seed=0)
    batches = list(sampler)
    assert len(batches) == 2
    assert all(sum(texts[i][0] == "same query" for i in batch) <= 1 for batch in batches)
    assert sampler.skipped == 4


def test_ranking_set_groups_positives_by_query_and_dedups_documents():
    ranking = ranking_set_from_pairs([Pair("q1", "a"), Pair("q1", "b"), Pair("q2", "a", ("c",))])
    assert ranking.queries == ["q1", "q2"]
    assert ranking.documents == ["a", "b", "c"]
    assert ranking.relevant == [{0: 1.0, 1: 1.0}, {0: 1.0}]
    assert ranking.pairs == [(0, 0), (0, 1), (1, 0)]


def test_csv_pairs_and_their_errors(tmp_path):
    path = tmp_path / "pairs.csv"
    path.write_text("query,positive,negatives\nwho,someone,\nwhat,something,nothing\n")
    assert read_pairs(path) == [Pair("who", "someone"), Pair("what", "something", ("nothing",))]
    path.write_text("query,positive\nwho,\n")
    with pytest.raises(DataError, match=r"pairs.csv:2: the text in field 'positive' is empty"):
        read_pairs(path)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query": "q", "positive": "p", "negatives": 3}\n')
    with pytest.raises(DataError, match="bad.jsonl:1: field 'negatives' must be a text or a list of texts, got int"):
        read_pairs(bad)


def test_beir_folder_errors_name_the_problem(tmp_path):
    folder = tmp_path / "beir"
    folder.mkdir()
    (folder / "corpus.jsonl").write_text('{"_id": "d1", "text": "one"}\n{"_id": "d1", "text": "two"}\n')
    (folder / "queries.jsonl").write_text('{"_id": "q1", "text": "what"}\n')
    with pytest.raises(DataError, match="has no qrels.tsv"):
        read_ranking_set(folder)
    (folder / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    with pytest.raises(DataError, match=r"corpus.jsonl:2: duplicate document id 'd1'"):
        read_ranking_set(folder)
    (folder / "corpus.jsonl").write_text('{"_id": "d1", "text": "one"}\n{"_id": "d2", "text": "two"}\n')
    (folder / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td9\t1\n")
    with pytest.raises(DataError, match="document id 'd9' is not in corpus.jsonl"):
        read_ranking_set(folder)
    (folder / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td2\t2\n")
    ranking = read_ranking_set(folder)
    assert ranking.relevant == [{1: 2.0}] and ranking.document_ids == ["d1", "d2"]
