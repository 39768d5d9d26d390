/*
 * ims_sip_stateless: requests an NF forwards without a server transaction, and the responses to
 * them (RFC 3261 §16.11 stateless proxying, §18.2.2 sending responses).
 *
 * Why: nta keeps a server transaction that came over UDP, with its request and its final
 * response, for Timer J (64*T1, 32 s) after the answer, to absorb retransmissions (§17.2.2).
 * Each holds two parsed messages, ~15 KB of heap. The P-CSCF at a steady 300 calls/s held ~9,600
 * BYE transactions from the callers' UEs, ~140 MB of its ~320 MB (issue 16, heaptrack). A
 * request the NF's hook takes here leaves at once and leaves nothing behind.
 *
 * How: with a hook set (ims_sip_set_stateless_intake) the agent has no default leg, so nta hands
 * every request that matches no transaction to agent_message (ims_sip.c). The hook sees it first;
 * what it does not take gets its server transaction there and goes the stateful way as before.
 * A taken request is sent with a Via of ours whose branch is
 *     z9hG4bK-sl-<ident>-<MAC>   MAC = first 8 bytes of HMAC-MD5(key, branch of the Via below NUL
 *                                      Call-ID NUL CSeq number NUL method NUL ident), hex
 * with a key drawn at start. The same request sent again (the UE's retransmission) gets the same
 * branch (§16.11), so downstream sees one transaction where it still has it. A response whose
 * top Via is ours with such a branch is relayed to the Via below only when the MAC checks, and
 * leaves from the transports named <ident>: the one the request came in on (sec-agree: the
 * P-CSCF's protected server port, so the response goes back over the UE's SA, TS 33.203 §7.1).
 *
 * Who may use it: the NF decides what goes stateless (the P-CSCF: a BYE in a dialog from a UE
 * over UDP, after the checks of the stateful path). Nobody can make us relay a response of theirs
 * towards an address of their choosing: without the key there is no branch that checks, and a
 * stray response without one is dropped as before (only 2xx to INVITE are relayed, ims_sip_proxy.c).
 *
 * Retransmissions: what a server transaction needs of them is kept, in small (sl_seen): per
 * branch sent, the final response as it came back (~0.5 KB), or nothing while none has come, for
 * 64*T1 after the request was first seen (Timer J). A retransmitted request is absorbed, or
 * answered again from those bytes, instead of going through the core once more: in an overload,
 * when the core answers late, every retransmission would otherwise be one more request there
 * (1,400 calls/s failed 3/3 that way, with "unexpected" BYEs at the callee).
 */
#include "ims_sip_priv.h"
#include "ims_aka.h"
#include "ims_clock.h"
#include "ims_http.h"
#include "ims_log.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sofia-sip/nta_stateless.h>
#include <sofia-sip/nta_tag.h>
#include <sofia-sip/nta_tport.h>
#include <sofia-sip/tport.h>
#include <sofia-sip/tport_tag.h>

#include "ims_map.h"

#define SL_PREFIX "z9hG4bK-sl-"
#define SL_SWEEP_MS 1000
#define SL_MAC_BYTES 8
#define SL_IDENT_MAX 15

#define SL_HELP "requests forwarded without a server transaction (ims_sip_stateless.c) and the responses to them, by what happened"

static ims_metric *m_forwarded, *m_relayed, *m_dropped, *m_absorbed;

/* A branch we sent a request with, oldest first (they all live the same time). */
typedef struct seen {
    struct seen *next;
    uint64_t at_ms;
    char *response;             /* the final response with our Via still on; NULL: none yet */
    size_t len;
    char branch[];
} seen;

struct ims_sip_sl_seen {
    ims_map *by_branch;
    seen *head, **tail;
    ims_sip_timer *sweep;
};

static void seen_free(seen *e)
{
    free(e->response);
    free(e);
}

static void sweep(void *arg)
{
    ims_sip *s = arg;
    struct ims_sip_sl_seen *t = s->sl_seen;
    unsigned t1x64 = 0;
    nta_agent_get_params(s->agent, NTATAG_SIP_T1X64_REF(t1x64), TAG_END());
    uint64_t now = ims_monotonic_us() / 1000;
    while (t->head && now - t->head->at_ms >= (t1x64 ? t1x64 : 32000)) {
        seen *e = t->head;
        if (!(t->head = e->next))
            t->tail = &t->head;
        ims_map_del(t->by_branch, e->branch);
        seen_free(e);
    }
    t->sweep = ims_sip_timer_start(s, SL_SWEEP_MS, sweep, s);
}

void ims_sip_stateless_shutdown(ims_sip *s)
{
    struct ims_sip_sl_seen *t = s ? s->sl_seen : NULL;
    if (!t)
        return;
    ims_sip_timer_cancel(t->sweep);
    while (t->head) {
        seen *e = t->head;
        t->head = e->next;
        seen_free(e);
    }
    ims_map_free(t->by_branch);
    free(t);
    s->sl_seen = NULL;
}

