"""A deterministic SIP fuzz corpus: seeded mutations of valid requests and responses.

    corpus(seed, count, port, target_host, target_port, tag) -> [bytes, ...]

The same (seed, count, port, ...) always gives the same messages (random.Random(seed), no
clock, no os.urandom). Each message is one valid SIP message of a random kind (REGISTER, INVITE
with SDP, MESSAGE, SUBSCRIBE, NOTIFY, BYE, ACK, CANCEL, OPTIONS, PRACK, UPDATE, or a response)
with 1 to 3 mutations applied:

  bit flips, byte insertions and deletions, truncation, duplicated headers, huge header
  values, bad numbers (CSeq 2**32 and beyond, negative, Max-Forwards 256, Expires 2**64),
  Content-Length lying both ways, NULs, bad UTF-8, folded lines, deep/odd URIs, many Vias,
  compact header forms, missing mandatory headers, odd start lines.

Every message carries the marker "fz<tag>-<index>x" in its Call-ID, branch and tags so that an
answer can be matched to what was sent even when one of those was mutated. The top Via names
127.0.0.1:<port>;rport so that answers come back to the sender.

Run as a script to write a corpus to a directory (for reproducing by hand):
    python3 fuzz.py OUTDIR [seed] [count]
"""

import os
import random
import sys

DOMAIN = "ims.lab"
SDP = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
       "m=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")
METHODS = ("REGISTER", "INVITE", "MESSAGE", "SUBSCRIBE", "NOTIFY", "BYE", "ACK", "CANCEL", "OPTIONS",
           "PRACK", "UPDATE")
RESPONSES = ((100, "Trying"), (180, "Ringing"), (200, "OK"), (401, "Unauthorized"), (486, "Busy Here"),
             (503, "Service Unavailable"))
USERS = ("alice", "bob", "carol", "nobody", "+15550001")


def _base(rng, i, tag, port, host, hport):
    mark = "fz%s-%dx" % (tag, i)
    user, peer = rng.choice(USERS), rng.choice(USERS)
    is_resp = rng.random() < 0.12
    method = rng.choice(METHODS)
    if is_resp:
        code, reason = rng.choice(RESPONSES)
        start = "SIP/2.0 %d %s" % (code, reason)
    elif method == "REGISTER":
        start = "REGISTER sip:%s SIP/2.0" % DOMAIN
    else:
        start = "%s sip:%s@%s SIP/2.0" % (method, peer, DOMAIN)
    h = [("Via", "SIP/2.0/UDP 127.0.0.1:%d;rport;branch=z9hG4bK%s" % (port, mark)),
         ("Max-Forwards", "70"),
         ("From", "<sip:%s@%s>;tag=f%s" % (user, DOMAIN, mark)),
         ("To", "<sip:%s@%s>%s" % (user if method == "REGISTER" else peer, DOMAIN,
                                   ";tag=t" + mark if is_resp or method in ("BYE", "NOTIFY", "PRACK", "UPDATE")
                                   else "")),
         ("Call-ID", "%s@127.0.0.1" % mark),
         ("CSeq", "%d %s" % (rng.randint(1, 5000), "INVITE" if is_resp and rng.random() < 0.5 else method))]
    body = ""
    if not is_resp:
        h.append(("Contact", "<sip:%s@127.0.0.1:%d;transport=udp>" % (user, port)))
    if method == "REGISTER" and not is_resp:
        h += [("Expires", "600"), ("Supported", "path"),
              ("Authorization", 'Digest username="%s@%s", realm="%s", uri="sip:%s", nonce="", response=""'
               % (user, DOMAIN, DOMAIN, DOMAIN))]
    elif method in ("SUBSCRIBE",):
        h += [("Event", rng.choice(("reg", "presence", "dialog"))), ("Expires", "600"),
              ("Accept", "application/reginfo+xml")]
    elif method == "NOTIFY":
        h += [("Event", "reg"), ("Subscription-State", "active;expires=600")]
        body = ('<?xml version="1.0"?><reginfo xmlns="urn:ietf:params:xml:ns:reginfo" version="0" '
                'state="full"><registration aor="sip:%s@%s" id="a" state="active"/></reginfo>' % (user, DOMAIN))
        h.append(("Content-Type", "application/reginfo+xml"))
    elif method in ("INVITE", "UPDATE") and not is_resp:
        body = SDP
        h += [("Content-Type", "application/sdp"), ("Supported", "100rel")]
    elif method == "MESSAGE" and not is_resp:
        body = "hello \u2603 %s" % mark
        h.append(("Content-Type", "text/plain"))
    elif method == "PRACK":
        h.append(("RAck", "1 %d INVITE" % rng.randint(1, 100)))
    if rng.random() < 0.3 and not is_resp:
        h.insert(1, ("Route", "<sip:%s:%d;lr>" % (host, hport)))
    if rng.random() < 0.2:
        h.append(("P-Preferred-Identity", "<sip:%s@%s>" % (user, DOMAIN)))
    if is_resp:
        # a response as if from downstream: our Via on top would be the CSCF's; use a foreign one
        h.insert(0, ("Via", "SIP/2.0/UDP %s:%d;branch=z9hG4bK-cscf-%s" % (host, hport, mark)))
    h.append(("Content-Length", str(len(body.encode("utf-8", "surrogateescape")))))
    return start, h, body


