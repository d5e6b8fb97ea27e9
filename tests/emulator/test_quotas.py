"""AWS's request-rate quotas, as a client meets them: over the rate, the service's throttling error."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.exceptions import ClientError

from airflow_batch_runner.emulator.quotas import Quota, RateQuotas
from airflow_batch_runner.emulator.testing import control
from tests.emulator import helpers

NO_RETRIES: dict[str, Any] = {"retries": {"total_max_attempts": 1}}
# AWS Batch service quotas: SubmitJob, 50 transactions per second per account and Region.
SUBMIT_JOB_TPS = 50


def _submit_codes(url: str, count: int, region: str = helpers.REGION) -> tuple[list[str], float]:
    """Error codes of ``count`` SubmitJob calls fired at once from 8 threads, and the seconds they took.
    The definition does not exist, so no job is created: the quota applies before any validation."""
    batch = helpers.client(url, "batch", region=region, **NO_RETRIES)

    def submit(i: int) -> str:
        try:
            batch.submit_job(jobName=f"q{i}", jobQueue="none", jobDefinition="none")
        except ClientError as exc:
            return str(exc.response["Error"]["Code"]) + f":{exc.response['ResponseMetadata']['HTTPStatusCode']}"
        return "ok"

    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(submit, range(count)))
    return codes, time.monotonic() - started


def test_submit_job_over_fifty_per_second_is_throttled_with_429(emulator_url: str) -> None:
    codes, elapsed = _submit_codes(emulator_url, 150)
    throttled = codes.count("TooManyRequestsException:429")
    admitted = len(codes) - throttled
    assert throttled > 0, f"150 SubmitJob calls in {elapsed:.2f} s were all admitted"
    # A full bucket (one second's worth) plus what refilled while the calls ran, and no more.
    assert admitted <= SUBMIT_JOB_TPS + SUBMIT_JOB_TPS * elapsed + 1
    assert control(emulator_url, "quotas")["throttled"]["batch:SubmitJob"] == throttled


def test_submit_job_quota_refills_at_the_documented_rate(emulator_url: str) -> None:
    _submit_codes(emulator_url, 120)  # empty the bucket
    emptied = time.monotonic()
    time.sleep(0.5)  # a refill of about 25 calls
    codes, _ = _submit_codes(emulator_url, 60)
    admitted = len(codes) - codes.count("TooManyRequestsException:429")
    # At most what refilled since the bucket was empty: on a loaded host the sleep itself may last longer.
    assert 20 <= admitted <= SUBMIT_JOB_TPS * (time.monotonic() - emptied) + 1


def test_quotas_are_per_region(emulator_url: str) -> None:
    _submit_codes(emulator_url, 120, region="us-east-1")
    codes, _ = _submit_codes(emulator_url, 40, region="eu-west-1")
    assert "TooManyRequestsException:429" not in codes


def test_other_operations_are_not_limited_by_the_submit_quota(emulator_url: str) -> None:
    # A SubmitJob bucket that stays empty for the whole test (one call per 1,000 s).
    control(emulator_url, "quotas", {"quotas": {"batch:SubmitJob": {"rate": 0.001, "burst": 1}}})
    codes, _ = _submit_codes(emulator_url, 3)
    assert codes.count("TooManyRequestsException:429") == 2
    batch = helpers.client(emulator_url, "batch", **NO_RETRIES)
    answers = [batch.describe_jobs(jobs=["none"])["jobs"] for _ in range(60)]
    assert answers == [[]] * 60
    assert _submit_codes(emulator_url, 1)[0] == ["TooManyRequestsException:429"], "the bucket was still empty"
    assert control(emulator_url, "quotas")["throttled"] == {"batch:SubmitJob": 3}


def test_quotas_can_be_turned_off_and_reset_restores_them(emulator_url: str) -> None:
    control(emulator_url, "quotas", {"enabled": False})
    codes, _ = _submit_codes(emulator_url, 150)
    assert "TooManyRequestsException:429" not in codes
    control(emulator_url, "reset", {})
    assert control(emulator_url, "quotas")["enabled"] is True
    codes, _ = _submit_codes(emulator_url, 150)
    assert "TooManyRequestsException:429" in codes


def test_a_quota_can_be_lowered_for_a_test(emulator_url: str) -> None:
    control(emulator_url, "quotas", {"quotas": {"batch:SubmitJob": {"rate": 1, "burst": 2}}})
    codes, _ = _submit_codes(emulator_url, 10)
    assert len(codes) - codes.count("TooManyRequestsException:429") <= 3


def test_botocore_retries_ride_out_the_quota(emulator_url: str) -> None:
    """The default client retries 429s, so a burst of 100 succeeds in the end (each refused by the backend)."""
    batch = helpers.client(emulator_url, "batch", retries={"mode": "standard", "max_attempts": 10})

    def submit(i: int) -> str:
        try:
            batch.submit_job(jobName=f"q{i}", jobQueue="none", jobDefinition="none")
        except ClientError as exc:
            return str(exc.response["Error"]["Code"])
        return "ok"

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(submit, range(100)))
    assert "TooManyRequestsException" not in codes


def test_unknown_quota_settings_are_refused(emulator_url: str) -> None:
    for bad in ({"enable": False}, {"quotas": {"batch:Nope": {"rate": 1}}}, {"quotas": {"batch:SubmitJob": {"r": 1}}}):
        with pytest.raises(Exception, match="400"):
            control(emulator_url, "quotas", bad)


def test_token_bucket_with_a_clock() -> None:
    now = [0.0]
    quotas = RateQuotas({"batch:SubmitJob": Quota(2, 2)}, clock=lambda: now[0])
    assert [quotas.admit("batch", "SubmitJob", "r") for _ in range(3)] == [True, True, False]
    now[0] = 0.5  # one token back
    assert [quotas.admit("batch", "SubmitJob", "r") for _ in range(2)] == [True, False]
    assert quotas.admit("batch", "DescribeJobs", "r")
    assert quotas.stats()["throttled"] == {"batch:SubmitJob": 2}
