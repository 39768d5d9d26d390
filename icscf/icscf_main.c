/*
 * icscf: the IMS Interrogating-CSCF (TS 24.229 §5.3): the home network's entry point. Queries
 * the HSS over Cx (UAR, LIR) and hands REGISTERs and terminating requests to an S-CSCF.
 *
 *   icscf -c /etc/ims/icscf.yaml
 *   icscf --config-reference        prints every configuration key (markdown)
 *
 * Exit codes: 0 after SIGTERM/SIGINT, 1 when it cannot start (SIP, HTTP or Diameter port in
 * use), 2 bad configuration.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "icscf_context.h"
#include "ims_diameter.h"
#include "ims_log.h"
#include "ims_nf.h"

#define SUBSYS "icscf"

int main(int argc, char **argv)
{
    const char *config = ims_nf_args(argc, argv, "icscf", icscf_config_fields);

    /* Before any thread exists (freeDiameter, libmicrohttpd, the signal thread): docs/pitfalls.md. */
    ims_signals_block();

    icscf_context *ctx = &icscf_ctx;
    char err[512];
    ims_cfg_load_or_exit(config, "icscf", icscf_config_fields, &ctx->cfg);
    ims_nf_apply_log(&ctx->cfg.log);
    if (icscf_config_check(&ctx->cfg, err, sizeof(err))) {
        fprintf(stderr, "icscf: configuration error: %s%s%s\n", config ? config : "", config ? ": " : "", err);
        return 2;
    }
    if (!ctx->cfg.icscf.scscfs.count)
        IMS_WARN(SUBSYS, "icscf.scscfs is empty: only S-CSCFs named by the HSS can be used");

    if (ims_diameter_init(&ctx->cfg.diameter, "icscf", err, sizeof(err)))
        ims_nf_die(SUBSYS, 2, "Diameter set-up failed", err);

    if (ctx->cfg.http.enabled) {
        ctx->http = ims_http_start(&ctx->cfg.http, err, sizeof(err));
        if (!ctx->http)
            ims_nf_die(SUBSYS, 1, "HTTP server failed", err);
        ims_http_set_ready(ctx->http, icscf_ready, ctx);
    }
    ctx->sip = ims_sip_create(&ctx->cfg.sip, icscf_on_request, ctx, err, sizeof(err));
    if (!ctx->sip)
        ims_nf_die(SUBSYS, 1, "SIP start failed", err);
    ctx->trust = ims_trust_start(&ctx->cfg.trust, ctx->sip, SUBSYS);
    if (icscf_start(ctx, err, sizeof(err)))
        ims_nf_die(SUBSYS, 1, "I-CSCF start failed", err);
    if (ims_diameter_start(err, sizeof(err)))
        ims_nf_die(SUBSYS, 1, "Diameter start failed", err);

    if (ims_nf_stop_sip_on_signal(ctx->sip, SUBSYS))
        ims_nf_die(SUBSYS, 1, "start failed", "cannot create the signal thread");

    IMS_INFO(SUBSYS, "I-CSCF %s ready (Cx %s -> realm %s%s%s, %zu S-CSCF(s) configured, HTTP on %s:%u)",
             ims_sip_self_uri(ctx->sip), ctx->cfg.diameter.identity, ctx->hss_realm,
             ctx->cfg.icscf.hss_host ? ", host " : "", ctx->cfg.icscf.hss_host ? ctx->cfg.icscf.hss_host : "",
             ctx->n_pool, ctx->cfg.http.listen ? ctx->cfg.http.listen : "-",
             ctx->http ? ims_http_port(ctx->http) : 0);
    ims_sip_run(ctx->sip);

    /* Pending transactions are answered while the agent still exists; Diameter stops before
     * ims_sip_destroy because its callbacks defer work to the loop (ims_sip.h). */
    icscf_stop(ctx);
    if (ctx->http)
        ims_http_stop(ctx->http);
    ims_diameter_stop();
    ims_sip_destroy(ctx->sip);
    ims_trust_free(ctx->trust);
    ctx->trust = NULL;
    icscf_free(ctx);
    ims_cfg_free(icscf_config_fields, &ctx->cfg);
    IMS_INFO(SUBSYS, "stopped");
    return 0;
}
