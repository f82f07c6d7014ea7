"""One small async function per operation: parse -> engine call -> render."""
