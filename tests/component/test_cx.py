"""Cx component tests: the real hss binary over TCP Diameter, driven by imscx (a freeDiameter
Cx client of ours), plus a raw-socket peer for malformed messages.

TS 29.228 procedures exercised: UAR (§6.1.1), MAR (§6.3, AKA + SIP Digest + resync), SAR
(§6.1.2), LIR (§6.1.4), PPR (§6.6.1) and RTR (§6.1.3); SQN durability across SIGKILL.
"""

import hashlib
import json
import os
import socket
import struct
import subprocess
import threading
import time

import harness
from harness import check
import cxclient

K = "465b5ce8b199b49faa5f0a2ee238a6bc"
OPC = "cd63cb71954a9f4e48a5994e37a02baf"
KEY = "key=%s:%s" % (K, OPC)
SCSCF = "sip:scscf.ims.lab:6060"

SUBSCRIBERS = {"subscribers": [
    {"id": "alice",
     "impis": [{"impi": "alice@ims.lab", "auth_schemes": ["aka", "digest"], "default_scheme": "aka",
                "k": K, "opc": OPC, "amf": "8000", "password": "alicepw"}],
     "impus": [{"impu": "sip:alice@ims.lab", "irs": 1, "service_profile": "gold"},
               {"impu": "tel:+15550001", "irs": 1, "service_profile": "gold"},
               {"impu": "sip:alice.work@ims.lab", "irs": 2, "service_profile": "gold"}],
     "service_profiles": [{"name": "gold", "ifc": [
         {"priority": 1, "trigger_point": {"cnf": True, "spt": [{"group": 0, "method": "INVITE"}]},
          "application_server": {"server_name": "sip:as.ims.lab:5070",
                                 "default_handling": "session_continued"},
          "profile_part_indicator": "registered"}]}],
     "charging": {"ccf_primary": "aaa://ccf.ims.lab"}},
    {"id": "bob",
     "impis": [{"impi": "bob@ims.lab", "auth_schemes": ["digest"], "password": "bobpw"}],
     "impus": [{"impu": "sip:bob@ims.lab", "service_profile": "vm"}],
     "service_profiles": [{"name": "vm", "ifc": [
         {"priority": 1, "trigger_point": {"cnf": True, "spt": [{"group": 0, "method": "INVITE"}]},
          "application_server": {"server_name": "sip:voicemail.ims.lab"},
          "profile_part_indicator": "unregistered"}]}]},
    {"id": "carol",
     "impis": [{"impi": "carol@ims.lab", "auth_schemes": ["digest"], "password": "c"}],
     "impus": [{"impu": "sip:carol@ims.lab", "barred": True}]},
    {"id": "dave",
     "impis": [{"impi": "dave@ims.lab", "k": K, "opc": OPC}],
     "impus": [{"impu": "sip:dave@ims.lab"}],
     "roaming": {"visited_networks": ["visited.net"]}},
]}

EXTRA = ("  scscf_names: [\"%s\"]\n  mandatory_capabilities: [\"1\"]\n"
         "  optional_capabilities: [\"2\", \"3\"]\n" % SCSCF)


def start_hss(tmp, **kw):
    path = os.path.join(tmp, "subscribers.json")
    with open(path, "w") as f:
        json.dump(SUBSCRIBERS, f)
    return harness.Hss(tmp, import_file=path, extra_yaml=EXTRA, **kw)


def result(a):
    """('exp', code) or ('base', code) of an answer line."""
    if a.get("experimental_result"):
        return ("exp", a["experimental_result"])
    return ("base", a.get("result_code"))


