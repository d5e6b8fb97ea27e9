"""``@task.batch_runner``: a TaskFlow function that returns the shell commands of a BatchRunnerOperator.

Registered through ``get_provider_info``'s ``task-decorators``, in the manner of ``@task.bash``: the function
runs in the worker when the task executes (its arguments may be upstream XComArgs, ``expand`` maps it), it
returns one command or a list of them, and these run in the job as ``commands=`` would. They are not rendered
as Jinja: what the function returns holds its arguments' values, data from upstream tasks that may hold
template syntax (``{{ var.value.db_password }}``), and rendering it would let that data read any Variable or
connection. Only the runner's own variables are filled in (``{{ working_dir }}``, ``{{ output_dir }}``,
``{{ bucket_path }}`` and their Kestra spellings); the function takes context values as parameters
(``def cmds(ds, params)``). The decorator's own keywords are templated as the operator's are. Every other
keyword is the operator's own; the XCom is the operator's.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import attr
from airflow.providers.common.compat.sdk import (
    DecoratedOperator,
    TaskDecorator,
    context_merge,
    determine_kwargs,
    task_decorator_factory,
)
from airflow.sdk.bases.decorator import _TaskDecorator

from airflow_batch_runner import layout, validation
from airflow_batch_runner.masking import conceal_credentials, redact
from airflow_batch_runner.operators.batch_runner import BatchRunnerOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

# What the commands are until the function has run (shown in the UI before the task runs).
COMMANDS_PLACEHOLDER = "(returned by the decorated function when the task runs)"
RUNNER_VARIABLE = re.compile(
    r"\{\{\s*(" + "|".join(("working_dir", "output_dir", "bucket_path", *layout.TEMPLATE_ALIASES)) + r")\s*\}\}"
)


def fill_runner_variables(commands: Sequence[str], values: Mapping[str, Any]) -> list[str]:
    """The runner's variables (``{{ output_dir }}``, ...) replaced by their values; nothing else is read as a
    template. A variable without a value (``bucket_path`` without a bucket) becomes empty."""

    def value(match: re.Match[str]) -> str:
        name = layout.TEMPLATE_ALIASES.get(match.group(1), match.group(1))
        found = values.get(name)
        return "" if found is None else str(found)

    return [RUNNER_VARIABLE.sub(value, command) for command in commands]


class _BatchRunnerDecoratedOperator(DecoratedOperator, BatchRunnerOperator):
    """Calls the function for the commands, then runs them as BatchRunnerOperator does."""

    template_fields: Sequence[str] = (*DecoratedOperator.template_fields, *BatchRunnerOperator.template_fields)
    template_fields_renderers: ClassVar[dict[str, str]] = {
        **DecoratedOperator.template_fields_renderers,
        **BatchRunnerOperator.template_fields_renderers,
    }
    custom_operator_name: str = "@task.batch_runner"
    # The rendered-template view shows the commands the function returned, not the placeholder.
    overwrite_rtif_after_execution: bool = True

    def __init__(
        self,
        *,
        python_callable: Callable[..., Any],
        op_args: Collection[Any] | None = None,
        op_kwargs: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if "commands" in kwargs:
            raise TypeError("@task.batch_runner takes its commands from the function's return value, not commands=")
        super().__init__(
            python_callable=python_callable,
            op_args=op_args,
            op_kwargs=op_kwargs,
            commands=[COMMANDS_PLACEHOLDER],
            **kwargs,
        )

    def execute(self, context: Context) -> Any:
        context_merge(context, self.op_kwargs)
        kwargs = determine_kwargs(self.python_callable, self.op_args, context)
        returned = self.python_callable(*self.op_args, **kwargs)
        try:
            commands = validation.check_commands(returned)
        except ValueError as error:
            raise TypeError(
                f"The function of @task.batch_runner must return a non-empty command string or a list of them; "
                f"it returned {returned!r}"
            ) from error
        # Never rendered as Jinja (see the module's docstring): the rendering step put the runner's variables
        # (working_dir, ...) in the context.
        self.commands = fill_runner_variables(commands, context)
        return super().execute(context)

    def _carry(self) -> dict[str, Any]:
        # The function ran in this execution only: the resumed one shows its commands too (rendered templates
        # are written again at its end). Masked, as the rendered-template view masks them.
        return {"commands": [redact(command) for command in self.commands]}

    def _restore(self, carried: Mapping[str, Any]) -> None:
        if carried.get("commands"):
            self.commands = list(carried["commands"])

    def execute_complete(
        self, context: Context, event: dict[str, Any], bucket_path: str | None = None,
        commands: list[str] | None = None,
    ) -> Any:
        # ``commands``: how a trigger deferred by version 0.2 hands them back (newer ones carry them in the event).
        if commands:
            self.commands = list(commands)
        return super().execute_complete(context, event, bucket_path=bucket_path)


@attr.define(slots=False)
class _BatchRunnerTask(_TaskDecorator):
    """The Task SDK's decorated function, with credentials given to ``override()`` concealed too: a mapped
    task's decorator keywords reach the serialized DAG as given, past the operator's ``__init__``."""

    def override(self, **kwargs: Any) -> Any:
        return super().override(**conceal_credentials(kwargs))


def batch_runner_task(python_callable: Callable[..., Any] | None = None, **kwargs: Any) -> TaskDecorator:
    """
    Wrap a function that returns shell commands into a BatchRunnerOperator.

    The keyword arguments are the operator's (``compute_environment_arn``, ``bucket``, ``output_files``, ...).

    :param python_callable: the decorated function.
    """
    kwargs = conceal_credentials(kwargs)
    decorator = task_decorator_factory(decorated_operator_class=_BatchRunnerDecoratedOperator, **kwargs)

    def decorate(function: Callable[..., Any]) -> Any:
        built: Any = decorator(function)
        return _BatchRunnerTask(**{f.name: getattr(built, f.name) for f in attr.fields(type(built)) if f.init})

    return decorate(python_callable) if python_callable is not None else decorate  # type: ignore[return-value]
