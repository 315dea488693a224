"""Python to one static aarch64 binary: Nuitka, the stdlib C modules, packages from the pip index."""
