"""A policy that names approvers by user id shows them only to pmo/admin and to members of the
projects that use it; a policy naming only roles stays readable by any authenticated user."""

import uuid

from tests.builders import STANDARD

ROLES_ONLY = {"stages": [{"name": "design", "approvers": {"roles": ["design-lead"]}, "rule": "any"}]}
OUTSIDERS = [{"user": "olga", "roles": ["author"]}, {"user": "oscar", "roles": ["design-lead"]},
             {"user": "paula", "roles": ["pmo"]}]


async def get(api, name, user, *roles, version=None):
    params = {"version": version} if version else None
    return await api.http.get(f"/api/policies/{name}", headers=api.auth(user, *roles), params=params)


async def test_user_ids_in_a_policy_are_seen_only_by_the_projects_that_use_it(api):
    ours = await api.project()
    await api.project(members=OUTSIDERS)  # olga's
    policy = await api.policy(STANDARD)  # its sponsor stage names sam
    assert (await api.submit(ours, policy)).status_code == 201

    for user, roles in (("paula", ("pmo",)), ("root", ("admin",)), ("alice", ()), ("sam", ())):
        r = await get(api, policy, user, *roles)
        assert r.status_code == 200 and r.json()["stages"][2]["approvers"]["users"] == ["sam"], (user, r.text)

    unknown = await get(api, f"nothing-{uuid.uuid4().hex[:6]}", "olga")
    for user in ("olga", "mallory"):  # a member of another project, and a member of none
        r = await get(api, policy, user)
        assert r.status_code == 404 and "sam" not in r.text, r.text
        assert r.headers["content-type"] == unknown.headers["content-type"] == "application/problem+json"
        assert r.json()["type"] == unknown.json()["type"]
        assert (await get(api, policy, user, version=1)).status_code == 404
        assert (await get(api, policy, user, version=9)).status_code == 404
    assert (await get(api, policy, "alice", version=9)).status_code == 404


async def test_a_user_naming_policy_no_project_uses_is_for_pmo_and_admin_only(api):
    await api.project()
    policy = await api.policy(STANDARD)
    assert (await get(api, policy, "paula", "pmo")).status_code == 200
    assert (await get(api, policy, "alice")).status_code == 404


async def test_roles_only_policies_stay_readable_and_each_version_is_judged_on_its_own(api):
    await api.project(members=OUTSIDERS)
    policy = await api.policy(ROLES_ONLY)
    assert (await get(api, policy, "mallory")).status_code == 200
    r = await api.http.put(f"/api/policies/{policy}", headers=api.auth("paula", "pmo"), json=STANDARD)
    assert r.status_code == 200 and r.json()["version"] == 2
    assert (await get(api, policy, "mallory", version=1)).status_code == 200
    assert (await get(api, policy, "mallory")).status_code == 404
    assert (await get(api, policy, "mallory", version=2)).status_code == 404


async def test_submitting_under_a_policy_one_may_not_read_looks_like_no_policy(api):
    from tests.builders import MEMBERS

    elsewhere = await api.project(members=[*MEMBERS, {"user": "zed", "roles": []}])
    r = await api.http.put("/api/policies/counsel-review", headers=api.auth("paula", "pmo"), json={
        "stages": [{"name": "legal", "approvers": {"users": ["zed"]}, "rule": "all"}]})
    assert r.status_code == 201, r.text
    assert elsewhere
    # alice's project has no zed, and she may not read the policy: to her it does not exist.
    project = await api.project()
    r = await api.submit(project, "counsel-review")
    assert r.status_code == 404 and "zed" not in r.text and "legal" not in r.text, r.text
    assert r.json()["detail"] == (await api.submit(project, "no-such-policy")).json()["detail"].replace(
        "no-such-policy", "counsel-review")
