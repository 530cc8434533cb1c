"""The ``hostperf`` console script: ``audit``, ``show``, ``compare``, ``plot``, ``export``,
``import-benchmark``.

Exit codes: 0 done; 1 ``compare --fail-on-regression`` found a regression; 2 a usage
error or an input that cannot be read (argparse's own code for usage errors).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path

from pytest_hostperf import __version__
from pytest_hostperf.errors import HostperfError
from pytest_hostperf.host import audit as host_audit
from pytest_hostperf.host.fingerprint import fingerprint
from pytest_hostperf.reports import compare, compare_render, plots, terminal
from pytest_hostperf.reports import export as hdr
from pytest_hostperf.run import options
from pytest_hostperf.store import disk, pbench
from pytest_hostperf.store.atomic import atomic_write_text
from pytest_hostperf.store.records import Report
from pytest_hostperf.units import parse_size


def _cmd_show(args: argparse.Namespace) -> int:
    doc = compare.open_input(args.file, Path(args.baselines))
    if isinstance(doc, Report):
        print("\n".join(terminal.terminal_summary(doc)))
    else:
        print("\n".join(compare_render.render_history(compare.source_from_baseline(doc, name=args.file))))
    if args.percentiles:
        print()
        print("\n".join(compare_render.render_percentiles(compare.source_of(doc, name=args.file), args.percentiles)))
    return 0


PERCENTILES_EXAMPLE = "--percentiles 50,99,99.99"


def _percentiles(value: str) -> list[float]:
    """``50,99,99.99`` -> ``[50.0, 99.0, 99.99]`` (duplicates dropped), each in 0..100."""
    out: list[float] = []
    for part in value.split(","):
        try:
            q = float(part.strip().removeprefix("p"))
        except ValueError:
            q = math.nan
        if not math.isfinite(q) or not 0 <= q <= 100:
            where = f"{value!r}: {part.strip()!r}" if part.strip() != value.strip() else repr(value)
            raise argparse.ArgumentTypeError(
                f"{where} is not a percentile; give numbers from 0 to 100 separated by commas, "
                f"e.g. {PERCENTILES_EXAMPLE}")
        if q not in out:
            out.append(q)
    return out


def _cmd_export(args: argparse.Namespace) -> int:
    hdr_class = hdr.require_hdrhistogram()  # before reading anything: the install hint is the answer
    doc = compare.open_input(args.file, Path(args.baselines))
    exported = hdr.interval_log(doc, hdr_class, name=args.file, version=__version__)
    for mid in exported.skipped:
        print(f"hostperf: {mid}: no histogram stored (a report written before histograms were kept); left out",
              file=sys.stderr)
    if args.output:
        try:
            atomic_write_text(Path(args.output), exported.text)
        except OSError as exc:
            raise HostperfError(f"{args.output}: cannot write the export: {exc.strerror or exc}") from None
        print(f"{args.output}: {exported.intervals} histogram(s) of {args.file} in HdrHistogram's interval log format")
    else:
        print(exported.text, end="")
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    if len(args.inputs) < 2:
        raise HostperfError("compare needs at least two inputs (baseline files, host ids or JSON reports), "
                            "e.g. hostperf compare baselines/old-host.json baselines/new-host.json")
    sources = [compare.load_input(arg, Path(args.baselines)) for arg in args.inputs]
    cmp = compare.compare_sources(sources, tolerance_pct=args.tolerance)
    if args.format == "json":
        print(json.dumps(compare_render.to_json_doc(cmp), indent=1, sort_keys=True, allow_nan=False))
    elif args.format == "markdown":
        print(compare_render.render_markdown(cmp), end="")
    else:
        print("\n".join(compare_render.render_table(cmp)))
    return 1 if args.fail_on_regression and cmp.regressed else 0


def _cmd_plot(args: argparse.Namespace) -> int:
    plots.require_matplotlib()  # before reading anything: the install hint is the answer
    if len(args.inputs) > 2:
        raise HostperfError("plot takes one or two inputs: hostperf plot BASELINE [CURRENT]")
    sources = [compare.load_input(arg, Path(args.baselines)) for arg in args.inputs]
    roles = ["baseline", "current"] if len(sources) == 2 else [
        "baseline" if sources[0].kind == "baseline" else "current"]
    written = plots.write_plots(list(zip(roles, sources)), Path(args.out))
    for path in written:
        print(path)
    if not written:
        print("no measurements to plot", file=sys.stderr)
    return 0


def _cmd_audit(args: argparse.Namespace) -> int:
    checks = host_audit.audit()
    if args.json:
        print(json.dumps({"fingerprint": fingerprint(), "audit": host_audit.audit_to_json(checks)},
                         indent=1, sort_keys=True))
    else:
        print(host_audit.render_audit(checks))
        print()
        print(host_audit.audit_summary(checks))
    return 0


def _tolerance(value: str) -> float:
    return options.parse_tolerance(value)


def _size(value: str) -> int:
    try:
        return parse_size(value, what="--max-size")
    except HostperfError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--max-size: ")) from None


def _cmd_import_benchmark(args: argparse.Namespace) -> int:
    imported = pbench.import_benchmark(Path(args.file), max_bytes=args.max_size or pbench.MAX_FILE_BYTES)
    if args.output:
        try:
            disk.write_report(Path(args.output), imported)
        except OSError as exc:
            raise HostperfError(f"{args.output}: cannot write the report: {exc.strerror or exc}") from None
        print(f"{args.output}: {len(imported.results)} measurement(s) imported from {args.file}")
    else:
        print(disk.to_json(imported.to_json()))
    return 0


def build_parser() -> argparse.ArgumentParser:
    # argparse %-formats help= strings (a percent sign is written %% there) but prints a
    # description as written unless it holds %(prog): a percent sign is written % there.
    parser = argparse.ArgumentParser(prog="hostperf", description="pytest-hostperf command line")
    parser.add_argument("--version", action="version", version=f"pytest-hostperf {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def baselines_option(p: argparse.ArgumentParser) -> None:
        p.add_argument("--baselines", default=options.DEFAULT_BASELINES, metavar="DIR",
                       help="Folder where host ids are looked up (default: baselines)")

    audit = sub.add_parser("audit", help="Host tuning checklist with advice (read-only; exits 0)")
    audit.add_argument("--json", action="store_true", help="Print the fingerprint and checks as JSON")
    audit.set_defaults(func=_cmd_audit)

    show = sub.add_parser("show", help="Show a JSON report, or a baseline with its host and run history",
                          description="A JSON report (--hostperf-json) as the run's table; a baseline file "
                                      "(or host id) as its host and its stored runs: date, commit, p99 per run")
    show.add_argument("file", help="report file, baseline file or host id")
    baselines_option(show)
    show.add_argument("--percentiles", type=_percentiles, metavar="LIST",
                      help="Also show these percentiles, recomputed from the stored histograms (a baseline's "
                           "runs merged), e.g. 50,99,99.99")
    show.set_defaults(func=_cmd_show)

    comp = sub.add_parser(
        "compare", help="Compare baselines or reports side by side, with p99 ratios and verdicts",
        description="Compare two or more inputs (baseline files, host ids in the baselines folder, or "
                    "JSON reports): per measurement p50, p99, p99.9, the p99 ratio with its 95% interval "
                    "and the verdict, then the host differences. With more than two inputs each one is "
                    "compared with the one before and with the first.")
    comp.add_argument("inputs", nargs="+", metavar="INPUT", help="baseline file, host id, or JSON report")
    baselines_option(comp)
    comp.add_argument("--format", choices=("table", "markdown", "json"), default="table",
                      help="Output format (default: table)")
    comp.add_argument("--tolerance", type=_tolerance, default=options.DEFAULT_TOLERANCE_PCT, metavar="PCT",
                      help="Practical-significance threshold for p99 changes, in percent (default 10)")
    comp.add_argument("--fail-on-regression", action="store_true",
                      help="Exit 1 when the last input regressed against the one before")
    comp.set_defaults(func=_cmd_compare)

    imp = sub.add_parser(
        "import-benchmark", help="Turn a pytest-benchmark JSON file into a hostperf report",
        description="Read a file written by pytest --benchmark-json=FILE --benchmark-save-data and write a "
                    "hostperf JSON report that hostperf compare, show and plot accept. Rounds of one "
                    "iteration keep their tail; batched rounds are marked as not speaking for it.")
    imp.add_argument("file", help="pytest-benchmark JSON file (saved with --benchmark-save-data)")
    imp.add_argument("-o", "--output", metavar="PATH", help="Where to write the report (default: stdout)")
    imp.add_argument("--max-size", metavar="SIZE", type=_size, default=None,
                     help="Largest file to read, e.g. 1GiB (default 256MiB; the file is read whole: a few times "
                          "its size in memory)")
    imp.set_defaults(func=_cmd_import_benchmark)

    plot = sub.add_parser(
        "plot", help="Percentile-distribution plots (PNG and SVG), baseline vs current",
        description="Per measurement group, latency on a log axis against percentile on a nines axis "
                    "(p50 .. p99.99): the first input dashed (baseline), the second solid (current). "
                    "Needs matplotlib: pip install 'pytest-hostperf[plot]'")
    plot.add_argument("inputs", nargs="+", metavar="INPUT", help="baseline file, host id, or JSON report (1 or 2)")
    baselines_option(plot)
    plot.add_argument("--out", default="hostperf-plots", metavar="DIR",
                      help="Folder for the plot files (default: hostperf-plots)")
    plot.set_defaults(func=_cmd_plot)

    export = sub.add_parser(
        "export", help="Latency distributions as HdrHistograms (interval log, HistogramLogAnalyzer)",
        description="Write each measurement's stored latency distribution (a baseline: each run's) as an "
                    "HdrHistogram in its standard compressed encoding, one tagged line per measurement of "
                    "HdrHistogram's interval log format. Values in ns, exact to the stored histogram's buckets "
                    "(2.2%). Needs hdrhistogram: pip install 'pytest-hostperf[hdr]'")
    export.add_argument("file", help="report file, baseline file or host id")
    baselines_option(export)
    export.add_argument("--format", choices=("hdr",), default="hdr",
                        help="Output format: hdr, HdrHistogram's interval log (default: hdr)")
    export.add_argument("-o", "--output", metavar="PATH", help="Where to write it (default: stdout)")
    export.set_defaults(func=_cmd_export)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except HostperfError as exc:
        print(f"hostperf: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