def test_registration_lifecycle(tmp):
    with start_hss(tmp) as hss:
        cx = cxclient.Imscx(hss)
        a = cx.run(
            "uar alice@ims.lab sip:alice@ims.lab type=0",
            "mar alice@ims.lab sip:alice@ims.lab scheme=Digest-AKAv1-MD5 items=1 %s" % KEY,
            "mar alice@ims.lab sip:alice@ims.lab scheme=Digest-AKAv1-MD5 items=3 %s" % KEY,
            "mar alice@ims.lab sip:alice@ims.lab scheme=Unknown items=1 %s" % KEY,
            "sar alice@ims.lab sip:alice@ims.lab type=1 server=%s" % SCSCF,
            "uar alice@ims.lab tel:+15550001 type=0",
            "lir sip:alice@ims.lab",
            "lir sip:alice.work@ims.lab",
            "sar alice@ims.lab sip:alice@ims.lab type=2 uda=1 server=%s" % SCSCF,
            "sar alice@ims.lab sip:alice@ims.lab type=5 server=%s" % SCSCF,
            "lir sip:alice@ims.lab",
            "uar alice@ims.lab sip:alice@ims.lab type=1",
        )
        check(len(a) == 12, a)
        uaa, maa1, maa3, maa_default, saa, uaa2, lia, lia_irs2, saa_re, saa_dereg, lia2, uaa_dereg = a
        # UAR, first registration: capabilities from the configured pool.
        check(result(uaa) == ("exp", 2001), uaa)
        caps = uaa["server_capabilities"]
        check(caps["mandatory"] == [1] and caps["optional"] == [2, 3] and caps["server_names"] == [SCSCF], caps)
        # MAR AKA: RAND||AUTN verifies with the UE's key, XRES = RES, SQNs strictly increase.
        check(result(maa1) == ("base", 2001) and maa1["sip_number_auth_items"] == 1, maa1)
        item = maa1["items"][0]
        check(item["scheme"] == "Digest-AKAv1-MD5" and item["mac_ok"] and item["xres"] == item["res"], item)
        check(len(item["ck"]) == 32 and len(item["ik"]) == 32, item)
        check(maa3["sip_number_auth_items"] == 3 and len(maa3["items"]) == 3, maa3)
        sqns = [item["sqn"]] + [i["sqn"] for i in maa3["items"]] + [maa_default["items"][0]["sqn"]]
        check(sqns == sorted(sqns) and len(set(sqns)) == 5, sqns)
        check(all(i["mac_ok"] for i in maa3["items"]), maa3)
        # "Unknown" scheme resolves to the IMPI's default (AKA).
        check(maa_default["items"][0]["scheme"] == "Digest-AKAv1-MD5", maa_default)
        # SAR REGISTRATION: User-Data holds the implicit registration set and the iFC.
        check(result(saa) == ("base", 2001) and saa["user_name"] == "alice@ims.lab", saa)
        ud = saa["user_data"]
        for needle in ("<PrivateID>alice@ims.lab</PrivateID>", "sip:alice@ims.lab", "tel:+15550001",
                       "<Method>INVITE</Method>", "sip:as.ims.lab:5070"):
            check(needle in ud, "User-Data lacks %s: %s" % (needle, ud))
        check("alice.work" not in ud, "IRS 2 must not be in IRS 1's profile")
        # Another identity of the same IRS: subsequent registration at the same S-CSCF.
        check(result(uaa2) == ("exp", 2002) and uaa2["server_name"] == SCSCF, uaa2)
        check(result(lia) == ("base", 2001) and lia["server_name"] == SCSCF, lia)
        # IRS 2 was not registered, and its profile has only REGISTERED-part iFC.
        check(result(lia_irs2) == ("exp", 5003), lia_irs2)
        check(result(saa_re) == ("base", 2001) and "user_data" not in saa_re, saa_re)
        check(result(saa_dereg) == ("base", 2001), saa_dereg)
        check(result(lia2) == ("exp", 5003), lia2)
        check(result(uaa_dereg) == ("exp", 5003), uaa_dereg)
        # Type 2 (REGISTRATION_AND_CAPABILITIES): the I-CSCF re-selects; capabilities, base 2001.
        a = cx.one("uar alice@ims.lab sip:alice@ims.lab type=2")
        check(result(a) == ("base", 2001) and a["server_capabilities"]["server_names"] == [SCSCF], a)
        # The provisioning API shows the state the SARs left.
        status, body = hss.api("GET", "/api/v1/subscribers/alice")
        check(status == 200, body)
        states = {u["impu"]: u["reg_state"] for u in body["impus"]}
        check(set(states.values()) == {"not_registered"}, states)


