"""Per-stream log positions: new lines once and in order, floors that advance for quiet streams too,
and calls that read no busy stream from far behind its position."""

from __future__ import annotations

from typing import Any

from airflow_batch_runner import log_positions
from airflow_batch_runner.log_positions import Cursor, accept, advance, choose, next_due, start_floor


def _event(event_id: int, stamp: int, message: str | None = None) -> dict[str, Any]:
    return {"eventId": str(event_id), "timestamp": stamp, "message": message or f"m{event_id}"}


def test_a_new_stream_starts_at_its_jobs_start_not_the_epoch() -> None:
    assert start_floor(1_700_000_000_000, now=1_800_000_000.0, allowance=2.0) == 1_699_999_998_000
    assert start_floor(None, now=1_800_000_000.0, allowance=2.0) == 1_799_999_998_000


def test_each_event_is_delivered_once_across_overlapping_reads() -> None:
    cursor = Cursor("s", floor=1000, interval=5.0)
    assert accept(cursor, [_event(1, 1000), _event(2, 1500)]) == ["m1", "m2"]
    advance(cursor, read_started=2.0, lookback=1.0, found=True, now=2.0)  # floor 1000: lookback keeps both
    assert accept(cursor, [_event(1, 1000), _event(2, 1500), _event(3, 2100)]) == ["m3"]
    advance(cursor, read_started=3.0, lookback=1.0, found=True, now=3.0)  # floor 2000
    assert cursor.floor == 2000
    assert cursor.seen == {"3": 2100}  # ids below the floor are forgotten: they can no longer be returned
    # A late-ingested event above the floor is new; one below it cannot be returned by a read from the floor.
    assert accept(cursor, [_event(3, 2100), _event(4, 2050)]) == ["m4"]
    assert (cursor.read_events, cursor.delivered) == (7, 4)


def test_a_quiet_stream_advances_and_is_read_less_often() -> None:
    cursor = Cursor("s", floor=0, interval=5.0)
    accept(cursor, [_event(1, 99_500)])
    advance(cursor, read_started=100.0, lookback=2.0, found=True, now=100.5)
    assert cursor.floor == 98_000
    advance(cursor, read_started=103.0, lookback=2.0, found=False, now=103.5)
    assert cursor.floor == 99_501  # not past the newest event it has shown: the next may be late
    assert cursor.due == 103.5 + 5.0 * log_positions.QUIET_INTERVALS
    advance(cursor, read_started=50.0, lookback=2.0, found=True, now=104.0)  # never backwards
    assert cursor.floor == 99_501
    assert cursor.due == 109.0


def test_a_stream_that_has_shown_no_event_stays_at_its_jobs_start() -> None:
    """Its first lines may become readable long after their timestamps: nothing may be skipped."""
    cursor = Cursor("s", floor=10_000, interval=1.0)
    for second in range(11, 40):
        advance(cursor, read_started=float(second), lookback=2.0, found=False, now=float(second))
    assert cursor.floor == 10_000
    assert accept(cursor, [_event(1, 10_500)]) == ["m1"]


def test_lines_readable_later_than_the_allowance_are_not_skipped() -> None:
    """Lines become readable 5 s after their timestamps, the allowance is 2 s, reads every 0.5 s: the
    floor waits behind the newest line shown, and the lookback widens to the lag seen (with the reads
    spaced by it, at most half of what is read was read before)."""
    cursor = Cursor("s", floor=0, interval=0.5)
    delay, lag, delivered = 5.0, 0.0, []
    written = [(i, 1000 + 100 * i) for i in range(200)]  # a line every 0.1 s from t = 1 s
    now = 1.0
    while now < 40.0:
        if now < cursor.due:
            now += 0.5
            continue
        readable = [{**_event(i, stamp), "ingestionTime": int(stamp + delay * 1000)}
                    for i, stamp in written if stamp + delay * 1000 <= now * 1000 and stamp >= cursor.floor]
        lag = max(lag, log_positions.ingestion_lag(readable))
        lines = accept(cursor, readable)
        delivered += lines
        advance(cursor, read_started=now, lookback=log_positions.lookback(2.0, lag), found=bool(lines), now=now)
        now += 0.5
    assert delivered == [f"m{i}" for i in range(200)]
    assert lag == delay
    assert cursor.read_events <= 2 * cursor.delivered


