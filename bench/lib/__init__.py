"""Helpers for the benchmarks: raw XMPP load generation, private server instances."""
