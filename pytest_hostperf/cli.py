"""The ``hostperf`` console script."""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from pytest_hostperf import __version__
from pytest_hostperf.errors import HostperfError


def _cmd_show(args: argparse.Namespace) -> int:
    from pytest_hostperf import report

    path = Path(args.file)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise HostperfError(f"{path}: cannot read a hostperf report: {exc}") from None
    if not isinstance(doc, dict) or doc.get("schema") != report.REPORT_SCHEMA:
        raise HostperfError(f"{path}: not a pytest-hostperf report (no \"schema\": \"{report.REPORT_SCHEMA}\")")
    if doc.get("schema_version") != report.REPORT_SCHEMA_VERSION:
        raise HostperfError(f"{path}: report schema_version {doc.get('schema_version')!r} is not supported "
                            f"(this version reads {report.REPORT_SCHEMA_VERSION}); upgrade pytest-hostperf")
    print("\n".join(report.terminal_summary(doc)))
    return 0


def _cmd_audit(args: argparse.Namespace) -> int:
    from pytest_hostperf.host import probe

    checks = probe.audit()
    if args.json:
        print(json.dumps({"fingerprint": probe.fingerprint(), "audit": probe.audit_to_json(checks)},
                         indent=1, sort_keys=True))
    else:
        print(probe.render_audit(checks))
        print()
        print(probe.audit_summary(checks))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hostperf", description="pytest-hostperf command line")
    parser.add_argument("--version", action="version", version=f"pytest-hostperf {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    audit = sub.add_parser("audit", help="Host tuning checklist with advice (read-only; exits 0)")
    audit.add_argument("--json", action="store_true", help="Print the fingerprint and checks as JSON")
    audit.set_defaults(func=_cmd_audit)
    show = sub.add_parser("show", help="Show a JSON report (--hostperf-json) as a table")
    show.add_argument("file", help="report file")
    show.set_defaults(func=_cmd_show)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except HostperfError as exc:
        print(f"hostperf: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
