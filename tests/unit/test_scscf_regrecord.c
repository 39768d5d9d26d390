/*
 * test_scscf_regrecord: the S-CSCF's registration records for the state store
 * (scscf/scscf_regrecord.c): a round trip keeps everything a restarted S-CSCF needs (identities,
 * profile, contacts with Path/Call-ID/CSeq/expiry, reg-event dialogs with version and CSeqs), and
 * hostile or broken records are refused with a reason, never a crash: foreign keys, unknown
 * versions, garbage, header injection (CR/LF, NUL), non-SIP contacts, a subscription to someone
 * else, too many contacts; expiries beyond the configured limits are shortened.
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

#include "scscf_regrecord.h"

#define NOW_MONO 1000
#define NOW_WALL 1700000000
static const scscf_regrecord_limits LIM = { .max_expires = 3600, .max_sub_expires = 3600 };

static void *no_start(void *arg, unsigned ms, void (*fn)(void *), void *fnarg)
{
    (void)arg; (void)ms; (void)fn; (void)fnarg;
    return NULL;
}
static int64_t now_fn(void *arg) { (void)arg; return NOW_MONO; }

static void profile(ims_subscription *sub)
{
    memset(sub, 0, sizeof *sub);
    sub->private_id = strdup("alice@ims.lab");
    sub->n_profiles = 1;
    sub->profiles = calloc(1, sizeof *sub->profiles);
    sub->profiles[0].n_ids = 2;
    sub->profiles[0].ids = calloc(2, sizeof(ims_public_identity));
    sub->profiles[0].ids[0].identity = strdup("sip:alice@ims.lab");
    sub->profiles[0].ids[1].identity = strdup("tel:+15550001");
    sub->profiles[0].subscribed_media_profile_id = -1;
}

typedef struct {
    scscf_regstore *st;
    scscf_reg *reg;
    scscf_regsub sub;
    char *json;
    char *key;
    int64_t ttl;
} fixture;

static void make(fixture *f)
{
    scscf_timer_ops ops = { .start = no_start, .now = now_fn };
    f->st = scscf_regstore_new(&ops, NULL, NULL);
    ims_subscription sub;
    profile(&sub);
    f->reg = scscf_regstore_create(f->st, "alice@ims.lab", &sub, "sip:alice@ims.lab");
    assert_non_null(f->reg);
    scscf_regstore_set_id(f->st, f->reg, 42);
    f->reg->auth_scheme = 2;
    scscf_contact *c = scscf_reg_contact_add(f->st, f->reg, "sip:alice@10.0.0.1:5060;transport=udp");
    scscf_contact_set(&c->params, ";+sip.instance=\"<urn:uuid:1>\"");
    scscf_contact_set(&c->path, "<sip:pcscf.ims.lab:5060;lr>");
    scscf_contact_set(&c->call_id, "reg-1@ue");
    scscf_contact_set(&c->received, "UDP:127.0.0.1:5060");
    c->cseq = 7;
    c->expires_at = NOW_MONO + 600;
    c->event = SCSCF_CEV_REFRESHED;
    c = scscf_reg_contact_add(f->st, f->reg, "sip:alice@10.0.0.2");
    c->expires_at = NOW_MONO + 30;
    c = scscf_reg_contact_add(f->st, f->reg, "sip:gone@10.0.0.3");
    c->terminated = true;   /* on its way out: not stored */
    memset(&f->sub, 0, sizeof f->sub);
    f->sub.aor = "tel:+15550001";
    f->sub.call_id = "sub-1@pcscf";
    f->sub.local_tag = "ltag";
    f->sub.remote_tag = "rtag";
    f->sub.local_uri = "sip:alice@ims.lab";
    f->sub.remote_uri = "sip:pcscf.ims.lab";
    f->sub.target = "sip:pcscf.ims.lab:5060";
    f->sub.routes = "<sip:icscf.ims.lab;lr>";
    f->sub.local_cseq = 5;
    f->sub.remote_cseq = 3;
    f->sub.version = 4;
    f->sub.expires_at = NOW_MONO + 1200;
    f->reg->subs = &f->sub;
    f->json = scscf_regrecord_encode(f->reg, NOW_MONO, NOW_WALL, &f->ttl);
    f->key = scscf_regrecord_key(f->reg);
    assert_non_null(f->json);
    assert_non_null(f->key);
}

static void unmake(fixture *f)
{
    f->reg->subs = NULL;
    scscf_regstore_free(f->st);
    free(f->json);
    free(f->key);
}

