#!/bin/sh
# Modules from a list, with their parameters.
# expect: PROBE mods run=1 cwd=/ mode=- dummies=3 args=
# expect: PROBE mods up
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
MODDIR=/lib/modules
for m in dummy; do
    insmod $MODDIR/$m.ko numdummies=3 || echo "cannot load $m"
done
exec /app/probe mods
