#!/bin/sh
# Two programs started with & and the script waiting for them.
# expect: PROBE first run=1 cwd=/ mode=- dummies=0 args=one
# expect: PROBE first up
# expect: PROBE second run=1 cwd=/ mode=- dummies=0 args=two,2
# expect: PROBE second up
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
/app/probe first one &
sleep 1
/app/probe second two 2 &
wait
