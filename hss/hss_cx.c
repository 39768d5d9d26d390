/*
 * hss_cx: the HSS side of Cx for UAR, SAR and LIR (MAR is in hss_cx_auth.c).
 *
 * References: TS 29.228 §6.1.1 (user registration status query, UAR), §6.1.2 (S-CSCF
 * registration/deregistration notification, SAR), §6.1.4 (user location query, LIR), §6.5
 * (implicit registration), §6.7 (S-CSCF assignment); TS 29.229 §6.1 (command formats) and §6.2
 * (result codes).
 *
 * Each handler reads the request, decides one outcome, and has a single `out:` that sends the
 * answer with it. freeDiameter runs these on several dispatch threads at once; all state lives in
 * the store, which is safe for that.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <freeDiameter/freeDiameter-host.h>
#include <freeDiameter/libfdcore.h>

#include "hss_cx_internal.h"
#include "ims_clock.h"
#include "ims_log.h"
#include "ims_userdata.h"

#define SUBSYS "hss.cx"

static struct disp_hdl *g_uar_hdl, *g_sar_hdl, *g_lir_hdl;

/* ---------- shared helpers ---------- */

int hss_cx_send_answer(struct msg **ans, uint32_t cmd, const char *who, const char *peer,
                       hss_cx_outcome out, uint64_t t0_us)
{
    int rc = 0;
    if (!ims_cx_child(*ans, ims_cx_dict.result_code, NULL))
        rc = out.experimental ? ims_cx_set_experimental(*ans, out.code)
                              : ims_cx_set_result(*ans, out.code);
    const char *name = ims_cx_result_name(out.code, out.experimental);
    char metric[160];
    snprintf(metric, sizeof(metric), "hss_cx_answers_total{cmd=\"%s\",result=\"%s\"}",
             ims_cx_cmd_name(cmd), name);
    ims_metric_inc(ims_metric_counter(metric, "Cx answers sent by the HSS, by command and result"));
    snprintf(metric, sizeof(metric), "hss_cx_latency_seconds{cmd=\"%s\"}", ims_cx_cmd_name(cmd));
    ims_metric_observe_us(ims_metric_histogram(metric, "Time from Cx request to answer"),
                          ims_monotonic_us() - t0_us);

    bool failure = out.code >= 3000;
    ims_log(failure ? IMS_LOG_WARN : IMS_LOG_INFO, SUBSYS, "%s %s from %s: %s (%u)%s%s",
            ims_cx_cmd_name(cmd), who, peer && *peer ? peer : "?", name, out.code,
            out.why ? ": " : "", out.why ? out.why : "");
    if (rc == 0)
        rc = fd_msg_send(ans, NULL, NULL);
    if (rc) {
        IMS_ERROR(SUBSYS, "cannot send the %s answer to %s", ims_cx_cmd_name(cmd), peer ? peer : "?");
        if (*ans)
            fd_msg_free(*ans);
        *ans = NULL;
    }
    return 0;
}

bool hss_cx_read_str(struct msg *qry, struct msg *ans, struct dict_object *model, char *buf,
                     size_t buflen, hss_cx_outcome *out)
{
    int rc = ims_cx_get_str(qry, model, buf, buflen);
    if (rc == 0 && buf[0])
        return true;
    struct dict_avp_data d;
    const char *name = fd_dict_getval(model, &d) == 0 ? d.avp_name : "AVP";
    if (rc == -1) {
        ims_cx_set_missing_avp(ans, model, name);
        *out = CX_BASE(IMS_DIAMETER_MISSING_AVP, name);
    } else {
        ims_cx_set_invalid_avp(ans, ims_cx_child(qry, model, NULL), name);
        *out = CX_BASE(IMS_DIAMETER_INVALID_AVP_VALUE, name);
    }
    return false;
}

