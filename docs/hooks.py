"""MkDocs hooks: the parts of the site that are generated from the code when it is built.

A page asks for one with a marker line, replaced on each build:
- ``<!-- generated: configuration -->``: every ``[batch_runner]`` option as ``get_provider_info`` publishes it;
- ``<!-- generated: job single -->`` / ``<!-- generated: job array -->``: the job's containers, their order and
  the shared volume, drawn (Mermaid) from the job definition that ``job_spec`` / ``array_spec`` build;
- ``<!-- generated: lifecycle -->``: the task's lifecycle (submit or reattach, wait in the worker or the triggerer,
  each poll's verdict, finish), drawn from the operator's ``execute``, the functions it calls, the branches of
  ``outcome.decide`` and the events of ``BatchRunnerTrigger.run`` (see ``lifecycle_diagram``);
- ``<!-- generated: exit codes -->`` / ``<!-- generated: exceptions -->``: ``outcome.EXIT_CODES`` and the classes
  of ``airflow_batch_runner.exceptions`` with their docstrings;
- ``<!-- generated: plot triggerer_scale -->``: the triggerer benchmark's figures against N, plotted (matplotlib,
  inline SVG) from ``docs/data/triggerer_scale.json``, which ``bench.triggerer_scale --figures`` writes.
An unknown marker, or a missing script of ``extra_javascript``, fails the build (a warning, and the build is
strict).
"""

from __future__ import annotations

import ast
import inspect
import io
import json
import logging
import re
import textwrap
from pathlib import Path
from typing import Any

from airflow_batch_runner import array_spec, job_spec
from airflow_batch_runner.array_spec import ArraySpec
from airflow_batch_runner.get_provider_info import get_provider_info
from airflow_batch_runner.job_spec import JobSpec, Resources

log = logging.getLogger("mkdocs.hooks.batch_runner")
DATA = Path(__file__).resolve().parent / "data"
MARKER = re.compile(r"^<!-- generated: ([\w ]+) -->$", re.MULTILINE)
# A job as a DAG author would write it: one input file, one output file, on Fargate.
EXAMPLE = JobSpec(
    image="ubuntu:24.04", commands=("cp data.txt out.txt",), platform="FARGATE", resources=Resources(1, 2048),
    bucket_path="s3://my-bucket/airflow-batch-runner/<dag>/<run>/<task>/<map index>/<submission>/",
    has_inputs=True, output_patterns=("out.txt",), execution_role_arn="arn:aws:iam::123456789012:role/exec",
)
ARRAY = ArraySpec(size=3, child_inputs=({"item.txt": "a"}, {"item.txt": "b"}, {"item.txt": "c"}))
# What each sidecar moves between S3 and the volume (its command is given at submission, not in the definition).
S3_SIDE = {
    "inputs": ("from", "the run's staged inputs: bucket path inputs/"),
    "child-inputs": ("from", "this child's inputs: bucket path children/&lt;index&gt;/inputs/"),
    "outputs": ("to", "the declared output files and the output dir"),
}


def configuration_table() -> str:
    (section, declared), = get_provider_info()["config"].items()
    rows = [
        f"All options are in the `[{section}]` section of `airflow.cfg` (or `AIRFLOW__{section.upper()}__<OPTION>`). "
        f"{declared['description']}",
        "",
        "| option | type | default | example | since | what it does |",
        "|---|---|---|---|---|---|",
    ]
    for name, option in declared["options"].items():
        default = f"`{option['default']}`" if option["default"] else "(empty)"
        description = " ".join(option["description"].split()).replace("|", "\\|")
        rows.append(f"| `{name}` | {option['type']} | {default} | `{option['example']}` | {option['version_added']} "
                    f"| {description} |")
    return "\n".join(rows)


def resources(container: dict[str, Any]) -> str:
    values = {r["type"]: r["value"] for r in container.get("resourceRequirements", [])}
    return f"{values.get('VCPU', '?')} vCPU, {values.get('MEMORY', '?')} MiB"


