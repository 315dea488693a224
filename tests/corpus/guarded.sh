#!/bin/sh
# Set-up that only runs when the hardware is there, and failures that are ignored.
# expect: PROBE guarded run=1 cwd=/ mode=- dummies=0 args= host=appliance
# expect: PROBE guarded up
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
echo appliance > /proc/sys/kernel/hostname
[ -b /dev/vdb1 ] && mount -t ext4 -o noatime /dev/vdb1 /data
mount -t vfat /dev/sda1 /media 2>/dev/null || true
ip link set lo up
ifconfig eth0 192.168.1.20 netmask 255.255.255.0 up
udhcpc -i eth0 -b -q
exec /app/probe guarded
