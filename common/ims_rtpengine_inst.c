/*
 * ims_rtpengine_inst: the rtpengine instances of the ng client (see ims_rtpengine.h): address
 * parsing and sockets, dead marking and health, metrics, health pings, create and destroy.
 *
 * One connected UDP socket per instance, registered with the su_root: the kernel passes only that
 * instance's datagrams (a spoofed answer from another address never reaches us).
 */
#include "ims_rtpengine_priv.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ims_clock.h"

void ims_rtpe_config_init(ims_rtpe_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->timeout_ms = 1000;
    cfg->retries = 2;
    cfg->dead_s = 30;
}

/* ---------- instances: health and metrics ---------- */

void ims_rtpe_count(ims_rtpe_inst *in, ims_rtpe_cmd cmd, const char *result)
{
    if (!in->r->prefix)
        return;
    char name[256];
    snprintf(name, sizeof(name), "%s_rtpengine_requests_total{instance=\"%s\",command=\"%s\",result=\"%s\"}",
             in->r->prefix, in->address, ims_rtpe_cmd_name(cmd), result);
    ims_metric_inc(ims_metric_counter(name, "rtpengine ng requests by instance, command and outcome "
                                            "(timeout: the instance did not answer any retransmission)"));
}

static void update_live_gauge(ims_rtpe *r)
{
    if (r->m_live)
        ims_metric_set(r->m_live, (int64_t)ims_rtpe_live(r));
}

bool ims_rtpe_inst_live(ims_rtpe_inst *in, int64_t now_ms)
{
    if (in->dead_until_ms && now_ms >= in->dead_until_ms) {
        in->dead_until_ms = 0;
        ims_metric_set(in->m_up, 1);
        IMS_INFO(IMS_RTPE_SUBSYS, "rtpengine %s: dead time over, asking it again", in->address);
    }
    return in->dead_until_ms == 0;
}

void ims_rtpe_mark_dead(ims_rtpe_inst *in, const char *why)
{
    bool was_up = in->dead_until_ms == 0;
    unsigned dead_s = in->r->cfg.dead_s;
    in->dead_until_ms = ims_monotonic_ms() + (int64_t)dead_s * 1000;
    if (in->dead_until_ms == 0)
        in->dead_until_ms = 1;
    if (was_up) {
        IMS_WARN(IMS_RTPE_SUBSYS, "rtpengine %s marked dead for %u s: %s", in->address, dead_s, why);
        ims_metric_set(in->m_up, 0);
        update_live_gauge(in->r);
    }
}

void ims_rtpe_mark_up(ims_rtpe_inst *in)
{
    if (in->dead_until_ms) {
        in->dead_until_ms = 0;
        IMS_INFO(IMS_RTPE_SUBSYS, "rtpengine %s answers again: up", in->address);
        ims_metric_set(in->m_up, 1);
        update_live_gauge(in->r);
    }
}

size_t ims_rtpe_instances(const ims_rtpe *r)
{
    return r ? r->n : 0;
}

size_t ims_rtpe_live(const ims_rtpe *r)
{
    if (!r)
        return 0;
    size_t live = 0;
    int64_t now = ims_monotonic_ms();
    for (size_t i = 0; i < r->n; i++)
        if (!r->inst[i].dead_until_ms || now >= r->inst[i].dead_until_ms)
            live++;
    return live;
}

int ims_rtpe_instance(const ims_rtpe *r, size_t i, ims_rtpe_instance_info *out)
{
    if (!r || i >= r->n || !out)
        return -1;
    const ims_rtpe_inst *in = &r->inst[i];
    out->address = in->address;
    out->up = !in->dead_until_ms || ims_monotonic_ms() >= in->dead_until_ms;
    out->requests = in->requests;
    out->answers = in->answers;
    out->errors = in->errors;
    out->timeouts = in->timeouts;
    out->last_rtt_ms = in->last_rtt_ms;
    return 0;
}

size_t ims_rtpe_pending(const ims_rtpe *r)
{
    return r ? ims_map_count(r->pending) : 0;
}

size_t ims_rtpe_calls(const ims_rtpe *r)
{
    return r ? ims_map_count(r->calls) : 0;
}

/* ---------- health pings ---------- */

