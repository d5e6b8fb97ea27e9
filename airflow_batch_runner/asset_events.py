"""Airflow asset events for the files a job wrote, through the ``AssetAlias`` entries of the task's ``outlets``.

A task declares ``outlets=[AssetAlias("name")]`` (the Airflow way to say "this task makes assets known only at run
time"); when its job succeeds, each alias gets one event per output file: the file's ``s3://`` URI as the asset,
the job's id, name and the file's output name in the event's extra. An array job's event is its manifest (one
object naming every child's files): at 10,000 children, an event per file would add tens of thousands of assets
and events to Airflow's database on every run. A DAG scheduled on the alias (``schedule=AssetAlias("name")``)
runs once the events are in, and reads the URIs from ``triggering_asset_events``.

``events`` is pure (the XCom in, the URIs and extras out); ``emit`` talks to the task's context.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from airflow_batch_runner.task_log import TaskLogger


def events(result: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The (URI, extra) of each asset event a succeeded job's XCom ``result`` makes."""
    job = {"job_id": result.get("job_id"), "job_name": result.get("job_name")}
    if "array_size" in result:
        if not result.get("manifest"):
            return []
        extra = {**job, "array_size": result["array_size"], "succeeded": result.get("succeeded"),
                 "failed": result.get("failed")}
        return [(str(result["manifest"]), extra)]
    files = result.get("output_files") or {}
    return [(str(uri), {**job, "output": name}) for name, uri in sorted(files.items())]


def emit(context: Mapping[str, Any], outlets: Iterable[Any], result: Mapping[str, Any], log: TaskLogger) -> int:
    """Add the events of ``result`` to every ``AssetAlias`` in ``outlets``; how many events were added. A URI that
    Airflow would change (a ``?`` or ``#`` in a file name, more than 1,500 characters) is left out with a warning:
    an event for another URI than the file's would send a downstream DAG to the wrong object."""
    from airflow.sdk import Asset, AssetAlias

    aliases = [outlet for outlet in outlets if isinstance(outlet, AssetAlias)]
    if not aliases:
        return 0

    assets = []
    for uri, extra in events(result):
        try:
            asset = Asset(uri=uri)
        except ValueError as error:
            log.warning("No asset event for %s: %s", uri, error)
            continue
        if asset.uri != uri:
            log.warning("No asset event for %s: Airflow reads that URI as %s (a '?' or '#' in the name)", uri,
                        asset.uri)
            continue
        assets.append((asset, extra))
    accessors = context["outlet_events"]
    for alias in aliases:
        for asset, extra in assets:
            accessors[alias].add(asset, extra=extra)
    if assets:
        log.info("Asset events: %d file(s) through %s", len(assets), ", ".join(repr(a.name) for a in aliases))
    return len(assets) * len(aliases)
