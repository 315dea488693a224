"""Python to one static binary for the target (aarch64, armhf, …): Nuitka, the stdlib C modules,
packages from the pip index."""