def job_diagram(definition: dict[str, Any], title: str) -> str:
    (task,) = definition["ecsProperties"]["taskProperties"]
    containers = task["containers"]
    (volume,) = task["volumes"]
    mounts = {m["containerPath"] for c in containers for m in c.get("mountPoints", [])}
    lines = ["```mermaid", "flowchart LR"]
    lines.append(f'  subgraph job["{title}: one ECS task, {definition["platformCapabilities"][0]}"]')
    lines.append("    direction LR")
    for c in containers:
        image = "the task's image" if c["image"] == EXAMPLE.image else c["image"].rsplit("/", 1)[-1]
        essential = ", essential" if c.get("essential") else ""
        lines.append(f'    {node(c["name"])}["<b>{c["name"]}</b><br/>{image}<br/>{resources(c)}{essential}"]')
    for c in containers:
        for dep in c.get("dependsOn", []):
            lines.append(f'    {node(dep["containerName"])} -->|"{dep["condition"]}"| {node(c["name"])}')
    lines.append(f'    vol[("volume {volume["name"]}<br/>at {", ".join(sorted(mounts))}<br/>'
                 'work/ and output/")]')
    lines.append("  end")
    for c in containers:
        if any(m["sourceVolume"] == volume["name"] for m in c.get("mountPoints", [])):
            lines.append(f"  {node(c['name'])} -.- vol")
        side = S3_SIDE.get(c["name"])
        if side:
            direction, what = side
            s3 = f"s3_{node(c['name'])}"
            lines.append(f'  {s3}[("S3: {what}")]')
            lines.append(f"  {s3} --> {node(c['name'])}" if direction == "from" else f"  {node(c['name'])} --> {s3}")
    lines.append("```")
    return "\n".join(lines)


def triggerer_plot() -> str:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    data = json.loads((DATA / "triggerer_scale.json").read_text(encoding="utf-8"))
    triggers = sorted({row["trigger"] for row in data["rows"]})
    matplotlib.rcParams.update({"svg.hashsalt": "batch-runner", "svg.fonttype": "none", "font.size": 9})
    figure, (calls, delay) = pyplot.subplots(1, 2, figsize=(9, 3.4), layout="constrained")
    for trigger in triggers:
        rows = sorted((row for row in data["rows"] if row["trigger"] == trigger), key=lambda row: row["n"])
        n = [row["n"] for row in rows]
        calls.plot(n, [row["describe_jobs_per_interval"] for row in rows], marker="o", label=trigger)
        line = delay.plot(n, [row["event_delay_max_s"] for row in rows], marker="o", label=f"{trigger}, max")[0]
        delay.plot(n, [row["event_delay_median_s"] for row in rows], marker="o", linestyle="--",
                   color=line.get_color(), label=f"{trigger}, median")
    calls.set(xlabel="N (deferred tasks)", ylabel="DescribeJobs calls per interval", yscale="log",
              title="Batch calls per poll interval")
    delay.axhline(data["interval_s"], color="grey", linewidth=0.8, linestyle=":")
    delay.set(xlabel="N (deferred tasks)", ylabel="seconds", ylim=(0, None),
              title=f"Job end to trigger event (interval {data['interval_s']:g} s, dotted)")
    calls.legend(fontsize=8)
    delay.legend(fontsize=7)
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    pyplot.close(figure)
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg"):]
    return f'<figure markdown="0">{svg}<figcaption>Plotted from <code>docs/data/triggerer_scale.json</code>: ' \
           f'{data["source"]}.</figcaption></figure>'


def exit_codes_table() -> str:
    from airflow_batch_runner.outcome import EXIT_CODES

    rows = ["| last status seen | exit code |", "|---|---|"]
    rows += [f"| {status} | {code} |" for status, code in EXIT_CODES.items()]
    return "\n".join([*rows, "| anything else | -1 |"])


