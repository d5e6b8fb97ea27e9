"""Waiting after failed AWS calls: one backoff (doubling from 1 s to a ceiling, with jitter) and the
timings of a job's final log read, the same for the worker and the triggerer."""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass

LOGS_CEILING = 30.0  # s: the longest wait between failed CloudWatch Logs reads
POLL_CEILING = 60.0  # s: the longest wait between failed DescribeJobs polls of the triggerer's poller
# After a failed final read, retry this often until the wait for it is over.
FINAL_READ_RETRY = 0.2
# s past the moment a job's final read may start during which its failing reads are retried. The worker's
# follower reads alone: room for the pages of a chatty job's last lines on a busy host. The triggerer's shared
# reader gives up a failing read sooner (a job's end must not wait on CloudWatch Logs) and waits longer only
# while it is seen to progress (the trigger's FINAL_READ_LONGEST_WAIT, and the reader's answer patience).
FINAL_READ_PATIENCE = 2.0
TRIGGER_FINAL_READ_PATIENCE = 0.5
# A call unanswered this long is slow: a job's end stops waiting for its final read. A Logs endpoint that
# answers every call slowly (a loaded host, a distant region) is slow only past ANSWER_SLOWDOWN times its
# slowest recent answer, up to ANSWER_PATIENCE_CEILING.
ANSWER_PATIENCE = 2.0
ANSWER_SLOWDOWN = 3.0
ANSWER_PATIENCE_CEILING = 15.0
RECENT_ANSWERS = 20


@dataclass
class Backoff:
    """The current backoff: ``failed`` doubles it (from 1 s, up to ``ceiling``) and gives the jittered
    wait, half to one and a half times the backoff, so that many waiters do not retry at one moment;
    ``succeeded`` resets it."""

    ceiling: float
    seconds: float = 0.0

    def failed(self) -> float:
        self.seconds = min(self.ceiling, max(1.0, self.seconds * 2))
        return self.seconds * random.uniform(0.5, 1.5)

    def succeeded(self) -> None:
        self.seconds = 0.0


class AnswerTimes:
    """How long the recent CloudWatch Logs calls took to be answered, and so how long a call sent and not yet
    answered is still worth waiting for: ``ANSWER_PATIENCE``, or longer when the recent answers all took long."""

    def __init__(self) -> None:
        self._recent: deque[float] = deque(maxlen=RECENT_ANSWERS)

    def answered(self, seconds: float) -> None:
        self._recent.append(seconds)

    def patience(self) -> float:
        usual = max(self._recent, default=0.0) * ANSWER_SLOWDOWN
        return min(ANSWER_PATIENCE_CEILING, max(ANSWER_PATIENCE, usual))
