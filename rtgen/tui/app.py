"""The Textual app over a running daemon: sliders and choices, piano roll, status bar, log, presets.

The app reads ``DaemonControl.snapshot()`` on a timer (``fps`` a second, at
most ``MAX_FPS``) and calls its command methods; in ``rtgen run`` and
``rtgen attach`` that is an OSC client of the daemon process, so nothing here
touches models, clocks or ports and a slow or stalled UI never delays a note.
Errors the daemon reports become notifications; a daemon that stops ends the app.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer

from rtgen.controls import CONTROLS, WEIGHT_PREFIX, Spec, spec
from rtgen.daemon.status import DaemonControl, Snapshot
from rtgen.engine.controls import Controls
from rtgen.errors import RtgenError
from rtgen.tui.panels import LogPanel, StatusBar
from rtgen.tui.roll import PianoRoll
from rtgen.tui.screens import Ask, PresetPicker
from rtgen.tui.widgets import Choice, ControlWidget, Slider, Toggle

MAX_FPS = 30.0
PANELS_HZ = 5.0  # status and log redraws a second: figures a person reads, not animation
GENRE_KEYS = 9  # genres 1-9 get a number key each


def control_value(control: str, snap: Snapshot) -> object:
    """The current value of ``control`` in ``snap`` (tempo and mode live beside ``Controls``)."""
    if control.startswith(WEIGHT_PREFIX):
        return float(snap.controls.weights.get(control[len(WEIGHT_PREFIX) :], 0.0))
    if control == "tempo_bpm":
        return float(snap.tempo_bpm)
    if control == "mode":
        return snap.mode
    return getattr(snap.controls, control)


def make_widgets(snap: Snapshot) -> list[ControlWidget]:
    """One widget per control of the registry (``rtgen.controls``), in its order; one slider per genre."""
    widgets: list[ControlWidget] = []
    for entry in CONTROLS.values():
        if entry.name == "weights":
            widgets += [
                make_widget(entry, WEIGHT_PREFIX + g, g, snap, str(n) if n <= GENRE_KEYS else "")
                for n, g in enumerate(snap.genres, start=1)
            ]
        else:
            widgets.append(make_widget(entry, entry.name, entry.label or entry.name, snap, entry.key))
    return widgets


def make_widget(entry: Spec, control: str, label: str, snap: Snapshot, key: str) -> ControlWidget:
    """A slider over the usual range, a choice, or a toggle, showing ``control``'s value in ``snap``."""
    value = control_value(control, snap)
    if entry.kind == "toggle":
        return Toggle(control, label, value, key=key)
    if entry.kind == "choice":
        return Choice(control, label, value, options=entry.choices, key=key)
    low, high = entry.usual
    fmt = f"{{:5.{entry.decimals}f}}"
    read_only = control == "tempo_bpm" and snap.clock_source == "external"
    return Slider(control, label, value, low=low, high=high, step=entry.step, fmt=fmt, key=key, read_only=read_only)


def _key_binding(entry: Spec) -> Binding:
    """A numeric control's key focuses it; a choice's or toggle's steps it wherever the focus is."""
    action = f"focus_control('{entry.name}')" if entry.numeric else f"cycle('{entry.name}')"
    return Binding(entry.key, action, entry.label or entry.name, show=False)


