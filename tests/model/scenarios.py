"""Small scenarios for the model tests, written as TOML text for the ``run_toml`` fixture.

The default is a 4 GiB host with 64 MiB reserved and one 1 GiB guest with one vCPU, which runs in
a fraction of a second once the plain vendor's driver is compiled. Expected numbers in the tests
are derived from these sizes.
"""
import json

from emu.model import state as st
from emu.model.costs import CORE_COSTS

HOST_PAGES = 1 << 20            # 4 GiB in 4K pages
RESERVED_PAGES = 16384          # 64 MiB
GUEST_PAGES = 262144            # 1 GiB
REGIONS = 512                   # 2M regions in 1 GiB
FREE_PAGES = HOST_PAGES - RESERVED_PAGES


def host(chance=1.0, memory="4GiB", reserved="64MiB", seed=3) -> str:
    """The ``[host]`` table; ``reserved=None`` leaves the default (1% rounded up to 2 MiB)."""
    text = f'\n[host]\nmemory = "{memory}"\nseed = {seed}\nhuge_folio_chance = {chance}\n'
    if reserved is not None:
        text += f'reserved = "{reserved}"\n'
    return text


def vm(backing="thp", memory="1GiB", vcpus=1, name="g", start=True) -> str:
    return (f'\n[[vm]]\nname = "{name}"\nvcpus = {vcpus}\nmemory = "{memory}"\n'
            f'backing = "{backing}"\nstart = {json.dumps(start)}\n')


def phase(kind, **fields) -> str:
    """A ``[[phase]]``; field values are strings, numbers, booleans or lists of them."""
    return f'\n[[phase]]\nkind = "{kind}"\n' + "".join(
        f"{key} = {json.dumps(value)}\n" for key, value in fields.items())


def scenario(*parts, **host_fields) -> str:
    """``[host]`` (``host_fields``), then the given ``vm(...)`` and ``phase(...)`` texts; one
    default guest if no VM is given."""
    if not any("[[vm]]" in p for p in parts):
        parts = (vm(),) + parts
    return host(**host_fields) + "".join(parts)


def only_costs(**ns) -> list[str]:
    """``--cost`` overrides setting every core cost to 0 but the ones given, so that virtual
    times in a test are sums of a few known terms."""
    return [f"{c.name}={ns.get(c.name, 0)}" for c in CORE_COSTS]


def set_scalar(index, value):
    """A ``session_hook`` setting one scalar of the core state (``S.sc``) before the run, to
    reach a core path no plain scenario reaches (e.g. ``st.SC_EXACT_ZAP``)."""
    def hook(session):
        session.S.sc[index] = value
    return hook


def nonzero(owners: dict) -> dict:
    """An owner column without its zero entries."""
    return {k: v for k, v in owners.items() if v}


EXACT_ZAP = st.SC_EXACT_ZAP
PRIVATE_MEMORY = st.SC_PRIVATE_MEMORY
