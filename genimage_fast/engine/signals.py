"""SIGINT/SIGTERM -> a flag the training loop checks at step boundaries (so it can checkpoint first)."""

from __future__ import annotations

import signal
import threading
from types import FrameType

from genimage_fast.errors import GenImageError


class TrainingInterrupted(GenImageError):
    """Training stopped on a signal after saving its checkpoint; `signum` gives the exit code."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.signum = signum


class StopOnSignal:
    """Context manager: while active, SIGINT/SIGTERM set `.signum` instead of killing the process.

    A second SIGINT restores the default behaviour (KeyboardInterrupt) so a stuck run can still be
    stopped. Handlers can only be installed from the main thread; elsewhere this is a no-op.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, stop_at_step: int | None = None) -> None:
        """stop_at_step: also stop (as a signal would: checkpoint, TrainingInterrupted) once this many
        steps are done; the hook tests and job schedulers use to stop at an exact step."""
        self.signum: int | None = None
        self.stop_at_step = stop_at_step
        self._previous: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def check(self, step: int) -> bool:
        """Whether to stop after `step` steps: a signal arrived, or the stop step is reached."""
        return self.requested or (self.stop_at_step is not None and step >= self.stop_at_step)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            signal.signal(signal.SIGINT, signal.default_int_handler)
        self.signum = signum

    def __enter__(self) -> StopOnSignal:
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
