#!/bin/sh
# exec env VAR=… APP args
# expect: PROBE staged run=1 cwd=/ mode=staging dummies=0 args=--port,8080
# expect: PROBE staged up
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null || mount -t tmpfs tmpfs /dev
PORT=8080
exec env APP_MODE=staging /app/probe staged --port "$PORT"
