"""The benchmark subscribers alice0..alice<N-1>: their names, the HSS import document and the SIPp
injection files that register or call with them.

Python 3 standard library only.
"""

import os

from system_lab import lab

DOMAIN = lab.DOMAIN

# One K/OP/AMF for every benchmark subscriber: lab.py's demo keys, which SIPp 3.6.1 can parse
# (no 00/0a/0d/5b/5d bytes, docs/pitfalls.md). Milenage still runs per MAR with a fresh RAND and SQN.
AKA_K, AKA_OP, AKA_AMF = lab.AKA_K, lab.AKA_OP, lab.AKA_AMF


def user_name(i):
    return "alice%d" % i


def subscribers(n):
    """The HSS import document: alice0..alice<n-1>, AKA by default (digest too), one IMPU each."""
    subs = []
    for i in range(n):
        u = user_name(i)
        subs.append({"id": u,
                     "impis": [{"impi": "%s@%s" % (u, DOMAIN), "auth_schemes": ["aka", "digest"],
                                "default_scheme": "aka", "password": "pw-%s" % u,
                                "k": AKA_K, "op": AKA_OP, "amf": AKA_AMF}],
                     "impus": [{"impu": "sip:%s@%s" % (u, DOMAIN), "irs": 1, "service_profile": "default"}],
                     "service_profiles": [{"name": "default"}]})
    return {"subscribers": subs}


def write_injection(path, users, peers=None, auth=True):
    """SIPp injection file, one line per user: user;domain;impi;[authentication ...] and, with
    peers, the callee as field4. SIPp 3.6.1 takes no [fieldN] inside the scenario's
    [authentication] keyword, but a whole [authentication ...] from the injection file works,
    so the username (IMPI) follows the user. auth=False: no [authentication] (plain REGISTER,
    the Kamailio reference; SIPp then never parses AKA keys)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("SEQUENTIAL\n")
        for n, u in enumerate(users):
            impi = "%s@%s" % (u, DOMAIN)
            line = "%s;%s;%s;[authentication username=%s aka_K=0x%s aka_OP=0x%s aka_AMF=0x%s]" % (
                u, DOMAIN, impi, impi, AKA_K, AKA_OP, AKA_AMF) if auth else "%s;%s;%s;-" % (u, DOMAIN, impi)
            if peers is not None:
                line += ";%s" % peers[n]
            f.write(line + "\n")
    return path