def test_digest_mar(tmp):
    with start_hss(tmp) as hss:
        cx = cxclient.Imscx(hss)
        a = cx.one("mar bob@ims.lab sip:bob@ims.lab scheme=Unknown")
        check(result(a) == ("base", 2001), a)
        item = a["items"][0]
        ha1 = hashlib.md5(b"bob@ims.lab:ims.lab:bobpw").hexdigest()
        check(item["scheme"] == "SIP Digest" and item["digest_ha1"] == ha1, item)
        check(item["digest_realm"] == "ims.lab" and item["digest_qop"] == "auth"
              and item["digest_algorithm"] == "MD5", item)
        # bob has no AKA credentials: asking for AKA is refused.
        a = cx.one("mar bob@ims.lab sip:bob@ims.lab scheme=Digest-AKAv1-MD5")
        check(result(a) == ("exp", 5006), a)
        a = cx.one("mar bob@ims.lab sip:bob@ims.lab scheme=NASS-Bundled")
        check(result(a) == ("exp", 5006), a)


def test_resync(tmp):
    with start_hss(tmp) as hss:
        cx = cxclient.Imscx(hss)
        sqn_ms = (5000 << 5) | 7
        a = cx.run(
            "mar alice@ims.lab sip:alice@ims.lab scheme=Digest-AKAv1-MD5 %s" % KEY,
            # the UE rejects that vector and answers its RAND with AUTS(SQN_MS) ...
            "mar alice@ims.lab sip:alice@ims.lab scheme=Digest-AKAv1-MD5 %s resync=%d" % (KEY, sqn_ms),
            # ... and a forged AUTS (bad MAC-S) must not move the SQN
            "mar alice@ims.lab sip:alice@ims.lab scheme=Digest-AKAv1-MD5 %s resync=%d bad-auts"
            % (KEY, 900000 << 5),
            "mar alice@ims.lab sip:alice@ims.lab scheme=Digest-AKAv1-MD5 %s" % KEY,
        )
        first, resynced, forged, after = a
        check(result(first) == ("base", 2001) and first["items"][0]["sqn"] < sqn_ms, first)
        check(result(resynced) == ("base", 2001), resynced)
        s = resynced["items"][0]["sqn"]
        check(s > sqn_ms and (s >> 5) == (sqn_ms >> 5) + 1, "after resync SQN %#x, SQN_MS %#x" % (s, sqn_ms))
        check(result(forged) == ("base", 5012) and "items" not in forged, forged)
        s2 = after["items"][0]["sqn"]
        check(s2 > s and (s2 >> 5) == (s >> 5) + 1, "forged AUTS moved the SQN: %#x -> %#x" % (s, s2))
        check("AUTS MAC-S check failed" in hss.log(), "HSS did not log the refused resync")


def test_error_codes(tmp):
    with start_hss(tmp) as hss:
        cx = cxclient.Imscx(hss)
        a = cx.run(
            "uar nobody@ims.lab sip:nobody@ims.lab",                      # 5001
            "uar alice@ims.lab sip:bob@ims.lab",                          # 5002
            "uar ghost@ims.lab sip:alice@ims.lab",                        # 5001 (unknown IMPI)
            "uar carol@ims.lab sip:carol@ims.lab",                        # barred: base 5003
            "uar alice@ims.lab sip:alice@ims.lab visited=elsewhere.net",  # 5004
            "uar dave@ims.lab sip:dave@ims.lab visited=visited.net",      # allowed roaming: 2001
            "uar alice@ims.lab sip:alice@ims.lab type=7",                 # bad enum: base 5004
            "uar alice@ims.lab sip:alice@ims.lab omit=Public-Identity",   # 5005 + Failed-AVP
            "mar alice@ims.lab sip:alice@ims.lab omit=SIP-Auth-Data-Item",  # 5005
            "mar nobody@ims.lab sip:alice@ims.lab",                       # 5001
            "mar alice@ims.lab sip:bob@ims.lab",                          # 5002
            "sar alice@ims.lab sip:alice@ims.lab type=0 server=sip:other.ims.lab",  # NO_ASSIGNMENT, not assigned
            "sar alice@ims.lab sip:alice@ims.lab type=42",                # bad Server-Assignment-Type
            "sar - - type=1",                                             # no identity at all
            "lir sip:nobody@ims.lab",                                     # 5001
            "lir sip:bob@ims.lab",                                        # unregistered services: 2003
            "sar - sip:bob@ims.lab type=3 server=%s" % SCSCF,             # UNREGISTERED_USER
            "lir sip:bob@ims.lab",                                        # 2003 + Server-Name
        )
        expect = [("exp", 5001), ("exp", 5002), ("exp", 5001), ("base", 5003), ("exp", 5004),
                  ("exp", 2001), ("base", 5004), ("base", 5005), ("base", 5005), ("exp", 5001),
                  ("exp", 5002), ("base", 5012), ("base", 5004), ("base", 5005), ("exp", 5001),
                  ("exp", 2003), ("base", 2001), ("exp", 2003)]
        check(len(a) == len(expect), a)
        for i, (ans, exp) in enumerate(zip(a, expect)):
            check(result(ans) == exp, "command %d: expected %s, got %s" % (i, exp, ans))
        check(a[7].get("failed_avp"), "MISSING_AVP without Failed-AVP: %r" % a[7])
        check("server_name" not in a[15] and "server_capabilities" in a[15], a[15])
        check(a[16]["user_name"] == "bob@ims.lab" and "voicemail" in a[16]["user_data"], a[16])
        check(a[17]["server_name"] == SCSCF, a[17])


