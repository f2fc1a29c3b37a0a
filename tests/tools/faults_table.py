"""Print (and write beside it, as .md) the fault figures that `make test-faults` collected.

    python tests/tools/faults_table.py .monstack/fault-figures.json

One row per scenario (tests/test_faults.py records them through tests/faultutil.py): the item, the fault,
the notifications a correct stack sends (expected) and what the sinks received, duplicated and lost.
Exits 1 when a row lost a notification or duplicated one without an upstream limit noted beside it.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

HEADER = ("| # | scenario | faults injected | expected | received | duplicated | lost | note |\n"
          "|---|---|---|---:|---:|---:|---:|---|")


def table(rows: dict[str, dict]) -> str:
    lines = [HEADER]
    for row in sorted(rows.values(), key=lambda r: (r["item"], r["scenario"])):
        lines.append(f"| {row['item']} | {row['scenario']} | {row['faults']} | {row['expected']} | {row['received']} | "
                     f"{row['duplicated']} | {row['lost']} | {row.get('note', '')} |")
    return "\n".join(lines) + "\n"


def bad(rows: dict[str, dict]) -> list[str]:
    return [r["scenario"] for r in rows.values()
            if r["lost"] or (r["duplicated"] and "upstream limit" not in r.get("note", ""))]


def main(argv: list[str]) -> int:
    path = Path(argv[1] if len(argv) > 1 else ".monstack/fault-figures.json")
    if not path.exists():
        print(f"no figures in {path}: no fault scenario ran", file=sys.stderr)
        return 1
    rows = json.loads(path.read_text())
    text = table(rows)
    path.with_suffix(".md").write_text(text)
    print(text, end="")
    print(f"{len(rows)} scenarios; {sum(r['expected'] for r in rows.values())} notifications expected, "
          f"{sum(r['received'] for r in rows.values())} received, {sum(r['duplicated'] for r in rows.values())} duplicated, "
          f"{sum(r['lost'] for r in rows.values())} lost (table also in {path.with_suffix('.md')})")
    wrong = bad(rows)
    if wrong:
        print("lost or unexplained duplicate notifications in: " + "; ".join(wrong), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
