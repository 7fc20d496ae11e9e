"""`signoff retro` as a PMO runs it before the meeting: the real CLI writes the scripted project's
report from the store the real stack recorded, and Debian's chromium opens the file with no network:
every chart is there as SVG, the figures are the retrospective's, and nothing is fetched."""

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

from tests.api.test_docs_pages import browser  # noqa: F401  (the chromium fixture)
from tests.api.test_retrospectives import scripted  # noqa: F401  (the scripted project)

CHARTS = ("Cycle time", "Time per stage", "Approver response", "Escalations over time", "Deliverables over time")


def run_retro(api, project: str, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SIGNOFF_EVENT_STORE": api.settings.event_store_url(),
           "SIGNOFF_DATA_DIR": str(api.settings.data_dir)}
    return subprocess.run([sys.executable, "-m", "workers.cli", "retro", project, "--out", str(out), *extra],
                          check=False, env=env, capture_output=True, text=True, timeout=120)


async def test_the_report_opens_offline_with_its_charts_and_figures(api, scripted, browser, tmp_path):  # noqa: F811
    await asyncio.sleep(0.3)
    out = tmp_path / "report.html"
    done = await asyncio.to_thread(run_retro, api, "Northwind website relaunch", out, "--until", scripted["until"])
    assert done.returncode == 0, done.stderr
    assert "4 deliverables, 2 escalations" in done.stderr
    text = out.read_text()
    assert "<script" not in text and not re.search(r"""(src|href)=["']https?:""", text)
    retro = (await api.http.get(f"/api/retrospectives/{scripted['project_id']}", params={"until": scripted["until"]},
                                headers=api.auth("alice"))).json()
    page = await browser.new_page()
    fetched: list[str] = []
    page.on("request", lambda request: fetched.append(request.url))
    await page.goto(out.as_uri())
    assert [u for u in fetched if not u.startswith("file:")] == []
    assert await page.locator("svg").count() == len(CHARTS)
    body = await page.inner_text("body")
    for title in CHARTS:
        assert await page.locator("svg", has_text=title).count() == 1, title
    assert "Retrospective: Northwind website relaunch" in body
    counts = retro["deliverables"]
    for label, key in (("submitted", "submitted"), ("approved", "approved"), ("rejected", "rejected"),
                       ("withdrawn", "withdrawn"), ("still open", "open")):
        assert re.search(rf"{label}\s+{counts[key]}\b", body), (label, body[:400])
    assert re.search(rf"escalations\s+{retro['escalations']['total']}\b", body)
    for stage in ("design", "engineering", "sponsor"):
        assert stage in body
    box = await page.locator("svg").last.bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 50  # the Gantt chart is drawn
    await page.close()


def test_an_unknown_project_is_a_clear_error(api, tmp_path):
    done = run_retro(api, "No such project", tmp_path / "r.html")
    assert done.returncode == 2 and "no project 'No such project'" in done.stderr
    assert not (tmp_path / "r.html").exists()

