"""`signoff retro`: a project's retrospective as one self-contained HTML file for the meeting.

The figures are the retrospective's (domain/retrospective.py); the charts are SVG drawn by
matplotlib and written into the page itself, so the file opens offline, with no script and no CDN:
cycle-time distribution, time per stage, each approver's response, escalations over time, and the
deliverables' timelines as a Gantt chart.
"""

import html
import io
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: files only
import matplotlib.pyplot as plt

# Deterministic SVG: the same data makes the same file (no date, fixed ids). Text stays text (the
# browser's own sans-serif draws it), so titles and labels can be searched, read aloud and copied.
plt.rcParams.update({"svg.hashsalt": "signoff", "svg.fonttype": "none", "font.size": 9,
                     "axes.spines.top": False, "axes.spines.right": False})
SVG_METADATA = {"Date": None, "Creator": "signoff retro"}
OUTCOME_COLOURS = {"approved": "#2E7D32", "rejected": "#C62828", "withdrawn": "#616161"}
GANTT_ROWS = 60  # deliverables drawn in the Gantt chart (the most recently submitted)


def hours(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def svg(fig: Any) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata=SVG_METADATA, bbox_inches="tight")
    plt.close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg"):]  # without the XML prolog and doctype: it sits inside HTML


def parse(moment: str | None) -> datetime | None:
    return datetime.fromisoformat(moment) if moment else None


# ---- charts ---------------------------------------------------------------------------------------
def unit(longest_s: float) -> tuple[str, float]:
    """The unit that shows durations up to `longest_s` best, and its length in seconds."""
    for name, size in (("days", 86400.0), ("hours", 3600.0), ("minutes", 60.0)):
        if longest_s >= 2 * size:
            return name, size
    return "seconds", 1.0


def nothing(ax: Any, what: str) -> None:
    ax.text(0.5, 0.5, what, ha="center", va="center", transform=ax.transAxes, color="#666")
    ax.set_xticks([])
    ax.set_yticks([])


