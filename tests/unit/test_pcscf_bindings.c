/*
 * test_pcscf_bindings: the P-CSCF's registration bindings (pcscf_bindings.c) — create, refresh and
 * remove from REGISTER results, the lookups used for routing (by IMPU + source, by source with and
 * without identity, by contact), reg-event driven changes and expiry; and that the indexes stay
 * right when thousands of UEs share one source address:port (as SIPp sends them).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "pcscf_bindings.h"

typedef struct {
    int removed;
    char last[128];
} watcher;

static void on_removed(void *arg, const char *impu, const pcscf_addr *src)
{
    watcher *w = arg;
    (void)src;
    w->removed++;
    snprintf(w->last, sizeof(w->last), "%s", impu);
}

static pcscf_addr addr(const char *host, unsigned port)
{
    pcscf_addr a = { .port = port };
    snprintf(a.host, sizeof(a.host), "%s", host);
    snprintf(a.transport, sizeof(a.transport), "udp");
    return a;
}

/* Registers impu from src with one contact and the set {impu, tel}. */
static int reg(pcscf_bindings *s, const char *impu, const char *tel, pcscf_addr src, const char *contact,
               int64_t expires, int64_t now)
{
    const char *impus[] = { impu, tel };
    const char *route[] = { "sip:orig@scscf.ims.lab;lr" };
    pcscf_contact c = { .uri = (char *)contact, .expires = expires };
    pcscf_binding_update u = { .impu = impu, .source = &src, .impus = impus, .n_impus = tel ? 2 : 1,
                               .service_route = route, .n_service_route = 1, .replace_route = true,
                               .contacts = &c, .n_contacts = 1 };
    return pcscf_bindings_update(s, &u, now);
}

static void test_lifecycle_and_lookups(void **state)
{
    (void)state;
    watcher w = { 0 };
    pcscf_bindings *s = pcscf_bindings_new(on_removed, &w);
    assert_non_null(s);
    pcscf_addr a1 = addr("10.0.0.1", 5060), a2 = addr("10.0.0.2", 5070);

    assert_int_equal(reg(s, "sip:alice@ims.lab", "tel:+15550001", a1, "sip:alice@10.0.0.1:5060", 100, 0),
                     PCSCF_BINDING_CREATED);
    assert_int_equal(reg(s, "sip:bob@ims.lab", NULL, a2, "sip:bob@10.0.0.2:5070", 100, 0), PCSCF_BINDING_CREATED);
    assert_int_equal(reg(s, "sip:alice@ims.lab", "tel:+15550001", a1, "sip:alice@10.0.0.1:5060", 200, 0),
                     PCSCF_BINDING_UPDATED);
    assert_int_equal(pcscf_bindings_count(s), 2);

    /* scheme and host case-insensitive, user part not (RFC 3261 §19.1.4, common/ims_identity) */
    const pcscf_binding *b = pcscf_bindings_get(s, "SIP:alice@IMS.LAB", &a1);
    assert_non_null(b);
    assert_null(pcscf_bindings_get(s, "sip:ALICE@ims.lab", &a1));
    assert_int_equal(pcscf_binding_expires(b), 200);
    assert_string_equal(pcscf_binding_default_identity(b), "sip:alice@ims.lab");
    assert_null(pcscf_bindings_get(s, "sip:alice@ims.lab", &a2));

    /* by flow: identity from the set, any identity of the same flow; another port of the same
     * address is another flow, whatever identity it claims (TS 24.229 §5.2.2.1) */
    assert_ptr_equal(pcscf_bindings_by_flow(s, &a1, "tel:+15550001"), b);
    assert_ptr_equal(pcscf_bindings_by_flow(s, &a1, NULL), b);
    pcscf_addr a1tcp = addr("10.0.0.1", 40000);
    assert_null(pcscf_bindings_by_flow(s, &a1tcp, "sip:alice@ims.lab"));
    assert_null(pcscf_bindings_by_flow(s, &a1tcp, "sip:bob@ims.lab"));
    pcscf_addr other = addr("10.0.0.9", 5060);
    assert_null(pcscf_bindings_by_flow(s, &other, "sip:alice@ims.lab"));

    /* by contact: default port and host case do not matter, the user does */
    assert_ptr_equal(pcscf_bindings_by_contact(s, "sip:alice@10.0.0.1", 10), b);
    assert_ptr_equal(pcscf_bindings_by_contact(s, "sip:alice@10.0.0.1:5060;transport=udp", 10), b);
    assert_null(pcscf_bindings_by_contact(s, "sip:ALICE@10.0.0.1", 10));
    assert_null(pcscf_bindings_by_contact(s, "sip:alice@10.0.0.1", 300));        /* expired by then */
    assert_true(pcscf_bindings_has_impu(s, "sip:bob@ims.lab"));
    assert_false(pcscf_bindings_has_impu(s, "tel:+15550001"));                    /* set, not primary */

    /* reg event: a contact shortened, then the set member terminated, then the AoR */
    assert_int_equal(pcscf_bindings_set_contact(s, "tel:+15550001", "sip:alice@10.0.0.1:5060", 50, 0), 1);
    assert_int_equal(pcscf_binding_expires(pcscf_bindings_get(s, "sip:alice@ims.lab", &a1)), 50);
    assert_int_equal(pcscf_bindings_terminate_aor(s, "tel:+15550001"), 1);
    assert_null(pcscf_bindings_by_flow(s, &a1tcp, "tel:+15550001"));
    assert_non_null(pcscf_bindings_get(s, "sip:alice@ims.lab", &a1));
    assert_int_equal(pcscf_bindings_terminate_aor(s, "sip:alice@ims.lab"), 1);
    assert_int_equal(w.removed, 1);
    assert_string_equal(w.last, "sip:alice@ims.lab");
    assert_null(pcscf_bindings_by_contact(s, "sip:alice@10.0.0.1", 10));
    assert_null(pcscf_bindings_by_flow(s, &a1, NULL));

    /* expiry removes bob; de-registration of a binding that is gone is NONE */
    assert_int_equal(pcscf_bindings_expire(s, 100), 1);
    assert_int_equal(pcscf_bindings_count(s), 0);
    assert_int_equal(reg(s, "sip:bob@ims.lab", NULL, a2, "sip:bob@10.0.0.2:5070", 0, 200), PCSCF_BINDING_NONE);
    pcscf_bindings_free(s);
}

