"""Reading /etc/pinit.json, the configuration the builder wrote, into a checked Config.

The bytes come through the kernel seam (Boot reads them), so a golden transcript shows the read.
"""

from __future__ import annotations

from init import jsontext
from init.config import Config
from init.errors import ConfigError
from init.validate import from_dict


def parse(raw: bytes, source: str) -> Config:
    """Check the JSON config the builder wrote; ConfigError names `source`, key and value."""
    try:
        data = jsontext.loads(raw)
    except ValueError as err:  # names line and column; also bad UTF-8
        raise ConfigError(f"{source}: not valid JSON: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a JSON object, found {type(data).__name__}")
    return from_dict(data, source)
