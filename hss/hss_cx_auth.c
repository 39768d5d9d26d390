/*
 * hss_cx_auth: the Multimedia-Auth procedure on the HSS (MAR/MAA).
 *
 * References: TS 29.228 §6.3 (authentication procedures: scheme selection, resynchronisation),
 * TS 29.229 §6.1.7/§6.1.8 (MAR/MAA), §6.3.9-§6.3.13 (SIP-Auth-Data-Item and friends), §6.3.36
 * (SIP-Digest-Authenticate with the RFC 4740 Digest-* AVPs); TS 33.203 §6.1 (IMS AKA vectors),
 * TS 33.102 §6.3.3/§6.3.5 and Annex C (SQN, AUTS).
 *
 * AKA: SIP-Authenticate = RAND || AUTN, SIP-Authorization = XRES, CK and IK in their own AVPs.
 * The SQNs of the vectors are covered by a durable reservation in the store before the answer
 * leaves (hss_store_auth.c), so a crash can never hand out the same SQN twice. The lookup reads
 * only the IMPI row and the IMPU's owner, not the whole subscription. Resync: the S-CSCF sends SIP-Authorization = RAND || AUTS;
 * we verify MAC-S (AMF 0000) before taking SQN_MS; a bad MAC-S is refused with
 * DIAMETER_UNABLE_TO_COMPLY and the SQN is left alone.
 *
 * Server-Name (TS 29.228 §8.1, §8.1.1): a MAR from an S-CSCF other than the one assigned to the
 * subscription (the I-CSCF re-selected because the assigned one did not answer) overwrites the
 * assignment, unless it is a resynchronisation; SARs from the old S-CSCF are then refused
 * (hss_cx.c), so a stale copy of the registration there cannot de-register the user at the new
 * one. The RTR to the old S-CSCF that §8.1.1 suggests ("should") is not sent: the usual reason
 * for the move is that it is unreachable.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <freeDiameter/freeDiameter-host.h>
#include <freeDiameter/libfdcore.h>

#include "hss_cx_internal.h"
#include "ims_aka.h"
#include "ims_clock.h"
#include "ims_log.h"

#define SUBSYS "hss.auth"

static struct disp_hdl *g_mar_hdl;

/* Scheme named in the MAR -> HSS_AUTH_* bit, 0 for "Unknown"/absent, -1 for unsupported. */
static int scheme_from_name(const char *name)
{
    if (!name[0] || strcasecmp(name, IMS_SCHEME_UNKNOWN) == 0)
        return 0;
    if (strcasecmp(name, IMS_SCHEME_AKA) == 0)
        return HSS_AUTH_AKA;
    if (strcasecmp(name, IMS_SCHEME_DIGEST) == 0 || strcasecmp(name, "Digest-MD5") == 0 ||
        strcasecmp(name, "Digest") == 0)
        return HSS_AUTH_DIGEST;
    return -1;
}

static void impi_opc(const hss_impi *pi, uint8_t opc[16])
{
    if (pi->op_is_opc)
        memcpy(opc, pi->op, 16);
    else
        ims_milenage_opc(pi->k, pi->op, opc);
}

/* Resynchronisation (TS 33.102 §6.3.5): RAND || AUTS in SIP-Authorization. */
static hss_cx_outcome resync(const hss_impi *pi, const uint8_t *data, size_t len)
{
    if (len != 16 + 14)
        return CX_BASE(IMS_DIAMETER_INVALID_AVP_VALUE, "SIP-Authorization is not RAND || AUTS (30 bytes)");
    uint8_t opc[16];
    uint64_t sqn_ms = 0;
    impi_opc(pi, opc);
    if (!ims_aka_verify_auts(opc, pi->k, data, data + 16, &sqn_ms)) {
        IMS_WARN(SUBSYS, "resync for %s refused: AUTS MAC-S check failed (wrong key or forged AUTS)",
                 pi->identity);
        return CX_BASE(IMS_DIAMETER_UNABLE_TO_COMPLY, "AUTS MAC-S check failed");
    }
    IMS_INFO(SUBSYS, "resync for %s: SQN_MS 0x%012llx (HSS had 0x%012llx)", pi->identity,
             (unsigned long long)sqn_ms, (unsigned long long)pi->sqn);
    if (hss_store_set_sqn(hss_ctx.store, pi->identity, sqn_ms) != HSS_STORE_OK)
        return CX_BASE(IMS_DIAMETER_UNABLE_TO_COMPLY, "store error");
    return CX_OK;
}

