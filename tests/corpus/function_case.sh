#!/bin/sh
# A function that starts the app, chosen by a case on a variable set above.
# expect: PROBE fn run=1 cwd=/srv mode=kiosk dummies=0 args=kioskarg,x y
# expect: PROBE fn up
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mkdir -p /srv

start_app() {
    cd /srv
    APP_MODE=$MODE exec /app/probe "$@"
}

MODE=kiosk
case "$MODE" in
    kiosk|signage)
        start_app fn kioskarg "x y"
        ;;
    *)
        exec /bin/sh
        ;;
esac
