"""No credential value is persisted in clear anywhere Airflow keeps state: every table of the metadata
database and the task log (what dag.test() prints, worker and triggerer lines; and any log file Airflow
wrote), on the worker path and on the deferred (triggerer) path, whose stored trigger row a triggerer
with the same Fernet key turns back into a working wait."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from airflow_batch_runner.triggers.batch_runner import BatchRunnerTrigger
from tests import fernet
from tests.e2e.conftest import AwsWorld, run_dag
from tests.e2e.test_failures import Source, task_dag
from tests.e2e.test_trigger import _first_event

# Distinctive values, in the environment only: the DAG file (which Airflow keeps in its dag_code table) reads
# them through Variable templates, or from os.environ at parse time.
SECRETS = {
    "access_key_id": "AKIAH9ASCANNEDKEY777",
    "secret_key_id": "h9a-secret-key-scanned-in-every-table",
    "session_token": "h9a-session-token-scanned-in-every-table",
    "sts_role_external_id": "h9a-external-id-scanned-in-every-table",
}


def _database_text() -> dict[str, str]:
    from airflow.configuration import conf

    url = conf.get("database", "sql_alchemy_conn")
    assert url.startswith("sqlite:///"), url
    found = {}
    with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        assert "trigger" in tables and "rendered_task_instance_fields" in tables
        for table in tables:
            rows = db.execute(f'SELECT * FROM "{table}"').fetchall()
            found[table] = "\n".join(
                " ".join(v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in row) for row in rows
            )
    return found


def _log_files_text() -> str:
    from airflow.configuration import conf

    folder = Path(conf.get("logging", "base_log_folder"))
    return "\n".join(p.read_text(errors="replace") for p in folder.rglob("*") if p.is_file())


def _as_the_triggerer_loads_it(job_id: str) -> BatchRunnerTrigger:
    """The job's trigger, built from its stored row the way Airflow's triggerer builds it."""
    from airflow.models.trigger import Trigger
    from airflow.utils.session import create_session

    try:
        from airflow.serialization.decoders import smart_decode_trigger_kwargs as decode
    except ImportError:  # Airflow before 3.2 hands the kwargs over as decrypted
        def decode(value: Any) -> Any:
            return value

    with create_session() as session:
        classpath = BatchRunnerTrigger(job_id="", deadline=None, limit="", poll_interval=1, aws_conn_id=None
                                       ).serialize()[0]
        for row in session.query(Trigger).filter(Trigger.classpath == classpath):
            kwargs = {k: decode(v) for k, v in Trigger._decrypt_kwargs(row.encrypted_kwargs).items()}
            if kwargs["job_id"] == job_id:
                return BatchRunnerTrigger(**kwargs)
    raise AssertionError(f"no stored trigger for job {job_id}")


def _trigger_rows() -> int:
    return _database_text()["trigger"].count("BatchRunnerTrigger")


@pytest.mark.parametrize(("deferrable", "fernet_key", "mapped"),
                         [(False, True, False), (False, True, True), (True, True, False), (True, False, False)],
                         ids=["worker", "worker-mapped", "deferred", "deferred-without-fernet-key"])
def test_no_credential_is_stored_in_clear_in_any_table_or_log(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, deferrable: bool,
    fernet_key: bool, mapped: bool,
) -> None:
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "sts:AssumeRole"}]}
    role = aws.client("iam").create_role(RoleName="abr-secrets", AssumeRolePolicyDocument=json.dumps(trust))
    for name, value in SECRETS.items():
        monkeypatch.setenv(f"AIRFLOW_VAR_ABR_{name.upper()}", value)
    # Most come from templates; the access key id is a plain value the DAG file reads from the environment.
    templated: dict[str, Any] = {name: f"{{{{ var.value.abr_{name} }}}}" for name in SECRETS}
    templated["access_key_id"] = Source('os.environ["AIRFLOW_VAR_ABR_ACCESS_KEY_ID"]')
    # Mapped, the arguments given to partial() are the ones Airflow serializes.
    commands = {"commands": [["echo ran"]]}
    dag = task_dag(
        f"secrets_{deferrable}_{fernet_key}_{mapped}", preamble="import os", deferrable=deferrable, bucket=None,
        endpoint_override=aws.url, aws_conn_id=None, region_name="us-east-1", sts_role_arn=role["Role"]["Arn"],
        **templated, **({"expand": commands} if mapped else {"commands": ["echo ran"]}),
    )
    triggers_before = _trigger_rows()
    with fernet.fernet_key(Fernet.generate_key().decode() if fernet_key else ""):
        result = run_dag(dag, capsys)
        assert result.state == "success", result.output[-3000:]
        assert result.xcom is not None
        if deferrable and fernet_key:
            # What a triggerer (with the same key) makes of the stored row: the credentials, and a working wait.
            trigger = _as_the_triggerer_loads_it(result.xcom["job_id"])
            assert {name: trigger.overrides.get(name) for name in SECRETS} == SECRETS
            event = asyncio.run(_first_event(trigger))
            assert (event["status"], event["description"]["status"]) == ("done", "SUCCEEDED")
    tables = _database_text()
    assert dag.dag_id in tables["dag_run"]
    # A deferral goes through the execution API, which stores the trigger's kwargs; without a Fernet key the
    # worker waits for the job itself.
    assert _trigger_rows() - triggers_before == (1 if deferrable and fernet_key else 0)
    if deferrable and not fernet_key:
        assert "[core] fernet_key is not set" in result.output
        assert "waiting in the worker instead" in result.output
    leaks = {(table, name) for table, text in tables.items() for name, value in SECRETS.items() if value in text}
    leaks |= {("log files", name) for name, value in SECRETS.items() if value in _log_files_text()}
    leaks |= {("task output", name) for name, value in SECRETS.items() if value in result.output}
    assert leaks == set()
