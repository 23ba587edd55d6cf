"""The ``emu`` command: run and compare scenarios, attach probes, list plugins and points.

Bad input (a wrong scenario field, an unknown vendor or option, a broken cost override) ends
with one line ``emu: error: ...`` and exit status 2, never a traceback.
"""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import List, Optional

import structlog
import typer

from emu.errors import EmuError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Emulate how KVM hands private memory to confidential VMs.")


def _setup_logging(verbose: bool) -> None:
    level = logging.DEBUG if verbose else logging.WARNING
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
    )


def _fail(message: str) -> None:
    typer.echo(f"emu: error: {message}", err=True)
    raise typer.Exit(2)


def _plugins(plugin: List[str], no_autoload: bool, block: List[str]):
    from emu.plugins import load_plugins

    return load_plugins(plugin_paths=tuple(plugin), autoload=not no_autoload,
                        blocked=tuple(block))


PluginOpt = typer.Option([], "--plugin", "-p", help="Load a plugin: a .py file or a module name.")
NoAutoloadOpt = typer.Option(False, "--no-autoload",
                             help="Do not load plugins from entry points (EMU_DISABLE_PLUGIN_AUTOLOAD).")
BlockOpt = typer.Option([], "--block", help="Never load the plugin of this name (repeatable).")
CheckOpt = typer.Option(False, "--check", help="Verify invariants after every batch.")
SeedOpt = typer.Option(None, "--seed", help="Override the scenario's seed.")
CacheDirOpt = typer.Option(None, "--cache-dir", envvar="EMU_CACHE_DIR",
                           help="Where compiled code is cached.")
ProgressOpt = typer.Option(None, "--progress/--no-progress",
                           help="Show progress (default: on a terminal).")
VerboseOpt = typer.Option(False, "--verbose", help="Debug logging on stderr.")
ProgramOpt = typer.Option([], "-e", "--program",
                          help="A probe program, bpftrace style: 'kvm:split { @[args.cause] = "
                               "count(); }' (repeatable).")
ProbeFileOpt = typer.Option([], "--probe-file", help="A probe script file (repeatable).")
ProbeFormatOpt = typer.Option("text", "-f", "--probe-format",
                              help="Probe output: text (bpftrace's) or json (bpftrace -f json).")
PlotOpt = typer.Option(None, "--plot",
                       help="Draw memory by owner over virtual time and splits by cause (PNG).")
TraceOpt = typer.Option(None, "--trace",
                        help="Write a Chrome trace-event JSON file that Perfetto opens.")
TraceEventsOpt = typer.Option(100_000, "--trace-events",
                              help="Events a --trace keeps per run (the first ones).")
TraceFromOpt = typer.Option("0ms", "--trace-from",
                            help="Virtual time a --trace starts at, e.g. 2s or 150ms.")


@app.command()
def run(
    scenario: Path = typer.Argument(..., help="Scenario TOML file."),
    vendor: str = typer.Option("plain", "--vendor", "-v", help="NAME[:opt=val,...]"),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    check: bool = CheckOpt,
    cost: List[str] = typer.Option([], "--cost", help="Override a cost: NAME=NS (repeatable)."),
    seed: Optional[int] = SeedOpt,
    no_teardown: bool = typer.Option(False, "--no-teardown",
                                     help="Leave VMs alive at the end (no after-teardown column)."),
    emit_source: bool = typer.Option(False, "--emit-source",
                                     help="Print the generated driver module and exit."),
    timing: bool = typer.Option(False, "--timing", help="Include wall-clock figures in --json."),
    batch: int = typer.Option(1 << 16, "--batch", help="Operations per batch."),
    program: List[str] = ProgramOpt,
    probe_file: List[Path] = ProbeFileOpt,
    probe_format: str = ProbeFormatOpt,
    quiet: bool = typer.Option(False, "--quiet", "-q",
                               help="Print only the probes' output, not emu's summary."),
    emit_probe_source: bool = typer.Option(False, "--emit-probe-source",
                                           help="Print the probes' generated module and exit."),
    trace: Optional[Path] = TraceOpt,
    trace_events: int = TraceEventsOpt,
    trace_from: str = TraceFromOpt,
    plot: Optional[Path] = PlotOpt,
    cache_dir: Optional[Path] = CacheDirOpt,
    progress: Optional[bool] = ProgressOpt,
    plugin: List[str] = PluginOpt,
    no_autoload: bool = NoAutoloadOpt,
    block: List[str] = BlockOpt,
    verbose: bool = VerboseOpt,
):
    """Run SCENARIO on one vendor and print what happened.

    With -e PROGRAM or --probe-file FILE, a bpftrace-like probe program runs with the workload
    and prints its output first (to stderr with --json; emu probes -l lists the points).
    """
    _setup_logging(verbose)
    from emu.api import run as api_run
    from emu.report.summary import render
    from emu.workload import ScenarioError

    try:
        plugins = _plugins_warned(plugin, no_autoload, block)
        watch = _watch_options(program, probe_file, probe_format, json_out, trace, trace_events,
                               trace_from, sample=plot is not None)
        if emit_source or emit_probe_source:
            _emit_source(scenario, vendor, plugins, cache_dir,
                         watch["probes"] if emit_probe_source else None)
            return
        result = api_run(scenario, vendor, costs=cost, check=check, plugins=plugins, seed=seed,
                         cache_dir=cache_dir, batch_size=batch, teardown=not no_teardown,
                         progress=progress, **watch)
        if trace:
            _write_trace(trace, [result.trace], scenario)
        if plot:
            _write_plot(plot, [(vendor, result)], scenario)
    except (EmuError, ScenarioError) as e:
        _fail(str(e))
    if quiet:
        pass
    elif json_out:
        typer.echo(result.to_json(timing=timing), nl=False)
    else:
        from emu.report.sections import render_plugin_sections

        typer.echo(render(result.data, result.performance), nl=False)
        typer.echo(render_plugin_sections(result.data, plugins.report_sections), nl=False)
    if result.data["check"]["violation"]:
        raise typer.Exit(1)


