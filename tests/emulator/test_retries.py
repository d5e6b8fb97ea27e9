"""retryStrategy.evaluateOnExit as the AWS Batch API reference describes it (EvaluateOnExit, RetryStrategy),
and injected Spot-style interruptions of a running attempt."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from airflow_batch_runner.emulator.testing import control
from tests.emulator import helpers

pytestmark = pytest.mark.timeout(120)

HOST_GONE = "Host EC2 (instance i-0123456789abcdef0) terminated."
SPOT_RULES = [{"onStatusReason": "Host EC2*", "action": "RETRY"}, {"onReason": "*", "action": "EXIT"}]


def run(batch: Any, queue: str, command: str, strategy: dict[str, Any], name: str | None = None) -> dict[str, Any]:
    definition = helpers.register_container(batch, ["sh", "-c", command])
    job, _ = helpers.watch_job(batch, helpers.submit(batch, queue, definition["jobDefinitionArn"], name=name,
                                                     retryStrategy=strategy))
    return job


@pytest.mark.parametrize(
    ("rules", "attempts"),
    [
        ([{"onExitCode": "7", "action": "EXIT"}], 1),
        ([{"onExitCode": "7", "action": "retry"}], 3),  # action is not case sensitive
        ([{"onExitCode": "1*", "action": "EXIT"}], 3),  # no rule matches 7: retried
        ([{"onExitCode": "*", "action": "exit"}, {"onExitCode": "7", "action": "RETRY"}], 1),  # the first match wins
        ([{"onReason": "*", "action": "EXIT"}], 1),  # * matches an attempt without a reason
        ([{"onStatusReason": "Essential container*", "onExitCode": "8", "action": "EXIT"}], 3),  # all must match
        ([{"onStatusReason": "Essential container in task exited", "onExitCode": "7", "action": "EXIT"}], 1),
    ],
)
def test_evaluate_on_exit_decides_whether_a_failed_attempt_is_retried(
    batch: Any, ec2_queue: str, rules: list[dict[str, str]], attempts: int
) -> None:
    job = run(batch, ec2_queue, "exit 7", {"attempts": 3, "evaluateOnExit": rules})
    assert job["status"] == "FAILED"
    assert len(job["attempts"]) == attempts
    # AWS stores the (case-insensitive) action in lower case.
    stored = [{**rule, "action": rule["action"].lower()} for rule in rules]
    assert job["retryStrategy"] == {"attempts": 3, "evaluateOnExit": stored}


@pytest.mark.parametrize(
    "strategy",
    [
        {"attempts": 2, "evaluateOnExit": [{"action": "RETRY"}] * 6},
        {"attempts": 2, "evaluateOnExit": [{"onExitCode": "1"}]},
        {"attempts": 2, "evaluateOnExit": [{"onExitCode": "1", "action": "RESTART"}]},
        {"attempts": 2, "evaluateOnExit": [{"onExitCode": "1a", "action": "EXIT"}]},
        {"attempts": 2, "evaluateOnExit": [{"onExitCode": "*1", "action": "EXIT"}]},
        {"attempts": 2, "evaluateOnExit": [{"onReason": "Cannot(pull)", "action": "EXIT"}]},
        {"attempts": 2, "evaluateOnExit": [{"onStatusReason": "a" * 513, "action": "EXIT"}]},
    ],
    ids=["six entries", "no action", "unknown action", "letters in onExitCode", "leading asterisk",
         "parentheses in onReason", "513 characters"],
)
def test_an_invalid_evaluate_on_exit_is_refused(emulator_url: str, ec2_queue: str, strategy: dict[str, Any]) -> None:
    # As a client without botocore's own checks sends it: the service must refuse it too.
    batch = helpers.client(emulator_url, "batch", parameter_validation=False)
    definition = helpers.register_container(batch, ["true"])
    with pytest.raises(ClientError) as excinfo:
        helpers.submit(batch, ec2_queue, definition["jobDefinitionArn"], retryStrategy=strategy)
    code, message, status = helpers.client_error(excinfo)
    assert (code, status) == ("ClientException", 400)
    assert "evaluateOnExit" in message
    with pytest.raises(ClientError):
        helpers.register_container(batch, ["true"], retryStrategy=strategy)


@pytest.mark.parametrize(
    "strategy",
    [{"evaluateOnExit": [{"onExitCode": "1", "action": "EXIT"}]}, {"attempts": "3"}, {"attempts": 2.5}],
    ids=["evaluateOnExit without attempts", "attempts as text", "attempts not whole"],
)
def test_attempts_must_be_a_whole_number_and_are_required_with_evaluate_on_exit(
    emulator_url: str, ec2_queue: str, strategy: dict[str, Any]
) -> None:
    # RetryStrategy: attempts is an Integer from 1 to 10; with evaluateOnExit, "the attempts parameter must also be
    # specified".
    batch = helpers.client(emulator_url, "batch", parameter_validation=False)
    definition = helpers.register_container(batch, ["true"])
    with pytest.raises(ClientError) as excinfo:
        helpers.submit(batch, ec2_queue, definition["jobDefinitionArn"], retryStrategy=strategy)
    code, message, status = helpers.client_error(excinfo)
    assert status == 400 and "attempts" in message  # a request error, never a failure of the service
    if "evaluateOnExit" in strategy:
        assert code == "ClientException"
    with pytest.raises(ClientError):
        helpers.register_container(batch, ["true"], retryStrategy=strategy)


def test_an_interrupted_attempt_is_retried_by_a_host_rule_and_reports_no_exit_code(
    emulator_url: str, batch: Any, ec2_queue: str
) -> None:
    control(emulator_url, "interruptions",
            {"rules": [{"jobName": "spot-*", "statusReason": HOST_GONE, "attempts": 1, "afterSeconds": 0.3}]})
    job = run(batch, ec2_queue, "sleep 2; echo done", {"attempts": 2, "evaluateOnExit": SPOT_RULES},
              name=helpers.unique("spot"))
    assert job["status"] == "SUCCEEDED"
    first, second = job["attempts"]
    assert first["statusReason"] == HOST_GONE
    assert "exitCode" not in first["container"]
    assert second["container"]["exitCode"] == 0
    # Another job name is not interrupted.
    other = run(batch, ec2_queue, "sleep 1", {"attempts": 1}, name=helpers.unique("steady"))
    assert other["status"] == "SUCCEEDED" and len(other["attempts"]) == 1


def test_an_interruption_without_retries_fails_the_job_with_its_reason(
    emulator_url: str, batch: Any, ec2_queue: str
) -> None:
    control(emulator_url, "interruptions", {"rules": [{"jobName": "spot-*", "statusReason": HOST_GONE}]})
    job = run(batch, ec2_queue, "sleep 5", {"attempts": 1}, name=helpers.unique("spot"))
    assert (job["status"], job["statusReason"], len(job["attempts"])) == ("FAILED", HOST_GONE, 1)


def test_a_real_failure_exits_under_the_spot_rules(batch: Any, ec2_queue: str) -> None:
    job = run(batch, ec2_queue, "exit 3", {"attempts": 3, "evaluateOnExit": SPOT_RULES})
    assert job["status"] == "FAILED"
    assert [a["container"]["exitCode"] for a in job["attempts"]] == [3]


def test_a_malformed_interruption_rule_is_refused(emulator_url: str) -> None:
    import urllib.error

    with pytest.raises(urllib.error.HTTPError) as excinfo:
        control(emulator_url, "interruptions", {"rules": [{"jobName": "x"}]})
    assert excinfo.value.code == 400
