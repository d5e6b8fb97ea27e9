"""ConnectionOverrides.apply: the operator's explicit credentials, endpoint and assume-role, layered on
a real AwsConnectionWrapper of the Amazon provider (no AWS call is made)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import boto3
import botocore.session
import pytest
from airflow.models.connection import Connection
from airflow.providers.amazon.aws.utils.connection_wrapper import AwsConnectionWrapper
from botocore.config import Config
from botocore.credentials import RefreshableCredentials

from airflow_batch_runner.hooks.batch_runner import BatchRunnerHook, ConnectionOverrides, refresh_within_lifetime

ENDPOINT = "http://batch.vpce.example:4566"
OVERRIDE = "http://override.example:4566"
STS_OVERRIDE = "http://sts.override.example:4566"
ROLE = "arn:aws:iam::123456789012:role/batch-runner"
CONNECTION_ROLE = "arn:aws:iam::123456789012:role/connection-role"


def wrapper(login: str | None = "AKIACONNECTION", password: str | None = "connection-secret",
            region: str | None = None, botocore_config: Config | None = None, **extra: Any) -> AwsConnectionWrapper:
    """The wrapper AwsBaseHook.conn_config builds from an Airflow connection."""
    connection = Connection(conn_id="batch_aws", conn_type="aws", login=login, password=password,
                            extra=json.dumps(extra))
    return AwsConnectionWrapper(conn=connection, region_name=region, botocore_config=botocore_config)


def credentials(config: AwsConnectionWrapper) -> tuple[str | None, str | None, str | None]:
    return config.aws_access_key_id, config.aws_secret_access_key, config.aws_session_token


# Credentials


def test_explicit_keys_replace_the_connections() -> None:
    config = ConnectionOverrides(access_key_id="AKIAEXPLICIT", secret_key_id="explicit-secret").apply(wrapper())
    assert credentials(config) == ("AKIAEXPLICIT", "explicit-secret", None)
    assert config.session_kwargs["aws_access_key_id"] == "AKIAEXPLICIT"


def test_explicit_keys_also_replace_keys_the_connection_keeps_in_extra() -> None:
    base = wrapper(login=None, password=None, aws_access_key_id="AKIAEXTRA", aws_secret_access_key="extra-secret")
    assert credentials(base)[:2] == ("AKIAEXTRA", "extra-secret")
    config = ConnectionOverrides(access_key_id="AKIAEXPLICIT", secret_key_id="explicit-secret").apply(base)
    assert credentials(config) == ("AKIAEXPLICIT", "explicit-secret", None)


def test_without_explicit_keys_the_connections_keys_and_token_are_kept() -> None:
    base = wrapper(aws_session_token="connection-token")
    config = ConnectionOverrides(endpoint_override=OVERRIDE).apply(base)
    assert credentials(config) == ("AKIACONNECTION", "connection-secret", "connection-token")


def test_explicit_keys_with_a_token_replace_the_connections_token() -> None:
    base = wrapper(aws_session_token="connection-token")
    config = ConnectionOverrides(access_key_id="AKIAEXPLICIT", secret_key_id="explicit-secret",
                                 session_token="explicit-token").apply(base)
    assert credentials(config) == ("AKIAEXPLICIT", "explicit-secret", "explicit-token")


def test_explicit_keys_without_a_token_drop_the_connections_token() -> None:
    # The connection's token belongs to the connection's keys: never paired with other keys.
    base = wrapper(aws_session_token="connection-token")
    config = ConnectionOverrides(access_key_id="AKIAEXPLICIT", secret_key_id="explicit-secret").apply(base)
    assert credentials(config) == ("AKIAEXPLICIT", "explicit-secret", None)
    assert "aws_session_token" not in config.session_kwargs


def test_explicit_keys_without_a_token_drop_a_token_from_the_connections_session_kwargs() -> None:
    base = wrapper(login=None, password=None, session_kwargs={
        "aws_access_key_id": "AKIACONNECTION", "aws_secret_access_key": "connection-secret",
        "aws_session_token": "connection-token"})
    assert credentials(base) == ("AKIACONNECTION", "connection-secret", "connection-token")
    config = ConnectionOverrides(access_key_id="AKIAEXPLICIT", secret_key_id="explicit-secret").apply(base)
    assert credentials(config) == ("AKIAEXPLICIT", "explicit-secret", None)


def test_explicit_keys_drop_the_connections_profile() -> None:
    # A profile would be looked up beside the keys (ProfileNotFound on a worker without it).
    base = wrapper(login=None, password=None, profile_name="ops")
    assert base.profile_name == "ops"
    config = ConnectionOverrides(access_key_id="AKIAEXPLICIT", secret_key_id="explicit-secret").apply(base)
    assert config.profile_name is None


# Endpoints


def test_endpoint_override_is_the_endpoint_of_every_client() -> None:
    config = ConnectionOverrides(endpoint_override=OVERRIDE).apply(wrapper(endpoint_url=ENDPOINT))
    assert config.endpoint_url == OVERRIDE
    assert config.get_service_endpoint_url("batch") == OVERRIDE
    assert config.get_service_endpoint_url("s3") == OVERRIDE


@pytest.mark.parametrize(
    ("connection_endpoint", "overrides", "sts_endpoint"),
    [
        (ENDPOINT, {"sts_endpoint_override": STS_OVERRIDE, "endpoint_override": OVERRIDE}, STS_OVERRIDE),
        (None, {"sts_endpoint_override": STS_OVERRIDE}, STS_OVERRIDE),
        (ENDPOINT, {"endpoint_override": OVERRIDE}, OVERRIDE),
        (ENDPOINT, {}, ENDPOINT),
    ],
    ids=["sts_endpoint_override first", "sts_endpoint_override alone", "then endpoint_override",
         "then the connection's endpoint_url"],
)
def test_the_assume_role_call_goes_to_the_first_sts_endpoint_given(
    connection_endpoint: str | None, overrides: dict[str, Any], sts_endpoint: str
) -> None:
    base = wrapper(endpoint_url=connection_endpoint) if connection_endpoint else wrapper()
    config = ConnectionOverrides(sts_role_arn=ROLE, **overrides).apply(base)
    assert config.service_config["sts"] == {"endpoint_url": sts_endpoint}
    # Where the provider's assume-role client goes (it never uses the global endpoint_url for it).
    assert config.get_service_endpoint_url("sts", sts_connection_assume=True) == sts_endpoint


def test_sts_endpoint_override_leaves_the_other_clients_on_theirs() -> None:
    config = ConnectionOverrides(sts_endpoint_override=STS_OVERRIDE).apply(wrapper(endpoint_url=ENDPOINT))
    assert config.endpoint_url == ENDPOINT
    assert config.get_service_endpoint_url("batch") == ENDPOINT


def test_the_sts_endpoint_keeps_the_connections_other_service_config() -> None:
    base = wrapper(endpoint_url=ENDPOINT, service_config={"s3": {"bucket_name": "b"}, "sts": {"region_name": "x"}})
    config = ConnectionOverrides(sts_role_arn=ROLE).apply(base)
    assert config.service_config == {"s3": {"bucket_name": "b"}, "sts": {"region_name": "x", "endpoint_url": ENDPOINT}}


def test_no_endpoint_anywhere_leaves_sts_to_the_provider() -> None:
    config = ConnectionOverrides(sts_role_arn=ROLE).apply(wrapper())
    assert "sts" not in config.service_config
    assert config.endpoint_url is None


def test_the_connections_own_sts_endpoint_outranks_its_general_endpoint() -> None:
    base = wrapper(endpoint_url=ENDPOINT, service_config={"sts": {"endpoint_url": STS_OVERRIDE}})
    config = ConnectionOverrides(access_key_id="AKIAEXPLICIT", secret_key_id="explicit-secret").apply(base)
    assert config.get_service_endpoint_url("sts", sts_connection_assume=True) == STS_OVERRIDE


# Assume role


def test_sts_role_arn_assumes_that_role_with_the_default_session_name() -> None:
    config = ConnectionOverrides(sts_role_arn=ROLE).apply(wrapper())
    assert config.role_arn == ROLE
    assert config.assume_role_method == "assume_role"
    assert config.assume_role_kwargs == {"RoleSessionName": "airflow-batch-runner"}


def test_sts_role_options_become_the_assume_role_arguments() -> None:
    overrides = ConnectionOverrides(sts_role_arn=ROLE, sts_role_session_name="nightly-etl",
                                    sts_role_external_id="external-42", sts_role_session_duration=1800)
    config = overrides.apply(wrapper())
    assert config.assume_role_kwargs == {"RoleSessionName": "nightly-etl", "ExternalId": "external-42",
                                         "DurationSeconds": 1800}
    assert type(config.assume_role_kwargs["DurationSeconds"]) is int


def test_sts_role_replaces_the_connections_role_and_its_arguments() -> None:
    base = wrapper(role_arn=CONNECTION_ROLE, assume_role_method="assume_role_with_web_identity",
                   assume_role_kwargs={"RoleSessionName": "connection", "Policy": "{}"})
    config = ConnectionOverrides(sts_role_arn=ROLE).apply(base)
    assert (config.role_arn, config.assume_role_method) == (ROLE, "assume_role")
    assert config.assume_role_kwargs == {"RoleSessionName": "airflow-batch-runner"}
    assert credentials(config)[:2] == ("AKIACONNECTION", "connection-secret")  # the base credentials


def test_sts_options_without_a_role_assume_nothing() -> None:
    overrides = ConnectionOverrides(sts_role_session_name="s", sts_role_external_id="e", sts_role_session_duration=900)
    config = overrides.apply(wrapper())
    assert (config.role_arn, config.assume_role_method, config.assume_role_kwargs) == (None, None, {})


def test_without_sts_role_the_connections_role_is_kept() -> None:
    base = wrapper(role_arn=CONNECTION_ROLE, assume_role_kwargs={"ExternalId": "connection"})
    config = ConnectionOverrides(endpoint_override=OVERRIDE).apply(base)
    assert (config.role_arn, config.assume_role_method) == (CONNECTION_ROLE, "assume_role")
    assert config.assume_role_kwargs == {"ExternalId": "connection"}


# What the overrides leave alone


def test_no_overrides_give_the_connections_values() -> None:
    botocore_config = Config(retries={"max_attempts": 7})
    base = wrapper(region="eu-west-1", botocore_config=botocore_config, aws_session_token="connection-token",
                   role_arn=CONNECTION_ROLE, assume_role_kwargs={"ExternalId": "connection"}, verify=False,
                   service_config={"s3": {"bucket_name": "b"}})
    assert not ConnectionOverrides()
    config = ConnectionOverrides().apply(base)
    assert credentials(config) == credentials(base)
    for field in ("conn_id", "conn_type", "region_name", "botocore_config", "verify", "endpoint_url", "role_arn",
                  "assume_role_method", "assume_role_kwargs", "service_config", "profile_name"):
        assert getattr(config, field) == getattr(base, field), field


@pytest.mark.parametrize(
    "overrides",
    [
        ConnectionOverrides(access_key_id="AKIAEXPLICIT", secret_key_id="explicit-secret"),
        ConnectionOverrides(endpoint_override=OVERRIDE),
        ConnectionOverrides(sts_role_arn=ROLE),
    ],
    ids=["keys", "endpoint", "role"],
)
def test_overrides_keep_the_connections_region_config_verify_and_id(overrides: ConnectionOverrides) -> None:
    botocore_config = Config(retries={"max_attempts": 7})
    base = wrapper(region="eu-west-1", botocore_config=botocore_config, verify="/etc/ca.pem",
                   profile_name="batch")
    config = overrides.apply(base)
    assert config.region_name == "eu-west-1"
    assert config.botocore_config is botocore_config
    assert config.verify == "/etc/ca.pem"
    assert config.conn_id == "batch_aws"
    # Explicit keys replace every credential of the connection, its profile too.
    assert config.profile_name == (None if overrides.access_key_id else "batch")


# Through the hook: the connection Airflow resolves, the overrides on top, shared by the sibling hooks


def test_the_hook_uses_the_connection_as_it_is_without_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_OVERRIDES_NONE", json.dumps(
        {"conn_type": "aws", "login": "AKIACONNECTION", "password": "connection-secret",
         "extra": {"endpoint_url": ENDPOINT, "region_name": "eu-west-1"}}))
    config = BatchRunnerHook(aws_conn_id="overrides_none").conn_config
    assert credentials(config) == ("AKIACONNECTION", "connection-secret", None)
    assert config.endpoint_url == ENDPOINT
    assert config.service_config == {}  # apply() never ran: no STS endpoint added


def test_the_hook_and_its_siblings_apply_the_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_OVERRIDES_SOME", json.dumps(
        {"conn_type": "aws", "login": "AKIACONNECTION", "password": "connection-secret",
         "extra": {"endpoint_url": ENDPOINT, "region_name": "eu-west-1"}}))
    hook = BatchRunnerHook(aws_conn_id="overrides_some", overrides=ConnectionOverrides(
        access_key_id="AKIAEXPLICIT", secret_key_id="explicit-secret", endpoint_override=OVERRIDE, sts_role_arn=ROLE))
    config = hook.conn_config
    assert credentials(config) == ("AKIAEXPLICIT", "explicit-secret", None)
    assert (config.endpoint_url, config.role_arn, config.region_name) == (OVERRIDE, ROLE, "eu-west-1")
    assert hook.s3.conn_config is config
    assert hook.logs.conn_config is config


# Refreshing assumed-role credentials


def _assumed_session(lifetime: float) -> boto3.session.Session:
    """A session holding assumed-role credentials that expire ``lifetime`` seconds from now."""
    expiry = (datetime.now(timezone.utc) + timedelta(seconds=lifetime)).isoformat()
    metadata = {"access_key": "ASIA", "secret_key": "s", "token": "t", "expiry_time": expiry}
    credentials = RefreshableCredentials.create_from_metadata(metadata, lambda: metadata, "sts-assume-role")
    core: Any = botocore.session.get_session()
    core._credentials = credentials  # as the Amazon provider's session factory does
    return boto3.session.Session(botocore_session=core)


def test_botocore_alone_would_refresh_a_fifteen_minute_session_before_every_call() -> None:
    credentials = _assumed_session(900).get_credentials()
    assert isinstance(credentials, RefreshableCredentials)
    assert credentials.refresh_needed()


@pytest.mark.parametrize(
    ("lifetime", "left", "needed"),
    [
        # 15 minutes: refreshed once a third is left, not before every call.
        (900, 900, False), (900, 310, False), (900, 290, True),
        # An hour: botocore's own 15 minutes stand.
        (3600, 3600, False), (3600, 910, False), (3600, 890, True),
    ],
)
def test_refresh_comes_once_a_third_of_a_short_session_is_left(lifetime: float, left: float, needed: bool) -> None:
    session = _assumed_session(left)
    refresh_within_lifetime(session, lifetime)
    credentials = session.get_credentials()
    assert isinstance(credentials, RefreshableCredentials)
    assert credentials.refresh_needed() is needed