# ---------- malformed Diameter from a raw TCP peer ----------

def avp(code, data, vendor=None, mandatory=True):
    flags = (0x40 if mandatory else 0) | (0x80 if vendor else 0)
    hdr_len = 12 if vendor else 8
    length = hdr_len + len(data)
    h = struct.pack("!I", code) + struct.pack("!I", (flags << 24) | length)
    if vendor:
        h += struct.pack("!I", vendor)
    return h + data + b"\0" * ((4 - len(data) % 4) % 4)


def diameter(code, app, avps, request=True, hbh=1, e2e=1):
    body = b"".join(avps)
    flags = 0x80 if request else 0
    if request and code >= 300:
        flags |= 0x40   # Cx commands are proxiable
    return (struct.pack("!I", (1 << 24) | (20 + len(body))) + struct.pack("!I", (flags << 24) | code)
            + struct.pack("!III", app, hbh, e2e) + body)


def read_msg(sock, timeout=5):
    sock.settimeout(timeout)
    head = b""
    while len(head) < 20:
        chunk = sock.recv(20 - len(head))
        if not chunk:
            return None
        head += chunk
    length = struct.unpack("!I", head[:4])[0] & 0xffffff
    body = b""
    while len(body) < length - 20:
        chunk = sock.recv(length - 20 - len(body))
        if not chunk:
            return None
        body += chunk
    return head + body


def result_code(msg):
    """Result-Code (268) of an answer, walking top-level AVPs."""
    pos = 20
    while pos + 8 <= len(msg):
        code, fl = struct.unpack("!II", msg[pos:pos + 8])
        flags, length = fl >> 24, fl & 0xffffff
        if length < 8:
            return None
        data_off = pos + (12 if flags & 0x80 else 8)
        if code == 268:
            return struct.unpack("!I", msg[data_off:data_off + 4])[0]
        pos += (length + 3) & ~3
    return None


def raw_peer(hss, identity="raw.ims.lab"):
    s = socket.create_connection(("127.0.0.1", hss.diameter_port), timeout=5)
    cer = diameter(257, 0, [
        avp(264, identity.encode()), avp(296, b"ims.lab"),
        avp(257, b"\x00\x01\x7f\x00\x00\x01"),              # Host-IP-Address 127.0.0.1
        avp(266, struct.pack("!I", 10415)), avp(269, b"raw-test", mandatory=False),
        avp(260, avp(266, struct.pack("!I", 10415)) + avp(258, struct.pack("!I", 16777216))),
    ])
    s.sendall(cer)
    cea = read_msg(s)
    check(cea is not None and result_code(cea) == 2001, "CEA not successful: %r" % cea)
    return s


