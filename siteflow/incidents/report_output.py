"""The month's incident report as JSON (every figure), CSV (one figure a row) and HTML with charts.

The HTML is one self-contained page: the charts are PNGs drawn with matplotlib (Agg, no
display) and embedded as ``data:`` URIs, with no script, font or style from another host — it
opens the same from a mail attachment, an archive or an air-gapped office. The JSON is the
report model itself, so it carries every figure the HTML shows.
"""

from __future__ import annotations

import base64
import csv
import enum
import io
from collections.abc import Iterator
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from siteflow.incidents.report import IncidentMonthReport

TEMPLATES = Path(__file__).parent / "templates"


class ReportFormat(enum.StrEnum):
    JSON = "json"
    CSV = "csv"
    HTML = "html"


def report_json(report: IncidentMonthReport) -> str:
    return report.model_dump_json(indent=2)


def _rows(report: IncidentMonthReport) -> Iterator[tuple[str, str, str, str]]:
    """(section, subject, figure, value) for every figure."""
    yield ("period", report.month, "start", report.period_start.isoformat())
    yield ("period", report.month, "end", report.period_end.isoformat())
    yield ("period", report.month, "as_of", report.as_of.isoformat())
    yield ("incidents", "all", "incidents", str(report.incidents))
    yield ("incidents", "all", "emergencies", str(report.emergencies))
    for s in report.by_severity:
        yield ("incidents", s.severity.value, "incidents", str(s.incidents))
        yield ("incidents", s.severity.value, "emergencies", str(s.emergencies))
    for t in report.times:
        subject = f"{t.clock.value}/{t.severity.value}"
        for name in (
            "measured",
            "median_minutes",
            "p90_minutes",
            "max_minutes",
            "with_target",
            "on_time",
            "on_time_share",
        ):
            value = getattr(t, name)
            yield ("times", subject, name, "" if value is None else str(value))
        yield ("times", subject, "target_minutes", " ".join(str(m) for m in t.target_minutes))
    for b in report.breaches:
        yield ("breaches", b.key, f"{b.clock.value} over minutes", str(b.over_minutes))
    yield ("outages", "all", "recorded", str(report.outages_recorded))
    yield ("outages", "all", "counted", str(report.outages_counted))
    yield ("outages", "all", "formula", report.so_formula)
    for f in [*report.outages_by_element, *report.outages_by_customer]:
        subject = f"{f.scope.value}:{f.name}"
        for name in (
            "units_in_service",
            "outages",
            "product_outages",
            "minutes",
            "product_minutes",
            "unit_minutes",
            "product_unit_minutes",
            "so",
            "so_product",
            "disputed",
        ):
            yield ("outages", subject, name, str(getattr(f, name)))
    for w in report.our_work:
        yield ("our work", w.incident_key, f"{w.element} minutes", str(w.minutes))
    for d in report.disputed_outages:  # INC-7: counted as recorded until the customer decides
        yield (
            "disputed outages",
            d.incident_key,
            f"{d.element} {d.start.isoformat()} minutes",
            str(d.minutes),
        )
    for p in report.overdue_problems:
        yield ("overdue problem reports", p.incident_key, p.title, str(p.days_overdue))


def report_csv(report: IncidentMonthReport) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("section", "subject", "figure", "value"))
    writer.writerows(_rows(report))
    return out.getvalue()


def _png(figure: object) -> str:
    from matplotlib.figure import Figure

    assert isinstance(figure, Figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight", metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def charts(report: IncidentMonthReport) -> dict[str, str]:
    """Chart name → PNG data URI: incidents by severity, outage minutes by element (all causes
    and product only), median times against targets."""
    from matplotlib.figure import Figure  # the object API: no pyplot state, no display

    out: dict[str, str] = {}
    fig = Figure(figsize=(5, 2.6))
    ax = fig.subplots()
    names = [s.severity.value for s in report.by_severity]
    ax.bar(names, [s.incidents for s in report.by_severity], color="#5b8def", label="incidents")
    ax.bar(
        names, [s.emergencies for s in report.by_severity], color="#d9534f", width=0.4, label="emergencies"
    )
    ax.set_title("Incidents by severity")
    ax.legend()
    out["severity"] = _png(fig)

    fig = Figure(figsize=(6, 2.8))
    ax = fig.subplots()
    elements = [f.name for f in report.outages_by_element] or ["(none)"]
    xs = range(len(elements))
    ax.bar(
        [x - 0.2 for x in xs],
        [f.minutes for f in report.outages_by_element] or [0],
        width=0.4,
        label="all causes",
        color="#f0ad4e",
    )
    ax.bar(
        [x + 0.2 for x in xs],
        [f.product_minutes for f in report.outages_by_element] or [0],
        width=0.4,
        label="product",
        color="#d9534f",
    )
    ax.set_xticks(list(xs), elements)
    ax.set_ylabel("minutes")
    ax.set_title("Outage minutes by element")
    ax.legend()
    out["outages"] = _png(fig)

    fig = Figure(figsize=(6, 2.8))
    ax = fig.subplots()
    measured = [t for t in report.times if t.median_minutes is not None]
    labels = [f"{t.clock.value}\n{t.severity.value}" for t in measured] or ["(none)"]
    xs = range(len(labels))
    ax.bar([x - 0.2 for x in xs], [t.median_minutes or 0 for t in measured] or [0], width=0.4, label="median")
    ax.bar(
        [x + 0.2 for x in xs],
        [max(t.target_minutes, default=0) for t in measured] or [0],
        width=0.4,
        label="target",
        color="#999999",
    )
    ax.set_xticks(list(xs), labels, fontsize=7)
    ax.set_ylabel("minutes")
    ax.set_title("Median times against targets")
    ax.legend()
    out["times"] = _png(fig)
    return out


def report_html(report: IncidentMonthReport) -> str:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]))
    return env.get_template("incident_report.html.j2").render(report=report, charts=charts(report))


def render_report(report: IncidentMonthReport, fmt: ReportFormat) -> str:
    if fmt is ReportFormat.JSON:
        return report_json(report)
    if fmt is ReportFormat.CSV:
        return report_csv(report)
    return report_html(report)
