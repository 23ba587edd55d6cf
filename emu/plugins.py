"""Find, load and check plugins; describe them for ``emu plugins``.

Plugins are collected once, at setup (see ``emu.hookspecs``): :func:`load_plugins` calls every
hook of every plugin a single time and keeps the validated records in a :class:`Plugins`. Nothing
here runs per event.

Where plugins come from, in this order (the order decides who wins a name):

1. the built-in modules of :data:`DEFAULT_PLUGINS` (built-in features use the same hooks, as in
   datasette and pytest);
2. the ``emu`` entry-point group, sorted by name (off with ``autoload=False`` or a non-empty
   ``EMU_DISABLE_PLUGIN_AUTOLOAD``);
3. ``plugin_paths``: ``.py`` files or importable module names (``--plugin``).

A name in ``blocked`` (or in ``EMU_BLOCK_PLUGINS=a,b``) is never imported, like pytest's
``-p no:NAME``. ``EMU_TRACE_PLUGINS=1`` logs every hook call.

One broken plugin never stops the others: every failure becomes a :class:`PluginProblem`, is
logged as a warning, and only the offending plugin (import errors, bad signatures, unknown hooks,
hooks that raise) or record (wrong type, bad kernels, duplicate names) is dropped.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import re
import reprlib
import sys
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import Any, Iterable

import pluggy
import structlog

import emu
from emu import hookspecs
from emu.model.vendor_ops import kernel_problems
from emu.records import PhaseKind, ProbePoint, ReportSection, Vendor

log = structlog.get_logger("emu.plugins")

#: Built-in plugin modules, registered before anything else.
DEFAULT_PLUGINS = ("emu.builtin_points", "emu.builtin_phases", "emu.builtin_report")

ENTRY_POINT_GROUP = "emu"

#: ``provider:name``, as bpftrace names its probes; no wildcards (those belong to probe scripts).
POINT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*:[A-Za-z_][A-Za-z0-9_]*")

# The record hooks, the record type each must return, and how ``provides`` names it.
_RECORD_HOOKS = (
    ("emu_probe_points", ProbePoint, "probe"),
    ("emu_phase_kinds", PhaseKind, "phase"),
    ("emu_report_sections", ReportSection, "report section"),
    ("emu_vendors", Vendor, "vendor"),
)


@dataclass(frozen=True)
class PluginProblem:
    """Why a plugin, or one record it returned, was not loaded."""

    plugin: str
    reason: str


@dataclass(frozen=True)
class PluginInfo:
    """One loaded plugin, as ``emu plugins`` lists it.

    ``source`` says where it came from: ``builtin``, ``entry point 'NAME' (distribution D V)``,
    ``file PATH`` or ``module NAME``. ``provides`` names what it contributed, e.g.
    ``["vendor plain", "probe kvm:fault"]``.
    """

    name: str
    version: str
    source: str
    provides: list[str]


@dataclass
class Plugins:
    """Everything the loaded plugins provide, validated, keyed by name.

    ``probe_points`` holds the points outside any vendor, the core's first, in declaration
    order; a vendor's own points are in its :class:`~emu.records.Vendor` record.
    """

    vendors: dict[str, Vendor] = field(default_factory=dict)
    phase_kinds: dict[str, PhaseKind] = field(default_factory=dict)
    probe_points: dict[str, ProbePoint] = field(default_factory=dict)
    report_sections: dict[str, ReportSection] = field(default_factory=dict)
    problems: list[PluginProblem] = field(default_factory=list)
    infos: list[PluginInfo] = field(default_factory=list)
    #: vendor name -> name of the plugin that provided it
    _vendor_plugins: dict[str, str] = field(default_factory=dict, repr=False)
    #: vendor name -> merged cost overrides
    _cost_overrides: dict[str, dict[str, int]] = field(default_factory=dict, repr=False)
    #: plugin name -> the loaded module, in load order
    _modules: dict[str, Any] = field(default_factory=dict, repr=False)

    def cost_overrides(self, vendor: str) -> dict[str, int]:
        """The plugin-supplied cost overrides for ``vendor`` (empty when none)."""
        return dict(self._cost_overrides.get(vendor, {}))

    def vendor_plugin(self, name: str) -> str:
        """The name of the plugin that provides vendor ``name`` (``KeyError`` if none)."""
        return self._vendor_plugins[name]

    def all_points(self) -> dict[str, ProbePoint]:
        """Every probe point any loaded plugin declares: the core's, then each vendor's."""
        points = dict(self.probe_points)
        for name in sorted(self.vendors):
            for p in self.vendors[name].points:
                points.setdefault(p.name, p)
        return points

    def plugin_sources(self) -> list[Path]:
        """Source files (modules) or directories (packages) of every loaded plugin.

        The engine hashes these to key its cache of generated modules, because numba does not
        track dependencies across files.
        """
        paths: list[Path] = []
        for module in self._modules.values():
            path = _module_source(module)
            if path is not None and path not in paths:
                paths.append(path)
        return paths


def load_plugins(plugin_paths: Iterable[str | os.PathLike] = (), autoload: bool = True,
                 blocked: Iterable[str] = ()) -> Plugins:
    """Load, register and validate every plugin; collect their records once.

    :param plugin_paths: ``.py`` files or importable module names to load as well.
    :param autoload: load the ``emu`` entry-point group (also off when the environment sets
        ``EMU_DISABLE_PLUGIN_AUTOLOAD``).
    :param blocked: plugin names never to load (added to ``EMU_BLOCK_PLUGINS=a,b``).
    :returns: the validated :class:`Plugins`; broken plugins are in ``problems``.
    """
    loader = _Loader(blocked)
    for name in DEFAULT_PLUGINS:
        loader.load(name, "builtin", lambda name=name: importlib.import_module(name))
    if autoload and not os.environ.get("EMU_DISABLE_PLUGIN_AUTOLOAD"):
        for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name):
            dist = ep.dist
            where = f" (distribution {dist.name} {dist.version})" if dist is not None else ""
            loader.load(ep.name, f"entry point {ep.name!r}{where}", ep.load,
                        version=dist.version if dist is not None else None)
    for spec in plugin_paths:
        text = os.fspath(spec)
        if text.endswith(".py") or os.sep in text:
            path = Path(text).resolve()
            loader.load(path.stem, f"file {path}", lambda path=path: import_plugin_file(path))
        else:
            loader.load(text, f"module {text}", lambda text=text: importlib.import_module(text))
    return loader.collect()


def import_plugin_file(path: str | os.PathLike) -> ModuleType:
    """Import a plugin from a ``.py`` file, once per path.

    The module is named ``emu_plugin_file_<stem>_<hash of the path>`` and kept in
    ``sys.modules``, so two files with the same name do not collide and the same file imported
    twice is the same module (the engine may need to import it again by path).
    """
    path = Path(path).resolve()
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:10]
    stem = re.sub(r"\W", "_", path.stem)
    modname = f"emu_plugin_file_{stem}_{digest}"
    if modname in sys.modules:
        return sys.modules[modname]
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    spec = importlib.util.spec_from_file_location(modname, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[modname] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[modname]
        raise
    return module


# -------------------------------------------------------------------------------------------------
# Loading
# -------------------------------------------------------------------------------------------------


class _Loader:
    """One loading pass: a fresh pluggy manager, the plugins registered so far, the problems."""

    def __init__(self, blocked: Iterable[str]):
        self.pm = pluggy.PluginManager("emu")
        self.pm.add_hookspecs(hookspecs)
        env_blocked = os.environ.get("EMU_BLOCK_PLUGINS", "").split(",")
        for name in [*blocked, *env_blocked]:
            if name.strip():
                self.pm.set_blocked(name.strip())
        if os.environ.get("EMU_TRACE_PLUGINS"):
            self.pm.add_hookcall_monitoring(_trace_before, _trace_after)
        self.result = Plugins()
        #: plugin name -> (source, version), in load order
        self.meta: dict[str, tuple[str, str]] = {}
        #: (kind, record name) or ("cost", vendor, cost) -> the plugin that provided it
        self.owners: dict[tuple, str] = {}

    def problem(self, plugin: str, reason: str) -> None:
        log.warning("plugin problem", plugin=plugin, reason=reason)
        self.result.problems.append(PluginProblem(plugin, reason))

    def load(self, name: str, source: str, importer, version: str | None = None) -> None:
        """Import one plugin and register it, unless it is blocked or broken."""
        if self.pm.is_blocked(name):
            log.info("plugin blocked", plugin=name)
            return
        try:
            module = importer()
        except Exception as exc:  # noqa: BLE001 - any import failure is the plugin's problem
            self.problem(name, f"import failed: {_describe(exc)}")
            return
        if self.pm.is_registered(module):
            return  # the same module reached twice (entry point and --plugin): load it once
        if self.pm.has_plugin(name):
            self.problem(name, f"a plugin named {name!r} is already loaded; {source} is ignored")
            return
        try:
            self.pm.register(module, name=name)
            # check_pending stops at the first unknown hook; earlier plugins already passed it
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            self.pm.unregister(name=name)
            message = re.sub(r" in plugin <.*>$", "", " ".join(str(exc).split()))
            self.problem(name, f"does not match the hook specs: {message}")
            return
        if version is None:
            version = getattr(module, "__version__", None)
            if version is None:
                version = emu.__version__ if source == "builtin" else "-"
        self.result._modules[name] = module
        self.meta[name] = (source, str(version))

    def collect(self) -> Plugins:
        """Call each hook of each plugin once, validate the records, and fill the result."""
        raw = {}
        for name, module in list(self.result._modules.items()):
            raw[name] = {}
            for hook, _, _ in _RECORD_HOOKS:
                try:
                    raw[name][hook] = self.call_one(module, hook)
                except Exception as exc:  # noqa: BLE001 - a raising hook drops its plugin
                    self.pm.unregister(name=name)
                    del self.result._modules[name], raw[name]
                    self.problem(name, f"{hook} raised {_describe(exc)}")
                    break
        provides: dict[str, list[str]] = {name: [] for name in raw}
        # hook by hook, so core probe points are known before vendors' points are checked
        for hook, kind, label in _RECORD_HOOKS:
            for name, results in raw.items():
                for record in self.records(name, hook, kind, results[hook]):
                    if self.accept(name, label, record):
                        provides[name].append(f"{label} {record.name}")
        for vendor in self.result.vendors:
            for name, module in self.result._modules.items():
                if self.add_costs(name, module, vendor):
                    provides[name].append(f"costs {vendor}")
        self.result.infos = [PluginInfo(name, version, source, provides[name])
                             for name, (source, version) in self.meta.items()
                             if name in self.result._modules]
        return self.result

    def call_one(self, module, hook: str, **kwargs) -> list:
        """Call one plugin's implementation of ``hook`` (through pluggy, so tracing sees it)."""
        others = [p for p in self.pm.get_plugins() if p is not module]
        return self.pm.subset_hook_caller(hook, others)(**kwargs)

    def records(self, name: str, hook: str, kind: type, results: list) -> list:
        """The records of the right type from one plugin's hook results."""
        good = []
        for returned in results:  # zero or one result: the plugin's own implementation
            if not isinstance(returned, (list, tuple)):
                self.problem(name, f"{hook} returned {type(returned).__name__}, "
                                   f"expected a list of {kind.__name__}")
                continue
            for record in returned:
                if isinstance(record, kind):
                    good.append(record)
                else:
                    what = type(record).__name__
                    if isinstance(getattr(record, "name", None), str):
                        what += f" {record.name!r}"
                    self.problem(name, f"{hook} returned a {what}, expected {kind.__name__}")
        return good

    def accept(self, name: str, label: str, record) -> bool:
        """Add one record if it is valid and its name is free; report it otherwise."""
        r = self.result
        table = {"probe": r.probe_points, "phase": r.phase_kinds,
                 "report section": r.report_sections, "vendor": r.vendors}[label]
        if isinstance(record, ProbePoint) and not POINT_NAME.fullmatch(record.name):
            self.problem(name, f"probe point {record.name!r} is not of the form provider:name")
            return False
        if isinstance(record, Vendor):
            reasons = _vendor_problems(record, r.probe_points)
            if reasons:
                self.problem(name, f"vendor {record.name!r}: " + "; ".join(reasons))
                return False
        if record.name in table:
            owner = self.owners[(label, record.name)]
            what = {"probe": "probe point", "phase": "phase kind"}.get(label, label)
            self.problem(name, f"{what} {record.name!r} is already provided by plugin "
                               f"{owner!r}; the one from {name!r} is ignored")
            return False
        table[record.name] = record
        self.owners[(label, record.name)] = name
        if label == "vendor":
            r._vendor_plugins[record.name] = name
        return True

    def add_costs(self, name: str, module, vendor: str) -> bool:
        """Merge one plugin's cost overrides for ``vendor``; True if it gave any."""
        try:
            results = self.call_one(module, "emu_cost_overrides", vendor=vendor)
        except Exception as exc:  # noqa: BLE001
            self.problem(name, f"emu_cost_overrides({vendor!r}) raised {_describe(exc)}; "
                               "its overrides are ignored")
            return False
        gave = False
        merged = self.result._cost_overrides.setdefault(vendor, {})
        for overrides in results:
            if not _is_cost_table(overrides):
                self.problem(name, f"emu_cost_overrides({vendor!r}) must return a dict of cost "
                                   f"name to non-negative int ns, got {reprlib.repr(overrides)}")
                continue
            for cost, ns in overrides.items():
                owner = self.owners.get(("cost", vendor, cost))
                if owner is not None:
                    self.problem(name, f"cost {cost!r} of vendor {vendor!r} is already "
                                       f"overridden by plugin {owner!r}; the one from {name!r} "
                                       "is ignored")
                    continue
                merged[cost] = ns
                self.owners[("cost", vendor, cost)] = name
                gave = True
        return gave