def test_malformed_diameter(tmp):
    with start_hss(tmp) as hss:
        s = raw_peer(hss)
        vsai = avp(260, avp(266, struct.pack("!I", 10415)) + avp(258, struct.pack("!I", 16777216)))
        base = [avp(263, b"raw.ims.lab;1;1"), vsai, avp(277, struct.pack("!I", 1)),
                avp(264, b"raw.ims.lab"), avp(296, b"ims.lab"), avp(283, b"ims.lab")]
        # 1. A UAR without User-Name / Public-Identity / Visited-Network-Identifier: 5005.
        s.sendall(diameter(300, 16777216, base, hbh=2, e2e=2))
        ans = read_msg(s)
        check(ans is not None and result_code(ans) == 5005, "missing AVPs: %r" % ans)
        # 1b. A Session-Id with the V bit set and vendor 0 (RFC 6733 §8.8 forbids the V bit):
        #     freeDiameter 1.2.1 aborted the process on it when building any answer (found by
        #     tests/fuzz/fuzz_cx); ims_diameter_sanitize makes it a message without Session-Id.
        sess_v = struct.pack("!II", 263, (0xC0 << 24) | (12 + 16)) + struct.pack("!I", 0) + b"raw.ims.lab;1;2\0"
        s.sendall(diameter(300, 16777216, [sess_v] + base[1:] + [avp(1, b"alice@ims.lab")], hbh=4, e2e=4))
        ans = read_msg(s)
        check(ans is not None and result_code(ans) in (5001, 5005), "Session-Id with V bit: %r" % ans)
        check(hss.running(), "hss died on a Session-Id with the V bit set")
        # 2. An AVP whose length runs past the message: 5014 DIAMETER_INVALID_AVP_LENGTH (or the
        #    peer is disconnected, RFC 6733 §7.1.5 allows both); the HSS must stay up.
        bad = bytearray(diameter(300, 16777216, base + [avp(1, b"alice@ims.lab")], hbh=3, e2e=3))
        struct.pack_into("!I", bad, len(bad) - 20, (0x40 << 24) | 200)   # User-Name length 200
        s.sendall(bytes(bad))
        try:
            ans = read_msg(s, timeout=3)
        except OSError:
            ans = None
        check(ans is None or result_code(ans) in (5014, 3009, 5004), "bad length: %r" % ans)
        s.close()
        # 3. Garbage bytes on a fresh connection.
        g = socket.create_connection(("127.0.0.1", hss.diameter_port), timeout=5)
        g.sendall(os.urandom(64) + b"\x01\x00\x00\x10" + b"\xff" * 12)
        g.close()
        time.sleep(0.5)
        check(hss.running(), "hss died on malformed input")
        # Still serving real peers.
        a = cxclient.Imscx(hss).one("uar alice@ims.lab sip:alice@ims.lab")
        check(result(a) == ("exp", 2001), a)


def test_sigkill_during_mar_load_keeps_sqn_and_subscribers(tmp):
    hss = start_hss(tmp)
    try:
        cx = cxclient.Imscx(hss, timeout_ms=1000)
        out = {}

        def load():
            out["first"] = cx.run("load-mar alice@ims.lab sip:alice@ims.lab count=200000 window=32 "
                                  "scheme=Digest-AKAv1-MD5 %s" % KEY, timeout=120)

        t = threading.Thread(target=load)
        t.start()
        # SIGKILL in the middle of the load: once the HSS has answered some MARs (its log has
        # one line per answer), not after a fixed delay (a loaded machine starts imscx slowly).
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and hss.log().count("MAR alice@ims.lab") < 5000:
            time.sleep(0.05)
        hss.kill()
        t.join(60)
        first = out["first"][0]
        check(first["success"] > 0 and first["success"] < 200000, first)
        hss.start()
        second = cx.one("load-mar alice@ims.lab sip:alice@ims.lab count=300 window=16 "
                        "scheme=Digest-AKAv1-MD5 %s" % KEY)
        check(second["success"] == 300, second)
        a, b = first["sqns"], second["sqns"]
        check(len(a) == first["success"], "first run: %d SQNs for %d answers" % (len(a), first["success"]))
        check(len(set(a + b)) == len(a) + len(b), "an SQN was issued twice")
        check(min(b) > max(a), "SQN went back after restart: %#x <= %#x" % (min(b), max(a)))
        # SQNs come from durable reservations of 1,000 SEQ steps (+ the vectors asked for,
        # hss_store_auth.c): the crash skips at most one reservation, far inside the USIM's
        # window (TS 33.102 C.2.2).
        jump = (min(b) >> 5) - (max(a) >> 5)
        check(1 <= jump <= 1001 + 32, "SEQ jump after SIGKILL: %d" % jump)
        status, body = hss.api("GET", "/api/v1/subscribers")
        check(status == 200 and body["count"] == 4, body)
        print("   MAR load before SIGKILL: %d answered at %.0f/s; after restart %d answered, "
              "no SQN reused" % (first["success"], first["rate"], second["success"]))
    finally:
        hss.stop()


