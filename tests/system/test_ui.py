"""The path a user takes in the browser: the Airflow 3 UI, driven by a real Chromium through Playwright.

Log in, trigger ``container_with_input_files`` with the ``file`` param typed into the trigger form, watch
the run succeed, then read the task instance's XCom (``output_files``), its rendered templates and the
operator's "Batch Job Details" extra link. The output file in S3 must hold the text typed into the form.

The browser may only talk to this machine: every request elsewhere is aborted (the AWS console is
unreachable anyway; the extra link's target is read, never followed). Screenshots go to
``$ABR_SCREENSHOTS`` or ``build/screenshots/``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Route, expect, sync_playwright
from playwright.sync_api import Error as PlaywrightError

from tests.system.cluster import ROOT, Cluster
from tests.system.conftest import World

pytestmark = [pytest.mark.system, pytest.mark.timeout(480)]

CHROMIUM = "/usr/bin/chromium"
# The network is closed: no component updates, sync, QUIC or first-run fetches.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]
DAG_ID = "container_with_input_files"
PARAM_TITLE = "Input file"
PARAM_DESCRIPTION = "Content of data.txt, staged into the container's working directory."
PARAM_DEFAULT = "Hello from Airflow\n"
COMMAND = "cp /airflow-batch/work/data.txt /airflow-batch/work/out.txt"
UI_TIMEOUT_MS = 60_000  # a page or a widget to show up (2 cores, other jobs may run)
RUN_TIMEOUT_S = 240  # the run, from trigger to a terminal state
LOCAL = re.compile(r"^https?://(127\.0\.0\.1|localhost)(:\d+)?(/|$)")


def screenshot_dir() -> Path:
    directory = Path(os.environ.get("ABR_SCREENSHOTS") or ROOT / "build" / "screenshots")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "ui-failure.png").unlink(missing_ok=True)  # from an earlier failed run
    return directory


@pytest.fixture
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing (apt-get install chromium); the UI test needs a browser")
    expect.set_options(timeout=UI_TIMEOUT_MS)  # for every expect(); Playwright's default is 5 s
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            try:
                yield browser
            finally:
                browser.close()
    finally:
        expect.set_options(timeout=None)


def local_context(browser: Browser, url: str, blocked: list[str]) -> BrowserContext:
    context = browser.new_context(viewport={"width": 1400, "height": 1200})
    context.set_default_timeout(UI_TIMEOUT_MS)
    # The XCom view's "Copy" button is how the test reads a value exactly (the viewer wraps long lines).
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=url)

    def guard(route: Route) -> None:
        if LOCAL.match(route.request.url):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    context.route("**/*", guard)
    return context


@contextlib.contextmanager
def browsing(browser: Browser, airflow: Cluster, directory: Path) -> Iterator[Page]:
    """A page of a fresh local-only browser context; a screenshot when what runs in it fails."""
    blocked: list[str] = []
    context = local_context(browser, airflow.url, blocked)
    page = context.new_page()
    try:
        yield page
    except Exception:
        with contextlib.suppress(PlaywrightError):
            save(page, directory, "failure")
        raise
    finally:
        context.close()
        print(f"requests blocked (off this machine): {blocked}")


def save(page: Page, directory: Path, name: str) -> None:
    path = directory / f"ui-{name}.png"
    page.screenshot(path=str(path))
    print(f"screenshot: {path}")


def log_in(page: Page, airflow: Cluster) -> None:
    page.goto(f"{airflow.url}/")
    expect(page).to_have_url(re.compile(r"/auth/login"), timeout=UI_TIMEOUT_MS)  # not logged in yet
    expect(page.get_by_role("heading", name="Sign into Airflow")).to_be_visible()
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(airflow.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).not_to_have_url(re.compile(r"/auth/login"), timeout=UI_TIMEOUT_MS)
    expect(page.get_by_role("button", name="User")).to_be_visible()


def trigger_from_form(page: Page, run_id: str, content: str, directory: Path) -> None:
    page.get_by_role("button", name="Trigger Dag").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("heading", name=re.compile(rf"Trigger Dag\s+-\s+{DAG_ID}"))).to_be_visible()

    # A known run id, so the test finds its run whatever else is running.
    dialog.get_by_role("button", name="Advanced Options").click()
    dialog.get_by_label("Run ID").fill(run_id)

    params = dialog.get_by_role("button", name="Run Parameters")
    if params.get_attribute("aria-expanded") != "true":  # the accordion shows one section at a time
        params.click()
    expect(params).to_have_attribute("aria-expanded", "true")
    # The param's form field: its title labels the group, its description describes the text box.
    field = dialog.get_by_role("group").filter(has_text=PARAM_TITLE).get_by_role("textbox")
    expect(field).to_have_count(1)
    expect(field).to_have_value(PARAM_DEFAULT)
    expect(field).to_have_accessible_description(PARAM_DESCRIPTION)
    expect(dialog.get_by_text(PARAM_DESCRIPTION, exact=True)).to_be_visible()
    assert field.evaluate("el => el.tagName") == "TEXTAREA", "a multiline param is edited in a text area"
    field.fill(content)
    expect(field).to_have_value(content)
    save(page, directory, "1-trigger-form")

    dialog.get_by_role("button", name="Trigger", exact=True).click()
    # The UI goes to the new run's page.
    page.wait_for_url(re.compile(rf"/dags/{DAG_ID}/runs/{re.escape(run_id)}/?$"), timeout=UI_TIMEOUT_MS)
    expect(dialog).to_be_hidden()


def wait_for_run_end(page: Page, run_id: str) -> str:
    """The state in the run page's header once it is terminal. The page polls while the run is active;
    should it stop, a reload now and then gets the news."""
    badge = page.get_by_role("heading", name=run_id, exact=True).locator("xpath=..").get_by_test_id("state-badge")
    terminal = re.compile(r"^\s*(Success|Failed)\s*$")
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while True:
        try:
            expect(badge).to_have_text(terminal, timeout=30_000)
            return badge.inner_text().strip()
        except AssertionError:
            if time.monotonic() > deadline:
                raise AssertionError(f"run {run_id} shows no terminal state after {RUN_TIMEOUT_S} s") from None
            page.reload()


def test_ui_trigger_form_param_to_output_file_xcom_and_extra_link(
    airflow: Cluster, world: World, browser: Browser
) -> None:
    airflow.wait_for_dag(DAG_ID)
    directory = screenshot_dir()
    tag = uuid.uuid4().hex[:10]
    run_id = f"ui_{tag}"
    content = f"typed into the trigger form {tag}\nsecond line, with a comma\n\nafter a blank line\n"
    with browsing(browser, airflow, directory) as page:
        log_in(page, airflow)

        # The DAG, from the list of DAGs.
        page.get_by_role("link", name="Dags", exact=True).click()
        page.get_by_role("link", name=DAG_ID, exact=True).click()
        expect(page).to_have_url(re.compile(rf"/dags/{DAG_ID}/?$"))
        expect(page.get_by_role("heading", name=DAG_ID, exact=True)).to_be_visible()

        trigger_from_form(page, run_id, content, directory)

        assert wait_for_run_end(page, run_id) == "Success"
        # The grid shows the task instance of this run, and the run's task table says it succeeded.
        grid_cell = page.get_by_test_id(f"grid-{run_id}-shell")
        expect(grid_cell).to_be_visible()
        ti_row = page.get_by_role("row").filter(has=page.get_by_role("cell", name="shell", exact=True))
        expect(ti_row.get_by_role("cell", name="Success", exact=True)).to_be_visible()
        save(page, directory, "2-run-succeeded")

        # The task instance, from the grid.
        grid_cell.click()
        expect(page).to_have_url(re.compile(rf"/dags/{DAG_ID}/runs/{re.escape(run_id)}/tasks/shell/?$"))
        expect(page.get_by_role("heading", name="shell", exact=True)).to_be_visible()

        # Its XCom: the return value names the output file's S3 URI.
        page.get_by_role("link", name="Storage", exact=True).click()
        page.get_by_role("link", name="XCom", exact=True).click()
        expect(page).to_have_url(re.compile(r"/tasks/shell/xcom/?$"))
        xcom_row = page.get_by_role("row").filter(has=page.get_by_role("cell", name="return_value", exact=True))
        expect(xcom_row).to_have_count(1)
        page.get_by_role("button", name="Expand all extra JSON").click()
        for shown in ('"output_files"', '"out.txt"', "s3://"):
            expect(xcom_row).to_contain_text(shown)
        xcom_row.scroll_into_view_if_needed()
        xcom_row.get_by_role("button", name="Copy to clipboard").click()
        xcom = json.loads(page.evaluate("navigator.clipboard.readText()"))
        assert xcom["status"] == "SUCCEEDED", xcom
        uri = xcom["output_files"]["out.txt"]
        assert re.fullmatch(r"s3://[^/]+/.+/out\.txt", uri), uri
        # The viewer wraps long strings: compare with the whitespace taken out.
        assert uri in re.sub(r"\s+", "", xcom_row.inner_text()), "the URI copied is not the one shown"
        save(page, directory, "3-xcom")

        # The operator's extra link, on the task instance's details: read its target, never follow it.
        page.get_by_role("link", name="Details", exact=True).click()
        expect(page.get_by_role("heading", name="Extra Links")).to_be_visible()
        link = page.get_by_role("link", name="Batch Job Details", exact=True)
        expect(link).to_have_count(1)
        href = link.get_attribute("href") or ""
        job_id = xcom["job_id"]
        assert job_id and job_id in href, (job_id, href)
        assert href == f"https://console.aws.amazon.com/batch/home?region=us-east-1#jobs/detail/{job_id}", href
        save(page, directory, "4-extra-links")

        # The rendered templates: the commands as sent, and the input file as typed.
        page.get_by_role("link", name="Rendered Templates", exact=True).click()
        commands = page.get_by_role("row").filter(has=page.get_by_role("cell", name="commands", exact=True))
        expect(commands).to_contain_text(f'"{COMMAND}"')
        inputs = page.get_by_role("row").filter(has=page.get_by_role("cell", name="input_files", exact=True))
        expect(inputs).to_contain_text(f'"data.txt": {json.dumps(content)}')
        save(page, directory, "5-rendered-templates")

    # The file the container wrote is the text typed into the form, byte for byte.
    assert world.read(uri) == content
    # Same run as the REST API sees it.
    assert airflow.xcom(DAG_ID, run_id, "shell")["output_files"]["out.txt"] == uri


TASKFLOW_DAG = "taskflow"


def test_ui_taskflow_decorator_mapped_instances_show_the_commands_their_function_returned(
    airflow: Cluster, world: World, browser: Browser
) -> None:
    """``@task.batch_runner`` mapped over an upstream task's words, deferred: each mapped instance's rendered
    templates show the commands its function returned (not the placeholder), and its XCom is the operator's."""
    airflow.wait_for_dag(TASKFLOW_DAG)
    directory = screenshot_dir()
    run_id = airflow.trigger(TASKFLOW_DAG, {"words": ["pear", "banana"]})
    assert airflow.wait_for_run(TASKFLOW_DAG, run_id) == "success"
    with browsing(browser, airflow, directory) as page:
        log_in(page, airflow)
        for index, word in enumerate(["pear", "banana"]):
            page.goto(f"{airflow.url}/dags/{TASKFLOW_DAG}/runs/{run_id}/tasks/count/mapped/{index}")
            page.get_by_role("link", name="Rendered Templates", exact=True).click()
            commands = page.get_by_role("row").filter(has=page.get_by_role("cell", name="commands", exact=True))
            expect(commands).to_contain_text(f"printf %s {word} | wc -c > length.txt")
            expect(commands).not_to_contain_text("returned by the decorated function")
            save(page, directory, f"6-taskflow-rendered-{index}")
    for index, length in enumerate(["4", "6"]):
        entry = airflow.api(
            "GET", f"/dags/{TASKFLOW_DAG}/dagRuns/{run_id}/taskInstances/count/xcomEntries/return_value"
            f"?map_index={index}&deserialize=true",
        )
        value = entry["value"] if isinstance(entry["value"], dict) else json.loads(entry["value"])
        assert value["status"] == "SUCCEEDED", value
        assert world.read(value["output_files"]["length.txt"]).strip() == length