static void on_ping_answer(void *arg, const ims_rtpe_result *res)
{
    ims_rtpe_inst *in = arg;
    in->ping_out = false;
    (void)res;  /* an answer marked it up in handle_datagram, a timeout dead in on_timer */
}

static void on_ping_timer(su_root_magic_t *magic, su_timer_t *t, su_timer_arg_t *arg)
{
    ims_rtpe *r = arg;
    (void)magic;
    (void)t;
    ims_rtpe_request rq;
    ims_rtpe_request_init(&rq, IMS_RTPE_PING);
    for (size_t i = 0; i < r->n; i++) {
        ims_rtpe_inst *in = &r->inst[i];
        if (in->ping_out)
            continue;
        char err[128];
        if (ims_rtpe_send_to(r, &rq, (int)i, on_ping_answer, in, err, sizeof(err)))
            in->ping_out = true;
        else
            IMS_WARN(IMS_RTPE_SUBSYS, "rtpengine %s: health ping not sent: %s", in->address, err);
    }
    su_timer_set_interval(r->ping_timer, on_ping_timer, r, (su_duration_t)r->cfg.ping_s * 1000);
}

/* ---------- life cycle ---------- */

/* "host:port" or "[v6]:port" -> connected non-blocking UDP socket. Resolving may block: this runs
 * once at start, before the loop serves traffic. */
static int open_instance(ims_rtpe_inst *in, char *err, size_t errlen)
{
    const char *a = in->address;
    char host[256];
    const char *port;
    for (const char *c = a; *c; c++)
        if (!(c[0] >= '0' && c[0] <= '9') && !(c[0] >= 'a' && c[0] <= 'z') && !(c[0] >= 'A' && c[0] <= 'Z') &&
            !strchr(".-_:[]%", c[0])) {
            ims_set_err(err, errlen, "rtpengine address \"%s\": unexpected character", a);
            return -1;
        }
    if (a[0] == '[') {
        const char *e = strchr(a, ']');
        if (!e || e[1] != ':' || (size_t)(e - a - 1) >= sizeof(host)) {
            ims_set_err(err, errlen, "rtpengine address \"%s\": expected [IPv6]:port", a);
            return -1;
        }
        memcpy(host, a + 1, (size_t)(e - a - 1));
        host[e - a - 1] = '\0';
        port = e + 2;
    } else {
        const char *c = strrchr(a, ':');
        if (!c || c == a || strchr(a, ':') != c || (size_t)(c - a) >= sizeof(host)) {
            ims_set_err(err, errlen, "rtpengine address \"%s\": expected host:port", a);
            return -1;
        }
        memcpy(host, a, (size_t)(c - a));
        host[c - a] = '\0';
        port = c + 1;
    }
    char *end;
    long p = strtol(port, &end, 10);
    if (!*port || *end || p < 1 || p > 65535) {
        ims_set_err(err, errlen, "rtpengine address \"%s\": bad port", a);
        return -1;
    }
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM }, *ai = NULL;
    int rc = getaddrinfo(host, port, &hints, &ai);
    if (rc != 0 || !ai) {
        ims_set_err(err, errlen, "rtpengine address \"%s\": %s", a, gai_strerror(rc));
        return -1;
    }
    in->fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (in->fd < 0 || connect(in->fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        ims_set_err(err, errlen, "rtpengine %s: socket: %s", a, strerror(errno));
        freeaddrinfo(ai);
        return -1;
    }
    freeaddrinfo(ai);
    su_wait_t w[1];
    if (su_wait_create(w, in->fd, SU_WAIT_IN) < 0 ||
        (in->wait_index = su_root_register(in->r->root, w, ims_rtpe_on_readable, in, 0)) <= 0) {
        in->wait_index = 0;
        ims_set_err(err, errlen, "rtpengine %s: cannot register its socket with the loop", a);
        return -1;
    }
    return 0;
}

