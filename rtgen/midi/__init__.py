"""MIDI systems and ports: python-rtmidi behind a narrow interface, input polling, JACK tools.

``backends`` picks JACK, ALSA, CoreMIDI or Windows MM; ``ports`` opens rtgen's
virtual ports or connects to others', with fake ports for tests; ``polling``
drains input off JACK's process thread; ``watcher`` reopens ports whose peer or
server comes back; ``messages`` holds MIDI's numbers and the panic sequence;
``graph`` and ``jack`` read the JACK graph and run a private server and client.
"""
