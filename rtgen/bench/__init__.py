"""Benchmarks behind ``rtgen bench``: what rtgen costs and how well it keeps time, measured on this machine.

The fused engine step against the papers' windowed approach (``step``); send
time and end-to-end jitter through a real JACK server (``realtime``, ``jack``);
the daemon's answer and control latencies (``daemon``); onset jitter with a busy
TUI attached (``ui``); a long duet for memory growth and stuck notes
(``soak``). Each prints figures with the command that made them; none asserts.
"""