static void test_round_trip(void **state)
{
    (void)state;
    fixture f;
    make(&f);
    assert_string_equal(f.key, "reg:sip:alice@ims.lab");
    assert_int_equal(f.ttl, 600 + SCSCF_REGRECORD_GRACE_S);
    scscf_regrecord r;
    char err[256];
    assert_int_equal(scscf_regrecord_decode(f.key, f.json, strlen(f.json), &LIM, NOW_WALL, &r, err, sizeof err), 0);
    assert_string_equal(r.impi, "alice@ims.lab");
    assert_string_equal(r.impu, "sip:alice@ims.lab");
    assert_int_equal(r.id, 42);
    assert_int_equal(r.auth_scheme, 2);
    assert_int_equal(r.profile.n_profiles, 1);
    assert_int_equal(r.profile.profiles[0].n_ids, 2);
    assert_int_equal(r.n_contacts, 2);
    assert_string_equal(r.contacts[0].uri, "sip:alice@10.0.0.1:5060;transport=udp");
    assert_string_equal(r.contacts[0].params, ";+sip.instance=\"<urn:uuid:1>\"");
    assert_string_equal(r.contacts[0].path, "<sip:pcscf.ims.lab:5060;lr>");
    assert_string_equal(r.contacts[0].call_id, "reg-1@ue");
    assert_string_equal(r.contacts[0].received, "UDP:127.0.0.1:5060");
    assert_int_equal(r.contacts[0].cseq, 7);
    assert_int_equal(r.contacts[0].expires, NOW_WALL + 600);
    assert_int_equal(r.contacts[0].event, SCSCF_CEV_REFRESHED);
    assert_int_equal(r.contacts[0].id, 1);
    assert_null(r.contacts[1].path);
    assert_int_equal(r.contacts[1].expires, NOW_WALL + 30);
    assert_int_equal(r.n_subs, 1);
    assert_string_equal(r.subs[0].aor, "tel:+15550001");
    assert_string_equal(r.subs[0].local_tag, "ltag");
    assert_string_equal(r.subs[0].routes, "<sip:icscf.ims.lab;lr>");
    assert_int_equal(r.subs[0].version, 4);
    assert_int_equal(r.subs[0].local_cseq, 5);
    assert_int_equal(r.subs[0].remote_cseq, 3);
    assert_int_equal(r.subs[0].expires_at, NOW_WALL + 1200 > NOW_WALL + 3600 ? NOW_WALL + 3600 : NOW_WALL + 1200);
    scscf_regrecord_free(&r);
    unmake(&f);
}

/* Decodes a copy of the fixture's record after edit(obj) under key; returns the error text. */
static const char *refused(const char *key, void (*edit)(json_object *o), const char *raw)
{
    static char err[256];
    fixture f;
    make(&f);
    char *text = NULL;
    if (raw) {
        text = strdup(raw);
    } else {
        json_object *o = json_tokener_parse(f.json);
        edit(o);
        text = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        json_object_put(o);
    }
    scscf_regrecord r;
    err[0] = '\0';
    int rc = scscf_regrecord_decode(key ? key : f.key, text, strlen(text), &LIM, NOW_WALL, &r, err, sizeof err);
    if (rc == 0) {
        scscf_regrecord_free(&r);
        snprintf(err, sizeof err, "ACCEPTED");
    }
    free(text);
    unmake(&f);
    return err;
}

static json_object *contact0(json_object *o)
{
    json_object *a;
    json_object_object_get_ex(o, "contacts", &a);
    return json_object_array_get_idx(a, 0);
}
static json_object *sub0(json_object *o)
{
    json_object *a;
    json_object_object_get_ex(o, "subs", &a);
    return json_object_array_get_idx(a, 0);
}
static void nothing(json_object *o) { (void)o; }
static void v2(json_object *o) { json_object_object_add(o, "v", json_object_new_int(2)); }
static void other_impu(json_object *o) { json_object_object_add(o, "impu", json_object_new_string("sip:bob@ims.lab")); }
static void crlf_uri(json_object *o)
{
    json_object_object_add(contact0(o), "uri", json_object_new_string("sip:a@b\r\nX-Evil: 1"));
}
static void crlf_path(json_object *o)
{
    json_object_object_add(contact0(o), "path", json_object_new_string("<sip:p;lr>\r\nRoute: <sip:evil>"));
}
static void nul_callid(json_object *o)
{
    json_object_object_add(contact0(o), "callid", json_object_new_string_len("a\0b", 3));
}
static void tel_contact(json_object *o) { json_object_object_add(contact0(o), "uri", json_object_new_string("tel:+1")); }
static void http_target(json_object *o)
{
    json_object_object_add(sub0(o), "target", json_object_new_string("http://evil.example/"));
}
static void foreign_sub(json_object *o)
{
    json_object_object_add(sub0(o), "aor", json_object_new_string("sip:bob@ims.lab"));
}
static void bad_profile(json_object *o) { json_object_object_add(o, "profile", json_object_new_string("<x>")); }
static void no_contacts(json_object *o) { json_object_object_add(o, "contacts", json_object_new_array()); }
static void many_contacts(json_object *o)
{
    json_object *a = json_object_new_array();
    for (int i = 0; i < IMS_REG_MAX_CONTACTS + 1; i++)
        json_object_array_add(a, json_object_get(contact0(o)));
    json_object_object_add(o, "contacts", a);
}
static void string_cseq(json_object *o) { json_object_object_add(contact0(o), "cseq", json_object_new_string("7")); }
static void big_cseq(json_object *o) { json_object_object_add(contact0(o), "cseq", json_object_new_int64(1LL << 33)); }
static void bad_event(json_object *o) { json_object_object_add(contact0(o), "ev", json_object_new_int(99)); }
static void not_in_profile(json_object *o)
{
    json_object_object_add(o, "profile", json_object_new_string(
        "<?xml version=\"1.0\"?><IMSSubscription><PrivateID>alice@ims.lab</PrivateID><ServiceProfile>"
        "<PublicIdentity><Identity>sip:bob@ims.lab</Identity></PublicIdentity></ServiceProfile></IMSSubscription>"));
}

