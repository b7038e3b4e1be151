"""Micro-batching: requests that arrive together are computed together.

Each :class:`MicroBatcher` owns an asyncio queue. Its loop takes the first waiting item, then keeps taking
items until ``max_batch`` are in hand or ``max_wait`` seconds have passed since the first, and hands the whole
batch to one call of its function in the compute thread (one encoder forward for a dense system). While that
call runs, new requests queue up and form the next batch, so under load batches grow by themselves and an idle
service answers a lone query after at most ``max_wait``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from typing import Any, Callable, Sequence

__all__ = ["MicroBatcher"]

logger = logging.getLogger(__name__)


class MicroBatcher:
    """``await submit(item)`` -> ``fn([... item ...])[i]``, with concurrent submits batched into one ``fn`` call.

    ``fn`` must return one result per item, in order; an exception fails every item of that batch (and only
    that batch). ``executor`` runs ``fn`` off the event loop (one shared thread keeps forwards from competing
    for the same cores).
    """

    def __init__(self, name: str, fn: Callable[[list[Any]], Sequence[Any]], executor: concurrent.futures.Executor,
                 max_batch: int = 64, max_wait: float = 0.005):
        self.name = name
        self.fn = fn
        self.executor = executor
        self.max_batch = max_batch
        self.max_wait = max_wait
        self.batches = 0  # fn calls so far
        self.items = 0  # items computed so far
        self.largest = 0  # largest batch so far
        self._queue: asyncio.Queue | None = None
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        """Start the loop on the running event loop (the app's lifespan calls this)."""
        self._queue = asyncio.Queue()
        self._task = asyncio.get_running_loop().create_task(self._loop(), name=f"batcher:{self.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def submit(self, item: Any) -> Any:
        if self._queue is None:
            raise RuntimeError(f"batcher {self.name} is not started")
        fut = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((item, fut))
        return await fut

    async def submit_many(self, items: Sequence[Any]) -> list[Any]:
        """Several items at once (a batch request): queued together, so they share batches."""
        return list(await asyncio.gather(*(self.submit(i) for i in items)))

    def stats(self) -> dict:
        return {"batches": self.batches, "items": self.items, "largest_batch": self.largest,
                "waiting": self._queue.qsize() if self._queue is not None else 0}

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        queue = self._queue
        assert queue is not None
        while True:
            batch = [await queue.get()]
            deadline = loop.time() + self.max_wait
            while len(batch) < self.max_batch:
                try:
                    batch.append(queue.get_nowait())
                    continue
                except asyncio.QueueEmpty:
                    pass
                left = deadline - loop.time()
                if left <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(queue.get(), left))
                except asyncio.TimeoutError:
                    break
            live = [(item, fut) for item, fut in batch if not fut.done()]  # a client that gave up is skipped
            if not live:
                continue
            try:
                results = await loop.run_in_executor(self.executor, self.fn, [item for item, _ in live])
                if len(results) != len(live):
                    raise RuntimeError(f"{self.name}: {len(results)} results for {len(live)} items")
            except asyncio.CancelledError:
                for _, fut in live:
                    fut.cancel()
                raise
            except Exception as e:  # fail this batch's requests, keep serving
                logger.exception("batch of %d on %s failed", len(live), self.name)
                for _, fut in live:
                    if not fut.done():
                        fut.set_exception(e)
                continue
            self.batches += 1
            self.items += len(live)
            self.largest = max(self.largest, len(live))
            for (_, fut), result in zip(live, results):
                if not fut.done():
                    fut.set_result(result)
