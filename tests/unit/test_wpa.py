"""WPA2-PSK's pieces against published vectors (FIPS 197, RFC 3394, RFC 2202, IEEE 802.11's
PSK examples) and the supplicant's handshake against an access point played here, built from
the same primitives but checked end to end: the keys both sides end with must agree."""

from __future__ import annotations

import hashlib
import hmac
import os
import struct

import pytest

from init import nl80211, wpa
from init.config import Wifi
from init.rtnl import attr
from init.wifi import Handshake, choose

KEY128 = bytes(range(16))
PLAIN = bytes.fromhex("00112233445566778899aabbccddeeff")


def test_aes_matches_fips_197_for_128_and_256_bit_keys() -> None:
    assert wpa.aes_encrypt(KEY128, PLAIN).hex() == "69c4e0d86a7b0430d8cdb78070b4c55a"
    assert wpa.aes_decrypt(KEY128, bytes.fromhex("69c4e0d86a7b0430d8cdb78070b4c55a")) == PLAIN
    key256 = bytes(range(32))
    assert wpa.aes_encrypt(key256, PLAIN).hex() == "8ea2b7ca516745bfeafc49904b496089"
    assert wpa.aes_decrypt(key256, bytes.fromhex("8ea2b7ca516745bfeafc49904b496089")) == PLAIN


def test_key_wrap_matches_rfc_3394_and_a_wrong_key_fails_its_integrity_check() -> None:
    wrapped = wpa.key_wrap(KEY128, PLAIN)
    assert wrapped.hex() == "1fa68b0a8112b447aef34bd8fb5a7b829d3e862371d2cfe5"
    assert wpa.key_unwrap(KEY128, wrapped) == PLAIN
    with pytest.raises(wpa.WpaError, match="integrity"):
        wpa.key_unwrap(bytes(16), wrapped)
    with pytest.raises(wpa.WpaError, match="multiple of 8"):
        wpa.key_unwrap(KEY128, wrapped[:-1])


def test_hmac_sha1_matches_rfc_2202_and_the_host_library() -> None:
    assert (
        wpa.hmac_sha1(b"\x0b" * 20, b"Hi There").hex() == "b617318655057264e28bc0b6fb378c8ef146be00"
    )
    for size in (0, 20, 64, 65, 100):
        key, message = os.urandom(size), os.urandom(77)
        assert wpa.hmac_sha1(key, message) == hmac.new(key, message, "sha1").digest()


def test_prf_expands_like_ieee_802_11() -> None:
    # The PRF is HMAC-SHA1 over label, 0, data, counter; checked against the definition.
    key, data = os.urandom(32), os.urandom(76)
    want = b"".join(
        hmac.new(key, b"Pairwise key expansion\0" + data + bytes([i]), "sha1").digest()
        for i in range(3)
    )[:48]
    assert wpa.prf(key, b"Pairwise key expansion", data, 48) == want


# --- the handshake, against an access point played here -------------------------------------

AP = bytes.fromhex("020000000100")
STA = bytes.fromhex("020000000000")
PMK = hashlib.pbkdf2_hmac("sha1", b"correct horse battery", b"pinit-wpa2", 4096, 32)
GTK = bytes(range(100, 116))


def ap_ptk(pmk: bytes, anonce: bytes, snonce: bytes) -> bytes:
    # The authenticator's own order of arguments: the PTK must not depend on who computes it.
    return wpa.ptk(pmk, STA, AP, snonce, anonce)


def gtk_data(kek: bytes, keyid: int, gtk: bytes) -> bytes:
    kde = b"\xdd" + bytes([6 + len(gtk)]) + wpa.GTK_KDE + bytes([keyid, 0]) + gtk
    rsn = wpa.rsn_ie(wpa.CIPHER_CCMP)
    plain = rsn + kde
    plain += b"\xdd" + b"\0" * (-(len(plain) + 1) % 8)  # padding to a multiple of 8
    return wpa.key_wrap(kek, plain)


def replay(n: int) -> bytes:
    return struct.pack(">Q", n)


