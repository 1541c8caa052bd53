"""Shared fixtures: a private JACK server for the session, a JACK client per test, a fake clock, tiny models."""

from __future__ import annotations

import itertools

import pytest
from engine_models import make_models
from hypothesis import settings
from jack_server import JackClient, JackServer, jack_available

from rtgen.live.clock import FakeClock

_client_serial = itertools.count()

# Property tests draw the same examples on every machine, so a clean CI run cannot fail on a case no one has
# seen (two did: 17 tied tokens in top-p, a NUL inside an OSC string); `--hypothesis-profile explore` searches anew.
# No deadline: an example that takes over 200 ms on a busy machine says nothing about the code under test.
settings.register_profile("repeatable", derandomize=True, deadline=None)
settings.register_profile("explore", max_examples=500, deadline=None)
settings.load_profile("repeatable")


@pytest.fixture(scope="session")
def jack_server():
    """A dummy JACK server (``-r 48000 -p 64``) that ``JACK_DEFAULT_SERVER`` points at while tests run."""
    if not jack_available():
        pytest.skip("jackd / jack_lsp not installed")
    with JackServer() as server:
        yield server


@pytest.fixture
def jack_client(jack_server):
    """A JACK MIDI client with a unique name, closed after the test."""
    with JackClient(f"tester{next(_client_serial)}") as client:
        yield client


@pytest.fixture
def fake_clock():
    """A clock at 120 BPM whose time moves only on ``advance(seconds)``."""
    return FakeClock(tempo_bpm=120.0)


@pytest.fixture(scope="session")
def tiny_models_dir(tmp_path_factory):
    """Tiny checkpoints of every genre plus a conditional one, made once (see tests/engine_models.py)."""
    return make_models(tmp_path_factory.mktemp("models"))


@pytest.fixture
def with_tiny_models(tiny_models_dir, monkeypatch):
    """Point ``RTGEN_MODELS`` at the tiny checkpoints for one test, with no shipped model beside them."""
    monkeypatch.setenv("RTGEN_MODELS", str(tiny_models_dir))
    monkeypatch.setenv("RTGEN_SHIPPED_MODELS", str(tiny_models_dir / "no-shipped-models"))
    return tiny_models_dir
