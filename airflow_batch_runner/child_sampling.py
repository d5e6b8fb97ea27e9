"""Pure: which running children of an array job have their lines followed, and when to look again.

An array parent has no log stream of its own, and thousands of children may run at once: far more
streams than CloudWatch Logs' quotas let anyone follow. So the task follows a sample of at most
``limit`` running children at a time (``[batch_runner] array_log_children``):

- A *sampling* lists the array's RUNNING children (ListJobs by ``arrayJobId``, pages of 100, stopping
  once they name enough children), then describes, in one DescribeJobs call, the new ones it will
  follow (ListJobs' summaries carry no log stream; a child's description does) and the followed ones
  the listing did not show (has each ended, and when?). Two Batch calls, whatever the array's size.
- The first sampling comes at the first poll of the parent whose ``statusSummary`` counts a RUNNING
  child; the next ones every ``max(interval, SAMPLE_PERIOD)``. A few *quick looks* come sooner (at most
  one per interval, ``QUICK_LOOKS`` of them, earned back one per period) while the parent counts
  more running children than are followed and there is room: the children of a small array start
  at different moments, and the second one should not wait half a minute.
- A followed child that has ended gives its place up: its remaining lines are read once more and
  another running child takes its place at that sampling. When the parent counts no running child
  at all, every followed child has ended: no call is needed to know it.

The parent's status never waits on any of this: the samplings run beside the status loop.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from airflow_batch_runner.array_outcome import child_index
from airflow_batch_runner.outcome import job_state

DEFAULT_LIMIT = 10  # children followed at once, by default
MAX_LIMIT = 100  # FilterLogEvents reads at most 100 streams a call
SAMPLE_PERIOD = 30.0  # s between samplings (or the poll interval, when longer)
QUICK_LOOKS = 2  # samplings allowed sooner than the period while there is room
LIST_PAGE = 100  # ListJobs page size of a sampling
DESCRIBE_IDS = 100  # job ids one DescribeJobs call takes
SPARES = 2  # children described per free place: one that names no log stream yet leaves its place to another
# The worker path reads each followed child's stream with GetLogEvents: together, about this many calls a
# second for one array task at most (GetLogEvents allows 25 a second per account and Region).
WORKER_READS_PER_SECOND = 1.0


def check_limit(value: Any, name: str = "[batch_runner] array_log_children") -> int:
    """How many children to follow at once: 0 (none) to ``MAX_LIMIT``."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_LIMIT:
        raise ValueError(f"{name} must be a whole number from 0 (no child's lines) to {MAX_LIMIT}; got {value!r}")
    return value


def running_children(description: Mapping[str, Any]) -> int:
    """How many children the parent's ``statusSummary`` counts RUNNING (0 for a job that is not an array)."""
    summary = (description.get("arrayProperties") or {}).get("statusSummary") or {}
    return int(summary.get("RUNNING", 0))


def worker_read_interval(interval: float, limit: int, size: int) -> float:
    """How often the worker path reads each followed child's stream: every interval, slower when many
    are followed, so that one array task makes about ``WORKER_READS_PER_SECOND`` GetLogEvents calls."""
    return max(interval, min(limit, size) / WORKER_READS_PER_SECOND)


@dataclass(frozen=True)
class Followed:
    """A child whose main container's lines are followed."""

    index: int
    job_id: str
    stream: str
    started_at: int | None  # ms


@dataclass(frozen=True)
class Ended:
    """A followed child that is over: its stream is read once more from ``stopped_at`` (ms) on."""

    child: Followed
    stopped_at: int | None


@dataclass(frozen=True)
class Step:
    """What a poll of the parent calls for: a sampling (``sample``), or the final reads of ``ended``."""

    sample: bool = False
    ended: tuple[Ended, ...] = ()


@dataclass(frozen=True)
class Sampled:
    """A sampling's outcome: the children followed anew, those that ended, and the task log's news."""

    new: list[Followed]
    ended: list[Ended]
    news: str | None


