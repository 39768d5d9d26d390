"""A small reference application server for the system tests: a stateless SIP proxy over UDP
(RFC 3261 16.11), Python 3 standard library only.

The S-CSCF hands it a request of an iFC (TS 23.218 6.4, TS 24.229 5.4.3.2 / 5.7.4): Route =
<this AS;lr>, <the S-CSCF's ODI URI;lr>. The AS acts as a proxy (TS 24.229 5.7.4): it checks
and pops its own Route entry, decrements Max-Forwards, adds its own Via (a branch derived
from the received one, so a CANCEL or a retransmission takes the same branch: 16.11) and
sends the request to the next Route entry (strict routes are not supported: the next entry must
be ;lr). Responses lose their top Via (ours) and go to the next Via's received/rport or
sent-by. It does not Record-Route: later requests of the dialog bypass it.

    as_ = RefAs(port, hosts={"scscf.ims.lab": "127.0.0.1"})   # thread; as_.requests: what it saw
    as_.stop()

`python3 ref_as.py PORT [name=addr ...]` runs it on its own (Ctrl-C to stop).
"""

import hashlib
import re
import socket
import sys
import threading


def _split_headers(text):
    head, sep, body = text.partition("\r\n\r\n")
    lines = head.split("\r\n")
    first, headers = lines[0], []
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and headers:
            headers[-1] = headers[-1] + " " + line.strip()
        elif line:
            headers.append(line)
    return first, headers, body


def _name(h):
    n = h.split(":", 1)[0].strip().lower()
    return {"v": "via", "r": "route", "m": "contact", "l": "content-length"}.get(n, n)


def _value(h):
    return h.split(":", 1)[1].strip() if ":" in h else ""


def _split_list(value):
    """A comma-separated header value -> its elements (commas inside <> or quotes kept)."""
    out, cur, depth, quoted = [], "", 0, False
    for c in value:
        if c == '"':
            quoted = not quoted
        elif not quoted and c == "<":
            depth += 1
        elif not quoted and c == ">":
            depth -= 1
        if c == "," and depth == 0 and not quoted:
            out.append(cur.strip())
            cur = ""
        else:
            cur += c
    if cur.strip():
        out.append(cur.strip())
    return out


def _uri_hostport(uri):
    m = re.match(r"\s*<?\s*sips?:(?:[^@;>]*@)?(\[[^\]]+\]|[^:;>?]+)(?::(\d+))?", uri)
    if not m:
        return None, None
    return m.group(1), int(m.group(2)) if m.group(2) else 5060


