"""Wi-Fi in real boots: the Debian kernel's mac80211_hwsim gives the guest two radios. One is
moved into a network namespace of its own inside the guest, where Debian's arm64 hostapd
runs a WPA2-PSK access point with busybox's DHCP and HTTP servers behind it (test-only
programs in the test image); pinit joins it from the other radio, from PID 1, and a service
fetches a page from the access point's side. Nothing leaves the guest."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from builder.formats import cpio
from builder.formats.elf import libraries, require_aarch64
from builder.image import build
from builder.qemu import harness

pytestmark = [
    pytest.mark.qemu,
    pytest.mark.skipif(
        shutil.which(harness.QEMU) is None,
        reason="qemu-system-aarch64 is not installed (invoke toolchain)",
    ),
]
PASSPHRASE = "correct horse battery"
POWER_DOWN = "reboot: Power down"
REFUSED = "pinit: network: wlan0: pinit-wpa2 did not accept the key: is the passphrase right?"

# The access point's side: a child in a new network namespace, the second radio (phy1) moved
# into it with nl80211's SET_WIPHY_NETNS, then the child runs /ap/run.sh there.
APNET = r"""
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <linux/netlink.h>
#include <linux/genetlink.h>
#include <linux/nl80211.h>
struct msg { struct nlmsghdr n; struct genlmsghdr g; char buf[512]; };
static void put(struct msg *m, int type, const void *data, int len) {
    struct nlattr *a = (struct nlattr *)((char *)m + NLMSG_ALIGN(m->n.nlmsg_len));
    a->nla_type = type; a->nla_len = NLA_HDRLEN + len;
    memcpy((char *)a + NLA_HDRLEN, data, len);
    m->n.nlmsg_len = NLMSG_ALIGN(m->n.nlmsg_len) + NLA_ALIGN(a->nla_len);
}
static int talk(int fd, struct msg *m, char *reply, int size) {
    if (send(fd, m, m->n.nlmsg_len, 0) < 0) return -1;
    return recv(fd, reply, size, 0);
}
int main(void) {
    int ready[2], go[2];
    char c, reply[4096];
    pipe(ready); pipe(go);
    pid_t child = fork();
    if (child == 0) {
        if (unshare(CLONE_NEWNET) < 0) { perror("unshare"); return 1; }
        write(ready[1], "r", 1);
        read(go[0], &c, 1);
        execl("/bin/busybox", "sh", "/ap/run.sh", (char *)0);
        perror("exec"); return 1;
    }
    read(ready[0], &c, 1);
    int fd = socket(AF_NETLINK, SOCK_RAW, NETLINK_GENERIC);
    struct msg m = {0};
    m.n.nlmsg_len = NLMSG_LENGTH(GENL_HDRLEN); m.n.nlmsg_type = GENL_ID_CTRL;
    m.n.nlmsg_flags = NLM_F_REQUEST; m.g.cmd = CTRL_CMD_GETFAMILY; m.g.version = 1;
    put(&m, CTRL_ATTR_FAMILY_NAME, "nl80211", 8);
    int n = talk(fd, &m, reply, sizeof reply), family = -1;
    struct nlmsghdr *h = (struct nlmsghdr *)reply;
    struct nlattr *a = (struct nlattr *)(reply + NLMSG_LENGTH(GENL_HDRLEN));
    while (n > 0 && (char *)a < reply + h->nlmsg_len) {
        if (a->nla_type == CTRL_ATTR_FAMILY_ID) family = *(unsigned short *)((char *)a + NLA_HDRLEN);
        a = (struct nlattr *)((char *)a + NLA_ALIGN(a->nla_len));
    }
    FILE *f = fopen("/sys/class/ieee80211/phy1/index", "r");
    unsigned int wiphy = 1, pid = child;
    if (f) { fscanf(f, "%u", &wiphy); fclose(f); }
    memset(&m, 0, sizeof m);
    m.n.nlmsg_len = NLMSG_LENGTH(GENL_HDRLEN); m.n.nlmsg_type = family;
    m.n.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK; m.g.cmd = NL80211_CMD_SET_WIPHY_NETNS;
    put(&m, NL80211_ATTR_WIPHY, &wiphy, 4);
    put(&m, NL80211_ATTR_PID, &pid, 4);
    n = talk(fd, &m, reply, sizeof reply);
    int err = n > 0 ? ((struct nlmsgerr *)NLMSG_DATA(reply))->error : -1;
    printf("AP: phy1 moved into the access point's namespace (%d)\n", err);
    fflush(stdout);
    write(go[1], "g", 1);
    int status;
    waitpid(child, &status, 0);
    return WEXITSTATUS(status);
}
"""

# The station's side: fetch the access point's page once the network is up, say so, let the
# access point restart, fetch again (after pinit joined again), then power off.
CLIENT = r"""
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
static int get(char *body, int size) {
    struct sockaddr_in ap = {.sin_family = AF_INET, .sin_port = htons(80)};
    struct timeval two = {2, 0};
    const char *req = "GET /page.txt HTTP/1.0\r\n\r\n";
    char reply[1024];
    int fd = socket(AF_INET, SOCK_STREAM, 0), n, got = 0;
    inet_pton(AF_INET, "192.168.77.1", &ap.sin_addr);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &two, sizeof two);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &two, sizeof two);
    if (connect(fd, (struct sockaddr *)&ap, sizeof ap) < 0 || write(fd, req, strlen(req)) < 0) {
        close(fd);
        return -1;
    }
    while (got < (int)sizeof reply - 1 && (n = read(fd, reply + got, sizeof reply - 1 - got)) > 0)
        got += n;
    close(fd);
    reply[got] = 0;
    char *start = strstr(reply, "\r\n\r\n");
    if (strncmp(reply, "HTTP/1.", 7) || !start) return -1;
    snprintf(body, size, "%s", start + 4);
    return 0;
}
static int fetch(int n) {
    char body[256];
    for (int i = 0; i < 120; i++) {
        if (get(body, sizeof body) == 0) {
            printf("FETCH %d: %s", n, body);
            fflush(stdout);
            return 0;
        }
        sleep(1);
    }
    printf("FETCH %d: gave up\n", n);
    return 1;
}
int main(int argc, char **argv) {
    struct stat st;
    if (fetch(1)) return 1;
    if (argc > 1) {  /* the access point restarts: fetch again once pinit has joined again */
        fclose(fopen("/run/fetched", "w"));
        while (stat("/run/restarted", &st) != 0) sleep(1);
        if (fetch(2)) return 1;
    }
    kill(1, SIGUSR2);
    for (;;) pause();
}
"""

RUN_SH = """B=/bin/busybox
$B ifconfig lo up
$B ifconfig wlan1 192.168.77.1 netmask 255.255.255.0 up
/usr/sbin/hostapd -B -P /run/hostapd.pid /ap/hostapd.conf
$B udhcpd /ap/udhcpd.conf
$B httpd -p 80 -h /ap/www
echo "AP: up"
while [ ! -e /run/fetched ]; do $B sleep 1; done
$B kill $($B cat /run/hostapd.pid)
echo "AP: stopped"
$B sleep 4
/usr/sbin/hostapd -B -P /run/hostapd.pid /ap/hostapd.conf
echo "AP: started again"
$B touch /run/restarted
exec $B sleep 100000
"""

HOSTAPD_CONF = """interface=wlan1
driver=nl80211
ssid=pinit-wpa2
hw_mode=g
channel=6
wpa=2
wpa_passphrase={passphrase}
wpa_key_mgmt=WPA-PSK
rsn_pairwise=CCMP
ignore_broadcast_ssid={hidden}
"""

UDHCPD_CONF = """start 192.168.77.100
end 192.168.77.150
interface wlan1
option subnet 255.255.255.0
option lease 600
lease_file /run/udhcpd.leases
pidfile /run/udhcpd.pid
"""


def ap_files(toolchain, tmp: Path, hidden: bool) -> dict[str, Path]:
    """[image] files: busybox, hostapd with its loader and libraries, the AP's configs."""
    files: dict[str, Path] = {"/bin/busybox": toolchain.busybox}
    hostapd = toolchain.testkit / "usr/sbin/hostapd"
    files["/usr/sbin/hostapd"] = hostapd
    libnl = {p.name: p for p in (toolchain.testkit / "lib/aarch64-linux-gnu").glob("libnl-*.so.*")}
    libnl |= {
        p.name: p for p in (toolchain.testkit / "usr/lib/aarch64-linux-gnu").glob("libnl-*.so.*")
    }
    info = require_aarch64(hostapd, "hostapd")
    nl_infos = [(p.resolve(), require_aarch64(p.resolve(), "libnl")) for p in libnl.values()]
    libs, _, missing = libraries(
        [(hostapd, info), *nl_infos], toolchain.sysroot, provided=frozenset(libnl)
    )
    assert not missing, missing
    assert info.interp is not None
    out = tmp / "ap"
    out.mkdir()
    for rel, blob in libs.items():
        (out / rel.replace("/", "_")).write_bytes(blob)
        files["/" + rel] = out / rel.replace("/", "_")
    files[info.interp] = (toolchain.sysroot / info.interp.lstrip("/")).resolve()
    for name, path in libnl.items():
        files[f"/lib/aarch64-linux-gnu/{name}"] = path.resolve()
    for name, text in {
        "run.sh": RUN_SH,
        "hostapd.conf": HOSTAPD_CONF.format(passphrase=PASSPHRASE, hidden=int(hidden)),
        "udhcpd.conf": UDHCPD_CONF,
        "page.txt": "hello from the access point\n",
    }.items():
        (out / name).write_text(text)
        files[f"/ap/www/{name}" if name == "page.txt" else f"/ap/{name}"] = out / name
    return files


