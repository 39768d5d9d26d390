/*
 * scscf: the IMS Serving-CSCF (TS 24.229 §5.4): registrar with IMS-AKA and SIP digest, reg event
 * notifier, third-party registration, Cx client of the HSS.
 *
 *   scscf -c /etc/ims/scscf.yaml
 *   scscf --config-reference        prints every configuration key (markdown)
 *
 * Exit codes: 0 after SIGTERM/SIGINT, 1 when it cannot start (SIP/HTTP/Diameter port in use),
 * 2 bad configuration.
 *
 * Restart: with store.backend memory (the default) registrations live in memory and are lost; UEs
 * register again at their next refresh (the HSS keeps our name, so the I-CSCF keeps routing them
 * here). With store.backend redis they are reloaded at start (scscf_regsync.h).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ims_diameter.h"
#include "ims_log.h"
#include "ims_nf.h"
#include "scscf_context.h"

#define SUBSYS "scscf"

int main(int argc, char **argv)
{
    const char *config = ims_nf_args(argc, argv, "scscf", scscf_config_fields);

    /* Before any thread exists (freeDiameter, libmicrohttpd, the signal thread): docs/pitfalls.md. */
    ims_signals_block();

    scscf_context *ctx = &scscf_ctx;
    char err[512];
    ims_cfg_load_or_exit(config, "scscf", scscf_config_fields, &ctx->cfg);
    ims_nf_apply_log(&ctx->cfg.log);
    if (scscf_config_check(&ctx->cfg, err, sizeof(err))) {
        fprintf(stderr, "scscf: configuration error: %s\n", err);
        return 2;
    }

    if (ims_diameter_init(&ctx->cfg.diameter, "scscf", err, sizeof(err)))
        ims_nf_die(SUBSYS, 2, "Diameter set-up failed", err);
    if (ctx->cfg.http.enabled) {
        ctx->http = ims_http_start(&ctx->cfg.http, err, sizeof(err));
        if (!ctx->http)
            ims_nf_die(SUBSYS, 1, "HTTP server failed", err);
        ims_http_set_ready(ctx->http, scscf_ready, ctx);
    }
    ctx->sip = ims_sip_create(&ctx->cfg.sip, scscf_on_request, ctx, err, sizeof(err));
    if (!ctx->sip)
        ims_nf_die(SUBSYS, 1, "SIP start failed", err);
    ctx->trust = ims_trust_start(&ctx->cfg.trust, ctx->sip, SUBSYS);
    /* RTR/PPR handlers are registered here, after the SIP loop exists and before Diameter runs. */
    if (scscf_start(ctx, err, sizeof(err)))
        ims_nf_die(SUBSYS, 1, "S-CSCF start failed", err);
    if (ims_diameter_start(err, sizeof(err)))
        ims_nf_die(SUBSYS, 1, "Diameter start failed", err);

    if (ims_nf_stop_sip_on_signal(ctx->sip, SUBSYS))
        ims_nf_die(SUBSYS, 1, "start failed", "cannot create the signal thread");

    IMS_INFO(SUBSYS, "S-CSCF %s ready (realm %s, HSS %s%s%s, HTTP on %s:%u)", ctx->name, ctx->realm,
             ctx->hss_host ? ctx->hss_host : "", ctx->hss_host ? "@" : "realm ", ctx->hss_realm,
             ctx->cfg.http.listen ? ctx->cfg.http.listen : "-", ctx->http ? ims_http_port(ctx->http) : 0);
    ims_sip_run(ctx->sip);

    /* Diameter first: no Cx answer may be deferred to the loop once it is gone. */
    ims_diameter_stop();
    scscf_stop(ctx);
    if (ctx->http)
        ims_http_stop(ctx->http);
    ims_sip_destroy(ctx->sip);
    ims_trust_free(ctx->trust);
    ctx->trust = NULL;
    ims_cfg_free(scscf_config_fields, &ctx->cfg);
    IMS_INFO(SUBSYS, "stopped");
    return 0;
}