def handshake(sta_pmk: bytes) -> tuple[Handshake, bytes, bytes, bytes]:
    """Messages 1 and 2; returns the station, message 2, the ANonce and the AP's PTK."""
    sta = Handshake(sta_pmk, STA, AP, wpa.rsn_ie(wpa.CIPHER_CCMP), wpa.CIPHER_CCMP, os.urandom(32))
    anonce = os.urandom(32)
    msg1 = wpa.KeyFrame(2 | wpa.PAIRWISE | wpa.ACK, replay(1), anonce, key_length=16).pack()
    msg2 = sta.receive(msg1)
    assert msg2 is not None
    frame = wpa.parse(msg2)
    assert frame is not None
    assert frame.info == 2 | wpa.PAIRWISE | wpa.MIC and frame.replay == replay(1)
    assert frame.data == wpa.rsn_ie(wpa.CIPHER_CCMP)  # our RSN element, as associated
    return sta, msg2, anonce, ap_ptk(PMK, anonce, frame.nonce)


def test_the_4_way_and_group_key_handshakes_end_with_the_access_points_keys() -> None:
    sta, msg2, anonce, ptk = handshake(PMK)
    assert wpa.check_mic(ptk[:16], msg2)  # the AP accepts message 2
    info = 2 | wpa.PAIRWISE | wpa.ACK | wpa.MIC | wpa.INSTALL | wpa.SECURE | wpa.ENCRYPTED
    msg3 = wpa.KeyFrame(
        info, replay(2), anonce, gtk_data(ptk[16:32], 1, GTK), 16, rsc=b"\x05" + b"\0" * 7
    ).signed(ptk[:16])
    msg4 = sta.receive(msg3)
    assert msg4 is not None and wpa.check_mic(ptk[:16], msg4)
    frame = wpa.parse(msg4)
    assert frame is not None and frame.info == 2 | wpa.PAIRWISE | wpa.MIC | wpa.SECURE
    assert sta.done
    assert sta.keys == [
        ("pairwise", ptk[32:48], 0, wpa.CIPHER_CCMP, b""),
        ("group", GTK, 1, wpa.CIPHER_CCMP, b"\x05" + b"\0" * 5),
    ]
    assert sta.receive(msg3) is None  # a replayed message 3 is not answered

    new_gtk = os.urandom(16)
    group = wpa.KeyFrame(
        2 | wpa.ACK | wpa.MIC | wpa.SECURE | wpa.ENCRYPTED,
        replay(3),
        data=gtk_data(ptk[16:32], 2, new_gtk),
    ).signed(ptk[:16])
    reply = sta.receive(group)
    assert reply is not None and wpa.check_mic(ptk[:16], reply)
    assert sta.keys == [("group", new_gtk, 2, wpa.CIPHER_CCMP, b"\0" * 6)]


def test_a_wrong_passphrase_gives_a_message_2_the_access_point_refuses() -> None:
    wrong = hashlib.pbkdf2_hmac("sha1", b"not the passphrase", b"pinit-wpa2", 4096, 32)
    sta, msg2, anonce, ptk = handshake(wrong)
    assert not wpa.check_mic(ptk[:16], msg2)
    assert sta.sent_2 and not sta.done


def test_a_message_3_with_a_bad_mic_or_another_anonce_installs_nothing() -> None:
    sta, _, anonce, ptk = handshake(PMK)
    info = 2 | wpa.PAIRWISE | wpa.ACK | wpa.MIC | wpa.INSTALL | wpa.SECURE | wpa.ENCRYPTED
    forged = wpa.KeyFrame(info, replay(2), anonce, gtk_data(ptk[16:32], 1, GTK)).signed(bytes(16))
    assert sta.receive(forged) is None and not sta.keys
    other = wpa.KeyFrame(info, replay(2), os.urandom(32), gtk_data(ptk[16:32], 1, GTK))
    assert sta.receive(other.signed(ptk[:16])) is None and not sta.keys


def test_frames_that_do_not_fit_their_lengths_are_refused() -> None:
    with pytest.raises(wpa.WpaError, match="EAPOL frame"):
        wpa.parse(b"\x02\x03")
    good = wpa.KeyFrame(2 | wpa.PAIRWISE | wpa.ACK, replay(1)).pack()
    with pytest.raises(wpa.WpaError, match="EAPOL-Key body"):
        wpa.parse(good[:50])
    lying = bytearray(good)
    lying[-2:] = b"\x01\x00"  # 256 bytes of key data in a frame with none
    with pytest.raises(wpa.WpaError, match="bytes of key data"):
        wpa.parse(bytes(lying))
    assert wpa.parse(b"\x02\x00\x00\x00") is None  # EAP, not a key frame
    with pytest.raises(wpa.WpaError, match="no group key"):
        wpa.gtk_of(wpa.rsn_ie(wpa.CIPHER_CCMP))


