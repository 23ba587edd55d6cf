"""Memory by owner over virtual time, sampled between batches (for ``--plot`` and reports).

The session calls :meth:`MemorySampler.after_batch` (a listener) after every batch of operations; each sample
is the run's virtual time (the furthest context's clock) and the host frames each owner holds.
Batches are the sampling period, so a run that wants a smooth curve uses smaller batches
(:func:`batch_for`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: samples a plotted run aims for
TARGET_SAMPLES = 200


def batch_for(estimated_ops: int) -> int:
    """A batch size giving about :data:`TARGET_SAMPLES` samples (4,096 to 65,536 operations)."""
    return int(min(1 << 16, max(1 << 12, estimated_ops // TARGET_SAMPLES)))


@dataclass
class MemorySampler:
    session: object
    times: list = field(default_factory=list)
    pages: list = field(default_factory=list)

    def after_batch(self) -> None:
        S = self.session.S
        self.times.append(int(S.ctx_clock.max()))
        self.pages.append(S.own_pages.copy())

    def series(self) -> tuple[np.ndarray, np.ndarray]:
        """(virtual ns, pages[sample, owner])."""
        if not self.times:
            return np.zeros(0, np.int64), np.zeros((0, 0), np.int64)
        return np.array(self.times), np.stack(self.pages)