def _render(start, headers, body):
    text = start + "\r\n" + "".join("%s: %s\r\n" % hv for hv in headers) + "\r\n"
    return text.encode("utf-8", "surrogateescape") + body.encode("utf-8", "surrogateescape")


# --- structured mutations (on start line / headers / body) ------------------------------------

def m_dup_header(rng, s, h, b):
    k = rng.randrange(len(h))
    h.insert(k, h[k])
    return s, h, b


def m_huge_value(rng, s, h, b):
    k = rng.randrange(len(h))
    n = rng.choice((1000, 8000, 20000, 60000))
    h[k] = (h[k][0], h[k][1] + ";" + rng.choice("ax;,<>\"%") * n)
    return s, h, b


def m_bad_number(rng, s, h, b):
    name = rng.choice(("CSeq", "Max-Forwards", "Expires", "Content-Length", "RAck"))
    val = rng.choice(("4294967296", "4294967295", "18446744073709551616", "-1", "-4294967296", "0", "256",
                      "99999999999999999999999999999", "0x10", "1e3", " ", "", "007", "+5", "12 34"))
    for k, (n, v) in enumerate(h):
        if n == name:
            if name in ("CSeq", "RAck"):
                parts = v.split(" ")
                parts[0] = val
                v = " ".join(parts)
            else:
                v = val
            h[k] = (n, v)
            return s, h, b
    h.append((name, val))
    return s, h, b


def m_content_length_lie(rng, s, h, b):
    ln = len(b.encode("utf-8", "surrogateescape"))
    val = str(rng.choice((ln + 1, ln + 100, ln + 70000, max(0, ln - 1), 0, 2 ** 31, 2 ** 32 + ln)))
    h = [(n, v) for n, v in h if n != "Content-Length"] + [("Content-Length", val)]
    if rng.random() < 0.3:
        b += "trailing garbage after the body"
    return s, h, b


def m_nul(rng, s, h, b):
    k = rng.randrange(len(h))
    n, v = h[k]
    p = rng.randrange(len(v) + 1)
    h[k] = (n, v[:p] + "\x00" * rng.randint(1, 3) + v[p:])
    return s, h, b


def m_bad_utf8(rng, s, h, b):
    bad = rng.choice((b"\xff\xfe", b"\xc3\x28", b"\xe2\x28\xa1", b"\xf0\x90\x28\xbc", b"\xed\xa0\x80",
                      b"\xc0\xaf", b"\xf8\x88\x80\x80\x80")).decode("utf-8", "surrogateescape")
    k = rng.randrange(len(h))
    n, v = h[k]
    h[k] = (n, v + bad) if rng.random() < 0.7 else (n + bad, v)
    return s, h, b


def m_fold(rng, s, h, b):
    k = rng.randrange(len(h))
    n, v = h[k]
    p = rng.randrange(len(v) + 1)
    h[k] = (n, v[:p] + rng.choice(("\r\n ", "\r\n\t", "\r\n", "\n ", "\r\n \r\n ")) + v[p:])
    return s, h, b


