"""The audit trail over HTTP, on the real stack (dev server, worker, projector, uvicorn): queries,
scoping, cursors, exports, verification, and an auditor's offline check with the real CLI."""

import asyncio
import base64
import csv
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from domain.audit import row_hash
from tests.api.conftest import Api

pytestmark = pytest.mark.asyncio
CONTOSO = [{"user": "yuki", "roles": ["pm"]}, {"user": "omar", "roles": ["eng"]}]


async def rows(api: Api, user: str, *roles: str, **params: Any) -> list[dict[str, Any]]:
    """Every row the query gives `user`, paging through."""
    found, cursor = [], None
    while True:
        r = await api.http.get("/api/audit", headers=api.auth(user, *roles),
                               params={**params, **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200, r.text
        found += r.json()["items"]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            return found


async def approved_deliverable(api: Api) -> tuple[str, str]:
    project_id = await api.project()
    policy = await api.policy({"stages": [{"name": "design", "approvers": {"users": ["bob"]}, "rule": "any"}]})
    r = await api.submit(project_id, policy)
    assert r.status_code == 201, r.text
    deliverable_id = r.json()["id"]
    assert (await api.decide(deliverable_id, "bob", comment="ship it")).status_code == 200
    return project_id, deliverable_id


async def test_a_decision_is_in_the_trail_with_who_what_why_and_its_update(api: Api) -> None:
    project_id, deliverable_id = await approved_deliverable(api)
    # Read-your-writes: the decision's rows are there as soon as the decision was answered.
    trail = await rows(api, "pete", subject_id=deliverable_id, order="asc")
    assert [r["action"] for r in trail] == ["deliverable.submitted", "deliverable.stage.opened",
                                            "deliverable.decision.approved", "deliverable.stage.passed",
                                            "deliverable.approved"]
    decision = trail[2]
    assert (decision["actor"], decision["reason"], decision["revision"], decision["project_id"]) == (
        "bob", "ship it", 1, project_id)
    assert decision["correlation"]["workflow_id"] == f"deliverable-{deliverable_id}"
    assert decision["correlation"]["update_id"]  # the Update that carried it
    assert decision["subject"] == {"kind": "deliverable", "id": deliverable_id, "title": "Homepage mockups"}
    # Filters: action prefix, actor, project.
    assert [r["action"] for r in await rows(api, "pete", action="deliverable.decision")] == [
        "deliverable.decision.approved"]
    assert {r["subject"]["id"] for r in await rows(api, "pete", actor="bob")} == {deliverable_id}
    assert {r["project_id"] for r in await rows(api, "pete", project_id=project_id)} == {project_id}


async def test_a_member_never_sees_another_projects_rows(api: Api) -> None:
    northwind, deliverable_id = await approved_deliverable(api)
    r = await api.http.post("/api/projects", headers=api.auth("paula", "pmo"),
                            json={"name": "Contoso intranet", "members": CONTOSO, "escalation_path": []})
    contoso = r.json()["id"]
    # yuki (Contoso only): an unfiltered query is scoped, not refused; no filter reaches Northwind.
    seen = await rows(api, "yuki")
    assert {r["project_id"] for r in seen} == {contoso}
    for params in ({"project_id": northwind}, {"subject_id": deliverable_id}, {"actor": "bob"},
                   {"action": "policy"}, {"subject_kind": "policy"}):
        assert await rows(api, "yuki", **params) == [], params
    export = await api.http.get("/api/audit/export", headers=api.auth("yuki"), params={"format": "jsonl"})
    assert export.status_code == 200
    assert {json.loads(line)["project_id"] for line in export.text.splitlines()} == {contoso}
    # Policies are global: pmo sees them, a member does not.
    assert any(r["action"] == "policy.published" for r in await rows(api, "paula", "pmo"))
    assert not any(r["subject"]["kind"] == "policy" for r in await rows(api, "pete"))


async def test_paging_never_skips_or_repeats_while_rows_arrive(api: Api) -> None:
    project_id, _ = await approved_deliverable(api)
    everything = [r["seq"] for r in await rows(api, "paula", "pmo")]
    seen, cursor = [], None
    for turn in range(100):
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        r = await api.http.get("/api/audit", headers=api.auth("paula", "pmo"), params=params)
        seen += [row["seq"] for row in r.json()["items"]]
        cursor = r.json()["next_cursor"]
        if turn == 1:  # new rows arrive while paging
            await api.submit(project_id, (await api.policy()))
        if cursor is None:
            break
    assert seen == everything  # newest first from where the first page began: no gap, no repeat


async def test_cursors_of_another_query_user_or_forged_are_refused(api: Api) -> None:
    await approved_deliverable(api)
    first = await api.http.get("/api/audit", headers=api.auth("paula", "pmo"), params={"limit": 1})
    cursor = first.json()["next_cursor"]
    assert cursor
    payload, _, mac = cursor.partition(".")
    forged_payload = base64.urlsafe_b64encode(
        json.dumps(json.loads(base64.urlsafe_b64decode(payload + "==")) | {"after": 10 ** 9}).encode()
    ).decode().rstrip("=")
    for user, params in ((("paula", "pmo"), {"cursor": cursor, "actor": "bob"}),  # another query
                         (("pete",), {"cursor": cursor}),  # another caller
                         (("paula", "pmo"), {"cursor": f"{forged_payload}.{mac}"}),  # forged
                         (("paula", "pmo"), {"cursor": "not-a-cursor"})):
        r = await api.http.get("/api/audit", headers=api.auth(*user), params=params)
        assert r.status_code == 422, (user, params, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")


async def test_limit_is_clamped_and_bad_times_are_422(api: Api) -> None:
    await approved_deliverable(api)
    r = await api.http.get("/api/audit", headers=api.auth("paula", "pmo"), params={"limit": 0})
    assert r.status_code == 200 and len(r.json()["items"]) == 1
    r = await api.http.get("/api/audit", headers=api.auth("paula", "pmo"), params={"since": "2026-11-01T10:00:00"})
    assert r.status_code == 422
    r = await api.http.get("/api/audit", headers=api.auth("paula", "pmo"), params={"since": "not a time"})
    assert r.status_code == 422


async def test_csv_export_escapes_formulas(api: Api) -> None:
    project_id = await api.project()
    policy = await api.policy({"stages": [{"name": "design", "approvers": {"users": ["bob"]}, "rule": "any"}]})
    r = await api.http.post("/api/deliverables", headers=api.auth("alice"), json={
        "project_id": project_id, "title": '=HYPERLINK("http://evil.example","click")', "policy": policy,
        "revision": {"uri": "https://files.example/a.pdf", "sha256": "a" * 64}})
    assert r.status_code == 201, r.text
    assert (await api.decide(r.json()["id"], "bob", "reject", comment="-2+3 and @SUM(A1)")).status_code == 200
    export = await api.http.get("/api/audit/export", headers=api.auth("paula", "pmo"),
                                params={"format": "csv", "subject_id": r.json()["id"]})
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(export.text)))
    assert table and all(row["subject_title"] == '\'=HYPERLINK("http://evil.example","click")' for row in table)
    assert next(row for row in table if row["action"] == "deliverable.decision.rejected")["reason"] == \
        "'-2+3 and @SUM(A1)"
    assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for row in table for cell in row.values())


