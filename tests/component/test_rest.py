#!/usr/bin/env python3
"""Component tests of the HSS provisioning REST API, bulk import and imsctl.

Runs the real hss binary (harness.Hss) and talks to it over HTTP; no Diameter peer is needed.
Run: IMS_BUILD_DIR=/path/to/build python3 tests/component/test_rest.py [test_name ...]
"""

import json
import os
import sys
import urllib.parse
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check  # noqa: E402

K = "465b5ce8b199b49faa5f0a2ee238a6bc"
OPC = "cd63cb71954a9f4e48a5994e37a02baf"
SECRETS = ("k", "op", "opc", "password", "ha1")


def subscriber(sid, n=None, sqn=0):
    """A valid subscriber `sid` with one AKA+digest IMPI and two IMPUs."""
    user = sid if n is None else "%s%d" % (sid, n)
    return {
        "id": user,
        "impis": [{
            "impi": "%s@ims.lab" % user,
            "auth_schemes": ["aka", "digest"],
            "default_scheme": "aka",
            "k": K, "opc": OPC, "amf": "8000", "sqn": sqn,
            "password": "secret", "digest_realm": "ims.lab",
        }],
        "impus": [
            {"impu": "sip:%s@ims.lab" % user, "barred": False, "irs": 1,
             "service_profile": "default", "display_name": user.capitalize(),
             "identity_type": 0, "can_register": True},
            {"impu": "tel:+1555%07d" % (zlib.crc32(user.encode()) % 10000000), "irs": 1,
             "service_profile": "default"},
        ],
        "service_profiles": [{
            "name": "default",
            "subscribed_media_profile_id": -1,
            "ifc": [{
                "priority": 1,
                "trigger_point": {"cnf": True, "spt": [{"group": 0, "negated": False, "method": "INVITE"}]},
                "application_server": {"server_name": "sip:as.ims.lab:5070",
                                       "default_handling": "session_continued",
                                       "service_info": "x",
                                       "include_register_request": False,
                                       "include_register_response": False},
                "profile_part_indicator": "registered",
            }],
        }],
        "roaming": {"visited_networks": ["visited.net"]},
        "charging": {"ccf_primary": "aaa://ccf.ims.lab"},
    }


def no_secrets(obj, where="body"):
    """Recursively checks that no secret key appears in an API answer."""
    if isinstance(obj, dict):
        for key, val in obj.items():
            check(key not in SECRETS, "%s: secret '%s' was output" % (where, key))
            no_secrets(val, "%s.%s" % (where, key))
    elif isinstance(obj, list):
        for i, val in enumerate(obj):
            no_secrets(val, "%s[%d]" % (where, i))


def expect(status_body, status, contains=None):
    """Checks (status, body) of an api() call; `contains` must appear in body["error"]."""
    got, body = status_body
    check(got == status, "expected HTTP %d, got %d: %r" % (status, got, body))
    if contains is not None:
        check(isinstance(body, dict) and "error" in body, "no JSON error in %r" % (body,))
        check(contains in body["error"], "error %r does not mention %r" % (body["error"], contains))
    return body


def create(hss, sub):
    return expect(hss.api("POST", "/api/v1/subscribers", sub), 201)


# ---------------------------------------------------------------------------------------------

