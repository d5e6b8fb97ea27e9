"""tags, propagate_tags, share_identifier and scheduling_priority -> the SubmitJob request."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from airflow_batch_runner.job_spec import DEFINITION_TAGS, build_job_definition, build_submit_request
from airflow_batch_runner.validation import check_fair_share, check_tags
from tests.unit.test_job_spec import IDENTITY, QUEUE, assert_valid_for_botocore, make_spec

POLICY = "arn:aws:batch:eu-west-1:123456789012:scheduling-policy/fair"


def test_the_users_tags_join_ours_and_ours_win_on_our_keys() -> None:
    tags = check_tags({"team": "data", "cost-center": "42", "airflow:dag_id": "spoofed"}, IDENTITY.tags())
    request = build_submit_request(make_spec(tags=tags), IDENTITY, QUEUE, None)
    assert request["tags"] == {"team": "data", "cost-center": "42", **IDENTITY.tags()}
    assert request["tags"]["airflow:dag_id"] == "etl"
    assert request["propagateTags"] is True
    assert_valid_for_botocore("SubmitJob", request)


def test_propagate_tags_can_be_turned_off() -> None:
    assert build_submit_request(make_spec(propagate_tags=False), IDENTITY, QUEUE, None)["propagateTags"] is False


@pytest.mark.parametrize(
    ("tags", "message"),
    [
        ({"aws:created": "x"}, "not a valid tag key"),
        ({"": "x"}, "not a valid tag key"),
        ({"k" * 129: "x"}, "not a valid tag key"),
        ({"k": "v" * 257}, r"tags\['k'\] must be a string of at most 256"),
        ({"k": 1}, r"tags\['k'\] must be a string"),
        ({f"k{i}": "v" for i in range(45)}, "give at most 44 of your own"),
        (["team"], "tags must be a mapping"),
    ],
)
def test_tags_aws_would_refuse_are_refused_naming_the_argument(tags: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_tags(tags, IDENTITY.tags())


def test_our_keys_do_not_count_twice_against_the_limit() -> None:
    own = {f"k{i}": "v" for i in range(44)}
    assert len(check_tags({**own, "airflow:dag_id": "x"}, IDENTITY.tags())) == 45


def test_a_fair_share_job_carries_its_share_and_priority() -> None:
    check_fair_share("blue", 7, POLICY)
    spec = replace(make_spec(), share_identifier="blue", scheduling_priority=7)
    request = build_submit_request(spec, IDENTITY, QUEUE, None)
    assert (request["shareIdentifier"], request["schedulingPriorityOverride"]) == ("blue", 7)
    assert_valid_for_botocore("SubmitJob", request)
    assert "shareIdentifier" not in build_submit_request(make_spec(), IDENTITY, QUEUE, None)


@pytest.mark.parametrize(
    ("share", "priority", "policy", "message"),
    [
        (None, None, POLICY, "requires a share_identifier"),
        ("blue", None, None, "need a fair-share queue"),
        (None, 5, None, "need a fair-share queue"),
        ("team_A", None, POLICY, r"share_identifier 'team_A' is not one AWS Batch accepts: 1 to 255 letters and "
                                 r"digits only \(no '_', '-'"),
        ("team-a", None, POLICY, "share_identifier 'team-a' is not one AWS Batch accepts"),
        ("blue**", None, POLICY, "share_identifier 'blue\\*\\*' is not one AWS Batch accepts"),
        ("a" * 256, None, POLICY, "is not one AWS Batch accepts"),
        ("blue", 10000, POLICY, "scheduling_priority must be a whole number from 0 to 9999"),
        ("blue", -1, POLICY, "scheduling_priority must be a whole number"),
    ],
)
def test_fair_share_arguments_must_fit_the_queue(share: Any, priority: Any, policy: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_fair_share(share, priority, policy)
    check_fair_share(None, None, None)


@pytest.mark.parametrize("share", ["blue", "teamA1", "blue*", "a" * 255])
def test_share_identifiers_aws_accepts_are_accepted(share: str) -> None:
    check_fair_share(share, None, POLICY)


def test_propagated_tags_count_the_definitions_too() -> None:
    own = {f"k{i}": "v" for i in range(44)}
    with pytest.raises(ValueError) as excinfo:
        check_tags(own, IDENTITY.tags(), DEFINITION_TAGS)
    message = str(excinfo.value)
    assert message.startswith("tags: with propagate_tags=True AWS Batch copies the job's tags and its job "
                              "definition's (airflow:managed-by) to the ECS task, and fails a job with more than 50")
    assert "give at most 43 of your own (got 44), or pass propagate_tags=False" in message
    with pytest.raises(ValueError, match=r"give at most 43 of your own \(got 45\), or pass propagate_tags=False"):
        check_tags({**own, "k44": "v"}, IDENTITY.tags(), DEFINITION_TAGS)
    assert len(check_tags(own, IDENTITY.tags())) == 44  # not propagated: the definition's stay on the definition
    assert len(check_tags(dict(list(own.items())[:43]), IDENTITY.tags(), DEFINITION_TAGS)) == 43
    # A key of the definition's that the job has too counts once (the job's value wins).
    assert len(check_tags({**dict(list(own.items())[:43]), "airflow:managed-by": "me"}, IDENTITY.tags(),
                          DEFINITION_TAGS)) == 44


def test_the_definition_carries_the_tags_counted() -> None:
    assert build_job_definition(make_spec())["tags"] == dict(DEFINITION_TAGS)