static void test_hostile(void **state)
{
    (void)state;
    assert_string_equal(refused(NULL, nothing, NULL), "ACCEPTED");
    assert_non_null(strstr(refused("reg:sip:mallory@ims.lab", nothing, NULL), "key does not name"));
    assert_non_null(strstr(refused("sub:sip:alice@ims.lab", nothing, NULL), "key does not name"));
    assert_non_null(strstr(refused(NULL, other_impu, NULL), "key does not name"));
    assert_non_null(strstr(refused("reg:sip:bob@ims.lab", other_impu, NULL), "not in its own profile"));
    assert_non_null(strstr(refused(NULL, not_in_profile, NULL), "not in its own profile"));
    assert_non_null(strstr(refused(NULL, v2, NULL), "version 2"));
    assert_non_null(strstr(refused(NULL, crlf_uri, NULL), "control character"));
    assert_non_null(strstr(refused(NULL, crlf_path, NULL), "control character"));
    assert_non_null(strstr(refused(NULL, nul_callid, NULL), "NUL"));
    assert_non_null(strstr(refused(NULL, tel_contact, NULL), "not a SIP URI"));
    assert_non_null(strstr(refused(NULL, http_target, NULL), "not a SIP URI"));
    assert_non_null(strstr(refused(NULL, foreign_sub, NULL), "not an identity of this registration"));
    assert_non_null(strstr(refused(NULL, bad_profile, NULL), "profile:"));
    assert_non_null(strstr(refused(NULL, no_contacts, NULL), "contacts"));
    assert_non_null(strstr(refused(NULL, many_contacts, NULL), "contacts"));
    assert_non_null(strstr(refused(NULL, string_cseq, NULL), "cseq"));
    assert_non_null(strstr(refused(NULL, big_cseq, NULL), "out of range"));
    assert_non_null(strstr(refused(NULL, bad_event, NULL), "out of range"));
    assert_non_null(strstr(refused(NULL, NULL, "{not json"), "not JSON"));
    assert_non_null(strstr(refused(NULL, NULL, "[1,2]"), "not a JSON object"));
    assert_non_null(strstr(refused(NULL, NULL, "{\"v\":1} trailing"), "not JSON"));
    assert_non_null(strstr(refused(NULL, NULL, ""), "not JSON"));
    assert_non_null(strstr(refused(NULL, NULL, "null"), "not"));
}

static void far_future(json_object *o)
{
    json_object_object_add(contact0(o), "exp", json_object_new_int64((int64_t)NOW_WALL + 10 * 365 * 86400));
    json_object_object_add(sub0(o), "exp", json_object_new_int64((int64_t)NOW_WALL + 10 * 365 * 86400));
}

static void test_clamped(void **state)
{
    (void)state;
    fixture f;
    make(&f);
    json_object *o = json_tokener_parse(f.json);
    far_future(o);
    const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
    scscf_regrecord r;
    char err[256];
    assert_int_equal(scscf_regrecord_decode(f.key, text, strlen(text), &LIM, NOW_WALL, &r, err, sizeof err), 0);
    assert_int_equal(r.contacts[0].expires, NOW_WALL + LIM.max_expires);
    assert_int_equal(r.subs[0].expires_at, NOW_WALL + LIM.max_sub_expires);
    scscf_regrecord_free(&r);
    json_object_put(o);
    unmake(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_hostile),
        cmocka_unit_test(test_clamped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
