/*
 * ims_sip: the SIP loop of a CSCF — sofia-sip su_root + nta agent, the default leg, cross-thread
 * hand-over (ims_sip_defer / ims_sip_stop), one-shot timers and the "sip:" configuration section.
 * Forwarding is in ims_sip_proxy.c, header and identity helpers in ims_sip_hdr.c, the static host
 * table, sip.advertise and "is this URI us" in ims_sip_hosts.c.
 *
 * Threads (docs/design.md "Threads and loops"): the su_root belongs to the thread that creates it;
 * create, run and destroy on that thread. Only ims_sip_stop() and ims_sip_defer() may be called
 * from other threads: they queue work under a mutex and wake the loop through an eventfd that
 * is registered with su_root_register().
 *
 * nta runs transaction-stateful (RFC 3261 §17): retransmissions, ACK of non-2xx finals and
 * CANCEL matching are done by nta; requests that start a new server transaction reach the
 * NF through the default leg (NTATAG_NO_DIALOG: we keep no dialog state in nta).
 *
 * References: RFC 3261 §16 (proxy), §17 (transactions), §18 (transport: rport RFC 3581).
 */
#include "ims_sip_priv.h"
#include "ims_http.h"
#include "ims_log.h"

#include <errno.h>
#include <malloc.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <sofia-sip/nta_tag.h>
#include <sofia-sip/tport_tag.h>
#include <sofia-sip/su.h>
#include <sofia-sip/url.h>

/* ---------- configuration ---------- */

static const char *const core_transports[] = { "udp", "tcp", NULL };

