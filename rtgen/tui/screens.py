"""Modal screens for presets: pick one to load, or name the current settings to save them."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option

MODAL_CSS = """
{name} {{ align: center middle; }}
{name} > Vertical {{
    width: 76; max-width: 96%; height: auto; max-height: 90%;
    border: round $accent; background: $panel; padding: 0 1;
}}
{name} OptionList {{ height: auto; max-height: 18; }}
"""


class PresetPicker(ModalScreen[str | None]):
    """Lists the presets, each name over its description; Enter returns the chosen name, Escape returns None."""

    DEFAULT_CSS = MODAL_CSS.format(name="PresetPicker")
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, presets: list[tuple[str, str]], current: str | None = None) -> None:
        super().__init__()
        self.presets = presets  # (name, one-line description)
        self.names = [name for name, _ in presets]
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical():
            if self.names:
                yield Label("[b]Load a preset[/b]  Enter loads · Esc cancels")
                yield OptionList(*[Option(_prompt(n, d), id=n) for n, d in self.presets], id="presets")
            else:
                yield Label("No presets yet: press s to save these settings.\nEsc closes.")

    def on_mount(self) -> None:
        if self.current in self.names:
            self.query_one(OptionList).highlighted = self.names.index(self.current)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)


def _prompt(name: str, description: str) -> Text:
    """The name in bold; the description under it, dimmed (it wraps if the screen is narrow)."""
    text = Text(name, style="bold")
    if description:
        text.append("\n" + description, style="red" if description.startswith("malformed") else "grey62")
    return text


class Ask(ModalScreen[str | None]):
    """Asks for one line (a preset's name, a file's path); Enter returns it (stripped, non-empty), Escape None."""

    DEFAULT_CSS = MODAL_CSS.format(name="Ask")
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, placeholder: str, suggestion: str = "") -> None:
        super().__init__()
        self.title, self.placeholder, self.suggestion = title, placeholder, suggestion

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"[b]{self.title}[/b]  Enter takes it · Esc cancels")
            yield Input(value=self.suggestion, placeholder=self.placeholder, id="name")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        name = event.value.strip()
        if name:
            self.dismiss(name)

    def action_cancel(self) -> None:
        self.dismiss(None)
