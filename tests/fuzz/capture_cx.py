#!/usr/bin/env python3
"""Captures real Cx traffic as the fuzz_cx seed corpus (tests/fuzz/corpus/fuzz_cx/).

Starts the real hss (tests/component harness, the test_cx.py subscribers), puts a TCP relay
between it and build/hss/imscx, runs UAR/MAR (AKA, digest)/SAR/LIR and error cases through it,
and writes every Cx message (command codes 300-305, both directions) to one file each:
<cmd>-<request|answer>-<n>.bin. CER/CEA and watchdogs are skipped.

    IMS_BUILD_DIR=/work/main/build python3 tests/fuzz/capture_cx.py [out_dir]
"""
import os
import socket
import struct
import sys
import tempfile
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "component"))
import harness  # noqa: E402
import cxclient  # noqa: E402
import test_cx  # noqa: E402

NAMES = {300: "uar", 301: "sar", 302: "lir", 303: "mar", 304: "rtr", 305: "ppr"}


class Relay(threading.Thread):
    """Accepts one connection, relays it to `port` and records each Diameter message."""

    def __init__(self, port, out_dir):
        super().__init__(daemon=True)
        self.port, self.out_dir, self.n = port, out_dir, 0
        self.lock = threading.Lock()
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(1)
        self.listen_port = self.srv.getsockname()[1]

    def record(self, msg):
        code = struct.unpack("!I", b"\0" + msg[5:8])[0]
        if code not in NAMES:
            return
        kind = "request" if msg[4] & 0x80 else "answer"
        with self.lock:
            self.n += 1
            path = os.path.join(self.out_dir, "%s-%s-%02d.bin" % (NAMES[code], kind, self.n))
        with open(path, "wb") as f:
            f.write(msg)

    def pump(self, src, dst):
        buf = b""
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
            buf += data
            while len(buf) >= 4:
                length = struct.unpack("!I", b"\0" + buf[1:4])[0]
                if length < 20 or len(buf) < length:
                    break
                self.record(buf[:length])
                buf = buf[length:]
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def run(self):
        while True:
            client, _ = self.srv.accept()
            server = socket.create_connection(("127.0.0.1", self.port))
            threading.Thread(target=self.pump, args=(client, server), daemon=True).start()
            threading.Thread(target=self.pump, args=(server, client), daemon=True).start()


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "corpus", "fuzz_cx")
    os.makedirs(out_dir, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        with test_cx.start_hss(tmp) as hss:
            relay = Relay(hss.diameter_port, out_dir)
            relay.start()

            class Via:
                diameter_port = relay.listen_port
            cx = cxclient.Imscx(Via)
            key, scscf = test_cx.KEY, test_cx.SCSCF
            answers = cx.run(
                "uar alice@ims.lab sip:alice@ims.lab type=0",
                "mar alice@ims.lab sip:alice@ims.lab scheme=Digest-AKAv1-MD5 items=2 %s" % key,
                "mar bob@ims.lab sip:bob@ims.lab scheme=digest items=1",
                "sar alice@ims.lab sip:alice@ims.lab type=1 server=%s" % scscf,
                "uar alice@ims.lab tel:+15550001 type=0",
                "lir sip:alice@ims.lab",
                "lir sip:nobody@ims.lab",
                "sar - sip:bob@ims.lab type=3 server=%s" % scscf,
                "uar carol@ims.lab sip:carol@ims.lab type=0",
                "uar dave@ims.lab sip:dave@ims.lab visited=elsewhere.net type=0",
                "sar alice@ims.lab sip:alice@ims.lab type=5 server=%s" % scscf,
            )
            print("%d answers, %d messages captured in %s" % (len(answers), relay.n, out_dir))


if __name__ == "__main__":
    main()
