"""The command line's manners: progress on stderr, one-line errors, output folders, installed models."""

from __future__ import annotations

import re

import pytest

from rtgen.cli import main
from rtgen.cli.progress import Counter
from rtgen.errors import RtgenError


class Ticks:
    """A clock the test moves by hand (seconds)."""

    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_progress_counts_at_most_once_an_interval_and_always_the_end():
    clock, lines = Ticks(), []
    counter = Counter("generate", 10, "bars", interval_s=2.0, quiet_below_s=2.0, say=lines.append, clock=clock)
    for done in range(1, 11):
        clock.t += 0.5
        counter(done)
    assert lines == ["generate: 4/10 bars (2.0 s)", "generate: 8/10 bars (4.0 s)", "generate: 10/10 bars (5.0 s)"]


def test_progress_stays_quiet_for_a_short_run():
    clock, lines = Ticks(), []
    counter = Counter("generate", 3, "bars", say=lines.append, clock=clock)
    for done in (1, 2, 3):
        clock.t += 0.1
        counter(done)
    assert lines == []


def test_an_output_file_in_a_missing_folder_is_refused_naming_the_folder(tmp_path):
    from rtgen.cli.outputs import output_file

    assert output_file(tmp_path / "a.mid", "-o") == tmp_path / "a.mid"
    with pytest.raises(RtgenError, match=rf"^-o .*: the folder {re.escape(str(tmp_path / 'no'))} does not exist"):
        output_file(tmp_path / "no" / "a.mid", "-o")
    (tmp_path / "file").write_text("")
    with pytest.raises(RtgenError, match="is not a folder"):
        output_file(tmp_path / "file" / "a.mid", "--prepare")
    with pytest.raises(RtgenError, match="is a folder; give a file name"):
        output_file(tmp_path, "-o")


@pytest.mark.parametrize(
    "argv",
    [
        ["generate", "--bars", "1", "-o", "{missing}/x.mid"],
        ["generate", "--bars", "1", "-o", "{ok}/x.mid", "--musicxml", "{missing}/x.musicxml"],
        ["demo", "-o", "{missing}/d.mid"],
        ["train", "--prepare", "{missing}/p.npz"],
    ],
)
def test_commands_refuse_to_write_into_a_missing_folder_before_any_work(argv, tmp_path, capsys):
    missing = tmp_path / "missing"
    args = [a.format(missing=missing, ok=tmp_path) for a in argv]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"the folder {missing} does not exist" in err
    assert not missing.exists() and list(tmp_path.iterdir()) == []
