#!/bin/sh
# A restart loop that counts failures and reboots after too many; set -u and a trap.
# expect: PROBE patient run=1 cwd=/data/app mode=- dummies=0 args=--config,/etc/app.conf
# expect: PROBE patient exits
# expect: PROBE patient run=3 cwd=/data/app
# expect: PROBE patient up
set -u
trap '' INT
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mkdir -p /data/app
cd /data/app
export PROBE_CRASHES=2
failures=0
while :
do
    /app/probe patient --config /etc/app.conf
    failures=$((failures + 1))
    echo "the app exited ($failures failures)" >/dev/console
    if [ "$failures" -ge 10 ]; then
        echo "giving up" && reboot -f
    fi
    sleep 1
done