@dataclass
class ChildSampler:
    """The children followed now and the schedule of the samplings."""

    limit: int
    interval: float
    followed: dict[int, Followed] = field(default_factory=dict)
    last: float | None = None  # wall time of the last sampling
    quick: float = QUICK_LOOKS  # quick looks left at ``last``
    samplings: int = 0

    @property
    def period(self) -> float:
        return max(self.interval, SAMPLE_PERIOD)

    def _quick_left(self, now: float) -> float:
        if self.last is None:
            return float(QUICK_LOOKS)
        return min(float(QUICK_LOOKS), self.quick + (now - self.last) / self.period)

    def due(self, running: int, now: float) -> bool:
        """At a poll of the parent whose summary counts ``running`` RUNNING children: sample now?"""
        if self.limit <= 0 or running <= 0:
            return False
        if self.last is None:
            return True
        since = now - self.last
        if since >= self.period:
            return True
        room = len(self.followed) < min(self.limit, running)
        return room and since >= self.interval and self._quick_left(now) >= 1

    def begin(self, now: float) -> None:
        """A sampling starts now (a quick look when sooner than the period)."""
        quick = self._quick_left(now)
        if self.last is not None and now - self.last < self.period:
            quick -= 1
        self.quick, self.last = quick, now
        self.samplings += 1

    def enough(self, listed: Sequence[Mapping[str, Any]]) -> bool:
        """The RUNNING children listed so far name a new child for every place that may be free."""
        indexes = {child_index(s) for s in listed}
        still = sum(1 for index in self.followed if index in indexes)
        return len(indexes - set(self.followed)) >= self.limit - still

    def to_describe(self, listed: Sequence[Mapping[str, Any]]) -> list[str]:
        """The job ids of one DescribeJobs (at most 100): the followed children the listing did not show, and
        new running ones, twice as many as there may be places (a child may not name its stream yet)."""
        shown = {child_index(s) for s in listed}
        unshown = [c.job_id for i, c in sorted(self.followed.items()) if i not in shown]
        places = self.limit - (len(self.followed) - len(unshown))
        spares = min(SPARES * max(0, places), DESCRIBE_IDS - len(unshown)) if places > 0 else 0
        new = [str(s["jobId"]) for s in listed if child_index(s) not in self.followed][:spares]
        return unshown + new

    def adopt(
        self, asked: Iterable[str], descriptions: Mapping[str, Mapping[str, Any]]
    ) -> tuple[list[Followed], list[Ended]]:
        """After the DescribeJobs of ``to_describe``: the children now followed anew, and the followed ones
        that ended (no longer RUNNING, or gone)."""
        asked = list(asked)
        ended: list[Ended] = []
        for job_id in asked:
            index = _index_of(job_id)
            child = self.followed.get(index)
            if child is None or child.job_id != job_id:
                continue
            description = descriptions.get(job_id)
            if description is None or description.get("status") != "RUNNING":
                del self.followed[index]
                ended.append(Ended(child, (description or {}).get("stoppedAt")))
        new: list[Followed] = []
        for job_id in asked:
            description = descriptions.get(job_id)
            if description is None or len(self.followed) >= self.limit:
                continue
            index = _index_of(job_id)
            state = job_state(description)
            if index in self.followed or state.status != "RUNNING" or not state.log_stream:
                continue
            child = Followed(index, job_id, state.log_stream, state.started_at)
            self.followed[index] = child
            new.append(child)
        return new, ended

    def next_step(self, running: int, now: float) -> Step | None:
        """At a poll of the parent whose summary counts ``running`` RUNNING children: what to do now (None:
        nothing). The sampling, when due, is begun here; its answers go to ``take``."""
        if running == 0 and self.followed:  # every followed child has ended: no call is needed to know it
            return Step(ended=tuple(self.end_all()))
        if self.due(running, now):
            self.begin(now)
            return Step(sample=True)
        return None

    def take(self, asked: Iterable[str], descriptions: Mapping[str, Mapping[str, Any]], running: int) -> Sampled:
        """A sampling's answers (``adopt``), with what the task log says of them when they changed anything."""
        new, ended = self.adopt(asked, descriptions)
        return Sampled(new, ended, self.describe(running) if new or ended else None)

    def end_all(self) -> list[Ended]:
        """The parent counts no running child: every followed one has ended (when, unknown)."""
        ended = [Ended(child, None) for _, child in sorted(self.followed.items())]
        self.followed.clear()
        return ended

    def describe(self, running: int) -> str:
        """What the task log says after a sampling changed the followed children."""
        indexes = ", ".join(str(i) for i in sorted(self.followed)) or "none"
        return (f"Following the lines of children {indexes} ({len(self.followed)} of {running} running; at most "
                f"{self.limit} at once, [batch_runner] array_log_children)")


def _index_of(job_id: str) -> int:
    return int(job_id.rsplit(":", 1)[-1])
