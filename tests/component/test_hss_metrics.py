"""HSS subscriber gauges on /metrics and the registration-state filter of the subscriber list,
against the real hss binary (provisioning over HTTP, registrations over Cx with imscx).

Gauges: hss_subscribers, hss_private_identities, hss_public_identities{state=registered |
unregistered | not_registered} (TS 29.228 Annex B states, written by SAR, TS 29.228 §6.1.2).
List: GET /api/v1/subscribers?reg_state=... (a subscription matches when any IMPU is in that
state), with its after/limit paging; imsctl list --reg-state.
"""

import json
import os
import re
import sqlite3
import time

import harness
from harness import check
import cxclient

SCSCF = "sip:scscf.ims.lab:6060"
STATES = ("registered", "unregistered", "not_registered")
# Server-Assignment-Type (TS 29.229 §6.3.15)
SAT_REGISTRATION, SAT_UNREGISTERED_USER, SAT_USER_DEREGISTRATION = 1, 3, 5


def sub(sid, n_impus=1, n_impis=1, irs=None):
    """A digest subscriber `sid` with n_impis IMPIs and n_impus IMPUs sip:<sid>[N]@ims.lab.
    irs: implicit registration set number per IMPU (default: all in set 1)."""
    irs = irs or [1] * n_impus
    return {"id": sid,
            "impis": [{"impi": "%s%s@ims.lab" % (sid, i or ""), "auth_schemes": ["digest"],
                       "password": "pw"} for i in range(n_impis)],
            "impus": [{"impu": "sip:%s%s@ims.lab" % (sid, i or ""), "irs": irs[i]}
                      for i in range(n_impus)]}


def scrape(hss):
    """The hss_* gauges of one /metrics scrape -> {"hss_subscribers": n, "registered": n, ...}."""
    status, text = hss.api("GET", "/metrics")
    check(status == 200, "/metrics: %r %r" % (status, text))
    for fam in ("hss_subscribers", "hss_private_identities", "hss_public_identities"):
        check("# TYPE %s gauge\n" % fam in text, "no gauge %s in /metrics:\n%s" % (fam, text))
    out = {}
    for line in text.splitlines():
        m = re.match(r'^(hss_subscribers|hss_private_identities|hss_public_identities)'
                     r'(?:\{state="(\w+)"\})? (-?\d+)$', line)
        if m:
            out[m.group(2) or m.group(1)] = int(m.group(3))
    check(set(out) == {"hss_subscribers", "hss_private_identities"} | set(STATES),
          "missing or unexpected series: %r" % out)
    return out


def expect(hss, subscribers, impis, registered=0, unregistered=0, not_registered=0, why=""):
    got = scrape(hss)
    want = {"hss_subscribers": subscribers, "hss_private_identities": impis,
            "registered": registered, "unregistered": unregistered,
            "not_registered": not_registered}
    check(got == want, "%s: gauges %r, expected %r" % (why, got, want))


def listing(hss, query):
    status, body = hss.api("GET", "/api/v1/subscribers" + query)
    check(status == 200, "GET ?%s: %r %r" % (query, status, body))
    return body


def ids(hss, state):
    return listing(hss, "?reg_state=" + state)["subscribers"]


def sar(cx, sid, impu_index, sat):
    impu = "sip:%s%s@ims.lab" % (sid, impu_index or "")
    a = cx.one("sar %s@ims.lab %s type=%d server=%s" % (sid, impu, sat, SCSCF))
    check(a.get("result_code") == 2001, "SAR type %d for %s: %r" % (sat, impu, a))


def create(hss, doc):
    status, body = hss.api("POST", "/api/v1/subscribers", doc)
    check(status == 201, "create %s: %r %r" % (doc["id"], status, body))


