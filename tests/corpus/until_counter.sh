#!/bin/sh
# A restart loop without a pause, counting its restarts.
# expect: PROBE counter run=1 cwd=/ mode=-
# expect: PROBE counter run=2
# expect: PROBE counter run=3
# expect: PROBE counter up
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
PROBE_CRASHES=2
export PROBE_CRASHES
n=0
until false
do
    n=$((n + 1))
    echo "starting the app, attempt $n"
    /app/probe counter
done
