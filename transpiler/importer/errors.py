"""How the importer reports what it cannot read or express: one KdlError without a
source position (the input is a Keras file, not a .kdl file), naming the file, and where
it concerns a layer, the layer's name, its Keras class and the config key at fault."""

from __future__ import annotations

from transpiler.errors import KdlError, KdlErrors


class ImportFailure(Exception):
    """A problem with one layer or value of the Keras config: the message, a hint, and
    the layer (name, class) and config key it concerns, filled in as it travels up."""

    def __init__(self, message: str, hint: str | None = None, key: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.key = key
        self.layer: tuple[str, str] | None = None  # (name, class)

    def at_layer(self, name: str, cls: str) -> ImportFailure:
        if self.layer is None:
            self.layer = (name, cls)
        return self

    def at_key(self, key: str) -> ImportFailure:
        self.key = key if self.key is None else f"{key}.{self.key}"
        return self

    def text(self) -> str:
        where = ""
        if self.layer is not None:
            name, cls = self.layer
            where = f"layer '{name}' ({cls})"
            if self.key:
                where += f", config key '{self.key}'"
            where += ": "
        elif self.key:
            where = f"config key '{self.key}': "
        return where + self.message


def fail(source: str, message: str, hint: str | None = None):
    """Raises the KdlErrors the CLI prints: `source: message`."""
    raise KdlErrors([KdlError(None, f"{source}: {message}", hint)])


def report(source: str, failure: ImportFailure):
    fail(source, failure.text(), failure.hint)
