"""SIP message parsing of the system tests: one message (SipMessage) and SIPp's trace files."""

import re

# --- SIP message parsing (SIPp traces, raw sockets) -------------------------------------------

class SipMessage:
    def __init__(self, text, direction=None, stamp=None):
        self.text = text
        self.direction = direction    # "sent" / "recv" (from SIPp's point of view) or None
        self.stamp = stamp
        head, _, self.body = text.replace("\r\n", "\n").partition("\n\n")
        lines = head.split("\n")
        while lines and not lines[0].strip():
            lines.pop(0)
        self.first = lines[0].strip() if lines else ""
        self.headers = []
        for line in lines[1:]:
            if line[:1] in (" ", "\t") and self.headers:
                n, v = self.headers[-1]
                self.headers[-1] = (n, v + " " + line.strip())
            elif ":" in line:
                n, v = line.split(":", 1)
                self.headers.append((n.strip(), v.strip()))
        self.status = None
        self.method = None
        if self.first.startswith("SIP/2.0"):
            parts = self.first.split(None, 2)
            self.status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
        else:
            self.method = self.first.split(" ", 1)[0]

    COMPACT = {"v": "via", "f": "from", "t": "to", "i": "call-id", "m": "contact", "l": "content-length",
               "c": "content-type", "k": "supported", "o": "event", "e": "content-encoding"}

    def all(self, name):
        name = name.lower()
        return [v for n, v in self.headers if self.COMPACT.get(n.lower(), n.lower()) == name]

    def get(self, name, default=None):
        v = self.all(name)
        return v[0] if v else default

    def cseq_method(self):
        c = self.get("CSeq", "")
        return c.split()[-1] if c else None

    def __repr__(self):
        return "<%s %s>" % (self.direction or "msg", self.first)


def parse_sipp_trace(text):
    """The -message_file of SIPp -> [SipMessage] in order."""
    msgs = []
    for chunk in re.split(r"^-{20,} (.*)$", text, flags=re.M)[1:]:
        msgs.append(chunk)
    out = []
    for i in range(0, len(msgs) - 1, 2):
        stamp, block = msgs[i], msgs[i + 1]
        block = block.lstrip("\n")
        first, _, rest = block.partition("\n")
        direction = "sent" if " sent" in first else "recv" if "received" in first else None
        out.append(SipMessage(rest.lstrip("\n"), direction, stamp.strip()))
    return out
