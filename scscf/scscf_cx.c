/*
 * scscf_cx: Cx at the S-CSCF. See scscf_cx.h.
 *
 * References: TS 29.228 §6.1.2 (S-CSCF registration/deregistration notification: SAR),
 * §6.1.3 (network initiated de-registration by the HSS: RTR), §6.1.4 (user profile update: PPR),
 * §6.3 (authentication: MAR); TS 29.229 §6.1.3-§6.1.10 (command formats), §6.3 (AVPs);
 * TS 24.229 §5.4.1.5 (network initiated de-registration: reg event "deactivated"/"rejected").
 */
#include "scscf_cx.h"
#include "scscf_regsync.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ims_log.h"
#include "ims_userdata.h"
#include "scscf_context.h"
#include "scscf_reginfo.h"

#define SUBSYS "scscf.cx"

struct msg *scscf_cx_new(scscf_context *ctx, struct dict_object *cmd, const char *impi, const char *impu)
{
    struct msg *req = NULL;
    if (ims_cx_new_request(cmd, ctx->hss_realm, ctx->hss_host, &req))
        return NULL;
    if ((impi && *impi && ims_cx_add_str(req, ims_cx_dict.user_name, impi)) ||
        (impu && *impu && ims_cx_add_str(req, ims_cx_dict.public_identity, impu)) ||
        ims_cx_add_str(req, ims_cx_dict.server_name, ctx->name)) {
        fd_msg_free(req);
        return NULL;
    }
    return req;
}

int scscf_cx_mar(scscf_context *ctx, const char *impi, const char *impu, const char *scheme,
                 unsigned items, const uint8_t *resync, ims_cx_answer_f cb, void *arg)
{
    struct msg *req = scscf_cx_new(ctx, ims_cx_dict.mar, impi, impu);
    struct avp *item = NULL;
    if (!req)
        return -1;
    if (ims_cx_add_u32(req, ims_cx_dict.sip_number_auth_items, items ? items : 1) ||
        ims_cx_add_group(req, ims_cx_dict.sip_auth_data_item, &item) ||
        ims_cx_add_str(item, ims_cx_dict.sip_auth_scheme, scheme) ||
        (resync && ims_cx_add_os(item, ims_cx_dict.sip_authorization, resync, 30))) {
        fd_msg_free(req);
        return -1;
    }
    return ims_cx_send(ctx->sip, &req, cb, arg);
}

static int os_copy(struct avp *item, struct dict_object *model, uint8_t *out, size_t want_min, size_t cap,
                   size_t *got)
{
    size_t len = 0;
    const uint8_t *p = ims_cx_get_os(item, model, &len);
    if (!p || len < want_min || len > cap)
        return -1;
    memcpy(out, p, len);
    if (got)
        *got = len;
    return 0;
}

/* Reads the result of ans (NULL: no answer). 0 when it is a success. */
static int cx_success(struct msg *ans, uint32_t *result, uint32_t *experimental)
{
    if (!ans)
        return -1;
    ims_cx_get_result(ans, result, experimental);
    return *experimental || *result != IMS_DIAMETER_SUCCESS ? -1 : 0;
}

