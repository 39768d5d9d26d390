/*
 * Unit tests for ims_identity, the one identity normaliser (RFC 3261 §19.1.4 URI comparison,
 * RFC 3966 tel: numbers, TS 23.003 §13.3-13.4): scheme and host case, user case kept,
 * %-escapes, ports, parameters and headers dropped, tel: separators and phone-context, IPv6
 * hosts, private identities, and input that must be refused; and the HSS side: a database an
 * older HSS wrote (keys with URI parameters or escapes) has its keys rewritten at open.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>
#include <sqlite3.h>

#include "hss_store.h"
#include "hss_subscriber.h"
#include "ims_identity.h"
#include "ims_log.h"

static void norm_is(const char *in, const char *want)
{
    char out[IMS_IDENTITY_MAX];
    if (ims_identity_normalise(in, out, sizeof(out)) != 0)
        fail_msg("refused: %s", in);
    assert_string_equal(out, want);
}

static void refused(const char *in)
{
    char out[IMS_IDENTITY_MAX];
    if (ims_identity_normalise(in, out, sizeof(out)) == 0)
        fail_msg("accepted: %s -> %s", in, out);
}

static void test_case(void **state)
{
    (void)state;
    norm_is("sip:alice@ims.lab", "sip:alice@ims.lab");
    norm_is("SIP:Alice@IMS.Lab", "sip:Alice@ims.lab");
    norm_is("Sips:BOB@Example.COM", "sips:BOB@example.com");
    norm_is("sip:IMS.LAB", "sip:ims.lab");
    assert_true(ims_identity_equal("sip:Alice@IMS.LAB", "sip:Alice@ims.lab"));
    assert_false(ims_identity_equal("sip:Alice@ims.lab", "sip:alice@ims.lab"));
    assert_false(ims_identity_equal("sip:alice@ims.lab", "sips:alice@ims.lab"));
    assert_false(ims_identity_equal("sip:alice@ims.lab", NULL));
    assert_false(ims_identity_equal("garbage", "garbage"));
}

static void test_escapes(void **state)
{
    (void)state;
    norm_is("sip:%61lice@ims.lab", "sip:alice@ims.lab");
    norm_is("sip:%41lice@ims.lab", "sip:Alice@ims.lab");   /* decoded, case then kept */
    norm_is("sip:a%7e%2D@ims.lab", "sip:a~-@ims.lab");
    /* reserved characters are not equivalent to their escapes: kept escaped, hex upper-cased */
    norm_is("sip:a%3bb@ims.lab", "sip:a%3Bb@ims.lab");
    norm_is("sip:a;b@ims.lab", "sip:a;b@ims.lab");
    assert_false(ims_identity_equal("sip:a%3Bb@ims.lab", "sip:a;b@ims.lab"));
    norm_is("sip:a%40b@ims.lab", "sip:a%40b@ims.lab");
    norm_is("sip:a%20b@ims.lab", "sip:a%20b@ims.lab");
    norm_is("sip:a%00@ims.lab", "sip:a%00@ims.lab");
    refused("sip:a%4@ims.lab");
    refused("sip:a%zz@ims.lab");
    refused("sip:a%@ims.lab");
}

static void test_port_params_headers(void **state)
{
    (void)state;
    /* §19.1.4: a default port stated is not the same as no port */
    norm_is("sip:alice@ims.lab:5060", "sip:alice@ims.lab:5060");
    assert_false(ims_identity_equal("sip:alice@ims.lab:5060", "sip:alice@ims.lab"));
    norm_is("sip:alice@ims.lab:05060", "sip:alice@ims.lab:5060");
    norm_is("sip:+15551234@IMS.lab;user=phone", "sip:+15551234@ims.lab");
    norm_is("sip:alice@ims.lab;transport=TCP;lr?Subject=x&Priority=urgent", "sip:alice@ims.lab");
    norm_is("sip:alice@ims.lab?x=y", "sip:alice@ims.lab");
    norm_is("sip:+1555;npdi@Host.NET;user=phone", "sip:+1555;npdi@host.net");
    norm_is("sip:alice:secret@ims.lab", "sip:alice@ims.lab");   /* password dropped */
    refused("sip:alice@ims.lab:");
    refused("sip:alice@ims.lab:70000");
    refused("sip:alice@ims.lab:50a0");
}

