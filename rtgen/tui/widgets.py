"""Focusable one-line controls: a ``Slider`` for numbers and a ``Choice`` for named options.

Textual has no slider. Both widgets change their value by keys (left/right or
-/+), post ``ControlWidget.Changed`` for the app to send to the daemon, and
follow the daemon's snapshots otherwise. A value the user just set is held for
``HOLD_S`` seconds until the daemon has applied it, so a snapshot taken before
the daemon's engine thread saw the change does not make the widget flicker back.
"""

from __future__ import annotations

import time

from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.widget import Widget

HOLD_S = 1.0  # seconds a locally set value wins over snapshots that still show the old one
LABEL_CELLS = 11  # label column width
KEY_CELLS = 2  # the control's own key, shown before its label
_ADJUST = Binding.Group("adjust", compact=True)


class ControlWidget(Widget, can_focus=True):
    """One live control named ``control`` (``temperature``, ``weights.folk``, ``mode``, ...).

    The base owns focus, keys, the hold after a local change and the label; a
    kind of control (``Slider``, ``Choice``) supplies ``stepped(steps) -> value``,
    the value ``steps`` key presses away, and ``value_text(width) -> Text``.
    """

    DEFAULT_CSS = """
    ControlWidget { height: 1; width: 1fr; }
    ControlWidget:focus { background: $boost; }
    """
    BINDINGS = [
        Binding("right,plus,equals_sign", "adjust(1)", "more", key_display="→", group=_ADJUST),
        Binding("left,minus", "adjust(-1)", "less", key_display="←", group=_ADJUST),
        Binding("shift+right", "adjust(10)", "10 steps more", show=False),
        Binding("shift+left", "adjust(-10)", "10 steps less", show=False),
    ]

    class Changed(Message):
        """The user moved ``widget`` (its ``setting``, e.g. ``weights.folk``) to ``value``; the app sends it."""

        def __init__(self, widget: ControlWidget, setting: str, value: object) -> None:
            super().__init__()
            self.widget = widget
            self.setting = setting
            self.value = value

        @property
        def control(self) -> ControlWidget:
            """The widget, as Textual's selectors (``@on(..., "#id")``) expect."""
            return self.widget

    def __init__(
        self, control: str, label: str, value: object, *, key: str = "", read_only: bool = False, id: str | None = None
    ):
        super().__init__(id=id)
        self.control = control
        self.label = label
        self.key = key  # the app's key that focuses or steps this control, shown as a hint
        self.value = value
        self.read_only = read_only  # e.g. tempo while an external clock leads
        self.learning = False  # waiting for a CC in MIDI learn
        self.note = ""  # drawn after the value, dimmed (a genre weight: the share the classifier hears)
        self._held_until = 0.0

    def action_adjust(self, steps: int) -> None:
        """Move by ``steps``; no-op when read only or already at the end of the range."""
        if self.read_only:
            return
        new = self.stepped(steps)
        if new == self.value:
            return
        self.value = new
        self._held_until = time.monotonic() + HOLD_S
        self.refresh()
        self.post_message(self.Changed(self, self.control, new))

    def sync(self, value: object, *, read_only: bool | None = None, learning: bool = False) -> None:
        """Follow the daemon's value, unless the user's own newer value is still on its way."""
        changed = learning != self.learning or (read_only is not None and read_only != self.read_only)
        self.learning = learning
        if read_only is not None:
            self.read_only = read_only
        if value != self.value and time.monotonic() >= self._held_until:
            self.value = value
            changed = True
        elif value == self.value:
            self._held_until = 0.0
        if changed:
            self.refresh()

    def annotate(self, note: str) -> None:
        if note != self.note:
            self.note = note
            self.refresh()

    def release(self) -> None:
        """Drop the hold: the next snapshot's value wins (after the daemon refused a change)."""
        self._held_until = 0.0

    def render(self) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(f"{self.key[:KEY_CELLS]:<{KEY_CELLS}}", style="bold yellow" if self.has_focus else "grey50")
        text.append(f"{self.label[:LABEL_CELLS]:<{LABEL_CELLS}} ", style="bold" if self.has_focus else "")
        if self.learning:
            text.append("LEARN: move a knob ", style="black on yellow")
        note = f" {self.note}" if self.note else ""
        text.append_text(self.value_text(max(4, self.size.width - text.cell_len - len(note))))
        text.append(note, style="cyan")
        return text


class Slider(ControlWidget):
    """A number in ``low``-``high`` moved by ``step``, drawn as a bar followed by the value."""

    def __init__(
        self,
        control: str,
        label: str,
        value: float,
        *,
        low: float,
        high: float,
        step: float,
        fmt: str = "{:5.2f}",
        key: str = "",
        read_only: bool = False,
        id: str | None = None,
    ):
        super().__init__(control, label, value, key=key, read_only=read_only, id=id)
        self.low, self.high, self.step, self.fmt = low, high, step, fmt

    def stepped(self, steps: int) -> float:
        raw = float(self.value) + steps * self.step
        snapped = self.low + round((raw - self.low) / self.step) * self.step
        return round(min(self.high, max(self.low, snapped)), 6)

    def value_text(self, width: int) -> Text:
        shown = self.fmt.format(self.value) + (" ext" if self.read_only else "")
        cells = max(1, width - len(shown) - 1)
        span = self.high - self.low
        fraction = 0.0 if span <= 0 else min(1.0, max(0.0, (float(self.value) - self.low) / span))
        filled = round(fraction * cells)
        style = "grey50" if self.read_only else "green"
        text = Text("█" * filled, style=style)
        text.append("░" * (cells - filled), style="grey30")
        text.append(" " + shown)
        return text


class Choice(ControlWidget):
    """One of ``options``, cycled by the keys (wrapping around)."""

    def __init__(
        self,
        control: str,
        label: str,
        value: object,
        *,
        options: tuple[object, ...],
        key: str = "",
        id: str | None = None,
    ):
        super().__init__(control, label, value, key=key, id=id)
        self.options = options

    def stepped(self, steps: int) -> object:
        index = self.options.index(self.value) if self.value in self.options else 0
        return self.options[(index + steps) % len(self.options)]

    def value_text(self, width: int) -> Text:
        return Text.assemble(("‹ ", "grey50"), (str(self.value), "bold cyan"), (" ›", "grey50"))


class Toggle(Choice):
    """A boolean shown as off/on; its value is a bool."""

    def __init__(self, control: str, label: str, value: bool, *, key: str = "", id: str | None = None):
        super().__init__(control, label, value, options=(False, True), key=key, id=id)

    def value_text(self, width: int) -> Text:
        return Text("■ on", style="bold green") if self.value else Text("□ off", style="grey50")
