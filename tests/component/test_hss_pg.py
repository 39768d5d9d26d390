"""The HSS on PostgreSQL (store.backend: postgresql), against a real server started here
(pgserver.py: own cluster, free port, temporary directory).

- Two HSS processes on one database under concurrent MAR load on the same IMPIs, one of them
  killed with SIGKILL mid-load: every SQN handed out (recovered from AUTN with the subscriber's
  K/OPc, as the USIM does: imscx key=) is distinct, and SQNs of one IMPI increase in real time
  (an answer received before a request was sent has a lower SQN, whichever HSS gave either).
- The provisioning API on PostgreSQL is covered by running test_rest.py with
  IMS_TEST_HSS_STORE=postgresql (component.test_rest_pg); here: a subscriber provisioned through
  one HSS is served by the other at once.
- The database goes away: MAR is answered DIAMETER_UNABLE_TO_COMPLY (5012) at once, /readyz
  says 503 naming the database; after the server is back both recover without a restart.
- A bad conninfo / unreachable server stops the HSS at start with a clear message (exit 1).
"""

import bisect
import contextlib
import json
import os
import threading
import time

import harness
from harness import check
import cxclient
import pgserver

K = "465b5ce8b199b49faa5f0a2ee238a6bc"
OPC = "cd63cb71954a9f4e48a5994e37a02baf"
KEY = "key=%s:%s" % (K, OPC)
USERS = 4


def subscribers(n=USERS):
    return {"subscribers": [
        {"id": "u%d" % i, "impis": [{"impi": "u%d@ims.lab" % i, "k": K, "opc": OPC}],
         "impus": [{"impu": "sip:u%d@ims.lab" % i}]} for i in range(n)]}


@contextlib.contextmanager
def two_hss(tmp):
    """A PostgreSQL server and two HSS on one database of it (A imports USERS subscribers);
    everything stopped at the end."""
    with pgserver.PgServer() as pg:
        a, b = start_two(tmp, pg)
        try:
            yield pg, a, b
        finally:
            a.stop()
            b.stop()


def start_two(tmp, pg):
    conninfo = pg.createdb("hss")
    path = os.path.join(tmp, "subscribers.json")
    with open(path, "w") as f:
        json.dump(subscribers(), f)
    da, dbb = os.path.join(tmp, "a"), os.path.join(tmp, "b")
    os.mkdir(da)
    os.mkdir(dbb)
    a = harness.Hss(da, import_file=path, conninfo=conninfo)
    b = harness.Hss(dbb, conninfo=conninfo)
    return a, b


def result_of(ans):
    return ans.get("experimental_result") or ans.get("result_code")


class Worker(threading.Thread):
    """One Cx client (its own imscx and Diameter identity) sending MARs one after the other to
    one HSS, over the IMPIs in turn; records (send time, receive time, IMPI, SQNs)."""

    def __init__(self, hss, name, start_user, items):
        super().__init__(daemon=True)
        self.cx = cxclient.Imscx(hss, identity="%s.ims.lab" % name, timeout_ms=1500)
        self.start_user, self.items = start_user, items
        self.records, self.failures = [], 0
        self.stop = threading.Event()

    def run(self):
        with self.cx.session() as s:
            i = self.start_user
            while not self.stop.is_set():
                impi = "u%d@ims.lab" % (i % USERS)
                t0 = time.monotonic()
                s.send("mar %s sip:u%d@ims.lab scheme=Digest-AKAv1-MD5 items=%d %s"
                       % (impi, i % USERS, self.items, KEY))
                try:
                    ans = s.read(timeout=5)
                except harness.TestFailure:
                    self.failures += 1
                    return
                t1 = time.monotonic()
                if result_of(ans) != 2001:
                    self.failures += 1      # the killed HSS: no answer / an error, never an SQN
                    if self.failures > 3:
                        return
                    continue
                items = ans.get("items", [])
                check(items and all(it.get("mac_ok") for it in items), "bad vector: %r" % ans)
                self.records.append((t0, t1, impi, [it["sqn"] for it in items]))
                i += 1


def check_sqns(records):
    """Distinct per IMPI; within one answer increasing; across answers increasing in real time."""
    by_impi = {}
    for r in records:
        by_impi.setdefault(r[2], []).append(r)
    total = 0
    for impi, recs in by_impi.items():
        all_sqns = [q for r in recs for q in r[3]]
        total += len(all_sqns)
        check(len(set(all_sqns)) == len(all_sqns), "%s: an SQN was issued twice" % impi)
        for r in recs:
            check(r[3] == sorted(r[3]), "%s: vectors of one MAR not increasing: %r" % (impi, r[3]))
        # For each answer Y, every answer X received before Y was sent has lower SQNs.
        by_recv = sorted(recs, key=lambda r: r[1])
        recv_times = [r[1] for r in by_recv]
        prefix_max, m = [], -1
        for r in by_recv:
            m = max(m, max(r[3]))
            prefix_max.append(m)
        for y in recs:
            k = bisect.bisect_left(recv_times, y[0])
            if k:
                check(prefix_max[k - 1] < min(y[3]),
                      "%s: SQN %#x answered after %#x had already been received"
                      % (impi, min(y[3]), prefix_max[k - 1]))
    return total