int hss_cx_add_user_data(struct msg *msg, const hss_subscriber *sub, const char *impi, const char *impu)
{
    ims_subscription us;
    char err[256];
    if (hss_subscriber_userdata(sub, impi, impu, &us))
        return -1;
    char *xml = ims_userdata_write(&us, err, sizeof(err));
    ims_subscription_free(&us);
    if (!xml) {
        IMS_ERROR(SUBSYS, "cannot build User-Data for %s: %s", impu, err);
        return -1;
    }
    int rc = ims_cx_add_str(msg, ims_cx_dict.user_data, xml);
    free(xml);
    return rc;
}

int hss_cx_add_charging(struct msg *msg, const hss_subscriber *sub)
{
    if (!sub->ccf_primary && !sub->ecf_primary)
        return 0;
    struct avp *ci = NULL;
    if (ims_cx_add_group(msg, ims_cx_dict.charging_info, &ci))
        return -1;
    struct { const char *v; struct dict_object *m; } f[] = {
        { sub->ecf_primary, ims_cx_dict.pri_ecf }, { sub->ecf_secondary, ims_cx_dict.sec_ecf },
        { sub->ccf_primary, ims_cx_dict.pri_ccf }, { sub->ccf_secondary, ims_cx_dict.sec_ccf },
    };
    for (size_t i = 0; i < 4; i++)
        if (f[i].v && ims_cx_add_str(ci, f[i].m, f[i].v))
            return -1;
    return 0;
}

/* Server-Capabilities (TS 29.229 §6.3.4) from the configured pool. */
static int add_server_capabilities(struct msg *ans)
{
    struct avp *sc = NULL;
    if (ims_cx_add_group(ans, ims_cx_dict.server_caps, &sc))
        return -1;
    for (size_t i = 0; i < hss_ctx.n_mandatory_caps; i++)
        if (ims_cx_add_u32(sc, ims_cx_dict.mandatory_cap, hss_ctx.mandatory_caps[i]))
            return -1;
    for (size_t i = 0; i < hss_ctx.n_optional_caps; i++)
        if (ims_cx_add_u32(sc, ims_cx_dict.optional_cap, hss_ctx.optional_caps[i]))
            return -1;
    for (size_t i = 0; i < hss_ctx.cfg.hss.scscf_names.count; i++)
        if (ims_cx_add_str(sc, ims_cx_dict.server_name, hss_ctx.cfg.hss.scscf_names.items[i]))
            return -1;
    return 0;
}

/* Roaming check (TS 29.228 §6.1.1.1 step 3): the home network is always allowed. */
static bool visited_network_allowed(const hss_subscriber *sub, const char *visited)
{
    const char *home = ims_diameter_realm();
    if (home && strcasecmp(home, visited) == 0)
        return true;
    for (size_t i = 0; i < sub->n_visited_networks; i++)
        if (strcasecmp(sub->visited_networks[i], visited) == 0)
            return true;
    return false;
}

/* An IMPU may register when it is not barred, or when its implicit registration set holds at
 * least one identity that is not (TS 29.228 §6.1.1.1 step 2, TS 23.228 §4.3.3.4). */
static bool registration_allowed(const hss_subscriber *sub, const hss_impu *impu)
{
    if (!impu->barred)
        return true;
    for (size_t i = 0; i < sub->n_impus; i++)
        if (sub->impus[i].irs == impu->irs && !sub->impus[i].barred)
            return true;
    return false;
}

/* Collects the identities of impu's implicit registration set. */
static size_t irs_members(const hss_subscriber *sub, const hss_impu *impu, const char **out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < sub->n_impus && n < cap; i++)
        if (sub->impus[i].irs == impu->irs)
            out[n++] = sub->impus[i].identity;
    return n;
}

/* Does the user have services for the unregistered state? (iFC not restricted to REGISTERED,
 * TS 29.228 §6.1.4.1 and ProfilePartIndicator). */
static bool has_unregistered_services(const hss_subscriber *sub, const hss_impu *impu)
{
    const hss_service_profile *sp = hss_subscriber_profile(sub, impu->service_profile);
    if (!sp)
        return false;
    for (size_t i = 0; i < sp->n_ifcs; i++)
        if (sp->ifcs[i].profile_part_indicator != 0)
            return true;
    return false;
}

