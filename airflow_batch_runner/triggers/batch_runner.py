"""BatchRunnerTrigger: waits for one job in the triggerer, through the process's shared poller."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import asdict
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_batch_runner import array_run, task_log
from airflow_batch_runner.backoff import FINAL_READ_RETRY, TRIGGER_FINAL_READ_PATIENCE
from airflow_batch_runner.child_sampling import DEFAULT_LIMIT
from airflow_batch_runner.config import array_log_children
from airflow_batch_runner.hooks.batch_runner import BatchRunnerHook, ConnectionOverrides
from airflow_batch_runner.layout import LOG_GROUP
from airflow_batch_runner.lifecycle import JobWait, Limits, verdict_to_event
from airflow_batch_runner.masking import (
    CREDENTIAL_FIELDS,
    CredentialsUnreadable,
    can_seal,
    mask_credentials,
    mask_secrets,
    redact_value,
    seal,
    unseal,
)
from airflow_batch_runner.outcome import KILL_REASON
from airflow_batch_runner.task_log import HeldLog, MainLines, TaskLogger, show_lines
from airflow_batch_runner.triggers.child_logs import ChildLogs
from airflow_batch_runner.triggers.log_marker import LogMarker
from airflow_batch_runner.triggers.poller import SharedPoller, Update, Watch, shared_poller
from airflow_batch_runner.triggers.task_state import DEFERRED, StateUnknown, current_state
from airflow_batch_runner.triggers.timeouts import within

FINAL_READ_LONGEST_WAIT = 20.0  # s more, at most, for a final read that a healthy reader is getting to


class BatchRunnerTrigger(BaseTrigger):
    """
    Fire one event when the job ends or its deadline passes (the job is then terminated).

    The event is ``{"status": "done", "description": <DescribeJobs entry>, "timed_out": bool,
    "last_lines": [...], "results": <outputs and metrics the main container printed>,
    "held_log": <what the trigger did not log itself once the job's end was known: the worker logs it>}``
    or ``{"status": "error", "message": ...}``.

    ``overrides`` may hold the task's explicit credentials; serialized (what Airflow stores as the trigger's
    kwargs) they leave ``overrides`` and travel in ``sealed_credentials``, a token of Airflow's Fernet key.
    ``secrets`` are what the worker masks (its templates' Variables and connections, which this process never
    read): serialized they travel sealed as ``sealed_secrets``, and the lines and the event are masked with them.
    """

    def __init__(
        self,
        *,
        job_id: str,
        deadline: float | None,
        limit: str,
        poll_interval: float,
        aws_conn_id: str | None,
        region_name: str | None = None,
        verify: bool | str | None = None,
        botocore_config: dict[str, Any] | None = None,
        overrides: dict[str, Any] | None = None,
        delete_inputs_of: str | None = None,
        sealed_credentials: str | None = None,
        max_runnable_time: float | None = None,
        secrets: list[str] | None = None,
        sealed_secrets: str | None = None,
        carry: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.job_id = job_id
        # The operator's own state for its resumed execution, handed back in every event.
        self.carry = dict(carry or {})
        self.max_runnable_time = max_runnable_time
        # The bucket path whose staged inputs go with the job when the task is killed (delete=True).
        self.delete_inputs_of = delete_inputs_of
        self.deadline = deadline
        self.limit = limit
        self.poll_interval = poll_interval
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name
        self.verify = verify
        self.botocore_config = botocore_config
        self.overrides = dict(overrides or {})
        self._sealed = sealed_credentials
        self._unreadable: str | None = None  # why the sealed credentials could not be opened
        if sealed_credentials:
            try:
                self.overrides.update(unseal(sealed_credentials))
            except CredentialsUnreadable as exc:
                self._unreadable = str(exc)
        mask_credentials(self.overrides.get(name) for name in CREDENTIAL_FIELDS)
        self.secrets = list(secrets or [])
        self._sealed_secrets = sealed_secrets
        if sealed_secrets:
            try:
                self.secrets += list(unseal(sealed_secrets))
            except CredentialsUnreadable as exc:
                self._unreadable = str(exc)
        mask_secrets(self.secrets)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "job_id": self.job_id,
                "deadline": self.deadline,
                "limit": self.limit,
                "poll_interval": self.poll_interval,
                "aws_conn_id": self.aws_conn_id,
                "region_name": self.region_name,
                "verify": self.verify,
                "botocore_config": self.botocore_config,
                "overrides": {k: v for k, v in self.overrides.items() if k not in CREDENTIAL_FIELDS},
                "delete_inputs_of": self.delete_inputs_of,
                "sealed_credentials": self._sealed_credentials(),
                "max_runnable_time": self.max_runnable_time,
                "sealed_secrets": self._sealed_secrets_token(),
                "carry": self.carry,
            },
        )

    def _sealed_secrets_token(self) -> str | None:
        """Sealed once, as the credentials; without a Fernet key they are not handed over at all (the worker
        masks what comes back)."""
        if self.secrets and self._sealed_secrets is None and can_seal():
            self._sealed_secrets = seal(self.secrets)
        return self._sealed_secrets

    def _sealed_credentials(self) -> str | None:
        """Sealed once per trigger, so that serializing it again gives the same kwargs."""
        secrets = {name: self.overrides[name] for name in CREDENTIAL_FIELDS if self.overrides.get(name)}
        if secrets and self._sealed is None:
            self._sealed = seal(secrets)
        return self._sealed

    def _hook(self) -> BatchRunnerHook:
        return BatchRunnerHook(
            aws_conn_id=self.aws_conn_id,
            region_name=self.region_name,
            verify=self.verify,
            config=self.botocore_config,
            overrides=ConnectionOverrides(**self.overrides),
            caller=type(self).__name__,
        )

    def _poller_key(self) -> str:
        # Same credentials, region and endpoint share one poller.
        return json.dumps(
            [self.aws_conn_id, self.region_name, self.verify, self.botocore_config, self.overrides],
            sort_keys=True, default=str,
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        if self._unreadable:
            yield TriggerEvent({"status": "error", "job_id": self.job_id, "message": self._unreadable,
                                "carry": self.carry})
            return
        poller = shared_poller(self._poller_key(), self._hook)
        watch = Watch(job_id=self.job_id, interval=self.poll_interval)
        poller.watch(watch)
        self.main = MainLines()
        self._out: TaskLogger = self.log
        self._marker = LogMarker(getattr(self, "task_instance", None), self.job_id)
        began, told = time.time(), False
        wait = JobWait(Limits(self.deadline, self.limit, self.max_runnable_time))
        children: ChildLogs | None = None
        seen: dict[str, Any] | None = None  # the job's last description
        try:
            while True:
                update = await self._next_update(watch, seen)
                seen = update.description or seen
                self._show(update, children)
                if update.error is not None:
                    yield TriggerEvent({"status": "error", "job_id": self.job_id, "message": update.error,
                                        "carry": self.carry})
                    return
                if update.description is None:
                    continue
                reason = None
                if JobWait.wants_child_reason(update.description):
                    reason = await asyncio.to_thread(array_run.waiting_reason, poller.hook, self.job_id)
                step = wait.step(update.description, time.time(), reason)
                state = step.state
                for line in step.log:
                    self.log.info(line)
                if state.array_size and children is None:
                    children = ChildLogs(poller, watch, self.poll_interval, self._children_limit(), self.log)
                if not told and state.log_stream and state.started_at and state.started_at / 1000 < began:
                    told = True  # an earlier instance of this trigger may have shown lines: a revived one repeats them
                    if await self._marker.left_before():
                        self.log.info("Reading the log of job %s from its start: this trigger took over from another "
                                      "instance (a triggerer restart, or a move to another triggerer), so the lines "
                                      "already shown above appear once more", self.job_id)
                if not step.done:
                    if children is not None:
                        children.observe(update.description)
                    continue
                # From here on nothing is logged by the trigger itself: the event carries it (see HeldLog).
                held = self._out = HeldLog(self.log)
                if step.terminate:
                    held.info("%s: terminating AWS Batch job %s", "Deadline passed" if step.verdict.timed_out
                              else "RUNNABLE past max_runnable_time", self.job_id)
                    await asyncio.to_thread(poller.hook.terminate, self.job_id, step.terminate)
                ended = step.terminate is None
                await self._read_last_lines(poller, watch, state.stopped_at if ended else None,
                                            wait_for_ingestion=ended, children=children)
                # Airflow stores the event: whatever came from the container is masked first.
                yield TriggerEvent(redact_value(
                    {
                        "status": "done",
                        "job_id": self.job_id,
                        "description": update.description,
                        # The worker's execute_complete takes this verdict as it is: it never decides again.
                        "verdict": verdict_to_event(step.verdict),
                        "timed_out": step.verdict.timed_out,
                        "stuck_for": step.verdict.stuck_for,
                        "last_lines": self.main.last,
                        "results": self.main.results.as_dict(),
                        "held_log": held.entries,
                        "carry": self.carry,
                    }
                ))
                return
        finally:
            poller.unwatch(watch)
            if children is not None:
                children.forget()

    async def _next_update(self, watch: Watch, seen: dict[str, Any] | None) -> Update:
        """The watch's next update; once the job was described, at its deadline at the latest: the deadline is
        then decided on the last description (a loaded poller's late answer must not stretch the limit)."""
        if self.deadline is None or seen is None:
            return await watch.queue.get()
        try:
            return await within(watch.queue.get(), self.deadline - time.time())
        except asyncio.TimeoutError:
            return Update(description=seen)

    def _log_lines(self, lines: list[str], stream: str | None = None) -> None:
        self.main.show(self._out, lines, stream)

    def _show(self, update: Update, children: ChildLogs | None) -> None:
        """An update's lines: the job's own, or an array child's (prefixed with its index)."""
        if update.lines:
            self._marker.leave()
        if update.child is None:
            self._log_lines(update.lines, update.stream)
            return
        show_lines(self._out, task_log.child_prefix(update.child), update.lines)
        if update.log_end and children is not None:
            children.read_done(update.child)

    def _children_limit(self) -> int:
        """``[batch_runner] array_log_children`` of this triggerer; a bad value is not worth failing a task."""
        try:
            return array_log_children()
        except ValueError as exc:
            self.log.warning("%s; following %d children's lines instead", exc, DEFAULT_LIMIT)
            return DEFAULT_LIMIT

    async def _read_last_lines(
        self, poller: SharedPoller, watch: Watch, stopped_at: int | None, wait_for_ingestion: bool = True,
        children: ChildLogs | None = None,
    ) -> None:
        """The job is over: its remaining lines (an array's: its followed children's), read once CloudWatch
        Logs has them (bounded in time). Past the deadline the read is made at once."""
        allowance = poller.logs.lookback() if wait_for_ingestion else 0.0
        now = time.time()
        not_before = (stopped_at / 1000 if stopped_at else now) + allowance
        give_up_at = max(now, not_before) + TRIGGER_FINAL_READ_PATIENCE
        pending: set[int | None] = set()  # the streams whose final read is to come: None the job's own
        if poller.read_last_lines(watch, not_before, give_up_at):
            pending.add(None)
        if children is not None:
            pending |= children.final_reads(not_before, give_up_at)
        if not pending:
            return  # the job never started a container (or an array: no child followed): no log
        # A read that fails is given up at give_up_at; one still waiting for the budget or for an answer
        # gets a couple of the budget's slots more, and more while CloudWatch Logs is healthy and the
        # reader waits for its turn in the budget or for an answer sent moments ago (a loaded
        # triggerer), up to FINAL_READ_LONGEST_WAIT.
        stop_at = give_up_at + 2.0 / poller.logs.budget.rate
        longest = stop_at + FINAL_READ_LONGEST_WAIT
        problems: dict[int | None, str] = {}
        while pending:
            try:
                update = await within(watch.queue.get(), stop_at - time.time())
            except asyncio.TimeoutError:  # not the builtin TimeoutError before Python 3.11
                waited = time.time()
                if waited < longest and poller.logs.progressing(waited):
                    stop_at = min(longest, waited + FINAL_READ_RETRY)
                    continue
                problems.update(dict.fromkeys(pending, f"no answer from CloudWatch Logs within {waited - now:.1f} s"))
                break
            self._show(update, children)
            if update.log_end:
                pending.discard(update.child)
                if update.log_problem is not None:
                    problems[update.child] = update.log_problem
        if None in problems:
            self._out.warning(
                "Could not read the last lines of job %s's log (%s); all of them are in CloudWatch Logs, "
                "log group %s, stream %s", self.job_id, problems[None], LOG_GROUP, watch.log_stream,
            )
        task_log.warn_unread_children(
            self._out, self.job_id, sorted((index, why) for index, why in problems.items() if index is not None)
        )

    async def on_kill(self) -> None:
        """A user marked the deferred task failed or success, or cleared it: stop the job too. Airflow 3.3 calls
        this as well when the trigger only moved to another triggerer: the job is terminated only when the task
        instance is no longer deferred (see ``triggers.task_state``)."""
        try:
            state = await current_state(self.task_instance)
        except StateUnknown as exc:
            self.log.warning(
                "The trigger was cancelled, and whether its task instance is still deferred is unknown (%s): AWS "
                "Batch job %s is left running. If the task was marked failed or success, or cleared, terminate "
                "the job by hand", exc, self.job_id,
            )
            return
        if state == DEFERRED:
            self.log.info("The trigger moved to another triggerer (its task instance is still deferred), which "
                          "waits on AWS Batch job %s now: the job goes on", self.job_id)
            return
        self.log.info("Task killed while deferred (its task instance is %s now): terminating AWS Batch job %s",
                      state or "cleared", self.job_id)
        if self._unreadable:
            self.log.error("Cannot terminate AWS Batch job %s: %s", self.job_id, self._unreadable)
            return
        hook = self._hook()
        await asyncio.to_thread(hook.terminate, self.job_id, KILL_REASON)
        if self.delete_inputs_of:
            # Logged first: the triggerer gives on_kill 30 s, and a cut-off delete should leave a trace.
            self.log.info("Deleting the staged inputs under %s", self.delete_inputs_of)
            removed = await asyncio.to_thread(array_run.delete_inputs, hook, self.delete_inputs_of)
            self.log.info("Deleted %d staged input file(s)", removed)


def overrides_dict(overrides: ConnectionOverrides) -> dict[str, Any]:
    return {k: v for k, v in asdict(overrides).items() if v is not None}
