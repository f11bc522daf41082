"""Ctrl-C (SIGINT) and SIGTERM, for the whole run.

While the run starts (imports, sessions, data), there is nothing to save: a signal
raises `Interrupted`, which unwinds cleanly (a file being written loses its temporary)
and ends the run with 128 + the signal's number, without a traceback. Once training
starts (`Interrupt.defer`), a signal only sets `Interrupt.signum`; the loop looks at it
after every step, saves a checkpoint and ends the same way, so `--resume` continues
there.

Test hook: the environment variable KTRANS_TEST_INTERRUPT_AFTER_STEPS=N makes the run
send itself SIGINT after N training steps (`N:TERM`: SIGTERM); N = 0 sends it while the
run starts, before the data is read.
"""

from __future__ import annotations

import os
import signal

from . import console

SIGNALS = (signal.SIGINT, signal.SIGTERM)
TEST_HOOK = "KTRANS_TEST_INTERRUPT_AFTER_STEPS"


class Interrupted(BaseException):
    """A signal before training started (a BaseException, as KeyboardInterrupt, so that
    no `except Exception` on the way swallows it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class Interrupt:
    """Installs the handlers on `install` (or `with Interrupt() as interrupt:`) and puts
    the previous ones back on `restore`."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.deferred = False
        self._previous: dict = {}
        after, _, kind = os.environ.get(TEST_HOOK, "").partition(":")
        self.hook_steps = int(after) if after.isdigit() else None
        self.hook_signal = signal.SIGTERM if kind == "TERM" else signal.SIGINT

    def install(self) -> Interrupt:
        for signum in SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def __enter__(self) -> Interrupt:
        return self.install()

    def __exit__(self, *exc) -> None:
        self.restore()

    def defer(self) -> None:
        """From now on a signal asks the loop to stop after its step."""
        self.deferred = True

    @property
    def exit_code(self) -> int:
        return 128 + (self.signum or signal.SIGINT)

    def _handle(self, signum, frame) -> None:
        if not self.deferred:
            raise Interrupted(signum)
        if self.signum is None:
            self.signum = signum
            console.newline()
            console.info("stopping: saving a checkpoint after this step")
        else:
            console.newline()
            console.info("already stopping: saving a checkpoint")

    # the test hook

    def at_startup(self) -> None:
        """Sends the hook's signal while the run starts, if the hook's N is 0."""
        if self.hook_steps == 0:
            os.kill(os.getpid(), self.hook_signal)

    def after_step(self, steps_done: int) -> None:
        """Sends the hook's signal once `steps_done` (this run's steps) reaches N."""
        if self.hook_steps and steps_done == self.hook_steps:
            os.kill(os.getpid(), self.hook_signal)
