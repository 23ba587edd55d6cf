"""``--report DIR``: the comparison as one HTML page that works offline.

``DIR/index.html`` holds a short summary (for each headline row, which vendor is lowest and
which highest), the plot (``DIR/plot.png``, see :mod:`emu.report.plot`) and the whole table; the
same table is in ``DIR/table.json``. No script, style sheet or font is fetched: the page is a
file a reviewer can attach to a mailing-list post.
"""
from __future__ import annotations

import html
from pathlib import Path

from emu.report.plot import plot_runs
from emu.report.sections import format_value

#: rows the summary speaks about, in its order, with what "more" means for each
SUMMARY_ROWS = (
    ("virtual time", "virtual time"),
    ("splits", "huge-mapping splits"),
    ("firmware calls", "firmware calls"),
    ("time in firmware", "time in firmware"),
    ("errors", "errors (atomic allocations, failures)"),
    ("left after teardown", "memory left after every VM is gone"),
)

STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; font-size: 13px; }
td, th { padding: 2px 10px; text-align: right; white-space: nowrap; }
td:first-child, th:first-child { text-align: left; }
tr.section td { font-weight: bold; padding-top: 10px; text-align: left; }
tr:nth-child(even) { background: #f4f4f4; }
img { max-width: 100%; border: 1px solid #ddd; }
pre { background: #f4f4f4; padding: 1em; }
"""


def summary_lines(table) -> list[str]:
    """Plain sentences: for each headline row, the lowest and highest vendor."""
    lines = []
    for label, words in SUMMARY_ROWS:
        try:
            values = table.row(label)
        except KeyError:
            continue
        unit = _unit(table, label)
        numbers = [(v, spec) for v, spec in zip(values, table.vendors)
                   if isinstance(v, (int, float))]
        if len(numbers) < 2:
            continue
        lo, hi = min(numbers), max(numbers)
        if lo[0] == hi[0]:
            lines.append(f"{words}: the same for every vendor ({format_value(lo[0], unit)}).")
        else:
            lines.append(f"{words}: lowest {lo[1]} ({format_value(lo[0], unit)}), highest "
                         f"{hi[1]} ({format_value(hi[0], unit)}).")
    return lines


def _unit(table, label: str) -> str:
    for sec in table.sections:
        for r in sec["rows"]:
            if r["label"].strip() == label:
                return r["unit"]
    return "count"


def write_report(directory, table, description: str = "") -> Path:
    """Write ``index.html``, ``plot.png`` and ``table.json`` for ``table`` (a
    :class:`emu.report.compare.Comparison` whose runs sampled memory); returns the page."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    plot_runs(out / "plot.png", list(zip(table.vendors, table.results)),
              title=f"{table.scenario}: memory held besides guest memory")
    (out / "table.json").write_text(table.to_json())
    esc = html.escape
    parts = ["<!doctype html>", "<html><head><meta charset='utf-8'>",
             f"<title>emu compare {esc(table.scenario)}</title>", f"<style>{STYLE}</style>",
             "</head><body>",
             f"<h1>emu compare: {esc(table.scenario)}</h1>",
             f"<p>seed {table.seed}; vendors: {esc(', '.join(table.vendors))}. Every vendor ran "
             "the identical operation stream; times are virtual.</p>"]
    if description:
        parts.append(f"<pre>{esc(description)}</pre>")
    parts.append("<h2>Summary</h2><ul>")
    parts += [f"<li>{esc(line)}</li>" for line in summary_lines(table)]
    parts.append("</ul>")
    parts.append("<h2>Memory over time, splits by cause</h2>")
    parts.append("<img src='plot.png' alt='memory by owner over virtual time per vendor, and "
                 "splits and merges by cause'>")
    parts.append("<h2>Table</h2><table><tr><th></th>")
    parts += [f"<th>{esc(spec)}</th>" for spec in table.vendors]
    parts.append("</tr>")
    for sec in table.sections:
        if not sec["rows"]:
            continue
        parts.append(f"<tr class='section'><td colspan='{len(table.vendors) + 1}'>"
                     f"{esc(sec['title'])}</td></tr>")
        for r in sec["rows"]:
            cells = "".join(f"<td>{esc(format_value(v, r['unit']))}</td>" for v in r["values"])
            parts.append(f"<tr><td>{esc(r['label'])}</td>{cells}</tr>")
    parts.append("</table>")
    for p in table.problems:
        parts.append(f"<p>note: {esc(p)}</p>")
    parts.append("<p>The same table as JSON: <a href='table.json'>table.json</a>.</p>")
    parts.append("</body></html>")
    page = out / "index.html"
    page.write_text("\n".join(parts) + "\n")
    return page