static int add_aka_item(struct msg *ans, unsigned number, const ims_auth_vector *v)
{
    struct avp *item = NULL;
    uint8_t challenge[32];
    memcpy(challenge, v->rand, 16);
    memcpy(challenge + 16, v->autn, 16);
    if (ims_cx_add_group(ans, ims_cx_dict.sip_auth_data_item, &item) ||
        ims_cx_add_u32(item, ims_cx_dict.sip_item_number, number) ||
        ims_cx_add_str(item, ims_cx_dict.sip_auth_scheme, IMS_SCHEME_AKA) ||
        ims_cx_add_os(item, ims_cx_dict.sip_authenticate, challenge, sizeof(challenge)) ||
        ims_cx_add_os(item, ims_cx_dict.sip_authorization, v->xres, sizeof(v->xres)) ||
        ims_cx_add_os(item, ims_cx_dict.ck, v->ck, sizeof(v->ck)) ||
        ims_cx_add_os(item, ims_cx_dict.ik, v->ik, sizeof(v->ik)))
        return -1;
    return 0;
}

static hss_cx_outcome aka_vectors(struct msg *ans, const hss_impi *pi, unsigned n, unsigned *made)
{
    uint64_t sqns[32];
    uint8_t opc[16];
    if (!pi->has_aka)
        return CX_EXP(IMS_CX_ERROR_AUTH_SCHEME_NOT_SUPPORTED, "no AKA credentials");
    if (n > 32)
        n = 32;
    int rc = hss_store_advance_sqn(hss_ctx.store, pi->identity, n, sqns);
    if (rc != HSS_STORE_OK)
        return CX_BASE(IMS_DIAMETER_UNABLE_TO_COMPLY, "cannot reserve SQN");
    impi_opc(pi, opc);
    for (unsigned i = 0; i < n; i++) {
        ims_auth_vector v;
        uint8_t rand[16];
        if (ims_random(rand, sizeof(rand)))
            return CX_BASE(IMS_DIAMETER_UNABLE_TO_COMPLY, "no randomness");
        if (ims_aka_vector(opc, pi->k, pi->amf, sqns[i], rand, &v) != 0)
            return CX_BASE(IMS_DIAMETER_UNABLE_TO_COMPLY, "cannot compute an authentication vector");
        if (add_aka_item(ans, i + 1, &v))
            return CX_BASE(IMS_DIAMETER_UNABLE_TO_COMPLY, "cannot build SIP-Auth-Data-Item");
        IMS_DEBUG(SUBSYS, "vector %u for %s with SQN 0x%012llx", i + 1, pi->identity,
                  (unsigned long long)sqns[i]);
    }
    *made = n;
    return CX_OK;
}

static hss_cx_outcome digest_item(struct msg *ans, const hss_impi *pi)
{
    if (!pi->ha1[0])
        return CX_EXP(IMS_CX_ERROR_AUTH_SCHEME_NOT_SUPPORTED, "no digest credentials");
    struct avp *item = NULL, *sda = NULL;
    const char *realm = pi->digest_realm ? pi->digest_realm : ims_diameter_realm();
    if (ims_cx_add_group(ans, ims_cx_dict.sip_auth_data_item, &item) ||
        ims_cx_add_u32(item, ims_cx_dict.sip_item_number, 1) ||
        ims_cx_add_str(item, ims_cx_dict.sip_auth_scheme, IMS_SCHEME_DIGEST) ||
        ims_cx_add_group(item, ims_cx_dict.sip_digest_authenticate, &sda) ||
        ims_cx_add_str(sda, ims_cx_dict.digest_realm, realm) ||
        ims_cx_add_str(sda, ims_cx_dict.digest_algorithm, "MD5") ||
        ims_cx_add_str(sda, ims_cx_dict.digest_qop, hss_ctx.cfg.hss.digest_qop) ||
        ims_cx_add_str(sda, ims_cx_dict.digest_ha1, pi->ha1))
        return CX_BASE(IMS_DIAMETER_UNABLE_TO_COMPLY, "cannot build SIP-Digest-Authenticate");
    return CX_OK;
}

static int on_mar(struct msg **msg, struct avp *avp, struct session *sess, void *opaque,
                  enum disp_action *act)
{
    (void)avp; (void)sess; (void)opaque; (void)act;
    uint64_t t0 = ims_monotonic_us();
    struct msg *qry = *msg;
    char impi[HSS_ID_MAX] = "", impu[HSS_ID_MAX] = "", server[HSS_ID_MAX] = "", scheme_name[64] = "";
    char peer[256], realm[256] = "", assigned[HSS_ID_MAX], who[2 * HSS_ID_MAX + 64];
    hss_impi cred;
    hss_impu_owner owner = HSS_IMPU_UNKNOWN;
    memset(&cred, 0, sizeof(cred));
    hss_cx_outcome out = CX_OK;
    uint32_t wanted = 1;
    unsigned made = 0;
    int scheme = 0;

    ims_cx_origin_host(qry, peer, sizeof(peer));
    ims_cx_get_str(qry, ims_cx_dict.origin_realm, realm, sizeof(realm));
    if (ims_cx_new_answer(msg))
        return ENOMEM;

