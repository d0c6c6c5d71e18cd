"""Decoding logged JSON a chunk at a time: Arrow's columns equal the record-by-record frame."""

from __future__ import annotations

import threading
from collections.abc import Generator

import orjson
import pandas as pd
import pytest

from atoll.store._jsonframe import JsonObjects, _arrow_frame, decode_objects, records_frame
from atoll.store._readahead import read_ahead

CASES = {
    "numbers, text and missing keys": [
        '{"age":31,"income":5200.5,"city":"Oslo"}',
        '{"age":45,"city":"Bergen"}',
        '{"income":-0.25,"city":null}',
    ],
    "integers and floats in one key": ['{"x":1}', '{"x":2.5}', '{"x":-3}'],
    "integers and nulls": ['{"x":1}', '{"x":null}', "{}"],
    "booleans and nulls": ['{"ok":true}', '{"ok":null}', '{"ok":false}', "{}"],
    "a key that is null everywhere": ['{"x":null,"y":1}', '{"x":null,"y":2}'],
    "dates as text": ['{"day":"2026-01-05","n":1}', '{"day":"2026-02-01","n":2}'],
    "numbers and text in one key": ['{"code":36}', '{"code":"A7"}'],
    "nested values": ['{"tags":[1,2]}', '{"tags":[]}'],
    "escapes and unicode": ['{"note":"a\\nb \\"q\\" \\u00e9t\\u00e9 \\u2603"}', '{"note":"x"}'],
    "empty objects only": ["{}", "{}", "{}"],
    "an object over several lines": ['{"x":\n1}', '{"x":2}'],
}
ARROW_READS = {  # the cases Arrow reads itself (the others fall back, record by record)
    "numbers, text and missing keys",
    "integers and floats in one key",
    "integers and nulls",
    "booleans and nulls",
    "a key that is null everywhere",
    "dates as text",
    "escapes and unicode",
    "empty objects only",
    "an object over several lines",
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_chunk_decodes_to_the_frame_of_its_records(case: str) -> None:
    texts = CASES[case]
    frame = decode_objects(JsonObjects.of(texts))

    expected = records_frame([orjson.loads(text) for text in texts])
    pd.testing.assert_frame_equal(_plain(frame), _plain(expected), check_like=True)
    for name in expected.columns:  # the values a fold reads: equal, as text too
        assert [str(v) for v in frame[name].dropna()] == [str(v) for v in expected[name].dropna()]
    assert (_arrow_frame(JsonObjects.of(texts), flatten=False) is not None) == (case in ARROW_READS)


def test_nested_outputs_flatten_as_json_normalize_names_them() -> None:
    texts = [
        '{"prediction":1,"probabilities":{"0":0.25,"1":0.75}}',
        '{"prediction":0,"probabilities":{"0":0.9,"1":0.1}}',
        '{"prediction":1}',
    ]
    frame = decode_objects(JsonObjects.of(texts), flatten=True)

    expected = records_frame([orjson.loads(text) for text in texts], flatten=True)
    pd.testing.assert_frame_equal(_plain(frame), _plain(expected), check_like=True)
    assert frame["probabilities.1"].tolist()[:2] == [0.75, 0.1]
    assert _arrow_frame(JsonObjects.of(texts), flatten=True) is not None


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """Values as Python objects, every null as None (a missing key is NaN to pandas)."""
    return frame.astype(object).where(frame.notna(), None)


def test_no_texts_give_an_empty_frame() -> None:
    assert decode_objects(JsonObjects.of([])).shape == (0, 0)


def test_read_ahead_runs_the_generator_in_one_other_thread_and_closes_it_there() -> None:
    threads: list[int] = []

    def produce() -> Generator[int, None, None]:
        try:
            for i in range(10):
                threads.append(threading.get_ident())
                yield i
        finally:
            threads.append(threading.get_ident())

    items = read_ahead(produce(), "test-read-ahead")
    taken = [next(items), next(items), next(items)]
    items.close()

    assert taken == [0, 1, 2]
    assert len(set(threads)) == 1 and threads[0] != threading.get_ident()
    assert len(threads) == 5  # items 0-3 made (one ahead), then closed


def test_read_ahead_hands_the_generators_error_to_the_caller() -> None:
    def produce() -> Generator[int, None, None]:
        yield 1
        raise LookupError("row 2 is broken")

    items = read_ahead(produce(), "test-read-ahead")
    assert next(items) == 1
    with pytest.raises(LookupError, match="row 2 is broken"):
        next(items)