/* Many UEs behind one address:port (SIPp): every lookup still finds the right binding, and the
 * source index survives removals from the middle, the head and the tail of its list. */
static void test_shared_source(void **state)
{
    (void)state;
    enum { N = 5000 };
    watcher w = { 0 };
    pcscf_bindings *s = pcscf_bindings_new(on_removed, &w);
    pcscf_addr sipp = addr("127.0.0.1", 5060);
    char impu[64], tel[64], contact[64];
    for (int i = 0; i < N; i++) {
        snprintf(impu, sizeof(impu), "sip:u%d@ims.lab", i);
        snprintf(tel, sizeof(tel), "tel:+1555%06d", i);
        snprintf(contact, sizeof(contact), "sip:u%d@127.0.0.1:5060", i);
        assert_int_equal(reg(s, impu, tel, sipp, contact, 100 + i % 2, 0), PCSCF_BINDING_CREATED);
    }
    assert_int_equal(pcscf_bindings_count(s), N);
    for (int i = 0; i < N; i += 97) {
        snprintf(impu, sizeof(impu), "sip:u%d@ims.lab", i);
        snprintf(tel, sizeof(tel), "tel:+1555%06d", i);
        snprintf(contact, sizeof(contact), "sip:u%d@127.0.0.1", i);
        const pcscf_binding *b = pcscf_bindings_by_flow(s, &sipp, tel);
        assert_non_null(b);
        assert_string_equal(b->impu, impu);
        assert_ptr_equal(pcscf_bindings_by_contact(s, contact, 1), b);
    }
    /* every even one expires (middle, head and tail of the shared source list) */
    assert_int_equal(pcscf_bindings_expire(s, 100), N / 2);
    assert_int_equal(w.removed, N / 2);
    for (int i = 0; i < N; i++) {
        snprintf(tel, sizeof(tel), "tel:+1555%06d", i);
        const pcscf_binding *b = pcscf_bindings_by_flow(s, &sipp, tel);
        assert_non_null(b);   /* rule 2 (same address:port) always finds one */
        snprintf(impu, sizeof(impu), "sip:u%d@ims.lab", i);
        if (i % 2)
            assert_string_equal(b->impu, impu);
        assert_int_equal(pcscf_bindings_has_impu(s, impu), i % 2);
    }
    assert_int_equal(pcscf_bindings_expire(s, 101), N / 2);
    assert_null(pcscf_bindings_by_flow(s, &sipp, NULL));
    pcscf_bindings_free(s);
}

