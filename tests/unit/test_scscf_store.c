/*
 * test_scscf_store: the S-CSCF's state outside the SIP loop — the string map, the registration
 * store (implicit registration set from User-Data, index, contacts, expiry timer through fake
 * timer ops), the challenge table (AKA and digest verification, nonce-count replay, mismatch,
 * expiry sweep, spare vectors) and the reginfo document (RFC 3680, checked with libxml2).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/su_alloc.h>

#include "ims_aka.h"
#include "ims_strbuf.h"
#include "scscf_auth.h"
#include "scscf_reginfo.h"
#include "scscf_regstore.h"
#include "scscf_util.h"

/* ---------- string map ---------- */

static int count_and_delete_odd(void *arg, const char *key, void *val)
{
    ims_map *m = arg;
    (void)val;
    int n = atoi(key + 1);
    if (n % 2)
        ims_map_del(m, key);   /* deleting the visited entry is allowed */
    return 0;
}

static void test_map(void **state)
{
    (void)state;
    ims_map *m = ims_map_new();
    assert_non_null(m);
    char key[32];
    for (intptr_t i = 0; i < 1000; i++) {
        snprintf(key, sizeof key, "k%ld", (long)i);
        assert_int_equal(ims_map_put(m, key, (void *)(i + 1)), 0);
    }
    assert_int_equal(ims_map_count(m), 1000);
    assert_ptr_equal(ims_map_get(m, "k500"), (void *)501);
    assert_int_equal(ims_map_put(m, "k500", (void *)7), 0);   /* replace */
    assert_int_equal(ims_map_count(m), 1000);
    assert_ptr_equal(ims_map_get(m, "k500"), (void *)7);
    assert_null(ims_map_get(m, "nope"));
    ims_map_foreach(m, count_and_delete_odd, m);
    assert_int_equal(ims_map_count(m), 500);
    assert_null(ims_map_get(m, "k1"));
    assert_non_null(ims_map_get(m, "k2"));
    assert_ptr_equal(ims_map_del(m, "k2"), (void *)3);
    assert_null(ims_map_del(m, "k2"));
    ims_map_free(m);
}

static void test_param_and_buf(void **state)
{
    (void)state;
    const char *params[] = { "username=\"alice@ims.lab\"", "nc=00000001", "realm = \"a\\\"b\"", "stale", NULL };
    char buf[64];
    assert_string_equal(scscf_param(params, "username", buf, sizeof buf), "alice@ims.lab");
    assert_string_equal(scscf_param(params, "NC", buf, sizeof buf), "00000001");
    assert_string_equal(scscf_param(params, "realm", buf, sizeof buf), "a\"b");
    assert_null(scscf_param(params, "stale", buf, sizeof buf));   /* no value */
    assert_null(scscf_param(params, "user", buf, sizeof buf));    /* prefix is not a match */
    char tiny[4];
    assert_null(scscf_param(params, "username", tiny, sizeof tiny));

    ims_strbuf b = { 0 };
    ims_strbuf_printf(&b, "<a x=\"");
    ims_strbuf_xml(&b, "<&>\"'");
    ims_strbuf_printf(&b, "\"/>");
    char *s = ims_strbuf_take(&b);
    assert_string_equal(s, "<a x=\"&lt;&amp;&gt;&quot;&apos;\"/>");
    free(s);
    char *e = ims_strbuf_take(&b);
    assert_string_equal(e, "");
    free(e);
}

/* ---------- registration store with a fake clock ---------- */

static int64_t g_now = 1000;
static void (*g_fn)(void *);
static void *g_fnarg;
static unsigned g_ms;
static int g_started, g_cancelled;

static void *fake_start(void *arg, unsigned ms, void (*fn)(void *), void *fnarg)
{
    (void)arg;
    g_fn = fn;
    g_fnarg = fnarg;
    g_ms = ms;
    g_started++;
    return (void *)(intptr_t)g_started;
}

static void fake_cancel(void *arg, void *timer)
{
    (void)arg;
    (void)timer;
    g_cancelled++;
    g_fn = NULL;
}

static int64_t fake_now(void *arg)
{
    (void)arg;
    return g_now;
}

static int g_expired;
static void on_expiry(void *arg, scscf_reg *reg)
{
    scscf_regstore *st = arg;
    g_expired++;
    scscf_contact *c = reg->contacts;
    while (c) {
        scscf_contact *next = c->next;
        if (c->expires_at <= g_now)
            scscf_reg_contact_remove(st, reg, c);
        c = next;
    }
    if (!reg->contacts)
        scscf_regstore_remove(st, reg);
    else
        scscf_regstore_touch(st, reg);
}