def test_create_and_get(tmp):
    with harness.Hss(tmp) as hss:
        status, body, headers = hss.api_full("POST", "/api/v1/subscribers", subscriber("alice"))
        check(status == 201, "POST: %d %r" % (status, body))
        check(headers.get("Location", "").endswith("/api/v1/subscribers/alice"),
              "Location: %r" % headers.get("Location"))
        check(body["id"] == "alice", body)
        no_secrets(body)
        impi = body["impis"][0]
        check(impi["impi"] == "alice@ims.lab" and impi["aka"] is True and impi["digest"] is True, impi)
        check(impi["sqn"] == 0, impi)

        got = expect(hss.api("GET", "/api/v1/subscribers/alice"), 200)
        no_secrets(got)
        check(got == body, "GET differs from the POST answer:\n%r\n%r" % (got, body))
        check([u["impu"] for u in got["impus"]][0] == "sip:alice@ims.lab", got["impus"])
        check(got["impus"][0]["display_name"] == "Alice", got["impus"][0])
        check(got["service_profiles"][0]["ifc"][0]["application_server"]["server_name"]
              == "sip:as.ims.lab:5070", got["service_profiles"])
        check(got["roaming"]["visited_networks"] == ["visited.net"], got.get("roaming"))
        check(got["charging"]["ccf_primary"] == "aaa://ccf.ims.lab", got.get("charging"))
        check(got["impus"][0].get("reg_state") == "not_registered", got["impus"][0])
        check(got.get("registration") is None or got["registration"].get("scscf_name") is None,
              got.get("registration"))

        # persisted: visible after a restart
        hss.restart()
        expect(hss.api("GET", "/api/v1/subscribers/alice"), 200)


def test_unknown_subscriber_404(tmp):
    with harness.Hss(tmp) as hss:
        expect(hss.api("GET", "/api/v1/subscribers/nobody"), 404, "no subscriber nobody")
        expect(hss.api("PUT", "/api/v1/subscribers/nobody", subscriber("nobody")), 404, "nobody")
        expect(hss.api("DELETE", "/api/v1/subscribers/nobody"), 404, "nobody")


def test_list_pagination(tmp):
    with harness.Hss(tmp) as hss:
        body = expect(hss.api("GET", "/api/v1/subscribers"), 200)
        check(body == {"subscribers": [], "count": 0, "next": None}, body)
        for i in range(5):
            create(hss, subscriber("user", i))
        page = expect(hss.api("GET", "/api/v1/subscribers?limit=2"), 200)
        check(page["subscribers"] == ["user0", "user1"] and page["count"] == 5
              and page["next"] == "user1", page)
        page = expect(hss.api("GET", "/api/v1/subscribers?limit=2&after=user1"), 200)
        check(page["subscribers"] == ["user2", "user3"] and page["next"] == "user3", page)
        page = expect(hss.api("GET", "/api/v1/subscribers?limit=2&after=user3"), 200)
        check(page["subscribers"] == ["user4"] and page["next"] is None, page)
        page = expect(hss.api("GET", "/api/v1/subscribers"), 200)
        check(len(page["subscribers"]) == 5 and page["next"] is None, page)
        for bad in ("0", "-1", "1001", "abc", "5x"):
            expect(hss.api("GET", "/api/v1/subscribers?limit=" + bad), 400, "limit")
        page = expect(hss.api("GET", "/api/v1/subscribers?limit=1000"), 200)
        check(len(page["subscribers"]) == 5, page)


def test_update_changes_fields_and_keeps_sqn(tmp):
    with harness.Hss(tmp) as hss:
        create(hss, subscriber("bob", sqn=4096))
        new = subscriber("bob", sqn=0)          # an SQN must never go back
        new["impus"][0]["display_name"] = "Robert"
        new["impus"][0]["barred"] = True
        new["roaming"]["visited_networks"] = []
        body = expect(hss.api("PUT", "/api/v1/subscribers/bob", new), 200)
        check(body["impus"][0]["display_name"] == "Robert" and body["impus"][0]["barred"] is True, body)
        check(body["impis"][0]["sqn"] == 4096, "SQN went back: %r" % body["impis"][0])
        got = expect(hss.api("GET", "/api/v1/subscribers/bob"), 200)
        check(got == body, "GET after PUT differs")

        # the body may omit the id; a different id is refused
        del new["id"]
        new["impus"][0]["display_name"] = "Bobby"
        body = expect(hss.api("PUT", "/api/v1/subscribers/bob", new), 200)
        check(body["id"] == "bob" and body["impus"][0]["display_name"] == "Bobby", body)
        expect(hss.api("PUT", "/api/v1/subscribers/bob", subscriber("carol")), 400, "id")
        expect(hss.api("PUT", "/api/v1/subscribers/bob", "{nope"), 400, "invalid JSON at offset")


