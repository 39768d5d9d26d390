/*
 * hss_test_data.h: subscription documents and helpers shared by the HSS unit tests
 * (test_store.c: the SQLite store; test_hss_json.c: the provisioning JSON).
 * Key and OPc are those of TS 35.208 §4.3 test set 1.
 */
#ifndef HSS_TEST_DATA_H
#define HSS_TEST_DATA_H

#include <json-c/json.h>

#include "hss_subscriber.h"

#define K_HEX "465b5ce8b199b49faa5f0a2ee238a6bc"
#define OPC_HEX "cd63cb71954a9f4e48a5994e37a02baf"

/* A subscription using every feature of the format. */
static const char *const full_doc __attribute__((unused)) =
    "{\"id\":\"alice\","
    " \"impis\":[{\"impi\":\"alice@ims.lab\",\"auth_schemes\":[\"aka\",\"digest\"],"
    "   \"default_scheme\":\"aka\",\"k\":\"" K_HEX "\",\"opc\":\"" OPC_HEX "\",\"amf\":\"8000\","
    "   \"sqn\":32,\"password\":\"secret\"},"
    "  {\"impi\":\"alice-dig@ims.lab\",\"ha1\":\"0123456789ABCDEF0123456789abcdef\","
    "   \"digest_realm\":\"other.realm\"}],"
    " \"impus\":[{\"impu\":\"sip:alice@ims.lab\",\"barred\":false,\"irs\":1,"
    "   \"service_profile\":\"default\",\"display_name\":\"Alice\",\"identity_type\":0,"
    "   \"can_register\":true},"
    "  {\"impu\":\"tel:+15551234\",\"irs\":1,\"service_profile\":\"gold\"},"
    "  {\"impu\":\"sip:alice-work@ims.lab\",\"irs\":2,\"barred\":true},"
    "  {\"impu\":\"sip:conf@ims.lab\",\"irs\":3,\"identity_type\":1,\"can_register\":false}],"
    " \"service_profiles\":["
    "  {\"name\":\"default\",\"subscribed_media_profile_id\":-1,\"ifc\":["
    "   {\"priority\":1,\"trigger_point\":{\"cnf\":true,\"spt\":["
    "     {\"group\":0,\"negated\":false,\"method\":\"INVITE\"},"
    "     {\"group\":1,\"negated\":true,\"session_case\":0},"
    "     {\"group\":1,\"header\":\"Contact\",\"content\":\".*video.*\"}]},"
    "    \"application_server\":{\"server_name\":\"sip:as.ims.lab:5070\","
    "     \"default_handling\":\"session_terminated\",\"service_info\":\"mmtel\","
    "     \"include_register_request\":true,\"include_register_response\":false},"
    "    \"profile_part_indicator\":\"registered\"},"
    "   {\"priority\":2,\"trigger_point\":{\"cnf\":false,\"spt\":["
    "     {\"method\":\"REGISTER\",\"registration_type\":[\"initial\",\"de-registration\"]},"
    "     {\"request_uri\":\"sip:vm@ims.lab\"},{\"sdp_line\":\"m\",\"content\":\"video\"}]},"
    "    \"application_server\":{\"server_name\":\"sip:vm.ims.lab\"}}]},"
    "  {\"name\":\"gold\",\"subscribed_media_profile_id\":7,\"ifc\":["
    "   {\"priority\":0,\"application_server\":{\"server_name\":\"sip:all.ims.lab\"},"
    "    \"profile_part_indicator\":\"unregistered\"}]}],"
    " \"roaming\":{\"visited_networks\":[\"visited.net\",\"other.net\"]},"
    " \"charging\":{\"ccf_primary\":\"aaa://ccf.ims.lab\",\"ecf_secondary\":\"aaa://ecf2.ims.lab\"}}";

/* Parses JSON text into a model; fails the test on error. */
static inline void parse_ok(const char *text, hss_subscriber *s)
{
    json_object *o = json_tokener_parse(text);
    char err[256] = "";

    assert_non_null(o);
    if (hss_subscriber_from_json(o, s, err, sizeof(err)) != 0)
        fail_msg("from_json: %s", err);
    json_object_put(o);
}

#endif