static void profile(ims_subscription *sub)
{
    memset(sub, 0, sizeof *sub);
    sub->private_id = strdup("alice@ims.lab");
    sub->n_profiles = 2;
    sub->profiles = calloc(2, sizeof *sub->profiles);
    sub->profiles[0].n_ids = 2;
    sub->profiles[0].ids = calloc(2, sizeof(ims_public_identity));
    sub->profiles[0].ids[0].identity = strdup("tel:+15550001");
    sub->profiles[0].ids[1].identity = strdup("sip:alice@IMS.lab");
    sub->profiles[0].subscribed_media_profile_id = -1;
    sub->profiles[1].n_ids = 1;
    sub->profiles[1].ids = calloc(1, sizeof(ims_public_identity));
    sub->profiles[1].ids[0].identity = strdup("sip:alice-barred@ims.lab");
    sub->profiles[1].ids[0].barred = true;
    sub->profiles[1].subscribed_media_profile_id = -1;
}

static void test_identity_key(void **state)
{
    (void)state;
    char k[128];
    scscf_identity_key("SIP:Alice@IMS.Lab;user=phone", k, sizeof k);
    assert_string_equal(k, "sip:Alice@ims.lab");
    scscf_identity_key("<sip:bob@Example.COM:5060>", k, sizeof k);
    assert_string_equal(k, "sip:bob@example.com:5060");
    scscf_identity_key("tel:+1555;phone-context=x", k, sizeof k);
    assert_string_equal(k, "tel:+1555");
    scscf_identity_key(NULL, k, sizeof k);
    assert_string_equal(k, "");
}

static void test_regstore_empty(void **state)
{
    (void)state;
    scscf_timer_ops ops = { .start = fake_start, .cancel = fake_cancel, .now = fake_now, .arg = NULL };
    scscf_regstore *st = scscf_regstore_new(&ops, on_expiry, NULL);
    assert_non_null(st);
    assert_null(scscf_regstore_find(st, "sip:alice@ims.lab"));
    assert_int_equal(scscf_regstore_regs(st), 0);
    scscf_regstore_remove(st, NULL);
    scscf_regstore_free(st);
    scscf_regstore_free(NULL);
}

static scscf_regstore *g_st;
static void on_expiry_g(void *arg, scscf_reg *reg)
{
    (void)arg;
    on_expiry(g_st, reg);
}

