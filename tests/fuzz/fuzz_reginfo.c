/*
 * fuzz_reginfo: the P-CSCF's reg event NOTIFY body reader (pcscf/pcscf_regevent.c,
 * pcscf_regevent_apply: RFC 3680 application/reginfo+xml) applied to a real bindings store
 * (pcscf/pcscf_bindings.c) that holds two registered UEs, so terminated registrations and
 * contact changes reach the store code too.
 *
 * Invariants checked beyond "no crash, no leak": the result is -1 (not a reginfo document) or
 * the number of changes; every binding left in the store still has a contact and its IMPU.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ims_clock.h"
#include "ims_log.h"
#include "pcscf_bindings.h"
#include "pcscf_context.h"
#include "pcscf_util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    ims_log_set_level(IMS_LOG_ERROR);
    return 0;
}

static void add_binding(pcscf_bindings *b, const char *impu, const char *const *set, size_t n_set,
                        const char *host, unsigned port, const char *const *contacts, size_t n_contacts,
                        int64_t now)
{
    pcscf_addr src;
    memset(&src, 0, sizeof(src));
    snprintf(src.host, sizeof(src.host), "%s", host);
    src.port = port;
    snprintf(src.transport, sizeof(src.transport), "udp");
    pcscf_contact c[4];
    for (size_t i = 0; i < n_contacts && i < 4; i++) {
        c[i].uri = (char *)contacts[i];
        c[i].expires = now + 3600;
    }
    const char *route[] = { "sip:orig@scscf.ims.lab:6060;lr" };
    pcscf_binding_update u = {
        .impu = impu, .source = &src, .impus = set, .n_impus = n_set,
        .service_route = route, .n_service_route = 1, .replace_route = true,
        .contacts = c, .n_contacts = n_contacts < 4 ? n_contacts : 4,
    };
    if (pcscf_bindings_update(b, &u, now) != PCSCF_BINDING_CREATED)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pcscf_context *ctx = calloc(1, sizeof(*ctx));
    if (!ctx)
        return 0;
    ctx->bindings = pcscf_bindings_new(NULL, NULL);
    int64_t now = ims_monotonic_s();
    const char *alice_set[] = { "sip:alice@ims.lab", "tel:+15551234" };
    const char *alice_contacts[] = { "sip:alice@127.0.0.1:5070", "sip:alice@127.0.0.1:5071;transport=tcp" };
    const char *bob_set[] = { "sip:bob@ims.lab" };
    const char *bob_contacts[] = { "sip:bob@[::1]:5080" };
    add_binding(ctx->bindings, "sip:alice@ims.lab", alice_set, 2, "127.0.0.1", 5070, alice_contacts, 2, now);
    add_binding(ctx->bindings, "sip:bob@ims.lab", bob_set, 1, "::1", 5080, bob_contacts, 1, now);

    int rc = pcscf_regevent_apply(ctx, (const char *)data, size);
    if (rc < -1)
        abort();
    size_t n = 0;
    for (const pcscf_binding *b = pcscf_bindings_first(ctx->bindings); b; b = b->next, n++)
        if (!b->impu || b->n_contacts == 0 || !b->contacts[0].uri) {
            fprintf(stderr, "fuzz_reginfo: binding left without IMPU or contact\n");
            abort();
        }
    if (n != pcscf_bindings_count(ctx->bindings) || n > 2)
        abort();
    pcscf_bindings_free(ctx->bindings);
    free(ctx);
    return 0;
}
