"""One step to give the triggerer AWS Batch's events: ``python -m airflow_batch_runner.event_setup``.

Creates (or updates) the SQS queue, its dead-letter queue, the queue's access policy for EventBridge and the
EventBridge rule for the Batch events of the given job queues, then prints the airflow.cfg lines to add.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from airflow_batch_runner.hooks.event_queue import EventQueueSetup

DEFAULT_NAME = "batch-runner-events"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m airflow_batch_runner.event_setup", description=__doc__)
    parser.add_argument("--job-queue", action="append", required=True, metavar="NAME_OR_ARN",
                        help="a job queue whose jobs' events the triggerer reads (repeat for several)")
    parser.add_argument("--name", default=DEFAULT_NAME,
                        help=f"the SQS queue's and the rule's name (default {DEFAULT_NAME}; the DLQ is NAME-dlq)")
    parser.add_argument("--aws-conn-id", default="aws_default", help="the Airflow connection to use")
    parser.add_argument("--region", default=None, help="the AWS Region (default: the connection's)")
    args = parser.parse_args(argv)
    try:
        made = EventQueueSetup(args.aws_conn_id, args.region).ensure(args.name, args.job_queue)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"Rule {made.rule_arn} sends the Batch events of {', '.join(made.job_queues)} to {made.queue_arn} "
          f"(dead-letter queue {made.dead_letter_url}). Add to airflow.cfg of the triggerers:\n")
    print("[batch_runner]")
    print(f"events_queue_url = {made.queue_url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