def test_gauges_follow_provisioning(tmp):
    with harness.Hss(tmp) as hss:
        expect(hss, 0, 0, why="empty database")
        create(hss, sub("alice", n_impus=3, n_impis=2))
        create(hss, sub("bob"))
        create(hss, sub("carol", n_impus=2))
        expect(hss, 3, 4, not_registered=6, why="after 3 creates")

        # Refused writes change nothing (the transaction and its counts are rolled back).
        status, _ = hss.api("POST", "/api/v1/subscribers", sub("bob"))
        check(status == 409, "duplicate create: %r" % status)
        dup = sub("dora")
        dup["impus"].append({"impu": "sip:alice1@ims.lab"})      # belongs to alice
        status, _ = hss.api("POST", "/api/v1/subscribers", dup)
        check(status == 409, "create with another's IMPU: %r" % status)
        expect(hss, 3, 4, not_registered=6, why="after refused creates")

        # Replace: alice goes to 1 IMPI / 1 IMPU; delete: carol's rows go by cascade.
        status, body = hss.api("PUT", "/api/v1/subscribers/alice", sub("alice"))
        check(status == 200, "replace alice: %r %r" % (status, body))
        expect(hss, 3, 3, not_registered=4, why="after replacing alice")
        status, _ = hss.api("DELETE", "/api/v1/subscribers/carol")
        check(status == 204, "delete carol: %r" % status)
        expect(hss, 2, 2, not_registered=2, why="after deleting carol")
        check(listing(hss, "")["count"] == 2, "count after delete")


def test_gauges_and_filter_follow_cx_registrations(tmp):
    with harness.Hss(tmp) as hss:
        # alice: IMPUs 0 and 1 in implicit set 1, IMPU 2 alone in set 2.
        create(hss, sub("alice", n_impus=3, irs=[1, 1, 2]))
        create(hss, sub("bob"))
        create(hss, sub("carol"))
        cx = cxclient.Imscx(hss)
        for state in STATES[:2]:
            check(ids(hss, state) == [], "%s before any SAR: %r" % (state, ids(hss, state)))
        check(ids(hss, "not_registered") == ["alice", "bob", "carol"], "not_registered at start")

        sar(cx, "alice", 0, SAT_REGISTRATION)           # registers the implicit set {0, 1}
        expect(hss, 3, 3, registered=2, not_registered=3, why="after alice's registration")
        sar(cx, "bob", 0, SAT_UNREGISTERED_USER)        # terminating call to an unregistered user
        expect(hss, 3, 3, registered=2, unregistered=1, not_registered=2,
               why="after bob's UNREGISTERED_USER")
        check(ids(hss, "registered") == ["alice"], "registered: %r" % ids(hss, "registered"))
        check(ids(hss, "unregistered") == ["bob"], "unregistered: %r" % ids(hss, "unregistered"))
        # alice still has IMPU 2 not registered: she is in both lists.
        check(ids(hss, "not_registered") == ["alice", "carol"],
              "not_registered: %r" % ids(hss, "not_registered"))
        # The filter leaves "count" (all subscribers) alone.
        check(listing(hss, "?reg_state=registered")["count"] == 3, "count with a filter")

        sar(cx, "alice", 2, SAT_REGISTRATION)
        expect(hss, 3, 3, registered=3, unregistered=1, not_registered=1, why="alice's 2nd set")
        check(ids(hss, "not_registered") == ["carol"], "not_registered: %r" % ids(hss, "not_registered"))

        # The counts are in the database: a restart shows the same figures.
        hss.restart()
        expect(hss, 3, 3, registered=3, unregistered=1, not_registered=1, why="after restart")

        sar(cx, "alice", 0, SAT_USER_DEREGISTRATION)    # de-registers set 1 only
        expect(hss, 3, 3, registered=1, unregistered=1, not_registered=3, why="after de-registering set 1")
        sar(cx, "alice", 2, SAT_USER_DEREGISTRATION)
        sar(cx, "bob", 0, SAT_USER_DEREGISTRATION)
        expect(hss, 3, 3, not_registered=5, why="after all de-registrations")
        check(ids(hss, "registered") == [] and ids(hss, "unregistered") == [], "lists after de-registration")

        # Deleting a registered subscription takes its registered IMPUs out of the gauges.
        sar(cx, "carol", 0, SAT_REGISTRATION)
        expect(hss, 3, 3, registered=1, not_registered=4, why="carol registered")
        status, _ = hss.api("DELETE", "/api/v1/subscribers/carol")
        check(status == 204, "delete carol: %r" % status)
        expect(hss, 2, 2, not_registered=4, why="registered carol deleted")


