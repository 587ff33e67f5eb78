"""Event-loop lag: how late a periodic timer fires = how long ready work waits.

When HTTP handling (not inference) is the bottleneck, requests queue inside the event
loop where no queue-depth counter sees them; the loop's lag measures that wait, and
admission control sheds load on it.
"""

from __future__ import annotations

import asyncio

from demand_predictor.metrics import Metrics

TICK_S = 0.005
# EWMA weight of the newest sample: a lone late tick (GC, a noisy neighbour) is damped,
# a persistently late loop crosses the limit within a few ticks.
SMOOTHING = 0.3


class LoopLagMonitor:
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self.lag_s = 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="loop-lag")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            expected = loop.time() + TICK_S
            await asyncio.sleep(TICK_S)
            lag = max(0.0, loop.time() - expected)
            self.lag_s += SMOOTHING * (lag - self.lag_s)
            self.metrics.loop_lag.observe(lag)
