/*
 * fuzz_userdata: the Cx User-Data XML reader (common/ims_userdata_read.c, TS 29.228 Annex E) that the
 * S-CSCF runs on every SAA and PPR from the HSS.
 *
 * Invariants checked beyond "no crash, no leak":
 *  - a failed parse leaves a message and nothing to free;
 *  - a document the reader accepts can be written back (ims_userdata_write), the writer's output
 *    is accepted by the reader again, and writing that gives the same bytes (a fixed point).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ims_log.h"
#include "ims_userdata.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    ims_log_set_level(IMS_LOG_ERROR);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ims_subscription sub;
    char err[512] = "";
    if (ims_userdata_parse((const char *)data, size, &sub, err, sizeof(err))) {
        if (!err[0]) {
            fprintf(stderr, "fuzz_userdata: parse failed without a message\n");
            abort();
        }
        return 0;
    }
    char *xml1 = ims_userdata_write(&sub, err, sizeof(err));
    ims_subscription_free(&sub);
    if (!xml1) {
        fprintf(stderr, "fuzz_userdata: accepted document cannot be written back: %s\n", err);
        abort();
    }
    ims_subscription again;
    if (ims_userdata_parse(xml1, strlen(xml1), &again, err, sizeof(err))) {
        fprintf(stderr, "fuzz_userdata: reader refuses the writer's output: %s\n%s\n", err, xml1);
        abort();
    }
    char *xml2 = ims_userdata_write(&again, err, sizeof(err));
    ims_subscription_free(&again);
    if (!xml2 || strcmp(xml1, xml2) != 0) {
        fprintf(stderr, "fuzz_userdata: rewrite differs:\n%s\n---\n%s\n", xml1, xml2 ? xml2 : err);
        abort();
    }
    free(xml1);
    free(xml2);
    return 0;
}
