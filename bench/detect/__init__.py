"""``make bench-detect``: change-point detectors run online on the Turing change-point
benchmark's series and river's market series, scored with TCPD's own metrics."""
