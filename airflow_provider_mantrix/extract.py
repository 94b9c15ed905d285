"""Reading one Stripe list endpoint over a ``created`` window, concurrently and exactly once.

Stripe lists newest first and filters on ``created`` only. A window ``[start, end)`` is read by
time: each request asks for the newest 100 objects of a time slice ``[lo, hi)``. When the page
says ``has_more`` and its oldest object was created at second ``c``, every object newer than
``c`` is in hand, and what remains is the fresh slice ``[lo, c + 1)`` - which is split in parts
when workers are idle. Slices never share a cursor and their union is exactly the window. Only
where more than a page of objects share one second, or an endpoint has no ``created`` filter,
is the slice walked with ``starting_after`` cursors.

Pages go to the caller through a bounded queue, so memory stays at a few pages per worker
whatever the size of the window.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from airflow_provider_mantrix.hooks.stripe import StripeHook, StripeRequestError

PAGE_SIZE = 100


class PaginationError(RuntimeError):
    """Stripe served pages that do not advance: repeated cursors, repeated ids or out-of-window objects."""


@dataclass(frozen=True)
class Page:
    """Objects in wire form (dicts as Stripe sent them) and Stripe's clock when they were read."""

    objects: list[dict[str, Any]]
    server_time: float
    parent_id: str | None = None


@dataclass(frozen=True)
class TimeSlice:
    lo: int
    hi: int


@dataclass
class CursorWalk:
    """A list walked with ``starting_after``: one busy second, or an endpoint without ``created``."""

    path: str
    params: dict[str, Any]
    parent_id: str | None = None
    cursors: set[str] = field(default_factory=set)
    seen: set[str] = field(default_factory=set)
    starting_after: str | None = None


@dataclass
class ReadStats:
    """Counters shared by a reader's worker threads, for the task's progress lines and summary."""

    requests: int = 0
    pages: int = 0
    objects: int = 0
    retries: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count_request(self) -> None:
        with self._lock:
            self.requests += 1

    def count_page(self, objects: int) -> None:
        with self._lock:
            self.pages += 1
            self.objects += objects

    def count_retry(self, _reason: str) -> None:
        with self._lock:
            self.retries += 1


_DONE = object()


