/*
 * ims_metrics: the process-wide metric registry and its Prometheus rendering. See ims_http.h.
 *
 * References:
 *   Prometheus text exposition format 0.0.4
 *     (https://prometheus.io/docs/instrumenting/exposition_formats/): one "# HELP" and one "# TYPE"
 *     line per metric family, all samples of a family directly after them; histogram samples are
 *     <name>_bucket{le="..."} (cumulative, ending with le="+Inf"), <name>_sum and <name>_count.
 *   Prometheus metric and label naming: [a-zA-Z_:][a-zA-Z0-9_:]*.
 *
 * Concurrency: registration and rendering take one mutex (they are rare); updates are single
 * __atomic read-modify-writes on int64/uint64 words, so hot paths (Diameter and SIP handlers) never
 * take a lock. Metrics are never freed: callers keep the pointers for the life of the process.
 */
#include "ims_http.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ims_log.h"
#include "ims_map.h"
#include "ims_strbuf.h"

#define SUBSYS "metrics"

typedef enum { M_COUNTER, M_GAUGE, M_HISTOGRAM } metric_type;

/* Bucket upper bounds in microseconds (observe() takes microseconds) and as printed in le="...".
 * Fixed so every NF's latency histograms can be aggregated across pods. */
static const uint64_t bucket_us[] = {
    500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000, 5000000,
};
static const char *const bucket_le[] = {
    "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5",
    "5",
};
#define N_BOUNDS (sizeof(bucket_us) / sizeof(bucket_us[0]))
#define N_BUCKETS (N_BOUNDS + 1) /* + the +Inf bucket */

struct ims_metric {
    metric_type type;
    char *full;                 /* as registered: base{labels} */
    char *base;                 /* family name */
    char *labels;               /* between the braces, "" if none */
    char *help;
    int64_t value;              /* counter / gauge */
    uint64_t buckets[N_BUCKETS]; /* histogram: per-bucket (non-cumulative) counts */
    uint64_t sum_us;            /* histogram: sum of observations */
};

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static ims_metric **g_metrics;
static size_t g_count, g_cap;
/* full name -> metric: handlers look their labelled series up by name on every request
 * (snprintf of the labels, then this), so the lookup is a hash, not a scan of every metric. */
static ims_map *g_index;

static const char *type_name(metric_type t)
{
    switch (t) {
    case M_COUNTER: return "counter";
    case M_GAUGE: return "gauge";
    case M_HISTOGRAM: return "histogram";
    }
    return "untyped";
}

static bool name_char(char c, bool first)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':')
        return true;
    return !first && c >= '0' && c <= '9';
}

/* Splits "base{labels}" into its parts; rejects names Prometheus would refuse to parse, because a
 * bad name would otherwise break the whole scrape, not just one sample. */
static int split_name(const char *name, char **base, char **labels)
{
    size_t n = 0;
    while (name[n] && name[n] != '{') {
        if (!name_char(name[n], n == 0))
            return -1;
        n++;
    }
    if (n == 0)
        return -1;
    const char *lab = "";
    size_t lablen = 0;
    if (name[n] == '{') {
        lab = name + n + 1;
        lablen = strlen(lab);
        if (lablen == 0 || lab[lablen - 1] != '}')
            return -1;
        lablen--; /* drop '}' */
    }
    *base = strndup(name, n);
    *labels = strndup(lab, lablen);
    if (!*base || !*labels) {
        free(*base);
        free(*labels);
        return -1;
    }
    return 0;
}

static ims_metric *metric_register(const char *name, const char *help, metric_type type)
{
    if (!name)
        return NULL;
    pthread_mutex_lock(&g_lock);
    ims_metric *found = g_index ? ims_map_get(g_index, name) : NULL;
    if (found) {
        pthread_mutex_unlock(&g_lock);
        if (found->type != type) {
            IMS_ERROR(SUBSYS, "metric %s already registered as a %s", name, type_name(found->type));
            return NULL;
        }
        return found;
    }

    ims_metric *m = calloc(1, sizeof(*m));
    if (!m || split_name(name, &m->base, &m->labels) != 0) {
        pthread_mutex_unlock(&g_lock);
        IMS_ERROR(SUBSYS, "invalid metric name '%s'", name);
        free(m);
        return NULL;
    }
    /* One family has one type: a counter and a gauge under the same base name would produce
     * two # TYPE lines, which Prometheus rejects. */
    for (size_t i = 0; i < g_count; i++) {
        if (strcmp(g_metrics[i]->base, m->base) == 0 && g_metrics[i]->type != type) {
            pthread_mutex_unlock(&g_lock);
            IMS_ERROR(SUBSYS, "metric family %s already has type %s", m->base,
                      type_name(g_metrics[i]->type));
            free(m->base);
            free(m->labels);
            free(m);
            return NULL;
        }
    }
    m->type = type;
    m->full = strdup(name);
    m->help = strdup(help ? help : "");
    if (g_count == g_cap) {
        size_t ncap = g_cap ? g_cap * 2 : 32;
        ims_metric **nm = realloc(g_metrics, ncap * sizeof(*nm));
        if (!nm) {
            pthread_mutex_unlock(&g_lock);
            free(m->full), free(m->help), free(m->base), free(m->labels), free(m);
            return NULL;
        }
        g_metrics = nm;
        g_cap = ncap;
    }
    if (!m->full || !m->help) {
        pthread_mutex_unlock(&g_lock);
        free(m->full), free(m->help), free(m->base), free(m->labels), free(m);
        return NULL;
    }
    if (!g_index)
        g_index = ims_map_new();
    if (!g_index || ims_map_put(g_index, m->full, m) != 0) {
        pthread_mutex_unlock(&g_lock);
        free(m->full), free(m->help), free(m->base), free(m->labels), free(m);
        return NULL;
    }
    g_metrics[g_count++] = m;
    pthread_mutex_unlock(&g_lock);
    return m;
}