const ims_cfg_field ims_sip_cfg_fields[] = {
    { .key = "listen", .type = IMS_CFG_STR, .offset = offsetof(ims_sip_cfg, listen), .def = "127.0.0.1",
      .help = "SIP listen address, UDP and TCP (IPv4 or IPv6 literal)" },
    { .key = "port", .type = IMS_CFG_INT, .offset = offsetof(ims_sip_cfg, port), .def = "5060",
      .min = 1, .max = 65535, .help = "SIP port (UDP and TCP)" },
    { .key = "hostname", .type = IMS_CFG_STR, .offset = offsetof(ims_sip_cfg, hostname),
      .help = "a host name peers use for this NF (through their sip.hosts or DNS), recognised as ours "
              "in Request-URI and Route; never written into headers (see advertise)" },
    { .key = "advertise", .type = IMS_CFG_STR, .offset = offsetof(ims_sip_cfg, advertise),
      .help = "host[:port] this NF writes into Path, Record-Route, Service-Route and its own requests: "
              "an address its peers (UEs, for the P-CSCF) can reach, e.g. the published address "
              "behind NAT, compose or Kubernetes; default: the listen address and port" },
    { .key = "hosts", .type = IMS_CFG_STRLIST, .offset = offsetof(ims_sip_cfg, hosts),
      .help = "static name table, items name=address (e.g. scscf.ims.lab=10.0.0.3), used before DNS" },
    { .key = "max_transactions", .type = IMS_CFG_INT, .offset = offsetof(ims_sip_cfg, max_transactions),
      .def = "2000", .min = 0, .max = 10000000,
      .help = "overload limit: requests in progress (forwards, own requests, Cx) at which new "
              "out-of-dialog requests get 503 with Retry-After; 0: no limit" },
    { .key = "retry_after", .type = IMS_CFG_INT, .offset = offsetof(ims_sip_cfg, retry_after),
      .def = "2", .min = 1, .max = 3600, .help = "seconds in the Retry-After of an overload 503" },
    /* 1800 s is sofia-sip 1.12.11's own built-in idle time (docs/pitfalls.md), so the default
     * changes nothing. A UE on TCP keeps its connection while it re-registers or sends RFC 5626
     * CRLF keep-alives more often than that (e.g. 600 s registrations, refreshed at half time);
     * one with 3600 s registrations, refreshed 600 s before expiry (TS 24.229 §5.1.1.4), and
     * no keep-alives loses it after 30 min, as it did before: raise the key for such UEs. */
    { .key = "tcp_idle_timeout", .type = IMS_CFG_INT, .offset = offsetof(ims_sip_cfg, tcp_idle_timeout),
      .def = "1800", .min = 1, .max = 86400,
      .help = "seconds after which a TCP connection that carried nothing (no message, no keep-alive) "
              "is closed (sip_tcp_idle_closed_total)" },
    { .key = "tcp_max_per_address", .type = IMS_CFG_INT, .offset = offsetof(ims_sip_cfg, tcp_max_per_address),
      .def = "64", .min = 0, .max = 1000000,
      .help = "TCP connections accepted from one IP address; further ones are closed at once "
              "(sip_tcp_refused_total); 0: no limit" },
    /* 4 MiB asked, 8 MiB kept by the kernel (socket(7) doubles it). A SIP datagram of ~1 KiB
     * takes ~2.3 KiB of that (its skb truesize: 2,304 bytes for 800 bytes of payload on
     * loopback), so the queue holds ~3,600 datagrams: about a second of the benchmark's peak
     * registration load at the P-CSCF (1,200 registrations/s, two REGISTERs and two responses
     * each) — enough to ride out a stall of the loop, and half of it (udp_shed_percent) before
     * new requests get 503. The kernel default (212,992 bytes, ~90 datagrams) overflows after
     * ~20 ms of such load. It is also net.core.rmem_max of our test machines; on a stock Debian
     * (212,992) the NF warns at start unless it has CAP_NET_ADMIN (SO_RCVBUFFORCE). */
    { .key = "udp_rcvbuf", .type = IMS_CFG_INT, .offset = offsetof(ims_sip_cfg, udp_rcvbuf),
      .def = "4194304", .min = 0, .max = 536870912,
      .help = "bytes of receive buffer for each SIP UDP socket (the kernel keeps twice that; above "
              "net.core.rmem_max only with CAP_NET_ADMIN); a full buffer drops datagrams "
              "(sip_udp_socket_drops_total); 0: the kernel default" },
    /* Sends only wait in the send buffer until the interface took them (loopback: at once), and
     * nta retransmits what a full one refused: the kernel default (212,992) is enough. */
    { .key = "udp_sndbuf", .type = IMS_CFG_INT, .offset = offsetof(ims_sip_cfg, udp_sndbuf),
      .def = "0", .min = 0, .max = 536870912,
      .help = "bytes of send buffer for each SIP UDP socket (the kernel keeps twice that; above "
              "net.core.wmem_max only with CAP_NET_ADMIN); 0: the kernel default" },
    { .key = "udp_shed_percent", .type = IMS_CFG_INT, .offset = offsetof(ims_sip_cfg, udp_shed_percent),
      .def = "50", .min = 0, .max = 90,
      .help = "when a SIP UDP receive queue holds this % of its buffer, new out-of-dialog requests "
              "get 503 with Retry-After (sip_udp_queue_rejected_total) until every queue is below "
              "half of it, so that load is refused before the kernel drops it; 0: never" },
    { .key = "core_transport", .type = IMS_CFG_ENUM, .offset = offsetof(ims_sip_cfg, core_transport),
      .def = "tcp", .enum_names = core_transports,
      .help = "transport between the network elements of the core: tcp (default: no 32 s retention of "
              "completed transactions, no datagram drops between CSCFs) or udp; written as "
              ";transport= into Path, Service-Route, the core-facing Record-Route and subscription "
              "Contacts; UEs keep the transport they use" },
    { .key = NULL },
};

/* ---------- library init ---------- */

static pthread_once_t su_once = PTHREAD_ONCE_INIT;
static int su_init_result;

/* su_init() sets up sofia's process-wide state (port implementation, sockets); it is done once
 * and never undone, because several ims_sip instances (tests) may live in one process. */
static void su_init_once(void)
{
    su_init_result = su_init();
}

/* ---------- defer queue and stop ---------- */