def exceptions_list() -> str:
    from airflow_batch_runner import exceptions

    classes = [value for _, value in inspect.getmembers(exceptions, inspect.isclass)
               if value.__module__ == exceptions.__name__]
    return "\n".join(
        f"- `airflow_batch_runner.exceptions.{cls.__name__}` (an `{cls.__mro__[1].__name__}`): "
        f"{' '.join((cls.__doc__ or '').split())}"
        for cls in sorted(classes, key=lambda cls: inspect.getsourcelines(cls)[1])
    )



# The task's lifecycle, drawn from the code that runs it (``<!-- generated: lifecycle -->``). The nodes are functions;
# an edge is drawn only where the caller's source calls the callee, labelled with the ``if`` it sits under; the
# verdicts are the branches of ``outcome.decide``, the terminations those ``JobWait.step`` ends the job on, the
# events the dicts ``BatchRunnerTrigger.run`` yields. Renaming, adding or dropping one changes the picture; a label
# below for a function the code no longer calls fails the build.
LIFECYCLE_LABELS = {
    "execute": "task starts: <b>execute</b><br/>check the arguments (before any AWS call),<br/>"
               "place the job: compute environment, queue, platform",
    "find_existing_job": "<b>resume.find_existing_job</b><br/>an earlier try's job: active or SUCCEEDED<br/>"
                         "(task state store, else ListJobs by name and run key)",
    "_reattach": "<b>_reattach</b><br/>its own deadline, its bucket path",
    "_submit": "<b>_submit</b><br/>stage inputs, SubmitJob<br/>(definition and queue made only if missing)",
    "_defer": "<b>_defer</b>: free the worker slot",
    "BatchRunnerTrigger": "<b>BatchRunnerTrigger.run</b> in the triggerer<br/>one shared poller per process",
    "_wait_and_finish": "<b>_wait_and_finish</b> in the worker",
    "wait_for_job": "<b>worker_wait.wait_for_job</b><br/>DescribeJobs each interval, a thread follows the log",
    "step": "<b>JobWait.step</b>, each poll<br/>lines to log, <b>outcome.decide</b>",
    "execute_complete": "<b>execute_complete</b><br/>takes the event's verdict, never decides again",
    "_finish": "<b>_finish</b><br/>collect outputs and results, XCom, delete staged inputs",
}


def source_tree(function: Any) -> ast.Module:
    return ast.parse(textwrap.dedent(inspect.getsource(function)))


def definition(function: Any) -> ast.FunctionDef:
    (found,) = source_tree(function).body
    assert isinstance(found, ast.FunctionDef), function
    return found


def code(node: ast.AST) -> str:
    """A condition as the code writes it, made safe for a Mermaid label."""
    text = ast.unparse(node)
    return "".join({'"': "#quot;", "<": "#60;", ">": "#62;"}.get(c, c) for c in text)


def called_names(tree: ast.AST) -> set[str]:
    return {call.func.attr if isinstance(call.func, ast.Attribute) else call.func.id for call in ast.walk(tree)
            if isinstance(call, ast.Call) and isinstance(call.func, (ast.Attribute, ast.Name))}


def calls(caller: Any, callee: str) -> bool:
    return callee in called_names(source_tree(caller))


def verdict_branches(decide: Any) -> list[tuple[str, dict[str, str]]]:
    """``decide``'s ``if <condition>: return Verdict(...)`` branches, in order, then its last return (``"else"``):
    each condition with the verdict's keywords."""
    branches = []
    for statement in definition(decide).body:
        test, body = (code(statement.test), statement.body) if isinstance(statement, ast.If) else ("else", [statement])
        for returned in body:
            if isinstance(returned, ast.Return) and isinstance(returned.value, ast.Call):
                branches.append((test, {k.arg: ast.unparse(k.value) for k in returned.value.keywords if k.arg}))
    return branches


def terminating_fields(step: Any) -> list[str]:
    """The verdict's fields on which ``JobWait.step`` gives a reason to terminate the job with."""
    fields = []
    for node in ast.walk(source_tree(step)):
        if not (isinstance(node, ast.If) and isinstance(node.test, ast.Attribute)):
            continue
        assigns = any(isinstance(t, ast.Name) and t.id == "terminate"
                      for s in node.body if isinstance(s, ast.Assign) for t in s.targets)
        if assigns and ast.unparse(node.test.value) == "verdict":
            fields.append(node.test.attr)
    return fields


