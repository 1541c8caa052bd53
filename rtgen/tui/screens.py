"""Modal screens for presets: pick one to load, or name the current settings to save them."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option

MODAL_CSS = """
{name} {{ align: center middle; }}
{name} > Vertical {{
    width: 50; max-width: 90%; height: auto; max-height: 80%;
    border: round $accent; background: $panel; padding: 0 1;
}}
{name} OptionList {{ height: auto; max-height: 16; }}
"""


class PresetPicker(ModalScreen[str | None]):
    """Lists the preset names; Enter returns the chosen one, Escape returns None."""

    DEFAULT_CSS = MODAL_CSS.format(name="PresetPicker")
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, names: list[str], current: str | None = None) -> None:
        super().__init__()
        self.names = names
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical():
            if self.names:
                yield Label("[b]Load a preset[/b]  Enter loads · Esc cancels")
                yield OptionList(*[Option(name, id=name) for name in self.names], id="presets")
            else:
                yield Label("No presets yet: press s to save these settings.\nEsc closes.")

    def on_mount(self) -> None:
        if self.current in self.names:
            self.query_one(OptionList).highlighted = self.names.index(self.current)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)


class SavePreset(ModalScreen[str | None]):
    """Asks for a name; Enter returns it (stripped, non-empty), Escape returns None."""

    DEFAULT_CSS = MODAL_CSS.format(name="SavePreset")
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, suggestion: str = "") -> None:
        super().__init__()
        self.suggestion = suggestion

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("[b]Save as a preset[/b]  Enter saves · Esc cancels")
            yield Input(value=self.suggestion, placeholder="preset name, e.g. folk-jig", id="name")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        name = event.value.strip()
        if name:
            self.dismiss(name)

    def action_cancel(self) -> None:
        self.dismiss(None)
