/*
 * ims_rtpengine: the rtpengine ng control protocol client (see ims_rtpengine.h): requests.
 * Instances (sockets, health, pings, life cycle) are in ims_rtpengine_inst.c.
 *
 * References:
 *   rtpengine 10.5 "ng Control Protocol": "<cookie> <bencoded dict>" over UDP; the answer carries
 *     the request's cookie; rtpengine caches answers by cookie, so a retransmission with the same
 *     cookie is answered from the cache and never runs the command twice.
 *   Rendezvous (highest random weight) hashing: Thaler & Ravishankar, "Using name-based mappings to
 *     increase hit rates", IEEE/ACM ToN 6(1), 1998.
 *
 * A request lives in `pending` (cookie -> request) from send to completion; one su_timer per
 * request drives retransmission and failover. Nothing here blocks: sends are non-blocking (a full
 * socket buffer counts as a lost datagram and the timer retransmits).
 */
#include "ims_rtpengine_priv.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "ims_clock.h"

/* Call-IDs remembered for stickiness: a caller that never deletes cannot grow this without bound;
 * beyond it a call simply follows the hash order, which is the same order unless instances died. */
#define MAX_CALLS 200000
/* Datagrams read per wake-up before the loop gets a turn again. */
#define RX_BURST 32

static const char *const cmd_names[] = {
    [IMS_RTPE_PING] = "ping", [IMS_RTPE_OFFER] = "offer", [IMS_RTPE_ANSWER] = "answer",
    [IMS_RTPE_DELETE] = "delete", [IMS_RTPE_QUERY] = "query",
};

const char *ims_rtpe_cmd_name(ims_rtpe_cmd c)
{
    return (unsigned)c < sizeof(cmd_names) / sizeof(cmd_names[0]) ? cmd_names[c] : "?";
}

void ims_rtpe_request_init(ims_rtpe_request *req, ims_rtpe_cmd command)
{
    memset(req, 0, sizeof(*req));
    req->command = command;
    req->delete_delay = -1;
}

/* ---------- choosing instances ---------- */

/* The Call-ID's rendezvous order over all instances (highest score first), with the ims_rtpe_inst
 * that holds the call, if we know one, moved to the front. */
static void compute_order(ims_rtpe *r, ims_rtpe_req *q)
{
    uint64_t score[IMS_RTPE_MAX_INSTANCES];
    uint64_t hc = ims_hash64(q->call_id, IMS_HASH64_SEED);
    for (size_t i = 0; i < r->n; i++) {
        score[i] = ims_hash64(r->inst[i].address, hc);
        q->order[i] = (uint8_t)i;
    }
    for (size_t i = 1; i < r->n; i++)           /* insertion sort: at most 16 */
        for (size_t j = i; j > 0 && score[q->order[j]] > score[q->order[j - 1]]; j--) {
            uint8_t t = q->order[j];
            q->order[j] = q->order[j - 1];
            q->order[j - 1] = t;
        }
    q->n_order = r->n;
    uintptr_t held = (uintptr_t)ims_map_get(r->calls, q->call_id);
    if (held && held <= r->n) {
        uint8_t h = (uint8_t)(held - 1);
        size_t k = 0;
        while (q->order[k] != h)
            k++;
        memmove(&q->order[1], &q->order[0], k);
        q->order[0] = h;
    }
}

/* ---------- sending ---------- */

static void on_timer(su_root_magic_t *magic, su_timer_t *t, su_timer_arg_t *arg);

static void transmit(ims_rtpe_req *q)
{
    ims_rtpe_inst *in = &q->r->inst[q->cur];
    in->requests++;
    q->attempts++;
    q->tries++;
    q->sent_mask |= 1u << q->cur;
    if (send(in->fd, q->msg, q->msg_len, MSG_DONTWAIT) < 0) {
        /* ECONNREFUSED here is an ICMP error left by an earlier datagram: the timer decides. */
        IMS_DEBUG(IMS_RTPE_SUBSYS, "rtpengine %s: %s for Call-ID %s: send: %s", in->address,
                  ims_rtpe_cmd_name(q->cmd), q->call_id ? q->call_id : "-", strerror(errno));
    }
    su_timer_set_interval(q->timer, on_timer, q, (su_duration_t)q->r->cfg.timeout_ms);
}