def event_statuses(run: Any) -> dict[str, set[str]]:
    """Each ``status`` of the dicts the trigger's ``run`` yields, with the dict's keys."""
    statuses: dict[str, set[str]] = {}
    for node in ast.walk(source_tree(run)):
        if isinstance(node, ast.Dict):
            keys = {k.value for k in node.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)}
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and key.value == "status" and isinstance(value, ast.Constant):
                    statuses.setdefault(str(value.value), set()).update(keys)
    return statuses


def execute_decisions(execute: Any, drawn: set[str]) -> list[tuple[str | None, list[str], list[str]]]:
    """The drawn calls of ``execute`` in order: ``(None, [name], [])`` for a plain call, ``(condition, [called if
    it holds], [called otherwise])`` for an ``if``."""
    stages: list[tuple[str | None, list[str], list[str]]] = []
    for statement in definition(execute).body:
        if isinstance(statement, ast.If):
            then = [n for s in statement.body for n in sorted(called_names(s) & drawn)]
            other = [n for s in statement.orelse for n in sorted(called_names(s) & drawn)]
            if then or other:
                stages.append((code(statement.test), then, other))
        else:
            stages.extend((None, [name], []) for name in sorted(called_names(statement) & drawn))
    return stages


def lifecycle_diagram() -> str:
    from airflow_batch_runner import lifecycle, outcome
    from airflow_batch_runner.operators import worker_wait
    from airflow_batch_runner.operators.batch_runner import BatchRunnerOperator
    from airflow_batch_runner.triggers.batch_runner import BatchRunnerTrigger

    operator = BatchRunnerOperator
    labels = dict(LIFECYCLE_LABELS)
    lines = ["```mermaid", "flowchart TD"]
    drawn: set[str] = set()

    def box(name: str, shape: str = '["{}"]') -> str:
        if name not in drawn:
            drawn.add(name)
            label = labels.get(name) or f"<b>{name}</b>"
            lines.append(f"  {name}{shape.format(label)}")
        return name

    def edge(a: str, b: str, label: str | None = None) -> None:
        lines.append(f'  {a} -->|"{label}"| {b}' if label else f"  {a} --> {b}")

    # execute, as a story: its calls to these functions, in order, and the ``if``s that choose between them.
    previous: list[tuple[str, str | None]] = [(box("execute", '(["{}"])'), None)]
    in_execute = {"find_existing_job", "_reattach", "_submit", "_defer", "_wait_and_finish"}
    for index, (condition, then, other) in enumerate(execute_decisions(operator.execute, in_execute)):
        if condition is None:
            for a, label in previous:
                edge(a, box(then[0]), label)
            previous = [(then[0], None)]
            continue
        decision = f"if{index}"
        lines.append(f'  {decision}{{"if {condition}"}}')
        for a, label in previous:
            edge(a, decision, label)
        for name in then:
            edge(decision, box(name), "yes")
        for name in other:
            edge(decision, box(name), "no")
        # A branch that defers leaves execute (Airflow's ``defer`` raises TaskDeferred); without an else, "no" goes on.
        previous = [(n, None) for n in then + other if not calls(getattr(operator, n), "defer")]
        if not other:
            previous.append((decision, "no"))
    # Who waits, and who takes each poll's step.
    waits: tuple[tuple[Any, Any], ...] = (
        (operator._defer, BatchRunnerTrigger), (operator._wait_and_finish, worker_wait.wait_for_job))
    for caller, callee in waits:
        if caller.__name__ in drawn and calls(caller, callee.__name__):
            edge(caller.__name__, box(callee.__name__))
    for waiter, name in ((BatchRunnerTrigger.run, "BatchRunnerTrigger"), (worker_wait.wait_for_job, "wait_for_job")):
        if name in drawn and calls(waiter, "step"):
            edge(name, box("step"))
    # Each poll's verdict: the branches of outcome.decide.
    terminating = terminating_fields(lifecycle.JobWait.step)
    ends = []
    for index, (condition, verdict) in enumerate(verdict_branches(outcome.decide)):
        shown = ", ".join(f"{k}={v}" for k, v in verdict.items() if k != "exit_code" or len(verdict) == 1)
        name = f"verdict{index}"
        lines.append(f'  {name}["Verdict({shown})"]')
        edge("step", name, condition)
        if verdict.get("done") == "False":
            edge(name, "step", "next poll")
            continue
        if any(verdict.get(field) not in (None, "False", "None") for field in terminating):
            if "terminate" not in drawn:
                drawn.add("terminate")
                lines.append('  terminate["TerminateJob, with a reason naming the limit"]')
            edge(name, "terminate")
            name = "terminate"
        if name not in ends:
            ends.append(name)
    lines.append('  over{"the wait is over: where?"}')
    for name in ends:
        edge(name, "over")
    if calls(operator._wait_and_finish, "_finish"):
        edge("over", box("_finish"), "in the worker")
    statuses = event_statuses(BatchRunnerTrigger.run)
    for status, keys in sorted(statuses.items()):
        if "verdict" in keys:
            edge("over", box("execute_complete"), f"in the triggerer: event status #quot;{status}#quot; and verdict")
        else:
            edge("BatchRunnerTrigger", box("execute_complete"), f"event status #quot;{status}#quot;")
    if calls(operator.execute_complete, "_finish"):
        edge("execute_complete", box("_finish"))
    (returned,) = definition(outcome.Verdict.__dict__["succeeded"].fget).body
    assert isinstance(returned, ast.Return) and returned.value is not None
    lines.append('  ok(["task succeeds: XCom return_value"])')
    lines.append('  failed(["task fails: BatchJobFailed, the mapped exit code"])')
    edge("_finish", "ok", f"verdict.succeeded: {code(returned.value)}")
    edge("_finish", "failed", "not succeeded")
    for node in ast.walk(source_tree(operator.execute_complete)):
        if isinstance(node, ast.If) and any(isinstance(s, ast.Raise) for s in node.body):
            (raised,) = [s for s in node.body if isinstance(s, ast.Raise)]
            name = ast.unparse(raised.exc.func) if isinstance(raised.exc, ast.Call) else "an error"
            lines.append(f'  error(["task fails: {name}, with the message"])')
            edge("execute_complete", "error", code(node.test))
    unused = set(LIFECYCLE_LABELS) - drawn
    if unused:
        log.warning("the lifecycle diagram no longer draws %s: the code changed; update LIFECYCLE_LABELS",
                    sorted(unused))
    lines.append("```")
    return "\n".join(lines)


def node(name: str) -> str:
    return name.replace("-", "_")


def generated(kind: str) -> str:
    if kind == "configuration":
        return configuration_table()
    if kind == "job single":
        return job_diagram(job_spec.build_job_definition(EXAMPLE), "one job")
    if kind == "exit codes":
        return exit_codes_table()
    if kind == "exceptions":
        return exceptions_list()
    if kind == "plot triggerer_scale":
        return triggerer_plot()
    if kind == "lifecycle":
        return lifecycle_diagram()
    if kind == "job array":
        return job_diagram(array_spec.build_job_definition(EXAMPLE, ARRAY), "each child of an array job")
    log.warning("unknown generated block %r", kind)
    return ""


def on_config(config: Any, **_: Any) -> Any:
    # Missing, the theme would fetch Mermaid from a CDN: the diagrams would need the network.
    for script in config["extra_javascript"]:
        if not (Path(config["docs_dir"]) / str(script)).exists():
            log.warning("%s is missing: `make docs` fetches it", script)
    return config


def on_page_markdown(markdown: str, **_: Any) -> str:
    return MARKER.sub(lambda m: generated(m[1].strip()), markdown)
