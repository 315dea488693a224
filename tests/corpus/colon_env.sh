#!/bin/sh
# `while :` around `env VAR=… APP args`, output sent to the console.
# expect: PROBE colon run=1 cwd=/ mode=loop dummies=0 args=--fast,-v
# expect: PROBE colon exits
# expect: PROBE colon run=2 cwd=/ mode=loop
# expect: PROBE colon up
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
export PROBE_CRASHES=1
while :; do
    env APP_MODE=loop /app/probe colon --fast -v > /dev/console 2>&1
    sleep 2
done
