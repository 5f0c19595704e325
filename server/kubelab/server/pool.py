"""A bounded pool of threads for one kind of long request (notebook validation).

Such requests run on threads of their own, never on the event loop's default executor
that every other handler's blocking call uses, so however many of them run, `status`,
`compile` and run polling still answer at once. At most `workers` run at a time and
as many again wait for a free worker; beyond that the request is refused with a 429.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from kubelab.pipelines.errors import KubelabError

T = TypeVar("T")


class BusyError(KubelabError):
    """Too many requests of one kind are running or waiting; try again later."""

    status_code = 429


class WorkerPool:
    def __init__(self, what: str, workers: int) -> None:
        if workers < 1:
            raise ValueError(f"{what}: workers must be at least 1, got {workers}")
        self.what = what
        self.workers = workers
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix=f"kubelab-{what}")
        self._in_flight = 0  # only touched on the event loop's thread

    async def run(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if self._in_flight >= 2 * self.workers:
            raise BusyError(
                f"{self._in_flight} {self.what} requests are running or waiting "
                f"(at most {self.workers} run at once); try again when one has finished",
                running=self.workers,
            )
        self._in_flight += 1
        try:
            loop = asyncio.get_running_loop()
            call = functools.partial(function, *args, **kwargs)
            return await loop.run_in_executor(self._executor, call)
        finally:
            self._in_flight -= 1

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
