/*
 * scscf_regcheck: after a reload from the state store, asks the HSS whether each registration is
 * still ours, and drops the ones it has given to another S-CSCF.
 *
 * Why: while this S-CSCF was down, a user of it may have registered again through the I-CSCF's
 * re-selection at another S-CSCF (TS 24.229 §5.3.1.3); that S-CSCF's MAR moved the assignment in
 * the HSS (TS 29.228 §8.1). Our reloaded copy is then stale: served from here it would take the
 * calls of our own users to that user to its old contact, and its expiry would NOTIFY the P-CSCF
 * that the registration ended (the P-CSCF's one reg-event dialog for that identity may still be
 * ours). The HSS knows: a SAR NO_ASSIGNMENT (User-Data-Already-Available, TS 29.228 §6.1.2) from
 * us is answered DIAMETER_ERROR_IDENTITY_ALREADY_REGISTERED with the assigned Server-Name when
 * the user is someone else's (hss/hss_cx.c), DIAMETER_ERROR_USER_UNKNOWN when it is gone.
 *
 * Such a registration is dropped silently: no SAR (the HSS state is the other S-CSCF's), no
 * NOTIFY, no third-party REGISTER; its record leaves the store. Every other answer — success, no
 * answer, an error of the HSS — keeps it (the HSS could not say, the expiry deals with it).
 *
 * The SARs start once the HSS is connected (checked every second, up to CHECK_WAIT_S) and go out
 * BATCH at a time every BATCH_MS (1,000/s), so that a large reload neither floods the HSS nor
 * fills the overload budget (sip.max_transactions) with its own work. Pending checks are records
 * in a table by key (ims_pending): an SAA that comes after a stop finds nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ims_diameter.h"
#include "ims_log.h"
#include "ims_pending.h"
#include "scscf_context.h"
#include "scscf_cx.h"
#include "scscf_reginfo.h"
#include "scscf_regsync.h"

#define SUBSYS "scscf.store"
#define BATCH 50
#define BATCH_MS 50
#define CHECK_WAIT_S 60

typedef struct {
    char *impi, *impu;
    bool retried;                 /* sent again once after no answer */
} check_item;

typedef struct scscf_regcheck {
    scscf_context *ctx;
    check_item *items;            /* the registrations to check, in load order */
    size_t n, next;               /* count, next to send */
    size_t waited_s;
    bool settled;                 /* a second has passed since the HSS was first seen connected */
    size_t answered, dropped, kept_unsure;
    ims_sip_timer *timer;
    ims_pending *sent;            /* key -> check_item * (borrowed from items) */
} scscf_regcheck;

static scscf_regcheck *g_check;   /* the one in progress (SAA callbacks find it) */

static void item_noop(void *arg, uint64_t key, void *rec, ims_pending_reason reason)
{
    (void)arg; (void)key; (void)rec; (void)reason;
}

static void check_free(scscf_regcheck *c)
{
    if (!c)
        return;
    ims_sip_timer_cancel(c->timer);
    ims_pending_free(c->sent);
    for (size_t i = 0; i < c->n; i++) {
        free(c->items[i].impi);
        free(c->items[i].impu);
    }
    free(c->items);
    free(c);
}

static bool hss_up(const scscf_context *ctx)
{
    char why[256];
    return ctx->hss_host ? ims_diameter_peer_is_open(ctx->hss_host) : ims_diameter_open_peers(why, sizeof(why)) > 0;
}

static void finish_if_done(scscf_regcheck *c)
{
    if (c->next < c->n || c->answered < c->n)
        return;
    IMS_INFO(SUBSYS, "checked %zu reloaded registration(s) with the HSS: %zu dropped (assigned elsewhere), "
             "%zu kept without an answer", c->n, c->dropped, c->kept_unsure);
    g_check = NULL;
    check_free(c);
}