def test_delete(tmp):
    with harness.Hss(tmp) as hss:
        create(hss, subscriber("dave"))
        status, body = hss.api("DELETE", "/api/v1/subscribers/dave")
        check(status == 204 and not body, "DELETE: %d %r" % (status, body))
        expect(hss.api("GET", "/api/v1/subscribers/dave"), 404, "no subscriber dave")
        expect(hss.api("DELETE", "/api/v1/subscribers/dave"), 404)
        expect(hss.api("GET", "/api/v1/identities/dave@ims.lab"), 404)
        # its identities are free again
        create(hss, subscriber("dave"))


def test_invalid_json(tmp):
    with harness.Hss(tmp) as hss:
        body = expect(hss.api("POST", "/api/v1/subscribers", '{"id": "x", "impis": [}'), 400,
                      "invalid JSON at offset ")
        offset = int(body["error"].split("offset ")[1].split(":")[0])
        check(offset == 22, "offset %d in %r" % (offset, body["error"]))
        expect(hss.api("POST", "/api/v1/subscribers", '{"id": "x"'), 400, "invalid JSON at offset")
        expect(hss.api("POST", "/api/v1/subscribers", ""), 400, "invalid JSON")
        expect(hss.api("POST", "/api/v1/subscribers", '{"id": "x"} {}'), 400, "invalid JSON")
        expect(hss.api("POST", "/api/v1/subscribers", "[1, 2]"), 400)
        expect(hss.api("GET", "/api/v1/subscribers"), 200)


def test_validation_errors_name_the_field(tmp):
    with harness.Hss(tmp) as hss:
        cases = []
        s = subscriber("v1")
        s["impis"][0]["k"] = "1234"
        cases.append(("bad k", s, "impis[0].k"))
        s = subscriber("v2")
        del s["impus"]
        cases.append(("missing impus", s, "impus"))
        s = subscriber("v3")
        s["colour"] = "blue"
        cases.append(("unknown field", s, "colour"))
        s = subscriber("v4")
        s["impus"][1]["impu"] = "http://v4.ims.lab"
        cases.append(("bad impu scheme", s, "impus[1].impu"))
        s = subscriber("v5")
        s["impus"][0]["irs"] = "one"
        cases.append(("wrong type", s, "impus[0].irs"))
        s = subscriber("v6")
        s["impis"][0]["amf"] = 8000
        cases.append(("wrong type amf", s, "impis[0].amf"))
        for name, sub, field in cases:
            status, body = hss.api("POST", "/api/v1/subscribers", sub)
            check(status == 400, "%s: expected 400, got %d %r" % (name, status, body))
            check(field in body.get("error", ""), "%s: error %r does not name %s" % (name, body, field))
        page = expect(hss.api("GET", "/api/v1/subscribers"), 200)
        check(page["count"] == 0, "an invalid subscriber was stored: %r" % page)


def test_conflicts_409(tmp):
    with harness.Hss(tmp) as hss:
        create(hss, subscriber("erin"))
        expect(hss.api("POST", "/api/v1/subscribers", subscriber("erin")), 409)
        other = subscriber("frank")
        other["impus"].append({"impu": "sip:erin@ims.lab", "irs": 1, "service_profile": "default"})
        body = expect(hss.api("POST", "/api/v1/subscribers", other), 409)
        check("sip:erin@ims.lab" in body["error"], "409 does not name the IMPU: %r" % body)
        expect(hss.api("GET", "/api/v1/subscribers/frank"), 404)
        # the same conflict on replace
        create(hss, subscriber("frank"))
        expect(hss.api("PUT", "/api/v1/subscribers/frank", other), 409)
        got = expect(hss.api("GET", "/api/v1/subscribers/frank"), 200)
        check(len(got["impus"]) == 2, "a refused PUT changed the record: %r" % got["impus"])


