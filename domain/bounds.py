"""How much one policy or project may hold.

A chain's workflow carries its policy and its live view (ChainInput, ChainView) in Temporal
payloads, whose hard limit is 2 MB. These bounds keep the largest allowed policy on the largest
allowed project under 256 KB (tests/workflows/test_largest_policy.py measures it), and every
duration within datetime arithmetic.
"""

from datetime import timedelta

MAX_DURATION = timedelta(days=5 * 365)  # P1825D: longer is a typo, and overflows a deadline
MAX_DURATION_CHARS = 40

MAX_STAGES = 10
MAX_STAGE_USERS = 10  # more approvers than this: name a role
MAX_STAGE_ROLES = 10
MAX_REMINDERS = 10
MAX_ESCALATION_STEPS = 5  # per stage, and the project's path
MAX_NOTIFY = 10
MAX_GRANT = 5

MAX_MEMBERS = 200
MAX_MEMBER_ROLES = 20
MAX_PHASES = 50

MAX_NAME_CHARS = 300  # titles, project and phase names
MAX_STAGE_NAME_CHARS = 100
MAX_TEXT_CHARS = 10_000  # comments and reasons
MAX_NOTE_CHARS = 2_000  # a revision's note travels with the chain's input
MAX_URI_CHARS = 2_000
MAX_USER_ID_CHARS = 100
MAX_ROLE_CHARS = 64