class RefAs:
    def __init__(self, port, host="127.0.0.1", hosts=None, name="as.ims.lab"):
        self.host, self.port, self.name = host, port, name
        self.hosts = dict(hosts or {})
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, port))
        self.requests = []       # (method, first line, Route header values) of each request proxied
        self.responses = []      # first lines of the responses relayed
        self.errors = []
        self._stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _resolve(self, host):
        return self.hosts.get(host, host)

    def _mine(self, route):
        h, p = _uri_hostport(route)
        return h is not None and p == self.port and (self._resolve(h) == self.host or h == self.name)

    def _run(self):
        self.sock.settimeout(0.2)
        while not self._stop:
            try:
                data, src = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                break
            try:
                self._handle(data.decode("utf-8", "replace"), src)
            except Exception as e:     # keep serving; the test reads errors
                self.errors.append("%s: %r" % (type(e).__name__, e))

    def _send(self, text, host, port):
        self.sock.sendto(text.encode(), (self._resolve(host), port))

    def _handle(self, text, src):
        if not text.strip():
            return                      # keep-alive
        first, headers, body = _split_headers(text)
        if first.startswith("SIP/2.0"):
            return self._response(first, headers, body)
        method = first.split(" ", 1)[0]
        # Route: pop ours (RFC 3261 16.4), the next one is where the request goes.
        routes = [r for h in headers if _name(h) == "route" for r in _split_list(_value(h))]
        self.requests.append((method, first, list(routes)))
        if routes and self._mine(routes[0]):
            routes.pop(0)
        vias = [h for h in headers if _name(h) == "via"]
        if not routes or not vias:
            return self._reply(first, headers, 404 if not routes else 400, "No Route Onward")
        nxt = routes[0]
        if ";lr" not in nxt:
            return self._reply(first, headers, 416, "Strict Routing Not Supported")
        out = []
        mf_seen = False
        for h in headers:
            n = _name(h)
            if n == "route":
                continue
            if n == "max-forwards":
                mf = int(_value(h) or "70")
                if mf <= 0:
                    return self._reply(first, headers, 483, "Too Many Hops")
                h = "Max-Forwards: %d" % (mf - 1)
                mf_seen = True
            out.append(h)
        if not mf_seen:
            out.append("Max-Forwards: 70")
        top_branch = re.search(r";branch=([^;,\s]+)", vias[0])
        key = (top_branch.group(1) if top_branch else vias[0])
        branch = "z9hG4bK-as-" + hashlib.md5(key.encode()).hexdigest()[:16]
        via = "Via: SIP/2.0/UDP %s:%d;rport;branch=%s" % (self.host, self.port, branch)
        # A received= / rport on the previous top Via (RFC 3261 18.2.1, RFC 3581).
        i = next(k for k, h in enumerate(out) if _name(h) == "via")
        prev = out[i]
        if src[0] != _uri_hostport("sip:" + prev.split()[2])[0]:
            prev += ";received=%s" % src[0]
        if re.search(r";rport(?=;|,|$|\s)", prev):
            prev = re.sub(r";rport(?=;|,|$|\s)", ";rport=%d" % src[1], prev, count=1)
        out[i] = prev
        out.insert(0, via)
        if routes:    # after the Vias
            last_via = max(k for k, h in enumerate(out) if _name(h) == "via")
            out.insert(last_via + 1, "Route: " + ", ".join(routes))
        h, p = _uri_hostport(nxt)
        self._send("%s\r\n%s\r\n\r\n%s" % (first, "\r\n".join(out), body), h, p)

    def _response(self, first, headers, body):
        self.responses.append(first)
        vias = []
        for h in headers:
            if _name(h) == "via":
                vias += _split_list(_value(h))
        if not vias or "branch=z9hG4bK-as-" not in vias[0]:
            self.errors.append("response not for us: %s" % first)
            return
        vias.pop(0)
        if not vias:
            return
        out, done = [], False
        for h in headers:
            if _name(h) == "via":
                if not done:
                    out.append("Via: " + ", ".join(vias))
                    done = True
                continue
            out.append(h)
        nv = vias[0]
        sent_by = nv.split()[1].split(";")[0]
        host, port = _uri_hostport("sip:" + sent_by)
        m = re.search(r";received=([^;,\s]+)", nv)
        if m:
            host = m.group(1)
        m = re.search(r";rport=(\d+)", nv)
        if m:
            port = int(m.group(1))
        self._send("%s\r\n%s\r\n\r\n%s" % (first, "\r\n".join(out), body), host, port)

    def _reply(self, first, headers, code, reason):
        """A final response to a request we cannot forward (not for ACK)."""
        if first.startswith("ACK "):
            return
        keep = [h for h in headers if _name(h) in ("via", "from", "to", "call-id", "cseq")]
        vias = [v for h in headers if _name(h) == "via" for v in _split_list(_value(h))]
        host, port = _uri_hostport("sip:" + vias[0].split()[1].split(";")[0])
        m = re.search(r";rport=(\d+)", vias[0])
        self._send("SIP/2.0 %d %s\r\n%s\r\nContent-Length: 0\r\n\r\n" % (code, reason, "\r\n".join(keep)),
                   host, int(m.group(1)) if m else port)

    def stop(self):
        self._stop = True
        self.thread.join(2)
        self.sock.close()


if __name__ == "__main__":
    hosts = dict(a.split("=", 1) for a in sys.argv[2:])
    as_ = RefAs(int(sys.argv[1]), hosts=hosts)
    print("reference AS on 127.0.0.1:%d" % as_.port)
    try:
        as_.thread.join()
    except KeyboardInterrupt:
        as_.stop()
