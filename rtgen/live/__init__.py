"""Real time inside the daemon: clocks, the engine thread, and the output thread that sends on time.

``clock`` maps beats to seconds (internal tempo, external MIDI clock, the clock
sender) and ``link`` joins an Ableton Link session; ``listener`` turns stamped
input into phrases; ``player`` is the engine thread, the one owner of the music
state; ``voice`` turns tokens into note messages at absolute beats;
``scheduler`` sends each at its time; ``roll`` keeps what the UI draws;
``timing`` holds the percentile rule and the collector's pauses.
"""