static void peer_of(struct msg *qry, char *peer, size_t len)
{
    ims_cx_origin_host(qry, peer, len);
}

/* ---------- UAR (TS 29.228 §6.1.1.1) ---------- */

static int on_uar(struct msg **msg, struct avp *avp, struct session *sess, void *opaque,
                  enum disp_action *act)
{
    (void)avp; (void)sess; (void)opaque; (void)act;
    uint64_t t0 = ims_monotonic_us();
    struct msg *qry = *msg;
    char impi[HSS_ID_MAX] = "", impu[HSS_ID_MAX] = "", visited[HSS_ID_MAX] = "", peer[256], who[2 * HSS_ID_MAX + 2];
    hss_subscriber sub;
    memset(&sub, 0, sizeof(sub));
    hss_cx_outcome out = CX_OK;
    int32_t uat = IMS_UAT_REGISTRATION;

    peer_of(qry, peer, sizeof(peer));
    if (ims_cx_new_answer(msg))
        return ENOMEM;

    if (!hss_cx_read_str(qry, *msg, ims_cx_dict.user_name, impi, sizeof(impi), &out) ||
        !hss_cx_read_str(qry, *msg, ims_cx_dict.public_identity, impu, sizeof(impu), &out) ||
        !hss_cx_read_str(qry, *msg, ims_cx_dict.visited_network_id, visited, sizeof(visited), &out))
        goto out;
    ims_cx_get_i32(qry, ims_cx_dict.user_auth_type, &uat);
    if (uat < IMS_UAT_REGISTRATION || uat > IMS_UAT_REGISTRATION_AND_CAPABILITIES) {
        out = CX_BASE(IMS_DIAMETER_INVALID_AVP_VALUE, "User-Authorization-Type out of range");
        goto out;
    }

    int rc = hss_store_find_by_impu(hss_ctx.store, impu, &sub);
    if (rc == HSS_STORE_ERROR) {
        out = CX_BASE(IMS_DIAMETER_UNABLE_TO_COMPLY, "store error");
        goto out;
    }
    const hss_impu *pu = rc == HSS_STORE_OK ? hss_subscriber_impu(&sub, impu) : NULL;
    if (!pu || !pu->can_register) {
        out = CX_EXP(IMS_CX_ERROR_USER_UNKNOWN, pu ? "identity cannot register (PSI)" : "unknown public identity");
        goto out;
    }
    if (!hss_subscriber_impi(&sub, impi)) {
        hss_subscriber other;
        memset(&other, 0, sizeof(other));
        bool known = hss_store_find_by_impi(hss_ctx.store, impi, &other) == HSS_STORE_OK;
        hss_subscriber_free(&other);
        out = known ? CX_EXP(IMS_CX_ERROR_IDENTITIES_DONT_MATCH, "IMPI and IMPU of different subscriptions")
                    : CX_EXP(IMS_CX_ERROR_USER_UNKNOWN, "unknown private identity");
        goto out;
    }
    if (uat != IMS_UAT_DE_REGISTRATION && !registration_allowed(&sub, pu)) {
        out = CX_BASE(IMS_DIAMETER_AUTHORIZATION_REJECTED, "public identity barred");
        goto out;
    }
    if (uat != IMS_UAT_DE_REGISTRATION && !visited_network_allowed(&sub, visited)) {
        out = CX_EXP(IMS_CX_ERROR_ROAMING_NOT_ALLOWED, visited);
        goto out;
    }