/* Moves to the next instance of the order that may be asked and sends; false when none is left. */
static bool start_next(ims_rtpe_req *q)
{
    int64_t now = ims_monotonic_ms();
    q->cur = -1;
    while (q->next < q->n_order) {
        size_t i = q->order[q->next++];
        if (q->pinned || ims_rtpe_inst_live(&q->r->inst[i], now)) {
            q->cur = (int)i;
            q->last = (int)i;
            q->tries = 0;
            q->t_cur_us = ims_monotonic_us();
            transmit(q);
            return true;
        }
    }
    return false;
}

void ims_rtpe_req_free(ims_rtpe_req *q)
{
    su_timer_destroy(q->timer);
    free(q->msg);
    free(q->call_id);
    free(q);
}

/* Ends q: takes it out of pending, reports, frees it. reply/in are NULL for NO_ANSWER. */
static void finish(ims_rtpe_req *q, ims_rtpe_status st, const ims_benc *reply, ims_rtpe_inst *in)
{
    ims_rtpe *r = q->r;
    ims_map_del(r->pending, q->cookie);
    su_timer_reset(q->timer);

    ims_rtpe_result res = { .status = st, .reply = reply, .attempts = q->attempts };
    int64_t now_us = ims_monotonic_us();
    const char *cid = q->call_id ? q->call_id : "-";
    const char *cmd = ims_rtpe_cmd_name(q->cmd);
    if (in) {
        res.instance = in->address;
        res.rtt_ms = (unsigned)((now_us - q->t_cur_us) / 1000);
        res.warning = ims_benc_get_str(reply, "warning", NULL);
        if (st == IMS_RTPE_OK) {
            res.sdp = ims_benc_get_str(reply, "sdp", &res.sdp_len);
        } else {
            res.error_reason = ims_benc_get_str(reply, "error-reason", NULL);
            if (!res.error_reason)
                res.error_reason = ims_benc_get_str(reply, "result", NULL);
            if (!res.error_reason)
                res.error_reason = "answer without a result";
        }
    } else {
        res.instance = q->last >= 0 ? r->inst[q->last].address : NULL;
        res.rtt_ms = (unsigned)((now_us - q->t0_us) / 1000);
    }

    if (st == IMS_RTPE_OK)
        IMS_DEBUG(IMS_RTPE_SUBSYS, "rtpengine %s: %s for Call-ID %s: ok in %u ms", res.instance, cmd, cid, res.rtt_ms);
    else if (st == IMS_RTPE_ERROR)
        IMS_INFO(IMS_RTPE_SUBSYS, "rtpengine %s: %s for Call-ID %s: error \"%s\"", res.instance, cmd, cid, res.error_reason);
    else if (!q->pinned)
        IMS_WARN(IMS_RTPE_SUBSYS, "%s for Call-ID %s: no rtpengine answered (%u datagrams, %u ms, last asked %s)",
                 cmd, cid, q->attempts, res.rtt_ms, res.instance ? res.instance : "none: all marked dead");
    if (res.warning)
        IMS_INFO(IMS_RTPE_SUBSYS, "rtpengine %s: %s for Call-ID %s: warning \"%s\"", res.instance, cmd, cid, res.warning);

    /* Stickiness: the instance that answered holds the call; a finished delete of the whole call
     * (whatever its outcome: nothing more will be sent for it) forgets it. */
    if (q->call_id) {
        if (q->forget_call) {
            ims_map_del(r->calls, q->call_id);
        } else if (st == IMS_RTPE_OK && in) {
            uintptr_t v = in->idx + 1;
            if (ims_map_get(r->calls, q->call_id) || ims_map_count(r->calls) < MAX_CALLS) {
                if (ims_map_put(r->calls, q->call_id, (void *)v) < 0)
                    IMS_WARN(IMS_RTPE_SUBSYS, "Call-ID %s: out of memory remembering its rtpengine", cid);
            } else if (ims_log_allow(&r->calls_limit, NULL)) {
                IMS_WARN(IMS_RTPE_SUBSYS, "%d Call-IDs remembered (limit): Call-ID %s follows the hash order only",
                         MAX_CALLS, cid);
            }
        }
    }

    if (q->cb)
        q->cb(q->arg, &res);
    ims_rtpe_req_free(q);
}

