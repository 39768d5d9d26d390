/*
 * hss_metrics.c: the HSS's gauges of what its subscriber database holds, on /metrics:
 *
 *   hss_subscribers                                IMS subscriptions (IMSU)
 *   hss_private_identities                         IMPIs
 *   hss_public_identities{state="registered"}      IMPUs by registration state (TS 29.228
 *   hss_public_identities{state="unregistered"}    Annex B, written by SAR); their sum is the
 *   hss_public_identities{state="not_registered"}  number of IMPUs
 *
 * ims_metrics has no scrape-time callback, so the gauges are set when the figures change: the
 * store reports its counts (kept by triggers, hss_store_counts.c) after every committed write.
 * A scrape costs nothing beyond rendering the registry, whatever the number of subscribers.
 * Writes by another process on the same database file show at this HSS's next write.
 */
#include "hss_context.h"
#include "ims_http.h"

static ims_metric *g_subscribers, *g_impis, *g_impus[3];

static void publish(void *arg, const hss_store_counts *c)
{
    (void)arg;
    ims_metric_set(g_subscribers, c->subscriptions);
    ims_metric_set(g_impis, c->impis);
    for (size_t i = 0; i < 3; i++)
        ims_metric_set(g_impus[i], c->impus[i]);
}

void hss_metrics_watch(hss_store *st)
{
    static const char *const help_impu =
        "Public identities (IMPU) by registration state (TS 29.228 Annex B); sum over state for "
        "the total";

    g_subscribers = ims_metric_gauge("hss_subscribers",
                                     "IMS subscriptions (IMSU) in the subscriber database");
    g_impis = ims_metric_gauge("hss_private_identities",
                               "Private identities (IMPI) in the subscriber database");
    g_impus[HSS_REGISTERED] =
        ims_metric_gauge("hss_public_identities{state=\"registered\"}", help_impu);
    g_impus[HSS_UNREGISTERED] =
        ims_metric_gauge("hss_public_identities{state=\"unregistered\"}", help_impu);
    g_impus[HSS_NOT_REGISTERED] =
        ims_metric_gauge("hss_public_identities{state=\"not_registered\"}", help_impu);
    hss_store_on_counts(st, publish, NULL);
}