static void wake(ims_sip *s)
{
    uint64_t one = 1;
    /* EAGAIN means the counter is already non-zero: the loop will wake up anyway. */
    ssize_t n = write(s->efd, &one, sizeof(one));
    (void)n;
}

/* Runs everything queued so far, in order. Items queued while running wait for the next wake-up
 * (the eventfd was written again), so one busy producer cannot starve the SIP traffic. */
static void run_deferred(ims_sip *s)
{
    pthread_mutex_lock(&s->lock);
    ims_sip_defer_item *list = s->dq_head;
    s->dq_head = NULL;
    s->dq_tail = &s->dq_head;
    pthread_mutex_unlock(&s->lock);

    while (list) {
        ims_sip_defer_item *it = list;
        list = it->next;
        it->fn(it->arg);
        free(it);
    }
}

static int on_wake(su_root_magic_t *magic, su_wait_t *w, su_wakeup_arg_t *arg)
{
    ims_sip *s = arg;
    uint64_t v;
    ssize_t n = read(s->efd, &v, sizeof(v));
    (void)n;
    (void)magic;
    (void)w;

    run_deferred(s);
    if (atomic_load(&s->stopping))
        su_root_break(s->root);
    return 0;
}

int ims_sip_defer(ims_sip *s, void (*fn)(void *arg), void *arg)
{
    if (!s || !fn)
        return -1;
    ims_sip_defer_item *it = calloc(1, sizeof(*it));
    if (!it)
        return -1;
    it->fn = fn;
    it->arg = arg;

    pthread_mutex_lock(&s->lock);
    *s->dq_tail = it;
    s->dq_tail = &it->next;
    pthread_mutex_unlock(&s->lock);

    wake(s);
    return 0;
}

void ims_sip_stop(ims_sip *s)
{
    if (!s)
        return;
    atomic_store(&s->stopping, true);
    wake(s);
}

/* sofia's loop (su_base_port_run) turns the time to the next timer into whole milliseconds by
 * truncation (su_duration): a timer due in under 1 ms gives epoll_wait a timeout of 0, and the
 * loop polls without sleeping until the timer is due. nta arms a timer for almost every
 * transaction, so under load the loop spent about 40 % of a CSCF's CPU in such zero-timeout
 * epoll_wait/clock_gettime rounds (perf, issue 16). This hook runs first in every round and fires
 * the timers due within the next millisecond, so the wait that follows is at least 1 ms (or
 * until a socket is readable); a timer fires at most 1 ms early, within the loop's millisecond
 * resolution anyway. */
static void run_due_timers(su_prepoll_magic_t *magic, su_root_t *root)
{
    su_duration_t tout = SU_WAIT_FOREVER;
    (void)magic;
    su_timer_expire(su_task_timers(su_root_task(root)), &tout, su_time_add(su_now(), 1));
}

void ims_sip_run(ims_sip *s)
{
    if (!s)
        return;
    /* A stop that came before run is still pending in the eventfd: the first wake-up breaks. */
    su_root_run(s->root);
    /* Clear it so that the loop may be run again (tests run it in steps). */
    atomic_store(&s->stopping, false);
}

/* ---------- timers ---------- */

struct ims_sip_timer {
    ims_sip_timer *next, **prev;
    ims_sip *s;
    su_timer_t *t;
    void (*fn)(void *arg);
    void *arg;
};

static void timer_unlink(ims_sip_timer *t)
{
    if ((*t->prev = t->next))
        t->next->prev = t->prev;
}

static void timer_fired(su_root_magic_t *magic, su_timer_t *st, su_timer_arg_t *arg)
{
    ims_sip_timer *t = arg;
    void (*fn)(void *) = t->fn;
    void *fn_arg = t->arg;
    (void)magic;
    (void)st;

    /* Freed before fn runs, so that fn may start a new timer or destroy what owned this one. */
    timer_unlink(t);
    su_timer_destroy(t->t);
    free(t);
    fn(fn_arg);
}

