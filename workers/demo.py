"""Demo data: a digital agency juggling client projects, loaded through the public HTTP API.

Everything goes through the same endpoints and tokens a real client uses, so the demo also shows
the contract at work: the PMO sets up projects and policies, authors submit deliverables, and
reviewers decide or authors withdraw. Afterwards there are deliverables in every state: in review
(some in later stages), changes requested, approved, rejected and withdrawn.

Northwind works on a Berlin calendar (its SLAs count working time). Two cross-team dependencies
run between the projects: one on a demo-paced stall clock that stalls and escalates within the
first minute, so a newcomer sees the escalation happen, and one the owner has taken up.
"""

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from api.auth import mint_token
from config.settings import Settings

PMO = "paula"

ESCALATION_PATH = [
    {"after": "P1D", "notify": ["pm"]},
    {"after": "P2D", "notify": ["pmo"], "grant": ["pmo"]},
]

POLICIES = {
    # The agency's default: design, then two engineers, then the client's sponsor.
    "standard-review": {
        "stages": [
            {"name": "design", "approvers": {"roles": ["design-lead"], "users": []}, "rule": "any"},
            {"name": "engineering", "approvers": {"roles": ["eng", "eng-lead"]}, "rule": "n_of_m", "n": 2,
             "sla": "P2D", "escalation": ESCALATION_PATH},
            {"name": "sponsor", "approvers": {"roles": ["sponsor"]}, "rule": "all"},
        ],
        "on_revision": "restart",
    },
    # Small internal artefacts: whoever of the PM or the design lead looks first.
    "quick-check": {
        "stages": [{"name": "review", "approvers": {"roles": ["pm", "design-lead"]}, "rule": "any"}],
        "on_revision": "resume",
    },
    # Launch material on a tight clock: the PMO may step in after four hours.
    "launch-signoff": {
        "stages": [
            {"name": "content", "approvers": {"roles": ["pm"]}, "rule": "any", "sla": "PT4H",
             "escalation": [{"after": "PT2H", "notify": ["pm", "eng-lead"]},
                            {"after": "PT4H", "notify": ["pmo"], "grant": ["pmo"]}]},
            {"name": "sponsor", "approvers": {"roles": ["sponsor"]}, "rule": "all"},
        ],
        "on_revision": "resume",
    },
}


def _members(**roles_by_user: str) -> list[dict]:
    return [{"user": user, "roles": roles.split()} for user, roles in roles_by_user.items()]


# Northwind's team sits in Berlin: its SLAs and escalations count Berlin working time and holidays.
BERLIN = {"timezone": "Europe/Berlin", "country": "DE", "subdivision": "BE",
          "working_days": ["mon", "tue", "wed", "thu", "fri"], "working_hours": ["09:00", "17:00"]}
CALENDARS = {"Northwind website relaunch": BERLIN}

PROJECTS = {
    "Northwind website relaunch": _members(
        alice="author", bob="design-lead", erin="eng", eli="eng", grace="eng-lead",
        mike="pm", paula="pmo", sam="sponsor"),
    "Contoso product launch": _members(
        dana="author", bob="design-lead", ethan="eng", erin="eng", grace="eng-lead",
        priya="pm", paula="pmo", carla="sponsor"),
    "Fabrikam mobile app": _members(
        omar="author", hana="design-lead", eli="eng", ethan="eng", ivan="eng-lead",
        priya="pm", paula="pmo", felix="sponsor"),
}

# (project, title, policy, submitter, file, note, what follows as (actor, verdict or "withdraw", comment or reason))
DELIVERABLES = [
    ("Northwind website relaunch", "Homepage mockups", "standard-review", "alice",
     "northwind/homepage-mockups-v1.pdf", "First cut, desktop and mobile breakpoints",
     [("bob", "approve", "Layout and type scale match the brand guide."),
      ("erin", "approve", "Components map onto the existing design system.")]),
    ("Northwind website relaunch", "Sitemap and content model", "quick-check", "alice",
     "northwind/sitemap-v1.xlsx", "Agreed with the client's content team",
     [("mike", "approve", "Matches the scope in the statement of work.")]),
    ("Northwind website relaunch", "Brand style guide v2", "standard-review", "alice",
     "northwind/style-guide-v2.pdf", "Colour palette refresh",
     [("bob", "request_changes", "Contrast of the secondary palette fails WCAG AA; please adjust.")]),
    ("Contoso product launch", "Launch asset pack", "standard-review", "dana",
     "contoso/launch-assets-v1.zip", "Banners, social cards and the hero video",
     [("bob", "approve", "Assets are on brand."),
      ("ethan", "approve", "Sizes fit every ad slot in the media plan."),
      ("grace", "approve", "Video encodes fine for the product page.")]),
    ("Contoso product launch", "Launch landing page copy", "launch-signoff", "dana",
     "contoso/landing-copy-v1.docx", "Needs sign-off before the press embargo lifts", []),
    ("Contoso product launch", "Launch-day email campaign", "launch-signoff", "dana",
     "contoso/launch-email-v1.html", "Announcement to the customer list, sent when the embargo lifts",
     [("priya", "reject", "It promises next-day shipping from launch day, which the warehouse has not "
                          "confirmed; the marketing and operations dates must line up before this goes out.")]),
    ("Fabrikam mobile app", "Onboarding flow wireframes", "standard-review", "omar",
     "fabrikam/onboarding-wireframes-v1.fig", "Five screens, skip option on each", []),
    ("Fabrikam mobile app", "API specification v1", "quick-check", "omar",
     "fabrikam/api-spec-v1.yaml", "Endpoints the app needs for the first release", []),
    ("Fabrikam mobile app", "First release plan", "quick-check", "omar",
     "fabrikam/release-plan-v1.xlsx", "Timeline with weekly milestone reviews and buffer on the critical path",
     [("omar", "withdraw", "The client moved the first release by a month; a new plan follows the next "
                           "capacity planning session.")]),
]