    if (uat == IMS_UAT_DE_REGISTRATION) {
        if (pu->reg_state != HSS_NOT_REGISTERED && sub.scscf_name) {
            ims_cx_add_str(*msg, ims_cx_dict.server_name, sub.scscf_name);
            out = CX_OK;
        } else {
            out = CX_EXP(IMS_CX_ERROR_IDENTITY_NOT_REGISTERED, NULL);
        }
        goto out;
    }
    if (uat == IMS_UAT_REGISTRATION_AND_CAPABILITIES) {
        /* The I-CSCF could not reach the assigned S-CSCF and selects another one. */
        add_server_capabilities(*msg);
        out = CX_OK;
        goto out;
    }
    if (sub.scscf_name) {
        /* Registered, unregistered (profile kept), or another IMPU of the subscription holds an
         * S-CSCF: the same S-CSCF serves this registration. */
        ims_cx_add_str(*msg, ims_cx_dict.server_name, sub.scscf_name);
        out = CX_EXP(IMS_CX_SUBSEQUENT_REGISTRATION, NULL);
    } else {
        add_server_capabilities(*msg);
        out = CX_EXP(IMS_CX_FIRST_REGISTRATION, NULL);
    }

out:
    snprintf(who, sizeof(who), "%s %s", impi[0] ? impi : "-", impu[0] ? impu : "-");
    hss_subscriber_free(&sub);
    return hss_cx_send_answer(msg, IMS_CX_UAR, who, peer, out, t0);
}

/* ---------- SAR (TS 29.228 §6.1.2.1) ---------- */

static bool sat_is_deregistration(int32_t sat)
{
    return sat == IMS_SAT_TIMEOUT_DEREGISTRATION || sat == IMS_SAT_USER_DEREGISTRATION ||
           sat == IMS_SAT_TIMEOUT_DEREGISTRATION_STORE_SERVER_NAME ||
           sat == IMS_SAT_USER_DEREGISTRATION_STORE_SERVER_NAME ||
           sat == IMS_SAT_ADMINISTRATIVE_DEREGISTRATION || sat == IMS_SAT_DEREGISTRATION_TOO_MUCH_DATA;
}

/* True when no IMPU of the subscription stays registered or unregistered. */
static bool subscription_idle(const hss_subscriber *sub)
{
    for (size_t i = 0; i < sub->n_impus; i++)
        if (sub->impus[i].reg_state != HSS_NOT_REGISTERED)
            return false;
    return true;
}

static void set_state_local(hss_subscriber *sub, const char *const *ids, size_t n, hss_reg_state st)
{
    for (size_t i = 0; i < n; i++) {
        hss_impu *pu = hss_subscriber_impu(sub, ids[i]);
        if (pu)
            pu->reg_state = st;
    }
}

