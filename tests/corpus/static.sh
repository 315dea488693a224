#!/bin/sh
# A fixed address with its netmask, the default route and a name server, then the clock.
# expect: PROBE static run=1 cwd=/ mode=- dummies=0 args= host=lan
# expect: PROBE static up
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
hostname lan
ifconfig eth0 192.168.7.2 netmask 255.255.255.0 up
route add default gw 192.168.7.1
echo "nameserver 192.168.7.1" > /etc/resolv.conf
ntpdate -s 192.168.7.1 || true
route add -net 10.0.0.0 netmask 255.0.0.0 gw 192.168.7.254
exec /app/probe static