@app.command()
def compare(
    scenario: Path = typer.Argument(..., help="Scenario TOML file."),
    vendor: List[str] = typer.Option([], "--vendor", "-v",
                                     help="NAME[:opt=val,...]; repeat for each column (default: "
                                          "the scenario's [compare] vendors)."),
    json_out: bool = typer.Option(False, "--json", help="Print the table as JSON."),
    full: bool = typer.Option(False, "--full", help="With --json: each vendor's whole result."),
    all_rows: bool = typer.Option(False, "--all-rows",
                                  help="Also show rows that are 0 for every vendor."),
    check: bool = CheckOpt,
    cost: List[str] = typer.Option([], "--cost",
                                   help="NAME=NS, for every vendor whose table has NAME."),
    seed: Optional[int] = SeedOpt,
    no_teardown: bool = typer.Option(False, "--no-teardown",
                                     help="Leave VMs alive at the end (no after-teardown rows)."),
    program: List[str] = ProgramOpt,
    probe_file: List[Path] = ProbeFileOpt,
    probe_format: str = ProbeFormatOpt,
    trace: Optional[Path] = TraceOpt,
    trace_events: int = TraceEventsOpt,
    trace_from: str = TraceFromOpt,
    plot: Optional[Path] = PlotOpt,
    report: Optional[Path] = typer.Option(None, "--report",
                                          help="Write DIR/index.html: summary, plot and table "
                                               "(works offline)."),
    cache_dir: Optional[Path] = CacheDirOpt,
    progress: Optional[bool] = ProgressOpt,
    plugin: List[str] = PluginOpt,
    no_autoload: bool = NoAutoloadOpt,
    block: List[str] = BlockOpt,
    verbose: bool = VerboseOpt,
):
    """Run SCENARIO on every --vendor (the identical operation stream) and print one table,
    vendors as columns. Probes (-e, --probe-file) attach to every run."""
    _setup_logging(verbose)
    from emu.report.compare import compare as do_compare
    from emu.workload import ScenarioError

    try:
        plugins = _plugins_warned(plugin, no_autoload, block)
        watch = _watch_options(program, probe_file, probe_format, json_out, trace, trace_events,
                               trace_from, sample=plot is not None or report is not None)
        table = do_compare(scenario, vendor, plugins=plugins, costs=cost, seed=seed, check=check,
                           cache_dir=cache_dir, teardown=not no_teardown, progress=progress,
                           all_rows=all_rows, **watch)
        if trace:
            _write_trace(trace, [r.trace for r in table.results], scenario)
        if plot:
            _write_plot(plot, list(zip(table.vendors, table.results)), scenario)
        if report:
            _write_report(report, table)
    except (EmuError, ScenarioError) as e:
        _fail(str(e))
    typer.echo(table.to_json(full=full) if json_out else table.render(), nl=False)
    if any(r.data["check"]["violation"] for r in table.results):
        raise typer.Exit(1)


def _plugins_warned(plugin: List[str], no_autoload: bool, block: List[str]):
    """The loaded plugins; a broken one is a warning naming it, and the rest still load."""
    plugins = _plugins(plugin, no_autoload, block)
    for p in plugins.problems:
        typer.echo(f"emu: warning: plugin {p.plugin}: {p.reason}", err=True)
    return plugins


def _watch_options(program, probe_file, probe_format, json_out, trace, trace_events, trace_from,
                   sample: bool) -> dict:
    """What ``emu run`` and ``emu compare`` attach to a run: probes, a trace recorder, a memory
    sampler (keyword arguments of :func:`emu.api.run`). Probe output goes to stderr when
    stdout carries JSON."""
    return {
        "probes": _probe_scripts(program, probe_file),
        "probe_stream": sys.stderr if json_out else sys.stdout,
        "probe_json": _probe_json(probe_format),
        "trace_events": trace_events if trace else None,
        "trace_from_ns": _duration(trace_from, "--trace-from"),
        "sample_memory": sample,
    }