def test_identity_lookup(tmp):
    with harness.Hss(tmp) as hss:
        sub = create(hss, subscriber("gina"))
        tel = sub["impus"][1]["impu"]
        for ident in ("gina@ims.lab", "sip:gina@ims.lab", "sip%3Agina%40ims.lab", tel,
                      urllib.parse.quote(tel, safe="")):
            body = expect(hss.api("GET", "/api/v1/identities/" + ident), 200)
            check(body["subscriber"] == "gina", "%s: %r" % (ident, body))
        expect(hss.api("GET", "/api/v1/identities/sip:nobody@ims.lab"), 404)
        expect(hss.api("GET", "/api/v1/identities/nobody@ims.lab"), 404)


def test_metrics_count_requests(tmp):
    with harness.Hss(tmp) as hss:
        expect(hss.api("GET", "/api/v1/subscribers/nobody"), 404)
        status, text, _ = harness.http("GET", hss.base + "/metrics")
        check(status == 200, status)
        check('hss_api_requests_total{method="GET",status="404"} 1' in text,
              "metric missing:\n%s" % text)


YAML_IMPORT = """\
# two subscribers, the second sharing the first's service profiles through an anchor
x-profiles: &profiles
  - name: default
    ifc: []
subscribers:
  - id: henry
    impis:
      - impi: henry@ims.lab
        auth_schemes: [aka]
        k: "%(k)s"
        opc: "%(opc)s"
        amf: "8000"
        sqn: 0
    impus:
      - {impu: "sip:henry@ims.lab", irs: 1, service_profile: default, barred: false}
    service_profiles: *profiles
  - id: iris
    impis:
      - {impi: iris@ims.lab, auth_schemes: [digest], password: secret}
    impus:
      - {impu: "sip:iris@ims.lab", service_profile: default}
    service_profiles: *profiles
""" % {"k": K, "opc": OPC}


def test_import_yaml_at_start(tmp):
    path = os.path.join(tmp, "subscribers.yaml")
    with open(path, "w") as f:
        f.write(YAML_IMPORT)
    with harness.Hss(tmp, import_file=path) as hss:
        page = expect(hss.api("GET", "/api/v1/subscribers"), 200)
        check(page["subscribers"] == ["henry", "iris"], page)
        henry = expect(hss.api("GET", "/api/v1/subscribers/henry"), 200)
        check(henry["impis"][0]["aka"] is True and henry["impis"][0]["digest"] is False, henry["impis"])
        iris = expect(hss.api("GET", "/api/v1/identities/sip:iris@ims.lab"), 200)
        check(iris["subscriber"] == "iris", iris)
        # a change made through the API, then a restart: the file wins again (idempotent import)
        mod = {"id": "henry",
               "impis": [{"impi": "henry@ims.lab", "auth_schemes": ["aka"], "k": K, "opc": OPC,
                          "amf": "8000"}],
               "impus": [{"impu": "sip:henry@ims.lab", "irs": 1, "service_profile": "default",
                          "barred": True}],
               "service_profiles": [{"name": "default", "ifc": []}]}
        expect(hss.api("PUT", "/api/v1/subscribers/henry", mod), 200)
        hss.restart()
        page = expect(hss.api("GET", "/api/v1/subscribers"), 200)
        check(page["count"] == 2, page)
        again = expect(hss.api("GET", "/api/v1/subscribers/henry"), 200)
        check(again["impus"][0]["barred"] is False, "import did not replace: %r" % again["impus"])


def test_import_json_at_start(tmp):
    path = os.path.join(tmp, "subscribers.json")
    with open(path, "w") as f:
        json.dump({"subscribers": [subscriber("jack"), subscriber("kate")]}, f)
    with harness.Hss(tmp, import_file=path) as hss:
        page = expect(hss.api("GET", "/api/v1/subscribers"), 200)
        check(page["subscribers"] == ["jack", "kate"], page)


