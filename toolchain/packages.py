"""What the toolchain is made of: the Debian bookworm packages, by role.

This is the input of `invoke toolchain --update`; toolchain/bookworm.lock.json is its output
(exact versions and sha256). Roles:
  host     installed on the build machine with apt (needs root; otherwise the command is printed)
  sysroot  arm64 packages unpacked with `dpkg -x` into the cross sysroot (no root)
  sysroot-armhf, sysroot-armel  the same SYSROOT list for the 32-bit targets: the Pi 2's
           (armhf) and the Pi Zero's and 1's (armel) Python init (`invoke build-init --target
           armhf`; toolchain/provision.py ensure_sysroot; no root)
  kernel   the arm64 kernel image + modules + dtbs that images boot (no root)
  kernel-armhf, kernel-armel  the Pi 2's (armhf, armmp) and the ARMv6 Pis' (armel, rpi)
           kernels, provisioned only when asked for (toolchain/provision.py ensure_kernel)
  runtime-armhf, runtime-armel  TARGET_RUNTIME for those architectures: e2fsck.static for
           their [data], busybox for their bench baseline (ensure_runtime; no root)
  firmware the Raspberry Pi boot firmware (component non-free-firmware; no root)
  baseline busybox for the benchmark's classic shell-init initramfs (no root)
  runtime  files of the target's Python and base system that ship in images or feed the build:
           sysconfig's data, /etc/services, CPython's own test suite (no root)
  source   Debian source packages (.dsc and its files), built for the target (no root)
  wifi     the Pi's Wi-Fi firmware (brcmfmac) and the regulatory database, shipped only with a
           wireless [network] (no root)
  testkit  programs only the tests run in a guest: hostapd, the access point of the Wi-Fi
           tests, with its libraries (no root)
  kbuild   the locked kernel's headers and Debian's kbuild for the build machine: what builds
           pinit's own kernel module (init/kmod/) for exactly that kernel (no root)
"""

from __future__ import annotations

SUITE = "bookworm"

HOST = (
    "gcc-aarch64-linux-gnu",  # the cross compiler Nuitka's scons drives
    "g++-aarch64-linux-gnu",  # ...and for packages' C++ extensions (greenlet), libstdc++.a
    "binutils-aarch64-linux-gnu",
    "gcc-arm-linux-gnueabihf",  # the 32-bit Pi 2's (armhf) cross compiler: its boot test's init
    "libc6-dev-armhf-cross",  # ...and the C library that init links (no armhf sysroot yet)
    "g++-arm-linux-gnueabihf",  # ...and for packages' C++ extensions on it
    "gcc-arm-linux-gnueabi",  # the ARMv6 Pis' (armel) cross compiler
    "g++-arm-linux-gnueabi",  # ...and for packages' C++ extensions on them
    "libc6-dev-armel-cross",  # ...and its C library, for the tests' static C programs
    "patchelf",  # Nuitka's standalone mode insists on it
    "ccache",  # warm rebuilds of the generated C
    "qemu-system-arm",  # qemu-system-aarch64 for boot tests
    "cpio",  # cross-checks our cpio writer
    "dosfstools",  # mkfs.vfat / fsck.fat for the SD image
    "mtools",  # writes files into the FAT partition without mounting
    "fdisk",  # sfdisk for the partition table
    "e2fsprogs",  # mkfs.ext4 -d for the data partition
    "zstd",
    "xz-utils",
    "lz4",  # initramfs compressions
    "libpython3.11-dev",  # host build of the cffi syscall module for host tests
    "python3.11-venv",
    "gcc",
    "libc6-dev",  # ...and the host compiler that builds it
    "binutils",
    "file",  # readelf and file: Nuitka's standalone mode inspects binaries
    "patch",  # applies Debian's patch series to the CPython source
    "procps",
    "bzip2",  # the tests: pgrep (no qemu left behind), bzip2 (cpio checks)
    "iproute2",  # ...and ip(8): a test's private LAN (netns, tap, veth)
    "openssl",  # invoke keygen / invoke bundle: Ed25519 keys and signatures for updates
    "make",  # kbuild: pinit's own kernel module (builder/kbuild.py)
)

SYSROOT = (
    "libc6",
    "libc6-dev",
    "linux-libc-dev",
    "libcrypt-dev",
    "libpython3.11-dev",  # the static libpython3.11.a and headers
    "zlib1g-dev",
    "libexpat1-dev",  # libpython's builtin zlib and pyexpat need them
    "libffi-dev",  # cffi's backend and _ctypes link libffi.a
    # Static libraries of the standard library's extension modules (builder/python/pyext.py).
    "libssl-dev",  # _ssl, _hashlib
    "libsqlite3-dev",  # _sqlite3
    "liblzma-dev",
    "libbz2-dev",  # _lzma, _bz2
    "libncurses-dev",  # _curses, _curses_panel, readline (libtinfo)
    "libreadline-dev",  # readline
    "uuid-dev",  # _uuid
    "libdb5.3-dev",  # _dbm (Debian builds it on Berkeley DB)
    "libbluetooth-dev",  # headers only: Debian's _socket (and so socketmodule.h) has it
    # Shared libraries of the native runtime (builder/python/native.py): Debian's python3.11 and
    # its lib-dynload modules, for services that need the index's aarch64 binary wheels.
    "zlib1g",
    "libexpat1",
    "libffi8",
    "libssl3",
    "libsqlite3-0",
    "liblzma5",
    "libbz2-1.0",
    "libuuid1",
    "libncursesw6",
    "libtinfo6",
    "libreadline8",
    "libgcc-s1",
    "libstdc++6",
    "libcrypt1",
    "libdb5.3",
)

# Debian source packages built for the target: CPython's, for the extension modules that
# Debian ships only as shared objects (builder/python/pyext.py). Fetched with apt's deb-src.
SOURCES = ("python3.11",)

# linux-image-arm64 is a metapackage: --update follows it to the versioned image package.
KERNEL_META = "linux-image-arm64"
# ...and linux-headers-arm64 to the headers of the same kernel; those name the kbuild package
# (scripts/ for the build machine, so an amd64 package) that an external module is built with.
HEADERS_META = "linux-headers-arm64"
KBUILD_PREFIX = "linux-kbuild-"
FIRMWARE = ("raspi-firmware",)
RUNTIME = (
    "libpython3.11-minimal",  # the target's _sysconfigdata__aarch64-linux-gnu.py
    "netbase",  # /etc/services, /etc/protocols in every image
    "tzdata",  # /usr/share/zoneinfo: [image] timezone, zoneinfo and dateutil on the device
    "ca-certificates",  # the CAs OpenSSL trusts by default: ssl.create_default_context()
    "libpython3.11-testsuite",  # CPython's `test` package, run on the device by the tests
    "python3.11-minimal",  # the native runtime's interpreter (dynamically linked) ...
    "libpython3.11-stdlib",  # ... and its standard library, lib-dynload included
    "e2fsck-static",  # /sbin/e2fsck.static: a [data] partition's check at boot
)
BASELINE = ("busybox-static",)
# What an image of another target ships or its bench runs, for that target's architecture.
TARGET_RUNTIME = ("e2fsck-static", "busybox-static")
WIFI = ("firmware-brcm80211", "wireless-regdb")
TESTKIT = ("hostapd", "libnl-3-200", "libnl-genl-3-200", "libnl-route-3-200")
