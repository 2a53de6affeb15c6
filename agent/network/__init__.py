"""Node addresses from the hardware: the pure choice and its config checks."""