# --- scan results and choosing ---------------------------------------------------------------


def bss(ssid: bytes, signal: int, rsn: bytes | None, mac: int = 1) -> nl80211.Bss:
    ies = b"\x00" + bytes([len(ssid)]) + ssid + (rsn or b"")
    return nl80211.Bss(bytes([2, 0, 0, 0, 0, mac]), 2412, signal, ies)


WPA2 = wpa.rsn_ie(wpa.CIPHER_CCMP)


def test_choose_takes_the_first_listed_network_in_range_at_its_strongest() -> None:
    networks = (Wifi("home", "ab" * 32), Wifi("cafe", ""), Wifi("shop", "cd" * 32))
    found = [
        bss(b"shop", -3000, WPA2, 1),
        bss(b"cafe", -9000, None, 2),
        bss(b"home", -7000, WPA2, 3),
        bss(b"home", -4000, WPA2, 4),
    ]
    pick = choose(networks, found)
    assert pick is not None and pick[0] == 0 and pick[1].bssid[-1] == 4
    assert pick[2] is not None and pick[2].group == wpa.CIPHER_CCMP
    # Without home: the open cafe comes before shop, however strong shop is.
    pick = choose(networks, found[:2])
    assert pick is not None and pick[0] == 1 and pick[2] is None
    # A protected network is not joined as an open one, nor an open one with a key; a WPA2
    # network without CCMP (TKIP only) is not joined.
    assert choose((Wifi("cafe", "ab" * 32),), [bss(b"cafe", -10, None)]) is None
    assert choose((Wifi("home", ""),), [bss(b"home", -10, WPA2)]) is None
    tkip = wpa.rsn_ie(wpa.CIPHER_TKIP, pairwise=wpa.CIPHER_TKIP)
    assert choose((Wifi("home", "ab" * 32),), [bss(b"home", -10, tkip)]) is None
    assert choose(networks, []) is None


def test_scan_results_and_the_family_answer_are_read_from_netlink_attributes() -> None:
    groups = nl80211.nested(
        nl80211.CTRL_ATTR_MCAST_GROUPS,
        nl80211.nested(
            1,
            attr(nl80211.CTRL_ATTR_MCAST_GRP_NAME, b"scan\0"),
            attr(nl80211.CTRL_ATTR_MCAST_GRP_ID, struct.pack("=I", 40)),
        ),
        nl80211.nested(
            2,
            attr(nl80211.CTRL_ATTR_MCAST_GRP_NAME, b"mlme\0"),
            attr(nl80211.CTRL_ATTR_MCAST_GRP_ID, struct.pack("=I", 41)),
        ),
    )
    body = nl80211.GENL.pack(1, 2) + attr(nl80211.CTRL_ATTR_FAMILY_ID, b"\x22\x00") + groups
    _, attributes = nl80211.genl(body)
    assert nl80211.family(attributes) == (0x22, {"scan": 40, "mlme": 41})

    ies = b"\x00\x04home" + WPA2
    entry = nl80211.nested(
        nl80211.ATTR_BSS,
        attr(nl80211.BSS_BSSID, AP),
        attr(nl80211.BSS_FREQUENCY, struct.pack("=I", 2437)),
        attr(nl80211.BSS_SIGNAL_MBM, struct.pack("=i", -4200)),
        attr(nl80211.BSS_INFORMATION_ELEMENTS, ies),
    )
    found = nl80211.bss(nl80211.genl(nl80211.GENL.pack(34, 1) + entry)[1])
    assert found is not None
    assert (found.bssid, found.freq, found.signal, found.ssid) == (AP, 2437, -4200, b"home")
    assert found.element(wpa.RSN_IE) == WPA2[2:]
    with pytest.raises(nl80211.Nl80211Error):
        nl80211.bss({nl80211.ATTR_BSS: attr(nl80211.BSS_BSSID, b"\x01")})