ims_sip_timer *ims_sip_timer_start(ims_sip *s, unsigned ms, void (*fn)(void *arg), void *arg)
{
    if (!s || !fn)
        return NULL;
    ims_sip_timer *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->s = s;
    t->fn = fn;
    t->arg = arg;
    t->t = su_timer_create(su_root_task(s->root), (su_duration_t)ms);
    if (!t->t || su_timer_set_interval(t->t, timer_fired, t, (su_duration_t)ms) < 0) {
        su_timer_destroy(t->t);
        free(t);
        return NULL;
    }
    t->prev = &s->timers;
    if ((t->next = s->timers))
        t->next->prev = &t->next;
    s->timers = t;
    return t;
}

void ims_sip_timer_cancel(ims_sip_timer *t)
{
    if (!t)
        return;
    timer_unlink(t);
    su_timer_destroy(t->t);
    free(t);
}

/* ---------- memory housekeeping ---------- */

#define HOUSEKEEPING_MS 5000
#define TRIM_FREE_BYTES (32u << 20)

/* A burst of traffic leaves glibc's heap full of freed transaction memory: nta keeps every
 * completed UDP server transaction (request and response, a dozen KiB with the parsed headers)
 * for Timer J, 64*T1 = 32 s (RFC 3261 §17.2.2), so 1,000 requests/s hold ~0.5 GB for half a
 * minute. glibc returns little of it to the system on its own (the long-lived registrations sit
 * between the freed chunks), so when much of the heap is free we ask it to release the free
 * pages (malloc_trim uses MADV_DONTNEED inside the heap too). Heap figures are exported for the
 * operator: in use vs. held. */
static void housekeeping(void *arg)
{
    ims_sip *s = arg;
    static ims_metric *m_used, *m_free;
    if (!m_used) {
        m_used = ims_metric_gauge("process_heap_inuse_bytes", "heap bytes in use (glibc mallinfo2)");
        m_free = ims_metric_gauge("process_heap_free_bytes", "heap bytes free but still held (glibc mallinfo2)");
    }
    struct mallinfo2 mi = mallinfo2();
    size_t used = mi.uordblks + mi.hblkhd, freeb = mi.fordblks;
    if (freeb > TRIM_FREE_BYTES && freeb > used) {
        malloc_trim(0);
        mi = mallinfo2();
        used = mi.uordblks + mi.hblkhd;
        freeb = mi.fordblks;
    }
    ims_metric_set(m_used, (int64_t)used);
    ims_metric_set(m_free, (int64_t)freeb);
    /* what holds that memory: nta's transactions, including the completed ones it keeps for
     * retransmissions (Timer J/K, RFC 3261 §17) that our sip_transactions_active does not see */
    static ims_metric *m_irq, *m_orq;
    if (!m_irq) {
        m_irq = ims_metric_gauge("sip_nta_server_transactions",
                                 "server transactions nta holds, completed ones kept for retransmissions included");
        m_orq = ims_metric_gauge("sip_nta_client_transactions",
                                 "client transactions nta holds, completed ones kept for retransmissions included");
    }
    usize_t irqs = 0, orqs = 0;
    if (nta_agent_get_stats(s->agent, NTATAG_S_IRQ_HASH_USED_REF(irqs), NTATAG_S_ORQ_HASH_USED_REF(orqs),
                            TAG_END()) > 0) {
        ims_metric_set(m_irq, (int64_t)irqs);
        ims_metric_set(m_orq, (int64_t)orqs);
    }
    ims_sip_timer_start(s, HOUSEKEEPING_MS, housekeeping, s);
}

/* ---------- agent ---------- */

/* Events on an INVITE the NF holds (not forwarded yet, e.g. waiting for the HSS): a CANCEL is
 * answered here with 487 (nta already sent 200 to the CANCEL; with NTATAG_CANCEL_487(0) nta
 * leaves the INVITE to us, so that a forwarded INVITE gets the callee's 487, RFC 3261 §16.10).
 * Being bound also matters for the ACK of a non-2xx final and Timer H: without a callback nta
 * passes such an ACK to the default leg as a new request, and the NF would forward a
 * hop-by-hop ACK. */