def appliance(
    tmp: Path,
    cc,
    toolchain,
    built_init,
    wifi: str,
    client_args: str,
    hidden: bool = False,
    board: str = "all",
) -> Path:
    files = ap_files(toolchain, tmp, hidden)
    table = ", ".join(f'"{k}" = "{v}"' for k, v in sorted(files.items()))
    (tmp / "pinit.toml").write_text(
        f"""
[init]
hostname = "station"

[kernel]
modules = ["mac80211_hwsim"]
params = {{ mac80211_hwsim = "radios=2" }}

[network]
country = "GB"
retry_max = 4.0
{wifi}

[[service]]
name = "ap"
exec = "{cc("apnet", APNET)}"
restart = "never"

[[service]]
name = "client"
exec = "{cc("client", CLIENT)}"
args = [{client_args}]
after = ["network"]
wait_timeout = 120.0
restart = "never"

[image]
board = "{board}"
files = {{ {table} }}
"""
    )
    return build(tmp / "pinit.toml", tmp / "out", built_init, toolchain).boot


def test_joins_a_hidden_wpa2_network_past_an_absent_one_and_rejoins_after_the_ap_restarts(
    cc, built_init, toolchain, tmp_path
) -> None:
    boot_dir = appliance(
        tmp_path,
        cc,
        toolchain,
        built_init,
        f"""
[[network.wifi]]
ssid = "nowhere"
passphrase = "not in range at all"

[[network.wifi]]
ssid = "pinit-wpa2"
passphrase = "{PASSPHRASE}"
hidden = true
""",
        '"restart"',
        hidden=True,  # it answers only a probe that names it
    )
    with harness.plan(boot_dir) as plan:
        result = harness.run(
            plan,
            expect=[
                "pinit: network: wlan0: scanning for nowhere, pinit-wpa2",
                "pinit: network: wlan0: joining pinit-wpa2",
                "pinit: network: wlan0: joined pinit-wpa2 (WPA2)",
                "pinit: network: wlan0: lease 192.168.77.",
                "FETCH 1: hello from the access point",
                "pinit: network: wlan0: left pinit-wpa2",
                "pinit: network: wlan0: joined pinit-wpa2 (WPA2)",
                "pinit: network: wlan0: lease 192.168.77.",
                "FETCH 2: hello from the access point",
                POWER_DOWN,
            ],
            also=["pinit: network: wlan0: regulatory country GB", "AP: up", "AP: stopped"],
            fail=["FATAL", "Traceback", "FETCH 1: gave up", "FETCH 2: gave up"],
            timeout=240,
            log=tmp_path / "console.log",
        )
    assert result.ok, f"{result.reason}\n" + "\n".join(result.lines[-60:])
    text = "\n".join(result.lines)
    assert PASSPHRASE not in text
    config = (tmp_path / "out").rglob("*")
    assert not any(
        PASSPHRASE.encode() in p.read_bytes()
        for p in config
        if p.is_file() and p.stat().st_size < 1 << 20
    )