static void on_timer(su_root_magic_t *magic, su_timer_t *t, su_timer_arg_t *arg)
{
    ims_rtpe_req *q = arg;
    (void)magic;
    (void)t;
    if (q->cur < 0) {                       /* nothing could be asked (see ims_rtpe_send) */
        finish(q, IMS_RTPE_NO_ANSWER, NULL, NULL);
        return;
    }
    if (q->tries <= q->r->cfg.retries) {
        transmit(q);                        /* same cookie: rtpengine answers from its cache */
        return;
    }
    ims_rtpe_inst *in = &q->r->inst[q->cur];
    in->timeouts++;
    ims_rtpe_count(in, q->cmd, "timeout");
    char why[320];
    snprintf(why, sizeof(why), "no answer to %s for Call-ID %s (%u datagrams, %u ms apart)",
             ims_rtpe_cmd_name(q->cmd), q->call_id ? q->call_id : "-", q->tries, q->r->cfg.timeout_ms);
    ims_rtpe_mark_dead(in, why);
    if (!start_next(q))
        finish(q, IMS_RTPE_NO_ANSWER, NULL, NULL);
}

/* Appends "key" + string value when v is set. */
static void put_kv(ims_strbuf *b, const char *key, const char *v)
{
    if (!v)
        return;
    ims_benc_put_cstr(b, key);
    ims_benc_put_cstr(b, v);
}

static void put_list(ims_strbuf *b, const char *key, const char *const *v, size_t n)
{
    if (!v || !n)
        return;
    ims_benc_put_cstr(b, key);
    ims_benc_open_list(b);
    for (size_t i = 0; i < n; i++)
        ims_benc_put_cstr(b, v[i]);
    ims_benc_close(b);
}

static int check_request(const ims_rtpe_request *rq, char *err, size_t errlen)
{
    const char *c = ims_rtpe_cmd_name(rq->command);
    if ((unsigned)rq->command > IMS_RTPE_QUERY) {
        ims_set_err(err, errlen, "unknown command %d", (int)rq->command);
        return -1;
    }
    if (rq->command == IMS_RTPE_PING)
        return 0;
    if (!rq->call_id || !*rq->call_id) {
        ims_set_err(err, errlen, "%s without a Call-ID", c);
        return -1;
    }
    if ((rq->command == IMS_RTPE_OFFER || rq->command == IMS_RTPE_ANSWER) &&
        (!rq->from_tag || !*rq->from_tag || !rq->sdp)) {
        ims_set_err(err, errlen, "%s for Call-ID %s without a From tag or SDP", c, rq->call_id);
        return -1;
    }
    if (rq->command == IMS_RTPE_ANSWER && (!rq->to_tag || !*rq->to_tag)) {
        ims_set_err(err, errlen, "answer for Call-ID %s without a To tag", rq->call_id);
        return -1;
    }
    if (!rq->direction[0] != !rq->direction[1]) {
        ims_set_err(err, errlen, "%s for Call-ID %s: direction needs both interfaces", c, rq->call_id);
        return -1;
    }
    return 0;
}