def _is_cost_table(overrides) -> bool:
    return isinstance(overrides, Mapping) and all(
        isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v >= 0
        for k, v in overrides.items())


def _vendor_problems(vendor: Vendor, core_points: Mapping[str, ProbePoint]) -> list[str]:
    """Why ``vendor`` cannot be used (empty when it can)."""
    reasons = []
    state = vendor.state
    if not (isinstance(state, type) and issubclass(state, tuple) and hasattr(state, "_fields")):
        reasons.append(f"state must be a namedtuple class, got {reprlib.repr(state)}")
    if not callable(vendor.make_state):
        reasons.append("make_state is not callable")
    if isinstance(vendor.kernels, Mapping):
        reasons.extend(kernel_problems(vendor.kernels))
    else:
        reasons.append(f"kernels must be a mapping, got {type(vendor.kernels).__name__}")
    seen = set()
    for point in vendor.points:
        if not isinstance(point, ProbePoint):
            reasons.append(f"points holds a {type(point).__name__}, expected ProbePoint")
        elif not POINT_NAME.fullmatch(point.name):
            reasons.append(f"probe point {point.name!r} is not of the form provider:name")
        elif point.name in core_points:
            reasons.append(f"probe point {point.name!r} is already declared outside the vendor")
        elif point.name in seen:
            reasons.append(f"probe point {point.name!r} is declared twice")
        else:
            seen.add(point.name)
    return reasons


