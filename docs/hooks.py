"""MkDocs hooks: the parts of the site that are generated from the code when it is built.

A page asks for one with a marker line, replaced on each build:
- ``<!-- generated: configuration -->``: every ``[batch_runner]`` option as ``get_provider_info`` publishes it;
- ``<!-- generated: job single -->`` / ``<!-- generated: job array -->``: the job's containers, their order and
  the shared volume, drawn (Mermaid) from the job definition that ``job_spec`` / ``array_spec`` build;
- ``<!-- generated: exit codes -->`` / ``<!-- generated: exceptions -->``: ``outcome.EXIT_CODES`` and the classes
  of ``airflow_batch_runner.exceptions`` with their docstrings;
- ``<!-- generated: plot triggerer_scale -->``: the triggerer benchmark's figures against N, plotted (matplotlib,
  inline SVG) from ``docs/data/triggerer_scale.json``, which ``bench.triggerer_scale --figures`` writes.
An unknown marker, or a missing script of ``extra_javascript``, fails the build (a warning, and the build is
strict).
"""

from __future__ import annotations

import io
import json
import logging
import re
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
    import inspect

    from airflow_batch_runner import exceptions

    classes = [value for _, value in inspect.getmembers(exceptions, inspect.isclass)
               if value.__module__ == exceptions.__name__]
    return "\n".join(
        f"- `airflow_batch_runner.exceptions.{cls.__name__}` (an `{cls.__mro__[1].__name__}`): "
        f"{' '.join((cls.__doc__ or '').split())}"
        for cls in sorted(classes, key=lambda cls: inspect.getsourcelines(cls)[1])
    )


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