ARRAY_DAG = "array_fan_out"
ARRAY_PARAM_TITLE = "Number of children"


def test_ui_array_fan_out_form_sets_the_number_of_children(airflow: Cluster, world: World, browser: Browser) -> None:
    """The array example's form takes the number of children; the run makes one array job of that size, its
    task's XCom counts them and its extra link opens the parent's console page."""
    airflow.wait_for_dag(ARRAY_DAG)
    directory = screenshot_dir()
    run_id = f"ui_array_{uuid.uuid4().hex[:10]}"
    with browsing(browser, airflow, directory) as page:
        log_in(page, airflow)
        page.goto(f"{airflow.url}/dags/{ARRAY_DAG}")
        page.get_by_role("button", name="Trigger Dag").click()
        dialog = page.get_by_role("dialog")
        dialog.get_by_role("button", name="Advanced Options").click()
        dialog.get_by_label("Run ID").fill(run_id)
        params = dialog.get_by_role("button", name="Run Parameters")
        if params.get_attribute("aria-expanded") != "true":
            params.click()
        field = dialog.get_by_role("group").filter(has_text=ARRAY_PARAM_TITLE).get_by_role("spinbutton")
        expect(field).to_have_count(1)
        expect(field).to_have_value("5")
        field.fill("7")
        save(page, directory, "7-array-trigger-form")
        dialog.get_by_role("button", name="Trigger", exact=True).click()
        page.wait_for_url(re.compile(rf"/dags/{ARRAY_DAG}/runs/{re.escape(run_id)}/?$"), timeout=UI_TIMEOUT_MS)
        assert wait_for_run_end(page, run_id) == "Success"
        xcom = airflow.xcom(ARRAY_DAG, run_id, "fan_out")
        assert xcom["array_size"] == 7 and xcom["counts"] == {"SUCCEEDED": 7}, xcom
        page.goto(f"{airflow.url}/dags/{ARRAY_DAG}/runs/{run_id}/tasks/fan_out")
        page.get_by_role("link", name="Details", exact=True).click()
        link = page.get_by_role("link", name="Batch Job Details", exact=True)
        expect(link).to_have_count(1)
        assert link.get_attribute("href") == (
            f"https://console.aws.amazon.com/batch/home?region=us-east-1#jobs/detail/{xcom['job_id']}")
        save(page, directory, "8-array-extra-link")
    assert airflow.xcom(ARRAY_DAG, run_id, "summarise")["succeeded"] == 7
    assert world.read(airflow.xcom(ARRAY_DAG, run_id, "summarise")["first"]) == "child 0 of 7: item 0\n"


