"""The RFC 4475 (SIP Torture Test Messages) section 3 messages in rfc4475/*.sip, and what a proxy /
registrar must do with each (RFC 4475 section 3 text; RFC 3261 16.3 / 18.3 / 21.4).

Each .sip file: '#' comment lines (section, kind, body length, notes), then the wire bytes
(CRLF line ends, <allOneLine> and <hex> already expanded as RFC 4475 section 2 describes).

load(port) returns the messages ready to send to a CSCF from a socket bound to 127.0.0.1:port:
the top Via's sent-by (the first Via header only; every malformation kept) becomes
127.0.0.1:port;rport so that answers come back to us instead of to 192.0.2.x or port 5060.
The Request-URIs stay as the RFC wrote them (example.com etc.: not a domain we serve), so
what a CSCF answers is its normal routing/authorisation outcome for a foreign target.

Transport: a request whose top Via says TCP is sent over TCP (as the RFC says it "arrived");
everything else over UDP.

Expectations (kind -> allowed outcomes; "silence" = no final response within the wait):
  valid     requests: a final response (200-699) that is a routing/authorisation outcome; a
            400 would be our parser rejecting a well-formed message (RFC 4475 3.1.1), so it
            is not allowed unless the message lists it with the reason.
  invalid   requests: a 4xx/5xx, or silence (RFC 4475 3.1.2: "respond with 400" or discard).
  A message may allow 400 only with a given reason phrase (a policy answer, not a parse failure).
  response  (a response sent to a proxy that has no such transaction): silence; a proxy must
            not relay it (RFC 3261 16.7 / 18.1.2) and must not answer a response.
"""

import os
import re

HERE = os.path.dirname(os.path.abspath(__file__))
DIR = os.path.join(HERE, "rfc4475")

VALID_FINAL = set(range(200, 700)) - {400}
INVALID_FINAL = set(range(400, 600))

# name -> (allowed final statuses or None for "silence only", silence allowed?, why)
#
# Valid messages: the CSCFs are not the authority for example.com / example.org, a UE that is not
# registered may not originate (403, TS 24.229 5.2.6.3.1), an unknown REGISTER user is refused
# (403, TS 29.228 UAR 5001), an unknown method or scheme gets 4xx (416/501/404): all VALID_FINAL.
EXPECT = {
    # 3.1.1 valid
    "wsinv": (VALID_FINAL, False, "well-formed"),
    # Known deviation: sofia-sip's message parser reports this well-formed request as garbage
    # ("nta_agent: received garbage") and drops it, over UDP and TCP alike. We cannot answer what
    # the stack does not hand us; the CSCF survives, and that is what is asserted.
    "intmeth": (VALID_FINAL, True, "well-formed, but dropped by sofia-sip's parser (known deviation)"),
    "esc01": (VALID_FINAL, False, "well-formed"),
    "escnull": (VALID_FINAL, False, "well-formed REGISTER (example.com is not served: 403)"),
    "esc02": (VALID_FINAL, False, "well-formed, unknown method RE%47IST%45R"),
    "lwsdisp": (VALID_FINAL, False, "accepted (RFC 4475 3.1.1.6 says elements should accept it)"),
    "longreq": (VALID_FINAL, False, "well-formed"),
    "dblreq": (VALID_FINAL, False, "the REGISTER is handled, the trailing INVITE bytes ignored"),
    "semiuri": (VALID_FINAL, False, "well-formed"),
    "transports": (VALID_FINAL, False, "well-formed"),
    # Its Route (sip:127.0.0.1:5080, no ;lr) is a strict route: the CSCFs refuse strict routing
    # with "400 Strict routing not supported"; any other 400 would be a parser failure.
    "mpart01": (VALID_FINAL | {400}, False, "well-formed (multipart body with NULs); 400 only for the strict Route",
                "Strict routing not supported"),
    "unreason": (None, True, "a response without a transaction: dropped"),
    "noreason": (None, True, "a response without a transaction: dropped"),
    # 3.1.2 invalid
    "badinv01": (INVALID_FINAL, True, "400 or discard"),
    "clerr": (INVALID_FINAL, True, "UDP body shorter than Content-Length: 400 or discard"),
    "scalar02": (INVALID_FINAL, True, "CSeq > 2**32-1: 400"),
    "scalarlg": (None, True, "response with huge scalars: discarded"),
    "quotbal": (INVALID_FINAL, True, "unterminated quote: 400"),
    "ltgtruri": (INVALID_FINAL, True, "Request-URI in <>: 400"),
    "lwsruri": (INVALID_FINAL, True, "LWS in the Request-URI: 400"),
    "lwsstart": (INVALID_FINAL, True, "extra SP in the start line: 400 (or liberal: a routing 4xx)"),
    "trws": (INVALID_FINAL | {200}, True, "trailing SP after SIP/2.0: 400, or liberal (RFC 4475 allows it)"),
    "escruri": (INVALID_FINAL, True, "escaped headers in the Request-URI: 400 (or a routing 4xx)"),
    "baddate": (INVALID_FINAL, True, "non-GMT Date: 400 or ignored (then a routing 4xx)"),
    "regbadct": (INVALID_FINAL, True, "Contact addr-spec with headers: 400 (or a routing 4xx)"),
    "badaspec": (INVALID_FINAL | {200}, True, "spaces in an addr-spec: 400, or liberal (RFC 4475 allows it)"),
    "baddn": (INVALID_FINAL, True, "unquoted display names with commas: 400"),
    "badvers": (INVALID_FINAL | {505}, True, "SIP/7.0: 505 (or 400 / discard)"),
    "mismatch01": (INVALID_FINAL, True, "CSeq method differs from the request method: 400"),
    "mismatch02": (INVALID_FINAL, True, "unknown method, CSeq INVITE: 501 or 400"),
    "bigcode": (None, True, "status code > 699: dropped"),
    # 3.2 transaction layer
    "badbranch": (VALID_FINAL | {400}, True, "branch 'z9hG4bK' alone: handled, or 400"),
    # 3.3 application layer
    "insuf": (INVALID_FINAL, True, "no To/From/Call-ID/Max-Forwards: 400"),
    "unkscm": (VALID_FINAL | {400}, False, "unknown Request-URI scheme: 416 (or 400)"),
    "novelsc": (VALID_FINAL | {400}, False, "unknown Request-URI scheme: 416 (or 400)"),
    "unksm2": (VALID_FINAL | {400}, False, "REGISTER with To isbn: / From http:: 400/403/416"),
    "bext01": (VALID_FINAL, False, "Proxy-Require unknown: 420 (Require is the UAS's business)"),
    "invut": (VALID_FINAL, False, "unknown body type: a proxy does not care"),
    "regaut01": (VALID_FINAL, False, "unknown Authorization scheme: 401/403"),
    "multi01": (INVALID_FINAL, True, "repeated single-instance headers: 400"),
    "mcl01": (INVALID_FINAL, True, "two Content-Lengths: 400 (or discard)"),
    "bcast": (None, True, "response naming 255.255.255.255: never relayed, dropped"),
    "zeromf": (VALID_FINAL, False, "Max-Forwards 0 on OPTIONS: 483 (or 200 if the proxy answers)"),
    "cparam01": (VALID_FINAL, False, "well-formed REGISTER (example.com not served: 403)"),
    "cparam02": (VALID_FINAL, False, "well-formed REGISTER (example.com not served: 403)"),
    "regescrt": (VALID_FINAL | {400}, False, "Contact with escaped Route header: 400/403"),
    "sdp01": (VALID_FINAL, False, "unacceptable Accept for the body: a proxy does not care"),
    # 3.4 backward compatibility
    "inv2543": (VALID_FINAL | {400}, True, "RFC 2543 INVITE without branch/Max-Forwards: handled or 400"),
}


