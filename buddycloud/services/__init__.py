"""The channel engine: every rule of the channel model, over storage, with no wire format."""