def m_odd_uri(rng, s, h, b):
    odd = rng.choice((
        "sip:" + "a." * 2000 + "ims.lab",
        "sip:" + "%41" * 3000 + "@ims.lab",
        "sip:alice@[::1]:5060;lr;maddr=127.0.0.1",
        "sip:alice@ims.lab:99999",
        "sip:alice@ims.lab:-1",
        "sip:@ims.lab",
        "sip:alice@",
        "sip:",
        "tel:+1-555-" + "1" * 500,
        "tel:;phone-context=",
        "sips:alice@ims.lab;transport=tls" + ";x=y" * 800,
        "sip:alice@ims.lab?" + "&".join("h%d=v" % i for i in range(300)),
        "sip:alice:pass:word@ims.lab",
        "sip:alice@ims.lab;" + ";" * 500,
        "urn:service:sos",
        "http://ims.lab/",
        "<sip:alice@ims.lab>",
        "sip:alice@" + "1" * 300 + ".1.1.1",
        "sip:%00@ims.lab",
        "sip:alice@ims.lab;user=phone;user=ip",
    ))
    where = rng.random()
    parts = s.split(" ")
    if where < 0.5 and not s.startswith("SIP/") and len(parts) > 1:
        parts[1] = odd
        s = " ".join(parts)
    else:
        name = rng.choice(("To", "From", "Contact", "Route", "P-Preferred-Identity", "Record-Route"))
        h.append((name, "<%s>" % odd if rng.random() < 0.7 else odd))
    return s, h, b


