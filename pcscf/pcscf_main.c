/*
 * pcscf: the IMS Proxy-CSCF (TS 24.229 §5.2): the UE's first SIP hop.
 *
 *   pcscf -c /etc/ims/pcscf.yaml
 *   pcscf --config-reference        prints every configuration key (markdown)
 *
 * Exit codes: 0 after SIGTERM/SIGINT, 1 when it cannot start (SIP or HTTP port in use),
 * 2 bad configuration.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ims_diameter.h"   /* ims_signals_block / ims_signals_wait */
#include "ims_log.h"
#include "ims_nf.h"
#include "pcscf_bindsync.h"
#include "pcscf_context.h"

#define SUBSYS "pcscf"

static bool ready(void *arg, char *why, size_t whylen)
{
    pcscf_context *ctx = arg;
    if (!atomic_load(&ctx->running)) {
        snprintf(why, whylen, "SIP agent not running");
        return false;
    }
    if (!pcscf_bindsync_ready(ctx, why, whylen))
        return false;
    return pcscf_media_ready(ctx, why, whylen);
}

int main(int argc, char **argv)
{
    const char *config = ims_nf_args(argc, argv, "pcscf", pcscf_config_fields);

    /* Before any thread exists (libmicrohttpd, the signal thread). */
    ims_signals_block();

    pcscf_context *ctx = &pcscf_ctx;
    char err[512];
    ims_cfg_load_or_exit(config, "pcscf", pcscf_config_fields, &ctx->cfg);
    ims_nf_apply_log(&ctx->cfg.log);
    if (pcscf_config_check(&ctx->cfg, err, sizeof(err))) {
        fprintf(stderr, "pcscf: configuration error: %s\n", err);
        return 2;
    }

    if (ctx->cfg.http.enabled) {
        ctx->http = ims_http_start(&ctx->cfg.http, err, sizeof(err));
        if (!ctx->http)
            ims_nf_die(SUBSYS, 1, "HTTP server failed", err);
        ims_http_set_ready(ctx->http, ready, ctx);
    }
    ctx->sip = ims_sip_create(&ctx->cfg.sip, pcscf_on_request, ctx, err, sizeof(err));
    if (!ctx->sip)
        ims_nf_die(SUBSYS, 1, "SIP start failed", err);
    ctx->trust = ims_trust_start(&ctx->cfg.trust, ctx->sip, SUBSYS);
    if (pcscf_start(ctx, err, sizeof(err)))
        ims_nf_die(SUBSYS, 1, "P-CSCF start failed", err);

    if (ims_nf_stop_sip_on_signal(ctx->sip, SUBSYS))
        ims_nf_die(SUBSYS, 1, "start failed", "cannot create the signal thread");

    IMS_INFO(SUBSYS, "P-CSCF %s ready (I-CSCF %s, HTTP on %s:%u, sec-agree %s, reg event %s)",
             ims_sip_self_uri(ctx->sip), ctx->cfg.pcscf.icscf,
             ctx->cfg.http.listen ? ctx->cfg.http.listen : "-", ctx->http ? ims_http_port(ctx->http) : 0,
             ctx->cfg.pcscf.sec_agree ? "enforced" : "off", ctx->cfg.pcscf.subscribe_reg_event ? "on" : "off");
    ims_sip_run(ctx->sip);

    pcscf_stop(ctx);
    if (ctx->http)
        ims_http_stop(ctx->http);
    ims_sip_destroy(ctx->sip);
    ims_trust_free(ctx->trust);
    ctx->trust = NULL;
    ims_cfg_free(pcscf_config_fields, &ctx->cfg);
    IMS_INFO(SUBSYS, "stopped");
    return 0;
}