int scscf_cx_parse_maa(struct msg *ans, scscf_maa *out)
{
    memset(out, 0, sizeof(*out));
    if (cx_success(ans, &out->result, &out->experimental))
        return -1;
    for (struct avp *item = ims_cx_child(ans, ims_cx_dict.sip_auth_data_item, NULL); item;
         item = ims_cx_child(ans, ims_cx_dict.sip_auth_data_item, item)) {
        char scheme[64] = "";
        ims_cx_get_str(item, ims_cx_dict.sip_auth_scheme, scheme, sizeof(scheme));
        if (strcasecmp(scheme, IMS_SCHEME_AKA) == 0) {
            if (out->n_aka >= SCSCF_MAX_VECTORS)
                continue;
            scscf_aka_vector *v = &out->aka[out->n_aka];
            uint8_t challenge[32];
            size_t xl = 0;
            if (os_copy(item, ims_cx_dict.sip_authenticate, challenge, 32, 32, NULL) ||
                os_copy(item, ims_cx_dict.sip_authorization, v->xres, 4, 16, &xl) ||
                os_copy(item, ims_cx_dict.ck, v->ck, 16, 16, NULL) ||
                os_copy(item, ims_cx_dict.ik, v->ik, 16, 16, NULL)) {
                IMS_WARN(SUBSYS, "MAA: unusable %s item skipped", IMS_SCHEME_AKA);
                continue;
            }
            memcpy(v->rand, challenge, 16);
            memcpy(v->autn, challenge + 16, 16);
            v->xres_len = (uint8_t)xl;
            out->n_aka++;
        } else if (strcasecmp(scheme, IMS_SCHEME_DIGEST) == 0 && !out->digest) {
            struct avp *sda = ims_cx_child(item, ims_cx_dict.sip_digest_authenticate, NULL);
            if (!sda || ims_cx_get_str(sda, ims_cx_dict.digest_realm, out->digest_realm, sizeof(out->digest_realm)) ||
                ims_cx_get_str(sda, ims_cx_dict.digest_ha1, out->digest_ha1, sizeof(out->digest_ha1)) ||
                strlen(out->digest_ha1) != 32 || strspn(out->digest_ha1, "0123456789abcdefABCDEF") != 32) {
                IMS_WARN(SUBSYS, "MAA: unusable %s item skipped", IMS_SCHEME_DIGEST);
                continue;
            }
            if (ims_cx_get_str(sda, ims_cx_dict.digest_qop, out->digest_qop, sizeof(out->digest_qop)) ||
                !out->digest_qop[0])
                snprintf(out->digest_qop, sizeof(out->digest_qop), "auth");
            char alg[32] = "";
            if (ims_cx_get_str(sda, ims_cx_dict.digest_algorithm, alg, sizeof(alg)) == 0 && alg[0] &&
                strcasecmp(alg, "MD5") != 0) {
                IMS_WARN(SUBSYS, "MAA: digest algorithm %s not supported", alg);
                continue;
            }
            out->digest = true;
        } else {
            IMS_WARN(SUBSYS, "MAA: scheme '%s' not supported", scheme);
        }
    }
    return out->n_aka || out->digest ? 0 : -1;
}

void scscf_cx_sip_answer(struct msg *ans, ims_cx_purpose purpose, ims_cx_sip *out)
{
    uint32_t rc = 0, exp = 0;
    if (ans)
        ims_cx_get_result(ans, &rc, &exp);
    ims_cx_to_sip(ans != NULL, rc, exp, purpose, out);
    if (!out->status) {
        out->status = 500;
        out->phrase = "Server Internal Error - Unusable HSS Answer";
        out->result = "error";
    }
}

int scscf_cx_parse_saa(struct msg *ans, scscf_saa *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (cx_success(ans, &out->result, &out->experimental))
        return -1;
    size_t len = 0;
    const uint8_t *xml = ims_cx_get_os(ans, ims_cx_dict.user_data, &len);
    if (!xml)
        return 0;
    if (ims_userdata_parse((const char *)xml, len, &out->sub, err, errlen)) {
        memset(&out->sub, 0, sizeof(out->sub));
        return -2;
    }
    out->has_profile = true;
    return 0;
}

void scscf_saa_free(scscf_saa *saa)
{
    if (saa->has_profile)
        ims_subscription_free(&saa->sub);
    saa->has_profile = false;
}

/* ---------- SAR ---------- */

typedef struct {
    ims_cx_answer_f cb;
    void *arg;
    int sat;
    char who[256];
} sar_ctx;

static void on_saa(void *p, struct msg *ans)
{
    sar_ctx *s = p;
    uint32_t rc = 0, exp = 0;
    if (ans)
        ims_cx_get_result(ans, &rc, &exp);
    if (!ans)
        IMS_WARN(SUBSYS, "SAR type %d for %s: no answer", s->sat, s->who);
    else if (exp || rc != IMS_DIAMETER_SUCCESS)
        IMS_WARN(SUBSYS, "SAR type %d for %s: %s", s->sat, s->who,
                 exp ? ims_cx_result_name(exp, true) : ims_cx_result_name(rc, false));
    else
        IMS_DEBUG(SUBSYS, "SAR type %d for %s: success", s->sat, s->who);
    if (s->cb)
        s->cb(s->arg, ans);
    free(s);
}