int ims_sip_held_irq_event(nta_incoming_magic_t *magic, nta_incoming_t *irq, sip_t const *sip)
{
    (void)magic;
    if (sip && sip->sip_request && sip->sip_request->rq_method == sip_method_cancel &&
        nta_incoming_status(irq) < 200)
        nta_incoming_treply(irq, 487, "Request Terminated", TAG_END());
    return 0;
}

/* A single-instance header given twice (two Max-Forwards, two From...) makes sofia-sip abort
 * when it serialises a copy of the request (assertion in serialize_one): such requests are
 * refused here, before any NF sees them. The surplus instances sit in sip_error with their own
 * header class. */
static bool has_repeated_single(const sip_t *sip)
{
    for (const msg_error_t *e = sip->sip_error; e; e = e->er_next) {
        const msg_hclass_t *hc = e->er_common->h_class;
        if (hc && hc->hc_kind == msg_kind_single)
            return true;
    }
    return false;
}

/* ---------- overload control ---------- */

static _Atomic int64_t g_work;

void ims_sip_work_add(int64_t delta)
{
    static ims_metric *gauge;
    if (!gauge)
        gauge = ims_metric_gauge("sip_work_in_progress",
                                 "what overload control counts: forwards, own requests and Cx requests in progress");
    atomic_fetch_add(&g_work, delta);
    ims_metric_add(gauge, delta);
}

/* True (and the request answered 503) when an initial request arrives over the limit, or while
 * a SIP UDP receive queue is nearly full (ims_sip_udp.c). Requests inside a dialog (To tag), ACK
 * and CANCEL are never refused: they end work, they do not add it. Both reasons refuse requests
 * from every transport: it is the one loop behind them that is short of time. */
static bool shed_load(ims_sip *s, nta_incoming_t *irq, const sip_t *sip)
{
    bool over_limit = s->max_transactions != 0 && atomic_load(&g_work) >= s->max_transactions;
    if (!over_limit && !ims_sip_udp_shedding(s))
        return false;
    if (sip->sip_request->rq_method == sip_method_ack || (sip->sip_to && sip->sip_to->a_tag))
        return false;

    if (over_limit) {
        static ims_metric *rejected;
        if (!rejected)
            rejected = ims_metric_counter("sip_overload_rejected_total",
                                          "new requests answered 503 because sip.max_transactions was reached");
        ims_metric_inc(rejected);

        /* One warning per second at most: an overload is a flood by definition. */
        unsigned long held;
        if (ims_log_allow(&s->overload_log, &held))
            IMS_WARN("sip", "overload: %lld requests in progress (sip.max_transactions %u): answering new "
                     "requests 503 Retry-After %u (%s from %s; %lu more since the last warning)",
                     (long long)atomic_load(&g_work), s->max_transactions, s->retry_after,
                     sip->sip_request->rq_method_name,
                     sip->sip_from && sip->sip_from->a_url->url_user ? sip->sip_from->a_url->url_user : "?", held);
    } else {
        ims_sip_udp_count_rejected();   /* ims_sip_udp.c warns when it starts and while it lasts */
    }
    sip_retry_after_t ra[1];
    sip_retry_after_init(ra)->af_delta = s->retry_after;
    nta_incoming_treply(irq, 503, "Service Unavailable", SIPTAG_RETRY_AFTER(ra), TAG_END());
    return true;
}

/* Default leg: every request that does not belong to an existing server transaction.
 * A CANCEL gets here only when nta found no INVITE transaction for it: we are transaction
 * stateful, so there is nothing to cancel (RFC 3261 §9.2: 481). */
static int leg_request(nta_leg_magic_t *magic, nta_leg_t *leg, nta_incoming_t *irq, sip_t const *sip)
{
    ims_sip *s = (ims_sip *)magic;
    (void)leg;
    if (sip->sip_request->rq_method == sip_method_cancel)
        return 481;
    if (has_repeated_single(sip))
        return 400;   /* an ACK is dropped instead: nta never answers ACK */
    int checked = ims_sip_check_request(s, irq, sip);
    if (checked != 0)
        return checked > 0 ? checked : 0;
    if (shed_load(s, irq, sip)) {
        nta_incoming_destroy(irq);
        return 0;
    }
    if (sip->sip_request->rq_method == sip_method_invite)
        nta_incoming_bind(irq, ims_sip_held_irq_event, NULL);
    return s->on_request(s->arg, irq, sip);
}