# (requesting project, providing project, title, description, owner, requester, stall_after,
#  needed in days, escalation or None for the project's path, what follows as (actor, action, body))
DEPENDENCIES = [
    # Demo-paced (seconds, on wall time: Fabrikam keeps no calendar), so it stalls and escalates
    # while a newcomer watches; a real one would say P2D.
    ("Fabrikam mobile app", "Northwind website relaunch", "Design-system components for the app",
     "The button, form and card components the onboarding screens are drawn with, exported for mobile.",
     {"role": "design-lead"}, "omar", "PT10S", 10,
     [{"after": "PT5S", "notify": ["pm"]}, {"after": "PT30S", "notify": ["pmo"], "grant": ["pmo"]}], []),
    ("Contoso product launch", "Fabrikam mobile app", "Load test of the checkout API",
     "Launch day expects ten times the usual traffic; the checkout API must hold it.",
     {"role": "eng-lead"}, "priya", "P3D", 14, None,
     [("ivan", "acknowledge", {}),
      ("ivan", "progress", {"note": "Test plan agreed; staging environment booked for Thursday.", "percent": 40})]),
]


class DemoError(RuntimeError):
    pass


class _Api:
    def __init__(self, base_url: str, settings: Settings):
        self.http = httpx.Client(base_url=base_url, timeout=30)
        self.settings = settings

    def call(self, method: str, path: str, user: str, body: dict, roles: tuple[str, ...] = ()) -> dict:
        s = self.settings
        token = mint_token(s.jwt_secret, user, roles, ttl=timedelta(minutes=10), issuer=s.jwt_issuer,
                           audience=s.jwt_audience)
        response = self.http.request(method, path, json=body, headers={"Authorization": f"Bearer {token}"})
        if not response.is_success:
            raise DemoError(f"{method} {path} as {user} answered {response.status_code}: {response.text}")
        return response.json()


def load_demo(base_url: str, settings: Settings) -> dict[str, str]:
    """Load the demo portfolio; returns the ids of the projects and deliverables by name."""
    api = _Api(base_url, settings)
    ids: dict[str, str] = {}
    try:
        for name, policy in POLICIES.items():
            api.call("PUT", f"/api/policies/{name}", PMO, policy, roles=("pmo",))
        for name, members in PROJECTS.items():
            body: dict[str, Any] = {"name": name, "members": members, "escalation_path": ESCALATION_PATH}
            if name in CALENDARS:
                body["calendar"] = CALENDARS[name]
            project = api.call("POST", "/api/projects", PMO, body, roles=("pmo",))
            ids[name] = project["id"]
        for project, title, policy, submitter, file, note, actions in DELIVERABLES:
            uri = f"https://files.example/{file}"
            revision = {"uri": uri, "sha256": hashlib.sha256(uri.encode()).hexdigest(), "note": note}
            deliverable = api.call("POST", "/api/deliverables", submitter,
                                   {"project_id": ids[project], "title": title, "policy": policy,
                                    "revision": revision})
            ids[title] = deliverable["id"]
            for actor, verdict, text in actions:
                if verdict == "withdraw":
                    api.call("POST", f"/api/deliverables/{deliverable['id']}/withdraw", actor, {"reason": text})
                else:
                    api.call("POST", f"/api/deliverables/{deliverable['id']}/decisions", actor,
                             {"verdict": verdict, "comment": text, "revision": deliverable["revision"]})
        for requesting, providing, title, description, owner, requester, stall_after, days, steps, actions \
                in DEPENDENCIES:
            body = {"project_id": ids[requesting], "providing_project_id": ids[providing], "title": title,
                    "description": description, "owner": owner, "stall_after": stall_after,
                    "needed_by": (datetime.now(UTC) + timedelta(days=days)).isoformat(), "remind_before": "P2D"}
            if steps is not None:
                body["escalation"] = steps
            dependency = api.call("POST", "/api/dependencies", requester, body)
            ids[title] = dependency["id"]
            for actor, action, action_body in actions:
                api.call("POST", f"/api/dependencies/{dependency['id']}/{action}", actor, action_body)
    finally:
        api.http.close()
    return ids