int scscf_cx_sar(scscf_context *ctx, const char *impi, const char *impu, int sat, bool uda,
                 ims_cx_answer_f cb, void *arg)
{
    struct msg *req = scscf_cx_new(ctx, ims_cx_dict.sar, impi, impu);
    sar_ctx *s = calloc(1, sizeof(*s));
    if (!req || !s)
        goto fail;
    if (ims_cx_add_i32(req, ims_cx_dict.server_assignment_type, sat) ||
        ims_cx_add_i32(req, ims_cx_dict.user_data_already_available, uda ? 1 : 0))
        goto fail;
    s->cb = cb;
    s->arg = arg;
    s->sat = sat;
    snprintf(s->who, sizeof(s->who), "%s %s", impi && *impi ? impi : "-", impu && *impu ? impu : "-");
    if (ims_cx_send(ctx->sip, &req, on_saa, s)) {
        free(s);
        return -1;
    }
    return 0;
fail:
    if (req)
        fd_msg_free(req);
    free(s);
    return -1;
}

/* ---------- RTR (TS 29.228 §6.1.3) ---------- */

typedef struct {
    scscf_context *ctx;
    const char *impi;
    scscf_reg *found[64];
    size_t n;
} by_impi;

static int collect_impi(void *arg, scscf_reg *reg)
{
    by_impi *b = arg;
    if (b->n < 64 && strcmp(reg->impi, b->impi) == 0)
        b->found[b->n++] = reg;
    return 0;
}

static void add_unique(by_impi *b, scscf_reg *reg)
{
    for (size_t i = 0; i < b->n; i++)
        if (b->found[i] == reg)
            return;
    if (b->n < 64)
        b->found[b->n++] = reg;
}

static void on_rtr(void *arg, struct msg *req)
{
    scscf_context *ctx = arg;
    if (ctx->stopping) {
        ims_cx_reply(req, IMS_DIAMETER_UNABLE_TO_COMPLY, false);
        return;
    }
    char impi[256] = "", impu[512];
    int32_t reason = IMS_DEREG_PERMANENT_TERMINATION;
    by_impi b = { .ctx = ctx, .impi = impi };
    size_t listed = 0;

    ims_cx_get_str(req, ims_cx_dict.user_name, impi, sizeof(impi));
    struct avp *dr = ims_cx_child(req, ims_cx_dict.dereg_reason, NULL);
    if (dr)
        ims_cx_get_i32(dr, ims_cx_dict.reason_code, &reason);
    for (struct avp *a = ims_cx_child(req, ims_cx_dict.public_identity, NULL); a;
         a = ims_cx_child(req, ims_cx_dict.public_identity, a)) {
        struct avp_hdr *h = NULL;
        if (fd_msg_avp_hdr(a, &h) || !h->avp_value || h->avp_value->os.len >= sizeof(impu))
            continue;
        memcpy(impu, h->avp_value->os.data, h->avp_value->os.len);
        impu[h->avp_value->os.len] = '\0';
        listed++;
        scscf_reg *reg = scscf_regstore_find(ctx->store, impu);
        if (reg)
            add_unique(&b, reg);
    }
    if (!listed && impi[0])
        scscf_regstore_foreach(ctx->store, collect_impi, &b);

    /* TS 24.229 §5.4.1.5: "rejected" when the UE shall not re-register, "deactivated" when it
     * should (new S-CSCF assignment, S-CSCF change or removal). */
    int event = reason == IMS_DEREG_PERMANENT_TERMINATION ? SCSCF_CEV_REJECTED : SCSCF_CEV_DEACTIVATED;
    IMS_INFO(SUBSYS, "RTR for %s (%zu identities listed, reason %d): %zu registration(s) removed",
             impi[0] ? impi : "-", listed, reason, b.n);
    for (size_t i = 0; i < b.n; i++)
        scscf_registrar_terminate(ctx, b.found[i], event, -1);
    ims_cx_reply(req, IMS_DIAMETER_SUCCESS, false);
}

