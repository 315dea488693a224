"""A network interface: found, brought up, and given an address (DHCPv4 or static), inside
PID 1's one event loop; one `Interface` per [network] table.

`Interface` is an event source of the supervisor's loop (init/supervise.py): `fds()` it waits on,
`due()` its next timer, `ready(fd)` and `tick()` when either fires. DHCP (RFC 2131) goes over a
packet socket, open only while the client talks to a server (not while it holds a lease, so
PID 1 is not woken by the interface's traffic); addresses and the default route go through
rtnetlink, the address with the lease's lifetime so the kernel drops it when the lease ends.
Link events (rtnetlink's link group) tell a cable pulled (the lease is given up) from one
plugged in (a new lease), and an interface that appears late (its driver still probing).

Console lines ("pinit: network: ..."):
    eth0 up; asking for an address (DHCP)
    eth0: no DHCP answer; asking again (waiting 4 s)
    eth0: lease 10.0.2.15/24 from 10.0.2.2 for 86400 s (gateway 10.0.2.2, dns 10.0.2.3)
    eth0: lease 10.0.2.15 renewed for 86400 s
    eth0: 192.168.1.10/24 (static, gateway 192.168.1.1)
    eth0: link down / link up
    eth0: lease 10.0.2.15 ran out / refused (NAK); asking again
    no interface eth0 yet / no ethernet interface yet (the boot goes on; it is used when it appears)
    eth0: released 10.0.2.15
    eth0: DHCP: dropped a malformed message (IPv4 header length 60 in a 46-byte packet); 1 so far
        (said for the 1st, 2nd, 4th, 8th … one: a flood of bad packets is no flood of lines)
"""

from __future__ import annotations

import errno

from init import dhcp, inet, rtnl
from init.config import FIRST_ETHERNET, FIRST_WIRELESS
from init.config import Network as NetworkConfig
from init.console import Log, errname
from init.errors import Dropped
from init.kernel import Kernel
from init.net import ask, datagrams, link_up
from init.rootfs import prefixed
from init.timeline import Timeline

TYPE_CHECKING = False
if TYPE_CHECKING:
    from _collections_abc import Callable

    from init.wifi import Radio

RESOLV_CONF = "/etc/resolv.conf"
ARPHRD_ETHER = 1
FIRST_WAIT = 2.0  # seconds for the first answer; doubled per attempt up to retry_max
REQUEST_TRIES = 3  # REQUESTs (after an OFFER) before starting over with DISCOVER
MIN_RETRY = 10.0  # while renewing: at least this long between REQUESTs (RFC 2131 4.4.5)
# Joined a Wi-Fi network: the access point opens its side of the port only once it has our
# last key frame; a DISCOVER sent before that is dropped and costs the first 2 s wait.
SETTLE = 0.2
READ_SIZE = 4096


