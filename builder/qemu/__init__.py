"""Running images rather than building them: the QEMU harness, the benchmark and its baseline, timelines."""
