"""Composition root: wires the store, the central system and the console, and the command line."""