def test_a_wrong_passphrase_is_said_once_per_attempt_with_a_growing_wait(
    cc, built_init, toolchain, tmp_path
) -> None:
    boot_dir = appliance(
        tmp_path,
        cc,
        toolchain,
        built_init,
        """
[[network.wifi]]
ssid = "pinit-wpa2"
passphrase = "not the passphrase"
""",
        "",
        board="pi-4",
    )
    # A card for the Pi 4: its device tree and firmware family, its radio's firmware only.
    names = {p.name for p in boot_dir.iterdir()}
    assert {"bcm2711-rpi-4-b.dtb", "start4.elf", "fixup4.dat"} <= names
    assert not names & {"bootcode.bin", "start.elf", "bcm2837-rpi-3-b.dtb"}
    packed = {e.path for e in cpio.read_initramfs((boot_dir / "initramfs.lz4").read_bytes())}
    assert "lib/firmware/brcm/brcmfmac43455-sdio.bin" in packed
    assert "lib/firmware/brcm/brcmfmac43455-sdio.raspberrypi,4-model-b.txt" in packed
    assert "lib/firmware/regulatory.db" in packed
    assert not any("43430" in path for path in packed)
    with harness.plan(boot_dir) as plan:
        result = harness.run(
            plan,
            expect=[
                "pinit: network: wlan0: joining pinit-wpa2",
                f"{REFUSED}; trying again in",
                "pinit: network: wlan0: joining pinit-wpa2",
                f"{REFUSED}; trying again in",
                "pinit: network: wlan0: joining pinit-wpa2",
                f"{REFUSED}; trying again in",
            ],
            fail=["FATAL", "Traceback", "joined pinit-wpa2"],
            timeout=180,
            log=tmp_path / "console.log",
        )
    assert result.ok, f"{result.reason}\n" + "\n".join(result.lines[-60:])
    # Never a tight loop: each refusal is said once, with a wait of at least 2 s that never
    # shrinks (it doubles up to retry_max = 4 s).
    waits = [
        float(line.rsplit(" in ", 1)[1].split()[0]) for line in result.lines if REFUSED in line
    ]
    assert len(waits) == 3, result.lines
    assert all(w >= 2 for w in waits) and waits == sorted(waits), waits
    assert PASSPHRASE not in "\n".join(result.lines)
