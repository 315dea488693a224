"""The host side's bottom layer: errors, running tools, writing outputs, the cache."""
