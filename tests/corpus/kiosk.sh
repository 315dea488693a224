#!/bin/sh
# The seed's script as people grow it: a kiosk that restarts its app in a loop.
# expect: PROBE kiosk run=1 cwd=/ mode=production dummies=2 args= host=kiosk
# expect: PROBE kiosk exits
# expect: PROBE kiosk run=3 cwd=/ mode=production
# expect: PROBE kiosk up
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mdev -s
echo /sbin/mdev > /proc/sys/kernel/hotplug
hostname kiosk
export APP_MODE=production
export PROBE_CRASHES=2
insmod /lib/modules/dummy.ko numdummies=2
ifconfig lo 127.0.0.1 up
if [ -e /dev/mmcblk0p2 ]; then
  mount -t ext4 /dev/mmcblk0p2 /data
fi
cd /
while true; do
  /app/probe kiosk
  echo "app crashed, restarting"
  sleep 1
done
