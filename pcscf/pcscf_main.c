/*
 * pcscf: the IMS Proxy-CSCF (TS 24.229 §5.2): the UE's first SIP hop.
 *
 *   pcscf -c /etc/ims/pcscf.yaml
 *   pcscf --config-reference        prints every configuration key (markdown)
 *
 * Exit codes: 0 after SIGTERM/SIGINT, 1 when it cannot start (SIP or HTTP port in use),
 * 2 bad configuration.
 */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ims_diameter.h"   /* ims_signals_block / ims_signals_wait */
#include "ims_log.h"
#include "pcscf_context.h"

#define SUBSYS "pcscf"

static void usage(FILE *f)
{
    fprintf(f, "usage: pcscf -c CONFIG.yaml\n"
               "       pcscf --config-reference\n"
               "Every key can be overridden by IMS_PCSCF_<PATH> (see README).\n");
}

static bool ready(void *arg, char *why, size_t whylen)
{
    pcscf_context *ctx = arg;
    if (!atomic_load(&ctx->running)) {
        snprintf(why, whylen, "SIP agent not running");
        return false;
    }
    return true;
}

static void *signal_thread(void *arg)
{
    pcscf_context *ctx = arg;
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
        case 'R': ims_cfg_print_reference("pcscf", pcscf_config_fields, stdout); return 0;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }

    /* Before any thread exists (libmicrohttpd, the signal thread). */
    ims_signals_block();

    pcscf_context *ctx = &pcscf_ctx;
    char err[512];
    ims_cfg_load_or_exit(config, "pcscf", pcscf_config_fields, &ctx->cfg);
    int level = ims_log_level_from_name(ctx->cfg.log.level);
    ims_log_set_level(level < 0 ? IMS_LOG_INFO : (ims_log_level)level);
    if (pcscf_config_check(&ctx->cfg, err, sizeof(err))) {
        fprintf(stderr, "pcscf: configuration error: %s\n", err);
        return 2;
    }

    if (ctx->cfg.http.enabled) {
        ctx->http = ims_http_start(&ctx->cfg.http, err, sizeof(err));
        if (!ctx->http)
            die(1, "HTTP server failed", err);
        ims_http_set_ready(ctx->http, ready, ctx);
    }
    ctx->sip = ims_sip_create(&ctx->cfg.sip, pcscf_on_request, ctx, err, sizeof(err));
    if (!ctx->sip)
        die(1, "SIP start failed", err);
    if (pcscf_start(ctx, err, sizeof(err)))
        die(1, "P-CSCF start failed", err);

    pthread_t th;
    if (pthread_create(&th, NULL, signal_thread, ctx))
        die(1, "start failed", "cannot create the signal thread");

    IMS_INFO(SUBSYS, "P-CSCF %s ready (I-CSCF %s, HTTP on %s:%u, sec-agree %s, reg event %s)",
             ims_sip_self_uri(ctx->sip), ctx->cfg.pcscf.icscf,
             ctx->cfg.http.listen ? ctx->cfg.http.listen : "-", ctx->http ? ims_http_port(ctx->http) : 0,
             ctx->cfg.pcscf.sec_agree ? "enforced" : "off", ctx->cfg.pcscf.subscribe_reg_event ? "on" : "off");
    ims_sip_run(ctx->sip);
    pthread_join(th, NULL);

    pcscf_stop(ctx);
    if (ctx->http)
        ims_http_stop(ctx->http);
    ims_sip_destroy(ctx->sip);
    ims_cfg_free(pcscf_config_fields, &ctx->cfg);
    IMS_INFO(SUBSYS, "stopped");
    return 0;
}
