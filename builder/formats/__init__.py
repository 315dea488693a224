"""Byte formats the builder writes: cpio, compression, the boot folder, the card image, ELF checks."""