static bool same_str(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

/* Are all of ids[0..n-1] in state st already? */
static bool irs_in_state(const hss_subscriber *sub, const char **ids, size_t n, hss_reg_state st)
{
    for (size_t i = 0; i < n; i++) {
        const hss_impu *pu = hss_subscriber_impu(sub, ids[i]);
        if (!pu || pu->reg_state != st)
            return false;
    }
    return true;
}

static int on_sar(struct msg **msg, struct avp *avp, struct session *sess, void *opaque,
                  enum disp_action *act)
{
    (void)avp; (void)sess; (void)opaque; (void)act;
    uint64_t t0 = ims_monotonic_us();
    struct msg *qry = *msg;
    char impi[HSS_ID_MAX] = "", impu[HSS_ID_MAX] = "", server[HSS_ID_MAX] = "", peer[256], realm[256] = "";
    char who[2 * HSS_ID_MAX + 16];
    char assigned[HSS_ID_MAX + 32];   /* out.why outlives sub (freed before the answer is logged) */
    hss_subscriber sub;
    memset(&sub, 0, sizeof(sub));
    hss_cx_outcome out = CX_OK;
    int32_t sat = -1, uda = 0;
    const char *irs[64];
    size_t n_irs = 0;

    peer_of(qry, peer, sizeof(peer));
    ims_cx_get_str(qry, ims_cx_dict.origin_realm, realm, sizeof(realm));
    if (ims_cx_new_answer(msg))
        return ENOMEM;

    if (!hss_cx_read_str(qry, *msg, ims_cx_dict.server_name, server, sizeof(server), &out))
        goto out;
    if (ims_cx_get_i32(qry, ims_cx_dict.server_assignment_type, &sat) || sat < 0 ||
        sat > IMS_SAT_DEREGISTRATION_TOO_MUCH_DATA) {
        out = CX_BASE(IMS_DIAMETER_INVALID_AVP_VALUE, "Server-Assignment-Type not supported");
        goto out;
    }
    ims_cx_get_i32(qry, ims_cx_dict.user_data_already_available, &uda);
    int has_impi = ims_cx_get_str(qry, ims_cx_dict.user_name, impi, sizeof(impi)) == 0 && impi[0];
    int has_impu = ims_cx_get_str(qry, ims_cx_dict.public_identity, impu, sizeof(impu)) == 0 && impu[0];
    if (!has_impu && !(has_impi && sat_is_deregistration(sat))) {
        /* Only de-registrations may name the user by IMPI alone (TS 29.229 §6.1.3). */
        ims_cx_set_missing_avp(*msg, ims_cx_dict.public_identity, "Public-Identity required");
        out = CX_BASE(IMS_DIAMETER_MISSING_AVP, "no Public-Identity");
        goto out;
    }

    int rc = has_impu ? hss_store_find_by_impu(hss_ctx.store, impu, &sub)
                      : hss_store_find_by_impi(hss_ctx.store, impi, &sub);
    if (rc == HSS_STORE_ERROR) {
        out = CX_BASE(IMS_DIAMETER_UNABLE_TO_COMPLY, "store error");
        goto out;
    }
    if (rc != HSS_STORE_OK) {
        out = CX_EXP(IMS_CX_ERROR_USER_UNKNOWN, NULL);
        goto out;
    }
    if (has_impi && !hss_subscriber_impi(&sub, impi)) {
        out = CX_EXP(IMS_CX_ERROR_IDENTITIES_DONT_MATCH, NULL);
        goto out;
    }
    if (!has_impi)
        snprintf(impi, sizeof(impi), "%s", sub.impis[0].identity);

    /* The identities this SAR acts on: the IRS of the named IMPU, or every IMPU the
     * subscription has registered when only the IMPI is given. */
    const hss_impu *pu = has_impu ? hss_subscriber_impu(&sub, impu) : NULL;
    if (pu) {
        n_irs = irs_members(&sub, pu, irs, 64);
    } else {
        for (size_t i = 0; i < sub.n_impus && n_irs < 64; i++)
            if (sub.impus[i].reg_state != HSS_NOT_REGISTERED)
                irs[n_irs++] = sub.impus[i].identity;
        if (n_irs)
            snprintf(impu, sizeof(impu), "%s", irs[0]);
    }

    /* TS 29.228 §8.1: a SAR from an S-CSCF other than the assigned one does not overwrite the
     * assignment; it gets an error (the assignment moves only with a MAR, hss_cx_auth.c).
     * UNREGISTERED_USER has its own rule below. */
    if (sat != IMS_SAT_UNREGISTERED_USER && sub.scscf_name && strcasecmp(sub.scscf_name, server) != 0) {
        /* the code and Server-Name of the UNREGISTERED_USER case below: the requester learns
         * that the user is served elsewhere (an S-CSCF reloading a stale copy drops it) */
        IMS_INFO(SUBSYS, "SAR %s type %d from %s (%s): the assigned S-CSCF is %s", impu[0] ? impu : impi, sat,
                 server, peer, sub.scscf_name);
        ims_cx_add_str(*msg, ims_cx_dict.server_name, sub.scscf_name);
        out = CX_EXP(IMS_CX_ERROR_IDENTITY_ALREADY_REGISTERED, "requesting S-CSCF is not the assigned one");
        goto out;
    }

    bool send_profile = false;
    switch (sat) {
    case IMS_SAT_REGISTRATION:
    case IMS_SAT_RE_REGISTRATION:
        /* A re-registration by the same S-CSCF changes nothing: no write, no fsync. */
        if (!(same_str(sub.scscf_name, server) && same_str(sub.scscf_host, peer) &&
              same_str(sub.scscf_realm, realm) && irs_in_state(&sub, irs, n_irs, HSS_REGISTERED)) &&
            hss_store_register(hss_ctx.store, sub.id, server, peer, realm, irs, n_irs,
                               HSS_REGISTERED)) {
            out = CX_BASE(IMS_DIAMETER_UNABLE_TO_COMPLY, "store error");
            goto out;
        }
        send_profile = uda == 0 || sat == IMS_SAT_REGISTRATION;
        break;
    case IMS_SAT_UNREGISTERED_USER:
        if (sub.scscf_name && strcasecmp(sub.scscf_name, server) != 0 && pu &&
            pu->reg_state == HSS_REGISTERED) {
            ims_cx_add_str(*msg, ims_cx_dict.server_name, sub.scscf_name);
            snprintf(assigned, sizeof(assigned), "assigned to %s", sub.scscf_name);
            out = CX_EXP(IMS_CX_ERROR_IDENTITY_ALREADY_REGISTERED, assigned);
            goto out;
        }
        if (hss_store_set_scscf(hss_ctx.store, sub.id, server, peer, realm) ||
            (pu && pu->reg_state == HSS_NOT_REGISTERED &&
             hss_store_set_reg_state(hss_ctx.store, sub.id, irs, n_irs, HSS_UNREGISTERED))) {
            out = CX_BASE(IMS_DIAMETER_UNABLE_TO_COMPLY, "store error");
            goto out;
        }
        send_profile = true;
        break;
    case IMS_SAT_NO_ASSIGNMENT:
        if (!sub.scscf_name) {
            out = CX_BASE(IMS_DIAMETER_UNABLE_TO_COMPLY, "requesting S-CSCF is not the assigned one");
            goto out;
        }
        send_profile = uda == 0;
        break;
    case IMS_SAT_AUTHENTICATION_FAILURE:
    case IMS_SAT_AUTHENTICATION_TIMEOUT:
        /* Registered identities stay registered; a first registration leaves nothing behind. */
        if (pu && pu->reg_state == HSS_NOT_REGISTERED && subscription_idle(&sub) &&
            hss_store_set_scscf(hss_ctx.store, sub.id, NULL, NULL, NULL)) {
            out = CX_BASE(IMS_DIAMETER_UNABLE_TO_COMPLY, "store error");
            goto out;
        }
        break;
    default: { /* de-registrations */
        bool keep_name = sat == IMS_SAT_TIMEOUT_DEREGISTRATION_STORE_SERVER_NAME ||
                         sat == IMS_SAT_USER_DEREGISTRATION_STORE_SERVER_NAME;
        if (n_irs && hss_store_set_reg_state(hss_ctx.store, sub.id, irs, n_irs, HSS_NOT_REGISTERED)) {
            out = CX_BASE(IMS_DIAMETER_UNABLE_TO_COMPLY, "store error");
            goto out;
        }
        set_state_local(&sub, irs, n_irs, HSS_NOT_REGISTERED);
        if (!keep_name && subscription_idle(&sub) &&
            hss_store_set_scscf(hss_ctx.store, sub.id, NULL, NULL, NULL)) {
            out = CX_BASE(IMS_DIAMETER_UNABLE_TO_COMPLY, "store error");
            goto out;
        }
        break;
    }
    }

    ims_cx_add_str(*msg, ims_cx_dict.user_name, impi);
    if (send_profile && n_irs) {
        if (hss_cx_add_user_data(*msg, &sub, impi, impu) || hss_cx_add_charging(*msg, &sub)) {
            out = CX_BASE(IMS_DIAMETER_UNABLE_TO_COMPLY, "cannot build User-Data");
            goto out;
        }
    }
    out = CX_OK;

out:
    snprintf(who, sizeof(who), "%s %s type %d", impi[0] ? impi : "-", impu[0] ? impu : "-", sat);
    hss_subscriber_free(&sub);
    return hss_cx_send_answer(msg, IMS_CX_SAR, who, peer, out, t0);
}

/* ---------- LIR (TS 29.228 §6.1.4.1) ---------- */

static int on_lir(struct msg **msg, struct avp *avp, struct session *sess, void *opaque,
                  enum disp_action *act)
{
    (void)avp; (void)sess; (void)opaque; (void)act;
    uint64_t t0 = ims_monotonic_us();
    struct msg *qry = *msg;
    char impu[HSS_ID_MAX] = "", peer[256];
    hss_subscriber sub;
    memset(&sub, 0, sizeof(sub));
    hss_cx_outcome out = CX_OK;

    peer_of(qry, peer, sizeof(peer));
    if (ims_cx_new_answer(msg))
        return ENOMEM;
    if (!hss_cx_read_str(qry, *msg, ims_cx_dict.public_identity, impu, sizeof(impu), &out))
        goto out;

    int rc = hss_store_find_by_impu(hss_ctx.store, impu, &sub);
    if (rc == HSS_STORE_ERROR) {
        out = CX_BASE(IMS_DIAMETER_UNABLE_TO_COMPLY, "store error");
        goto out;
    }
    const hss_impu *pu = rc == HSS_STORE_OK ? hss_subscriber_impu(&sub, impu) : NULL;
    if (!pu) {
        out = CX_EXP(IMS_CX_ERROR_USER_UNKNOWN, NULL);
        goto out;
    }
    if (pu->reg_state == HSS_REGISTERED && sub.scscf_name) {
        ims_cx_add_str(*msg, ims_cx_dict.server_name, sub.scscf_name);
        out = CX_OK;
    } else if (pu->reg_state == HSS_UNREGISTERED && sub.scscf_name) {
        ims_cx_add_str(*msg, ims_cx_dict.server_name, sub.scscf_name);
        out = CX_EXP(IMS_CX_UNREGISTERED_SERVICE, NULL);
    } else if (has_unregistered_services(&sub, pu)) {
        /* Not registered but with services: an S-CSCF still named for the subscription,
         * else the capabilities for the I-CSCF to select one. */
        if (sub.scscf_name)
            ims_cx_add_str(*msg, ims_cx_dict.server_name, sub.scscf_name);
        else
            add_server_capabilities(*msg);
        out = CX_EXP(IMS_CX_UNREGISTERED_SERVICE, NULL);
    } else {
        out = CX_EXP(IMS_CX_ERROR_IDENTITY_NOT_REGISTERED, "not registered and no unregistered services");
    }

out:
    hss_subscriber_free(&sub);
    return hss_cx_send_answer(msg, IMS_CX_LIR, impu[0] ? impu : "-", peer, out, t0);
}

/* ---------- registration ---------- */

static int register_cmd(struct dict_object *cmd, int (*cb)(struct msg **, struct avp *, struct session *,
                                                          void *, enum disp_action *),
                        struct disp_hdl **hdl)
{
    struct disp_when when;
    memset(&when, 0, sizeof(when));
    when.app = ims_cx_dict.app;
    when.command = cmd;
    return fd_disp_register(cb, DISP_HOW_CC, &when, NULL, hdl);
}

int hss_cx_init(void)
{
    if (register_cmd(ims_cx_dict.uar, on_uar, &g_uar_hdl) ||
        register_cmd(ims_cx_dict.sar, on_sar, &g_sar_hdl) ||
        register_cmd(ims_cx_dict.lir, on_lir, &g_lir_hdl) || hss_cx_auth_init()) {
        IMS_ERROR(SUBSYS, "cannot register the Cx handlers");
        return -1;
    }
    return 0;
}

void hss_cx_fini(void)
{
    struct disp_hdl **h[] = { &g_uar_hdl, &g_sar_hdl, &g_lir_hdl };
    for (size_t i = 0; i < 3; i++)
        if (*h[i]) {
            fd_disp_unregister(h[i], NULL);
            *h[i] = NULL;
        }
}