def _probe_scripts(programs: List[str], files: List[Path]):
    """The probe scripts of -e and --probe-file, in that order (one program)."""
    from emu.probe.compile import Script

    scripts = [Script(p, "<-e>" if len(programs) == 1 else f"<-e #{i + 1}>")
               for i, p in enumerate(programs)]
    for f in files:
        try:
            scripts.append(Script(Path(f).read_text(), str(f)))
        except OSError as e:
            raise EmuError(f"probe file {str(f)!r}: {e.strerror or e}") from None
    return scripts


def _duration(text: str, option: str) -> int:
    """A duration option (``150ms``, ``2s``) in virtual nanoseconds."""
    from emu.workload.sizes import parse_duration

    try:
        return int(parse_duration(text))
    except (ValueError, TypeError) as e:
        raise EmuError(f"{option} {text!r}: {e}") from None


def _write_trace(path: Path, recorders, scenario) -> None:
    from emu.report.trace import write_chrome_trace

    try:
        info = write_chrome_trace(path, recorders, str(scenario))
    except OSError as e:
        raise EmuError(f"--trace {str(path)!r}: {e.strerror or e}") from None
    for run in info["runs"]:
        note = (f"; {run['events_dropped']:,} more dropped at the cap (--trace-events raises it)"
                if run["events_dropped"] else "")
        typer.echo(f"emu: trace: {run['label']}: {run['events_kept']:,} events in {path}{note}",
                   err=True)


def _write_plot(path: Path, runs, scenario) -> None:
    from emu.report.plot import plot_runs

    try:
        plot_runs(path, runs, title=f"{scenario}: memory held besides guest memory")
    except OSError as e:
        raise EmuError(f"--plot {str(path)!r}: {e.strerror or e}") from None
    typer.echo(f"emu: plot: {path}", err=True)


def _write_report(directory: Path, table) -> None:
    from emu.report.html import write_report

    try:
        page = write_report(directory, table, table.description)
    except OSError as e:
        raise EmuError(f"--report {str(directory)!r}: {e.strerror or e}") from None
    typer.echo(f"emu: report: {page}", err=True)


def _probe_json(fmt: str) -> bool:
    if fmt not in ("text", "json"):
        raise typer.BadParameter(f"{fmt!r}: the formats are text and json", param_hint="-f")
    return fmt == "json"


def _emit_source(scenario, vendor, plugins, cache_dir, scripts=None):
    from emu.api import _vendor_sources
    from emu.engine.session import open_session
    from emu.workload import build_workload, load_scenario

    sc = load_scenario(scenario, plugins.phase_kinds)
    wl = build_workload(sc, plugins.phase_kinds)
    from emu.engine.options import split_vendor_spec

    name, _ = split_vendor_spec(vendor)
    s = open_session(plugins, wl.layout, vendor, cache_root=cache_dir,
                     plugin_sources=_vendor_sources(plugins, name) if name in plugins.vendors
                     else None)
    if scripts:
        from emu.api import attach_probes

        probe_run = attach_probes(s, plugins, scripts, stream=open(os.devnull, "w"))
        typer.echo(probe_run.program.source, nl=False)
        return
    typer.echo(s.source, nl=False)


@app.command("probes")
def probes_cmd(
    pattern: str = typer.Argument("*", help="Glob over point names, e.g. 'tdx:*'."),
    list_: bool = typer.Option(True, "--list", "-l", help="List matching points (default)."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="With their fields and docs."),
    plugin: List[str] = PluginOpt,
    no_autoload: bool = NoAutoloadOpt,
    block: List[str] = BlockOpt,
):
    """List the probe points of the core and every loaded plugin (like bpftrace -l / -lv)."""
    _setup_logging(False)
    from emu.probe.listing import format_points

    plugins = _plugins_warned(plugin, no_autoload, block)
    text = format_points(plugins.all_points(), pattern, verbose)
    if not text:
        _fail(f"no probe point matches {pattern!r}")
    typer.echo(text, nl=False)


@app.command("plugins")
def plugins_cmd(
    verbose: bool = typer.Option(False, "--verbose", "-V", help="List everything each provides."),
    plugin: List[str] = PluginOpt,
    no_autoload: bool = NoAutoloadOpt,
    block: List[str] = BlockOpt,
):
    """List plugins: version, where each came from, what it provides, and broken ones."""
    _setup_logging(False)
    from emu.plugins import format_plugins

    typer.echo(format_plugins(_plugins(plugin, no_autoload, block), verbose=verbose), nl=False)


def main() -> None:
    app(prog_name="emu")


if __name__ == "__main__":
    main()
