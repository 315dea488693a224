"""pinit builder: runs on the developer's PC and turns pinit.toml into a boot folder and SD image."""