def test_filter_paging(tmp):
    with harness.Hss(tmp) as hss:
        for i in range(8):
            create(hss, sub("u%d" % i))
        cx = cxclient.Imscx(hss)
        registered = ["u1", "u2", "u4", "u7"]
        for sid in registered:
            sar(cx, sid, 0, SAT_REGISTRATION)

        seen, after, pages = [], None, 0
        while True:
            q = "?reg_state=registered&limit=3" + ("&after=" + after if after else "")
            page = listing(hss, q)
            pages += 1
            check(len(page["subscribers"]) <= 3, "page too long: %r" % page)
            check(page["count"] == 8, "count: %r" % page)
            seen += page["subscribers"]
            after = page["next"]
            if after is None:
                break
            check(after == page["subscribers"][-1], "next is not the last id: %r" % page)
            check(pages < 5, "paging does not end: %r" % seen)
        check(seen == registered and pages == 2, "registered pages: %r in %d pages" % (seen, pages))

        # after= between matches, after the last match, limit=1 page by page.
        check(listing(hss, "?reg_state=registered&after=u2&limit=1") ==
              {"subscribers": ["u4"], "count": 8, "next": "u4"}, "after=u2 limit=1")
        check(listing(hss, "?reg_state=registered&after=u3")["subscribers"] == ["u4", "u7"], "after=u3")
        check(listing(hss, "?reg_state=registered&after=u7") ==
              {"subscribers": [], "count": 8, "next": None}, "after the last match")
        check(listing(hss, "?reg_state=not_registered&limit=2&after=u2") ==
              {"subscribers": ["u3", "u5"], "count": 8, "next": "u5"}, "not_registered page")
        # A subscriber with two IMPUs in the state appears once.
        create(hss, sub("u9", n_impus=2))
        sar(cx, "u9", 0, SAT_REGISTRATION)
        check(ids(hss, "registered") == registered + ["u9"], "u9 twice? %r" % ids(hss, "registered"))
        # The parameters are checked with the filter too.
        status, body = hss.api("GET", "/api/v1/subscribers?reg_state=registered&limit=0")
        check(status == 400 and "limit" in body["error"], "limit=0 with filter: %r %r" % (status, body))


def test_bad_reg_state(tmp):
    with harness.Hss(tmp) as hss:
        create(hss, sub("alice"))
        for bad in ("REGISTERED", "foo", "", "registered%20", "1", "not-registered"):
            status, body = hss.api("GET", "/api/v1/subscribers?reg_state=" + bad)
            check(status == 400, "reg_state=%r: %r %r" % (bad, status, body))
            msg = body.get("error", "") if isinstance(body, dict) else ""
            check(msg.startswith("reg_state: ") and all(s in msg for s in STATES),
                  "reg_state=%r: message must name the parameter and the values: %r" % (bad, msg))
        status, body = hss.api("GET", "/api/v1/subscribers?reg_state=bogus&limit=5&after=a")
        check(status == 400 and "bogus" in body["error"], "bad value echoed: %r" % (body,))
        status, body = hss.api("GET", "/metrics")
        check(re.search(r'^hss_api_requests_total\{method="GET",status="400"\} [1-9]', body, re.M),
              "400s counted in hss_api_requests_total")


def test_imsctl_list_reg_state(tmp):
    with harness.Hss(tmp) as hss:
        for sid in ("a", "b", "c"):
            create(hss, sub(sid))
        sar(cxclient.Imscx(hss), "b", 0, SAT_REGISTRATION)
        p = hss.imsctl("list", "--reg-state", "registered")
        check(p.returncode == 0, "imsctl list --reg-state: %d %s" % (p.returncode, p.stderr))
        check(json.loads(p.stdout)["subscribers"] == ["b"], "imsctl registered: %s" % p.stdout)
        p = hss.imsctl("list", "--reg-state", "not_registered", "--limit", "1", "--after", "a")
        check(p.returncode == 0 and json.loads(p.stdout) == {"subscribers": ["c"], "count": 3,
                                                             "next": None},
              "imsctl not_registered page: %d %s %s" % (p.returncode, p.stdout, p.stderr))
        p = hss.imsctl("list", "--reg-state", "sometimes")
        check(p.returncode == 1 and "reg_state" in p.stderr and "not_registered" in p.stderr,
              "imsctl bad value: %d %r %r" % (p.returncode, p.stdout, p.stderr))
        p = hss.imsctl("list", "--reg-state")
        check(p.returncode == 2, "imsctl --reg-state without value: %d" % p.returncode)


