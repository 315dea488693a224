"""Imported by tests/apps/stdlib_probe.py, as bytecode: a try-import of a backport the appliance
does not have, so on the device the ImportError branch runs, and the module it imports must be
in the binary though nothing else imports it. gpiozero does this (importlib_metadata, then
importlib.metadata); Nuitka takes importlib_metadata for a hard import and drops the branch."""

try:
    import importlib_metadata as chosen
except ImportError:
    import colorsys as chosen

NAME = chosen.__name__
