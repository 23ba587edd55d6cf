"""The ``emu`` command: run scenarios, list plugins.

Bad input (a wrong scenario field, an unknown vendor or option, a broken cost override) ends
with one line ``emu: error: ...`` and exit status 2, never a traceback.
"""
from __future__ import annotations

import logging
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
    cache_dir: Optional[Path] = CacheDirOpt,
    progress: Optional[bool] = ProgressOpt,
    plugin: List[str] = PluginOpt,
    no_autoload: bool = NoAutoloadOpt,
    block: List[str] = BlockOpt,
    verbose: bool = VerboseOpt,
):
    """Run SCENARIO on one vendor and print what happened."""
    _setup_logging(verbose)
    from emu.api import run as api_run
    from emu.report.summary import render
    from emu.workload import ScenarioError

    try:
        plugins = _plugins(plugin, no_autoload, block)
        for p in plugins.problems:
            typer.echo(f"emu: warning: plugin {p.plugin}: {p.reason}", err=True)
        if emit_source:
            _emit_source(scenario, vendor, plugins, cache_dir)
            return
        result = api_run(scenario, vendor, costs=cost, check=check, plugins=plugins, seed=seed,
                         cache_dir=cache_dir, batch_size=batch, teardown=not no_teardown,
                         progress=progress)
    except (EmuError, ScenarioError) as e:
        _fail(str(e))
    if json_out:
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
    vendor: List[str] = typer.Option(..., "--vendor", "-v",
                                     help="NAME[:opt=val,...]; repeat for each column."),
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
    cache_dir: Optional[Path] = CacheDirOpt,
    progress: Optional[bool] = ProgressOpt,
    plugin: List[str] = PluginOpt,
    no_autoload: bool = NoAutoloadOpt,
    block: List[str] = BlockOpt,
    verbose: bool = VerboseOpt,
):
    """Run SCENARIO on every --vendor (the identical operation stream) and print one table,
    vendors as columns."""
    _setup_logging(verbose)
    from emu.report.compare import compare as do_compare
    from emu.workload import ScenarioError

    try:
        plugins = _plugins(plugin, no_autoload, block)
        for p in plugins.problems:
            typer.echo(f"emu: warning: plugin {p.plugin}: {p.reason}", err=True)
        table = do_compare(scenario, vendor, plugins=plugins, costs=cost, seed=seed, check=check,
                           cache_dir=cache_dir, teardown=not no_teardown, progress=progress,
                           all_rows=all_rows)
    except (EmuError, ScenarioError) as e:
        _fail(str(e))
    typer.echo(table.to_json(full=full) if json_out else table.render(), nl=False)
    if any(r.data["check"]["violation"] for r in table.results):
        raise typer.Exit(1)


def _emit_source(scenario, vendor, plugins, cache_dir):
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
    typer.echo(s.source, nl=False)


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