def test_import_and_older_database(tmp):
    """Gauges after an import at start; a database written before the counts existed (no
    identity_counts table) gets them, counted, at the next start."""
    path = os.path.join(tmp, "subscribers.json")
    with open(path, "w") as f:
        json.dump({"subscribers": [sub("a", n_impus=2), sub("b", n_impis=3), sub("c")]}, f)
    hss = harness.Hss(tmp, import_file=path)
    with hss:
        expect(hss, 3, 5, not_registered=4, why="after import")
        # The import counts without triggers; the writes after it are counted again.
        create(hss, sub("d"))
        expect(hss, 4, 6, not_registered=5, why="create after import")
        sar(cxclient.Imscx(hss), "a", 0, SAT_REGISTRATION)
        expect(hss, 4, 6, registered=2, not_registered=3, why="after SAR")
        # Re-imported at start (a, b, c replaced, registration kept): same figures.
        hss.restart()
        expect(hss, 4, 6, registered=2, not_registered=3, why="after the import at restart")
        status, _ = hss.api("DELETE", "/api/v1/subscribers/d")
        check(status == 204, "delete d")
        expect(hss, 3, 5, registered=2, not_registered=2, why="delete after the import at restart")

    db = sqlite3.connect(hss.db)
    db.executescript("DROP TABLE identity_counts; DROP INDEX impu_reg_state;" + "".join(
        "DROP TRIGGER %s_count_%s;" % (t, op) for t in ("imsu", "impi", "impu")
        for op in ("ins", "del")) + "DROP TRIGGER impu_count_upd;")
    db.close()
    hss.start()
    with hss:
        expect(hss, 3, 5, registered=2, not_registered=2, why="after re-creating the counts")
        check(hss.log().count("adding the identity counts") == 2, "creation and upgrade are logged")
        check(ids(hss, "registered") == ["a"], "filter on an upgraded file")
        # The triggers are back: a delete is counted.
        status, _ = hss.api("DELETE", "/api/v1/subscribers/b")
        check(status == 204, "delete b")
        expect(hss, 2, 2, registered=2, not_registered=1, why="delete after upgrade")

    # An import killed after one of its intermediate commits leaves the counts marked stale
    # (the import counts without triggers): the next open recounts.
    db = sqlite3.connect(hss.db)
    db.execute("UPDATE identity_counts SET imsu = 77, impi = 77, impu_registered = 77, stale = 1")
    db.commit()
    db.close()
    hss = harness.Hss(tmp, start=False)    # same database, no import this time
    hss.start()
    with hss:
        expect(hss, 2, 2, registered=2, not_registered=1, why="after recounting stale counts")
        check("an import did not finish" in hss.log(), "the recount is logged")
    db = sqlite3.connect(hss.db)
    row = db.execute("SELECT imsu, impi, impu_not_registered, impu_registered, impu_unregistered,"
                     " stale FROM identity_counts").fetchall()
    db.close()
    check(row == [(2, 2, 1, 2, 0, 0)], "stored counts after the recount: %r" % row)


def test_import_killed(tmp):
    """SIGKILL in the middle of a bulk import (after at least one of its intermediate commits):
    the next start recounts, and the gauges match the rows that made it to disk."""
    path = os.path.join(tmp, "subscribers.jsonl")
    n = 300000
    with open(path, "w") as f:
        for start in range(0, n, 10000):
            f.write("".join('{"id":"k%d","impis":[{"impi":"k%d@ims.lab","auth_schemes":["digest"],'
                            '"password":"p"}],"impus":[{"impu":"sip:k%d@ims.lab"}]}\n' % (i, i, i)
                            for i in range(start, start + 10000)))
    hss = harness.Hss(tmp, import_file=path, start=False)
    hss.spawn()
    committed = 0
    deadline = time.monotonic() + 120
    try:
        while committed < 20000 and time.monotonic() < deadline and hss.running():
            time.sleep(0.1)
            try:
                db = sqlite3.connect("file:%s?mode=ro" % hss.db, uri=True, timeout=1)
                committed = db.execute("SELECT count(*) FROM imsu").fetchone()[0]
                db.close()
            except sqlite3.Error:
                pass
        check(hss.running(), "hss ended before the kill (import too fast?); log:\n%s"
              % hss.log()[-2000:])
        check(committed >= 20000, "no intermediate commit within 120 s (%d rows)" % committed)
    finally:
        hss.kill()
    db = sqlite3.connect(hss.db)
    subs, stale = db.execute("SELECT (SELECT count(*) FROM imsu), stale FROM identity_counts").fetchone()
    db.close()
    check(0 < subs < n and stale == 1, "after the kill: %d subscribers, stale=%r" % (subs, stale))

    hss = harness.Hss(tmp, start=False)     # same database, no import
    hss.start(timeout=60)
    with hss:
        expect(hss, subs, subs, not_registered=subs, why="after the killed import")
        check("an import did not finish" in hss.log(), "the recount is logged")


if __name__ == "__main__":
    harness.main()
