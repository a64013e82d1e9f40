"""Pure functions from records to derived CI facts: no I/O, so every store and report computes them alike."""
