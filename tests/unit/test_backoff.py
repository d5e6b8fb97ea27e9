"""The one backoff after failed AWS calls: doubling from 1 s to its ceiling, jittered, reset by a success."""

from __future__ import annotations

from airflow_batch_runner.backoff import Backoff


def test_the_backoff_doubles_to_its_ceiling_with_jitter_and_a_success_resets_it() -> None:
    backoff = Backoff(ceiling=5.0)
    waits = [backoff.failed() for _ in range(5)]
    seconds = [1.0, 2.0, 4.0, 5.0, 5.0]
    assert all(s * 0.5 <= w <= s * 1.5 for w, s in zip(waits, seconds, strict=True)), waits
    assert backoff.seconds == 5.0
    backoff.succeeded()
    assert backoff.seconds == 0.0
    assert 0.5 <= backoff.failed() <= 1.5


def test_many_waiters_do_not_retry_at_one_moment() -> None:
    assert len({round(Backoff(ceiling=30.0).failed(), 6) for _ in range(50)}) > 40
