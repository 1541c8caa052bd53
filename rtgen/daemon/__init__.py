"""The daemon process: rtgen live, from its ports to the UIs that talk to it.

Wiring the parts together (``process``, ``wiring``), the typed commands that
are the one way into the music state (``commands``), the supervisor and the
guard process that silence the synths on every way out, the OSC server and
its client, the CC map, presets, recording, and the disk work kept off the
engine thread. UIs are other processes and reach it only over OSC.
"""