/* With a stateless hook (ims_sip_set_stateless_intake) there is no default leg: a request that
 * matches no transaction comes here. The hook takes what it forwards statelessly; the rest gets
 * its server transaction and goes to leg_request, as nta's leg_recv does from the default leg.
 * Unlike there, irq is not inside nta's callback: nta_incoming_destroy frees a transaction that
 * is over at once (a final response on TCP), and handlers use sip after destroying irq (e.g. a
 * NOTIFY's body after its 200). A reference to the request keeps both alive (irq lives in the
 * request's home) until the handler has returned. Then its status is applied as leg_recv does:
 * nonzero and irq still unanswered gets that status (500 when not a final one of 100..699). */
static int request_without_leg(ims_sip *s, msg_t *msg, sip_t *sip)
{
    if (s->stateless_fn(s->stateless_arg, msg, sip))
        return 0;
    sip_method_t method = sip->sip_request->rq_method;
    msg_t *hold = msg_ref_create(msg);
    nta_incoming_t *irq = nta_incoming_create(s->agent, NULL, msg, sip, TAG_END());
    if (!irq) {
        IMS_WARN("sip", "%s: no server transaction (out of memory): dropped", sip->sip_request->rq_method_name);
        msg_destroy(hold);   /* nta dropped its own */
        return 0;
    }
    int status = leg_request((nta_leg_magic_t *)s, NULL, irq, sip);
    if (status != 0 && nta_incoming_status(irq) < 200) {
        if (status < 100 || status > 699 || (method == sip_method_invite && status >= 200 && status < 300))
            status = 500;
        nta_incoming_treply(irq, status, NULL, TAG_END());
        if (status >= 200)
            nta_incoming_destroy(irq);
    }
    msg_destroy(hold);
    return 0;
}

/* Messages nta could not give to a transaction or leg: responses, and requests when there is no
 * default leg (request_without_leg). */
static int agent_message(nta_agent_magic_t *magic, nta_agent_t *agent, msg_t *msg, sip_t *sip)
{
    ims_sip *s = (ims_sip *)magic;
    (void)agent;
    if (sip && sip->sip_status) {
        if (ims_sip_stateless_response(s, msg, sip))
            return 0;
        return ims_sip_stray_response(s, msg, sip);
    }
    if (sip && sip->sip_request && s->stateless_fn)
        return request_without_leg(s, msg, sip);
    msg_destroy(msg);
    return 0;
}

su_root_t *ims_sip_root(ims_sip *s) { return s ? s->root : NULL; }
nta_agent_t *ims_sip_agent(ims_sip *s) { return s ? s->agent : NULL; }
su_home_t *ims_sip_home(ims_sip *s) { return s ? s->home : NULL; }
const char *ims_sip_self_uri(const ims_sip *s) { return s ? s->self_uri : NULL; }

const char *ims_sip_core_param(const ims_sip *s)
{
    return s && s->core_transport == IMS_SIP_CORE_TCP ? ";transport=tcp" : "";
}

url_t *ims_sip_core_hop(const ims_sip *s, su_home_t *home, const url_t *target)
{
    url_t *u = target ? url_hdup(home, target) : NULL;
    if (u && *ims_sip_core_param(s) && !url_has_param(u, "transport") && url_param_add(home, u, "transport=tcp") < 0)
        return NULL;
    return u;
}

int ims_sip_set_timers(ims_sip *s, unsigned t1_ms, unsigned t1x64_ms)
{
    if (!s || !s->agent)
        return -1;
    if (t1_ms && nta_agent_set_params(s->agent, NTATAG_SIP_T1(t1_ms), TAG_END()) < 0)
        return -1;
    if (t1x64_ms && nta_agent_set_params(s->agent, NTATAG_SIP_T1X64(t1x64_ms), TAG_END()) < 0)
        return -1;
    return 0;
}

