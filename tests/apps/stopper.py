"""A second Python service in the same binary: waits for the first to be done, powers off."""

import os
import signal
import time

print("STOPPER running", flush=True)
time.sleep(2)
os.kill(1, signal.SIGUSR2)
while True:
    time.sleep(60)