static void test_regstore_irs_contacts_expiry(void **state)
{
    (void)state;
    scscf_timer_ops ops = { .start = fake_start, .cancel = fake_cancel, .now = fake_now, .arg = NULL };
    g_st = scscf_regstore_new(&ops, on_expiry_g, NULL);
    assert_non_null(g_st);
    ims_subscription sub;
    profile(&sub);
    scscf_reg *reg = scscf_regstore_create(g_st, "alice@ims.lab", &sub, "sip:alice@ims.lab");
    assert_non_null(reg);
    assert_null(sub.profiles);   /* moved */
    /* IRS: the registered IMPU first (matched case-insensitively on the host), then the others */
    assert_int_equal(reg->n_impus, 3);
    assert_string_equal(reg->impus[0].uri, "sip:alice@ims.lab");
    assert_string_equal(reg->impus[1].uri, "tel:+15550001");
    assert_string_equal(reg->impus[2].uri, "sip:alice-barred@ims.lab");
    assert_true(reg->impus[2].barred);
    assert_int_equal(scscf_regstore_impus(g_st), 3);
    assert_ptr_equal(scscf_regstore_find(g_st, "tel:+15550001"), reg);
    assert_ptr_equal(scscf_regstore_find(g_st, "<sip:alice@IMS.LAB>"), reg);
    assert_null(scscf_regstore_find(g_st, "sip:bob@ims.lab"));
    assert_true(scscf_reg_has_impu(reg, "sip:alice-barred@ims.lab"));
    const ims_service_profile *sp = scscf_reg_service_profile(reg, "sip:alice-barred@ims.lab");
    assert_non_null(sp);
    assert_true(sp->ids[0].barred);

    /* contacts: RFC 3261 URI comparison (host case, default port is not the same as 5060...) */
    scscf_contact *c1 = scscf_reg_contact_add(g_st, reg, "sip:alice@10.0.0.1:5060;transport=udp");
    scscf_contact *c2 = scscf_reg_contact_add(g_st, reg, "sip:alice@10.0.0.2");
    assert_non_null(c1);
    assert_non_null(c2);
    assert_ptr_equal(scscf_reg_contact_find(reg, "sip:alice@10.0.0.1:5060;TRANSPORT=UDP"), c1);
    assert_ptr_equal(scscf_reg_contact_find(reg, "sip:alice@10.0.0.2"), c2);
    assert_null(scscf_reg_contact_find(reg, "sip:alice@10.0.0.3"));
    assert_int_equal(scscf_contact_set(&c1->call_id, "cid"), 0);
    c1->expires_at = g_now + 600;
    c2->expires_at = g_now + 60;
    assert_int_equal(scscf_reg_contact_count(reg), 2);
    assert_int_equal(scscf_regstore_contacts(g_st), 2);

    /* one timer per registration, at the earliest contact */
    g_started = g_cancelled = 0;
    scscf_regstore_touch(g_st, reg);
    assert_int_equal(g_started, 1);
    assert_true(g_ms >= 60000 && g_ms < 61000);
    scscf_regstore_touch(g_st, reg);       /* unchanged: no new timer */
    assert_int_equal(g_started, 1);

    g_now += 60;
    void (*fn)(void *) = g_fn;
    g_fn = NULL;
    fn(g_fnarg);                           /* c2 expires, timer re-armed for c1 */
    assert_int_equal(g_expired, 1);
    assert_int_equal(scscf_reg_contact_count(reg), 1);
    assert_int_equal(g_started, 2);
    assert_true(g_ms >= 540000 && g_ms < 541000);

    /* a profile update re-derives the set and the index */
    profile(&sub);
    free(sub.profiles[1].ids[0].identity);
    sub.profiles[1].ids[0].identity = strdup("sip:alice-new@ims.lab");
    sub.profiles[1].ids[0].barred = false;
    assert_int_equal(scscf_regstore_set_profile(g_st, reg, &sub, "sip:alice@ims.lab"), 0);
    assert_null(scscf_regstore_find(g_st, "sip:alice-barred@ims.lab"));
    assert_ptr_equal(scscf_regstore_find(g_st, "sip:alice-new@ims.lab"), reg);
    assert_int_equal(scscf_regstore_impus(g_st), 3);

    g_now += 600;
    fn = g_fn;
    g_fn = NULL;
    fn(g_fnarg);                           /* last contact: the callback removes the reg */
    assert_int_equal(scscf_regstore_regs(g_st), 0);
    assert_int_equal(scscf_regstore_impus(g_st), 0);
    assert_int_equal(scscf_regstore_contacts(g_st), 0);
    assert_null(scscf_regstore_find(g_st, "tel:+15550001"));

    /* freeing a store with live registrations cancels their timers */
    profile(&sub);
    reg = scscf_regstore_create(g_st, "alice@ims.lab", &sub, "tel:+15550001");
    assert_string_equal(reg->impus[0].uri, "tel:+15550001");
    c1 = scscf_reg_contact_add(g_st, reg, "sip:alice@10.0.0.1");
    c1->expires_at = g_now + 100;
    scscf_regstore_touch(g_st, reg);
    g_cancelled = 0;
    scscf_regstore_free(g_st);
    assert_int_equal(g_cancelled, 1);
    g_st = NULL;
}

/* ---------- challenges ---------- */

static const sip_authorization_t *no_au;

static void make_cred(scscf_credentials *cr, const char *user, const char *realm, const char *nonce,
                      const char *nc, const char ha1[33])
{
    memset(cr, 0, sizeof *cr);
    snprintf(cr->username, sizeof cr->username, "%s", user);
    snprintf(cr->realm, sizeof cr->realm, "%s", realm);
    snprintf(cr->nonce, sizeof cr->nonce, "%s", nonce);
    snprintf(cr->uri, sizeof cr->uri, "sip:ims.lab");
    snprintf(cr->qop, sizeof cr->qop, "auth");
    snprintf(cr->nc, sizeof cr->nc, "%s", nc);
    snprintf(cr->cnonce, sizeof cr->cnonce, "0a4f113b");
    ims_digest_response(ha1, nonce, nc, cr->cnonce, "auth", "REGISTER", cr->uri, "", 0, cr->response);
}

static void nonce_of(const char *hdr, char *out, size_t len)
{
    const char *p = strstr(hdr, "nonce=\"");
    assert_non_null(p);
    p += 7;
    size_t n = strcspn(p, "\"");
    assert_true(n < len);
    memcpy(out, p, n);
    out[n] = '\0';
}

