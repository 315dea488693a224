#!/bin/sh
# Wait for a device, then a restart loop started in the background, and wait.
# expect: PROBE looped run=1 cwd=/ mode=- dummies=0 args=
# expect: PROBE looped exits
# expect: PROBE looped run=2
# expect: PROBE looped up
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
while [ ! -e /proc/self ]; do
    sleep 0.1
done
export PROBE_CRASHES=1
(
    while true; do
        /app/probe looped
        sleep 1
    done
) &
wait
