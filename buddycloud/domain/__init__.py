"""The channel model: value types, rules and errors. Pure Python, no I/O, no wire format."""