def test_bad_import_exits_2(tmp):
    path = os.path.join(tmp, "subscribers.yaml")
    bad = YAML_IMPORT.replace('k: "%s"' % K, 'k: "00112233"')
    check(bad != YAML_IMPORT, "fixture did not change")
    with open(path, "w") as f:
        f.write(bad)
    hss = harness.Hss(tmp, import_file=path, start=False)
    hss.spawn()
    rc = hss.wait(10)
    log = hss.log()
    check(rc == 2, "exit code %r, log:\n%s" % (rc, log))
    check("subscribers.yaml" in log and "subscribers[0].impis[0].k" in log,
          "message does not name the file and field:\n%s" % log)

    # a YAML syntax error names the line
    with open(path, "w") as f:
        f.write("subscribers:\n  - id: x\n   bad: [\n")
    hss = harness.Hss(tmp, import_file=path, start=False)
    hss.spawn()
    rc = hss.wait(10)
    check(rc == 2, "syntax error: exit code %r, log:\n%s" % (rc, hss.log()))
    check("subscribers.yaml:3" in hss.log(), "no line number:\n%s" % hss.log())


def test_imsctl(tmp):
    check(os.access(harness.IMSCTL_BIN, os.X_OK), "no imsctl at %s" % harness.IMSCTL_BIN)
    path = os.path.join(tmp, "liam.json")
    with open(path, "w") as f:
        json.dump(subscriber("liam"), f)
    with harness.Hss(tmp) as hss:
        r = hss.imsctl("create", path)
        check(r.returncode == 0, "create: %d %s %s" % (r.returncode, r.stdout, r.stderr))
        check(json.loads(r.stdout)["id"] == "liam", r.stdout)
        r = hss.imsctl("create", path)
        check(r.returncode == 1 and r.stderr.strip(), "duplicate create: %d %r" % (r.returncode, r.stderr))

        r = hss.imsctl("list")
        check(r.returncode == 0 and json.loads(r.stdout)["subscribers"] == ["liam"], r.stdout + r.stderr)
        r = hss.imsctl("get", "liam")
        check(r.returncode == 0 and json.loads(r.stdout)["id"] == "liam", r.stdout + r.stderr)
        r = hss.imsctl("lookup", "sip:liam@ims.lab")
        check(r.returncode == 0 and json.loads(r.stdout)["subscriber"] == "liam", r.stdout + r.stderr)

        sub = subscriber("liam")
        sub["impus"][0]["display_name"] = "Liam N."
        with open(path, "w") as f:
            json.dump(sub, f)
        r = hss.imsctl("update", "liam", path)
        check(r.returncode == 0 and json.loads(r.stdout)["impus"][0]["display_name"] == "Liam N.",
              r.stdout + r.stderr)

        bulk = os.path.join(tmp, "bulk.json")
        with open(bulk, "w") as f:
            json.dump({"subscribers": [sub, subscriber("mia")]}, f)
        r = hss.imsctl("import", bulk)
        check(r.returncode == 0, "import: %s %s" % (r.stdout, r.stderr))
        summary = json.loads(r.stdout)
        check(summary == {"created": ["mia"], "updated": ["liam"]}, summary)

        r = hss.imsctl("get", "nobody")
        check(r.returncode == 1 and "no subscriber nobody" in r.stderr, "get nobody: %d %r"
              % (r.returncode, r.stderr))
        r = hss.imsctl("delete", "liam")
        check(r.returncode == 0 and r.stdout == "", "delete: %d %r %r" % (r.returncode, r.stdout, r.stderr))
        r = hss.imsctl("delete", "liam")
        check(r.returncode == 1, "second delete: %d" % r.returncode)
        r = hss.imsctl("--api", hss.base, "lookup", "liam@ims.lab")
        check(r.returncode == 1, "lookup after delete: %d" % r.returncode)

        r = hss.imsctl("frobnicate")
        check(r.returncode == 2, "usage error: %d" % r.returncode)
        r = hss.imsctl("get")
        check(r.returncode == 2, "missing argument: %d" % r.returncode)
        r = hss.imsctl("create", os.path.join(tmp, "missing.json"))
        check(r.returncode == 2, "missing file: %d" % r.returncode)
    # the hss is stopped: connection error
    r = hss.imsctl("list")
    check(r.returncode == 2 and r.stderr.strip(), "connection error: %d %r" % (r.returncode, r.stderr))


if __name__ == "__main__":
    harness.main()
