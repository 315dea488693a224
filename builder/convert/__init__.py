"""Converting a classic busybox-init Pi image to pinit: reading it, translating its /init, rebuilding."""
