"""A project's business calendar over HTTP: POST and PATCH carry it, GET and the list show it, an
unknown holiday code is a 422 naming it, and a stage opened on it is due in working time."""

from datetime import datetime

from tests.api.test_charter_changes import charter_events, patch
from tests.builders import MEMBERS

CALENDAR = {"timezone": "Europe/Berlin", "country": "DE", "subdivision": "BE",
            "working_days": ["mon", "tue", "wed", "thu", "fri"], "working_hours": ["09:00", "17:00"]}
PMO = ("paula", "pmo")


async def create(api, **extra):
    return await api.http.post("/api/projects", headers=api.auth(*PMO), json={
        "name": "Northwind website relaunch", "members": MEMBERS, **extra})


async def test_a_calendar_round_trips_through_post_patch_get_and_the_list(api):
    r = await create(api, calendar=CALENDAR)
    assert r.status_code == 201, r.text
    assert r.json()["calendar"] == CALENDAR
    project_id = r.json()["id"]
    got = (await api.http.get(f"/api/projects/{project_id}", headers=api.auth(*PMO))).json()
    assert got == r.json()

    zurich = {**CALENDAR, "timezone": "Europe/Zurich", "country": "CH", "subdivision": "ZH",
              "working_hours": ["08:00", "17:00"]}
    r = await patch(api, project_id, {"calendar": zurich, "reason": "the team moved to Zurich"})
    assert r.status_code == 200, r.text
    assert r.json()["calendar"] == zurich
    listed = [p for p in (await api.http.get("/api/projects", headers=api.auth(*PMO))).json()["items"]
              if p["id"] == project_id]
    assert listed == [r.json()]
    [*_, changed] = charter_events(api, project_id)
    assert (type(changed).__name__, changed.calendar, changed.reason) == ("CharterChanged", zurich,
                                                                         "the team moved to Zurich")


async def test_defaults_fill_in_and_no_calendar_is_null(api):
    r = await create(api, calendar={"timezone": "Europe/Berlin"})
    assert r.status_code == 201, r.text
    assert r.json()["calendar"] == {"timezone": "Europe/Berlin", "country": None, "subdivision": None,
                                    "working_days": ["mon", "tue", "wed", "thu", "fri"],
                                    "working_hours": ["09:00", "17:00"]}
    r = await create(api)
    assert r.status_code == 201 and r.json()["calendar"] is None, r.text


async def test_an_unknown_code_is_a_422_naming_it_and_records_nothing(api):
    for bad, named in (({**CALENDAR, "country": "XX", "subdivision": None}, "'XX'"),
                       ({**CALENDAR, "subdivision": "ZZ"}, "'ZZ'"),
                       ({**CALENDAR, "timezone": "Mars/Olympus"}, "'Mars/Olympus'")):
        r = await create(api, calendar=bad)
        assert r.status_code == 422, r.text
        assert named in r.text, r.text
    project_id = await api.project()
    before = len(charter_events(api, project_id))
    r = await patch(api, project_id, {"calendar": {**CALENDAR, "country": "XX", "subdivision": None},
                                      "reason": "typo"})
    assert r.status_code == 422 and "'XX'" in r.json()["detail"], r.text
    assert len(charter_events(api, project_id)) == before


async def test_a_stage_on_a_calendar_shows_its_next_deadline(api):
    r = await create(api, calendar={**CALENDAR, "working_days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                                    "country": None, "subdivision": None, "working_hours": ["00:00", "24:00"]})
    project_id = r.json()["id"]
    policy = await api.policy({"stages": [{"name": "design", "approvers": {"roles": ["design-lead"]},
                                           "rule": "any", "sla": "P1D"}], "on_revision": "restart"})
    state = (await api.submit(project_id, policy)).json()
    assert state["next_deadline"]["kind"] == "sla" and state["next_deadline"]["level"] == 0
    due = datetime.fromisoformat(state["next_deadline"]["due_at"])
    assert due == datetime.fromisoformat(state["stage"]["sla_due_at"])
    opened = datetime.fromisoformat(state["stage"]["opened_at"])
    assert (due - opened).total_seconds() == 86400  # a working day that is all day, every day
    history = (await api.http.get(f"/api/deliverables/{state['id']}/history", headers=api.auth(*PMO))).json()["items"]
    [opening] = [e for e in history if e["type"] == "StageOpened"]
    assert opening["calendar"]["timezone"] == "Europe/Berlin" and opening["holidays_version"]
