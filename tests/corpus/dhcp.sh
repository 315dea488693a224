#!/bin/sh
# A DHCP client in the background and a time server, as many appliance images start them.
# expect: PROBE dhcp run=1 cwd=/ mode=- dummies=0 args= host=lan
# expect: PROBE dhcp up
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
hostname lan
ifconfig lo 127.0.0.1 up
ip link set eth0 up
udhcpc -i eth0 -b -q -t 3 -s /etc/udhcpc.script
ntpd -p pool.ntp.org
exec /app/probe dhcp