def test_the_lookback_is_the_allowance_or_the_lag_seen_plus_a_margin_bounded() -> None:
    assert log_positions.lookback(2.0, 0.0) == 2.0
    assert log_positions.lookback(2.0, 0.5) == 2.0
    assert log_positions.lookback(2.0, 4.5) == 4.5 + log_positions.LAG_MARGIN
    assert log_positions.lookback(2.0, 1000.0) == log_positions.MAX_LOOKBACK
    events = [{"timestamp": 1000, "ingestionTime": 1500}, {"timestamp": 2000, "ingestionTime": 6000},
              {"timestamp": 3000}]
    assert log_positions.ingestion_lag(events) == 4.0
    assert log_positions.ingestion_lag([]) == 0.0


def test_a_busy_stream_is_read_at_most_once_per_allowance() -> None:
    """Each read takes the last ``allowance`` seconds again: with reads that far apart, at most half of
    what a read returns was delivered before."""
    cursor = Cursor("s", floor=0, interval=0.5)
    advance(cursor, read_started=100.0, lookback=2.0, found=True, now=100.1)
    assert cursor.due == 102.1


def test_nothing_due_chooses_nothing() -> None:
    assert choose([Cursor("a", 0, 5.0, due=10.0)], now=5.0, tolerance_ms=2000) is None
    assert next_due([Cursor("a", 0, 5.0, due=10.0), Cursor("b", 0, 5.0, due=20.0, drain_after=7.0)]) == 7.0


def test_the_most_overdue_stream_goes_first_and_sets_the_start() -> None:
    late = Cursor("late", floor=5000, interval=5.0, due=1.0)
    early = Cursor("early", floor=5000, interval=5.0, due=2.0)
    picked = choose([early, late], now=3.0, tolerance_ms=2000)
    assert picked == ([late, early], 5000)


def test_busy_streams_far_ahead_of_the_start_wait_for_their_own_call() -> None:
    anchor = Cursor("new", floor=1000, interval=5.0, due=0.0)
    busy_ahead = Cursor("busy", floor=60_000, interval=5.0, due=1.0, busy=True, newest=61_000)
    busy_near = Cursor("near", floor=2500, interval=5.0, due=1.0, busy=True, newest=3000)
    quiet_ahead = Cursor("quiet", floor=60_000, interval=5.0, due=1.0)
    behind = Cursor("behind", floor=500, interval=5.0, due=1.0)
    batch, start = choose([anchor, busy_ahead, busy_near, quiet_ahead, behind], now=2.0, tolerance_ms=2000) or ([], 0)
    assert start == 1000
    assert batch == [anchor, busy_near, quiet_ahead]
    # The ones left out are read next, from their own floors.
    rest = [busy_ahead, behind]
    assert choose(rest, now=2.0, tolerance_ms=2000) == ([behind], 500)


def test_a_final_read_goes_before_every_other_stream() -> None:
    overdue = Cursor("overdue", floor=1000, interval=5.0, due=0.0)
    ending = Cursor("ending", floor=9000, interval=5.0, due=50.0, drain_after=3.0)
    assert choose([overdue, ending], now=2.0, tolerance_ms=2000) == ([overdue], 1000)  # not yet ready
    assert choose([overdue, ending], now=4.0, tolerance_ms=2000) == ([ending], 9000)


def test_every_ready_final_read_shares_one_call_whatever_its_position() -> None:
    """At scale many jobs end together: their last reads must not wait for one call each."""
    ending = [Cursor(f"e{i}", floor=1000 * i, interval=5.0, due=50.0, busy=True, drain_after=1.0, newest=1000 * i)
              for i in range(1, 30)]
    silent_after = Cursor("silent-after", floor=1500, interval=5.0, due=50.0, drain_after=1.0)
    silent_before = Cursor("silent-before", floor=500, interval=5.0, due=50.0, drain_after=1.0)
    cursors = [*ending, silent_after, silent_before]
    batch, start = choose(cursors, now=2.0, tolerance_ms=2000) or ([], 0)
    assert sorted(c.stream for c in batch) == sorted(c.stream for c in [*ending, silent_after])
    assert start == 1000
    # A stream that has shown nothing, below the others, has the next call rather than dragging theirs back.
    assert choose([silent_before], now=2.0, tolerance_ms=2000) == ([silent_before], 500)


def test_at_most_a_hundred_streams_per_call() -> None:
    cursors = [Cursor(f"s{i:03d}", floor=1000, interval=5.0, due=float(i)) for i in range(250)]
    batch, _ = choose(cursors, now=1000.0, tolerance_ms=2000) or ([], 0)
    assert [c.stream for c in batch] == [f"s{i:03d}" for i in range(100)]


def test_two_watchers_of_one_stream_share_the_call() -> None:
    one, two = Cursor("s", floor=1000, interval=5.0), Cursor("s", floor=1000, interval=5.0)
    others = [Cursor(f"o{i}", floor=1000, interval=5.0, due=1.0) for i in range(99)]
    batch, _ = choose([one, two, *others], now=2.0, tolerance_ms=0) or ([], 0)
    assert len(batch) == 101 and len({c.stream for c in batch}) == 100


