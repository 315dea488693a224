"""pinit toolchain: the pinned cross toolchain and how it is provisioned."""
