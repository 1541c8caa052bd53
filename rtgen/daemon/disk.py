"""Disk work off the engine thread: saving the CC map and presets, reading presets and seed phrases.

The engine thread must never wait on a disk (a slow or network home folder
stalls for tens of milliseconds). It hands a job to ``DiskWorker.run``; the
job runs in the worker's thread and returns a log line (or None); what it
loaded reaches the music state as a command through ``submit``, like any
other change. A job's ``RtgenError`` is reported in one line, never raised.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

from rtgen.errors import RtgenError

Job = Callable[[], "str | None"]


class DiskWorker:
    """One thread running jobs in order; ``submit`` queues a command for the engine thread."""

    def __init__(
        self,
        submit: Callable[[object], None],
        log: Callable[[str], None],
        report: Callable[[str], None],
        genres: tuple[str, ...],
    ) -> None:
        self.submit = submit
        self.log = log
        self.report = report
        self.genres = genres
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="rtgen-disk", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def run(self, job: Job) -> None:
        """Queue ``job`` (any thread); returns at once."""
        self._jobs.put(job)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Finish the queued jobs, then end the thread."""
        self._jobs.put(None)
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                line = job()
            except RtgenError as error:
                self.report(str(error))
                continue
            except OSError as error:
                self.report(f"disk: {error}")
                continue
            if line:
                self.log(line)

    def read_preset(self, name: str):
        """Worker thread: the preset ``name`` and its seed notes, as an ``ApplyPreset`` command."""
        from rtgen.daemon.commands import ApplyPreset
        from rtgen.daemon.presets import load_preset
        from rtgen.daemon.wiring import seed_notes

        preset = load_preset(name)
        return ApplyPreset(preset, tuple(seed_notes(preset.seed_phrase, self.genres)))

    def read_seed(self, path: str):
        """Worker thread: the last bars of the .mid ``path`` as an ``ApplySeed`` command."""
        from rtgen.daemon.commands import ApplySeed
        from rtgen.data.seeds import seed_from_file

        return ApplySeed(path, tuple(seed_from_file(path)))