def test_quiet_streams_due_soon_fill_the_call_and_busy_ones_wait_their_turn() -> None:
    anchor = Cursor("due", floor=1000, interval=5.0, due=1.0)
    quiet_soon = Cursor("quiet-soon", floor=1500, interval=5.0, due=4.0)
    quiet_later = Cursor("quiet-later", floor=1500, interval=5.0, due=9.0)
    busy_soon = Cursor("busy-soon", floor=1500, interval=5.0, due=4.0, busy=True)
    batch, start = choose([anchor, quiet_soon, quiet_later, busy_soon], now=2.0, tolerance_ms=2000) or ([], 0)
    assert (batch, start) == ([anchor, quiet_soon], 1000)


def test_busy_streams_due_within_half_a_lookback_join_so_consecutive_calls_merge() -> None:
    """Busy streams read by consecutive calls are due a slot apart: without joining early they would
    each have a call of their own for ever."""
    first = [Cursor(f"a{i}", floor=1000, interval=5.0, due=1.0, busy=True) for i in range(40)]
    next_slot = [Cursor(f"b{i}", floor=1500, interval=5.0, due=2.5, busy=True) for i in range(40)]
    later = Cursor("c", floor=1500, interval=5.0, due=3.6, busy=True)
    batch, start = choose([*first, *next_slot, later], now=2.0, tolerance_ms=2000) or ([], 0)
    assert start == 1000
    # "c" is due 1.6 s on: more than half the window (the 5 s interval less the 2 s lookback)
    assert batch == first + next_slot


def test_a_quiet_stream_with_few_lines_joins_a_call_from_further_back_and_a_chatty_one_does_not() -> None:
    """Past the tolerance a stream joins only when it would read about two of its events again: a slow
    job's stream (3 lines over 30 s) 10 s ahead of the start, not a stream that printed 301 in that time."""
    anchor = Cursor("anchor", floor=100_000, interval=5.0, due=1.0, newest=99_000)
    slow, paused = Cursor("slow", floor=0, interval=5.0), Cursor("paused", floor=0, interval=5.0)
    accept(slow, [_event(i, 80_000 + 15_000 * i) for i in range(3)])  # 80 s, 95 s, 110 s
    accept(paused, [_event(i, 80_000 + 100 * i) for i in range(301)])  # 80 s to 110 s
    for cursor in (slow, paused):
        advance(cursor, read_started=113.0, lookback=2.0, found=True, now=113.0)
        advance(cursor, read_started=118.0, lookback=2.0, found=False, now=118.0)  # quiet since
        assert cursor.floor == 110_001 and not cursor.busy
        cursor.due = 1.0
    batch, start = choose([anchor, slow, paused], now=2.0, tolerance_ms=2000) or ([], 0)
    assert start == 100_000
    assert batch == [anchor, slow]


def test_busy_streams_join_within_the_interval_less_the_lookback_when_that_is_wider() -> None:
    """Read 5 s apart with a 2 s lookback, a busy stream may start 3 s before its floor (it then reads
    again at most 5 s of lines per 5 s delivered); read 2 s apart, only the 2 s lookback."""
    for interval, joins in ((5.0, True), (2.0, False)):
        anchor = Cursor("anchor", floor=1000, interval=interval, due=1.0, busy=True, newest=2000)
        ahead = Cursor("ahead", floor=3500, interval=interval, due=1.0, busy=True, newest=4000)
        batch, _ = choose([anchor, ahead], now=2.0, tolerance_ms=2000) or ([], 0)
        assert (ahead in batch) is joins, interval


def test_final_reads_of_silent_streams_ready_first_are_not_left_behind_those_of_busy_ones() -> None:
    """Jobs keep ending: a silent job's final read (its floor still at its start, below the others')
    ready before the busy ones' gets the next call, with every other silent one ready."""
    busy = [Cursor(f"b{i}", floor=90_000, interval=5.0, due=50.0, busy=True, drain_after=1.5, newest=91_000)
            for i in range(5)]
    silent = [Cursor(f"s{i}", floor=1000 + i, interval=5.0, due=50.0, drain_after=1.0 + i / 10) for i in range(3)]
    batch, start = choose([*busy, *silent], now=2.0, tolerance_ms=2000) or ([], 0)
    assert (sorted(c.stream for c in batch), start) == (["s0", "s1", "s2"], 1000)
    batch, start = choose(busy, now=2.0, tolerance_ms=2000) or ([], 0)
    assert (batch, start) == (busy, 90_000)
