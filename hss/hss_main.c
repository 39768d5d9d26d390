/*
 * hss: the IMS Home Subscriber Server (Cx over Diameter, provisioning over HTTP/JSON).
 *
 *   hss -c /etc/ims/hss.yaml
 *   hss --config-reference        prints every configuration key (markdown)
 *
 * Exit codes: 0 after SIGTERM/SIGINT, 1 runtime failure (port in use, database unusable),
 * 2 bad configuration or bad import file.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hss_api.h"
#include "hss_context.h"
#include "ims_diameter.h"
#include "ims_log.h"
#include "ims_nf.h"

#define SUBSYS "hss"

hss_context hss_ctx;

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
    /* PostgreSQL: reachable now (a MAR would fail otherwise); SQLite: open is enough. */
    if (hss_store_ping(hss_ctx.store, why, whylen) != 0)
        return false;
    int open = ims_diameter_open_peers(why, whylen);
    if (hss_ctx.cfg.diameter.peers.count && open == 0)
        return false;
    return ims_diameter_identity() != NULL;
}

int main(int argc, char **argv)
{
    const char *config = ims_nf_args(argc, argv, "hss", hss_config_fields);

    /* Before any thread exists (freeDiameter, libmicrohttpd): docs/pitfalls.md. */
    ims_signals_block();

    char err[512];
    ims_cfg_load_or_exit(config, "hss", hss_config_fields, &hss_ctx.cfg);
    ims_nf_apply_log(&hss_ctx.cfg.log);
    if (hss_context_parse_capabilities(&hss_ctx, err, sizeof(err)))
        ims_nf_die(SUBSYS, 2, "configuration error", err);

    const char *db_name;
    hss_ctx.store = hss_context_open_store(&hss_ctx.cfg.hss, &db_name, err, sizeof(err));
    if (!hss_ctx.store)
        ims_nf_die(SUBSYS, 1, "cannot open the subscriber database", err);
    /* Before the import, so that the gauges follow its progress (one update per commit). */
    hss_metrics_watch(hss_ctx.store);
    if (hss_ctx.cfg.hss.import) {
        if (hss_import_file(hss_ctx.store, hss_ctx.cfg.hss.import, err, sizeof(err)))
            ims_nf_die(SUBSYS, 2, "subscriber import failed", err);
    }
    IMS_INFO(SUBSYS, "subscriber database %s: %zu subscription(s)", db_name,
             hss_store_count(hss_ctx.store));

    if (ims_diameter_init(&hss_ctx.cfg.diameter, "hss", err, sizeof(err)))
        ims_nf_die(SUBSYS, 2, "Diameter set-up failed", err);
    if (hss_cx_init())
        ims_nf_die(SUBSYS, 1, "Cx set-up failed", "cannot register handlers");

    static hss_api_ctx api;
    if (hss_ctx.cfg.http.enabled) {
        hss_ctx.http = ims_http_start(&hss_ctx.cfg.http, err, sizeof(err));
        if (!hss_ctx.http)
            ims_nf_die(SUBSYS, 1, "HTTP server failed", err);
        ims_http_set_ready(hss_ctx.http, ready, NULL);
        api.store = hss_ctx.store;
        api.on_profile_change = on_profile_change;
        api.deregister = deregister;
        api.arg = NULL;
        if (hss_api_register(hss_ctx.http, &api))
            ims_nf_die(SUBSYS, 1, "HTTP server failed", "cannot register the provisioning API");
    }
    if (ims_diameter_start(err, sizeof(err)))
        ims_nf_die(SUBSYS, 1, "Diameter start failed", err);
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
