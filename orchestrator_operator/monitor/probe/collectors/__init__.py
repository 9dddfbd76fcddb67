"""Probe collectors: each reads one kind of thing from the host and returns report structs."""