/* ---------- PPR (TS 29.228 §6.1.4) ---------- */

static bool same_irs(const scscf_reg *reg, const scscf_impu *old, size_t n_old)
{
    if (reg->n_impus != n_old)
        return false;
    for (size_t i = 0; i < n_old; i++)
        if (!scscf_reg_has_impu(reg, old[i].uri))
            return false;
    return true;
}

static void on_ppr(void *arg, struct msg *req)
{
    scscf_context *ctx = arg;
    if (ctx->stopping) {
        ims_cx_reply(req, IMS_DIAMETER_UNABLE_TO_COMPLY, false);
        return;
    }
    char impi[256] = "", err[256];
    ims_subscription sub;
    memset(&sub, 0, sizeof(sub));
    size_t len = 0;
    const uint8_t *xml = ims_cx_get_os(req, ims_cx_dict.user_data, &len);

    ims_cx_get_str(req, ims_cx_dict.user_name, impi, sizeof(impi));
    if (!xml) {
        /* Charging-Information only: nothing we use. */
        IMS_INFO(SUBSYS, "PPR for %s without User-Data: accepted", impi[0] ? impi : "-");
        ims_cx_reply(req, IMS_DIAMETER_SUCCESS, false);
        return;
    }
    if (ims_userdata_parse((const char *)xml, len, &sub, err, sizeof(err))) {
        IMS_WARN(SUBSYS, "PPR for %s: bad User-Data: %s", impi[0] ? impi : "-", err);
        ims_cx_reply(req, IMS_CX_ERROR_NOT_SUPPORTED_USER_DATA, true);
        return;
    }
    scscf_reg *reg = NULL;
    for (size_t p = 0; p < sub.n_profiles && !reg; p++)
        for (size_t i = 0; i < sub.profiles[p].n_ids && !reg; i++)
            reg = scscf_regstore_find(ctx->store, sub.profiles[p].ids[i].identity);
    if (!reg) {
        IMS_WARN(SUBSYS, "PPR for %s: no registration of its identities here", impi[0] ? impi : "-");
        ims_subscription_free(&sub);
        ims_cx_reply(req, IMS_CX_ERROR_USER_UNKNOWN, true);
        return;
    }

    /* Keep the old set to see whether the IRS changed (then the subscribers hear of it). */
    size_t n_old = reg->n_impus;
    scscf_impu *old = calloc(n_old ? n_old : 1, sizeof(*old));
    for (size_t i = 0; old && i < n_old; i++)
        old[i].uri = strdup(reg->impus[i].uri);
    char first[512];
    snprintf(first, sizeof(first), "%s", reg->impus[0].uri);
    int rc = scscf_regstore_set_profile(ctx->store, reg, &sub, first);
    bool changed = !old || !same_irs(reg, old, n_old);
    for (size_t i = 0; old && i < n_old; i++)
        free(old[i].uri);
    free(old);
    if (rc) {
        IMS_ERROR(SUBSYS, "PPR for %s: cannot store the new profile", impi[0] ? impi : "-");
        ims_cx_reply(req, IMS_DIAMETER_UNABLE_TO_COMPLY, false);
        return;
    }
    IMS_INFO(SUBSYS, "PPR for %s: profile replaced (%zu identities%s)", reg->impi, reg->n_impus,
             changed ? ", set changed" : "");
    if (changed)
        scscf_reginfo_notify(ctx, reg, false);
    scscf_regsync_changed(ctx, reg);
    scscf_update_gauges(ctx);
    ims_cx_reply(req, IMS_DIAMETER_SUCCESS, false);
}

int scscf_cx_serve(scscf_context *ctx)
{
    if (ims_cx_serve(ctx->sip, ims_cx_dict.rtr, on_rtr, ctx) ||
        ims_cx_serve(ctx->sip, ims_cx_dict.ppr, on_ppr, ctx))
        return -1;
    return 0;
}
