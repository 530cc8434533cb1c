"""Rendering of comparisons: terminal table, markdown, the ``--format json`` document; and of
one input for ``hostperf show``: a baseline's run history, any percentiles of its stored
histograms. Pure functions of :mod:`model`'s types; no decisions, no I/O.

``hostperf compare --format markdown`` and the ``--hostperf-markdown`` job summary are both
:func:`render_markdown`.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from pytest_hostperf.reports.model import Comparison, Measurement, Source, Step
from pytest_hostperf.reports.tables import (
    cell,
    could_tell_text,
    md_code,
    md_escape,
    md_table,
    percentile_label,
    stat_label,
    table,
)
from pytest_hostperf.reports.tables import ratio_text as _ratio_text
from pytest_hostperf.stats.percentiles import QUANTILES
from pytest_hostperf.store.histogram import decode_histogram, histogram_percentiles
from pytest_hostperf.store.records import Commit
from pytest_hostperf.units import format_ns

#: ``hostperf compare --format json`` format history:
#: 1 - first version
COMPARE_SCHEMA = "pytest-hostperf-compare"
COMPARE_SCHEMA_VERSION = 1
#: Verdicts that fail a run (shown in bold in markdown).
FAILING = ("regressed", "over-budget")
_BATCHED = ("batched(k): each sample is the mean of k calls, too short to time alone; "
            "its percentiles understate the tail")


def headline(counts: dict[str, int]) -> str:
    """``2 regressed, 1 over budget, 14 unchanged``."""
    parts = [f"{n} {status.replace('-', ' ')}" for status, n in counts.items() if status != "-" and n]
    return ", ".join(parts) if parts else "no measurements"


def ratio_text(step: Step | None) -> str:
    """``1.38x [1.30, 1.46]``: the p99* ratio (this input / the other; of the medians of the block
    p99s, what the gate compares) and its 95% interval."""
    if step is None or step.ratio is None:
        return "-"
    of = "" if step.stat == "p99" else f" ({stat_label(step.stat)}*)"  # --hostperf-gate
    return _ratio_text(step.ratio, step.interval) + of


def _when(text: str | None) -> str:
    """``2024-05-01T12:00:00Z`` / ``...+00:00`` -> ``2024-05-01 12:00 UTC``."""
    if not text:
        return "-"
    return text.replace("T", " ")[:16] + " UTC"


def short_sha(sha: str) -> str:
    """A git sha cut to 8 hex digits; anything else whole (pytest-benchmark writes
    ``unversioned`` where it found no repository: never ``unversio``)."""
    return sha[:8] if re.fullmatch(r"[0-9a-fA-F]{9,64}", sha) else sha


def _commit_text(commit: Commit) -> str:
    if not commit.sha:
        return ""
    text = f"commit {short_sha(commit.sha)}"
    if commit.branch and commit.branch != "(unknown)":  # pytest-benchmark's word for none
        text += f" on {commit.branch}"
    if commit.dirty:
        text += " (uncommitted changes)"
    return text


def describe(src: Source, *, code: bool = False) -> str:
    """One line about an input: what it is, its host and its runs."""
    def q(s: str | None) -> str:
        return f"`{s}`" if code else str(s)

    if src.kind == "none":
        return f"baseline: {src.name}"
    fp = src.fingerprint
    cpus = fp.get("logical_cpus")
    hw = ", ".join(str(x) for x in (fp.get("cpu_model"), cpus and f"{cpus} CPUs") if x)
    if src.kind == "baseline" and src.name == src.host_id:
        text = f"baseline of host {q(src.host_id)}"
    else:
        text = f"{src.kind} {q(src.name)}: host {q(src.host_id or 'unknown')}"
    text += f" ({hw})" if hw else ""
    newest = src.runs[-1] if src.runs else None
    if src.kind == "baseline":
        plural = "s" if len(src.runs) != 1 else ""
        text += f", {len(src.runs)} run{plural}, newest {_when(newest.created_utc if newest else None)}"
    else:
        text += f", {_when(newest.created_utc if newest else None)}"
    commit = _commit_text(newest.commit) if newest else ""
    return text + (f", {commit}" if commit else "")


def _values(m: Measurement | None) -> list[str]:
    if m is None:
        return ["-", "-", "-"]
    return [format_ns(m.p50_ns), format_ns(m.p99_ns), format_ns(m.p999_ns)]


def _explanation(cmp: Comparison) -> str:
    a, b = cmp.labels[-2], cmp.labels[-1]
    return (f"p50, p99, p99.9: over all calls; p99* ratio {b}/{a}: of the medians of the block p99s, the robust "
            f"statistic the gate compares, with its 95% interval; verdicts at a {cmp.tolerance_pct:g}% tolerance: "
            f"regressed / improved = confidently slower / faster by more than the tolerance, unchanged = "
            f"within it, inconclusive = the interval is too wide to tell, not gated = not compared (the notes "
            f"say why)")


def _footer(cmp: Comparison) -> list[str]:
    lines = []
    seen = set()
    for r in cmp.rows:
        unlike = [st.reason for st in r.steps if st.reason.startswith(("not gated:", "not like for like:"))]
        for n in (*r.notes, *unlike):
            if (r.id, n) not in seen:
                seen.add((r.id, n))
                lines.append(f"{r.id}: {n}")
    if any(m is not None and m.batch > 1 for r in cmp.rows for m in r.values):
        lines.append(_BATCHED)
    return lines + list(cmp.notes)


def _bold(markdown: bool) -> Callable[[str], str]:
    return lambda s: f"**{s}**" if markdown and s in FAILING else s


def _pair_rows(cmp: Comparison, *, markdown: bool) -> tuple[list[str], list[list[str]]]:
    a, b = cmp.labels
    header = ["measurement", f"{a} p50", f"{a} p99", f"{a} p99.9", f"{b} p50", f"{b} p99", f"{b} p99.9",
              f"p99* {b}/{a} [95% CI]", "could tell", "verdict"]
    bold = _bold(markdown)
    rows = [[md_code(r.id) if markdown else r.id, *_values(r.values[0]), *_values(r.values[1]),
             ratio_text(r.steps[0]), could_tell_text(r.steps[0].interval), bold(r.status)] for r in cmp.rows]
    return header, rows


def _step_rows(cmp: Comparison, *, markdown: bool) -> tuple[list[str], list[list[str]]]:
    first = cmp.labels[0]
    header = ["measurement", "input", "p50", "p99", "p99.9", "p99* vs previous [95% CI]", "verdict",
              f"p99* vs {first} [95% CI]", f"verdict vs {first}"]
    bold = _bold(markdown)
    rows = []
    for r in cmp.rows:
        for i, m in enumerate(r.values):
            name = (md_code(r.id) if markdown else r.id) if i == 0 else ""
            if i == 0:
                rows.append([name, cmp.labels[i], *_values(m), "", "", "", ""])
                continue
            step, total = r.steps[i - 1], r.cumulative[i - 1]
            rows.append([name, cmp.labels[i], *_values(m), ratio_text(step), bold(step.status),
                         ratio_text(total), bold(total.status)])
    return header, rows


def _present(cmp: Comparison) -> list[str]:
    return [lab for lab, s in zip(cmp.labels, cmp.sources) if s.kind != "none"]


def render_table(cmp: Comparison) -> list[str]:
    """The comparison as terminal text: inputs, the table, verdict counts, host differences, notes."""
    lines = [f"{label}: {describe(s)}" for label, s in zip(cmp.labels, cmp.sources)]
    lines.append("")
    if not cmp.rows:
        lines.append("no measurements in any input")
    elif len(cmp.sources) == 2:
        header, rows = _pair_rows(cmp, markdown=False)
        lines += table(rows, header, "lrrrrrrrrl")
    else:
        header, rows = _step_rows(cmp, markdown=False)
        lines += table(rows, header, "llrrrrlrl")
    a, b = cmp.labels[-2], cmp.labels[-1]
    lines.append(f"verdicts ({b} vs {a}): {headline(cmp.counts())}")
    lines.append(_explanation(cmp))
    if cmp.differences:
        present = _present(cmp)
        lines += ["", "host differences:"]
        lines += table([[name, *vals] for name, vals in cmp.differences], ["field", *present],
                       "l" * (len(present) + 1))
    footer = _footer(cmp)
    if footer:
        lines += ["", *footer]
    return lines


def render_markdown(cmp: Comparison, *, title: str = "hostperf") -> str:
    """The comparison as GitHub-flavoured markdown: a verdict headline, the inputs, the table
    (regressions first), host differences and notes. Also the ``--hostperf-markdown`` report."""
    lines = [f"### {title}: {headline(cmp.counts())}", ""]
    lines += [f"- **{label}** {describe(s, code=True)}" for label, s in zip(cmp.labels, cmp.sources)]
    lines.append("")
    if cmp.rows:
        header, rows = (_pair_rows if len(cmp.sources) == 2 else _step_rows)(cmp, markdown=True)
        lines += md_table(header, [[md_escape(c) if i else c for i, c in enumerate(r)] for r in rows],
                           "lrrrrrrrrl" if len(cmp.sources) == 2 else "llrrrrlrl")
        lines += ["", _explanation(cmp) + "."]
    else:
        lines.append("No measurements.")
    if cmp.differences:
        present = _present(cmp)
        lines += ["", "#### Host differences", ""]
        lines += md_table(["field", *present],
                           [[md_escape(name), *(md_escape(v) for v in vals)] for name, vals in cmp.differences],
                           "l" * (len(present) + 1))
    footer = _footer(cmp)
    if footer:
        lines += ["", *(f"- {md_escape(n)}" for n in footer)]
    return "\n".join(lines) + "\n"


def _step_json(step: Step, a: str, b: str) -> dict[str, Any]:
    return {"from": a, "to": b, "status": step.status, "verdict": step.verdict, "over_budget": step.over_budget,
            "ratio": None if step.ratio is None else round(step.ratio, 4),
            "interval": None if step.interval is None else [round(x, 4) for x in step.interval],
            "reason": step.reason}


def to_json_doc(cmp: Comparison) -> dict[str, Any]:
    """The comparison as a JSON-ready document (``hostperf compare --format json``)."""
    labels = cmp.labels

    def value(m: Measurement | None, label: str) -> dict[str, Any] | None:
        if m is None:
            return None
        return {"input": label, "mode": m.mode, "batch": m.batch, "runs": len(m.runs_p99),
                **{f"{k}_ns": round(float(getattr(m, f"{k}_ns"))) for k, _ in QUANTILES}}

    return {
        "schema": COMPARE_SCHEMA, "schema_version": COMPARE_SCHEMA_VERSION,
        "tolerance_pct": cmp.tolerance_pct, "stat": "p99",
        "inputs": [{"label": lab, "name": s.name, "kind": s.kind, "host_id": s.host_id, "runs": len(s.runs)}
                   for lab, s in zip(labels, cmp.sources)],
        "summary": cmp.counts(), "headline": headline(cmp.counts()), "regressed": cmp.regressed,
        "measurements": [{
            "id": r.id, "group": r.group, "status": r.status,
            "values": [value(m, lab) for m, lab in zip(r.values, labels)],
            "steps": [_step_json(s, labels[i], labels[i + 1]) for i, s in enumerate(r.steps)],
            "cumulative": [_step_json(s, labels[0], labels[i + 1]) for i, s in enumerate(r.cumulative)],
            "notes": list(r.notes)} for r in cmp.rows],
        "host_differences": [{"field": name, "values": list(vals)} for name, vals in cmp.differences],
        "notes": list(cmp.notes),
    }


def render_history(src: Source) -> list[str]:
    """A baseline as text: its host, its stored runs (date, commit) and the p99 of every
    measurement in every run, oldest first."""
    fp = src.fingerprint
    lines = [f"baseline {src.name}", f"host {src.host_id}"]
    facts = [("cpu", fp.get("cpu_model")), ("logical cpus", fp.get("logical_cpus")),
             ("physical cores", fp.get("physical_cores")), ("smt", cell(fp.get("smt"))), ("arch", fp.get("arch")),
             ("kernel", fp.get("kernel")), ("python", fp.get("python")), ("governor", fp.get("governor"))]
    lines.append("  " + ", ".join(f"{k} {v}" for k, v in facts if v is not None))
    if src.audit_warnings:
        lines.append("  audit warnings (newest run): " + ", ".join(src.audit_warnings))
    lines += ["", f"runs (oldest first; the gate compares with all {len(src.runs)}):"]
    run_rows = []
    for i, run in enumerate(src.runs, 1):
        c = run.commit
        dirty = "-" if c.dirty is None else "yes" if c.dirty else "no"
        run_rows.append([f"#{i}", _when(run.created_utc), short_sha(c.sha or "-"), c.branch or "-", dirty,
                         str(len(run.p99_ns))])
    lines += table(run_rows, ["run", "created", "commit", "branch", "dirty", "measurements"], "lllllr")
    header = ["measurement", "mode", "p50", "p99", "p99.9", *(f"p99 #{i}" for i in range(1, len(src.runs) + 1))]
    rows = [[mid, m.mode, *_values(m), *(format_ns(run.p99_ns[mid]) if mid in run.p99_ns else "-" for run in src.runs)]
            for mid, m in src.measurements.items()]
    lines += [""] + table(rows, header, "ll" + "r" * (len(header) - 2))
    lines.append("p50, p99, p99.9: over all calls of the runs that hold the measurement (their histograms merged); "
                 "p99 #k: over run k's calls")
    if any(m.batch > 1 for m in src.measurements.values()):
        lines.append(_BATCHED)
    return lines


def render_percentiles(src: Source, qs: Sequence[float]) -> list[str]:
    """Any percentiles (0..100) of each measurement, recomputed from its stored ``log2-32``
    histogram (a baseline's runs merged): ``hostperf show FILE --percentiles 50,99,99.99``."""
    header = ["measurement", "mode", "samples", *(percentile_label(q) for q in qs)]
    rows = []
    for mid, m in src.measurements.items():
        if m.histogram is None:
            rows.append([mid, m.mode, "-", *("-" for _ in qs)])
            continue
        samples = int(decode_histogram(m.histogram)[1].sum())
        values = histogram_percentiles(m.histogram, qs)
        rows.append([mid, m.mode, str(samples), *(format_ns(float(v)) for v in values)])
    merged = "; a baseline's runs merged" if src.kind == "baseline" else ""
    lines = table(rows, header, "ll" + "r" * (len(header) - 2))
    lines.append(f"{', '.join(percentile_label(q) for q in qs)}: recomputed from the stored log2-32 histograms"
                 f"{merged}; exact to one bucket (2.2%)")
    if any(m.histogram is None for m in src.measurements.values()):
        lines.append("-: no histogram stored (a report written before histograms were kept)")
    return lines
