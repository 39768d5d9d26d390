/*
 * test_hss_json: the provisioning JSON of a subscription (hss_json*.c): defaults, every validation
 * error class with its JSON path, and identity comparison (RFC 3261 §19.1.4: scheme/host
 * case-insensitive, user part case-sensitive). The store round trip is in test_store.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hss_subscriber.h"
#include "hss_test_data.h"

static void test_json_defaults(void **state)
{
    hss_subscriber s;

    parse_ok("{\"id\":\"d\",\"impis\":[{\"impi\":\"bob@IMS.lab\",\"password\":\"pw\"},"
             "{\"impi\":\"carol\",\"password\":\"pw\"},"
             "{\"impi\":\"dave@ims.lab\",\"k\":\"" K_HEX "\",\"op\":\"" OPC_HEX "\"},"
             "{\"impi\":\"eve@ims.lab\",\"auth_schemes\":[\"digest\",\"aka\"],\"k\":\"" K_HEX
             "\",\"opc\":\"" OPC_HEX "\",\"ha1\":\"" K_HEX "\"}],"
             "\"impus\":[{\"impu\":\"sip:bob@ims.lab\"},{\"impu\":\"tel:5551234;phone-context=ims.lab\"}],"
             "\"registration\":{\"scscf_name\":null},\"service_profiles\":[]}", &s);
    assert_int_equal(s.impis[0].auth_schemes, HSS_AUTH_DIGEST);
    assert_int_equal(s.impis[0].default_scheme, HSS_AUTH_DIGEST);
    assert_string_equal(s.impis[0].digest_realm, "IMS.lab");
    assert_string_equal(s.impis[1].digest_realm, "carol");       /* no '@': the whole IMPI */
    assert_int_equal(s.impis[2].auth_schemes, HSS_AUTH_AKA);
    assert_false(s.impis[2].op_is_opc);
    assert_memory_equal(s.impis[2].amf, "\x80\x00", 2);
    assert_int_equal(s.impis[3].default_scheme, HSS_AUTH_DIGEST);   /* first listed */
    assert_int_equal(s.impis[3].auth_schemes, HSS_AUTH_AKA | HSS_AUTH_DIGEST);
    assert_int_equal(s.n_profiles, 1);
    assert_string_equal(s.profiles[0].name, "default");
    assert_int_equal(s.profiles[0].n_ifcs, 0);
    assert_string_equal(s.impus[0].service_profile, "default");
    assert_int_equal(s.impus[0].irs, 1);
    assert_true(s.impus[0].can_register);
    assert_false(s.impus[0].barred);
    assert_null(s.impus[0].display_name);
    hss_subscriber_free(&s);
    hss_subscriber_free(&s);     /* harmless: free zeroes */
}