def _module_source(module) -> Path | None:
    """A package's directory or a module's file (for a plugin object: its class's module)."""
    if not isinstance(module, ModuleType):
        module = sys.modules.get(type(module).__module__)
    file = getattr(module, "__file__", None)
    if file is None:
        return None
    path = Path(file).resolve()
    return path.parent if hasattr(module, "__path__") else path


def _describe(exc: BaseException) -> str:
    """The exception type and message, without the traceback."""
    message = str(exc).strip()
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _trace_before(hook_name, hook_impls, kwargs) -> None:
    log.info("plugin hook call", hook=hook_name, kwargs=dict(kwargs),
             plugins=[impl.plugin_name for impl in hook_impls])


def _trace_after(outcome, hook_name, hook_impls, kwargs) -> None:
    if outcome.exception is not None:
        log.info("plugin hook raised", hook=hook_name, error=_describe(outcome.exception))
    else:
        log.info("plugin hook result", hook=hook_name, result=reprlib.repr(outcome.get_result()))


# -------------------------------------------------------------------------------------------------
# Listing
# -------------------------------------------------------------------------------------------------

WIDTH = 100


def format_plugins(plugins: Plugins, verbose: bool = False) -> str:
    """The text ``emu plugins`` prints: a table of plugins, then their problems.

    Without ``verbose``, kinds with many entries are counted (``17 probes``) instead of listed.
    """
    header = ("NAME", "VERSION", "SOURCE", "PROVIDES")
    rows = [(i.name, i.version, i.source, _provides_text(i.provides, verbose))
            for i in plugins.infos]
    widths = [max(len(r[c]) for r in [header, *rows]) for c in range(3)]
    indent = sum(widths) + 2 * 3
    room = max(WIDTH - indent, 16)
    lines = []
    for row in [header, *rows]:
        left = "  ".join(cell.ljust(w) for cell, w in zip(row, widths))
        wrapped = textwrap.wrap(row[3], room, break_on_hyphens=False) or ["-"]
        lines.append(f"{left}  {wrapped[0]}".rstrip())
        lines.extend(" " * indent + more for more in wrapped[1:])
    if plugins.problems:
        lines += ["", "problems:"]
        first = list(dict.fromkeys(p.plugin for p in plugins.problems))
        for p in sorted(plugins.problems, key=lambda p: first.index(p.plugin)):
            lines.extend(textwrap.wrap(f"{p.plugin}: {p.reason}", WIDTH, initial_indent="  ",
                                       subsequent_indent="      ", break_on_hyphens=False))
    return "\n".join(lines) + "\n"


def _provides_text(provides: list[str], verbose: bool) -> str:
    """``vendor tdx, probes kvm:fault kvm:map`` -- grouped by kind, in order."""
    groups: dict[str, list[str]] = {}
    for item in provides:
        kind, _, what = item.rpartition(" ")
        groups.setdefault(kind, []).append(what)
    parts = []
    for kind, names in groups.items():
        plural = kind if len(names) == 1 or kind.endswith("s") else f"{kind}s"
        if verbose or len(names) <= 3:
            parts.append(f"{plural} {' '.join(names)}")
        else:
            parts.append(f"{len(names)} {plural}")
    return ", ".join(parts)