def m_many_vias(rng, s, h, b):
    n = rng.choice((20, 100, 500, 2000))
    extra = [("Via" if rng.random() < 0.5 else "v", "SIP/2.0/UDP 10.%d.%d.%d:5060;branch=z9hG4bK%d" %
              (i % 250, (i // 250) % 250, i % 7, i)) for i in range(n)]
    k = 1 if rng.random() < 0.5 else len(h)
    h[k:k] = extra
    return s, h, b


def m_compact(rng, s, h, b):
    comp = {"Via": "v", "From": "f", "To": "t", "Call-ID": "i", "Contact": "m", "Content-Length": "l",
            "Content-Type": "c", "Supported": "k", "Event": "o", "Subject": "s"}
    h = [((comp.get(n, n) if rng.random() < 0.6 else n.upper() if rng.random() < 0.5 else n.lower()), v)
         for n, v in h]
    return s, h, b


def m_drop_header(rng, s, h, b):
    name = rng.choice(("Via", "From", "To", "Call-ID", "CSeq", "Max-Forwards", "Contact", "Content-Length",
                       "Event", "Content-Type"))
    return s, [(n, v) for n, v in h if n != name], b


def m_start_line(rng, s, h, b):
    s = rng.choice((
        s.replace("SIP/2.0", "SIP/3.0"), s.replace("SIP/2.0", "SIP/2"), s.replace("SIP/2.0", ""),
        s.replace(" ", "  "), s + " ", s.lower(), " " + s, s.replace(" ", "\t"),
        "SIP/2.0 999 Whatever", "SIP/2.0 99 Low", "SIP/2.0 1000000000000 Big", "SIP/2.0 200",
        "SIP/2.0 -200 Neg", "INVITE", "INVITE sip:a@ims.lab", "X" * 5000 + " sip:a@ims.lab SIP/2.0",
        "INV\x00ITE sip:a@ims.lab SIP/2.0", "REGISTER * SIP/2.0", "ACK sip:a@ims.lab SIP/2.0",
        "CANCEL sip:a@ims.lab SIP/2.0", "OPTIONS sip:a@ims.lab SIP/2.0",
    ))
    return s, h, b


def m_headers_odd(rng, s, h, b):
    odd = rng.choice((
        ("", "empty name"), (":", "colon"), ("X-Odd", ""), ("Via", ""), ("Via", "SIP/2.0/UDP"),
        ("Via", "SIP/2.0/UDP 127.0.0.1:0;branch="), ("Via", "SIP/2.0/FOO 127.0.0.1;received=300.1.1.1"),
        ("CSeq", "1"), ("CSeq", "1 INVITE extra"), ("Call-ID", ""), ("Call-ID", "a b c"),
        ("From", "<sip:a@ims.lab"), ("From", "\"unterminated <sip:a@ims.lab>"), ("To", ">sip:a@ims.lab<"),
        ("Contact", "*"), ("Contact", "*;expires=0"), ("Contact", "<sip:a@127.0.0.1>;expires=abc;q=7"),
        ("Contact", ",,,,"), ("Expires", "soon"), ("Route", "<>"), ("Route", "<sip:;lr>"),
        ("Record-Route", "<sip:evil.example.com;lr>"), ("Path", "<sip:x@1.2.3.4;lr>"),
        ("Authorization", "Digest"), ("Authorization", 'Digest username="a' + "\\" * 50 + '"'),
        ("Authorization", 'Digest nonce="' + "A" * 5000 + '", response="x", nc=zzzzzzzz, qop=auth'),
        ("Authorization", 'Digest username="alice@ims.lab", realm="ims.lab", nonce="AAAA", uri="sip:ims.lab", '
                          'response="00000000000000000000000000000000", algorithm=AKAv1-MD5, nc=00000001, '
                          'qop=auth, cnonce="x"'),
        ("Authorization", 'Digest username="alice@ims.lab",,,,realm='),
        ("Require", "sec-agree"), ("Proxy-Require", "sec-agree, foo"), ("Security-Client", "ipsec-3gpp;spi-c=x"),
        ("P-Asserted-Identity", "<sip:alice@ims.lab>"), ("P-Asserted-Identity", "<>"),
        ("Content-Type", "multipart/mixed;boundary="), ("Content-Type", "/"), ("Event", ";;;"),
        ("Subscription-State", "terminated;reason="), ("RAck", "x y z"), ("Min-Expires", "-1"),
        ("Service-Route", "<sip:x;lr>"), ("P-Visited-Network-ID", "\"" * 20),
        ("P-Charging-Vector", "icid-value=" + "1" * 3000), ("WWW-Authenticate", 'Digest nonce="'),
    ))
    h.insert(rng.randrange(len(h) + 1), odd)
    return s, h, b


STRUCT = (m_dup_header, m_huge_value, m_bad_number, m_content_length_lie, m_nul, m_bad_utf8, m_fold,
          m_odd_uri, m_many_vias, m_compact, m_drop_header, m_start_line, m_headers_odd)


# --- byte mutations (on the rendered message) -----------------------------------------------

def b_bitflip(rng, data):
    data = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        p = rng.randrange(len(data))
        data[p] ^= 1 << rng.randrange(8)
    return bytes(data)


def b_insert(rng, data):
    p = rng.randrange(len(data) + 1)
    ins = rng.choice((b"\x00", b"\r", b"\n", b"\r\n", b" ", b":", b";", b"<", b"\"", b"%", b"\xff",
                      bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))))
    return data[:p] + ins * rng.randint(1, 4) + data[p:]


def b_delete(rng, data):
    p = rng.randrange(len(data))
    return data[:p] + data[p + rng.randint(1, 16):]


def b_truncate(rng, data):
    return data[:rng.randrange(1, len(data))]


BYTES = (b_bitflip, b_insert, b_delete, b_truncate)


def message(rng, i, tag, port, host, hport):
    s, h, b = _base(rng, i, tag, port, host, hport)
    for _ in range(rng.choice((1, 1, 2, 2, 3))):
        s, h, b = rng.choice(STRUCT)(rng, s, h, b)
    data = _render(s, h, b)
    if rng.random() < 0.35:
        data = rng.choice(BYTES)(rng, data)
    return data[:65000]   # one UDP datagram at most


def corpus(seed, count, port, host="127.0.0.1", hport=5060, tag="0"):
    rng = random.Random(seed)
    return [message(rng, i, tag, port, host, hport) for i in range(count)]


def valid(seed, count, port, host="127.0.0.1", hport=5060, tag="0"):
    """The unmutated base messages (a sanity check: these must all be answered or relayed)."""
    rng = random.Random(seed)
    return [_render(*_base(rng, i, tag, port, host, hport)) for i in range(count)]


if __name__ == "__main__":
    out = sys.argv[1]
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 4475
    count = int(sys.argv[3]) if len(sys.argv) > 3 else 3000
    os.makedirs(out, exist_ok=True)
    for i, m in enumerate(corpus(seed, count, 40000)):
        with open(os.path.join(out, "%05d.sip" % i), "wb") as f:
            f.write(m)
    print("%d messages in %s (seed %d)" % (count, out, seed))
