"""spot_retries and retry_strategy -> the SubmitJob request's retryStrategy."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_batch_runner.job_spec import SPOT_RETRY_RULES, build_submit_request, retry_strategy_for
from tests.unit.test_job_spec import IDENTITY, QUEUE, assert_valid_for_botocore, make_spec


def test_by_default_the_job_has_one_attempt_and_no_retry_strategy() -> None:
    assert retry_strategy_for(0, None) is None
    assert "retryStrategy" not in build_submit_request(make_spec(), IDENTITY, QUEUE, None)


def test_spot_retries_retry_a_reclaimed_host_or_task_and_exit_on_anything_else() -> None:
    strategy = retry_strategy_for(2, None)
    assert strategy == {"attempts": 3, "evaluateOnExit": [
        {"onStatusReason": "Host EC2*", "action": "RETRY"},
        {"onStatusReason": "Your Spot Task was interrupted*", "action": "RETRY"},
        {"onReason": "*", "action": "EXIT"},
    ]}
    assert strategy["evaluateOnExit"] == list(SPOT_RETRY_RULES)
    request = build_submit_request(make_spec(retry_strategy=strategy), IDENTITY, QUEUE, None)
    assert request["retryStrategy"] == strategy
    assert_valid_for_botocore("SubmitJob", request)


def test_a_retry_strategy_passes_through_as_given() -> None:
    own = {"attempts": 4, "evaluateOnExit": [{"onExitCode": "137", "action": "RETRY"}]}
    assert retry_strategy_for(0, own) == own
    request = build_submit_request(make_spec(retry_strategy=own), IDENTITY, QUEUE, None)
    assert request["retryStrategy"] == own
    assert_valid_for_botocore("SubmitJob", request)


@pytest.mark.parametrize(
    ("spot_retries", "strategy", "message"),
    [
        (10, None, "spot_retries must be a whole number from 0 to 9"),
        (-1, None, "spot_retries must be a whole number from 0 to 9"),
        (True, None, "spot_retries must be a whole number"),
        ("2", None, "spot_retries must be a whole number"),
        (1, {"attempts": 2}, "give spot_retries or retry_strategy, not both"),
        (0, {}, "retry_strategy is AWS Batch's RetryStrategy"),
        (0, [{"attempts": 2}], "retry_strategy is AWS Batch's RetryStrategy"),
    ],
)
def test_bad_retry_arguments_name_the_argument(spot_retries: Any, strategy: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        retry_strategy_for(spot_retries, strategy)