PRODUCER, CONSUMER = "asset_events_producer", "asset_events_consumer"


def test_ui_a_file_the_producer_job_wrote_runs_the_consumer_and_shows_on_its_asset_page(
    airflow: Cluster, world: World, browser: Browser
) -> None:
    """The asset events example in a running Airflow: the producer's job writes report.csv, the task's asset
    event through the alias makes the scheduler start the consumer, whose own job reads that file; the asset's
    page in the UI shows the file's URI, the event from the producer and the consumer's run it triggered."""
    airflow.wait_for_dag(CONSUMER)  # parsed, and not paused (the example says so)
    run_id = airflow.trigger(PRODUCER)
    assert airflow.wait_for_run(PRODUCER, run_id) == "success"
    uri = airflow.xcom(PRODUCER, run_id, "report")["output_files"]["report.csv"]

    deadline = time.monotonic() + RUN_TIMEOUT_S
    while not (runs := airflow.api("GET", f"/dags/{CONSUMER}/dagRuns")["dag_runs"]):
        assert time.monotonic() < deadline, f"no run of {CONSUMER} after the asset event"
        time.sleep(1)
    (consumer_run,) = runs
    assert consumer_run["run_type"] == "asset_triggered"
    assert airflow.wait_for_run(CONSUMER, consumer_run["dag_run_id"]) == "success"
    assert "3 report.csv" in airflow.task_log(CONSUMER, consumer_run["dag_run_id"], "count_rows")

    # An asset made at run time (through an alias) is not "active" (no DAG names it): listed when asked.
    listed = airflow.api("GET", "/assets?only_active=false&limit=100")["assets"]
    (asset,) = [a for a in listed if a["uri"] == uri]
    directory = screenshot_dir()
    with browsing(browser, airflow, directory) as page:
        log_in(page, airflow)
        page.goto(f"{airflow.url}/assets/{asset['id']}")
        expect(page.get_by_text(uri, exact=True).first).to_be_visible()
        # The event card: its source (the producing task), and the consumer's run it triggered.
        event = page.get_by_test_id("card-list")
        expect(event.get_by_role("link", name=PRODUCER, exact=True)).to_have_attribute(
            "href", re.compile(rf"^/dags/{PRODUCER}/runs/.+/tasks/report$"))
        expect(event.get_by_role("link", name=CONSUMER, exact=True)).to_have_attribute(
            "href", re.compile(rf"^/dags/{CONSUMER}/runs/{re.escape(consumer_run['dag_run_id'])}$"))
        save(page, directory, "9-asset-page")
