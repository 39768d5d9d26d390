/*
 * fuzz_json: the HSS provisioning input (hss/hss_json.c: hss_subscriber_from_json, the body of
 * POST/PUT /api/v1/subscribers and each entry of an import file), after json-c's tokenizer.
 *
 * Invariants checked beyond "no crash, no leak", for a document the HSS accepts:
 *  - it can be printed back (hss_subscriber_to_json);
 *  - each service profile's iFC list survives the store's JSON form (hss_ifcs_to_json, then
 *    hss_ifcs_from_json accepts it: the store keeps iFCs as that text and reads them on every Cx
 *    request);
 *  - the User-Data the HSS would send for each public identity in an SAA or PPR
 *    (hss_subscriber_userdata + ims_userdata_write) is accepted by the S-CSCF's reader
 *    (ims_userdata_parse): what provisioning accepts must never break registration.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "hss_subscriber.h"
#include "ims_log.h"
#include "ims_userdata.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    ims_log_set_level(IMS_LOG_ERROR);
    return 0;
}

static void check_userdata(const hss_subscriber *s, const char *impu)
{
    ims_subscription us, back;
    char err[512];
    const char *impi = s->n_impis ? s->impis[0].identity : NULL;
    if (hss_subscriber_userdata(s, impi, impu, &us))
        return;   /* e.g. no IMPI: the HSS answers an error, nothing is sent */
    char *xml = ims_userdata_write(&us, err, sizeof(err));
    ims_subscription_free(&us);
    if (!xml) {
        fprintf(stderr, "fuzz_json: accepted subscriber gives no User-Data for %s: %s\n", impu, err);
        abort();
    }
    if (ims_userdata_parse(xml, strlen(xml), &back, err, sizeof(err))) {
        fprintf(stderr, "fuzz_json: S-CSCF refuses the User-Data for %s: %s\n%s\n", impu, err, xml);
        abort();
    }
    ims_subscription_free(&back);
    free(xml);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_tokener *tok = json_tokener_new();
    if (!tok)
        return 0;
    json_object *obj = json_tokener_parse_ex(tok, (const char *)data, (int)size);
    bool complete = json_tokener_get_error(tok) == json_tokener_success;
    json_tokener_free(tok);
    if (!complete) {
        json_object_put(obj);
        return 0;
    }

    hss_subscriber s;
    char err[512] = "";
    if (hss_subscriber_from_json(obj, &s, err, sizeof(err))) {
        json_object_put(obj);
        if (!err[0]) {
            fprintf(stderr, "fuzz_json: refused without a message\n");
            abort();
        }
        return 0;
    }
    json_object_put(obj);

    json_object *out = hss_subscriber_to_json(&s);
    if (!out || !json_object_to_json_string(out))
        abort();
    json_object_put(out);

    for (size_t i = 0; i < s.n_profiles; i++) {
        json_object *arr = hss_ifcs_to_json(s.profiles[i].ifcs, s.profiles[i].n_ifcs);
        ims_ifc *ifcs = NULL;
        size_t n = 0;
        if (!arr || hss_ifcs_from_json(arr, "ifc", &ifcs, &n, err, sizeof(err)) || n != s.profiles[i].n_ifcs) {
            fprintf(stderr, "fuzz_json: profile %s: iFCs do not survive the store's JSON form: %s\n",
                    s.profiles[i].name, err);
            abort();
        }
        hss_ifcs_free(ifcs, n);
        json_object_put(arr);
    }
    for (size_t i = 0; i < s.n_impus; i++)
        check_userdata(&s, s.impus[i].identity);
    hss_subscriber_free(&s);
    return 0;
}