async def test_verify_and_an_auditors_offline_check_of_an_export(api: Api, tmp_path: Path) -> None:
    await approved_deliverable(api)
    await approved_deliverable(api)
    r = await api.http.get("/api/audit/verify", headers=api.auth("paula", "pmo"))
    assert r.status_code == 200 and r.json()["ok"] is True, r.text
    assert (await api.http.get("/api/audit/verify", headers=api.auth("pete"))).status_code == 403
    # The auditor gets an unfiltered export ending at a signed head and the public key, and checks them with
    # no access to the service. (The projector signs the head once it has caught up: checkpoint_seconds=0.)
    for _ in range(50):
        verified = (await api.http.get("/api/audit/verify", headers=api.auth("paula", "pmo"))).json()
        if verified["unsigned_rows"] == 0:
            break
        await asyncio.sleep(0.1)
    unsigned = await api.http.get("/api/audit/export", headers=api.auth("paula", "pmo"), params={"format": "jsonl"})
    export = await api.http.get("/api/audit/export", headers=api.auth("paula", "pmo"),
                                params={"format": "jsonl", "until_signed": "true"})
    key = (await api.http.get("/api/audit/public-key", headers=api.auth("paula", "pmo"))).json()["public_key"]
    lines = export.text.splitlines()
    assert any("checkpoint" in json.loads(line) for line in lines)
    good = tmp_path / "export.jsonl"
    good.write_text(export.text)
    check = offline_verify(good, key)
    assert check.returncode == 0, check.stderr
    # Rows the file holds past its last checkpoint are vouched for by nothing: a failure unless allowed.
    # (The file is the unsigned export taken above with more rows after it and the checkpoint of its
    # head left out, so its tail is unsigned whenever the projector signs.)
    await approved_deliverable(api)
    assert unsigned.status_code == 200
    everything = (await api.http.get("/api/audit/export", headers=api.auth("paula", "pmo"),
                                     params={"format": "jsonl"})).text.splitlines()
    rows = [line for line in everything if "checkpoint" not in json.loads(line)]
    head = json.loads(rows[-1])["seq"]
    kept = [line for line in everything if "checkpoint" in json.loads(line) and
            json.loads(line)["checkpoint"]["seq"] < head - 2]
    tail = tmp_path / "tail.jsonl"
    tail.write_text("\n".join(rows + kept) + "\n")
    check = offline_verify(tail, key)
    assert check.returncode == 1 and "vouched for by no signature" in check.stdout, check.stdout
    assert offline_verify(tail, key, "--allow-unsigned-tail").returncode == 0
    # Re-hashed by a forger past the last checkpoint, checkpoint lines dropped: refused.
    forged = [json.loads(line) for line in tail.read_text().splitlines() if "checkpoint" not in json.loads(line)]
    forged[-1]["actor"] = "mallory"
    body = {k: v for k, v in forged[-1].items() if k not in ("hash", "prev_hash")}
    forged[-1]["hash"] = row_hash(forged[-1]["prev_hash"], body)
    refiled = tmp_path / "forged.jsonl"
    refiled.write_text("".join(json.dumps(row) + "\n" for row in forged))
    assert offline_verify(refiled, key).returncode == 1
    # One row edited in the file: named by its seq.
    edited = [json.loads(line) for line in lines]
    edited[3]["actor"] = "mallory"
    bad = tmp_path / "edited.jsonl"
    bad.write_text("".join(json.dumps(row) + "\n" for row in edited))
    check = offline_verify(bad, key)
    assert check.returncode == 1 and json.loads(check.stdout)["first_broken"]["seq"] == edited[3]["seq"]
    # Rows cut off the end, past a checkpoint: caught.
    rows_only = [line for line in lines if "checkpoint" not in json.loads(line)]
    checkpoints = [line for line in lines if "checkpoint" in json.loads(line)]
    cut = tmp_path / "cut.jsonl"
    cut.write_text("\n".join(rows_only[:-3] + checkpoints) + "\n")
    check = offline_verify(cut, key)
    assert check.returncode == 1, check.stdout


def offline_verify(path: Path, key: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "workers.cli", "audit", "verify", "--file", str(path),
                           "--public-key", key, *extra], capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "SIGNOFF_DATA_DIR": str(path.parent / "nowhere")})
