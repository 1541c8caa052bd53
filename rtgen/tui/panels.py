"""The status bar and the log panel as widgets that draw for their own size.

Both render from the newest snapshot at the width (and, for the log, the
height) they have now, so a resized terminal is redrawn to fit without
waiting for the next status; ``show`` redraws only when the picture changed.
"""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

from rtgen.daemon.status import Snapshot
from rtgen.tui.status import log_text, status_text


class StatusBar(Widget):
    """Two status lines (transport, then metrics), each fitted to one row."""

    DEFAULT_CSS = "StatusBar { height: 2; padding: 0 1; background: $panel; }"

    def __init__(self, snap: Snapshot, id: str | None = None) -> None:
        super().__init__(id=id)
        self.snap = snap
        self._drawn: Text | None = None

    def show(self, snap: Snapshot) -> None:
        self.snap = snap
        if status_text(snap, self.content_size.width) != self._drawn:
            self.refresh()

    def render(self) -> Text:
        self._drawn = status_text(self.snap, self.content_size.width)
        return self._drawn


class LogPanel(Widget):
    """The newest log lines, wrapped to the panel's width, the newest at the bottom."""

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id)
        self.lines: tuple[str, ...] = ()

    def show(self, lines: tuple[str, ...]) -> None:
        if lines != self.lines:
            self.lines = lines
            self.refresh()

    def render(self) -> Text:
        return log_text(self.lines, self.content_size.width, self.content_size.height)