def cycle_time_chart(cycle_times_s: list[float]) -> str:
    fig, ax = plt.subplots(figsize=(6.5, 2.6))
    name, size = unit(max(cycle_times_s, default=0))
    if cycle_times_s:
        ax.hist([t / size for t in cycle_times_s], bins=min(20, max(5, len(cycle_times_s) // 3)), color="#4C78A8")
    else:
        nothing(ax, "no deliverable reached an outcome in the window")
    ax.set_xlabel(f"{name} from submission to outcome")
    ax.set_ylabel("deliverables")
    ax.set_title("Cycle time")
    return svg(fig)


def stage_chart(per_stage: dict[str, Any]) -> str:
    names = list(per_stage)
    fig, ax = plt.subplots(figsize=(6.5, 0.5 + 0.45 * max(len(names), 1)))
    label, size = unit(max((per_stage[n].get("p90_open_s") or 0 for n in names), default=0))
    p50 = [(per_stage[n].get("p50_open_s") or 0) / size for n in names]
    p90 = [(per_stage[n].get("p90_open_s") or 0) / size for n in names]
    ax.barh(names, p90, color="#B0C4DE", label="p90")
    ax.barh(names, p50, color="#4C78A8", label="p50")
    ax.invert_yaxis()
    ax.set_xlabel(f"{label} open")
    ax.set_title("Time per stage")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    return svg(fig)


def approver_chart(per_stage: dict[str, Any]) -> str:
    labels, values, waited = [], [], []
    for stage, figures in per_stage.items():
        for user, person in sorted((figures.get("per_approver") or {}).items()):
            labels.append(f"{user} ({stage})")
            values.append(person.get("p50_response_s") or 0)
            waited.append(person.get("last_waited_on") or 0)
    label, size = unit(max(values, default=0))
    values = [v / size for v in values]
    fig, ax = plt.subplots(figsize=(6.5, 0.5 + 0.3 * max(len(labels), 1)))
    if not labels:
        nothing(ax, "no decisions in the window")
    bars = ax.barh(labels, values, color="#72B7B2")
    for bar, count in zip(bars, waited):
        if count:
            ax.annotate(f"waited on last ×{count}", (bar.get_width(), bar.get_y() + bar.get_height() / 2),
                        xytext=(4, 0), textcoords="offset points", va="center", fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel(f"p50 {label} from the stage opening (or their last revision) to their decision")
    ax.set_title("Approver response")
    return svg(fig)


def escalation_chart(escalations: list[tuple[datetime, int]]) -> str:
    fig, ax = plt.subplots(figsize=(6.5, 2.4))
    if escalations:
        days = sorted({at.date() for at, _ in escalations})
        levels = sorted({level for _, level in escalations})
        bottom = [0] * len(days)
        for level in levels:
            counts = Counter(at.date() for at, lvl in escalations if lvl == level)
            heights = [counts.get(day, 0) for day in days]
            ax.bar([str(d) for d in days], heights, bottom=bottom, label=f"level {level}")
            bottom = [b + h for b, h in zip(bottom, heights)]
        ax.legend(frameon=False)
        ax.tick_params(axis="x", labelrotation=45)
    else:
        nothing(ax, "no escalation fired in the window")
    ax.set_ylabel("escalations")
    ax.set_title("Escalations over time")
    return svg(fig)


def gantt_chart(chains: list[Any], until: float) -> str:
    """Each deliverable's stage openings as bars (colour: stage), the waits for a new revision between
    them in light orange, and its outcome as a mark at its end."""
    shown = chains[-GANTT_ROWS:]
    stages = list(dict.fromkeys(run.name for chain in shown for run in chain.runs))
    colours = {name: plt.get_cmap("tab10")(i % 10) for i, name in enumerate(stages)}
    fig, ax = plt.subplots(figsize=(7.5, 0.9 + 0.28 * max(len(shown), 1)))
    for row, chain in enumerate(shown):
        for run in chain.runs:
            start, end = _day(run.opened), _day(run.closed if run.closed is not None else until)
            ax.broken_barh([(start, max(end - start, 1e-6))], (row - 0.4, 0.8), facecolors=colours[run.name])
        for before, after in zip(chain.runs, chain.runs[1:]):
            if before.closed_by == "changes_requested" and before.closed is not None:
                ax.broken_barh([(_day(before.closed), _day(after.opened) - _day(before.closed))], (row - 0.2, 0.4),
                               facecolors="#FFD8A8")
        if chain.ended is not None:
            ax.plot([_day(chain.ended)], [row], marker="|", markersize=9,
                    color=OUTCOME_COLOURS.get(chain.outcome or "", "#333"))
    ax.set_yticks(range(len(shown)), [c.title[:40] for c in shown])
    ax.invert_yaxis()
    ax.xaxis_date()
    ax.tick_params(axis="x", labelrotation=30)
    ax.set_title("Deliverables over time (bars: stages open; orange: waiting for a revision; mark: outcome)")
    handles = [matplotlib.patches.Patch(color=colours[n], label=n) for n in stages]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=6, frameon=False)
    return svg(fig)


def _day(moment: float) -> float:
    return matplotlib.dates.date2num(datetime.fromtimestamp(moment, UTC))


# ---- the page -------------------------------------------------------------------------------------
def table(rows: list[tuple[str, Any]]) -> str:
    cells = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows)
    return f"<table>{cells}</table>"


def render(project: dict[str, Any], retro: dict[str, Any], chains: list[Any], generated_at: datetime) -> str:
    """The report as one HTML document: `retro` the figures (domain/retrospective.py), `chains` the
    window's deliverables folded by it, oldest submission first."""
    window = retro["window"]
    until = parse(window.get("until")) or generated_at
    cycle = retro["cycle_time_s"]
    counts = retro["deliverables"]
    rework = retro["rework"]
    escalations = retro["escalations"]
    cycle_times = [c.ended - c.submitted for c in chains if c.ended is not None]
    escalation_points = [(datetime.fromtimestamp(at, UTC), int(level)) for c in chains for run in c.runs
                         for level, at, _ in run.escalations]
    stage_rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{hours(s.get('p50_open_s'))}</td><td>{hours(s.get('p90_open_s'))}</td>"
        f"<td>{_percent(s.get('sla_breach_rate'))}</td><td>{s.get('changes_requested', 0)}</td></tr>"
        for name, s in retro["per_stage"].items())
    title = f"Retrospective: {project['name']}"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<meta name="generator" content="signoff retro">
<style>
body {{ font: 14px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; color: #222; }}
h1 {{ font-size: 1.5rem; margin-bottom: .2rem; }} h2 {{ font-size: 1.15rem; margin-top: 2rem; }}
table {{ border-collapse: collapse; margin: .5rem 0; }} th, td {{ padding: .2rem .8rem; text-align: left;
border-bottom: 1px solid #ddd; }} .figures {{ display: flex; gap: 2rem; flex-wrap: wrap; }}
.chart svg {{ max-width: 100%; height: auto; }} .muted {{ color: #666; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p class="muted">Deliverables submitted from {html.escape(str(window.get('since') or 'the start'))} to
{html.escape(str(window.get('until') or generated_at.isoformat()))}; made {generated_at:%Y-%m-%d %H:%M} UTC from the
recorded events alone. Definitions: README, "Retrospectives".</p>
<div class="figures">
{table([("submitted", counts.get("submitted", 0)), ("approved", counts.get("approved", 0)),
        ("rejected", counts.get("rejected", 0)), ("withdrawn", counts.get("withdrawn", 0)),
        ("still open", counts.get("open", 0))])}
{table([("cycle time p50", hours(cycle.get("p50"))), ("cycle time p90", hours(cycle.get("p90"))),
        ("cycle time mean", hours(cycle.get("mean"))), ("revisions per deliverable (mean)",
        _number(rework.get("revisions_mean"))), ("first-pass yield", _percent(rework.get("first_pass_yield"))),
        ("escalations", escalations.get("total", 0))])}
</div>
<h2>Cycle time</h2><div class="chart">{cycle_time_chart(cycle_times)}</div>
<h2>Time per stage</h2>
<table><tr><th>stage</th><th>p50 open</th><th>p90 open</th><th>SLA breached</th><th>changes requested</th></tr>
{stage_rows}</table>
<div class="chart">{stage_chart(retro["per_stage"])}</div>
<h2>Who the stages waited for</h2><div class="chart">{approver_chart(retro["per_stage"])}</div>
<h2>Escalations over time</h2><div class="chart">{escalation_chart(escalation_points)}</div>
<h2>Deliverables' timelines</h2><div class="chart">{gantt_chart(chains, until.timestamp())}</div>
{_dependencies(retro.get("dependencies") or {})}
</body></html>
"""


def _dependencies(figures: dict[str, Any]) -> str:
    if not figures:
        return ""
    rows = [(k.replace("_", " "), hours(v) if k.endswith("_s") else v) for k, v in figures.items()
            if k != "ids" and not isinstance(v, (dict, list))]
    return f"<h2>Dependencies</h2>{table(rows)}"


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.0f} %"


def _number(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


__all__ = ["render"]