class Interface:
    def __init__(
        self,
        kernel: Kernel,
        root: str,
        net: NetworkConfig,
        hostname: str,
        log: Log,
        timeline: Timeline,
        changed: Callable[[], None] | None = None,
    ) -> None:
        self._kernel = kernel
        self._root = root
        self._net = net
        self._hostname = hostname
        self._log = log
        self._timeline = timeline
        self._changed = changed or (lambda: None)
        self.name = ""  # the interface, once found
        self.index = 0
        self.mac = b""
        self.up = False  # an address is set: `after = ["network"]` may start
        self.servers: tuple[bytes, ...] = ()  # time servers the DHCP server named
        self.name_servers: tuple[bytes, ...] = ()  # its part of /etc/resolv.conf
        self.on_lease: Callable[[], None] = lambda: None  # an address: resolv.conf, time
        self._events = -1  # rtnetlink link events
        self._packet = -1  # DHCP's packet socket, while talking to a server
        self._state = "none"  # none | down | settling | selecting | requesting | bound
        # | renewing | rebinding | static
        self._lease: dhcp.Lease | None = None
        self._offer: dhcp.Lease | None = None
        self._xid = 0
        self._tries = 0
        self._wait = FIRST_WAIT
        self._started = 0.0  # when this exchange began (the DHCP secs field, the timeline)
        self._timer: float | None = None
        self._bound_at = 0.0
        self._seq = 0
        self._dropped_dhcp = Dropped("network: DHCP", log)  # named when the card is found
        self._dropped_links = Dropped("network: link events", log)
        # Wi-Fi: the radio says when the link is up (joined, keys in place), not the carrier.
        self._radio: Radio | None = None
        if net.wifi:
            from init.wifi import Radio  # here: a wired boot need not import Wi-Fi's code

            self._radio = Radio(kernel, net, log, timeline, self._carrier)

    # --- set-up ---------------------------------------------------------------------------

    def start(self) -> None:
        """Listen for link events, find the interface, bring it up. Never raises."""
        try:
            self._events = self._kernel.netlink_socket(rtnl.NETLINK_ROUTE, rtnl.RTMGRP_LINK)
        except OSError as exc:
            self._log(
                f"network: no link events: {errname(exc)}; a cable plugged in later is not seen"
            )
        if not self._find():
            wanted = {
                FIRST_ETHERNET: "ethernet interface",
                FIRST_WIRELESS: "wireless interface",
            }.get(self._net.interface, f"interface {self._net.interface}")
            self._log(f"network: no {wanted} yet; the boot goes on without it")

    def _sys(self, name: str, what: str) -> str:
        return self._kernel.read_text(prefixed(self._root, f"/sys/class/net/{name}/{what}")).strip()

    def _find(self, late: bool = False) -> bool:
        """Take the configured interface (or the first ethernet) if the kernel has it;
        `late`: after the boot said it was not there."""
        wanted = self._net.interface
        try:
            names = self._kernel.listdir(prefixed(self._root, "/sys/class/net"))
        except OSError:
            names = []  # ENOENT: no sysfs
        for name in sorted(names):
            if wanted not in (FIRST_ETHERNET, FIRST_WIRELESS) and name != wanted:
                continue
            try:
                radio = self._kernel.exists(prefixed(self._root, f"/sys/class/net/{name}/phy80211"))
                if wanted == FIRST_ETHERNET and (
                    self._sys(name, "type") != str(ARPHRD_ETHER)
                    or radio
                    or not self._kernel.exists(
                        prefixed(self._root, f"/sys/class/net/{name}/device")
                    )
                ):
                    continue  # lo, bridges, tunnels, radios: not a cable's card
                if wanted == FIRST_WIRELESS and not radio:
                    continue  # not a radio
                index = int(self._sys(name, "ifindex"))
                mac = bytes.fromhex(self._sys(name, "address").replace(":", ""))
            except (OSError, ValueError):
                continue  # ENOENT: it went away while we looked
            self.name, self.index, self.mac = name, index, mac
            self._dropped_dhcp.what = f"network: {name}: DHCP"
            if late:
                self._log(f"network: {name} appeared")
            self._bring_up()
            return True
        return False

    def _bring_up(self) -> None:
        try:
            link_up(self._kernel, self.name)
        except OSError as exc:
            self._log(f"network: cannot bring up {self.name}: {errname(exc)}")
            return
        self._state = "down"
        if self._radio is not None:
            self._radio.start(self.name, self.index, self.mac)
            return
        try:
            carrier = self._sys(self.name, "carrier") == "1"
        except OSError:
            carrier = False  # EINVAL while the link is still coming up: its event follows
        if carrier:
            self._link_up()

    def _link_up(self) -> None:
        if self._net.address:
            self._static()
            return
        self._log(f"network: {self.name} up; asking for an address (DHCP)")
        self._discover()

    # --- the loop's side ------------------------------------------------------------------

    def fds(self) -> list[int]:
        radio = self._radio.fds() if self._radio is not None else []
        return [fd for fd in (self._events, self._packet) if fd >= 0] + radio

    def due(self) -> float | None:
        times = [self._timer, self._radio.due() if self._radio is not None else None]
        return min((t for t in times if t is not None), default=None)

    def ready(self, fd: int) -> None:
        if fd == self._events:
            self._link_events()
        elif fd == self._packet:
            self._receive()
        elif self._radio is not None:
            self._radio.ready(fd)

    def tick(self, now: float) -> None:
        if self._radio is not None:
            self._radio.tick(now)
        if self._timer is None or now < self._timer:
            return
        self._timer = None
        state = self._state
        if state == "settling":
            self._link_up()
        elif state == "selecting":
            self._retry("no DHCP answer")
        elif state == "requesting":
            if self._tries < REQUEST_TRIES:
                self._send_request()
            else:
                self._retry("no answer to the request")
        elif state in ("bound", "renewing", "rebinding"):
            self._lease_timer(now)

    # --- DHCP -----------------------------------------------------------------------------

    def _open_packet(self) -> bool:
        if self._packet >= 0:
            return True
        try:
            self._packet = self._kernel.packet_socket(self.index)
            return True
        except OSError as exc:
            self._log(f"network: {self.name}: cannot open a packet socket: {errname(exc)}")
            self._timer = self._kernel.clock() + self._net.retry_max
            return False

    def _close_packet(self) -> None:
        if self._packet >= 0:
            self._kernel.close(self._packet)
            self._packet = -1

    def _send(self, kind: int, **kw: bytes) -> None:
        secs = int(self._kernel.clock() - self._started)
        payload = dhcp.message(kind, self._xid, self.mac, self._hostname, secs=secs, **kw)
        src = kw.get("ciaddr", dhcp.ANY)
        dst = self._lease.server if self._state == "renewing" and self._lease else dhcp.BROADCAST
        try:
            self._kernel.packet_send(self._packet, self.index, dhcp.ip_udp(payload, src, dst))
        except OSError as exc:
            # ENETDOWN, ENOBUFS: the retry timer tries again.
            self._log(f"network: {self.name}: cannot send DHCP {dhcp.NAMES[kind]}: {errname(exc)}")

    def _new_xid(self) -> None:
        self._xid = (
            int.from_bytes(self.mac[2:], "big") ^ int(self._kernel.clock() * 1e6)
        ) & 0xFFFFFFFF

    def _discover(self) -> None:
        self._state = "selecting"
        self._started = self._kernel.clock()
        self._offer = None
        self._tries = 0
        self._wait = FIRST_WAIT
        self._new_xid()
        if self._open_packet():
            self._send(dhcp.DISCOVER)
            self._timer = self._kernel.clock() + self._wait

    def _retry(self, why: str) -> None:
        self._wait = min(self._wait * 2, max(self._net.retry_max, FIRST_WAIT))
        self._log(f"network: {self.name}: {why}; asking again (waiting {self._wait:g} s)")
        self._state = "selecting"
        self._new_xid()
        if self._open_packet():
            self._send(dhcp.DISCOVER)
        self._timer = self._kernel.clock() + self._wait

    def _send_request(self) -> None:
        assert self._offer is not None
        self._tries += 1
        self._send(dhcp.REQUEST, requested=self._offer.address, server=self._offer.server)
        self._timer = self._kernel.clock() + FIRST_WAIT * self._tries

    def _receive(self) -> None:
        while True:
            try:
                packet = self._kernel.read(self._packet, READ_SIZE)
            except BlockingIOError:
                return  # EAGAIN: drained
            except OSError as exc:
                self._log(f"network: {self.name}: DHCP socket: {errname(exc)}")
                return
            try:
                payload = dhcp.udp_payload(packet)
                reply = dhcp.parse(payload, self.mac) if payload is not None else None
            except dhcp.DhcpError as exc:
                self._dropped_dhcp(exc)
                continue
            if reply is not None and reply.xid == self._xid:
                self._reply(reply)
            if self._packet < 0:
                return  # bound: the socket is closed

    def _reply(self, reply: dhcp.Lease) -> None:
        state = self._state
        if reply.kind == dhcp.OFFER and state == "selecting":
            self._offer = reply
            self._state = "requesting"
            self._send_request()
        elif reply.kind == dhcp.ACK and state in ("requesting", "renewing", "rebinding"):
            self._bind(reply)
        elif reply.kind == dhcp.NAK and state in ("requesting", "renewing", "rebinding"):
            self._log(f"network: {self.name}: refused (NAK); asking again")
            self._drop_address()
            self._discover()

    def _bind(self, lease: dhcp.Lease) -> None:
        now = self._kernel.clock()
        renewed = (
            self._lease is not None
            and self._lease.address == lease.address
            and self._state in ("renewing", "rebinding")
        )
        if self._lease is not None and self._lease.address != lease.address:
            self._drop_address()  # the server moved us: the old address must go
        if not self._set_address(lease.address, lease.prefix, lease.lease):
            self._retry("cannot set the address")
            return
        self._lease, self._bound_at = lease, now
        self._state = "bound"
        self._close_packet()
        self._timer = now + lease.renew
        if renewed:
            self._log(
                f"network: {self.name}: lease {inet.text(lease.address)} renewed for "
                f"{lease.lease} s"
            )
            return
        if lease.router:
            self._route(lease.router, rtnl.RTPROT_DHCP)
        self._name_servers(lease.dns)
        extra = [f"gateway {inet.text(lease.router)}"] if lease.router else []
        if lease.dns:
            extra.append("dns " + " ".join(inet.text(a) for a in lease.dns))
        self._log(
            f"network: {self.name}: lease {inet.text(lease.address)}/{lease.prefix} from "
            f"{inet.text(lease.server)} for {lease.lease} s"
            + (f" ({', '.join(extra)})" if extra else "")
        )
        step = self._timeline.step("network", f"dhcp {self.name}")
        step.start, step.end = self._started, now
        self.servers = lease.ntp
        self._ready()

    def _lease_timer(self, now: float) -> None:
        lease = self._lease
        assert lease is not None
        age = now - self._bound_at
        if age >= lease.lease:
            self._log(
                f"network: {self.name}: lease {inet.text(lease.address)} ran out; asking again"
            )
            self._drop_address()
            self._discover()
            return
        state = "renewing" if age < lease.rebind else "rebinding"
        if state != self._state:
            self._state = state
            self._started = now
            self._new_xid()
        if self._open_packet():
            self._send(dhcp.REQUEST, ciaddr=lease.address)
        # Half the time left to the next stage, at least MIN_RETRY (RFC 2131 4.4.5).
        stage_end = lease.rebind if state == "renewing" else lease.lease
        self._timer = now + min(max((stage_end - age) / 2, MIN_RETRY), stage_end - age)

    # --- the kernel's tables --------------------------------------------------------------

    def _netlink(self, message: bytes, what: str, expected: int = 0) -> bool:
        """One rtnetlink request and its ACK (the kernel answers before write returns);
        `expected` is an errno that is no failure."""
        try:
            ask(self._kernel, rtnl.NETLINK_ROUTE, message)
            return True
        except OSError as exc:
            if expected and exc.errno == expected:
                return True
            self._log(f"network: {self.name}: cannot {what}: {errname(exc)}")
            return False
        except rtnl.RtnlError as exc:
            self._log(f"network: {self.name}: cannot {what}: the kernel's answer: {exc}")
            return False

    def _set_address(self, address: bytes, prefix: int, lifetime: int = rtnl.FOREVER) -> bool:
        self._seq += 1
        return self._netlink(
            rtnl.address(rtnl.RTM_NEWADDR, self._seq, self.index, address, prefix, lifetime),
            f"set address {inet.text(address)}/{prefix}",
        )

    def _drop_address(self) -> None:
        self.up = False
        lease, self._lease = self._lease, None
        if lease is not None:
            self._seq += 1
            # EADDRNOTAVAIL: the kernel removed it already, at the end of its lifetime.
            self._netlink(
                rtnl.address(rtnl.RTM_DELADDR, self._seq, self.index, lease.address, lease.prefix),
                f"remove {inet.text(lease.address)}",
                errno.EADDRNOTAVAIL,
            )

    def _route(self, gateway: bytes, protocol: int) -> None:
        self._seq += 1
        self._netlink(
            rtnl.default_route(self._seq, self.index, gateway, protocol),
            f"add the default route via {inet.text(gateway)}",
        )

    def _name_servers(self, servers: tuple[bytes, ...]) -> None:
        ours = [inet.pack(name) for name in self._net.dns]
        self.name_servers = tuple(dict.fromkeys([*ours, *servers]))

    def _static(self) -> None:
        address, prefix = inet.pack_prefix(self._net.address)
        if not self._set_address(address, prefix):
            return
        if self._net.gateway:
            self._route(inet.pack(self._net.gateway), rtnl.RTPROT_STATIC)
        self._name_servers(())
        self._state = "static"
        gateway = f", gateway {self._net.gateway}" if self._net.gateway else ""
        self._log(f"network: {self.name}: {self._net.address} (static{gateway})")
        self._ready()

    def _ready(self) -> None:
        self.up = True
        self.on_lease()
        self._changed()

    # --- links ----------------------------------------------------------------------------

    def _link_events(self) -> None:
        try:
            for data in datagrams(self._kernel, self._events):
                try:
                    events = [rtnl.link_event(k, body) for k, _, body in rtnl.messages(data)]
                except rtnl.RtnlError as exc:
                    self._dropped_links(exc)
                    continue
                for event in events:
                    if event is not None:
                        self._link(*event)
        except OSError as exc:
            self._log(f"network: link events: {errname(exc)}")

    def _link(self, index: int, name: str, carrier: bool) -> None:
        if self._state == "none":
            self._find(late=True)
            return
        if index != self.index or self._radio is not None:
            return  # a radio's carrier comes before its keys: the radio tells (`_carrier`)
        self._carrier(carrier)

    def _carrier(self, carrier: bool) -> None:
        if not carrier and self._state != "down":
            self._log(f"network: {self.name}: link down")
            self._close_packet()
            self._timer = None
            if self._state != "static":
                self._drop_address()
            self.up = self._state == "static"
            self._state = "down"
        elif carrier and self._state == "down" and self._radio is not None:
            self._state = "settling"  # the radio said "joined"
            self._timer = self._kernel.clock() + SETTLE
        elif carrier and self._state == "down":
            self._log(f"network: {self.name}: link up")
            self._link_up()

    # --- shutdown -------------------------------------------------------------------------

    def stop(self) -> None:
        """Give the lease back (RFC 2131 DHCPRELEASE) and remove the address."""
        lease = self._lease
        if lease is None or self._state not in ("bound", "renewing", "rebinding"):
            if self._radio is not None:
                self._radio.stop()
            return
        self._state = "renewing"  # unicast to the server, from our address
        if self._open_packet():
            self._send(dhcp.RELEASE, ciaddr=lease.address, server=lease.server)
            self._close_packet()
        self._drop_address()
        self._state = "down"
        self._log(f"network: {self.name}: released {inet.text(lease.address)}")
        if self._radio is not None:
            self._radio.stop()


def write_resolv(kernel: Kernel, root: str, interfaces: list[Interface], log: Log) -> None:
    """/etc/resolv.conf: every interface's name servers, in the order of the config."""
    names = dict.fromkeys(inet.text(a) for i in interfaces for a in i.name_servers)
    try:
        kernel.write_file(
            prefixed(root, RESOLV_CONF), "".join(f"nameserver {name}\n" for name in names).encode()
        )
    except OSError as exc:
        log(f"network: cannot write {RESOLV_CONF}: {errname(exc)}")