def test_ppr_on_profile_change(tmp):
    with start_hss(tmp) as hss:
        cx = cxclient.Imscx(hss)
        with cx.session() as s:
            s.send("sar alice@ims.lab sip:alice@ims.lab type=1 server=%s" % SCSCF)
            check(result(s.read()) == ("base", 2001), "SAR failed")
            status, body = hss.api("GET", "/api/v1/subscribers/alice")
            check(status == 200, body)
            # The operator adds an iFC for MESSAGE.
            sub = SUBSCRIBERS["subscribers"][0]
            sub = json.loads(json.dumps(sub))
            sub["service_profiles"][0]["ifc"].append(
                {"priority": 2, "trigger_point": {"cnf": True, "spt": [{"group": 0, "method": "MESSAGE"}]},
                 "application_server": {"server_name": "sip:sms.ims.lab"}})
            status, body = hss.api("PUT", "/api/v1/subscribers/alice", sub)
            check(status == 200, body)
            ppr = s.read()
            check(ppr.get("received") == "PPR" and ppr["user_name"] == "alice@ims.lab", ppr)
            check("sip:sms.ims.lab" in ppr["user_data"] and "<Method>MESSAGE</Method>" in ppr["user_data"], ppr)
            check(ppr.get("ccf_primary") == "aaa://ccf.ims.lab", ppr)
        check("PPR for subscription alice accepted" in hss.log(), "PPA not seen by the HSS")



def test_rtr_administrative_deregistration(tmp):
    with start_hss(tmp) as hss:
        status, body = hss.api("POST", "/api/v1/subscribers/alice/deregister", {"reason_code": 0})
        check(status == 409 and "no S-CSCF" in body["error"], (status, body))
        status, body = hss.api("POST", "/api/v1/subscribers/nobody/deregister")
        check(status == 404, (status, body))
        cx = cxclient.Imscx(hss)
        with cx.session() as s:
            s.send("sar alice@ims.lab sip:alice@ims.lab type=1 server=%s" % SCSCF)
            check(result(s.read()) == ("base", 2001), "SAR failed")
            status, body = hss.api("POST", "/api/v1/subscribers/alice/deregister",
                                   {"reason_code": 0, "reason_info": "contract ended"})
            check(status == 202 and body["rtr_sent_to"] == "scscf.ims.lab", (status, body))
            rtr = s.read()
            check(rtr.get("received") == "RTR" and rtr["user_name"] == "alice@ims.lab", rtr)
            check(sorted(rtr["public_identities"]) == ["sip:alice@ims.lab", "tel:+15550001"], rtr)
            check(rtr["reason_code"] == 0 and rtr["reason_info"] == "contract ended", rtr)
            # After the RTA the HSS forgets the registration.
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                _, body = hss.api("GET", "/api/v1/subscribers/alice")
                if all(u["reg_state"] == "not_registered" for u in body["impus"]):
                    break
                time.sleep(0.1)
            check(all(u["reg_state"] == "not_registered" for u in body["impus"]), body)
            s.send("lir sip:alice@ims.lab")
            check(result(s.read()) == ("exp", 5003), "LIR after RTR")


