"""Request and prediction ids: unique, time-ordered for the log, never shared by forks."""

from __future__ import annotations

import os
import re
import time

from atoll.serve.ids import prediction_ids, random_hex, request_id

HEX = re.compile(r"[0-9a-f]+")


def test_prediction_ids_are_unique_36_hex_characters_and_start_with_the_time() -> None:
    before_ms = time.time_ns() // 1_000_000
    ids = prediction_ids(1000) + prediction_ids(1000)
    after_ms = time.time_ns() // 1_000_000
    assert len(set(ids)) == 2000
    assert all(len(i) == 36 and HEX.fullmatch(i) for i in ids)
    stamps = {int(i[:12], 16) for i in ids}
    assert all(before_ms <= stamp <= after_ms for stamp in stamps)
    assert ids[0][:28] != ids[1000][:28]  # each request has its own random prefix
    assert [int(i[28:], 16) for i in ids[:1000]] == list(range(1000))


def test_prediction_ids_past_the_precomputed_rows_keep_counting() -> None:
    ids = prediction_ids(10_000)
    assert [int(i[28:], 16) for i in ids] == list(range(10_000))
    assert len({i[:28] for i in ids}) == 1
    assert prediction_ids(0) == []


def test_ids_of_later_requests_sort_after_earlier_ones() -> None:
    first = prediction_ids(1)[0]
    time.sleep(0.002)
    assert prediction_ids(1)[0] > first


def test_request_ids_are_random_and_distinct_across_pool_refills() -> None:
    ids = [request_id() for _ in range(2000)]  # 32 KB: several refills of the 4 KiB pool
    assert len(set(ids)) == 2000
    assert all(len(i) == 32 and HEX.fullmatch(i) for i in ids)


def test_a_forked_child_does_not_reuse_the_parents_randomness() -> None:
    random_hex(1)  # the pool holds unused bytes that a fork would copy
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: send its next id and leave at once
        os.write(write, random_hex(16).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    os.close(read)
    assert len(child) == 32
    assert child != random_hex(16)
