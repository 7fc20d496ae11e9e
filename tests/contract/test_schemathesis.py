"""Schemathesis, every check on, against the served API as pmo and as a member: whatever it sends,
the answer is one the published contract declares (status, content type, headers, body schema)."""

import asyncio
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from schemathesis import openapi
from schemathesis.checks import CHECKS, load_all_checks

# Checks switched off, each with why. Empty: every check schemathesis has runs.
OFF: dict[str, str] = {}


def whole_numbers_as_integers(case):  # noqa: ANN001, ANN201
    """JSON Schema counts 2.0 as an integer, so the fuzzer sends it where the schema says integer; the
    API refuses it on purpose (a careless client, tests/api/test_hostile_input.py), which no schema
    can say. Such a number goes out as 2, so the checks judge everything else about the request."""
    def fix(value):  # noqa: ANN001, ANN202
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, dict):
            return {key: fix(item) for key, item in value.items()}
        if isinstance(value, list):
            return [fix(item) for item in value]
        return value

    if isinstance(case.body, dict | list):
        case.body = fix(case.body)
    return case


def no_made_up_cursor(case):  # noqa: ANN001, ANN201
    """A cursor is opaque: only one the API gave out means anything, and any other is a 422 (tests/api/
    test_pagination.py), which a schema cannot say. The fuzzer's cursors are left out."""
    if isinstance(case.query, dict):
        case.query.pop("cursor", None)
    return case


def _unique(items: object, key: str) -> bool:
    names = [item.get(key) for item in items if isinstance(item, dict)] if isinstance(items, list) else []
    return len(names) == len(set(map(str, names)))


def _known_calendar(calendar: object) -> bool:
    """A calendar's time zone, holiday country and subdivision are known or not, and its hours start
    before they end: rules a schema cannot say (tests/unit/test_business_time.py, tests/api/
    test_project_calendar.py)."""
    if not isinstance(calendar, dict):
        return True
    from pydantic import ValidationError

    from domain.calendar import Calendar

    try:
        Calendar.model_validate(calendar)
    except ValidationError:
        return False
    return True


def sayable(case) -> bool:  # noqa: ANN001
    """Rules JSON Schema cannot say (unique by a key, a calendar's known codes) are in the operations'
    descriptions and have tests of their own (tests/unit/test_rules.py, test_deliverable.py,
    test_stage_calendar.py); the fuzzer's bodies that break them are not sent, so the checks judge the rest."""
    body = case.body if isinstance(case.body, dict) else {}
    changes = body.get("changes") if isinstance(body.get("changes"), dict) else {}  # a what-if's calendar
    return (_unique(body.get("stages"), "name") and _unique(body.get("members"), "user")
            and _known_calendar(body.get("calendar")) and _known_calendar(changes.get("calendar")))
EXAMPLES = 25  # per operation and user; derandomized, so CI sends the same requests every run


def every_check() -> list:
    load_all_checks()
    return [check for check in CHECKS.get_all() if check.__name__ not in OFF]


def fuzz(base_url: str, users: dict[str, dict[str, str]]) -> list[str]:
    schema = openapi.from_url(f"{base_url}/openapi.json")
    checks = every_check()
    assert len(checks) >= 14 - len(OFF), [c.__name__ for c in checks]
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for name, headers in users.items():
            @given(case=operation.as_strategy().map(whole_numbers_as_integers).map(no_made_up_cursor).filter(sayable))
            @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                      suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example])
            def check(case):  # noqa: ANN001
                case.call_and_validate(base_url=base_url, headers=headers, checks=checks)

            try:
                check()
            except (Exception, BaseExceptionGroup) as exc:  # each operation's failure is reported, then the next runs
                failures.append(f"{operation.label} as {name}: {exc}")
    return failures


async def test_the_api_answers_what_its_contract_declares(api):
    project_id, policy = await api.project(), await api.policy()
    assert (await api.submit(project_id, policy)).status_code == 201
    # A dependency alice owns, so the dependency list and alice's inbox answer one to be checked.
    r = await api.http.post("/api/dependencies", headers=api.auth("alice"), json={
        "project_id": project_id, "title": "Sandbox credentials", "owner": {"user": "alice"},
        "needed_by": (datetime.now(UTC) + timedelta(days=30)).isoformat(), "stall_after": "P2D"})
    assert r.status_code == 201, r.text
    users = {"pmo": api.auth("paula", "pmo"), "member": api.auth("alice")}
    failures = await asyncio.to_thread(fuzz, str(api.http.base_url).rstrip("/"), users)
    assert not failures, "\n\n".join(failures)
