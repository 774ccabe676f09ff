"""The Dagster UI in a real browser: Playwright drives Debian's headless ``chromium`` (``make test`` installs it;
no browser is downloaded) against ``dagster dev`` (webserver, daemon, code server, as ``make dev`` runs it)
on a free loopback port, with its own empty Dagster instance and local lake.

The global lineage page shows the six asset groups; ``silver/profile`` (no partitions, and it works on an
empty lake: "silver is empty") is materialised by clicking **Materialize** on its page and confirming the
"upstream not materialised" dialog; the daemon dequeues the run, the run succeeds on the run page and in the
instance (GraphQL), and the silver group's lineage shows the asset as materialised. Screenshots go to
``$CREDITRISK_HOME/ui/`` (``.creditrisk/ui/`` under ``make test``), else to the test's temp dir; their paths
are printed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from tests.servers import REPO, Server, dagster_graphql, start_dagster_dev

pytestmark = pytest.mark.integration

# the groups of the reviewed asset graph snapshot: bronze, gold, ml, monitoring, serving, silver
GROUPS = sorted({a["group"] for a in json.loads((REPO / "tests/snapshots/asset_graph.json").read_text()).values()})
ASSET = ["silver", "profile"]
LOCATION = "creditrisk_assets.definitions"
UI_TIMEOUT_MS = 120_000  # every wait in the page (given to each expect too): the machine is small and shared
RUN_TIMEOUT_S = 300

RUNS_QUERY = """{ runsOrError(filter: {pipelineName: "__ASSET_JOB"}) {
  __typename ... on Runs { results { runId status assetSelection { path } } } } }"""
RUN_QUERY = """query($runId: ID!) { runOrError(runId: $runId) { __typename ... on Run { runId status
  eventConnection { events { __typename ... on MessageEvent { message } } } } } }"""
MATERIALIZATIONS_QUERY = """query($path: [String!]!) { assetOrError(assetKey: {path: $path}) { __typename
  ... on Asset { assetMaterializations(limit: 1) { runId metadataEntries { label __typename
    ... on MarkdownMetadataEntry { mdStr } ... on IntMetadataEntry { intValue } } } } } }"""


def chromium() -> str:
    """Debian's chromium: the test fails (does not skip) without it."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("Debian's `chromium` is not installed: `make test` installs it (`make browser`), "
                    "or `apt-get install -y chromium`")
    return path


def screenshot_dir(tmp_path: Path) -> Path:
    out = Path(os.environ["CREDITRISK_HOME"]) / "ui" if os.environ.get("CREDITRISK_HOME") else tmp_path / "ui"
    out.mkdir(parents=True, exist_ok=True)
    return out


@pytest.fixture(scope="module")
def dagster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("dagster-ui")
    server = start_dagster_dev(workdir, env={"CREDITRISK_HOME": str(workdir / "home")})
    yield server
    server.stop(grace_s=30)