/* Each case: a document and the start of the error message (the JSON path first). */
static void test_json_validation(void **state)
{
#define IMPI_OK "{\"impi\":\"a@x\",\"password\":\"p\"}"
#define IMPU_OK "{\"impu\":\"sip:a@x\"}"
#define DOC(impis, impus) "{\"id\":\"a\",\"impis\":[" impis "],\"impus\":[" impus "]}"
#define IFC(spt) "{\"id\":\"a\",\"impis\":[" IMPI_OK "],\"impus\":[" IMPU_OK "],\"service_profiles\":" \
    "[{\"name\":\"p\",\"ifc\":[{\"priority\":1,\"trigger_point\":{\"cnf\":true,\"spt\":[" spt "]}," \
    "\"application_server\":{\"server_name\":\"sip:as\"}}]}]}"
    static const struct { const char *doc, *err; } cases[] = {
        {"[]", "$: must be an object"},
        {"{\"id\":\"bad id\",\"impis\":[" IMPI_OK "],\"impus\":[" IMPU_OK "]}", "id: must match"},
        {"{\"id\":\"\",\"impis\":[" IMPI_OK "],\"impus\":[" IMPU_OK "]}", "id: must match"},
        {"{\"id\":7,\"impis\":[" IMPI_OK "],\"impus\":[" IMPU_OK "]}", "id: must be a string"},
        {"{\"impis\":[" IMPI_OK "],\"impus\":[" IMPU_OK "]}", "id: required"},
        {DOC("", IMPU_OK), "impis: needs at least one"},
        {"{\"id\":\"a\",\"impus\":[" IMPU_OK "]}", "impis: required"},
        {DOC(IMPI_OK, ""), "impus: needs at least one"},
        {DOC("{\"impi\":\"\",\"password\":\"p\"}", IMPU_OK), "impis[0].impi: must be non-empty"},
        {DOC("{\"impi\":\"a b@x\",\"password\":\"p\"}", IMPU_OK), "impis[0].impi: must be non-empty"},
        {DOC("{\"impi\":\"a@x\",\"k\":\"00\",\"op\":\"" K_HEX "\"}", IMPU_OK), "impis[0].k: must be 32 hex"},
        {DOC("{\"impi\":\"a@x\",\"k\":\"" K_HEX "\",\"op\":\"" K_HEX "0\"}", IMPU_OK),
         "impis[0].op: must be 32 hex"},
        {DOC("{\"impi\":\"a@x\",\"k\":\"" K_HEX "\",\"opc\":\"zz" OPC_HEX "\"}", IMPU_OK),
         "impis[0].opc: must be 32 hex"},
        {DOC("{\"impi\":\"a@x\",\"k\":\"" K_HEX "\",\"op\":\"" K_HEX "\",\"opc\":\"" K_HEX "\"}", IMPU_OK),
         "impis[0].opc: op and opc are mutually exclusive"},
        {DOC("{\"impi\":\"a@x\",\"auth_schemes\":[\"aka\"],\"password\":\"p\"}", IMPU_OK),
         "impis[0].k: required by the aka scheme"},
        {DOC("{\"impi\":\"a@x\",\"k\":\"" K_HEX "\"}", IMPU_OK), "impis[0].opc: op or opc required"},
        {DOC("{\"impi\":\"a@x\",\"opc\":\"" K_HEX "\"}", IMPU_OK), "impis[0].k: required with op/opc"},
        {DOC("{\"impi\":\"a@x\"}", IMPU_OK), "impis[0].password: password or ha1 required"},
        {DOC("{\"impi\":\"a@x\",\"k\":\"" K_HEX "\",\"op\":\"" K_HEX "\",\"auth_schemes\":[\"aka\",\"digest\"]}",
             IMPU_OK), "impis[0].password: password or ha1 required"},
        {DOC("{\"impi\":\"a@x\",\"password\":\"p\",\"ha1\":\"" K_HEX "\"}", IMPU_OK),
         "impis[0].ha1: password and ha1 are mutually exclusive"},
        {DOC("{\"impi\":\"a@x\",\"ha1\":\"xyz\"}", IMPU_OK), "impis[0].ha1: must be 32 hex"},
        {DOC("{\"impi\":\"a@x\",\"password\":\"p\",\"default_scheme\":\"aka\"}", IMPU_OK),
         "impis[0].default_scheme: must be one of auth_schemes"},
        {DOC("{\"impi\":\"a@x\",\"password\":\"p\",\"auth_schemes\":[\"sms\"]}", IMPU_OK),
         "impis[0].auth_schemes[0]: must be aka or digest"},
        {DOC("{\"impi\":\"a@x\",\"password\":\"p\",\"auth_schemes\":[]}", IMPU_OK),
         "impis[0].auth_schemes: needs at least one"},
        {DOC("{\"impi\":\"a@x\",\"password\":\"p\",\"amf\":\"80000\"}", IMPU_OK), "impis[0].amf: must be 4 hex"},
        {DOC("{\"impi\":\"a@x\",\"password\":\"p\",\"sqn\":-1}", IMPU_OK), "impis[0].sqn: must be between 0 and"},
        {DOC("{\"impi\":\"a@x\",\"password\":\"p\",\"sqn\":281474976710656}", IMPU_OK),
         "impis[0].sqn: must be between 0 and 281474976710655"},
        {DOC("{\"impi\":\"a@x\",\"password\":\"p\",\"sqn\":1.5}", IMPU_OK), "impis[0].sqn: must be an integer"},
        {DOC(IMPI_OK, "{\"impu\":\"mailto:a@x\"}"), "impus[0].impu: must be a sip:, sips: or tel: URI"},
        {DOC(IMPI_OK, "{\"impu\":\"sip:\"}"), "impus[0].impu: must be a sip:"},
        {DOC(IMPI_OK, "{\"impu\":\"sip:a@\"}"), "impus[0].impu: must be a sip:"},
        {DOC(IMPI_OK, "{\"impu\":\"tel:+1-555\"}"), "impus[0].impu: must be a sip:"},
        {DOC(IMPI_OK, "{\"impu\":\"tel:+\"}"), "impus[0].impu: must be a sip:"},
        {DOC(IMPI_OK, "{\"impu\":\"tel:alice\"}"), "impus[0].impu: must be a sip:"},
        {DOC(IMPI_OK, "{\"impu\":\"sip:a@x\",\"service_profile\":\"gold\"}"),
         "impus[0].service_profile: no service profile \"gold\""},
        {DOC(IMPI_OK, IMPU_OK ",{\"impu\":\"sip:b@x\",\"barred\":\"no\"}"), "impus[1].barred: must be a boolean"},
        {DOC(IMPI_OK, "{\"impu\":\"sip:a@x\",\"irs\":\"1\"}"), "impus[0].irs: must be an integer"},
        {DOC(IMPI_OK, "{\"impu\":\"sip:a@x\",\"identity_type\":3}"), "impus[0].identity_type: must be between 0 and 2"},
        {DOC(IMPI_OK, "{\"impu\":\"sip:a@x\",\"display_name\":5}"), "impus[0].display_name: must be a string"},
        {DOC(IMPI_OK ",{\"impi\":\"a@X\",\"password\":\"p\"}", IMPU_OK), "impis[1]: duplicate identity a@X (also impis[0])"},
        {DOC(IMPI_OK, IMPU_OK ",{\"impu\":\"SIP:a@X\"}"), "impus[1]: duplicate identity SIP:a@X (also impus[0])"},
        {DOC("{\"impi\":\"a@x\",\"password\":\"p\",\"kk\":1}", IMPU_OK), "impis[0].kk: unknown field"},
        {"{\"id\":\"a\",\"impis\":[" IMPI_OK "],\"impus\":[" IMPU_OK "],\"kk\":1}", "kk: unknown field"},
        {DOC("5", IMPU_OK), "impis[0]: must be an object"},
        {"{\"id\":\"a\",\"impis\":{},\"impus\":[" IMPU_OK "]}", "impis: must be an array"},
        {"{\"id\":\"a\",\"impis\":[" IMPI_OK "],\"impus\":[" IMPU_OK "],\"service_profiles\":"
         "[{\"name\":\"p\"},{\"name\":\"p\"}]}", "service_profiles[1].name: duplicate service profile"},
        {"{\"id\":\"a\",\"impis\":[" IMPI_OK "],\"impus\":[" IMPU_OK "],\"service_profiles\":"
         "[{\"name\":\"p\",\"ifc\":[{\"priority\":1}]}]}", "service_profiles[0].ifc[0].application_server: required"},
        {"{\"id\":\"a\",\"impis\":[" IMPI_OK "],\"impus\":[" IMPU_OK "],\"service_profiles\":"
         "[{\"name\":\"p\",\"ifc\":[{\"priority\":1,\"application_server\":{\"server_name\":\"sip:as\","
         "\"default_handling\":\"drop\"}}]}]}",
         "service_profiles[0].ifc[0].application_server.default_handling: must be"},
        {IFC(""), "service_profiles[0].ifc[0].trigger_point.spt: needs at least one SPT"},
        {IFC("{\"group\":0}"), "service_profiles[0].ifc[0].trigger_point.spt[0]: needs one of method"},
        {IFC("{\"method\":\"INVITE\",\"request_uri\":\"x\"}"),
         "service_profiles[0].ifc[0].trigger_point.spt[0].method: only one of"},
        {IFC("{\"method\":\"INVITE\",\"content\":\"x\"}"),
         "service_profiles[0].ifc[0].trigger_point.spt[0].content: only with header or sdp_line"},
        {IFC("{\"method\":\"INVITE\"},{\"session_case\":5}"),
         "service_profiles[0].ifc[0].trigger_point.spt[1].session_case: must be between 0 and 4"},
        {IFC("{\"method\":\"REGISTER\",\"registration_type\":[\"initial\",\"again\"]}"),
         "service_profiles[0].ifc[0].trigger_point.spt[0].registration_type[1]: must be initial"},
        {IFC("{\"method\":\"INVITE\",\"negated\":1}"),
         "service_profiles[0].ifc[0].trigger_point.spt[0].negated: must be a boolean"},
        {"{\"id\":\"a\",\"impis\":[" IMPI_OK "],\"impus\":[" IMPU_OK "],\"roaming\":{\"visited_networks\":[1]}}",
         "roaming.visited_networks[0]: must be a network name"},
        {"{\"id\":\"a\",\"impis\":[" IMPI_OK "],\"impus\":[" IMPU_OK "],\"charging\":{\"ccf\":\"x\"}}",
         "charging.ccf: unknown field"},
    };
    char err[256];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_object *o = json_tokener_parse(cases[i].doc);
        hss_subscriber s;
        int rc;

        if (!o)
            fail_msg("case %zu: bad test JSON", i);
        err[0] = '\0';
        rc = hss_subscriber_from_json(o, &s, err, sizeof(err));
        json_object_put(o);
        if (rc != -1 || strncmp(err, cases[i].err, strlen(cases[i].err)) != 0)
            fail_msg("case %zu: rc %d, error \"%s\", expected \"%s...\"", i, rc, err, cases[i].err);
        /* The model is left empty on error. */
        assert_null(s.id);
        assert_int_equal(s.n_impis, 0);
        hss_subscriber_free(&s);
    }
}