/* The ng dictionary, keys in BEP 3 (byte) order. */
static void encode_request(ims_strbuf *b, const ims_rtpe_request *rq)
{
    bool media = rq->command == IMS_RTPE_OFFER || rq->command == IMS_RTPE_ANSWER;
    ims_benc_open_dict(b);
    if (media) {
        put_kv(b, "DTLS", rq->dtls);
        put_kv(b, "ICE", rq->ice);
        put_list(b, "SDES", rq->sdes, rq->n_sdes);
    }
    put_kv(b, "call-id", rq->call_id);
    put_kv(b, "command", ims_rtpe_cmd_name(rq->command));
    if (rq->command == IMS_RTPE_DELETE && rq->delete_delay >= 0) {
        ims_benc_put_cstr(b, "delete-delay");
        ims_benc_put_int(b, rq->delete_delay);
    }
    if (rq->direction[0])
        put_list(b, "direction", rq->direction, 2);
    put_list(b, "flags", rq->flags, rq->n_flags);
    put_kv(b, "from-tag", rq->from_tag);
    if (media) {
        put_kv(b, "media-address", rq->media_address);
        if (rq->received_from) {
            const char *fam[2] = { strchr(rq->received_from, ':') ? "IP6" : "IP4", rq->received_from };
            put_list(b, "received-from", fam, 2);
        }
        put_list(b, "replace", rq->replace, rq->n_replace);
        ims_benc_put_cstr(b, "sdp");
        ims_benc_put_str(b, rq->sdp, rq->sdp_len ? rq->sdp_len : strlen(rq->sdp));
    }
    put_kv(b, "to-tag", rq->to_tag);
    if (media)
        put_kv(b, "transport-protocol", rq->transport_protocol);
    put_kv(b, "via-branch", rq->via_branch);
    ims_benc_close(b);
}

ims_rtpe_req *ims_rtpe_send_to(ims_rtpe *r, const ims_rtpe_request *rq, int pin, ims_rtpe_cb cb,
                              void *arg, char *err, size_t errlen)
{
    if (!r || !rq) {
        ims_set_err(err, errlen, "no client or request");
        return NULL;
    }
    if (check_request(rq, err, errlen) < 0)
        return NULL;
    ims_rtpe_req *q = calloc(1, sizeof(*q));
    if (!q)
        goto nomem;
    q->r = r;
    q->cmd = rq->command;
    q->cb = cb;
    q->arg = arg;
    q->cur = q->last = -1;
    q->t0_us = ims_monotonic_us();
    q->forget_call = rq->command == IMS_RTPE_DELETE && !rq->to_tag;
    snprintf(q->cookie, sizeof(q->cookie), "%s_%" PRIu64, r->token, ++r->counter);
    if (rq->call_id && !(q->call_id = strdup(rq->call_id)))
        goto nomem;

    ims_strbuf b = IMS_STRBUF_INIT;
    ims_strbuf_printf(&b, "%s ", q->cookie);
    encode_request(&b, rq);
    q->msg_len = b.len;
    if (!(q->msg = ims_strbuf_take(&b)))
        goto nomem;
    if (q->msg_len > IMS_RTPE_MAX_DATAGRAM) {
        ims_set_err(err, errlen, "%s for Call-ID %s: request of %zu bytes does not fit a datagram",
                    ims_rtpe_cmd_name(q->cmd), q->call_id ? q->call_id : "-", q->msg_len);
        ims_rtpe_req_free(q);
        return NULL;
    }
    if (!(q->timer = su_timer_create(su_root_task(r->root), 0)) ||
        ims_map_put(r->pending, q->cookie, q) < 0)
        goto nomem;

    if (pin >= 0) {
        q->pinned = true;
        q->order[0] = (uint8_t)pin;
        q->n_order = 1;
    } else if (q->call_id) {
        compute_order(r, q);
    } else {                                /* a ping without an instance: the first live one */
        for (size_t i = 0; i < r->n; i++)
            q->order[i] = (uint8_t)i;
        q->n_order = r->n;
    }
    /* The callback never runs inside this call: "no instance" is reported on the next round. */
    if (!start_next(q))
        su_timer_set_interval(q->timer, on_timer, q, 0);
    return q;

nomem:
    ims_set_err(err, errlen, "out of memory");
    if (q) {
        ims_map_del(r->pending, q->cookie);
        ims_rtpe_req_free(q);
    }
    return NULL;
}

ims_rtpe_req *ims_rtpe_send(ims_rtpe *r, const ims_rtpe_request *req, ims_rtpe_cb cb, void *arg,
                            char *err, size_t errlen)
{
    return ims_rtpe_send_to(r, req, -1, cb, arg, err, errlen);
}

