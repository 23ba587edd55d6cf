"""BPF-style probes: a bpftrace-like language compiled into jitted code at emu's probe points.

``parser`` reads a script into a syntax tree, ``verifier`` checks it against the points the
core and the loaded plugins declare, ``codegen`` writes it as a jitted consumer of the probe
ring, ``attach`` runs it alongside a session, and ``output`` prints maps and events in
bpftrace's formats.
"""
