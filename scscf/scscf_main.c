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
 * Restart: registrations live in memory and are lost; UEs register again at their next refresh
 * (the HSS keeps our name, so the I-CSCF keeps routing them here).
 */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ims_diameter.h"
#include "ims_log.h"
#include "scscf_context.h"

#define SUBSYS "scscf"

static void usage(FILE *f)
{
    fprintf(f, "usage: scscf -c CONFIG.yaml\n"
               "       scscf --config-reference\n"
               "Every key can be overridden by IMS_SCSCF_<PATH> (see README).\n");
}

static void *signal_thread(void *arg)
{
    scscf_context *ctx = arg;
    int sig = ims_signals_wait();
    IMS_INFO(SUBSYS, "signal %d (%s): shutting down", sig, strsignal(sig));
    ims_sip_stop(ctx->sip);
    return NULL;
}

static void die(int code, const char *what, const char *err)
{
    IMS_ERROR(SUBSYS, "%s: %s", what, err);
    exit(code);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' },
        { "config-reference", no_argument, NULL, 'R' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *config = NULL;
    int opt;
    while ((opt = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (opt) {
        case 'c': config = optarg; break;
        case 'R': ims_cfg_print_reference("scscf", scscf_config_fields, stdout); return 0;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }

    /* Before any thread exists (freeDiameter, libmicrohttpd, the signal thread): DESIGN.md. */
    ims_signals_block();

    scscf_context *ctx = &scscf_ctx;
    char err[512];
    ims_cfg_load_or_exit(config, "scscf", scscf_config_fields, &ctx->cfg);
    int level = ims_log_level_from_name(ctx->cfg.log.level);
    ims_log_set_level(level < 0 ? IMS_LOG_INFO : (ims_log_level)level);
    if (scscf_config_check(&ctx->cfg, err, sizeof(err))) {
        fprintf(stderr, "scscf: configuration error: %s\n", err);
        return 2;
    }

    if (ims_diameter_init(&ctx->cfg.diameter, "scscf", err, sizeof(err)))
        die(2, "Diameter set-up failed", err);
    if (ctx->cfg.http.enabled) {
        ctx->http = ims_http_start(&ctx->cfg.http, err, sizeof(err));
        if (!ctx->http)
            die(1, "HTTP server failed", err);
        ims_http_set_ready(ctx->http, scscf_ready, ctx);
    }
    ctx->sip = ims_sip_create(&ctx->cfg.sip, scscf_on_request, ctx, err, sizeof(err));
    if (!ctx->sip)
        die(1, "SIP start failed", err);
    /* RTR/PPR handlers are registered here, after the SIP loop exists and before Diameter runs. */
    if (scscf_start(ctx, err, sizeof(err)))
        die(1, "S-CSCF start failed", err);
    if (ims_diameter_start(err, sizeof(err)))
        die(1, "Diameter start failed", err);

    pthread_t th;
    if (pthread_create(&th, NULL, signal_thread, ctx))
        die(1, "start failed", "cannot create the signal thread");

    IMS_INFO(SUBSYS, "S-CSCF %s ready (realm %s, HSS %s%s%s, HTTP on %s:%u)", ctx->name, ctx->realm,
             ctx->hss_host ? ctx->hss_host : "", ctx->hss_host ? "@" : "realm ", ctx->hss_realm,
             ctx->cfg.http.listen ? ctx->cfg.http.listen : "-", ctx->http ? ims_http_port(ctx->http) : 0);
    ims_sip_run(ctx->sip);
    pthread_join(th, NULL);

    /* Diameter first: no Cx answer may be deferred to the loop once it is gone. */
    ims_diameter_stop();
    scscf_stop(ctx);
    if (ctx->http)
        ims_http_stop(ctx->http);
    ims_sip_destroy(ctx->sip);
    ims_cfg_free(scscf_config_fields, &ctx->cfg);
    IMS_INFO(SUBSYS, "stopped");
    return 0;
}
