"""spot_retries and retry_strategy -> the SubmitJob request's retryStrategy."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_batch_runner.job_spec import build_submit_request
from airflow_batch_runner.validation import SPOT_RETRY_RULES, retry_strategy_for
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


def rule(**fields: Any) -> dict[str, Any]:
    return {"action": "RETRY", **fields}


@pytest.mark.parametrize(
    ("strategy", "message"),
    [
        ("x", r"retry_strategy is AWS Batch's RetryStrategy, a dict, e\.g\. \{\"attempts\": 3"),
        ({"attempts": 11}, "retry_strategy: attempts must be a whole number from 1 to 10 .*; got 11"),
        ({"attempts": 0}, "attempts must be a whole number from 1 to 10"),
        ({"attempts": "3"}, "attempts must be a whole number from 1 to 10"),
        ({"attempts": True}, "attempts must be a whole number"),
        ({"evaluateOnExit": [rule(onExitCode="1")]}, r"attempts must be .* required with evaluateOnExit\); got None"),
        ({"attempts": 2, "retries": 3}, "retry_strategy has no field 'retries'"),
        ({"attempts": 2, "evaluateOnExit": [rule()] * 6}, "evaluateOnExit must be a list of at most 5 rules"),
        ({"attempts": 2, "evaluateOnExit": rule()}, "evaluateOnExit must be a list"),
        ({"attempts": 2, "evaluateOnExit": ["RETRY"]}, r"evaluateOnExit\[0\] must be a dict"),
        ({"attempts": 2, "evaluateOnExit": [{"onExitCode": "1"}]},
         r"evaluateOnExit\[0\]: action must be RETRY or EXIT"),
        ({"attempts": 2, "evaluateOnExit": [rule(action="IGNORE")]}, "action must be RETRY or EXIT .*'IGNORE'"),
        ({"attempts": 2, "evaluateOnExit": [rule(onExit="1")]}, r"evaluateOnExit\[0\] has no field 'onExit'"),
        ({"attempts": 2, "evaluateOnExit": [rule(), rule(onExitCode="13x")]},
         r"evaluateOnExit\[1\]: onExitCode '13x' is not a pattern AWS Batch accepts: at most 512 characters of digits"),
        ({"attempts": 2, "evaluateOnExit": [rule(onExitCode="1*3")]}, "onExitCode '1\\*3' is not a pattern"),
        ({"attempts": 2, "evaluateOnExit": [rule(onStatusReason="Host EC2 (instance*")]},
         "onStatusReason .* letters, digits, periods, colons and white space, optionally ending with"),
        ({"attempts": 2, "evaluateOnExit": [rule(onReason="a" * 513)]}, "onReason .* at most 512 characters"),
        ({"attempts": 2, "evaluateOnExit": [rule(onReason="Out-of-memory*")]}, "onReason 'Out-of-memory\\*'"),
        ({"attempts": 2, "evaluateOnExit": [rule(onReason=7)]}, "onReason 7 is not a pattern"),
    ],
)
def test_a_retry_strategy_aws_would_refuse_is_refused_naming_the_argument(strategy: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        retry_strategy_for(0, strategy)


@pytest.mark.parametrize(
    "strategy",
    [
        {"attempts": 1},
        {"attempts": 10},
        {"attempts": 3, "evaluateOnExit": [rule(onExitCode="137"), rule(onExitCode="1*", action="exit"),
                                           rule(onStatusReason="Host EC2*"), rule(onReason="CannotPull*"),
                                           {"onReason": "*", "action": "Exit"}]},
        {"attempts": 2, "evaluateOnExit": [rule(onStatusReason="Essential container.\tExited", onReason="a" * 512)]},
        {"attempts": 2, "evaluateOnExit": []},
    ],
)
def test_a_retry_strategy_within_aws_bounds_is_accepted(strategy: dict[str, Any]) -> None:
    assert retry_strategy_for(0, strategy) == strategy
    request = build_submit_request(make_spec(retry_strategy=strategy), IDENTITY, QUEUE, None)
    assert_valid_for_botocore("SubmitJob", request)


def test_the_operator_refuses_a_retry_strategy_that_is_not_a_dict_when_the_dag_is_parsed() -> None:
    from airflow_batch_runner.operators.batch_runner import BatchRunnerOperator

    with pytest.raises(ValueError, match="retry_strategy is AWS Batch's RetryStrategy, a dict"):
        BatchRunnerOperator(task_id="t", compute_environment_arn="ce", commands=["true"], retry_strategy="x")
    with pytest.raises(ValueError, match="attempts must be a whole number from 1 to 10"):
        BatchRunnerOperator(task_id="t", compute_environment_arn="ce", commands=["true"],
                            retry_strategy={"attempts": 11})
