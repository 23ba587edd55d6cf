"""How much memory PAMT takes at boot, computed the way the kernel sizes it for the module.

``reference/tdx.md`` §1.1-§1.2 and §3.1: TDMRs are 1G-aligned and a multiple of 1G; each TDMR
gets three PAMT arrays (4K, 2M and 1G levels) of 16-byte entries, each rounded up to whole 4K
pages. Under Dynamic PAMT the 4K array is replaced by a bitmap of 1 bit per 4K page, and the
kernel adds a refcount (4 bytes) per 2M region up to the highest frame. emu's host is one
contiguous range of memory starting at 0, so it is covered by TDMRs of ``tdmr_bytes`` each
(the last one smaller), and ``max_pfn`` is the end of host memory.
"""
from __future__ import annotations

from dataclasses import dataclass

PAGE = 4096
GIB = 1 << 30
PAMT_ENTRY = 16          # PAMT_ENTRY_SIZE_IN_BYTES, every level (§1.1)
BITMAP_BITS = 1          # pamt_page_bitmap_entry_bits (§1.2)
REFCOUNT_BYTES = 4       # atomic_t per 2M (§3.1)


def _pages(nbytes: int) -> int:
    return (nbytes + PAGE - 1) // PAGE


@dataclass(frozen=True)
class PamtSizes:
    tdmrs: int
    static_pages: int     # the module's boot-time PAMT (all three levels, or bitmap + 2M + 1G)
    refcount_pages: int   # the kernel's Dynamic PAMT refcount array (0 for static PAMT)


def pamt_sizes(host_pages: int, dynamic: bool, tdmr_bytes: int = 1 << 40) -> PamtSizes:
    """PAMT frames for a host of ``host_pages`` 4K frames."""
    host_bytes = host_pages * PAGE
    covered = ((host_bytes + GIB - 1) // GIB) * GIB
    static = 0
    tdmrs = 0
    start = 0
    while start < covered:
        size = min(tdmr_bytes, covered - start)
        n4k = size // PAGE
        n2m = size // (2 << 20)
        n1g = size // GIB
        if dynamic:
            static += _pages((n4k * BITMAP_BITS + 7) // 8)
        else:
            static += _pages(n4k * PAMT_ENTRY)
        static += _pages(n2m * PAMT_ENTRY) + _pages(n1g * PAMT_ENTRY)
        tdmrs += 1
        start += size
    refcount = _pages(((host_pages + 511) // 512) * REFCOUNT_BYTES) if dynamic else 0
    return PamtSizes(tdmrs=tdmrs, static_pages=static, refcount_pages=refcount)
