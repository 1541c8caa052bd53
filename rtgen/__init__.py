"""rtgen: a real-time MIDI performance daemon that answers a performer with genre-fused LSTM models."""

__version__ = "0.1.0"
