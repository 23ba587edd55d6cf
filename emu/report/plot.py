"""``--plot FILE.png``: memory by owner over virtual time per vendor, and splits by cause.

One figure: a row of panels, one per run (vendor), each with the host memory every owner other
than the guests' own memory holds over virtual time (page tables, dynamic firmware metadata such
as Dynamic PAMT pairs, control pages, memory caches, pools, leaks), on a shared scale so the
vendors compare at a glance; under them, the TDP MMU's splits and merges by cause, one bar per
vendor. Guest memory is left out (the same for every vendor, it would dwarf the rest), and so is
static metadata (static PAMT, the RMP): it is fixed at boot, and its size is in the panel's title.
Samples are taken after each batch of operations, so a curve holds its value until the next one.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from emu.model import consts as C

#: owners not drawn: free memory, the host's own reservation, and the guests' memory itself
HIDDEN = ("free", "host", "guest_private", "guest_shared")
MIB = 1 << 20


def _total(value) -> int:
    """A count, or the sum of a count per level (``{"2M": 12, "1G": 1}``)."""
    return sum(value.values()) if isinstance(value, dict) else int(value)


def _time_unit(max_ns: int) -> tuple[str, float]:
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("us", 1e3)):
        if max_ns >= scale:
            return unit, scale
    return "ns", 1.0


def plot_runs(path, runs, title: str = ""):
    """Draw ``runs`` (``[(label, result)]``, results with ``memory_samples``) into ``path``."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    n = len(runs)
    owners = [i for i, name in enumerate(C.OWNER_NAMES) if name not in HIDDEN]
    static = C.OWNER_NAMES.index("static_metadata")
    owners.remove(static)                   # fixed at boot: said in the panel's title
    series = []
    for label, result in runs:
        t, pages = result.memory_samples.series()
        series.append((label, t, pages))
    shown = [o for o in owners if any(p.size and p[:, o].max() > 0 for _, _, p in series)]
    colors = {o: plt.get_cmap("tab10")(k % 10) for k, o in enumerate(owners)}
    top = max((p[:, shown].max() for _, _, p in series if p.size and shown), default=0)
    page = 4096 / MIB
    fig = plt.figure(figsize=(max(8.0, 4.2 * n), 8.0), constrained_layout=True)
    grid = fig.add_gridspec(2, n, height_ratios=(3, 2))
    axes = [fig.add_subplot(grid[0, i]) for i in range(n)]
    for ax, (label, t, pages) in zip(axes, series):
        unit, scale = _time_unit(int(t.max()) if t.size else 0)
        for o in shown:
            ax.plot(t / scale, pages[:, o] * page, label=C.OWNER_NAMES[o], color=colors[o],
                    linewidth=1.5, drawstyle="steps-post")
        fixed = int(pages[:, static].max()) * page if pages.size else 0
        ax.set_title(f"{label}\nstatic metadata {fixed:,.1f} MiB (not drawn)" if fixed
                     else label, fontsize=10)
        ax.set_xlabel(f"virtual time ({unit})")
        ax.set_ylim(0, top * page * 1.08 if top else 1)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("MiB held")
    if shown:
        axes[-1].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8,
                        title="owner", title_fontsize=8)
    bars = fig.add_subplot(grid[1, :])
    keys = []
    for _, result in runs:
        for kind in ("splits", "merges"):
            for cause in result[kind]["by_cause"]:
                if (kind, cause) not in keys:
                    keys.append((kind, cause))
    x = np.arange(max(1, len(keys)))
    width = 0.8 / n
    for i, (label, result) in enumerate(runs):
        values = [_total(result[kind]["by_cause"].get(cause, 0)) for kind, cause in keys] or [0]
        bars.bar(x + (i - (n - 1) / 2) * width, values, width, label=label)
    bars.set_xticks(x, [f"{kind[:-1]}: {cause}" for kind, cause in keys] or ["(none)"])
    bars.set_ylabel("count")
    bars.set_title("TDP MMU splits and merges of huge mappings, by cause", fontsize=11)
    bars.legend(fontsize=8)
    bars.grid(axis="y", alpha=0.3)
    fig.suptitle(title or "Memory held besides guest memory, over virtual time", fontsize=13)
    fig.savefig(Path(path), dpi=110)
    plt.close(fig)
    return {"panels": n, "owners": [C.OWNER_NAMES[o] for o in shown],
            "bars": [f"{k}: {c}" for k, c in keys]}