ims_sip *ims_sip_create(const ims_sip_cfg *cfg, ims_sip_request_f on_request, void *arg,
                        char *err, size_t errlen)
{
    char dummy[8];
    if (!err || !errlen)
        err = dummy, errlen = sizeof(dummy);
    err[0] = '\0';

    if (!cfg || !on_request) {
        snprintf(err, errlen, "ims_sip_create: no configuration or request callback");
        return NULL;
    }
    const char *listen = cfg->listen && *cfg->listen ? cfg->listen : "127.0.0.1";
    if (cfg->port < 1 || cfg->port > 65535) {
        snprintf(err, errlen, "sip.port: %ld is out of range 1..65535", cfg->port);
        return NULL;
    }

    pthread_once(&su_once, su_init_once);
    if (su_init_result != 0) {
        snprintf(err, errlen, "sofia-sip su_init() failed");
        return NULL;
    }

    ims_sip *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    su_home_init(s->home);
    pthread_mutex_init(&s->lock, NULL);
    s->dq_tail = &s->dq_head;
    s->efd = -1;
    s->on_request = on_request;
    s->arg = arg;
    s->port = (unsigned)cfg->port;
    s->max_transactions = cfg->max_transactions > 0 ? (unsigned)cfg->max_transactions : 0;
    s->core_transport = cfg->core_transport;
    s->retry_after = cfg->retry_after > 0 ? (unsigned)cfg->retry_after : 2;
    s->listen = su_strdup(s->home, listen);
    s->hostname = cfg->hostname && *cfg->hostname ? su_strdup(s->home, cfg->hostname) : NULL;
    if (!s->listen || ims_sip_parse_advertise(s, cfg->advertise, err, errlen) < 0) {
        if (!err[0])
            snprintf(err, errlen, "out of memory");
        goto fail;
    }

    /* An IPv6 literal needs brackets inside a URI. */
    bool v6 = strchr(listen, ':') && listen[0] != '[';
    char bind_url[300];
    bool h6 = strchr(s->adv_host, ':') != NULL;
    if (ims_sip_host_eq(s->adv_host, listen) || ims_sip_host_eq(listen, s->adv_host))
        snprintf(bind_url, sizeof(bind_url), "sip:%s%s%s:%u", v6 ? "[" : "", listen, v6 ? "]" : "", s->port);
    else    /* sofia binds to maddr and writes the URI's host into Via (RFC 3261 §18.2.1 sent-by) */
        snprintf(bind_url, sizeof(bind_url), "sip:%s%s%s:%u;maddr=%s%s%s", h6 ? "[" : "", s->adv_host,
                 h6 ? "]" : "", s->port, v6 ? "[" : "", listen, v6 ? "]" : "");
    s->self_uri = su_sprintf(s->home, "sip:%s%s%s:%u", h6 ? "[" : "", s->adv_host, h6 ? "]" : "", s->adv_port);
    if (!s->self_uri) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (ims_sip_parse_hosts(s, &cfg->hosts, err, errlen) < 0)
        goto fail;

    s->root = su_root_create(NULL);
    if (!s->root) {
        snprintf(err, errlen, "cannot create the SIP event loop (su_root_create)");
        goto fail;
    }

    if (su_root_add_prepoll(s->root, run_due_timers, NULL) < 0) {
        snprintf(err, errlen, "cannot add the timer hook to the SIP event loop");
        goto fail;
    }

    s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (s->efd < 0) {
        snprintf(err, errlen, "eventfd: %s", strerror(errno));
        goto fail;
    }
    su_wait_t w[1];
    if (su_wait_create(w, s->efd, SU_WAIT_IN) < 0 ||
        (s->wait_index = su_root_register(s->root, w, on_wake, s, 0)) <= 0) {
        s->wait_index = 0;
        snprintf(err, errlen, "cannot register the wake-up eventfd with the SIP loop");
        goto fail;
    }

    errno = 0;
    /* Exported from the start (0), so an idle CSCF shows it too (ims_sip_proxy.c updates it). */
    ims_metric_gauge("sip_transactions_active",
                     "SIP transactions in progress (proxied requests and our own requests)");
    s->agent = nta_agent_create(s->root, (url_string_t *)bind_url, agent_message, (nta_agent_magic_t *)s,
                                NTATAG_UA(0),              /* proxy: 2xx to INVITE end-to-end */
                                NTATAG_SERVER_RPORT(1),    /* RFC 3581 */
                                NTATAG_CLIENT_RPORT(1),
                                /* A CANCELled INVITE that was forwarded gets the callee's 487
                                 * (RFC 3261 §16.10); held ones are answered by
                                 * ims_sip_held_irq_event. */
                                NTATAG_CANCEL_487(0),
                                NTATAG_EXTRA_100(1),       /* 100 Trying on retransmissions */
                                NTATAG_MAX_FORWARDS(70),
                                /* No STUN server on SIP ports: sofia answers a STUN-looking datagram
                                 * with an error and leaks 12 bytes each time (send_stun_error). */
                                TPTAG_STUN_SERVER(0),
                                /* RFC 5626 §3.5.1: CRLF pong to a CRLFCRLF ping on TCP (sofia's
                                 * stream reader; UDP ones: ims_sip_keepalive.c) */
                                TPTAG_PONG2PING(1),
                                /* Every primary transport needs an ident once any has one (the
                                 * P-CSCF's protected ports, ims_sip_add_port): sofia-sip 1.12's
                                 * tport_primary_by_name compares idents with strcmp, NULL included. */
                                TPTAG_IDENT(IMS_SIP_IDENT_MAIN),
                                TAG_END());
    if (!s->agent) {
        int e = errno;
        snprintf(err, errlen, "cannot listen on %s (UDP and TCP)%s%s", bind_url, e ? ": " : "",
                 e ? strerror(e) : "");
        goto fail;
    }

    s->leg = nta_leg_tcreate(s->agent, leg_request, (nta_leg_magic_t *)s, NTATAG_NO_DIALOG(1), TAG_END());
    if (!s->leg) {
        snprintf(err, errlen, "cannot create the default SIP leg");
        goto fail;
    }
    if (ims_sip_transport_setup(s, cfg, err, errlen) < 0 || ims_sip_udp_setup(s, cfg, err, errlen) < 0)
        goto fail;
    ims_sip_keepalive_setup(s);
    ims_sip_timer_start(s, HOUSEKEEPING_MS, housekeeping, s);
    return s;

fail:
    ims_sip_destroy(s);
    return NULL;
}