class Message:
    def __init__(self, section, name, kind, data, transport, is_response):
        self.section, self.name, self.kind = section, name, kind
        self.data, self.transport, self.is_response = data, transport, is_response
        e = EXPECT[name]
        self.allowed, self.silence_ok, self.why = e[:3]
        self.reason400 = e[3] if len(e) > 3 else None

    def judge(self, finals, reasons=()):
        """None when the outcome is allowed, else a sentence saying what is wrong."""
        if not finals:
            return None if self.silence_ok else "no final response (expected %s)" % self.why
        if self.allowed is None:
            return "answered %s to a response (expected silence: %s)" % (finals, self.why)
        bad = [s for s in finals if s not in self.allowed]
        if self.reason400 and 400 in finals and not any(self.reason400 in r for r in reasons):
            bad.append(400)
        if bad:
            return "got %s (expected %s)" % (finals, self.why)
        return None


def _split(raw):
    lines = raw.split(b"\n")
    i = 0
    while i < len(lines) and lines[i].startswith(b"#"):
        i += 1
    return b"\n".join(lines[i:])


_VIA = re.compile(rb"^((?:Via|v)[ \t]*:[ \t\r\n]*SIP[ \t\r\n]*/[ \t\r\n]*\d\.\d[ \t\r\n]*/[ \t\r\n]*"
                  rb"([A-Za-z-]+)[ \t\r\n]+)([^;,\s]+)", re.M | re.I)


def load(port):
    out = []
    for fn in sorted(os.listdir(DIR), key=lambda f: [int(x) for x in f.split("_")[0].split(".")]):
        if not fn.endswith(".sip"):
            continue
        section, name = fn[:-4].split("_", 1)
        with open(os.path.join(DIR, fn), "rb") as f:
            raw = f.read()
        kind = re.search(rb"\), (\w+) message", raw).group(1).decode()
        data = _split(raw)
        head, sep, body = data.partition(b"\r\n\r\n")
        is_response = head.startswith(b"SIP/")
        m = _VIA.search(head)
        transport = "UDP"
        if m and m.group(2).upper() == b"TCP":
            transport = "TCP"
        elif m and not is_response:
            # Answers to us; a Via naming TLS/SCTP/... over UDP would be dropped by nta's Via check
            # (transport mismatch), so that Via says UDP: the message's own oddities stay.
            host = b"127.0.0.1:%d;rport" % port
            head = head[:m.start(2)] + b"UDP" + head[m.end(2):m.start(3)] + host + head[m.end(3):]
        out.append(Message(section, name, kind, head + sep + body, transport, is_response))
    return out
