/*
 * hss: the IMS Home Subscriber Server (Cx over Diameter, provisioning over HTTP/JSON).
 *
 *   hss -c /etc/ims/hss.yaml
 *   hss --config-reference        prints every configuration key (markdown)
 *
 * Exit codes: 0 after SIGTERM/SIGINT, 1 runtime failure (port in use, database unusable),
 * 2 bad configuration or bad import file.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hss_api.h"
#include "hss_context.h"
#include "ims_diameter.h"
#include "ims_log.h"

#define SUBSYS "hss"

hss_context hss_ctx;

static void usage(FILE *f)
{
    fprintf(f, "usage: hss -c CONFIG.yaml\n"
               "       hss --config-reference\n"
               "Every key can be overridden by IMS_HSS_<PATH> (see README).\n");
}

static void on_profile_change(void *arg, const char *id)
{
    (void)arg;
    char err[256];
    if (hss_cx_send_ppr(id, err, sizeof(err)))
        IMS_WARN(SUBSYS, "profile of %s changed but no PPR sent: %s", id, err);
}

static int deregister(void *arg, const char *id, int reason, const char *info, char *err, size_t errlen)
{
    (void)arg;
    return hss_cx_send_rtr(id, reason, info, err, errlen);
}

static bool ready(void *arg, char *why, size_t whylen)
{
    (void)arg;
    if (!hss_ctx.store) {
        snprintf(why, whylen, "database not open");
        return false;
    }
    int open = ims_diameter_open_peers(why, whylen);
    if (hss_ctx.cfg.diameter.peers.count && open == 0)
        return false;
    return ims_diameter_identity() != NULL;
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
        case 'R': ims_cfg_print_reference("hss", hss_config_fields, stdout); return 0;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }

    /* Before any thread exists (freeDiameter, libmicrohttpd): DESIGN.md. */
    ims_signals_block();

    char err[512];
    ims_cfg_load_or_exit(config, "hss", hss_config_fields, &hss_ctx.cfg);
    int level = ims_log_level_from_name(hss_ctx.cfg.log.level);
    ims_log_set_level(level < 0 ? IMS_LOG_INFO : (ims_log_level)level);
    if (hss_context_parse_capabilities(&hss_ctx, err, sizeof(err)))
        die(2, "configuration error", err);

    hss_ctx.store = hss_store_open(hss_ctx.cfg.hss.database, err, sizeof(err));
    if (!hss_ctx.store)
        die(1, "cannot open the subscriber database", err);
    if (hss_ctx.cfg.hss.import) {
        if (hss_import_file(hss_ctx.store, hss_ctx.cfg.hss.import, err, sizeof(err)))
            die(2, "subscriber import failed", err);
    }
    IMS_INFO(SUBSYS, "subscriber database %s: %zu subscription(s)", hss_ctx.cfg.hss.database,
             hss_store_count(hss_ctx.store));

    if (ims_diameter_init(&hss_ctx.cfg.diameter, "hss", err, sizeof(err)))
        die(2, "Diameter set-up failed", err);
    if (hss_cx_init())
        die(1, "Cx set-up failed", "cannot register handlers");

    static hss_api_ctx api;
    if (hss_ctx.cfg.http.enabled) {
        hss_ctx.http = ims_http_start(&hss_ctx.cfg.http, err, sizeof(err));
        if (!hss_ctx.http)
            die(1, "HTTP server failed", err);
        ims_http_set_ready(hss_ctx.http, ready, NULL);
        api.store = hss_ctx.store;
        api.on_profile_change = on_profile_change;
        api.deregister = deregister;
        api.arg = NULL;
        if (hss_api_register(hss_ctx.http, &api))
            die(1, "HTTP server failed", "cannot register the provisioning API");
    }
    if (ims_diameter_start(err, sizeof(err)))
        die(1, "Diameter start failed", err);
    IMS_INFO(SUBSYS, "HSS %s ready (Cx on %s:%ld, HTTP on %s:%u)", hss_ctx.cfg.diameter.identity,
             hss_ctx.cfg.diameter.listen, hss_ctx.cfg.diameter.port,
             hss_ctx.cfg.http.listen ? hss_ctx.cfg.http.listen : "-",
             hss_ctx.http ? ims_http_port(hss_ctx.http) : 0);

    int sig = ims_signals_wait();
    IMS_INFO(SUBSYS, "signal %d (%s): shutting down", sig, strsignal(sig));

    if (hss_ctx.http)
        ims_http_stop(hss_ctx.http);
    hss_cx_fini();
    ims_diameter_stop();
    hss_store_close(hss_ctx.store);
    free(hss_ctx.mandatory_caps);
    free(hss_ctx.optional_caps);
    ims_cfg_free(hss_config_fields, &hss_ctx.cfg);
    IMS_INFO(SUBSYS, "stopped");
    return 0;
}