static void test_auth_aka(void **state)
{
    (void)state;
    (void)no_au;
    scscf_auth *a = scscf_auth_new(60);
    scscf_aka_vector v;
    memset(&v, 0, sizeof v);
    for (int i = 0; i < 16; i++) {
        v.rand[i] = (uint8_t)i;
        v.autn[i] = (uint8_t)(0x10 + i);
        v.ck[i] = 0xc0;
        v.ik[i] = 0x1c;
    }
    memcpy(v.xres, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
    v.xres_len = 8;
    char hdr[600], nonce[128];
    assert_int_equal(scscf_auth_challenge_aka(a, "alice@ims.lab", "sip:alice@ims.lab", "ims.lab", &v, false, 100,
                                              hdr, sizeof hdr), 0);
    assert_non_null(strstr(hdr, "algorithm=AKAv1-MD5"));
    assert_non_null(strstr(hdr, "ck=\"c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0\""));
    assert_non_null(strstr(hdr, "ik=\"1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c\""));
    assert_null(strstr(hdr, "stale"));
    nonce_of(hdr, nonce, sizeof nonce);
    /* nonce = base64(RAND || AUTN) (RFC 3310 §3.2) */
    uint8_t raw[64];
    assert_int_equal(ims_base64_decode(nonce, raw, sizeof raw), 32);
    assert_memory_equal(raw, v.rand, 16);
    assert_memory_equal(raw + 16, v.autn, 16);

    scscf_challenge *c = scscf_auth_find(a, nonce);
    assert_non_null(c);
    assert_int_equal(c->expires_at, 160);
    char ha1[33];
    ims_aka_digest_ha1("alice@ims.lab", "ims.lab", v.xres, 8, ha1);
    scscf_credentials cr;
    make_cred(&cr, "alice@ims.lab", "ims.lab", nonce, "00000001", ha1);
    assert_int_equal(scscf_auth_verify(c, &cr, "REGISTER", "", 0), SCSCF_VERIFY_OK);
    /* the same nonce-count again: a replay */
    assert_int_equal(scscf_auth_verify(c, &cr, "REGISTER", "", 0), SCSCF_VERIFY_REPLAY);
    make_cred(&cr, "alice@ims.lab", "ims.lab", nonce, "00000002", ha1);
    assert_int_equal(scscf_auth_verify(c, &cr, "REGISTER", "", 0), SCSCF_VERIFY_OK);
    /* wrong RES */
    char bad[33];
    ims_aka_digest_ha1("alice@ims.lab", "ims.lab", (const uint8_t *)"\0\0\0\0\0\0\0\0", 8, bad);
    make_cred(&cr, "alice@ims.lab", "ims.lab", nonce, "00000003", bad);
    assert_int_equal(scscf_auth_verify(c, &cr, "REGISTER", "", 0), SCSCF_VERIFY_BAD_RESPONSE);
    /* another user, another realm */
    make_cred(&cr, "bob@ims.lab", "ims.lab", nonce, "00000004", ha1);
    assert_int_equal(scscf_auth_verify(c, &cr, "REGISTER", "", 0), SCSCF_VERIFY_MISMATCH);
    make_cred(&cr, "alice@ims.lab", "other.lab", nonce, "00000004", ha1);
    assert_int_equal(scscf_auth_verify(c, &cr, "REGISTER", "", 0), SCSCF_VERIFY_MISMATCH);
    /* malformed: nc not 8 hex digits, no response */
    make_cred(&cr, "alice@ims.lab", "ims.lab", nonce, "1", ha1);
    assert_int_equal(scscf_auth_verify(c, &cr, "REGISTER", "", 0), SCSCF_VERIFY_MALFORMED);
    make_cred(&cr, "alice@ims.lab", "ims.lab", nonce, "00000005", ha1);
    cr.response[0] = '\0';
    assert_int_equal(scscf_auth_verify(c, &cr, "REGISTER", "", 0), SCSCF_VERIFY_MALFORMED);

    /* spares: oldest first */
    scscf_aka_vector s1 = v, s2 = v, out;
    s1.rand[0] = 0xa1;
    s2.rand[0] = 0xa2;
    scscf_auth_keep_spare(a, "alice@ims.lab", &s1);
    scscf_auth_keep_spare(a, "alice@ims.lab", &s2);
    assert_true(scscf_auth_take_spare(a, "alice@ims.lab", &out));
    assert_int_equal(out.rand[0], 0xa1);
    scscf_auth_drop_spares(a, "alice@ims.lab");
    assert_false(scscf_auth_take_spare(a, "alice@ims.lab", &out));

    scscf_auth_forget(a, c);
    assert_null(scscf_auth_find(a, nonce));
    assert_int_equal(scscf_auth_count(a), 0);
    scscf_auth_free(a);
}

static int g_timeouts;
static void on_timeout(void *arg, const scscf_challenge *c)
{
    (void)arg;
    assert_string_equal(c->impu, "sip:bob@ims.lab");
    g_timeouts++;
}

/* integrity-protected="yes" (the P-CSCF's mark, TS 24.229 §5.2.2.1) is read; "no", another value
 * or none is not protected */
static void test_auth_parse_integrity_protected(void **state)
{
    (void)state;
    su_home_t *home = su_home_new(sizeof(su_home_t));
    static const struct { const char *value; bool yes; } cases[] = {
        { "Digest username=\"a@ims.lab\", nonce=\"\", response=\"\", integrity-protected=\"yes\"", true },
        { "Digest username=\"a@ims.lab\", integrity-protected=yes", true },
        { "Digest username=\"a@ims.lab\", integrity-protected=\"no\"", false },
        { "Digest username=\"a@ims.lab\", integrity-protected=\"tls-yes\"", false },
        { "Digest username=\"a@ims.lab\", nonce=\"\"", false },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sip_authorization_t *au = sip_authorization_make(home, cases[i].value);
        scscf_credentials cr;
        assert_non_null(au);
        assert_int_equal(scscf_auth_parse(au, &cr), 0);
        assert_string_equal(cr.username, "a@ims.lab");
        assert_int_equal(cr.integrity_protected, cases[i].yes);
    }
    su_home_unref(home);
}

static void test_auth_digest_and_sweep(void **state)
{
    (void)state;
    scscf_auth *a = scscf_auth_new(60);
    char ha1[33], hdr[400], nonce[128];
    ims_digest_ha1("bob@ims.lab", "ims.lab", "bobpass", 7, ha1);
    assert_int_equal(scscf_auth_challenge_digest(a, "bob@ims.lab", "sip:bob@ims.lab", "ims.lab", "auth", ha1, true, 0,
                                                 hdr, sizeof hdr), 0);
    assert_non_null(strstr(hdr, "algorithm=MD5"));
    assert_non_null(strstr(hdr, "qop=\"auth\""));
    assert_non_null(strstr(hdr, "stale=true"));
    nonce_of(hdr, nonce, sizeof nonce);
    scscf_challenge *c = scscf_auth_find(a, nonce);
    assert_non_null(c);
    scscf_credentials cr;
    make_cred(&cr, "bob@ims.lab", "ims.lab", nonce, "00000001", ha1);
    assert_int_equal(scscf_auth_verify(c, &cr, "REGISTER", "", 0), SCSCF_VERIFY_OK);
    /* a bad HA1 from the HSS is refused */
    assert_int_equal(scscf_auth_challenge_digest(a, "bob@ims.lab", "sip:bob@ims.lab", "ims.lab", "auth", "short",
                                                 false, 0, hdr, sizeof hdr), -1);

    /* sweep: reported once at expiry, forgotten a lifetime later */
    g_timeouts = 0;
    scscf_auth_sweep(a, 59, on_timeout, NULL);
    assert_int_equal(g_timeouts, 0);
    scscf_auth_sweep(a, 60, on_timeout, NULL);
    assert_int_equal(g_timeouts, 1);
    assert_non_null(scscf_auth_find(a, nonce));     /* still known: stale=true for the UE */
    scscf_auth_sweep(a, 100, on_timeout, NULL);
    assert_int_equal(g_timeouts, 1);
    scscf_auth_sweep(a, 120, on_timeout, NULL);
    assert_null(scscf_auth_find(a, nonce));
    assert_int_equal(scscf_auth_count(a), 0);
    scscf_auth_free(a);
}

/* ---------- reginfo document ---------- */

static xmlNode *child(xmlNode *n, const char *name, int index)
{
    for (xmlNode *c = n ? n->children : NULL; c; c = c->next)
        if (c->type == XML_ELEMENT_NODE && strcmp((const char *)c->name, name) == 0 && index-- == 0)
            return c;
    return NULL;
}

static void assert_prop(xmlNode *n, const char *name, const char *want)
{
    xmlChar *v = xmlGetProp(n, (const xmlChar *)name);
    assert_non_null(v);
    assert_string_equal((const char *)v, want);
    xmlFree(v);
}

static void test_reginfo_xml(void **state)
{
    (void)state;
    scscf_timer_ops ops = { .start = fake_start, .cancel = fake_cancel, .now = fake_now, .arg = NULL };
    scscf_regstore *st = scscf_regstore_new(&ops, NULL, NULL);
    ims_subscription sub;
    profile(&sub);
    scscf_reg *reg = scscf_regstore_create(st, "alice@ims.lab", &sub, "sip:alice@ims.lab");
    scscf_contact *c1 = scscf_reg_contact_add(st, reg, "sip:alice@10.0.0.1;a=<&>");
    c1->expires_at = 1300;
    c1->event = SCSCF_CEV_REGISTERED;
    scscf_contact_set(&c1->call_id, "x\"y");
    c1->cseq = 7;
    scscf_contact *c2 = scscf_reg_contact_add(st, reg, "sip:alice@10.0.0.2");
    c2->expires_at = 1010;
    c2->event = SCSCF_CEV_EXPIRED;
    c2->terminated = true;

    char *xml = scscf_reginfo_xml(reg, 4, false, 1000);
    assert_non_null(xml);
    xmlDoc *doc = xmlReadMemory(xml, (int)strlen(xml), "r.xml", NULL, XML_PARSE_NONET);
    assert_non_null(doc);
    xmlNode *root = xmlDocGetRootElement(doc);
    assert_string_equal((const char *)root->name, "reginfo");
    assert_string_equal((const char *)root->ns->href, "urn:ietf:params:xml:ns:reginfo");
    assert_prop(root, "version", "4");
    assert_prop(root, "state", "full");
    /* barred identities are left out: two registration elements */
    xmlNode *r0 = child(root, "registration", 0), *r1 = child(root, "registration", 1);
    assert_non_null(r0);
    assert_non_null(r1);
    assert_null(child(root, "registration", 2));
    assert_prop(r0, "aor", "sip:alice@ims.lab");
    assert_prop(r0, "state", "active");
    assert_prop(r1, "aor", "tel:+15550001");
    xmlNode *k0 = child(r0, "contact", 0), *k1 = child(r0, "contact", 1);
    assert_prop(k0, "state", "active");
    assert_prop(k0, "event", "registered");
    assert_prop(k0, "expires", "300");
    assert_prop(k0, "callid", "x\"y");
    assert_prop(k0, "cseq", "7");
    xmlChar *uri = xmlNodeGetContent(child(k0, "uri", 0));
    assert_string_equal((const char *)uri, "sip:alice@10.0.0.1;a=<&>");
    xmlFree(uri);
    assert_prop(k1, "state", "terminated");
    assert_prop(k1, "event", "expired");
    assert_prop(k1, "expires", "0");   /* explicit, RFC 3680 §5.1 (issue 10) */
    /* contact ids are unique within the document */
    xmlChar *id_a = xmlGetProp(k0, (const xmlChar *)"id");
    xmlChar *id_b = xmlGetProp(child(r1, "contact", 0), (const xmlChar *)"id");
    assert_string_not_equal((const char *)id_a, (const char *)id_b);
    xmlFree(id_a);
    xmlFree(id_b);
    xmlFreeDoc(doc);
    free(xml);

    /* the registration as a whole terminated */
    xml = scscf_reginfo_xml(reg, 5, true, 1000);
    doc = xmlReadMemory(xml, (int)strlen(xml), "r.xml", NULL, XML_PARSE_NONET);
    assert_non_null(doc);
    root = xmlDocGetRootElement(doc);
    assert_prop(child(root, "registration", 0), "state", "terminated");
    assert_prop(child(child(root, "registration", 0), "contact", 0), "state", "terminated");
    assert_prop(child(child(root, "registration", 0), "contact", 0), "expires", "0");
    xmlFreeDoc(doc);
    free(xml);
    scscf_regstore_free(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_map),
        cmocka_unit_test(test_param_and_buf),
        cmocka_unit_test(test_identity_key),
        cmocka_unit_test(test_regstore_empty),
        cmocka_unit_test(test_regstore_irs_contacts_expiry),
        cmocka_unit_test(test_auth_aka),
        cmocka_unit_test(test_auth_parse_integrity_protected),
        cmocka_unit_test(test_auth_digest_and_sweep),
        cmocka_unit_test(test_reginfo_xml),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    xmlCleanupParser();
    return rc;
}