    if (!hss_cx_read_str(qry, *msg, ims_cx_dict.user_name, impi, sizeof(impi), &out) ||
        !hss_cx_read_str(qry, *msg, ims_cx_dict.public_identity, impu, sizeof(impu), &out) ||
        !hss_cx_read_str(qry, *msg, ims_cx_dict.server_name, server, sizeof(server), &out))
        goto out;
    struct avp *item = ims_cx_child(qry, ims_cx_dict.sip_auth_data_item, NULL);
    if (!item) {
        ims_cx_set_missing_avp(*msg, ims_cx_dict.sip_auth_data_item, "SIP-Auth-Data-Item");
        out = CX_BASE(IMS_DIAMETER_MISSING_AVP, "SIP-Auth-Data-Item");
        goto out;
    }
    ims_cx_get_u32(qry, ims_cx_dict.sip_number_auth_items, &wanted);
    if (wanted == 0)
        wanted = 1;
    if (wanted > (uint32_t)hss_ctx.cfg.hss.max_auth_items)
        wanted = (uint32_t)hss_ctx.cfg.hss.max_auth_items;
    ims_cx_get_str(item, ims_cx_dict.sip_auth_scheme, scheme_name, sizeof(scheme_name));

    /* Only the IMPI row and the IMPU's owner: the MAR is the hot path of the HSS. */
    int rc = hss_store_auth_lookup(hss_ctx.store, impi, impu, &cred, &owner, assigned, sizeof(assigned));
    if (rc == HSS_STORE_ERROR) {
        out = CX_BASE(IMS_DIAMETER_UNABLE_TO_COMPLY, "store error");
        goto out;
    }
    const hss_impi *pi = rc == HSS_STORE_OK ? &cred : NULL;
    if (!pi) {
        out = CX_EXP(IMS_CX_ERROR_USER_UNKNOWN, "unknown private identity");
        goto out;
    }
    if (owner != HSS_IMPU_SAME) {
        out = owner == HSS_IMPU_OTHER
                  ? CX_EXP(IMS_CX_ERROR_IDENTITIES_DONT_MATCH, "IMPU of another subscription")
                  : CX_EXP(IMS_CX_ERROR_USER_UNKNOWN, "unknown public identity");
        goto out;
    }

    scheme = scheme_from_name(scheme_name);
    if (scheme == 0)
        scheme = (int)pi->default_scheme;
    if (scheme < 0 || !(pi->auth_schemes & (unsigned)scheme)) {
        out = CX_EXP(IMS_CX_ERROR_AUTH_SCHEME_NOT_SUPPORTED, scheme_name[0] ? scheme_name : "default");
        goto out;
    }

    size_t alen = 0;
    const uint8_t *auth = scheme == HSS_AUTH_AKA ? ims_cx_get_os(item, ims_cx_dict.sip_authorization, &alen) : NULL;
    if (!auth && assigned[0] && strcasecmp(assigned, server) != 0) {
        /* TS 29.228 §8.1: another S-CSCF authenticates the user: it is the assigned one now. */
        if (hss_store_move_scscf(hss_ctx.store, impi, server, peer, realm) != HSS_STORE_OK) {
            out = CX_BASE(IMS_DIAMETER_UNABLE_TO_COMPLY, "store error");
            goto out;
        }
        IMS_INFO(SUBSYS, "MAR %s from %s (%s): S-CSCF assignment moved from %s", impi, server, peer, assigned);
    }

    if (scheme == HSS_AUTH_AKA) {
        if (auth) {
            out = resync(pi, auth, alen);
            if (out.code != IMS_DIAMETER_SUCCESS || out.experimental)
                goto out;
        }
        out = aka_vectors(*msg, pi, wanted, &made);
    } else {
        out = digest_item(*msg, pi);
        made = 1;
    }
    if (out.code == IMS_DIAMETER_SUCCESS && !out.experimental) {
        ims_cx_add_str(*msg, ims_cx_dict.user_name, impi);
        ims_cx_add_str(*msg, ims_cx_dict.public_identity, impu);
        ims_cx_add_u32(*msg, ims_cx_dict.sip_number_auth_items, made);
    }

out:
    snprintf(who, sizeof(who), "%s %s %s x%u", impi[0] ? impi : "-", impu[0] ? impu : "-",
             scheme == HSS_AUTH_AKA ? "AKA" : scheme == HSS_AUTH_DIGEST ? "SIP-Digest" : "?", made);
    hss_impi_clear(&cred);
    return hss_cx_send_answer(msg, IMS_CX_MAR, who, peer, out, t0);
}

int hss_cx_auth_init(void)
{
    struct disp_when when;
    memset(&when, 0, sizeof(when));
    when.app = ims_cx_dict.app;
    when.command = ims_cx_dict.mar;
    return fd_disp_register(on_mar, DISP_HOW_CC, &when, NULL, &g_mar_hdl);
}