/* Sec-agree re-authentication moves a UE's registrations from its old SA flow to the new one
 * (pcscf_bindings_move_flow): contacts kept, every index follows, nothing of the old flow left;
 * an identity the new flow holds already is removed from the old one (a removal, reported). */
static void test_move_flow(void **state)
{
    (void)state;
    watcher w = { 0 };
    pcscf_bindings *s = pcscf_bindings_new(on_removed, &w);
    pcscf_addr old = addr("10.77.1.2", 6100), new_flow = addr("10.77.1.2", 6102), other = addr("10.77.1.3", 6100);
    snprintf(old.transport, sizeof(old.transport), "sa");
    snprintf(new_flow.transport, sizeof(new_flow.transport), "sa");
    snprintf(other.transport, sizeof(other.transport), "sa");
    assert_int_equal(reg(s, "sip:alice@ims.lab", "tel:+1", old, "sip:alice@10.77.1.2:6101", 100, 0),
                     PCSCF_BINDING_CREATED);
    assert_int_equal(reg(s, "sip:alice2@ims.lab", NULL, old, "sip:alice2@10.77.1.2:6101", 100, 0),
                     PCSCF_BINDING_CREATED);
    assert_int_equal(reg(s, "sip:carol@ims.lab", NULL, other, "sip:carol@10.77.1.3:6101", 100, 0),
                     PCSCF_BINDING_CREATED);
    /* alice2 registered over the new flow already (its REGISTER came first): that one stays */
    assert_int_equal(reg(s, "sip:alice2@ims.lab", NULL, new_flow, "sip:alice2@10.77.1.2:6101", 200, 0),
                     PCSCF_BINDING_CREATED);

    assert_int_equal(pcscf_bindings_move_flow(s, &old, &new_flow), 1);
    assert_int_equal(w.removed, 1);
    assert_string_equal(w.last, "sip:alice2@ims.lab");
    assert_int_equal(pcscf_bindings_count(s), 3);
    assert_null(pcscf_bindings_by_flow(s, &old, NULL));
    const pcscf_binding *b = pcscf_bindings_by_flow(s, &new_flow, "tel:+1");
    assert_non_null(b);
    assert_string_equal(b->impu, "sip:alice@ims.lab");
    assert_ptr_equal(pcscf_bindings_get(s, "sip:alice@ims.lab", &new_flow), b);
    assert_ptr_equal(pcscf_bindings_by_contact(s, "sip:alice@10.77.1.2:6101", 1), b);
    assert_int_equal(pcscf_binding_expires(b), 100);
    b = pcscf_bindings_get(s, "sip:alice2@ims.lab", &new_flow);
    assert_non_null(b);
    assert_int_equal(pcscf_binding_expires(b), 200);
    assert_non_null(pcscf_bindings_by_flow(s, &other, NULL));   /* another UE: untouched */
    assert_int_equal(pcscf_bindings_move_flow(s, &old, &new_flow), 0);
    /* the moved binding still expires and reports its new flow */
    assert_int_equal(pcscf_bindings_expire(s, 150), 2);
    assert_null(pcscf_bindings_get(s, "sip:alice@ims.lab", &new_flow));
    pcscf_bindings_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lifecycle_and_lookups),
        cmocka_unit_test(test_shared_source),
        cmocka_unit_test(test_move_flow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