def test_two_hss_concurrent_mar_and_sigkill(tmp):
    with two_hss(tmp) as (pg, a, b):
        workers = [Worker(a, "wa%d" % i, i, 1 + i % 2) for i in range(3)] + \
                  [Worker(b, "wb%d" % i, i, 1 + i % 2) for i in range(3)]
        for w in workers:
            w.start()
        # SIGKILL once both have answered a good number of MARs.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and \
                min(sum(len(w.records) for w in workers[:3]),
                    sum(len(w.records) for w in workers[3:])) < 150:
            time.sleep(0.05)
        a.kill()
        time.sleep(2)                                   # B goes on alone
        for w in workers:
            w.stop.set()
        for w in workers:
            w.join(30)
        from_a = sum(len(w.records) for w in workers[:3])
        from_b = sum(len(w.records) for w in workers[3:])
        check(from_a >= 150 and from_b >= 150, "load too small: A %d, B %d" % (from_a, from_b))
        check(all(w.failures == 0 for w in workers[3:]), "HSS B failed MARs")
        check(all(w.failures > 0 for w in workers[:3]), "A's clients saw no failure: not killed mid-load")
        # A restarts on the same database and continues above everything handed out.
        a.start()
        after = [Worker(a, "wr", 0, 1)]
        after[0].start()
        time.sleep(1.5)
        after[0].stop.set()
        after[0].join(30)
        check(after[0].records, "no MAR answered after the restart")
        records = [r for w in workers + after for r in w.records]
        n = check_sqns(records)
        print("   %d MARs (%d SQNs) over %d IMPIs from two HSS, one SIGKILLed: all distinct "
              "and increasing" % (len(records), n, USERS))


def test_provisioning_on_one_served_by_other(tmp):
    with two_hss(tmp) as (pg, a, b):
        doc = {"id": "zed", "impis": [{"impi": "zed@ims.lab", "k": K, "opc": OPC}],
               "impus": [{"impu": "sip:zed@ims.lab"}]}
        status, body = a.api("POST", "/api/v1/subscribers", doc)
        check(status == 201, body)
        ans = cxclient.Imscx(b).one("mar zed@ims.lab sip:zed@ims.lab scheme=Digest-AKAv1-MD5 %s"
                                    % KEY)
        check(result_of(ans) == 2001 and ans["items"][0]["mac_ok"], ans)
        status, body = b.api("GET", "/api/v1/subscribers/zed")
        check(status == 200 and body["impis"][0]["sqn"] == ans["items"][0]["sqn"], body)
        status, body = b.api("DELETE", "/api/v1/subscribers/zed")
        check(status in (200, 204), body)
        status, _ = a.api("GET", "/api/v1/subscribers/zed")
        check(status == 404, "deleted through B, still seen by A")
        # The counts gauges come from the shared database (USERS imported by A).
        status, body = b.api("GET", "/api/v1/subscribers")
        check(body["count"] == USERS, body)


def test_database_down_then_back(tmp):
    with two_hss(tmp) as (pg, a, b):
        b.stop()
        cx = cxclient.Imscx(a, timeout_ms=3000)
        mar = "mar u0@ims.lab sip:u0@ims.lab scheme=Digest-AKAv1-MD5 %s" % KEY
        first = cx.one(mar)
        check(result_of(first) == 2001, first)
        status, _, _ = harness.http("GET", a.base + "/readyz")
        check(status == 200, "readyz %d with the database up" % status)
        pg.stop()
        t0 = time.monotonic()
        down = cx.one(mar)
        check(down.get("result_code") == 5012, "MAR with the database down: %r" % down)
        check(time.monotonic() - t0 < 3, "the error took %.1f s" % (time.monotonic() - t0))
        uaa = cx.one("uar u0@ims.lab sip:u0@ims.lab")
        check(uaa.get("result_code") == 5012, "UAR with the database down: %r" % uaa)
        status, body, _ = harness.http("GET", a.base + "/readyz")
        check(status == 503 and "database" in str(body), "readyz: %d %r" % (status, body))
        check("unreachable" in a.log() or "connection" in a.log(), a.log()[-2000:])
        pg.start()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            status, _, _ = harness.http("GET", a.base + "/readyz")
            if status == 200:
                break
            time.sleep(0.3)
        check(status == 200, "readyz did not recover")
        again = cx.one(mar)
        check(result_of(again) == 2001, again)
        check(again["items"][0]["sqn"] > first["items"][0]["sqn"], (first, again))
        m = harness.http("GET", a.base + "/metrics")[1]
        check("hss_store_errors_total" in m and "hss_store_operation_seconds_count" in m, m[:500])
        errors = [l for l in m.splitlines() if l.startswith("hss_store_errors_total")]
        check(errors and int(errors[0].split()[-1]) >= 1, errors)


def test_bad_conninfo_or_unreachable_stops_at_start(tmp):
    for conninfo, words in (("host=127.0.0.1 port=1 dbname=hss user=postgres", "cannot connect"),
                            ("host=127.0.0.1 nonsense=1", "nonsense")):
        d = os.path.join(tmp, str(abs(hash(conninfo))))
        os.mkdir(d)
        hss = harness.Hss(d, conninfo=conninfo, start=False)
        hss.spawn()
        rc = hss.wait(20)
        check(rc == 1, "exit %r, log: %s" % (rc, hss.log()))
        check("subscriber database" in hss.log() and words in hss.log(), hss.log())
    d = os.path.join(tmp, "missing")
    os.mkdir(d)
    hss = harness.Hss(d, start=False, extra_yaml="  store: {backend: postgresql}")
    hss.spawn()
    check(hss.wait(20) != 0 and "conninfo" in hss.log(), hss.log())


if __name__ == "__main__":
    harness.main()
