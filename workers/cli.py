"""The `signoff` command: `dev` (the whole embedded stack), `api`, `worker`, `projector`, `audit`, `retro`,
`token` and `replay`.

Every option overrides the matching `Settings` field; everything else comes from `SIGNOFF_*`.
"""

import argparse
import asyncio
import ipaddress
import logging
import signal
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from config.settings import DEV_JWT_SECRET, Settings


def _positive(value: str) -> int:
    number = int(value)
    if number <= 0:
        raise argparse.ArgumentTypeError("must be a positive number")
    return number


def _moment(value: str) -> Any:
    from workers.replay import parse_since

    try:
        return parse_since(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO-8601 moment: {value!r}") from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="signoff", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    dev = commands.add_parser("dev", help="run Temporal dev server, worker and API on this machine")
    dev.add_argument("--data-dir", type=Path, help="where all state lives (default .signoff)")
    dev.add_argument("--port", type=int, help="API port (default 8000)")
    dev.add_argument("--temporal-port", type=int, help="Temporal gRPC port (default 7233)")
    dev.add_argument("--ui-port", type=int, help="Temporal UI port (default 8233)")
    dev.add_argument("--no-demo", dest="demo", action="store_const", const=False,
                     help="do not load the demo data on first start")
    dev.add_argument("--webhook-log", type=Path, metavar="FILE",
                     help="also run a local webhook receiver that verifies each delivery and appends it to FILE "
                          "as a JSON line (its URL is in the startup banner)")

    api = commands.add_parser("api", help="run the HTTP API (uvicorn)")
    api.add_argument("--host", help="bind address (default 127.0.0.1)")
    api.add_argument("--port", type=int, help="port (default 8000)")

    commands.add_parser("worker", help="run the Temporal worker")

    token = commands.add_parser("token", help="print a bearer token signed with SIGNOFF_JWT_SECRET")
    token.add_argument("user")
    token.add_argument("--role", dest="roles", action="append", default=[],
                       help="global role (admin, pmo); repeat for several")
    token.add_argument("--ttl-minutes", type=_positive,
                       help="lifetime (default SIGNOFF_JWT_TTL_MINUTES; for --feed, 90 days)")
    token.add_argument("--feed", action="store_true",
                       help="a token good for the calendar feed only (GET /api/calendar.ics?token=...); it "
                            "replaces USER's previous feed token, recorded in the event store SIGNOFF_* names")

    replay = commands.add_parser(
        "replay", help="replay workflow histories from Temporal against this code (run before deploying a worker)")
    replay.add_argument("--workflow-id", dest="workflow_ids", action="append", default=[], metavar="ID",
                        help="replay this workflow's latest run; repeat for several")
    replay.add_argument("--since", type=_moment, metavar="ISO-8601",
                        help="replay the workflows started after this moment (UTC unless it names a zone)")
    replay.add_argument("--query", metavar="QUERY",
                        help="a Temporal visibility query the workflows must also match, e.g. \"ProjectId='...'\"; "
                             "without --since or --query, the running workflows are replayed")
    projector = commands.add_parser("projector", help="keep the audit view from the event store's log")
    projector.add_argument("--rebuild", action="store_true",
                           help="drop every view and make it again from the first event, then exit")

    audit = commands.add_parser("audit", help="export or verify the audit trail")
    audit_commands = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    export = audit_commands.add_parser("export", help="write the audit rows (oldest first)")
    export.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    export.add_argument("--out", type=Path, metavar="FILE", help="where to write (default: standard output)")
    for name in ("actor", "project-id", "subject-id", "subject-kind", "action"):
        export.add_argument(f"--{name}")
    export.add_argument("--since", type=_moment, metavar="ISO-8601")
    export.add_argument("--until", type=_moment, metavar="ISO-8601")
    export.add_argument("--until-signed", action="store_true",
                        help="end at the newest signed checkpoint, so every row of the file is vouched for")
    check = audit_commands.add_parser(
        "verify", help="recompute the chain from the event store (or check an export offline with --file)")
    check.add_argument("--file", type=Path, metavar="EXPORT.jsonl",
                       help="an unfiltered `signoff audit export --format jsonl`, checked with no access to the "
                            "service")
    check.add_argument("--public-key", metavar="KEY", help="the audit public key (base64) or a file holding it")
    check.add_argument("--allow-unsigned-tail", action="store_true",
                       help="with --file: rows after the last checkpoint are reported, not a failure")
    audit_commands.add_parser("public-key", help="print the audit key's public half (making the key if missing)")

    retro = commands.add_parser("retro", help="write a project's retrospective as one self-contained HTML file")
    retro.add_argument("project", metavar="PROJECT", help="the project's id or exact name")
    retro.add_argument("--since", type=_moment, metavar="ISO-8601", help="deliverables submitted from then on")
    retro.add_argument("--until", type=_moment, metavar="ISO-8601", help="…and before then (default: now)")
    retro.add_argument("--out", type=Path, required=True, metavar="FILE", help="where to write the HTML")
    return parser


def settings_from(args: argparse.Namespace) -> Settings:
    """Settings from the environment, with every option that was given taking precedence."""
    fields = ("data_dir", "port", "host", "temporal_port", "ui_port", "demo")
    overrides = {f: getattr(args, f) for f in fields if getattr(args, f, None) is not None}
    return Settings(**overrides)


MIN_SECRET_BYTES = 32
MIN_SECRET_SYMBOLS = 8


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name could resolve anywhere


def bind_refusal(settings: Settings) -> str | None:
    """Why the API must not listen where `settings` say, or None. Anyone who guesses the secret can
    mint an admin token, so beyond loopback it must be long, varied and not the published one."""
    if _is_loopback(settings.host):
        return None
    secret = settings.jwt_secret.strip()
    if DEV_JWT_SECRET in secret:
        return "SIGNOFF_JWT_SECRET is the published development secret"
    if len(secret.encode()) < MIN_SECRET_BYTES or len(set(secret)) < MIN_SECRET_SYMBOLS:
        return (f"SIGNOFF_JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes of random text "
                "(e.g. `openssl rand -base64 48`)")
    # Webhook secrets are derived from this key and shown by the API: it must be as strong.
    return settings.webhook_key_refusal()


def run_api(settings: Settings) -> None:
    refusal = bind_refusal(settings)
    if refusal:
        sys.exit(f"signoff api: will not listen on {settings.host}: {refusal}")

    import uvicorn

    from api.app import create_app
    from api.server import uvicorn_config

    uvicorn.Server(uvicorn_config(create_app(settings), settings)).run()


def run_worker(settings: Settings, activities: Any = None, dependency_activities: Any = None,
               delivery_activities: Any = None) -> None:
    """The worker until SIGINT/SIGTERM; `activities`, `dependency_activities` and `delivery_activities`
    replace ChainActivities, DependencyActivities and DeliveryActivities (the crash tests')."""
    from workers.worker import run_worker as worker_main
    from workflows.activities import ChainActivities
    from workflows.delivery_activities import DeliveryActivities
    from workflows.dependency_activities import DependencyActivities

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    async def until_signalled() -> None:
        # Cancelling run_worker() shuts the Temporal worker down gracefully; SIGTERM (docker stop,
        # `signoff dev`) would otherwise kill the process without that.
        task = asyncio.ensure_future(worker_main(settings, activities or ChainActivities,
                                                 dependency_activities or DependencyActivities,
                                                 delivery_activities or DeliveryActivities))
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        try:
            await task
        except asyncio.CancelledError:
            pass

    asyncio.run(until_signalled())


def print_token(settings: Settings, user: str, roles: list[str], ttl_minutes: int | None) -> None:
    from api.auth import mint_token

    ttl = timedelta(minutes=ttl_minutes or settings.jwt_ttl_minutes)
    if ttl > settings.jwt_max_ttl:
        sys.exit(f"signoff token: --ttl-minutes may be at most {settings.jwt_max_ttl_minutes} "
                 "(SIGNOFF_JWT_MAX_TTL_MINUTES)")
    print(mint_token(settings.jwt_secret, user, roles, ttl, issuer=settings.jwt_issuer,
                     audience=settings.jwt_audience, max_ttl=settings.jwt_max_ttl))


def print_feed_token(settings: Settings, user: str, ttl_minutes: int | None) -> None:
    """Mint a feed token, record it as USER's current one in the event store, print it (its URL on stderr)."""
    from api.auth import FEED_MAX_TTL
    from api.feed_tokens import issue_feed_token
    from store.events import open_application

    ttl = timedelta(minutes=ttl_minutes) if ttl_minutes else FEED_MAX_TTL
    if ttl > FEED_MAX_TTL:
        sys.exit(f"signoff token: a feed token may live at most {FEED_MAX_TTL.days} days "
                 f"(--ttl-minutes {int(FEED_MAX_TTL.total_seconds() // 60)})")
    store = open_application(settings.event_store_url())
    try:
        issued = issue_feed_token(store, settings, user, ttl)
    finally:
        store.close()
    print(issued["token"])
    print(f"feed URL (until {issued['expires_at']:%Y-%m-%d %H:%M} UTC; replaces {user}'s previous one): "
          f"{issued['url']}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "token":
        from domain.project import GLOBAL_ROLES

        # A role no check knows would grant nothing, silently: refuse it as a usage error (exit 2).
        for role in args.roles:
            if role not in GLOBAL_ROLES:
                print(f"signoff token: unknown global role {role!r}: the global roles are "
                      f"{', '.join(sorted(GLOBAL_ROLES))}; project roles (author, pm, ...) come from the "
                      "project's members, not from the token", file=sys.stderr)
                return 2
        if args.feed and args.roles:
            print("signoff token: a feed token carries no roles (--feed with --role)", file=sys.stderr)
            return 2
    if args.command == "replay" and args.workflow_ids and (args.since or args.query):
        print("signoff replay: --workflow-id replays the named workflows; it does not combine with --since "
              "or --query", file=sys.stderr)
        return 2
    settings = settings_from(args)
    if args.command == "replay":
        from workers.replay import run as replay

        return asyncio.run(replay(settings, workflow_ids=args.workflow_ids, since=args.since, query=args.query))
    if args.command == "projector":
        from workers.audit_cli import run_projector

        return run_projector(settings, rebuild=args.rebuild)
    if args.command == "audit":
        from workers import audit_cli

        if args.audit_command == "export":
            from store.audit_view import AuditFilter

            where = AuditFilter(actor=args.actor, project_id=args.project_id, subject_id=args.subject_id,
                                subject_kind=args.subject_kind, action=args.action, since=args.since,
                                until=args.until)
            return audit_cli.export(settings, args.format, args.out, where, args.until_signed)
        if args.audit_command == "verify":
            return audit_cli.verify(settings, args.file, args.public_key, args.allow_unsigned_tail)
        return audit_cli.print_public_key(settings)
    if args.command == "retro":
        from workers.retro_cli import write_report

        return write_report(settings, args.project, args.since, args.until, args.out)
    if args.command == "dev":
        from workers.devstack import run_devstack

        return run_devstack(settings, webhook_log=args.webhook_log)
    if args.command == "api":
        run_api(settings)
    elif args.command == "worker":
        run_worker(settings)
    elif args.command == "token" and args.feed:
        print_feed_token(settings, args.user, args.ttl_minutes)
    elif args.command == "token":
        print_token(settings, args.user, args.roles, args.ttl_minutes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
