"""Pure: how far each job's log stream has been read, which events are new, and what to read next.

The triggerer reads many streams with one FilterLogEvents call, which takes one ``startTime`` for all
of them. Each stream keeps its own position instead of the group's oldest:

- ``floor`` (ms): every event with an earlier timestamp has been delivered. After a read that began
  at wall time T, it moves to T minus the lookback (CloudWatch Logs makes an event readable a little
  after its timestamp), but never past the newest timestamp the stream has shown: a stream's events
  become readable in the order they were sent, so one not readable yet is no older than that. A
  stream that has shown no event yet stays at its job's start (reading it from there costs nothing),
  and no stream is read from the epoch.
- The lookback is the ingestion allowance, widened to the largest lag between an event's timestamp
  and its ``ingestionTime`` seen so far plus a margin (bounded by ``MAX_LOOKBACK``): lines that
  become readable later than the allowance are still read.
- ``seen``: ids of the events at or above the floor already delivered, so the lookback delivers no
  line twice.

A call reads every stream in it from the lowest floor among them; a stream that is further along
reads again what it already had. ``choose`` therefore puts in one call only streams whose floors are
close, except quiet streams, which cost nothing to read from further back. Busy streams are due again
after one interval (at least the allowance), quiet ones after ``QUIET_INTERVALS``; the most overdue
goes first, so none starves; streams due soon fill a call up (quiet ones within their interval, busy
ones within half the call's window, so that the busy streams of consecutive calls merge into one).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

QUIET_INTERVALS = 2.0  # a stream whose last read found nothing is read again after this many intervals
MAX_STREAMS_PER_CALL = 100  # FilterLogEvents' logStreamNames limit
LAG_MARGIN = 1.0  # s added to the largest ingestion lag seen
MAX_LOOKBACK = 60.0  # s: the longest lookback, and so the longest wait for a job's last lines
# A quiet stream joins a call that starts further back than the tolerance when it would read about this
# many of its events again, at most: a slow job's stream (a line every 15 s) then shares the calls of
# others whatever the moment of its last line.
QUIET_REREADS = 2.0


@dataclass(eq=False)
class Cursor:
    """One watcher's position in one log stream."""

    stream: str
    floor: int  # ms
    interval: float  # s, the watcher's poll interval
    due: float = 0.0  # wall time (s) of the next read
    busy: bool = False  # the last read found new lines
    seen: dict[str, int] = field(default_factory=dict)  # event id -> timestamp, for timestamps >= floor
    newest: int | None = None  # ms, the newest timestamp read from the stream
    drain_after: float | None = None  # wall time (s) from which a read counts as the final one
    last_read: float | None = None  # wall time (s) the last complete read began
    read_events: int = 0
    delivered: int = 0
    oldest: int | None = None  # ms, the oldest timestamp read from the stream


def start_floor(started_at_ms: int | None, now: float, allowance: float) -> int:
    """Where a new stream's reading starts: its job's start (or now), less the ingestion allowance."""
    start = started_at_ms if started_at_ms is not None else int(now * 1000)
    return max(0, start - int(allowance * 1000))


def ingestion_lag(events: Iterable[Mapping[str, Any]]) -> float:
    """The largest delay (s) between an event's timestamp and its ``ingestionTime`` (0 without events)."""
    return max((max(0, int(e["ingestionTime"]) - int(e["timestamp"])) / 1000
                for e in events if "ingestionTime" in e), default=0.0)


def lookback(allowance: float, lag: float) -> float:
    """How far back (s) each read looks and how long after a job's end its final read waits: the
    allowance, or the largest lag seen plus a margin when that is more, at most ``MAX_LOOKBACK``."""
    return min(MAX_LOOKBACK, max(allowance, lag + LAG_MARGIN if lag > 0 else 0.0))


def accept(cursor: Cursor, events: Iterable[Mapping[str, Any]]) -> list[str]:
    """The messages of ``events`` (this stream's, in the order read) not delivered before."""
    new: list[str] = []
    for event in events:
        cursor.read_events += 1
        stamp, event_id = int(event["timestamp"]), str(event.get("eventId", ""))
        cursor.newest = stamp if cursor.newest is None else max(cursor.newest, stamp)
        cursor.oldest = stamp if cursor.oldest is None else min(cursor.oldest, stamp)
        if stamp < cursor.floor or event_id in cursor.seen:
            continue
        cursor.seen[event_id] = stamp
        new.append(str(event["message"]))
    cursor.delivered += len(new)
    return new


def advance(cursor: Cursor, read_started: float, lookback: float, found: bool, now: float) -> None:
    """After a complete read that began at ``read_started``: move the floor, forget ids below it, and
    schedule the next read.

    A busy stream reads again the last ``lookback`` seconds of its events each time, so it is read at
    most once per ``lookback``: at least as many new events as old ones, whatever the interval.
    """
    if cursor.newest is None:  # nothing readable yet: its first lines may be late
        floor = cursor.floor
    else:  # safe if the lag is within the lookback, or if the stream's events come in order
        floor = max(cursor.floor, min(int((read_started - lookback) * 1000), cursor.newest + 1))
    if floor != cursor.floor:
        cursor.floor = floor
        cursor.seen = {event_id: stamp for event_id, stamp in cursor.seen.items() if stamp >= floor}
    cursor.busy = found
    cursor.last_read = read_started
    cursor.due = now + (max(cursor.interval, lookback) if found else cursor.interval * QUIET_INTERVALS)


