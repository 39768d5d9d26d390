"""HSS storage faults: the real hss with its database on a file system that is read-only or full.

The faults are real, not simulated in the HSS: the database lives on a small tmpfs mounted for
the test (we run as root), which is remounted read-only (root cannot write through that, unlike
chmod) or filled to the last byte with a filler file (the kernel answers ENOSPC). Without root
or mount, the tests say so and are skipped (printed "skip"), never passed silently.

  - read-only: the hss refuses to start, exit code 1, one log line naming the file and the
    cause; the file is unchanged; after the remount read-write it starts and serves.
  - disk full: a MAR that needs a new SQN reservation gets DIAMETER_UNABLE_TO_COMPLY (5012), a
    POST gets a 500 JSON error naming the cause, both logged; the hss stays up; once space is
    back everything works, no SQN is reused, PRAGMA integrity_check is "ok".
  - a bad JSON lines import file (the bulk format): exit 2 naming file and line, the lines
    before it stay imported.
"""

import errno
import hashlib
import json
import os
import sqlite3
import subprocess
import time

import harness
from harness import check
import cxclient

K = "465b5ce8b199b49faa5f0a2ee238a6bc"
OPC = "cd63cb71954a9f4e48a5994e37a02baf"
KEY = "key=%s:%s" % (K, OPC)
AKA = "scheme=Digest-AKAv1-MD5"


def subscriber(name):
    return {"id": name,
            "impis": [{"impi": "%s@ims.lab" % name, "k": K, "opc": OPC}],
            "impus": [{"impu": "sip:%s@ims.lab" % name}]}


def write_import(tmp, names):
    path = os.path.join(tmp, "subscribers.json")
    with open(path, "w") as f:
        json.dump({"subscribers": [subscriber(n) for n in names]}, f)
    return path


class Tmpfs:
    """A tmpfs of `size` mounted on tmp/name for the test, unmounted at exit."""

    def __init__(self, tmp, name, size):
        self.path = os.path.join(tmp, name)
        os.mkdir(self.path)
        p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s,mode=0755" % size, "tmpfs",
                            self.path], capture_output=True, text=True)
        self.mounted = p.returncode == 0
        self.why = p.stderr.strip()

    def remount(self, mode):
        p = subprocess.run(["mount", "-o", "remount,%s" % mode, self.path], capture_output=True,
                           text=True)
        check(p.returncode == 0, "remount %s of %s: %s" % (mode, self.path, p.stderr))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.mounted:
            for _ in range(50):
                if subprocess.run(["umount", self.path], capture_output=True).returncode == 0:
                    break
                time.sleep(0.1)


def skip_unless_mounted(fs):
    if not fs.mounted:
        print("   skip: cannot mount a tmpfs here (%s); these faults need root and mount"
              % (fs.why or "not root"))
        return True
    return False


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def mar(cx, name):
    return cx.one("mar %s@ims.lab sip:%s@ims.lab %s %s" % (name, name, AKA, KEY))


def result(a):
    if a.get("experimental_result"):
        return ("exp", a["experimental_result"])
    return ("base", a.get("result_code"))


def integrity(db):
    con = sqlite3.connect(db)
    try:
        return con.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        con.close()


def test_read_only_database_refuses_to_start(tmp):
    with Tmpfs(tmp, "ro", "8m") as fs:
        if skip_unless_mounted(fs):
            return
        db = os.path.join(fs.path, "hss.db")
        hss = harness.Hss(tmp, import_file=write_import(tmp, ["alice"]), database=db)
        with hss:
            first = mar(cxclient.Imscx(hss), "alice")
            check(result(first) == ("base", 2001), first)
        check(hss.returncode == 0, "hss exit code %r" % hss.returncode)
        before = sha256(db)

        fs.remount("ro")
        try:
            hss2 = harness.Hss(tmp, database=db, start=False)   # no import: nothing to write
            hss2.spawn()
            rc = hss2.wait(15)
            log = hss2.log()[hss2.log_offset:]
            check(rc == 1, "hss on a read-only database: exit code %r, log:\n%s" % (rc, log))
            line = next((l for l in log.splitlines() if db in l), "")
            check("read-only" in line.lower() or "readonly" in line.lower(),
                  "no log line naming %s and the read-only cause:\n%s" % (db, log))
            check(sha256(db) == before, "the database changed while read-only")
        finally:
            fs.remount("rw")

        # Writable again: the same data serves, SQNs continue upward.
        with harness.Hss(tmp, database=db) as hss3:
            again = mar(cxclient.Imscx(hss3), "alice")
            check(result(again) == ("base", 2001), again)
            check(again["items"][0]["sqn"] > first["items"][0]["sqn"],
                  "SQN went back: %#x after %#x" % (again["items"][0]["sqn"], first["items"][0]["sqn"]))
        check(integrity(db) == "ok", "integrity_check after the read-only episode")
        print("   read-only: exit 1 with \"%s\"" % line.strip()[-150:])


def fill(directory):
    """Fills the file system of `directory` with one file until ENOSPC; returns its path."""
    path = os.path.join(directory, "filler")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for size in (1 << 20, 65536, 4096, 512, 1):
            chunk = b"\0" * size
            while True:
                try:
                    os.write(fd, chunk)
                except OSError as e:
                    check(e.errno == errno.ENOSPC, "filling %s: %s" % (directory, e))
                    break
    finally:
        os.close(fd)
    return path


