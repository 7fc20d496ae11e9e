"""Audit rows as pure functions: the canonical form is RFC 8785's, the chain catches every kind of
change to a row, action names are stable, and what a spreadsheet would run is escaped."""

import json
from datetime import UTC, datetime

import rfc8785
from hypothesis import given
from hypothesis import strategies as st

from api.routers.audit import safe_cell
from domain.audit import (
    GENESIS,
    Chain,
    action_of,
    all_actions,
    canonical,
    check_links,
)
from domain.webhooks import masked

# JSON as audit rows hold it: no floats (rows never carry one), any text, keys of any BMP text.
JSON = st.recursive(st.none() | st.booleans() | st.integers(min_value=-(2 ** 53) + 1, max_value=2 ** 53 - 1)
                    | st.text(), lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(st.characters(max_codepoint=0xD7FF)), inner, max_size=4),
                    max_leaves=20)


@given(JSON)
def test_canonical_json_is_rfc_8785(value: object) -> None:
    assert canonical({"v": value}) == rfc8785.dumps({"v": value})


def chain_of(count: int) -> list[dict]:
    chain = Chain()
    at = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
    rows = [chain.add(1, "Project.Created", "p1", 1, at, {"name": "Northwind", "created_by": "paula"})]
    rows += [chain.add(i, "Project.CharterChanged", "p1", i, at, {"actor": "paula", "reason": f"change {i}"})
             for i in range(2, count + 1)]
    return rows


def broken(rows: list[dict]) -> list[int]:
    return [b.seq for _, b in check_links(rows) if b is not None]


def test_an_untouched_chain_holds_and_starts_at_zeros() -> None:
    rows = chain_of(5)
    assert rows[0]["prev_hash"] == GENESIS and broken(rows) == []
    assert rows[3]["subject"]["title"] == "Northwind" and rows[3]["reason"] == "change 4"


def test_an_edited_row_is_caught_at_its_seq() -> None:
    rows = chain_of(5)
    rows[2]["reason"] = "nothing to see"
    assert broken(rows)[0] == 3


def test_a_removed_or_swapped_row_is_caught() -> None:
    rows = chain_of(5)
    assert broken(rows[:2] + rows[3:])[0] == 3
    assert broken([rows[0], rows[2], rows[1], *rows[3:]])[0] == 2


def test_actions_are_stable_dotted_names() -> None:
    assert action_of("Deliverable.DecisionRecorded", {"verdict": "approve"}) == "deliverable.decision.approved"
    assert action_of("Deliverable.Escalated", {}) == action_of("Dependency.Escalated", {}) == "escalation.raised"
    assert action_of("Policy.VersionPublished", {}) == "policy.published"
    assert action_of("Delivery.OutcomeRecorded", {"outcome": "failed"}) == "delivery.failed"
    assert action_of("Gate.DecisionTaken", {}) == "gate.decision_taken"  # an event not named yet
    assert all(a == a.lower() and "." in a for a in all_actions())


def test_webhook_urls_lose_their_path_and_query() -> None:
    assert masked("https://user:pw@hooks.example/t/SECRET?token=x") == "https://hooks.example/…"
    rows = Chain().add(1, "Project.WebhookAdded", "p1", 2, datetime.now(UTC),
                       {"url": "https://hooks.example/SECRET", "webhook_id": "w", "actor": "a", "reason": "r"})
    assert "SECRET" not in json.dumps(rows)


def test_cells_a_spreadsheet_would_run_get_an_apostrophe() -> None:
    for text in ("=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"):
        assert safe_cell(text) == "'" + text
    assert safe_cell("bob") == "bob" and safe_cell(None) == "" and safe_cell(3) == "3"


@given(st.dictionaries(st.text(st.characters(max_codepoint=0xD7FF)), JSON, max_size=5), st.text(), st.text())
def test_a_rows_stored_text_is_the_canonical_json_of_the_whole_row(details: dict, reason: str, title: str) -> None:
    chain = Chain()
    at = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
    first = chain.add(1, "Project.Created", "p1", 1, at, {"name": title, "created_by": "paula"})
    row, text = chain.add_text(2, "Project.CharterChanged", "p1", 2, at,
                               {"actor": "paula", "reason": reason, "extra": details, **details})
    assert text == canonical(row).decode()
    assert broken([first, row]) == []


@given(JSON)
def test_the_fast_canonical_form_is_the_json_modules(value: object) -> None:
    assert canonical({"v": value}) == json.dumps({"v": value}, sort_keys=True, separators=(",", ":"),
                                                  ensure_ascii=False).encode()