class ListReader:
    """Reads one list path concurrently; iterate :meth:`pages` once.

    :param hook: the StripeHook whose request budget all workers share.
    :param path: list path, e.g. ``/v1/invoices``.
    :param params: filters every request repeats (e.g. ``status=all``, ``types``).
    :param window: ``(start, end)`` in Unix seconds, end exclusive, for endpoints with a
        ``created`` filter; ``None`` reads the whole list with cursors.
    :param walks: instead of ``path``, read these cursor walks (e.g. one per parent object).
    :param concurrency: requests in flight at most.
    """

    def __init__(
        self,
        hook: StripeHook,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        window: tuple[int, int] | None = None,
        walks: Iterable[CursorWalk] = (),
        concurrency: int = 8,
        stats: ReadStats | None = None,
    ) -> None:
        self.hook = hook
        self.path = path
        self.params = dict(params or {})
        self.window = window
        self.concurrency = max(1, concurrency)
        self.stats = stats or ReadStats()
        self._tasks: queue.Queue[Any] = queue.Queue()
        self._out: queue.Queue[Any] = queue.Queue(maxsize=2 * self.concurrency)
        self._stop = threading.Event()
        self._walks = list(walks)

    # -- public --------------------------------------------------------------------------------

    def pages(self) -> Iterator[Page]:
        """Every object once, in pages, in no particular order across slices."""
        if self._walks:
            for walk in self._walks:
                self._tasks.put(walk)
        elif self.window is None:
            self._tasks.put(CursorWalk(self.path, self.params))
        elif self.window[0] < self.window[1]:
            self._tasks.put(TimeSlice(*self.window))
        return self._run()

    # -- the worker pool -----------------------------------------------------------------------

    def _run(self) -> Iterator[Page]:
        workers = [threading.Thread(target=self._work, daemon=True) for _ in range(self.concurrency)]
        for worker in workers:
            worker.start()
        finisher = threading.Thread(target=self._finish, args=(workers,), daemon=True)
        finisher.start()
        try:
            while True:
                item = self._out.get()
                if item is _DONE:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self._stop.set()
            while finisher.is_alive():  # let blocked workers drain out
                try:
                    self._out.get(timeout=0.05)
                except queue.Empty:
                    pass

    def _finish(self, workers: list[threading.Thread]) -> None:
        self._tasks.join()
        for _ in workers:
            self._tasks.put(None)
        for worker in workers:
            worker.join()
        self._emit(_DONE)

    def _work(self) -> None:
        while True:
            task = self._tasks.get()
            try:
                if task is None:
                    return
                if self._stop.is_set():
                    continue
                if isinstance(task, TimeSlice):
                    self._read_slice(task)
                else:
                    self._read_walk(task)
            except BaseException as error:  # noqa: BLE001 - handed to the caller's thread
                self._stop.set()
                self._emit(error)
            finally:
                self._tasks.task_done()

    def _emit(self, item: Any) -> None:
        while True:
            try:
                self._out.put(item, timeout=0.1)
                return
            except queue.Full:
                if self._stop.is_set() and item is not _DONE and not isinstance(item, BaseException):
                    return

    def _fetch(self, path: str, params: Mapping[str, Any]) -> tuple[list[dict[str, Any]], bool, float]:
        self.stats.count_request()
        response = self.hook.get(path, params, on_retry=self.stats.count_retry)
        body = response.data
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(body, dict) or body.get("object") != "list" or not isinstance(data, list):
            raise PaginationError(f"GET {path} did not answer with a list object ({_describe(params)}).")
        if not all(isinstance(obj, dict) and isinstance(obj.get("id"), str) for obj in data):
            raise PaginationError(f"GET {path} answered with list items that are not objects with an id.")
        return data, bool(body.get("has_more")), response.server_time

    def _page(self, objects: list[dict[str, Any]], server_time: float, parent_id: str | None = None) -> None:
        self.stats.count_page(len(objects))
        if objects:
            self._emit(Page(objects, server_time, parent_id))

    # -- time slices ---------------------------------------------------------------------------

    def _read_slice(self, task: TimeSlice) -> None:
        params = {**self.params, "limit": PAGE_SIZE, "created": {"gte": task.lo, "lt": task.hi}}
        objects, has_more, server_time = self._fetch(self.path, params)
        for obj in objects:
            created = obj.get("created")
            if not isinstance(created, int) or not task.lo <= created < task.hi:
                raise PaginationError(
                    f"GET {self.path} returned {obj.get('id')!r} created at {created!r}, outside the "
                    f"requested window [{task.lo}, {task.hi}); refusing to load a page that does not "
                    "match its own filter."
                )
        if not has_more:
            self._page(objects, server_time)
            return
        if not objects:
            raise PaginationError(f"GET {self.path} said has_more with an empty page ({_describe(params)}).")
        oldest = min(obj["created"] for obj in objects)
        # Every object newer than `oldest` is in this page; the rest lies in [lo, oldest + 1).
        self._page([obj for obj in objects if obj["created"] > oldest], server_time)
        if oldest + 1 == task.hi and all(obj["created"] == oldest for obj in objects):
            # More than a page of objects in one second: walk that second with cursors.
            self._tasks.put(
                CursorWalk(self.path, {**self.params, "created": {"gte": oldest, "lt": oldest + 1}})
            )
            if task.lo < oldest:
                self._tasks.put(TimeSlice(task.lo, oldest))
            return
        for part in self._split(task.lo, oldest + 1):
            self._tasks.put(part)

    def _split(self, lo: int, hi: int) -> list[TimeSlice]:
        """Split what remains when workers would otherwise sit idle; never below one second."""
        idle = self.concurrency - self._tasks.unfinished_tasks + 1
        parts = max(1, min(idle, hi - lo))
        step = (hi - lo) / parts
        bounds = [lo + round(step * i) for i in range(parts)] + [hi]
        return [TimeSlice(a, b) for a, b in zip(bounds, bounds[1:], strict=False) if a < b]

    # -- cursor walks --------------------------------------------------------------------------

    def _read_walk(self, walk: CursorWalk) -> None:
        params = {**walk.params, "limit": PAGE_SIZE}
        if walk.starting_after:
            params["starting_after"] = walk.starting_after
        objects, has_more, server_time = self._fetch(walk.path, params)
        ids = [obj.get("id") for obj in objects]
        repeated = walk.seen.intersection(ids) or (len(set(ids)) != len(ids))
        if repeated:
            raise PaginationError(
                f"GET {walk.path} served objects it had already served ({sorted(walk.seen.intersection(ids))[:3]} "
                f"after {len(walk.cursors)} pages); Stripe's pagination is not advancing, so the load stops "
                "rather than loop or skip data."
            )
        walk.seen.update(ids)
        self._page(objects, server_time, walk.parent_id)
        if not has_more:
            return
        if not objects:
            raise PaginationError(f"GET {walk.path} said has_more with an empty page ({_describe(params)}).")
        cursor = ids[-1]
        if cursor in walk.cursors:
            raise PaginationError(f"GET {walk.path} would repeat the cursor {cursor!r}; stopping.")
        walk.cursors.add(cursor)
        walk.starting_after = cursor
        self._tasks.put(walk)


def batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _describe(params: Mapping[str, Any]) -> str:
    created = params.get("created")
    where = f"created in [{created['gte']}, {created['lt']})" if isinstance(created, dict) else ""
    after = f"starting_after={params['starting_after']}" if params.get("starting_after") else ""
    return " ".join(part for part in (where, after) if part) or "first page"


def read_by_id(
    hook: StripeHook, path_template: str, ids: Iterable[str], *, concurrency: int, stats: ReadStats
) -> Iterator[tuple[str, dict[str, Any] | None, float]]:
    """Retrieve objects by id concurrently: ``(id, object, server_time)``, object None where 404."""

    def fetch(object_id: str) -> tuple[str, dict[str, Any] | None, float]:
        path = path_template.format(id=object_id)
        stats.count_request()
        try:
            response = hook.get(path, on_retry=stats.count_retry)
        except StripeRequestError as error:
            if getattr(error.__cause__, "http_status", None) == 404:
                return object_id, None, time.time()
            raise
        return object_id, response.data, response.server_time

    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        for chunk in batched(ids, 20 * max(1, concurrency)):
            yield from pool.map(fetch, chunk)