def test_disk_full_during_operation(tmp):
    with Tmpfs(tmp, "full", "4m") as fs:
        if skip_unless_mounted(fs):
            return
        db = os.path.join(fs.path, "hss.db")
        names = ["alice", "bob"]
        with harness.Hss(tmp, import_file=write_import(tmp, names), database=db) as hss:
            cx = cxclient.Imscx(hss)
            a1 = mar(cx, "alice")
            check(result(a1) == ("base", 2001), a1)

            filler = fill(fs.path)
            # bob's first MAR needs a new durable SQN reservation: it must fail cleanly.
            b_fail = mar(cx, "bob")
            check(result(b_fail) == ("base", 5012) and "items" not in b_fail,
                  "MAR with a full disk: %r" % b_fail)
            status, body = hss.api("POST", "/api/v1/subscribers", subscriber("carol"))
            check(status >= 500 and isinstance(body, dict) and "full" in json.dumps(body),
                  "POST with a full disk: %r %r" % (status, body))
            log = hss.log()
            check("database or disk is full" in log and "bob@ims.lab" in log,
                  "no log line naming the full disk and the user:\n%s" % log[-3000:])
            check(hss.running(), "hss died on a full disk")

            os.unlink(filler)
            b_ok = mar(cx, "bob")
            check(result(b_ok) == ("base", 2001), "MAR after space came back: %r" % b_ok)
            a2 = mar(cx, "alice")
            check(result(a2) == ("base", 2001) and a2["items"][0]["sqn"] > a1["items"][0]["sqn"],
                  "alice's SQN after the full disk: %r then %r" % (a1, a2))
            status, body = hss.api("POST", "/api/v1/subscribers", subscriber("carol"))
            check(status == 201, "POST after space came back: %r %r" % (status, body))
            c = mar(cx, "carol")
            check(result(c) == ("base", 2001), c)
            status, body = hss.api("GET", "/api/v1/subscribers")
            check(status == 200 and body["count"] == 3, body)
        check(hss.returncode == 0, "hss exit code %r" % hss.returncode)
        check(integrity(db) == "ok", "integrity_check after the full disk")

        # After a restart: nothing reused (the reservations were durable), data intact.
        with harness.Hss(tmp, database=db) as hss2:
            cx = cxclient.Imscx(hss2)
            a3, b3 = mar(cx, "alice"), mar(cx, "bob")
            check(a3["items"][0]["sqn"] > a2["items"][0]["sqn"], (a2, a3))
            check(b3["items"][0]["sqn"] > b_ok["items"][0]["sqn"], (b_ok, b3))
        print("   disk full: MAR 5012, POST %d, recovered, integrity ok" % 500)


def test_jsonl_import_streams_and_names_the_line(tmp):
    """The JSON lines import (the bulk format of tests/bench/bench_hss.py): a good file imports
    in one go; a bad line stops the start with exit 2 naming file and line, and the lines
    before it stay imported (as with the other formats)."""
    path = os.path.join(tmp, "subs.jsonl")
    lines = [json.dumps(subscriber("u%d" % i)) for i in range(300)]
    with open(path, "w") as f:
        f.write("\n".join(lines[:150]) + "\n\n" + "\n".join(lines[150:]) + "\n")
    with harness.Hss(tmp, import_file=path) as hss:
        status, body = hss.api("GET", "/api/v1/subscribers?limit=1000")
        check(status == 200 and body["count"] == 300, body)
        check("imported 300 subscribers" in hss.log(), hss.log()[-2000:])
        check(result(mar(cxclient.Imscx(hss), "u299")) == ("base", 2001), "MAR for u299")

    cases = [
        ('{"id": "x1", "impis": [{"impi": "x1@ims.lab", "k": "0011"}], "impus": [{"impu": "sip:x1@ims.lab"}]}',
         "bad.jsonl:2: impis[0].k"),
        ('{"id": "x1", "impis": [', "bad.jsonl:2: "),
        (json.dumps(subscriber("u0")), "bad.jsonl:2: id: 'u0' is already used on line 1"),
    ]
    for i, (line, want) in enumerate(cases):
        d = os.path.join(tmp, "case%d" % i)
        os.mkdir(d)
        bad = os.path.join(d, "bad.jsonl")
        with open(bad, "w") as f:
            f.write(json.dumps(subscriber("u0")) + "\n" + line + "\n" + json.dumps(subscriber("u9")) + "\n")
        hss = harness.Hss(d, import_file=bad, start=False)
        hss.spawn()
        rc = hss.wait(10)
        check(rc == 2 and want in hss.log(), "case %d: exit %r, want %r in:\n%s" % (i, rc, want, hss.log()))
        con = sqlite3.connect(hss.db)
        ids = [r[0] for r in con.execute("SELECT id FROM imsu ORDER BY id")]
        con.close()
        check(ids == ["u0"], "case %d: lines before the bad one stay imported, got %r" % (i, ids))


if __name__ == "__main__":
    harness.main()
