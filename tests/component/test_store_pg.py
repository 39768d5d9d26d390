"""The HSS store's unit tests (tests/unit/test_store.c) on a real PostgreSQL server.

test_store runs every backend-neutral case on SQLite as a unit test; here the same binary runs
them again on PostgreSQL (IMS_TEST_PG: a conninfo without dbname, each case makes its own
database), plus the PostgreSQL open failures (bad conninfo, unreachable server, foreign and
newer schema). The server is ours: a cluster in a temporary directory on a free port, stopped at
the end (pgserver.py).
"""

import os
import subprocess

import harness
import pgserver

TEST_STORE = os.path.join(harness.BUILD_DIR, "tests", "unit", "test_store")


def test_store_cases_on_postgresql():
    harness.check(os.access(TEST_STORE, os.X_OK), "no %s (build first)" % TEST_STORE)
    with pgserver.PgServer() as pg:
        env = dict(os.environ, IMS_TEST_PG="host=127.0.0.1 port=%d user=postgres" % pg.port)
        p = subprocess.run([TEST_STORE], env=env, capture_output=True, text=True, timeout=240)
        out = p.stdout + p.stderr
        harness.check(p.returncode == 0, "test_store on PostgreSQL failed:\n%s" % out[-6000:])
        harness.check("[  PASSED  ] 10 test(s)." in out, out[-3000:])
        # The cases really ran on PostgreSQL: their databases hold the HSS schema.
        dbs = pg.psql("postgres", "SELECT datname FROM pg_database WHERE datname LIKE 't\\_%'").stdout
        for name in ("t_rt", "t_sqn", "t_mt", "t_replace"):
            harness.check(name in dbs.split(), "no database %s: %s" % (name, dbs))
        harness.check(pg.psql("t_mt", "SELECT sqn FROM impi").stdout.strip() != "0")


if __name__ == "__main__":
    harness.main()
