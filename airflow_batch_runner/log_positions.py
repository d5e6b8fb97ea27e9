"""Pure: how far each job's log stream has been read, which events are new, and what to read next.

The triggerer reads many streams with one FilterLogEvents call, which takes one ``startTime`` for all
of them. Each stream keeps its own position instead of the group's oldest:

- ``floor`` (ms): every event with an earlier timestamp has been delivered. After a read that began
  at wall time T, it moves to T minus the ingestion allowance (CloudWatch Logs makes an event
  readable a little after its timestamp), so a quiet stream's floor still advances and a stream is
  never read from the epoch: a new one starts at its job's start.
- ``seen``: ids of the events at or above the floor already delivered, so the lookback delivers no
  line twice.

A call reads every stream in it from the lowest floor among them; a stream that is further along
reads again what it already had. ``choose`` therefore puts in one call only streams whose floors are
close, except quiet streams, which cost nothing to read from further back. Busy streams are due again
after one interval (at least the allowance), quiet ones after ``QUIET_INTERVALS``; the most overdue
goes first, so none starves.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

QUIET_INTERVALS = 2.0  # a stream whose last read found nothing is read again after this many intervals
MAX_STREAMS_PER_CALL = 100  # FilterLogEvents' logStreamNames limit


@dataclass(eq=False)
class Cursor:
    """One watcher's position in one log stream."""

    stream: str
    floor: int  # ms
    interval: float  # s, the watcher's poll interval
    due: float = 0.0  # wall time (s) of the next read
    busy: bool = False  # the last read found new lines
    seen: dict[str, int] = field(default_factory=dict)  # event id -> timestamp, for timestamps >= floor
    drain_after: float | None = None  # wall time (s) from which a read counts as the final one
    read_events: int = 0
    delivered: int = 0


def start_floor(started_at_ms: int | None, now: float, allowance: float) -> int:
    """Where a new stream's reading starts: its job's start (or now), less the ingestion allowance."""
    start = started_at_ms if started_at_ms is not None else int(now * 1000)
    return max(0, start - int(allowance * 1000))


def accept(cursor: Cursor, events: Iterable[Mapping[str, Any]]) -> list[str]:
    """The messages of ``events`` (this stream's, in the order read) not delivered before."""
    new: list[str] = []
    for event in events:
        cursor.read_events += 1
        stamp, event_id = int(event["timestamp"]), str(event.get("eventId", ""))
        if stamp < cursor.floor or event_id in cursor.seen:
            continue
        cursor.seen[event_id] = stamp
        new.append(str(event["message"]))
    cursor.delivered += len(new)
    return new


def advance(cursor: Cursor, read_started: float, allowance: float, found: bool, now: float) -> None:
    """After a complete read that began at ``read_started``: move the floor, forget ids below it, and
    schedule the next read.

    A busy stream reads again the last ``allowance`` seconds of its events each time, so it is read at
    most once per ``allowance``: at least as many new events as old ones, whatever the interval.
    """
    floor = max(cursor.floor, int((read_started - allowance) * 1000))
    if floor != cursor.floor:
        cursor.floor = floor
        cursor.seen = {event_id: stamp for event_id, stamp in cursor.seen.items() if stamp >= floor}
    cursor.busy = found
    cursor.due = now + (max(cursor.interval, allowance) if found else cursor.interval * QUIET_INTERVALS)


def final_read_ready(cursor: Cursor, now: float) -> bool:
    return cursor.drain_after is not None and cursor.drain_after <= now


def choose(
    cursors: Sequence[Cursor], now: float, tolerance_ms: int, limit: int = MAX_STREAMS_PER_CALL
) -> tuple[list[Cursor], int] | None:
    """The streams of the next call and its ``startTime``, or None when nothing is due.

    Final reads come first, all that are ready in one call. Otherwise the most overdue stream sets the
    start time; others due join when their floor is at or after it and, if they are busy, within
    ``tolerance_ms`` of it (a busy stream read from further back would read its lines again); quiet
    streams due within their next interval fill the call up.
    """
    due = [c for c in cursors if c.due <= now or final_read_ready(c, now)]
    if not due:
        return None
    finals = sorted((c for c in due if final_read_ready(c, now)), key=lambda c: c.floor)
    if finals:
        # A job's last read goes first, with every other job's that is ready: each is read once more
        # whatever its position (reading some lines again once is cheaper than a job's end waiting).
        batch = finals[:limit]
        return batch, min(c.floor for c in batch)
    due.sort(key=lambda c: (c.due, c.floor))
    anchor = due[0]
    start = anchor.floor
    batch = [anchor]
    streams = {anchor.stream}
    # Quiet streams due within their next interval join early: reading them costs nothing, and each
    # call then carries up to 100 streams instead of the few that happen to be due this instant.
    early = sorted((c for c in cursors if c.due > now and not c.busy and c.due <= now + c.interval
                    and c.drain_after is None), key=lambda c: c.due)
    for cursor in due[1:] + early:
        if len(streams) >= limit and cursor.stream not in streams:
            continue
        if cursor.floor < start or (cursor.busy and cursor.floor - start > tolerance_ms):
            continue
        batch.append(cursor)
        streams.add(cursor.stream)
    return batch, start


def next_due(cursors: Iterable[Cursor]) -> float | None:
    """The earliest wall time at which something is to be read."""
    times = [c.due for c in cursors] + [c.drain_after for c in cursors if c.drain_after is not None]
    return min(times, default=None)
