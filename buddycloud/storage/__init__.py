"""Storage: one contract (`Storage` in storage.base), several backends."""