class RtgenApp(App[None]):
    """Live control of one daemon; build it with ``rtgen.tui.make_app``."""

    TITLE = "rtgen"
    ENABLE_COMMAND_PALETTE = False
    CSS = """
    #main { height: 1fr; }
    #left { width: 40%; min-width: 39; max-width: 52; }
    #controls { height: auto; max-height: 60%; border: round $primary; padding: 0 1; overflow-y: auto; }
    #log { border: round $panel-lighten-2; height: 1fr; min-height: 3; padding: 0 1; }
    #roll { border: round $secondary; width: 1fr; height: 1fr; }
    """
    # The footer holds the actions; the keys that focus or step a control are shown beside it in the
    # controls panel, so the footer fits 80 columns.
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("space", "toggle_play", "Play/Stop", key_display="␣"),
        Binding("x", "panic", "Panic"),
        Binding("p", "presets", "Presets"),
        Binding("s", "save_preset", "Save"),
        Binding("o", "open_seed", "Seed"),
        Binding("l", "learn", "Learn"),
        *[_key_binding(entry) for entry in CONTROLS.values() if entry.key],
        *[Binding(str(n), f"focus_genre({n})", f"genre {n}", show=False) for n in range(1, GENRE_KEYS + 1)],
    ]

    def __init__(self, daemon: DaemonControl, *, owner: bool = False, fps: float = 20, driver_class=None) -> None:
        super().__init__(driver_class=driver_class)  # None: Textual's choice (a terminal, or TEXTUAL_DRIVER)
        self.daemon = daemon
        self.owner = owner  # q stops the music too (rtgen run); an attached UI only detaches
        self._answering = True  # the daemon's status stream arrives (an OSC client reports it)
        self.fps = min(MAX_FPS, max(1.0, float(fps)))
        self.snap = daemon.snapshot()
        self.controls: dict[str, ControlWidget] = {}
        self._panels_due = 0.0  # monotonic time the status and log panels may next be redrawn
        self._panels_snap: Snapshot | None = None  # the snapshot they show
        self._recording: str | None = None  # the take path the performer was told of
        # Held directly, not queried: a modal screen on top hides them from queries, not from updates.
        self.controls_panel = Vertical(id="controls")
        self.log_panel = LogPanel(id="log")
        self.roll = PianoRoll(id="roll")
        self.status_bar = StatusBar(self.snap, id="status")

    def compose(self) -> ComposeResult:
        with Horizontal(id="main"):
            with Vertical(id="left"):
                yield self.controls_panel
                yield self.log_panel
            yield self.roll
        yield self.status_bar
        yield Footer()

    async def on_mount(self) -> None:
        self.controls_panel.border_title = "controls"
        self.roll.border_title = "piano roll"
        self.roll.border_subtitle = "[bold cyan]█[/] performer  [bold magenta]█[/] rtgen  [dim magenta]█[/] planned"
        self.log_panel.border_title = "log"
        await self._mount_controls(self.snap)
        self._show(self.snap)
        self._show_panels()
        self.set_interval(1 / self.fps, self.poll)

    async def _mount_controls(self, snap: Snapshot) -> None:
        panel = self.controls_panel
        await panel.remove_children()
        self.controls = {w.control: w for w in make_widgets(snap)}
        await panel.mount_all(list(self.controls.values()))
        self.set_focus(next(iter(self.controls.values())))

    async def poll(self) -> None:
        """Show new errors, leave when the daemon is gone, redraw from a fresh snapshot (if it is new)."""
        for error in self.daemon.take_errors():
            self.notify(error, severity="error", timeout=8)
        if self.daemon.gone is not None:
            self.exit(message=f"the daemon stopped: {self.daemon.gone}")
            return
        answering = self.daemon.answering
        if answering != self._answering:
            self._answering = answering
            text = "the daemon answers again" if answering else "the daemon is not answering (no status for 2 s)"
            self.notify(text, severity="information" if answering else "warning", timeout=6)
        snap = self.daemon.snapshot()
        if snap is not self.snap:
            if snap.genres != self.snap.genres:
                await self._mount_controls(snap)
            self.snap = snap
            self._show(snap)
        self._show_panels()

    def _show(self, snap: Snapshot) -> None:
        external = snap.clock_source == "external"
        for control, widget in self.controls.items():
            read_only = external if control == "tempo_bpm" else None
            widget.sync(control_value(control, snap), read_only=read_only, learning=snap.learning == control)
            if control.startswith(WEIGHT_PREFIX):  # what the classifier hears the performer play, beside the weight
                share = snap.heard.get(control[len(WEIGHT_PREFIX) :])
                widget.annotate("" if share is None else f"{share:4.0%}")
        self.roll.show(snap.roll, snap.current_beat)
        if snap.recording != self._recording:
            self._recording = snap.recording
            if snap.recording:
                self.notify(f"recording the take to {snap.recording}", title="recording", timeout=10)

    def _show_panels(self) -> None:
        """Redraw the status and log panels from the newest snapshot, at most ``PANELS_HZ`` times a second."""
        now = time.monotonic()
        if self._panels_snap is self.snap or now < self._panels_due:
            return
        self._panels_due = now + 1 / PANELS_HZ
        self._panels_snap = self.snap
        self.log_panel.show(self.snap.log)
        self.status_bar.show(self.snap)

    def on_control_widget_changed(self, event: ControlWidget.Changed) -> None:
        """Send a moved control to the daemon, after checking it against the current controls."""
        control, value = event.setting, event.value
        changes = {"weights": self._weights()} if control.startswith(WEIGHT_PREFIX) else {control: value}
        if spec(control).owner == "controls":
            try:
                self._pending_controls().replace(**changes)
            except RtgenError as error:
                self.notify(str(error), severity="error")
                event.widget.release()
                return
        if control == "tempo_bpm":
            self._command(self.daemon.set_tempo, float(value))
        elif control == "mode":
            self._command(self.daemon.set_mode, value)
        else:
            self._command(self.daemon.set_controls, **changes)

    def _weights(self) -> dict[str, float]:
        """The weights as the sliders show them now (including moves the daemon has not applied yet)."""
        weights = dict(self.snap.controls.weights)
        for control, widget in self.controls.items():
            if control.startswith(WEIGHT_PREFIX):
                weights[control[len(WEIGHT_PREFIX) :]] = float(widget.value)
        return weights

    def _pending_controls(self) -> Controls:
        return self.snap.controls.replace(weights=self._weights())

    def _command(self, command: Callable[..., object], /, *args: object, **kwargs: object) -> object:
        """Call a daemon command; a user-level error becomes a notification instead of a crash."""
        try:
            return command(*args, **kwargs)
        except RtgenError as error:
            self.notify(str(error), severity="error")
            return None

    def action_toggle_play(self) -> None:
        self._command(self.daemon.stop if self.snap.playing else self.daemon.start)

    def action_panic(self) -> None:
        self._command(self.daemon.panic)
        self.notify("panic: all notes off")

    def action_focus_control(self, control: str) -> None:
        if control in self.controls:
            self.controls[control].focus()

    def action_focus_genre(self, number: int) -> None:
        if number <= len(self.snap.genres):
            self.action_focus_control(WEIGHT_PREFIX + self.snap.genres[number - 1])

    def action_cycle(self, control: str) -> None:
        """Step a choice control to its next option, wherever the focus is."""
        self.controls[control].action_adjust(1)

    def action_learn(self) -> None:
        """MIDI learn for the focused control; pressed again (or while learning) it cancels."""
        if self.snap.learning is not None:
            self._command(self.daemon.learn, None)
            return
        focused = self.focused
        if not isinstance(focused, ControlWidget):
            self.notify("focus a control first (Tab or its key), then press l to learn a knob for it")
            return
        self._command(self.daemon.learn, focused.control)
        self.notify(f"learning {focused.control}: move a knob or fader on your controller")

    def action_presets(self) -> None:
        presets = self._command(self.daemon.presets) or []
        self.push_screen(PresetPicker(list(presets), self.snap.preset), self._load_preset)

    def _load_preset(self, name: str | None) -> None:
        if name is not None:
            self._command(self.daemon.load_preset, name)
            self.notify(f"loading preset {name}")

    def action_save_preset(self) -> None:
        ask = Ask("Save as a preset", "preset name, e.g. folk-jig", self.snap.preset or "")
        self.push_screen(ask, self._save_preset)

    def _save_preset(self, name: str | None) -> None:
        if name is not None:
            self._command(self.daemon.save_preset, name)
            self.notify(f"saving preset {name}")

    def action_open_seed(self) -> None:
        self.push_screen(Ask("Seed phrase from a .mid", "path of a .mid or a saved take"), self._open_seed)

    def _open_seed(self, path: str | None) -> None:
        if path is not None:
            self._command(self.daemon.load_seed, path)
            self.notify(f"reading the seed phrase from {path}")
