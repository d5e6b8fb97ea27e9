"""A secret the job prints, in any form a program serialises it, is masked wherever it goes: the task log,
the XCom's outputs, metrics and file names, the stored trigger event; and a triggerer that never saw the
task's templates masks it too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from typing import Any

import pytest
from cryptography.fernet import Fernet

from tests import fernet
from tests.e2e.conftest import AwsWorld, run_dag
from tests.e2e.test_failures import task_dag
from tests.e2e.test_secrets import _database_text

PY = "python3 -c"
COMMANDS = [
    # Printed plain, as JSON (escaped, ASCII and UTF-8) and as Python's repr.
    f"""{PY} 'import json,os; s=os.environ["PW"]; print(s); print(json.dumps(s)); """
    """print(json.dumps({"pw": s}, ensure_ascii=False)); print(repr(s))'""",
    # A result line and the outputs file, with the secret in keys, values, metric names and tags.
    f"""{PY} 'import json,os; print("::" + json.dumps({{"outputs": {{"line": os.environ["PW"]}}}}) + "::")'""",
    f"""{PY} 'import json,os; s=os.environ["PW"]; """
    """json.dump({"outputs": {"file": s, s: 1, "nested": [{"x": s}]}, """
    """"metrics": [{"name": s, "value": 1, "tags": {"t": s}}]}, open(os.environ["OUTPUTS_FILE"], "w"))'""",
    # A file named after it.
    'echo data > "$OUTPUT_DIR/$PW.txt"',
]


def _forms(secret: str) -> list[str]:
    return [secret, json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1], repr(secret)[1:-1]]


def _secret(monkeypatch: pytest.MonkeyPatch) -> str:
    # A sensitive Variable name: Airflow masks its value once a template reads it.
    secret = f'pä"ss-wörd-{uuid.uuid4().hex[:10]}'
    monkeypatch.setenv("AIRFLOW_VAR_ABR_DB_PASSWORD", secret)
    return secret


@pytest.mark.parametrize("deferrable", [False, True], ids=["worker", "deferred"])
def test_a_printed_secret_is_masked_in_the_log_the_xcom_and_the_database(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, deferrable: bool
) -> None:
    secret = _secret(monkeypatch)
    dag = task_dag(f"result_secrets_{deferrable}", deferrable=deferrable,
                   env={"PW": "{{ var.value.abr_db_password }}"}, commands=COMMANDS)
    with fernet.fernet_key(Fernet.generate_key().decode()):
        result = run_dag(dag, capsys)
    assert result.state == "success", result.output[-3000:]
    xcom = result.xcom
    assert xcom is not None
    assert xcom["outputs"] == {"line": "***", "file": "***", "***": 1, "nested": [{"x": "***"}]}
    assert xcom["metrics"] == [{"name": "***", "type": "counter", "value": 1, "tags": {"t": "***"}}]
    assert "***.txt" in xcom["output_files"]
    shown = json.dumps(xcom) + json.dumps(xcom, ensure_ascii=False)
    tables = _database_text()
    leaks = {("xcom", form) for form in _forms(secret) if form in shown}
    leaks |= {("task log", form) for form in _forms(secret) if form in result.output}
    leaks |= {(table, form) for table, text in tables.items() for form in _forms(secret) if form in text}
    assert leaks == set()
    assert result.output.count("[main] ***") >= 1  # the plain line was shown, masked
    assert '[main] "***"' in result.output  # and its JSON spelling


RUN_STORED_TRIGGER = """
import asyncio, json, sys
from tests.e2e.test_secrets import _as_the_triggerer_loads_it
from tests.e2e.test_trigger import _first_event
trigger = _as_the_triggerer_loads_it(sys.argv[1])
print("EVENT " + json.dumps(asyncio.run(_first_event(trigger)), ensure_ascii=False), flush=True)
"""


def test_a_triggerer_process_masks_with_the_secrets_the_worker_sealed_for_it(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = _secret(monkeypatch)
    dag = task_dag("result_secrets_triggerer", deferrable=True, env={"PW": "{{ var.value.abr_db_password }}"},
                   commands=COMMANDS)
    key = Fernet.generate_key().decode()
    with fernet.fernet_key(key):
        result = run_dag(dag, capsys)
    assert result.state == "success", result.output[-3000:]
    assert result.xcom is not None
    # The stored trigger, run again by a process that never rendered the task (as another triggerer would).
    env = {**os.environ, "AIRFLOW__CORE__FERNET_KEY": key}
    env.pop("AIRFLOW_VAR_ABR_DB_PASSWORD")
    ran = subprocess.run([sys.executable, "-c", RUN_STORED_TRIGGER, result.xcom["job_id"]], env=env,
                         capture_output=True, text=True, timeout=120, cwd=os.getcwd())
    assert ran.returncode == 0, ran.stderr[-3000:]
    (event_line,) = [line for line in ran.stdout.splitlines() if line.startswith("EVENT ")]
    event: dict[str, Any] = json.loads(event_line[len("EVENT "):])
    assert event["status"] == "done"
    assert event["results"]["outputs"] == {"line": "***"}
    everything = ran.stdout + ran.stderr
    assert "[main] ***" in everything  # the lines were read and logged there
    assert [form for form in _forms(secret) if form in everything] == []