static void test_ipv6(void **state)
{
    (void)state;
    norm_is("sip:alice@[::1]", "sip:alice@[::1]");
    norm_is("sip:alice@[0:0:0:0:0:0:0:1]:5062", "sip:alice@[::1]:5062");
    norm_is("sip:alice@[FD00::A]", "sip:alice@[fd00::a]");
    norm_is("sip:[2001:DB8::1];transport=tcp", "sip:[2001:db8::1]");
    refused("sip:alice@[::1");
    refused("sip:alice@[]");
    refused("sip:alice@[zz::1]");
    refused("sip:alice@[::1]x");
}

static void test_tel(void **state)
{
    (void)state;
    norm_is("tel:+15551234", "tel:+15551234");
    norm_is("TEL:+1-555-(123).4", "tel:+15551234");
    norm_is("tel:+1-555-1234;ext=7;isub=9", "tel:+15551234");
    assert_true(ims_identity_equal("tel:+1.555.1234", "tel:+15551234"));
    norm_is("tel:555-1234;phone-context=IMS.Lab", "tel:5551234;phone-context=ims.lab");
    norm_is("tel:5551234;foo=bar;Phone-Context=+1-555", "tel:5551234;phone-context=+1555");
    norm_is("tel:*23#;phone-context=ims.lab", "tel:*23#;phone-context=ims.lab");
    assert_false(ims_identity_equal("tel:5551234;phone-context=a.lab", "tel:5551234;phone-context=b.lab"));
    refused("tel:5551234");                    /* a local number needs its phone-context */
    refused("tel:5551234;phone-context=");
    refused("tel:+");
    refused("tel:+-()");
    refused("tel:+1555x");
    refused("tel:");
}

static void test_bad_input(void **state)
{
    (void)state;
    char out[IMS_IDENTITY_MAX];
    refused("");
    refused("alice@ims.lab");
    refused("ims.lab");
    refused("mailto:alice@ims.lab");
    refused("http://ims.lab");
    refused(":alice@ims.lab");
    refused("sip:");
    refused("sip:@ims.lab");
    refused("sip:alice@");
    refused("sip:alice@;user=phone");
    refused("sip:ali ce@ims.lab");
    refused("sip:alice@ims.lab ");
    refused(" sip:alice@ims.lab");
    refused("sip:alice\t@ims.lab");
    refused("sip:alice\r\n@ims.lab");
    refused("sip:alice@ims\x01.lab");
    refused("sip:ali\xc3\xa9@ims.lab");
    refused("<sip:alice@ims.lab>");
    refused("\"Alice\" <sip:alice@ims.lab>");
    refused("sip:al#ice@ims.lab");
    refused("sip:alice@ims_lab");
    refused("sip:a@b@ims.lab");
    assert_int_equal(ims_identity_normalise(NULL, out, sizeof(out)), -1);
    assert_int_equal(ims_identity_normalise("sip:a@b", NULL, 10), -1);
    assert_int_equal(ims_identity_normalise("sip:a@b", out, 0), -1);

    /* too long for the buffer: refused, never truncated into another identity */
    assert_int_equal(ims_identity_normalise("sip:alice@ims.lab", out, 17), -1);
    assert_int_equal(ims_identity_normalise("sip:alice@ims.lab", out, 18), 0);
    assert_string_equal(out, "sip:alice@ims.lab");
    char big[2 * IMS_IDENTITY_MAX];
    memcpy(big, "sip:", 4);
    memset(big + 4, 'a', sizeof(big) - 4);
    memcpy(big + sizeof(big) - 9, "@ims.lab", 9);
    assert_int_equal(ims_identity_normalise(big, out, sizeof(out)), -1);
    assert_false(ims_identity_equal(big, big));
}

static void test_private(void **state)
{
    (void)state;
    char out[IMS_IDENTITY_MAX];
    assert_int_equal(ims_identity_normalise_private("Alice@IMS.LAB", out, sizeof(out)), 0);
    assert_string_equal(out, "Alice@ims.lab");
    assert_int_equal(ims_identity_normalise_private("a@b@Realm.Lab", out, sizeof(out)), 0);
    assert_string_equal(out, "a@b@realm.lab");
    assert_int_equal(ims_identity_normalise_private("ALICE", out, sizeof(out)), 0);
    assert_string_equal(out, "ALICE");
    assert_int_equal(ims_identity_normalise_private("", out, sizeof(out)), -1);
    assert_int_equal(ims_identity_normalise_private("@ims.lab", out, sizeof(out)), -1);
    assert_int_equal(ims_identity_normalise_private("alice@", out, sizeof(out)), -1);
    assert_int_equal(ims_identity_normalise_private("ali ce@ims.lab", out, sizeof(out)), -1);
    assert_int_equal(ims_identity_normalise_private("alice@ims.lab", out, 13), -1);
    assert_int_equal(ims_identity_normalise_private(NULL, out, sizeof(out)), -1);
}

