"""Waiting after failed AWS calls: one backoff (doubling from 1 s to a ceiling, with jitter) and the
timings of a job's final log read, the same for the worker and the triggerer."""

from __future__ import annotations

import random
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
