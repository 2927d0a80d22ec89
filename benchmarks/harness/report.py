"""Dated Markdown benchmark pages from the JSON records that ``--json OUT`` writes.

    python -m benchmarks.harness.report benchmarks/results/*.json --out docs/benchmarks/results

Each record becomes ``<out>/<date>-<benchmark>.md`` (command, date, machine, versions, commit, the
tables, notes, one caveat on noise; a later record of the same benchmark and day replaces it);
``<out>/index.md`` lists every page there, newest first. Pages are regenerated from the records,
never edited by hand.
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks.harness.record import fmt

NOISE = (
    "Timings come from one run on a machine shared with other jobs: treat differences of a few percent "
    "(more on busy machines) as noise, and compare paths only within one table, where they ran side by side."
)


def page_name(record: dict[str, Any]) -> str:
    """``YYYY-MM-DD-<benchmark>`` (slashes and odd characters as ``-``)."""
    slug = re.sub(r"[^a-z0-9]+", "-", record["benchmark"].lower()).strip("-")
    return f"{record['date'][:10]}-{slug}"


def _cell(value: Any) -> str:
    return fmt(value).replace("|", "\\|")


def markdown_table(table: dict[str, Any]) -> str:
    """One record table as a Markdown table, with its title above and its note below."""
    head = "| " + " | ".join(_cell(c) for c in table["columns"]) + " |"
    rule = "|" + "|".join("---" if i == 0 else "---:" for i in range(len(table["columns"]))) + "|"
    rows = ["| " + " | ".join(_cell(v) for v in row) + " |" for row in table["rows"]]
    parts = [f"### {table['title']}", "", head, rule, *rows]
    if table.get("note"):
        parts += ["", table["note"]]
    return "\n".join(parts)


def render(record: dict[str, Any]) -> str:
    """The Markdown page of one record."""
    machine = record["machine"]
    versions = ", ".join(f"{k} {v}" for k, v in record["versions"].items())
    lines = [
        f"# {record['title']}",
        "",
        f"Measured {record['date'].replace('T', ' ').replace('Z', ' UTC')} with:",
        "",
        "```",
        record["command"],
        "```",
        "",
        f"- Machine: {machine['cpu']}, {machine['cores']} cores available ({machine['system']})",
        f"- Versions: {versions}",
        f"- Commit: `{record['commit']}`",
        "",
    ]
    for table in record["tables"]:
        lines += [markdown_table(table), ""]
    if record.get("notes"):
        lines += ["Notes:", "", *[f"- {n}" for n in record["notes"]], ""]
    lines += [f"> **Noise.** {record.get('noise') or NOISE}", ""]
    return "\n".join(lines)


def write_pages(records: list[Path], out: Path) -> list[Path]:
    """Write one page per record and the index of all pages in ``out``; returns the pages written.

    Two records of one benchmark and day (two runs with other options) would share a page name: the
    second and later get their JSON file's name added (``...-sizes-photo-sizes-60.md``), and index
    entries of one title add their page's first table title."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in records:
        record = json.loads(path.read_text())
        page = out / f"{page_name(record)}.md"
        if page in written:
            page = out / f"{page_name(record)}-{re.sub(r'[^a-z0-9]+', '-', path.stem.lower()).strip('-')}.md"
        page.write_text(render(record))
        written.append(page)
    pages = []
    for page in out.glob("*.md"):
        lines = page.read_text().splitlines()
        if page.name != "index.md" and len(lines) > 2:
            first = next((line.removeprefix("### ") for line in lines if line.startswith("### ")), "")
            pages.append((lines[2].removeprefix("Measured "), lines[0].removeprefix("# "), page.name, first))
    titles = Counter(title for _, title, _, _ in pages)
    entries = [  # pages of one title are told apart by their first table's title
        f"- {name[:10]}: [{title}{f': {first}' if titles[title] > 1 and first else ''}]({name})"
        for _, title, name, first in sorted(pages, reverse=True)
    ]
    header = "# Benchmark results\n\nGenerated from the JSON records, newest first.\n\n"
    (out / "index.md").write_text(header + "\n".join(entries) + "\n")
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("records", nargs="+", type=Path, help="JSON records written with --json")
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks/results"))
    args = parser.parse_args()
    for page in write_pages(args.records, args.out):
        print(page)


if __name__ == "__main__":
    main()