def test_scscf_reassignment(tmp):
    """TS 29.228 §8.1: a MAR from another S-CSCF (the I-CSCF re-selected because the assigned one
    did not answer) moves the assignment, unless it is a resynchronisation; a SAR from an S-CSCF
    that is not the assigned one is refused and changes nothing (a stale copy of the registration
    at the old S-CSCF cannot de-register the user at the new one, nor take it back)."""
    other = "sip:scscf-b.ims.lab:6060"
    with start_hss(tmp) as hss:
        a = cxclient.Imscx(hss)
        b = cxclient.Imscx(hss, identity="scscf-b.ims.lab")

        def assigned():
            status, body = hss.api("GET", "/api/v1/subscribers/alice")
            check(status == 200, body)
            return body.get("registration") or {}

        check(result(a.one("sar alice@ims.lab sip:alice@ims.lab type=1 server=%s" % SCSCF)) == ("base", 2001),
              "registration at A")
        # A SAR from B without a MAR first: refused, the assignment stays with A.
        sats = (0, 1, 2, 4, 5, 9)
        answers = b.run(*["sar alice@ims.lab sip:alice@ims.lab type=%d server=%s" % (sat, other) for sat in sats])
        check(len(answers) == len(sats), answers)
        for sat, r in zip(sats, answers):
            check(result(r) == ("exp", 5005) and r.get("server_name") == SCSCF and "user_data" not in r,
                  "SAR type %d from B: %r" % (sat, r))
        check(assigned().get("scscf_name") == SCSCF, assigned())
        impus = hss.api("GET", "/api/v1/subscribers/alice")[1]["impus"]
        check({u["impu"]: u["reg_state"] for u in impus}["sip:alice@ims.lab"] == "registered", impus)
        # A resynchronisation from B does not move it either.
        # (imscx answers the RAND of its previous MAR: that one names A, so it moves nothing)
        first, r = b.run("mar alice@ims.lab sip:alice@ims.lab scheme=Digest-AKAv1-MD5 server=%s %s" % (SCSCF, KEY),
                         "mar alice@ims.lab sip:alice@ims.lab scheme=Digest-AKAv1-MD5 server=%s %s resync=%d"
                         % (other, KEY, (7000 << 5) | 3))
        check(result(first) == ("base", 2001) and result(r) == ("base", 2001), (first, r))
        check(r["items"][0]["sqn"] >> 5 == 7001, "the resync must have been taken: %r" % r)
        check(assigned().get("scscf_name") == SCSCF, "a resync MAR moved the assignment: %r" % assigned())
        # A MAR from B moves it (name, Diameter host); then B's SAR is accepted and the LIA names B.
        r = b.one("mar alice@ims.lab sip:alice@ims.lab scheme=Digest-AKAv1-MD5 server=%s %s" % (other, KEY))
        check(result(r) == ("base", 2001), r)
        reg = assigned()
        check(reg.get("scscf_name") == other and reg.get("scscf_host") == "scscf-b.ims.lab", reg)
        check("S-CSCF assignment moved from %s" % SCSCF in hss.log(), "the move must be logged")
        r = b.one("sar alice@ims.lab sip:alice@ims.lab type=2 server=%s" % other)
        check(result(r) == ("base", 2001) and "user_data" in r, r)
        check(a.one("lir sip:alice@ims.lab").get("server_name") == other, "LIR must name B now")
        # The old S-CSCF's expiry (its stale copy) is refused: alice stays registered at B.
        r = a.one("sar alice@ims.lab sip:alice@ims.lab type=4 server=%s" % SCSCF)
        check(result(r) == ("exp", 5005) and r.get("server_name") == other, r)
        r = a.one("sar alice@ims.lab sip:alice@ims.lab type=0 uda=1 server=%s" % SCSCF)   # NO_ASSIGNMENT
        check(result(r) == ("exp", 5005) and r.get("server_name") == other, r)
        check(a.one("lir sip:alice@ims.lab").get("server_name") == other, "A's de-registration must change nothing")
        check(a.one("uar alice@ims.lab sip:alice@ims.lab type=0").get("server_name") == other, "UAR names B")
        # B de-registers: accepted, the assignment is cleared; a later registration at A works again.
        check(result(b.one("sar alice@ims.lab sip:alice@ims.lab type=5 server=%s" % other)) == ("base", 2001), "B")
        check(assigned().get("scscf_name") is None, assigned())
        check(result(a.one("sar alice@ims.lab sip:alice@ims.lab type=1 server=%s" % SCSCF)) == ("base", 2001), "A")


if __name__ == "__main__":
    harness.main()