static void test_identity_compare(void **state)
{
    char *n;
    hss_subscriber s;

    /* canonical keys (common/ims_identity): parameters dropped, the port kept */
    n = hss_impu_normalise("SIP:Alice@IMS.Lab:5060;Transport=TCP");
    assert_string_equal(n, "sip:Alice@ims.lab:5060");
    free(n);
    n = hss_impu_normalise("sip:+1555;npdi@Host.NET;user=phone");
    assert_string_equal(n, "sip:+1555;npdi@host.net");
    free(n);
    n = hss_impu_normalise("TEL:+1555");
    assert_string_equal(n, "tel:+1555");
    free(n);
    n = hss_impi_normalise("Alice@IMS.LAB");
    assert_string_equal(n, "Alice@ims.lab");
    free(n);
    assert_true(hss_impu_equal("SIP:alice@ims.LAB", "sip:alice@ims.lab"));
    assert_false(hss_impu_equal("sip:Alice@ims.lab", "sip:alice@ims.lab"));
    assert_true(hss_impi_equal("alice@IMS.lab", "alice@ims.lab"));
    assert_false(hss_impi_equal("Alice@ims.lab", "alice@ims.lab"));
    assert_false(hss_impi_equal("alice", "ALICE"));

    parse_ok(full_doc, &s);
    assert_ptr_equal(hss_subscriber_impu(&s, "SIP:alice@IMS.LAB"), &s.impus[0]);
    assert_null(hss_subscriber_impu(&s, "sip:ALICE@ims.lab"));
    assert_ptr_equal(hss_subscriber_impu(&s, "tel:+15551234"), &s.impus[1]);
    assert_ptr_equal(hss_subscriber_impi(&s, "alice@Ims.Lab"), &s.impis[0]);
    assert_null(hss_subscriber_impi(&s, "Alice@ims.lab"));
    assert_ptr_equal(hss_subscriber_profile(&s, "gold"), &s.profiles[1]);
    assert_null(hss_subscriber_profile(&s, "Gold"));
    hss_subscriber_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_defaults),
        cmocka_unit_test(test_json_validation),
        cmocka_unit_test(test_identity_compare),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