/* The SAA of one check (ans NULL: no answer). */
static void on_saa(void *arg, struct msg *ans)
{
    scscf_regcheck *c = g_check;
    check_item *it = c ? ims_pending_get(c->sent, ims_pending_key(arg)) : NULL;
    if (!it)
        return;   /* stopped meanwhile */
    ims_pending_release(c->sent, ims_pending_key(arg), NULL);
    scscf_context *ctx = c->ctx;
    /* No answer: once more. A replacement's first SARs can be lost while the HSS's freeDiameter
     * still closes the killed process's connection under the same Diameter identity ("Unable to
     * forward answer to deleted / closed peer"), seen in the ASan run of test_scscf_pair_redis. */
    if (!ans && !it->retried && !ctx->stopping) {
        it->retried = true;
        uint64_t key = ims_pending_add(c->sent, it, 0);
        if (key && !scscf_cx_sar(ctx, it->impi, it->impu, IMS_SAT_NO_ASSIGNMENT, true, on_saa, ims_pending_arg(key)))
            return;
        if (key)
            ims_pending_release(c->sent, key, NULL);
    }
    c->answered++;
    scscf_saa saa;
    char err[128];
    memset(&saa, 0, sizeof(saa));
    int rc = ans ? scscf_cx_parse_saa(ans, &saa, err, sizeof(err)) : -1;
    bool elsewhere = rc == -1 && ans && (saa.experimental == IMS_CX_ERROR_IDENTITY_ALREADY_REGISTERED ||
                                         saa.experimental == IMS_CX_ERROR_USER_UNKNOWN);
    scscf_saa_free(&saa);
    if (!ans || (rc == -1 && !elsewhere))
        c->kept_unsure++;
    scscf_reg *reg = elsewhere && !ctx->stopping ? scscf_regstore_find(ctx->store, it->impu) : NULL;
    if (reg && reg->impi && strcmp(reg->impi, it->impi) == 0) {
        char assigned[256] = "-";
        if (ims_cx_get_str(ans, ims_cx_dict.server_name, assigned, sizeof(assigned)))
            snprintf(assigned, sizeof(assigned), "-");
        IMS_INFO(SUBSYS, "reloaded registration of %s (%s) dropped: the HSS answers %u, assigned to %s", it->impu,
                 it->impi, (unsigned)saa.experimental, assigned);
        scscf_reginfo_forget(ctx, reg);
        scscf_regstore_remove(ctx->store, reg);   /* the record leaves the store (regsync) */
        scscf_update_gauges(ctx);
        c->dropped++;
    }
    finish_if_done(c);
}

static void send_batch(void *arg)
{
    scscf_regcheck *c = arg;
    scscf_context *ctx = c->ctx;
    c->timer = NULL;
    if (ctx->stopping)
        return;
    if (!hss_up(ctx)) {
        if (++c->waited_s > CHECK_WAIT_S) {
            IMS_WARN(SUBSYS, "HSS not connected for %d s: %zu reloaded registration(s) kept unchecked", CHECK_WAIT_S,
                     c->n - c->next);
            c->kept_unsure += c->n - c->next;
            c->answered += c->n - c->next;
            c->next = c->n;
            finish_if_done(c);
            return;
        }
        c->timer = ims_sip_timer_start(ctx->sip, 1000, send_batch, c);
        return;
    }
    /* A second after the connection opens, not at once: the HSS may still be closing the killed
     * process's connection of the same Diameter identity and drop answers meanwhile. */
    if (!c->settled) {
        c->settled = true;
        c->timer = ims_sip_timer_start(ctx->sip, 1000, send_batch, c);
        return;
    }
    for (size_t k = 0; k < BATCH && c->next < c->n; k++) {
        check_item *it = &c->items[c->next++];
        uint64_t key = ims_pending_add(c->sent, it, 0);
        if (!key || scscf_cx_sar(ctx, it->impi, it->impu, IMS_SAT_NO_ASSIGNMENT, true, on_saa, ims_pending_arg(key))) {
            if (key)
                ims_pending_release(c->sent, key, NULL);
            c->answered++;
            c->kept_unsure++;
        }
    }
    if (c->next < c->n)
        c->timer = ims_sip_timer_start(ctx->sip, BATCH_MS, send_batch, c);
    else
        finish_if_done(c);
}

static int collect(void *arg, scscf_reg *reg)
{
    scscf_regcheck *c = arg;
    check_item *it = &c->items[c->n];
    it->impi = strdup(reg->impi ? reg->impi : "");
    it->impu = strdup(reg->impus[0].uri);
    if (!it->impi || !it->impu) {
        free(it->impi);
        free(it->impu);
        return 1;
    }
    c->n++;
    return 0;
}

void scscf_regcheck_start(scscf_context *ctx)
{
    size_t n = scscf_regstore_regs(ctx->store);
    if (!n || g_check)
        return;
    scscf_regcheck *c = calloc(1, sizeof(*c));
    ims_timer_ops timers = ims_timer_ops_sip(ctx->sip);
    if (c) {
        c->ctx = ctx;
        c->items = calloc(n, sizeof(*c->items));
        c->sent = ims_pending_new("scscf reload check", &timers, item_noop, c);
    }
    if (!c || !c->items || !c->sent) {
        IMS_WARN(SUBSYS, "out of memory: reloaded registrations not checked with the HSS");
        check_free(c);
        return;
    }
    scscf_regstore_foreach(ctx->store, collect, c);
    g_check = c;
    c->timer = ims_sip_timer_start(ctx->sip, 0, send_batch, c);
}

void scscf_regcheck_stop(scscf_context *ctx)
{
    (void)ctx;
    scscf_regcheck *c = g_check;
    g_check = NULL;
    check_free(c);
}