static void metrics_init(void)
{
    if (m_forwarded)
        return;
    m_forwarded = ims_metric_counter("sip_stateless_total{event=\"request_forwarded\"}", SL_HELP);
    m_relayed = ims_metric_counter("sip_stateless_total{event=\"response_relayed\"}", SL_HELP);
    m_dropped = ims_metric_counter("sip_stateless_total{event=\"response_dropped\"}", SL_HELP);
    m_absorbed = ims_metric_counter("sip_stateless_total{event=\"retransmission_absorbed\"}", SL_HELP);
}

static bool ident_ok(const char *ident)
{
    size_t n = ident ? strlen(ident) : 0;
    if (n == 0 || n > SL_IDENT_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((ident[i] >= 'a' && ident[i] <= 'z') || (ident[i] >= 'A' && ident[i] <= 'Z') ||
              (ident[i] >= '0' && ident[i] <= '9')))
            return false;
    return true;
}

/* hex MAC of the transaction identity into out[2 * SL_MAC_BYTES + 1]; -1 when too long */
static int sl_mac(const ims_sip *s, const char *below_branch, const char *call_id, uint32_t cseq, const char *method,
                  const char *ident, char *out)
{
    char buf[1024];
    int n = snprintf(buf, sizeof(buf), "%s%c%s%c%u%c%s%c%s", below_branch ? below_branch : "", 0, call_id, 0,
                     (unsigned)cseq, 0, method, 0, ident);
    if (n < 0 || (size_t)n >= sizeof(buf))
        return -1;
    uint8_t mac[16];
    if (ims_hmac_md5(s->sl_key, sizeof(s->sl_key), buf, (size_t)n, mac) != 0)
        return -1;
    for (int i = 0; i < SL_MAC_BYTES; i++)
        snprintf(out + 2 * i, 3, "%02x", mac[i]);
    return 0;
}

/* a MAC as received against ours, in time independent of where they differ */
static bool mac_equal(const char *got, const char *want)
{
    unsigned diff = strlen(got) ^ strlen(want);
    for (size_t i = 0; got[i] && want[i]; i++)
        diff |= (unsigned)(tolower((unsigned char)got[i]) ^ want[i]);
    return diff == 0;
}

/* the branch for request sip (before our Via goes on) leaving with responses due on `ident` */
static char *sl_branch(const ims_sip *s, su_home_t *home, const sip_t *sip, const char *ident)
{
    char mac[2 * SL_MAC_BYTES + 1];
    if (!sip->sip_call_id || !sip->sip_cseq ||
        sl_mac(s, sip->sip_via ? sip->sip_via->v_branch : NULL, sip->sip_call_id->i_id, sip->sip_cseq->cs_seq,
               sip->sip_cseq->cs_method_name, ident, mac))
        return NULL;
    return su_sprintf(home, SL_PREFIX "%s-%s", ident, mac);
}

int ims_sip_set_stateless_intake(ims_sip *s, ims_sip_stateless_f fn, void *arg)
{
    if (!s || !fn || s->sl_seen || ims_random(s->sl_key, sizeof(s->sl_key)) != 0)
        return -1;
    struct ims_sip_sl_seen *t = calloc(1, sizeof(*t));
    if (!t || !(t->by_branch = ims_map_new()) || !(t->sweep = ims_sip_timer_start(s, SL_SWEEP_MS, sweep, s))) {
        if (t)
            ims_map_free(t->by_branch);
        free(t);
        return -1;
    }
    t->tail = &t->head;
    s->sl_seen = t;
    metrics_init();
    s->stateless_fn = fn;
    s->stateless_arg = arg;
    if (s->leg) {   /* requests outside transactions now come to agent_message (ims_sip.c) */
        nta_leg_destroy(s->leg);
        s->leg = NULL;
    }
    return 0;
}

int ims_sip_reply_stateless(ims_sip *s, msg_t *msg, int status, const char *phrase)
{
    if (!s || !msg)
        return -1;
    return nta_msg_treply(s->agent, msg, status, phrase, TAG_END());
}

static tport_t *udp_tport_of(ims_sip *s, const char *ident, const char *host);

/* A retransmission of a request we sent on: absorbed while no final response came, else that
 * response sent again (§17.2.2), from the transport it went out on the first time. */
static void answer_again(ims_sip *s, const seen *e, const char *ident, const sip_t *req)
{
    ims_metric_inc(m_absorbed);
    if (!e->response || !req->sip_via)
        return;
    const sip_via_t *v = req->sip_via;
    tport_t *tp = udp_tport_of(s, ident, v->v_received ? v->v_received : v->v_host);
    msg_t *again = tp ? msg_make(sip_default_mclass(), 0, e->response, (ssize_t)e->len) : NULL;
    if (again)
        nta_msg_tsend(s->agent, again, NULL, NTATAG_TPORT(tp), TAG_END());
}

