"""Imported by tests/apps/stdlib_probe.py only by a computed name: nothing compiles it in, so on
the device it is read from its source, which comes with the program's folder."""

WHERE = __file__
