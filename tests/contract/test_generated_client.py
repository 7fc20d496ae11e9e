"""A client generated from /openapi.json by openapi-python-client, as a user would make one, drives
the service: every answer, success or problem, comes back typed."""

import asyncio
import importlib
import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests.builders import MEMBERS, STANDARD, revision


def generate(spec_url: str, into: Path) -> None:
    spec = into / "openapi.json"
    spec.write_bytes(httpx.get(spec_url).content)
    bin_dir = Path(sys.executable).parent  # the generator formats with ruff, installed beside it
    subprocess.run([str(bin_dir / "openapi-python-client"), "generate", "--path", str(spec), "--output-path",
                    str(into / "signoff_client"), "--meta", "none"], check=True, capture_output=True,
                   env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"})


def drive(base_url: str, tokens: dict[str, str]) -> None:
    client_module = importlib.import_module("signoff_client")
    models = importlib.import_module("signoff_client.models")
    api = {name: importlib.import_module(f"signoff_client.api.{name}")
           for name in ("projects", "policies", "deliverables")}

    def as_user(user: str):  # noqa: ANN202
        return client_module.AuthenticatedClient(base_url=base_url, token=tokens[user], raise_on_unexpected_status=True)

    project = importlib.import_module("signoff_client.api.projects.create_project").sync(
        client=as_user("paula"), body=models.ProjectCreate.from_dict({"name": "Northwind website relaunch",
                                                                       "members": MEMBERS}))
    assert isinstance(project, models.ProjectPublic)
    put = importlib.import_module("signoff_client.api.policies.put_policy").sync_detailed(
        name="brand-review", client=as_user("paula"), body=models.PolicySpec.from_dict(STANDARD))
    assert put.status_code == 201 and isinstance(put.parsed, models.PolicyOut) and put.parsed.version == 1

    submit = importlib.import_module("signoff_client.api.deliverables.submit_deliverable")
    submitted = submit.sync_detailed(client=as_user("alice"), body=models.DeliverableCreate.from_dict({
        "project_id": str(project.id), "title": "Homepage mockups", "policy": "brand-review",
        "revision": revision()}))
    assert submitted.status_code == 201 and isinstance(submitted.parsed, models.DeliverableState)
    deliverable_id = submitted.parsed.id
    assert submitted.headers["location"] == f"/api/deliverables/{deliverable_id}"

    decide = importlib.import_module("signoff_client.api.deliverables.decide")
    approve = models.DecisionIn.from_dict({"verdict": "approve", "revision": 1})
    approved = decide.sync(deliverable_id=deliverable_id, client=as_user("bob"), body=approve)
    assert isinstance(approved, models.DeliverableState) and approved.stage.name == "engineering"

    again = decide.sync_detailed(deliverable_id=deliverable_id, client=as_user("bob"), body=approve)
    assert again.status_code == 409 and isinstance(again.parsed, models.Problem)
    assert again.parsed.type_ == "/problems/stage-closed"

    bare_reject = models.DecisionIn.from_dict({"verdict": "reject", "revision": 1})
    refused = decide.sync_detailed(deliverable_id=deliverable_id, client=as_user("carol"), body=bare_reject)
    assert refused.status_code == 422 and isinstance(refused.parsed, models.Problem)
    assert [error.loc for error in refused.parsed.errors] == [["body", "comment"]]

    stranger = decide.sync_detailed(deliverable_id=deliverable_id, client=client_module.AuthenticatedClient(
        base_url=base_url, token="not-a-token"), body=approve)
    assert stranger.status_code == 401 and isinstance(stranger.parsed, models.Problem)
    assert api  # every tag's module imported: the generated package is whole


async def test_a_generated_client_gets_typed_answers_and_typed_problems(api, tmp_path):
    base_url = str(api.http.base_url).rstrip("/")
    await asyncio.to_thread(generate, f"{base_url}/openapi.json", tmp_path)
    sys.path.insert(0, str(tmp_path))
    try:
        tokens = {user: api.auth(user, *(["pmo"] if user == "paula" else []))["Authorization"].split()[1]
                  for user in ("paula", "alice", "bob", "carol")}
        await asyncio.to_thread(drive, base_url, tokens)
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m == "signoff_client" or m.startswith("signoff_client.")]:
            del sys.modules[name]
