"""The readable summary ``emu run`` prints: the same numbers as the JSON, laid out for people."""
from __future__ import annotations

from emu.workload.sizes import format_duration, format_size

PAGE = 4096


def _pages(n: int) -> str:
    return f"{n:,} pages ({format_size(n * PAGE)})" if n else "0"


def _split_cost(cause: str, cost: dict, n: int) -> str:
    """One line: what a split of ``cause`` cost on average (``splits.cost_by_cause``)."""
    if not n:
        return f"{cause}: {cost['failed']:,} failed"
    parts = [f"{cost['firmware_calls'] / n:.1f} firmware calls",
             f"{format_duration(cost['firmware_ns'] // n)} in firmware",
             f"{format_duration(cost['ns'] // n)} in all",
             f"{format_size(cost['extra_pages'] * PAGE // n)} more memory"]
    for key, words in (("vcpu_kicks", "kicks"), ("tlb_flushes", "TLB flushes")):
        if cost[key]:
            parts.append(f"{cost[key] / n:.1f} {words}")
    for key, words in (("atomic_allocations", "allocations in atomic context"),
                       ("firmware_failed", "failed firmware calls"), ("failed", "failed")):
        if cost[key]:
            parts.append(f"{cost[key]:,} {words} in all")
    return f"per {cause} split: " + ", ".join(parts)


def render(data: dict, performance: dict | None = None) -> str:
    out: list[str] = []
    w = out.append
    v = data["vendor"]
    opts = ",".join(f"{k}={val}" for k, val in v["options"].items())
    w(f"emu {data['emu_version']}  scenario {data['scenario']}  vendor {v['name']}"
      + (f":{opts}" if opts else "") + f"  seed {data['seed']}")
    ops = data["operations"]
    w("")
    w(f"operations   {ops['total']:,} ({ops['guest']:,} by guests)"
      + (f", {ops['teardown']} teardown" if ops["teardown"] else ""))
    w("  " + "  ".join(f"{k} {n:,}" for k, n in ops["by_kind"].items()))
    m = data["mappings"]
    w("mappings     at end: " + "  ".join(f"{lvl} {n:,}" for lvl, n in m["end"].items())
      + "   installed: " + "  ".join(f"{lvl} {n:,}" for lvl, n in m["installed"].items()))
    for title, key in (("splits", "splits"), ("merges", "merges")):
        d = data[key]
        causes = "  ".join(f"{cause}: " + ", ".join(f"{lvl} {n:,}" for lvl, n in row.items())
                           for cause, row in d["by_cause"].items())
        extra = d.get("failed", d.get("refused", 0))
        label = "failed" if key == "splits" else "refused"
        w(f"{title:<12} {d['total']:,}" + (f"  ({causes})" if causes else "")
          + (f"  {label} {extra:,}" if extra else ""))
        for cause, cost in d.get("cost_by_cause", {}).items():
            w("  " + _split_cost(cause, cost, sum(d["by_cause"].get(cause, {}).values())))
    fw = data["firmware"]
    w(f"firmware     {fw['calls']:,} calls, {format_duration(fw['ns'])}"
      + (f", {fw['failed']:,} failed" if fw["failed"] else ""))
    for name, row in fw["by_call"].items():
        w(f"  {name:<28} {row['count']:>10,}  {format_duration(row['ns']):>10}"
          + (f"  failed {row['failed']:,}" if row["failed"] else ""))
    if data["accepts"]:
        w("accepts      " + "  ".join(f"{k} {n:,}" for k, n in data["accepts"].items()))
    t = data["time"]
    w(f"virtual time {format_duration(t['virtual_ns'])}")
    for kind, row in t["by_context"].items():
        w(f"  {kind:<14} {row['contexts']:>4} contexts  busy {format_duration(row['busy_ns']):>10}"
          f"  clock up to {format_duration(row['clock_max_ns'])}")
    w("locks")
    for name, row in data["locks"].items():
        w(f"  {name:<20} {row['acquisitions']:>10,} taken  {row['contended']:>8,} contended"
          f"  waited {format_duration(row['wait_ns'])}")
    w("pools                        taken  topups  peak pages  held now  taken empty")
    for name, row in data["pools"].items():
        if row["taken"] or row["topups"]:
            w(f"  {name:<24} {row['taken']:>9,} {row['topups']:>7,} {row['peak_pages']:>11,}"
              f" {row['held_pages']:>9,} {row['taken_while_empty']:>12,}")
    mem = data["memory"]
    cols = ["peak", "end"] + (["after_teardown"] if "after_teardown" in mem else [])
    w(f"memory by owner (host {format_size(mem['host_pages'] * PAGE)}; "
      f"used at peak {format_size(mem['used_peak_pages'] * PAGE)})")
    w("  " + f"{'owner':<18}" + "".join(f"{c:>16}" for c in cols))
    for owner in mem["peak"]:
        vals = [mem[c][owner] for c in cols]
        if owner == "free" or any(vals):
            w("  " + f"{owner:<18}" + "".join(f"{format_size(x * PAGE):>16}" for x in vals))
    e = data["errors"]
    if e["total"]:
        w(f"errors       {e['total']:,}: " + "  ".join(f"{k} {n:,}" for k, n in
                                                     e["by_kind"].items()))
        for kind, sites in e["by_site"].items():
            for site, n in sites.items():
                w(f"  {kind} at {site}: {n:,}")
        for rec in e["first"][:3]:
            w(f"  first: op {rec['op_index']} {rec['kind']}"
              + (f" at {rec['site']}" if "site" in rec else "") + f" ({rec['context']})")
    else:
        w("errors       none")
    if data["vendor_report"]:
        w(f"{v['name']}")
        for key, val in data["vendor_report"].items():
            w(f"  {key}: {val}")
    c = data["check"]
    if c["enabled"]:
        if c["violation"]:
            viol = c["violation"]
            w(f"check        FAILED at operation {viol['op_index']} ({viol['op']} vm {viol['vm']}"
              f" gfn {viol['gfn']}): " + "; ".join(viol["problems"]))
        else:
            w(f"check        passed after each of {c['batches_checked']} batches")
    if performance:
        w(f"took         {performance['run_s']:.2f} s to run ({performance['ns_per_op']} ns per "
          f"operation), {performance['compile_or_load_s']:.2f} s to compile or load")
    return "\n".join(out) + "\n"
