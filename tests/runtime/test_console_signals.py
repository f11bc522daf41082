"""ktrans_runtime.console (control characters escaped) and signals (raise while
starting, a flag once training runs; the test hook)."""

from __future__ import annotations

import os
import signal

import pytest

from transpiler.templates.ktrans_runtime import console
from transpiler.templates.ktrans_runtime.signals import TEST_HOOK, Interrupt, Interrupted


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("plain name é ✓", "plain name é ✓"),
        ("a\x1b[2Jb", "a\\x1b[2Jb"),
        ("line\nbreak\r", "line\\nbreak\\r"),
        ("bell\x07 nul\x00 del\x7f c1\x9b", "bell\\x07 nul\\x00 del\\x7f c1\\x9b"),
        ("rtl \u202eevil", "rtl \\u202eevil"),
        ("sep\u2028x", "sep\\u2028x"),
    ],
)
def test_escape_shows_unsafe_characters_as_escapes(text, shown):
    assert console.escape(text) == shown


def test_messages_are_escaped_on_one_line(capsys):
    console.error("no array 'x\x1b[31m'")
    console.note("a\rb")
    console.result("done\x07")
    out, err = capsys.readouterr()
    assert err == "error: no array 'x\\x1b[31m'\nnote: a\\rb\n"
    assert out == "done\\x07\n"


def test_a_signal_while_starting_raises_and_handlers_are_restored():
    before = signal.getsignal(signal.SIGTERM)
    with Interrupt() as interrupt:
        with pytest.raises(Interrupted) as raised:
            os.kill(os.getpid(), signal.SIGTERM)
            signal.sigtimedwait([], 0)  # let the handler run
        assert raised.value.exit_code == 143 and interrupt.signum is None
    assert signal.getsignal(signal.SIGTERM) is before


def test_once_deferred_a_signal_only_sets_the_flag(capsys):
    with Interrupt() as interrupt:
        interrupt.defer()
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGTERM)  # a second one only repeats it
    assert interrupt.signum == signal.SIGINT and interrupt.exit_code == 130
    err = capsys.readouterr().err
    assert "stopping: saving a checkpoint after this step" in err
    assert "already stopping" in err


@pytest.mark.parametrize(
    ("value", "steps", "signum"), [("5", 5, 2), ("3:TERM", 3, 15), ("", None, 2)]
)
def test_the_test_hook(monkeypatch, value, steps, signum):
    monkeypatch.setenv(TEST_HOOK, value)
    interrupt = Interrupt()
    assert interrupt.hook_steps == steps and interrupt.hook_signal == signum
    with interrupt:
        interrupt.defer()
        for done in range(1, 7):
            interrupt.after_step(done)
            if steps is not None and done < steps:
                assert interrupt.signum is None
    assert interrupt.signum == (signum if steps else None)
