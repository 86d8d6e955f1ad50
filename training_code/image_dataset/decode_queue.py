"""Image decodes on a :class:`~.images.DecodePool`: jobs are queued as the checks find images,
and each result is counted in its channel's stats and its problems reported."""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator, List, Tuple

from .channel_stats import ChannelStats
from .context import Context
from .images import DecodePool, DecodeSummary, Limits, check_blobs, check_files

DECODE_BATCH = 256  # images per decode job


class DecodeQueue:
    """Queues decode jobs for one validation and counts what they find."""

    def __init__(self, context: Context) -> None:
        self.context = context
        self.pool = DecodePool(1)  # replaced by :meth:`running`'s pool while it runs

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        """Decode on a pool of ``options.workers`` processes until the block ends."""
        with DecodePool(self.context.options.workers) as pool:
            self.pool = pool
            yield

    def limits(self) -> Limits:
        """What an image may be: its pixel budget and, without resizing, the training shape (with
        resizing, the resized image within the budget)."""
        options = self.context.options
        shape = options.image_shape
        if shape and not options.resize:
            return Limits(options.max_pixels, shape[2], shape[1])
        return Limits(options.max_pixels, resize=options.resize or 0)

    def submit(self, fn: Callable[[Any], DecodeSummary], job: object, stats: ChannelStats) -> None:
        """Queue ``fn(job)``; results of earlier jobs that are done are counted in ``stats``."""
        self._count(self.pool.submit(fn, job), stats)

    def submit_files(self, files: List[Tuple[str, str]], stats: ChannelStats) -> None:
        """Queue one job for image files given as (location, path): read in the workers when
        they are local, else read here."""
        store = self.context.store
        local = [(where, store.local_path(p)) for where, p in files]
        if all(path is not None for _, path in local):
            self.submit(check_files, (local, self.limits()), stats)
        else:
            data = list(zip([where for where, _ in files], store.read_many([p for _, p in files])))
            self.submit(check_blobs, (data, self.limits()), stats)

    def check_images(self, stats: ChannelStats, files: List[Tuple[str, str]]) -> None:
        """Decode image files, given as (location, path), and count them in ``stats``."""
        for first in range(0, len(files), DECODE_BATCH):
            self.submit_files(files[first : first + DECODE_BATCH], stats)
        self.drain(stats)

    def drain(self, stats: ChannelStats) -> None:
        """Wait for every queued job and count it in ``stats``."""
        self._count(self.pool.drain(), stats)

    def _count(self, summaries: Iterator[DecodeSummary], stats: ChannelStats) -> None:
        sink = self.context.sink
        for summary in summaries:
            stats.add(summary)
            for problem in summary.problems:
                sink.report(problem.code, problem.message, problem.location)
