#!/bin/sh
# cd DIR && VAR=… exec ./APP
# expect: PROBE relative run=1 cwd=/opt mode=cwd dummies=0 args=
# expect: PROBE relative up
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
cd /opt && APP_MODE=cwd exec ./probe relative