void ims_sip_destroy(ims_sip *s)
{
    if (!s)
        return;

    /* Work handed over before the stop still runs, so that its argument is not leaked; the
     * agent exists while it does. Producers (Diameter) must be stopped before this point. */
    for (int round = 0; round < 8 && s->dq_head; round++)
        run_deferred(s);

    ims_sip_fork_shutdown(s);
    ims_sip_proxy_shutdown(s);
    ims_sip_stateless_shutdown(s);
    ims_sip_transport_shutdown(s);
    ims_sip_keepalive_shutdown(s);

    while (s->timers)
        ims_sip_timer_cancel(s->timers);

    /* docs/pitfalls.md: deregister before destroying the root. */
    if (s->wait_index > 0)
        su_root_deregister(s->root, s->wait_index);
    s->wait_index = 0;
    if (s->leg)
        nta_leg_destroy(s->leg);
    if (s->agent)
        nta_agent_destroy(s->agent);
    if (s->root)
        su_root_destroy(s->root);
    if (s->efd >= 0)
        close(s->efd);

    /* Deferred items queued after the last run (none when producers are stopped) are dropped. */
    while (s->dq_head) {
        ims_sip_defer_item *it = s->dq_head;
        s->dq_head = it->next;
        free(it);
    }
    pthread_mutex_destroy(&s->lock);
    su_home_deinit(s->home);
    free(s);
}
