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
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "icscf_context.h"
#include "ims_diameter.h"
#include "ims_log.h"

#define SUBSYS "icscf"

static void usage(FILE *f)
{
    fprintf(f, "usage: icscf -c CONFIG.yaml\n"
               "       icscf --config-reference\n"
               "Every key can be overridden by IMS_ICSCF_<PATH> (see README).\n");
}

static void *signal_thread(void *arg)
{
    icscf_context *ctx = arg;
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
        case 'R': ims_cfg_print_reference("icscf", icscf_config_fields, stdout); return 0;
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

    icscf_context *ctx = &icscf_ctx;
    char err[512];
    ims_cfg_load_or_exit(config, "icscf", icscf_config_fields, &ctx->cfg);
    int level = ims_log_level_from_name(ctx->cfg.log.level);
    ims_log_set_level(level < 0 ? IMS_LOG_INFO : (ims_log_level)level);
    if (icscf_config_check(&ctx->cfg, err, sizeof(err))) {
        fprintf(stderr, "icscf: configuration error: %s%s%s\n", config ? config : "", config ? ": " : "", err);
        return 2;
    }
    if (!ctx->cfg.icscf.scscfs.count)
        IMS_WARN(SUBSYS, "icscf.scscfs is empty: only S-CSCFs named by the HSS can be used");

    if (ims_diameter_init(&ctx->cfg.diameter, "icscf", err, sizeof(err)))
        die(2, "Diameter set-up failed", err);

    if (ctx->cfg.http.enabled) {
        ctx->http = ims_http_start(&ctx->cfg.http, err, sizeof(err));
        if (!ctx->http)
            die(1, "HTTP server failed", err);
        ims_http_set_ready(ctx->http, icscf_ready, ctx);
    }
    ctx->sip = ims_sip_create(&ctx->cfg.sip, icscf_on_request, ctx, err, sizeof(err));
    if (!ctx->sip)
        die(1, "SIP start failed", err);
    if (icscf_start(ctx, err, sizeof(err)))
        die(1, "I-CSCF start failed", err);
    if (ims_diameter_start(err, sizeof(err)))
        die(1, "Diameter start failed", err);

    pthread_t th;
    if (pthread_create(&th, NULL, signal_thread, ctx))
        die(1, "start failed", "cannot create the signal thread");

    IMS_INFO(SUBSYS, "I-CSCF %s ready (Cx %s -> realm %s%s%s, %zu S-CSCF(s) configured, HTTP on %s:%u)",
             ims_sip_self_uri(ctx->sip), ctx->cfg.diameter.identity, ctx->hss_realm,
             ctx->cfg.icscf.hss_host ? ", host " : "", ctx->cfg.icscf.hss_host ? ctx->cfg.icscf.hss_host : "",
             ctx->n_pool, ctx->cfg.http.listen ? ctx->cfg.http.listen : "-",
             ctx->http ? ims_http_port(ctx->http) : 0);
    ims_sip_run(ctx->sip);
    pthread_join(th, NULL);

    /* Pending transactions are answered while the agent still exists; Diameter stops before
     * ims_sip_destroy because its callbacks defer work to the loop (ims_sip.h). */
    icscf_stop(ctx);
    if (ctx->http)
        ims_http_stop(ctx->http);
    ims_diameter_stop();
    ims_sip_destroy(ctx->sip);
    icscf_free(ctx);
    ims_cfg_free(icscf_config_fields, &ctx->cfg);
    IMS_INFO(SUBSYS, "stopped");
    return 0;
}