@pytest.fixture()
def page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Page]:
    # nothing to download: the system chromium is launched by path, and Playwright's own browser cache is
    # pointed at an empty folder so that nothing can fall back to a bundled build
    monkeypatch.setenv("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    monkeypatch.setenv("PLAYWRIGHT_BROWSERS_PATH", str(tmp_path / "no-bundled-browsers"))
    executable = chromium()
    with sync_playwright() as pw:
        # root in a container: no user namespaces for chromium's sandbox; a small /dev/shm
        browser = pw.chromium.launch(executable_path=executable, headless=True,
                                     args=["--no-sandbox", "--disable-dev-shm-usage"])
        context = browser.new_context(viewport={"width": 1600, "height": 1000})
        context.set_default_timeout(UI_TIMEOUT_MS)
        context.set_default_navigation_timeout(UI_TIMEOUT_MS)
        # the "Join the Dagster community" dialog of a new browser profile would cover the page
        context.add_init_script("window.localStorage.setItem('communityNux', '\"1\"')")
        try:
            yield context.new_page()
        finally:
            browser.close()


def wait_for_run(url: str, path: list[str], timeout_s: float) -> str:
    """The id of the run the click launched: the only run of the asset job selecting ``path``."""
    deadline = time.monotonic() + timeout_s
    while True:
        runs = [r for r in dagster_graphql(url, RUNS_QUERY)["runsOrError"]["results"]
                if [a["path"] for a in r["assetSelection"] or []] == [path]]
        if runs:
            assert len(runs) == 1, runs
            return str(runs[0]["runId"])
        assert time.monotonic() < deadline, f"no run of {'/'.join(path)} {timeout_s}s after the click"
        time.sleep(1)


def test_lineage_and_materialise_from_the_ui(dagster: Server, page: Page, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    shots = screenshot_dir(tmp_path)
    saved: list[Path] = []
    try:
        # 1. the global lineage: one collapsed node per asset group
        page.goto(dagster.url + "/asset-groups")
        groups = page.locator("svg foreignObject.group")
        expect(groups).to_have_count(len(GROUPS), timeout=UI_TIMEOUT_MS)
        assert sorted((g.text_content() or "").strip() for g in groups.all()) == GROUPS
        for name in GROUPS:
            expect(groups.filter(has_text=re.compile(rf"^{name}$"))).to_be_visible(timeout=UI_TIMEOUT_MS)
        page.screenshot(path=shots / "lineage.png")
        saved.append(shots / "lineage.png")

        # 2. materialise silver/profile from its page; its upstream silver tables were never materialised,
        # so the UI asks first
        page.goto(dagster.url + "/assets/" + "/".join(ASSET))
        page.get_by_role("button", name=re.compile(r"\bMaterialize$")).click()
        dialog = page.get_by_role("dialog")
        expect(dialog).to_contain_text("have not been materialized yet", timeout=UI_TIMEOUT_MS)
        dialog.get_by_role("button", name="Confirm").click()
        run_id = wait_for_run(dagster.url, ASSET, timeout_s=120)

        # 3. the run page follows it to the end (queued → daemon → run worker)
        page.goto(f"{dagster.url}/runs/{run_id}")
        final = page.get_by_text(re.compile(r"^(Success|Failure|Canceled)$")).first
        expect(final).to_be_visible(timeout=RUN_TIMEOUT_S * 1000)
        run = dagster_graphql(dagster.url, RUN_QUERY, {"runId": run_id})["runOrError"]
        messages = [e.get("message") for e in run["eventConnection"]["events"] if e.get("message")]
        assert run["status"] == "SUCCESS", messages[-15:]
        assert final.text_content() == "Success"

        # 4. the instance has the materialisation of this run: the profile of an empty silver
        latest = dagster_graphql(dagster.url, MATERIALIZATIONS_QUERY, {"path": ASSET})["assetOrError"]
        [mat] = latest["assetMaterializations"]
        meta = {m["label"]: m.get("mdStr", m.get("intValue")) for m in mat["metadataEntries"]}
        assert mat["runId"] == run_id
        assert meta["tables"] == 0 and "silver is empty" in meta["summary"]

        # 5. the silver group's lineage shows it materialised
        page.goto(f"{dagster.url}/locations/{LOCATION}/asset-groups/silver/lineage")
        node = page.locator("svg foreignObject").filter(has_text=re.compile(r"^profile")).filter(has_text="Materialized")
        expect(node.first).to_be_visible(timeout=UI_TIMEOUT_MS)
        page.screenshot(path=shots / "silver-profile.png")
        saved.append(shots / "silver-profile.png")
    except BaseException:
        try:
            page.screenshot(path=shots / "failure.png")
            print(f"screenshot of the failure: {shots / 'failure.png'}")
        except Exception as e:  # noqa: BLE001 - the browser itself may be gone
            print(f"no screenshot of the failure: {e}")
        print(f"---- dagster dev log (tail) {dagster.log}\n" + dagster.log.read_text(errors="replace")[-4000:])
        raise
    finally:
        with capsys.disabled():  # shown in a passing run too
            print("".join(f"\nUI screenshot: {path}" for path in saved))
