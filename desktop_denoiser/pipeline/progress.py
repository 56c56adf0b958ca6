"""Durations as a photographer reads them, and the time left of a batch (pauses and skipped photos left out):
Qt-free, for the GUI's batch dialog and the command line alike."""

from __future__ import annotations

import time
from typing import Callable


def format_seconds(s: float) -> str:
    s = max(0.0, s)
    if s < 1:
        return "< 1 s"
    if s < 60:
        return f"{s:.0f} s"
    m, sec = divmod(int(round(s)), 60)
    return f"{m} min {sec:02d} s"


class TimeLeft:
    """Time left of a batch from its rate so far: seconds running (pauses left out) per unit of work done.

    Work is counted in photos (fractions inside the current one); photos skipped because their result
    exists take no time, so they are left out of both the work done and the work left. ``clock`` is
    injectable (tests)."""

    MIN_SECONDS = 2.0  # before that, and before MIN_WORK photos are done, the rate is not worth a guess
    MIN_WORK = 0.05

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self._start = clock()
        self._paused_at: float | None = None
        self._paused_total = 0.0

    def set_paused(self, paused: bool) -> None:
        now = self.clock()
        if paused and self._paused_at is None:
            self._paused_at = now
        elif not paused and self._paused_at is not None:
            self._paused_total += now - self._paused_at
            self._paused_at = None

    def running_seconds(self) -> float:
        now = self._paused_at if self._paused_at is not None else self.clock()
        return max(0.0, now - self._start - self._paused_total)

    def seconds_left_in_batch(self, *, photos: int, to_skip: int, finished: float, skipped: int) -> float | None:
        """A batch of ``photos``, ``to_skip`` of which are skipped (their result exists), after ``finished``
        photos (a fraction inside the current one) of which ``skipped`` were skipped."""
        return self.seconds_left(finished - skipped, photos - finished - (to_skip - skipped))

    def seconds_left(self, work_done: float, work_left: float) -> float | None:
        """None while too little is done to tell."""
        running = self.running_seconds()
        if running < self.MIN_SECONDS or work_done < self.MIN_WORK:
            return None
        return running / work_done * max(0.0, work_left)