ims_metric *ims_metric_counter(const char *name, const char *help)
{
    return metric_register(name, help, M_COUNTER);
}

ims_metric *ims_metric_gauge(const char *name, const char *help)
{
    return metric_register(name, help, M_GAUGE);
}

ims_metric *ims_metric_histogram(const char *name, const char *help)
{
    return metric_register(name, help, M_HISTOGRAM);
}

/* Updates accept NULL so that a failed registration (logged above) never crashes a hot path. */
void ims_metric_inc(ims_metric *m)
{
    if (m)
        __atomic_fetch_add(&m->value, 1, __ATOMIC_RELAXED);
}

void ims_metric_add(ims_metric *m, int64_t v)
{
    if (m)
        __atomic_fetch_add(&m->value, v, __ATOMIC_RELAXED);
}

void ims_metric_set(ims_metric *m, int64_t v)
{
    if (m)
        __atomic_store_n(&m->value, v, __ATOMIC_RELAXED);
}

int64_t ims_metric_value(const ims_metric *m)
{
    if (!m)
        return 0;
    if (m->type == M_HISTOGRAM) {
        uint64_t n = 0;
        for (size_t i = 0; i < N_BUCKETS; i++)
            n += __atomic_load_n(&m->buckets[i], __ATOMIC_RELAXED);
        return (int64_t)n;
    }
    return __atomic_load_n(&m->value, __ATOMIC_RELAXED);
}

void ims_metric_observe_us(ims_metric *m, uint64_t usec)
{
    if (!m || m->type != M_HISTOGRAM)
        return;
    size_t b = 0;
    while (b < N_BOUNDS && usec > bucket_us[b]) /* le = "less than or equal" */
        b++;
    __atomic_fetch_add(&m->buckets[b], 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&m->sum_us, usec, __ATOMIC_RELAXED);
}

/* ---------- rendering ---------- */

/* HELP text escaping per format 0.0.4: backslash and line feed only. */
static void sb_help(ims_strbuf *sb, const char *help)
{
    for (const char *p = help; *p; p++) {
        if (*p == '\\')
            ims_strbuf_printf(sb, "\\\\");
        else if (*p == '\n')
            ims_strbuf_printf(sb, "\\n");
        else
            ims_strbuf_printf(sb, "%c", *p);
    }
}

/* "name{labels}" or "name" when there are no labels. */
static void sb_series(ims_strbuf *sb, const char *base, const char *suffix, const char *labels)
{
    if (labels[0])
        ims_strbuf_printf(sb, "%s%s{%s}", base, suffix, labels);
    else
        ims_strbuf_printf(sb, "%s%s", base, suffix);
}

static void render_histogram(ims_strbuf *sb, const ims_metric *m)
{
    /* Snapshot the buckets first so that the cumulative counts, +Inf and _count agree with each
     * other within one scrape even while other threads keep observing. */
    uint64_t snap[N_BUCKETS];
    for (size_t i = 0; i < N_BUCKETS; i++)
        snap[i] = __atomic_load_n(&m->buckets[i], __ATOMIC_RELAXED);
    uint64_t sum_us = __atomic_load_n(&m->sum_us, __ATOMIC_RELAXED);
    const char *sep = m->labels[0] ? "," : "";

    uint64_t cum = 0;
    for (size_t i = 0; i < N_BUCKETS; i++) {
        cum += snap[i];
        const char *le = i < N_BOUNDS ? bucket_le[i] : "+Inf";
        ims_strbuf_printf(sb, "%s_bucket{%s%sle=\"%s\"} %" PRIu64 "\n", m->base, m->labels, sep, le, cum);
    }
    sb_series(sb, m->base, "_sum", m->labels);
    ims_strbuf_printf(sb, " %" PRIu64 ".%06" PRIu64 "\n", sum_us / 1000000, sum_us % 1000000);
    sb_series(sb, m->base, "_count", m->labels);
    ims_strbuf_printf(sb, " %" PRIu64 "\n", cum);
}

char *ims_metrics_render(void)
{
    ims_strbuf sb = IMS_STRBUF_INIT;

    pthread_mutex_lock(&g_lock);
    bool *done = calloc(g_count ? g_count : 1, sizeof(bool));
    if (!done) {
        pthread_mutex_unlock(&g_lock);
        return NULL;
    }
    /* Families in registration order; every member of a family is printed right after the
     * family's header, wherever it was registered, because 0.0.4 requires a family's samples to
     * be contiguous. */
    for (size_t i = 0; i < g_count; i++) {
        if (done[i])
            continue;
        const ims_metric *head = g_metrics[i];
        ims_strbuf_printf(&sb, "# HELP %s ", head->base);
        sb_help(&sb, head->help);
        ims_strbuf_printf(&sb, "\n# TYPE %s %s\n", head->base, type_name(head->type));
        for (size_t j = i; j < g_count; j++) {
            const ims_metric *m = g_metrics[j];
            if (done[j] || strcmp(m->base, head->base) != 0)
                continue;
            done[j] = true;
            if (m->type == M_HISTOGRAM) {
                render_histogram(&sb, m);
            } else {
                sb_series(&sb, m->base, "", m->labels);
                ims_strbuf_printf(&sb, " %" PRId64 "\n", __atomic_load_n(&m->value, __ATOMIC_RELAXED));
            }
        }
    }
    pthread_mutex_unlock(&g_lock);
    free(done);

    return ims_strbuf_take(&sb); /* NULL when an allocation failed */
}