def already_read_after(cursor: Cursor, not_before: float) -> bool:
    """Whether a complete read that began at or after ``not_before`` already made the final read."""
    return cursor.last_read is not None and cursor.last_read >= not_before


def final_read_ready(cursor: Cursor, now: float) -> bool:
    return cursor.drain_after is not None and cursor.drain_after <= now


def choose(
    cursors: Sequence[Cursor], now: float, tolerance_ms: int, limit: int = MAX_STREAMS_PER_CALL
) -> tuple[list[Cursor], int] | None:
    """The streams of the next call and its ``startTime``, or None when nothing is due.

    Final reads come first, as many as one call takes. Otherwise the most overdue stream sets the
    start time; others due join when their floor is at or after it and, unless they have shown no
    event yet, within a window of it (a stream read from further back would read its lines again):
    ``tolerance_ms`` (the lookback), or the anchor's interval less that when it is more; quiet streams
    due within their next interval fill the call up.
    """
    due = [c for c in cursors if c.due <= now or final_read_ready(c, now)]
    if not due:
        return None
    finals = sorted((c for c in due if final_read_ready(c, now)), key=lambda c: c.floor)
    if finals:
        # A job's last read goes first, with every other job's that is ready: each stream that has shown
        # events is read once more whatever its position (reading some lines again once is cheaper than
        # a job's end waiting); one that has shown none yet, whose floor is still its job's start, joins
        # when its floor is at or after the start, else has the next call.
        shown = [c for c in finals if c.newest is not None][:limit]
        first = min(finals, key=lambda c: (c.drain_after or 0.0, c.newest is None))
        if not shown or first.newest is None:
            # The longest-waiting final read is of a stream that has shown nothing: the ready ones of
            # those share a call from the lowest of their floors, so that while jobs keep ending they are
            # not left behind every call of streams that have shown lines.
            return _fill(finals[0], finals[1:], tolerance_ms, limit)
        start = min(c.floor for c in shown)
        streams = {c.stream for c in shown}
        batch = list(shown)
        for cursor in finals:
            if cursor.newest is None and cursor.floor >= start and (len(streams) < limit or cursor.stream in streams):
                batch.append(cursor)
                streams.add(cursor.stream)
        return batch, start
    due.sort(key=lambda c: (c.due, c.floor))
    # A busy stream read an interval apart reads again its lookback plus its distance from the start:
    # that distance may be the interval less the lookback (at most twice what it delivers), which lets
    # the busy streams of a few consecutive calls share one.
    window = max(tolerance_ms, int(due[0].interval * 1000) - tolerance_ms)
    # Quiet streams due within their next interval join early: reading them costs nothing, and each
    # call then carries up to 100 streams instead of the few that happen to be due this instant. Busy
    # streams due within half the window join too: those read by the calls just before this one are
    # otherwise due a slot apart and never share a call again, so at a thousand jobs each call would
    # carry a few dozen streams and the budget would run short.
    early = [c for c in cursors if c.due > now and c.drain_after is None]
    early = sorted((c for c in early if _may_join_early(c, now, window, tolerance_ms)), key=lambda c: c.due)
    return _fill(due[0], due[1:] + early, window, limit)


def _may_join_early(cursor: Cursor, now: float, window_ms: int, lookback_ms: int) -> bool:
    """Quiet: due within its interval. Busy: due within half the window and last read a lookback ago or
    more (a busy stream read more often would read more old events than new ones)."""
    if not cursor.busy:
        return cursor.due <= now + cursor.interval
    read_long_enough_ago = cursor.last_read is None or now - cursor.last_read >= lookback_ms / 1000
    return cursor.due <= now + window_ms / 2000 and read_long_enough_ago


def _fill(anchor: Cursor, others: Sequence[Cursor], tolerance_ms: int, limit: int) -> tuple[list[Cursor], int]:
    """``anchor`` sets the start; each of ``others`` joins when its floor is at or after it and, unless
    it has shown no event yet, within ``tolerance_ms`` of it."""
    start = anchor.floor
    batch = [anchor]
    streams = {anchor.stream}
    for cursor in others:
        if len(streams) >= limit and cursor.stream not in streams:
            continue
        if cursor.floor < start or (cursor.floor - start > tolerance_ms and _rereads(cursor, start) > QUIET_REREADS):
            continue
        batch.append(cursor)
        streams.add(cursor.stream)
    return batch, start


def _rereads(cursor: Cursor, start: int) -> float:
    """About how many events a stream would read again from ``start``: none for one that has shown
    none, else its rate so far over the gap to its floor (a busy stream's: always too many)."""
    if cursor.newest is None:
        return 0.0
    if cursor.busy or cursor.oldest is None:
        return math.inf
    per_ms = cursor.delivered / (cursor.newest - cursor.oldest + 1000)
    return per_ms * (cursor.floor - start)


def next_due(cursors: Iterable[Cursor]) -> float | None:
    """The earliest wall time at which something is to be read."""
    times = [c.due for c in cursors] + [c.drain_after for c in cursors if c.drain_after is not None]
    return min(times, default=None)