/* ---------- HSS: keys of an older database (hss_store_rekey.c) ---------- */

static void exec_sql(const char *path, const char *sql)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

static int count_impus(const char *path)
{
    sqlite3 *db;
    sqlite3_stmt *stmt;
    int n = -1;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM impu", -1, &stmt, NULL), SQLITE_OK);
    if (sqlite3_step(stmt) == SQLITE_ROW)
        n = sqlite3_column_int(stmt, 0);
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return n;
}

static void put_subscriber(hss_store *st, const char *id, const char *impu)
{
    char text[512], err[256] = "";
    hss_subscriber s;
    snprintf(text, sizeof(text),
             "{\"id\":\"%s\",\"impis\":[{\"impi\":\"%s@ims.lab\",\"password\":\"x\"}],"
             "\"impus\":[{\"impu\":\"%s\"}]}", id, id, impu);
    json_object *o = json_tokener_parse(text);
    assert_non_null(o);
    if (hss_subscriber_from_json(o, &s, err, sizeof(err)) != 0)
        fail_msg("from_json: %s", err);
    json_object_put(o);
    if (hss_store_put(st, &s, 1, err, sizeof(err)) != HSS_STORE_OK)
        fail_msg("put: %s", err);
    hss_subscriber_free(&s);
}

static void found_as(hss_store *st, const char *impu, const char *id)
{
    hss_subscriber s;
    if (hss_store_find_by_impu(st, impu, &s) != HSS_STORE_OK)
        fail_msg("not found: %s", impu);
    assert_string_equal(s.id, id);
    hss_subscriber_free(&s);
}

/* An older HSS kept URI parameters and escapes in the stored key: opening the file rewrites such
 * keys to the canonical form, so lookups (which drop parameters) find them; a key whose
 * canonical form another row already has is left alone (and warned about). */
static void test_hss_old_keys_rewritten(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_identity.XXXXXX", path[64], err[256] = "", cmd[96];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/hss.db", dir);
    ims_log_set_level(IMS_LOG_ERROR);

    hss_store *st = hss_store_open(path, err, sizeof(err));
    if (!st)
        fail_msg("open: %s", err);
    put_subscriber(st, "bob", "sip:+15550002@ims.lab");
    put_subscriber(st, "carol", "sip:carol@ims.lab");
    put_subscriber(st, "dave", "sip:dave@ims.lab");
    hss_subscriber s;
    assert_int_equal(hss_store_find_by_impu(st, "sip:Carol@ims.lab", &s), HSS_STORE_NOT_FOUND);
    hss_store_close(st);
    /* what an older HSS wrote: parameters and an escape kept; dave twice in two spellings */
    exec_sql(path, "UPDATE impu SET identity = 'sip:+15550002@ims.lab;user=phone'"
                   " WHERE identity = 'sip:+15550002@ims.lab';"
                   "UPDATE impu SET identity = 'sip:%63arol@ims.lab' WHERE identity = 'sip:carol@ims.lab';"
                   "INSERT INTO impu (identity, imsu_id, pos, service_profile)"
                   " SELECT 'sip:dave@ims.lab;transport=udp', imsu_id, 1, service_profile"
                   " FROM impu WHERE identity = 'sip:dave@ims.lab';");

    st = hss_store_open(path, err, sizeof(err));
    if (!st)
        fail_msg("reopen: %s", err);
    found_as(st, "sip:+15550002@ims.lab;user=phone", "bob");
    found_as(st, "sip:+15550002@IMS.LAB", "bob");
    assert_int_equal(hss_store_get(st, "bob", &s), HSS_STORE_OK);
    assert_string_equal(s.impus[0].identity, "sip:+15550002@ims.lab");
    hss_subscriber_free(&s);
    found_as(st, "sip:carol@IMS.LAB", "carol");
    found_as(st, "sip:dave@ims.lab", "dave");
    hss_store_close(st);
    assert_int_equal(count_impus(path), 4);   /* the duplicate left for the operator */

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_case),
        cmocka_unit_test(test_escapes),
        cmocka_unit_test(test_port_params_headers),
        cmocka_unit_test(test_ipv6),
        cmocka_unit_test(test_tel),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_private),
        cmocka_unit_test(test_hss_old_keys_rewritten),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
