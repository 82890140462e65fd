"""Group commit: threads upserting at once share a round trip, and each one
gets its own result, after the database has its write."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from oktoscripts.devices.batching import GroupCommit


def wait_until(condition, what: str) -> None:
    event = threading.Event()
    for _ in range(2000):
        if condition():
            return
        event.wait(0.005)
    raise AssertionError(f"never happened: {what}")


def run_threads(count: int, target) -> list:
    results: list = [None] * count

    def run(k: int) -> None:
        try:
            results[k] = target(k)
        except Exception as exc:  # noqa: BLE001 - handed to the assertions
            results[k] = exc

    threads = [threading.Thread(target=run, args=(k,)) for k in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def test_concurrent_items_are_written_together_and_each_caller_gets_its_own_result():
    batches: list[list[int]] = []
    release = threading.Event()

    def write(items: list[int]) -> list[int]:
        batches.append(list(items))
        if len(batches) == 1:
            release.wait(10)  # the first write is in progress while the others queue
        return [item * 10 for item in items]

    group: GroupCommit[int, int] = GroupCommit(write)
    first = threading.Thread(target=group.submit, args=(0,))
    first.start()
    wait_until(lambda: batches, "the first write started")
    results: list = []

    def seven_callers() -> None:
        results.extend(run_threads(7, lambda k: group.submit(k + 1)))

    others = threading.Thread(target=seven_callers)
    others.start()
    wait_until(lambda: group.waiting == 7, "the other callers queued")
    release.set()
    first.join(10)
    others.join(10)
    assert results == [10, 20, 30, 40, 50, 60, 70]
    assert batches[0] == [0] and sorted(batches[1]) == [1, 2, 3, 4, 5, 6, 7]
    assert group.waiting == 0
    assert group.submit(9) == 90  # alone: written at once


def test_an_item_that_fails_fails_alone_and_a_failed_write_fails_its_batch():
    def write(items: list[int]) -> list:
        if 13 in items:
            raise ConnectionError("database gone")
        return [ValueError(f"refused {i}") if i % 2 else i for i in items]

    group: GroupCommit[int, int] = GroupCommit(write)
    assert group.submit(2) == 2
    with pytest.raises(ValueError, match="refused 3"):
        group.submit(3)
    with pytest.raises(ConnectionError):
        group.submit(13)
    assert group.submit(4) == 4  # the group is not stuck after an error


def test_batches_are_bounded():
    sizes: list[int] = []
    gate = threading.Event()

    def write(items: list[int]) -> list[int]:
        sizes.append(len(items))
        gate.wait(10)
        return items

    group: GroupCommit[int, int] = GroupCommit(write, max_batch=3)
    done: list = []
    worker = threading.Thread(target=lambda: done.extend(run_threads(8, group.submit)))
    worker.start()
    wait_until(lambda: sizes and group.waiting == 8 - sizes[0], "every caller queued")
    gate.set()
    worker.join(10)
    assert sorted(done) == list(range(8))
    assert max(sizes) <= 3 and sum(sizes) == 8


def test_threads_upserting_at_once_each_read_their_own_write(registry):
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    shared = [f"SHARED{i}" for i in range(10)]

    def protocol_thread(k: int) -> tuple[list[str], bool]:
        inserted = []
        own_reads_ok = True
        for n in range(15):
            now = t0 + timedelta(seconds=k * 100 + n)
            own = f"T{k}-{n}"
            result = registry.upsert(registry.cwmp_update(own, manufacturer="M", now=now), now)
            # Acknowledged means stored: this thread reads its own write at once.
            own_reads_ok &= registry.get(own)["last_seen"] == now and result.inserted
            for serial in shared[n % 5 :: 5]:
                if registry.upsert(registry.cwmp_update(serial, now=now), now).inserted:
                    inserted.append(serial)
        return inserted, own_reads_ok

    results = run_threads(8, protocol_thread)
    assert all(ok for _, ok in results), results
    # Each new device inserted exactly once, whichever thread got there first.
    assert sorted(s for inserted, _ in results for s in inserted) == sorted(shared)
    assert registry.count() == 8 * 15 + len(shared)


def test_many_threads_submitting_in_turn_each_get_their_own_results():
    """Every caller is woken exactly once (by the write of its batch or to
    lead the next one), whatever the interleaving."""
    sizes: list[int] = []

    def write(items: list[tuple[int, int]]) -> list[tuple[int, int]]:
        sizes.append(len(items))
        return [(k, n * 2) for k, n in items]

    group: GroupCommit[tuple[int, int], tuple[int, int]] = GroupCommit(write, max_batch=5)

    def caller(k: int) -> bool:
        return all(group.submit((k, n)) == (k, n * 2) for n in range(200))

    assert run_threads(24, caller) == [True] * 24
    assert sum(sizes) == 24 * 200 and max(sizes) <= 5
    assert group.waiting == 0


async def test_coroutines_share_a_write_on_the_loop_helper_too():
    """The ACS's Informs go through the same group commit (LoopGroupCommit):
    those of one loop iteration go in one write, each gets its own result, an
    item that fails fails alone, a failed write fails its whole batch."""
    import asyncio

    from oktoscripts.devices.batching import LoopGroupCommit

    writes: list[list] = []

    def write(items: list) -> list:
        writes.append(list(items))
        if "broken" in items:
            raise RuntimeError("database down")
        return [ValueError(f"bad {i}") if i == "bad" else i.upper() for i in items]

    async def off_loop(func, items):
        return await asyncio.to_thread(func, items)

    group = LoopGroupCommit(write, off_loop, max_batch=3)
    results = await asyncio.gather(
        *(group.submit(item) for item in ("a", "bad", "c", "d")), return_exceptions=True
    )
    assert results[0] == "A" and results[2] == "C" and results[3] == "D"
    assert isinstance(results[1], ValueError) and str(results[1]) == "bad bad"
    assert writes == [["a", "bad", "c"], ["d"]]  # bounded batches, all in one go
    writes.clear()
    failed = await asyncio.gather(group.submit("broken"), group.submit("e"), return_exceptions=True)
    assert [str(r) for r in failed] == ["database down", "database down"]
    assert await group.submit("f") == "F"  # the helper goes on after a failed write