void ims_rtpe_cancel(ims_rtpe_req *q)
{
    if (!q)
        return;
    ims_map_del(q->r->pending, q->cookie);
    /* A cancelled delete of the whole call still means the caller is done with it. */
    if (q->forget_call)
        ims_map_del(q->r->calls, q->call_id);
    ims_rtpe_req_free(q);
}

/* ---------- receiving ---------- */

static void handle_datagram(ims_rtpe_inst *in, char *buf, size_t n)
{
    ims_rtpe *r = in->r;
    char *sp = memchr(buf, ' ', n < IMS_RTPE_MAX_COOKIE ? n : IMS_RTPE_MAX_COOKIE);
    if (!sp) {
        ims_metric_inc(in->m_dropped);
        if (ims_log_allow(&r->rx_limit, NULL))
            IMS_WARN(IMS_RTPE_SUBSYS, "rtpengine %s: datagram of %zu bytes without a cookie dropped", in->address, n);
        return;
    }
    *sp = '\0';
    ims_rtpe_req *q = ims_map_get(r->pending, buf);
    if (!q || !(q->sent_mask & (1u << in->idx))) {
        /* Usually the answer to a retransmission of a request already answered. */
        IMS_DEBUG(IMS_RTPE_SUBSYS, "rtpengine %s: answer with unknown cookie %.40s dropped", in->address, buf);
        return;
    }
    char err[160];
    ims_benc_doc *d = ims_benc_decode(sp + 1, n - (size_t)(sp + 1 - buf), NULL, err, sizeof(err));
    const ims_benc *root = ims_benc_root(d);
    const char *result = ims_benc_get_str(root, "result", NULL);
    if (!result) {
        ims_metric_inc(in->m_dropped);
        if (ims_log_allow(&r->rx_limit, NULL))
            IMS_WARN(IMS_RTPE_SUBSYS, "rtpengine %s: %s for Call-ID %s: unusable answer dropped (%s)", in->address,
                     ims_rtpe_cmd_name(q->cmd), q->call_id ? q->call_id : "-",
                     d ? "not a dictionary with a result" : err);
        ims_benc_free(d);
        return;                             /* the request keeps waiting (and retransmits) */
    }
    bool ok = strcmp(result, "ok") == 0 || (q->cmd == IMS_RTPE_PING && strcmp(result, "pong") == 0);
    in->answers++;
    if (!ok)
        in->errors++;
    in->last_rtt_ms = (unsigned)((ims_monotonic_us() - q->t_cur_us) / 1000);
    ims_metric_observe_us(in->m_rtt, (uint64_t)(ims_monotonic_us() - q->t_cur_us));
    ims_rtpe_count(in, q->cmd, ok ? "ok" : "error");
    ims_rtpe_mark_up(in);
    finish(q, ok ? IMS_RTPE_OK : IMS_RTPE_ERROR, root, in);
    ims_benc_free(d);
}

int ims_rtpe_on_readable(su_root_magic_t *magic, su_wait_t *w, su_wakeup_arg_t *arg)
{
    ims_rtpe_inst *in = arg;
    ims_rtpe *r = in->r;
    (void)magic;
    (void)w;
    for (int k = 0; k < RX_BURST; k++) {
        ssize_t n = recv(in->fd, r->rxbuf, sizeof(r->rxbuf) - 1, MSG_DONTWAIT | MSG_TRUNC);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            if (errno == EINTR)
                continue;
            /* ECONNREFUSED: an ICMP port unreachable for one of our datagrams; the timers decide. */
            IMS_DEBUG(IMS_RTPE_SUBSYS, "rtpengine %s: recv: %s", in->address, strerror(errno));
            continue;
        }
        if ((size_t)n > IMS_RTPE_MAX_DATAGRAM) {
            ims_metric_inc(in->m_dropped);
            if (ims_log_allow(&r->rx_limit, NULL))
                IMS_WARN(IMS_RTPE_SUBSYS, "rtpengine %s: oversized datagram (%zd bytes) dropped", in->address, n);
            continue;
        }
        r->rxbuf[n] = '\0';
        handle_datagram(in, r->rxbuf, (size_t)n);
    }
    return 0;
}