ims_rtpe *ims_rtpe_create(su_root_t *root, const ims_rtpe_config *cfg, char *err, size_t errlen)
{
    if (!root || !cfg || !cfg->addresses || cfg->n_addresses == 0 ||
        cfg->n_addresses > IMS_RTPE_MAX_INSTANCES) {
        ims_set_err(err, errlen, "rtpengine: 1 to %d control addresses needed", IMS_RTPE_MAX_INSTANCES);
        return NULL;
    }
    if (cfg->timeout_ms == 0) {
        ims_set_err(err, errlen, "rtpengine: timeout_ms must be above 0");
        return NULL;
    }
    ims_rtpe *r = calloc(1, sizeof(*r));
    if (!r) {
        ims_set_err(err, errlen, "out of memory");
        return NULL;
    }
    r->root = root;
    r->cfg = *cfg;
    r->cfg.addresses = NULL;
    for (size_t i = 0; i < IMS_RTPE_MAX_INSTANCES; i++)
        r->inst[i].fd = -1;
    uint8_t rnd[8];
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
        ims_set_err(err, errlen, "getrandom: %s", strerror(errno));
        goto fail;
    }
    for (size_t i = 0; i < sizeof(rnd); i++)
        snprintf(r->token + 2 * i, 3, "%02x", rnd[i]);
    if (!(r->pending = ims_map_new()) || !(r->calls = ims_map_new()) ||
        (cfg->metrics_prefix && !(r->prefix = strdup(cfg->metrics_prefix)))) {
        ims_set_err(err, errlen, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < cfg->n_addresses; i++) {
        ims_rtpe_inst *in = &r->inst[i];
        in->r = r;
        in->idx = i;
        r->n = i + 1;
        if (!cfg->addresses[i] || !(in->address = strdup(cfg->addresses[i]))) {
            ims_set_err(err, errlen, "rtpengine: address %zu missing", i + 1);
            goto fail;
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(r->inst[j].address, in->address) == 0) {
                ims_set_err(err, errlen, "rtpengine address \"%s\" listed twice", in->address);
                goto fail;
            }
        if (open_instance(in, err, errlen) < 0)
            goto fail;
        if (r->prefix) {
            char name[256];
            snprintf(name, sizeof(name), "%s_rtpengine_up{instance=\"%s\"}", r->prefix, in->address);
            in->m_up = ims_metric_gauge(name, "1 while this rtpengine is not marked dead");
            ims_metric_set(in->m_up, 1);
            snprintf(name, sizeof(name), "%s_rtpengine_rtt_seconds{instance=\"%s\"}", r->prefix, in->address);
            in->m_rtt = ims_metric_histogram(name, "rtpengine ng request to answer, answered attempts");
            snprintf(name, sizeof(name), "%s_rtpengine_answers_dropped_total{instance=\"%s\"}", r->prefix,
                     in->address);
            in->m_dropped = ims_metric_counter(name, "datagrams from this rtpengine dropped as unusable "
                                                     "(no cookie, not bencode, no result, oversized)");
        }
    }
    if (r->prefix) {
        char name[128];
        snprintf(name, sizeof(name), "%s_rtpengine_live", r->prefix);
        r->m_live = ims_metric_gauge(name, "rtpengine instances not marked dead");
        update_live_gauge(r);
    }
    if (cfg->ping_s) {
        if (!(r->ping_timer = su_timer_create(su_root_task(root), 0)) ||
            su_timer_set_interval(r->ping_timer, on_ping_timer, r, 0) < 0) {
            ims_set_err(err, errlen, "rtpengine: cannot start the health ping timer");
            goto fail;
        }
    }
    IMS_INFO(IMS_RTPE_SUBSYS, "%zu rtpengine instance(s), timeout %u ms x %u, dead time %u s, ping every %u s",
             r->n, cfg->timeout_ms, cfg->retries + 1, cfg->dead_s, cfg->ping_s);
    return r;
fail:
    ims_rtpe_destroy(r);
    return NULL;
}

static int drop_pending(void *arg, const char *key, void *val)
{
    ims_rtpe *r = arg;
    ims_map_del(r->pending, key);
    ims_rtpe_req_free(val);
    return 0;
}

void ims_rtpe_destroy(ims_rtpe *r)
{
    if (!r)
        return;
    if (r->pending) {
        ims_map_foreach(r->pending, drop_pending, r);
        ims_map_free(r->pending);
    }
    ims_map_free(r->calls);
    su_timer_destroy(r->ping_timer);
    for (size_t i = 0; i < r->n; i++) {
        ims_rtpe_inst *in = &r->inst[i];
        if (in->wait_index > 0)
            su_root_deregister(r->root, in->wait_index);
        if (in->fd >= 0)
            close(in->fd);
        free(in->address);
    }
    free(r->prefix);
    free(r);
}