int ims_sip_forward_stateless(ims_sip *s, msg_t *msg, const char *reply_ident)
{
    sip_t *sip = sip_object(msg);
    int status = 500;
    const char *phrase = "Server Internal Error";
    if (!sip || !sip->sip_request || !ident_ok(reply_ident))
        goto fail;
    char *branch = sl_branch(s, msg_home(msg), sip, reply_ident);
    if (!branch)
        goto fail;
    seen *e = ims_map_get(s->sl_seen->by_branch, branch);
    if (e) {
        answer_again(s, e, reply_ident, sip);
        msg_destroy(msg);
        return 0;
    }
    int mf = ims_sip_max_forwards(msg, sip, true);
    if (mf) {
        status = mf;
        phrase = mf == 483 ? "Too Many Hops" : NULL;
        goto fail;
    }
    url_string_t *route = ims_sip_route_of(s, msg, NULL, &status, &phrase);
    size_t blen = strlen(branch) + 1;
    if (!route || !(e = calloc(1, sizeof(*e) + blen)))
        goto fail;
    memcpy(e->branch, branch, blen);
    e->at_ms = ims_monotonic_us() / 1000;
    if (ims_map_put(s->sl_seen->by_branch, e->branch, e)) {
        free(e);
        goto fail;
    }
    *s->sl_seen->tail = e;
    s->sl_seen->tail = &e->next;
    /* nta puts our Via on with this branch and sends to route; msg is nta's either way */
    ims_metric_inc(m_forwarded);
    return nta_msg_tsend(s->agent, msg, route, NTATAG_BRANCH_KEY(branch), TAG_END());
fail:
    IMS_INFO("sip", "%s %s: not forwarded statelessly (%d %s)", sip && sip->sip_request ? sip->sip_request->rq_method_name : "?",
             sip && sip->sip_call_id ? sip->sip_call_id->i_id : "?", status, phrase ? phrase : "");
    return ims_sip_reply_stateless(s, msg, status, phrase);
}

/* The UDP transport named ident for the family of host: the way a response goes back. */
static tport_t *udp_tport_of(ims_sip *s, const char *ident, const char *host)
{
    bool v6 = host && strchr(host, ':');
    for (tport_t *tp = tport_primaries(nta_agent_tports(s->agent)); tp; tp = tport_next(tp)) {
        const tp_name_t *n = tport_name(tp);
        const char *id = tport_ident(tp);
        if (id && strcmp(id, ident) == 0 && n && n->tpn_proto && strcasecmp(n->tpn_proto, "udp") == 0 &&
            n->tpn_host && (strchr(n->tpn_host, ':') != NULL) == v6)
            return tp;
    }
    return NULL;
}

bool ims_sip_stateless_response(ims_sip *s, msg_t *msg, sip_t *sip)
{
    const sip_via_t *v = sip->sip_via;
    const char *b = v ? v->v_branch : NULL;
    if (!s->stateless_fn || !b || strncasecmp(b, SL_PREFIX, strlen(SL_PREFIX)) != 0)
        return false;   /* not one of ours: the caller's rules for strays */
    char ident[SL_IDENT_MAX + 1], mac[2 * SL_MAC_BYTES + 1];
    const char *p = b + strlen(SL_PREFIX), *dash = strchr(p, '-');
    size_t n = dash ? (size_t)(dash - p) : 0;
    bool ok = n > 0 && n <= SL_IDENT_MAX && strlen(dash + 1) == 2 * SL_MAC_BYTES && v->v_next && sip->sip_call_id &&
              sip->sip_cseq;
    if (ok) {
        memcpy(ident, p, n);
        ident[n] = 0;
        ok = ident_ok(ident) &&
             sl_mac(s, v->v_next->v_branch, sip->sip_call_id->i_id, sip->sip_cseq->cs_seq,
                    sip->sip_cseq->cs_method_name, ident, mac) == 0 &&
             mac_equal(dash + 1, mac);
    }
    tport_t *tp = ok ? udp_tport_of(s, ident, v->v_next->v_received ? v->v_next->v_received : v->v_next->v_host)
                     : NULL;
    if (!tp) {
        ims_metric_inc(m_dropped);
        static ims_log_limit lim;
        unsigned long held;
        if (ims_log_allow(&lim, &held))
            IMS_WARN("sip", "dropped a %u response (Call-ID %s) whose Via branch looks like our stateless one but "
                     "does not check: forged, or from before a restart (%lu more since the last warning)",
                     sip->sip_status->st_status, sip->sip_call_id ? sip->sip_call_id->i_id : "?", held);
        msg_destroy(msg);
        return true;
    }
    seen *e = ims_map_get(s->sl_seen->by_branch, b);
    if (e && !e->response && sip->sip_status->st_status >= 200) {
        size_t len = 0;
        char *text = msg_as_string(msg_home(msg), msg, NULL, 0, &len);
        if (text && (e->response = malloc(len)))
            memcpy(e->response, text, e->len = len);
    }
    /* §18.2.2: our Via off, to the next one's received/rport, from the transport of its ident */
    ims_metric_inc(m_relayed);
    nta_msg_tsend(s->agent, msg, NULL, NTATAG_TPORT(tp), TAG_END());
    return true;
}
