/*
 * pcscf_ipsec: sec-agree with IPsec SAs between the UE and the P-CSCF.
 *
 * References: TS 33.203 §7.1 (SA parameters, temporary SAs with the 401), §7.2 (the P-CSCF's
 * choices in Security-Server), §7.4 (re-authentication: the new set replaces the old one once the
 * UE uses it), Annex H (ipsec-3gpp), Annex I (keys: common/ims_secagree); TS 24.229 §5.2.2.1
 * (Security-Verify check, integrity-protected in Authorization), RFC 3329.
 *
 * Geometry of one SA set (UE picks spi-uc/spi-us/port-uc/port-us, we spi-pc/spi-ps/port-pc/port-ps):
 *   UE port-uc -> P port-ps  spi-ps  (in)   requests from the UE
 *   P port-ps  -> UE port-uc spi-uc  (out)  responses to them
 *   P port-pc  -> UE port-us spi-us  (out)  our requests to the UE
 *   UE port-us -> P port-pc  spi-pc  (in)   responses to those
 * pcscf_xfrm installs each SA with "level required" policies both ways for UDP and TCP: once a
 * set exists nothing on its ports leaves in clear and nothing arrives in clear.
 *
 * Supported: ipsec-3gpp, ESP transport, hmac-sha-1-96 / hmac-md5-96, null / aes-cbc /
 * des-ede3-cbc; UDP both ways; TCP from the UE (its connection from port-uc to our port-s, the
 * responses on it). Not supported: requests from us to the UE over TCP (sofia-sip 1.12 connects
 * from an ephemeral port, not from port-c: we send them over UDP from port-c); IKE; the TLS and
 * digest mechanisms of RFC 3329; IPv6 has not been tested.
 *
 * Lifecycle: the 401 installs a temporary set (sa_temp_lifetime); a REGISTER over it whose 200
 * arrives makes it the UE's set (lifetime = expiry + sa_slack) and deletes the UE's older sets; a
 * failure (403, ...) deletes a temporary set the REGISTER came over; a temporary set nobody used
 * goes with its lifetime (housekeeping); a binding removed (de-registration, expiry, reg event)
 * deletes its set DELETE_DELAY_S later (the response in flight still leaves protected); stop
 * deletes all, start flushes what carries our tag (sa_tag).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <linux/capability.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <sofia-sip/msg_header.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/url.h>

#include "ims_clock.h"
#include "ims_http.h"
#include "ims_log.h"
#include "pcscf_ipsec.h"
#include "pcscf_util.h"
#include "pcscf_xfrm.h"

#define SUBSYS "pcscf.ipsec"
#define DELETE_DELAY_S 2

typedef struct pcscf_sa_set {
    struct pcscf_sa_set *next;
    uint64_t id;
    char ue[64];                /* UE address */
    char impu[256];             /* for logs */
    uint16_t port_uc, port_us;
    uint32_t spi_pc, spi_ps;
    ims_sa_list server;         /* what our Security-Server said (Security-Verify must equal it) */
    pcscf_xfrm_sa sa[4];        /* keys inside: never logged */
    bool active;                /* a 200 came for a REGISTER over it */
    int64_t expires;            /* monotonic s: temporary lifetime / registration + slack */
    int64_t delete_at;          /* > 0: deletion due then */
} pcscf_sa_set;

typedef struct pcscf_ipsec {
    pcscf_xfrm *xfrm;
    char local[64];             /* our address, as the SAs name it */
    pcscf_sa_set *sets;
    uint64_t next_id;
    uint32_t next_spi;
    ims_metric *m_installed, *m_deleted, *m_active;
} pcscf_ipsec;

static void metrics_update(pcscf_ipsec *ip)
{
    int64_t n = 0;
    for (pcscf_sa_set *s = ip->sets; s; s = s->next)
        n += 4;
    ims_metric_set(ip->m_active, n);
}

/* ---------- sets ---------- */

static pcscf_sa_set *set_by_id(pcscf_ipsec *ip, uint64_t id)
{
    for (pcscf_sa_set *s = ip && id ? ip->sets : NULL; s; s = s->next)
        if (s->id == id)
            return s;
    return NULL;
}

static pcscf_sa_set *set_by_flow(pcscf_ipsec *ip, const char *host, unsigned port_uc)
{
    for (pcscf_sa_set *s = ip ? ip->sets : NULL; s; s = s->next)
        if (s->port_uc == port_uc && strcmp(s->ue, host) == 0 && !s->delete_at)
            return s;
    return NULL;
}

/* Nothing from our plain SIP port reaches a UE in clear once it has SAs (its answers and
 * requests go over them): an out policy blocks that port towards the UE's address while it has
 * an active set (pcscf_xfrm_block), e.g. the 403 to a plain request of it is dropped, not sent. */
static void plain_block(pcscf_context *ctx, const char *host, bool on, const char *why)
{
    char port[16], err[256];
    if (ims_sip_ident_port(ctx->sip, IMS_SIP_IDENT_MAIN, port, sizeof(port)))
        return;
    if (pcscf_xfrm_block(ctx->ipsec->xfrm, ctx->ipsec->local, (uint16_t)atoi(port), host, on, err, sizeof(err)))
        IMS_WARN(SUBSYS, "%s: %s", host, err);
    else
        IMS_DEBUG(SUBSYS, "plain port %s to %s %s: %s", port, host, on ? "blocked" : "open", why);
}

static void set_delete_now(pcscf_context *ctx, pcscf_sa_set *set, const char *why)
{
    pcscf_ipsec *ip = ctx->ipsec;
    char err[256];
    for (int i = 0; i < 4; i++)
        if (pcscf_xfrm_del(ip->xfrm, &set->sa[i], err, sizeof(err)))
            IMS_WARN(SUBSYS, "SA spi %u of %s (%s): %s", set->sa[i].spi, set->impu, set->ue, err);
    IMS_INFO(SUBSYS, "SA set of %s at %s (port-uc %u, port-us %u, spi-pc %u, spi-ps %u) deleted: %s", set->impu,
             set->ue, set->port_uc, set->port_us, set->spi_pc, set->spi_ps, why);
    ims_metric_add(ip->m_deleted, 4);
    for (pcscf_sa_set **pp = &ip->sets; *pp; pp = &(*pp)->next)
        if (*pp == set) {
            *pp = set->next;
            break;
        }
    bool was_active = set->active;
    char host[sizeof(set->ue)];
    snprintf(host, sizeof(host), "%s", set->ue);
    explicit_bzero(set, sizeof(*set));
    free(set);
    metrics_update(ip);
    if (was_active && !pcscf_ipsec_host_protected(ctx, host))
        plain_block(ctx, host, false, "its last SA set deleted");
}

static bool spi_used(pcscf_ipsec *ip, uint32_t spi)
{
    for (pcscf_sa_set *s = ip->sets; s; s = s->next)
        if (s->spi_pc == spi || s->spi_ps == spi)
            return true;
    return false;
}

static uint32_t spi_alloc(pcscf_context *ctx)
{
    pcscf_ipsec *ip = ctx->ipsec;
    uint32_t lo = (uint32_t)ctx->cfg.pcscf.sa_spi_min, hi = (uint32_t)ctx->cfg.pcscf.sa_spi_max;
    for (uint64_t tries = 0; tries <= (uint64_t)(hi - lo); tries++) {
        if (ip->next_spi < lo || ip->next_spi > hi)
            ip->next_spi = lo;
        uint32_t spi = ip->next_spi++;
        if (!spi_used(ip, spi))
            return spi;
    }
    return 0;
}

/* ---------- start / stop ---------- */

/* XFRM netlink needs CAP_NET_ADMIN in the effective set. The container image runs the P-CSCF as
 * a non-root user whose binary carries cap_net_admin as a permitted file capability only
 * (deploy/Dockerfile: no effective bit, so exec never fails where the container was not given
 * the capability); it is made effective here, when sec-agree needs it, and nowhere else.
 * Without it in the permitted set this does nothing and the XFRM calls fail with a clear error. */
static void raise_net_admin(void)
{
    struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
    struct __user_cap_data_struct d[2];
    if (syscall(SYS_capget, &h, d))
        return;
    uint32_t bit = 1u << (CAP_NET_ADMIN % 32);
    unsigned i = CAP_NET_ADMIN / 32;
    if (!(d[i].permitted & bit) || (d[i].effective & bit))
        return;
    d[i].effective |= bit;
    if (syscall(SYS_capset, &h, d))
        IMS_WARN(SUBSYS, "cannot make CAP_NET_ADMIN effective: %m");
}

int pcscf_ipsec_start(pcscf_context *ctx, char *err, size_t errlen)
{
    const pcscf_cfg *c = &ctx->cfg.pcscf;
    if (pcscf_sec_agree_mode(c) == PCSCF_SEC_AGREE_OFF)
        return 0;
    const char *local = ims_sip_listen_address(ctx->sip);
    if (!local || !strcmp(local, "0.0.0.0") || !strcmp(local, "::") || !strcmp(local, "[::]")) {
        snprintf(err, errlen, "pcscf.sec_agree needs sip.listen to be one address (the SAs name it), not %s",
                 local ? local : "none");
        return -1;
    }
    pcscf_ipsec *ip = calloc(1, sizeof(*ip));
    if (!ip) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    snprintf(ip->local, sizeof(ip->local), "%s", local);
    ip->next_id = 1;
    ctx->ipsec = ip;
    ip->m_installed = ims_metric_counter("pcscf_ipsec_sa_installed_total", "IPsec SAs installed (four per UE set)");
    ip->m_deleted = ims_metric_counter("pcscf_ipsec_sa_deleted_total", "IPsec SAs deleted");
    ip->m_active = ims_metric_gauge("pcscf_ipsec_sa_active", "IPsec SAs in place");
    raise_net_admin();
    ip->xfrm = pcscf_xfrm_open((uint32_t)c->sa_tag, err, errlen);
    if (!ip->xfrm)
        return -1;
    unsigned flushed = 0;
    if (pcscf_xfrm_flush_ours(ip->xfrm, &flushed, err, errlen))
        return -1;
    if (flushed)
        IMS_WARN(SUBSYS, "start-up: %u SA/policy entries left by a previous run (tag %ld) flushed", flushed,
                 c->sa_tag);
    if (ims_sip_add_port(ctx->sip, (unsigned)c->sa_port_c, PCSCF_IDENT_PORT_C, err, errlen) ||
        ims_sip_add_port(ctx->sip, (unsigned)c->sa_port_s, PCSCF_IDENT_PORT_S, err, errlen))
        return -1;
    IMS_INFO(SUBSYS, "sec-agree %s: protected ports %s:%ld (client) and %ld (server), SPIs %ld-%ld, tag %ld",
             pcscf_sec_agree_mode(c) == PCSCF_SEC_AGREE_REQUIRED ? "required" : "optional", local, c->sa_port_c,
             c->sa_port_s, c->sa_spi_min, c->sa_spi_max, c->sa_tag);
    return 0;
}

void pcscf_ipsec_stop(pcscf_context *ctx)
{
    pcscf_ipsec *ip = ctx->ipsec;
    if (!ip)
        return;
    while (ip->sets)
        set_delete_now(ctx, ip->sets, "P-CSCF stops");
    if (ip->xfrm) {
        char err[256];
        if (pcscf_xfrm_flush_ours(ip->xfrm, NULL, err, sizeof(err)))
            IMS_WARN(SUBSYS, "stop: %s", err);
        pcscf_xfrm_close(ip->xfrm);
    }
    free(ip);
    ctx->ipsec = NULL;
}

/* ---------- requests ---------- */

/* src arrived on our transports named ident (NULL: unknown): the "sa" flow or as it is */
static int ue_flow(pcscf_context *ctx, const char *ident, pcscf_addr *out, bool *protected_out)
{
    if (!ctx->ipsec || !ident || strcmp(ident, PCSCF_IDENT_PORT_S))
        return 0;
    /* Our port-s from a set's port-c: the kernel's inbound policy of that set lets only ESP of
     * its SA through, so the request came over it. From anywhere else it is a plain request. */
    if (!set_by_flow(ctx->ipsec, out->host, out->port))
        return 0;
    snprintf(out->transport, sizeof(out->transport), "%s", PCSCF_FLOW_SA);
    if (protected_out)
        *protected_out = true;
    return 0;
}

int pcscf_ue_source(pcscf_context *ctx, nta_incoming_t *irq, pcscf_addr *out, bool *protected_out)
{
    if (protected_out)
        *protected_out = false;
    if (pcscf_source_of(irq, out))
        return -1;
    char ident[16];
    bool known = ctx->ipsec && ims_sip_incoming_ident(ctx->sip, irq, ident, sizeof(ident)) == 0;
    return ue_flow(ctx, known ? ident : NULL, out, protected_out);
}

int pcscf_ue_source_msg(pcscf_context *ctx, msg_t *msg, pcscf_addr *out, bool *protected_out)
{
    if (protected_out)
        *protected_out = false;
    if (pcscf_source_of_msg(msg, out))
        return -1;
    char ident[16];
    bool known = ctx->ipsec && ims_sip_msg_ident(ctx->sip, msg, ident, sizeof(ident)) == 0;
    return ue_flow(ctx, known ? ident : NULL, out, protected_out);
}

bool pcscf_ipsec_host_protected(pcscf_context *ctx, const char *host)
{
    for (pcscf_sa_set *s = ctx->ipsec ? ctx->ipsec->sets : NULL; s; s = s->next)
        if (s->active && !s->delete_at && strcmp(s->ue, host) == 0)
            return true;
    return false;
}

static void pref_lists(const pcscf_cfg *c, ims_sa_alg *alg, size_t *n_alg, ims_sa_ealg *ealg, size_t *n_ealg)
{
    *n_alg = *n_ealg = 0;
    for (size_t i = 0; i < c->sa_alg.count && *n_alg < 4; i++)
        alg[(*n_alg)++] = ims_sa_alg_by_name(c->sa_alg.items[i]);
    for (size_t i = 0; i < c->sa_ealg.count && *n_ealg < 4; i++)
        ealg[(*n_ealg)++] = ims_sa_ealg_by_name(c->sa_ealg.items[i]);
}

int pcscf_ipsec_on_register(pcscf_context *ctx, const sip_t *sip, const pcscf_addr *src, pcscf_ipsec_reg *reg,
                            const char **phrase)
{
    memset(reg, 0, sizeof(*reg));
    const pcscf_cfg *c = &ctx->cfg.pcscf;
    int mode = pcscf_sec_agree_mode(c);
    if (mode == PCSCF_SEC_AGREE_OFF)
        return 0;
    /* TS 24.229 §5.1.1.2: a UE that lost its SAs registers again in clear; its 401 must get out */
    if (strcmp(src->transport, PCSCF_FLOW_SA) && pcscf_ipsec_host_protected(ctx, src->host))
        plain_block(ctx, src->host, false, "REGISTER in clear from it");
    static char why[300];   /* the phrase of the answer (loop thread only) */
    char err[200];
    ims_sa_list offered;
    if (ims_secagree_parse_sip(sip, "Security-Client", &offered, err, sizeof(err))) {
        IMS_INFO(SUBSYS, "REGISTER from %s:%u: bad Security-Client: %s", src->host, src->port, err);
        snprintf(why, sizeof(why), "Bad Security-Client");
        *phrase = why;
        return 400;
    }
    ims_sa_alg alg[4];
    ims_sa_ealg ealg[4];
    size_t n_alg, n_ealg;
    pref_lists(c, alg, &n_alg, ealg, &n_ealg);
    reg->offered = ims_secagree_choose(&offered, alg, n_alg, ealg, n_ealg, &reg->ue) >= 0;
    bool ue_requires = pcscf_list_has(sip->sip_require, "sec-agree") ||
                       pcscf_list_has(sip->sip_proxy_require, "sec-agree");

    if (strcmp(src->transport, PCSCF_FLOW_SA) == 0) {
        /* over an SA set: the agreement is made; Security-Verify must repeat our Security-Server
         * (RFC 3329 §2.3.1, TS 24.229 §5.2.2.1); a Security-Client in it serves a new challenge */
        pcscf_sa_set *set = set_by_flow(ctx->ipsec, src->host, src->port);
        ims_sa_list verify;
        if (!set || ims_secagree_parse_sip(sip, "Security-Verify", &verify, err, sizeof(err)) ||
            !ims_secagree_verify_matches(&verify, &set->server)) {
            IMS_WARN(SUBSYS, "protected REGISTER from %s:%u: Security-Verify is not our Security-Server "
                     "(spi-pc %u, spi-ps %u): refused", src->host, src->port, set ? set->spi_pc : 0,
                     set ? set->spi_ps : 0);
            *phrase = "Forbidden - Security-Verify Mismatch";
            return 403;
        }
        reg->came_over = set->id;
        return 0;
    }
    if (!reg->offered && (mode == PCSCF_SEC_AGREE_REQUIRED || ue_requires)) {
        IMS_INFO(SUBSYS, "REGISTER from %s:%u: %zu mechanism(s) offered, none acceptable (sec_agree %s%s): 494",
                 src->host, src->port, offered.n, mode == PCSCF_SEC_AGREE_REQUIRED ? "required" : "optional",
                 ue_requires ? ", the UE requires sec-agree" : "");
        *phrase = "Security Agreement Required";
        return 494;
    }
    return 0;
}

int pcscf_ipsec_mark_register(msg_t *msg, sip_t *sip, const pcscf_ipsec_reg *reg)
{
    /* Only we say integrity-protected: the UE's own parameter goes from every Authorization (a UE
     * on a plain flow must not skip the S-CSCF's challenge, scscf.reauth_protected) */
    for (sip_authorization_t *au = sip->sip_authorization; au; au = au->au_next)
        msg_header_remove_param((msg_common_t *)au, "integrity-protected");
    if (!reg->came_over || !sip->sip_authorization)
        return 0;
    return msg_header_replace_param(msg_home(msg), (msg_common_t *)sip->sip_authorization,
                                    "integrity-protected=\"yes\"") < 0 ? -1 : 0;
}

/* ---------- responses ---------- */

static int hex16(const char *v, uint8_t out[16])
{
    if (*v == '"')
        v++;
    for (int i = 0; i < 16; i++) {
        unsigned b;
        if (sscanf(v + 2 * i, "%2x", &b) != 1)
            return -1;
        out[i] = (uint8_t)b;
    }
    return 0;
}

/* CK and IK of the AKA challenge (TS 33.203 §7.1: the S-CSCF passes them in the 401). */
static int take_ck_ik(const sip_t *sip, uint8_t ck[16], uint8_t ik[16])
{
    int found = 0;
    for (const sip_www_authenticate_t *w = sip->sip_www_authenticate; w; w = w->au_next)
        for (msg_param_t const *p = w->au_params; p && *p; p++) {
            if (strncasecmp(*p, "ck=", 3) == 0 && hex16(*p + 3, ck) == 0)
                found |= 1;
            else if (strncasecmp(*p, "ik=", 3) == 0 && hex16(*p + 3, ik) == 0)
                found |= 2;
        }
    return found == 3 ? 0 : -1;
}

static void fill_sa(pcscf_xfrm_sa *sa, const char *src, uint16_t sport, const char *dst, uint16_t dport,
                    uint32_t spi, pcscf_xfrm_dir dir, const ims_sa_mech *m, const ims_sa_keys *k, unsigned life)
{
    memset(sa, 0, sizeof(*sa));
    snprintf(sa->src, sizeof(sa->src), "%s", src);
    snprintf(sa->dst, sizeof(sa->dst), "%s", dst);
    sa->sport = sport;
    sa->dport = dport;
    sa->spi = spi;
    sa->dir = dir;
    snprintf(sa->alg, sizeof(sa->alg), "%s", ims_sa_alg_name(m->alg));
    memcpy(sa->auth_key, k->auth_key, k->auth_key_len);
    sa->auth_key_len = k->auth_key_len;
    snprintf(sa->ealg, sizeof(sa->ealg), "%s", ims_sa_ealg_name(m->ealg));
    memcpy(sa->enc_key, k->enc_key, k->enc_key_len);
    sa->enc_key_len = k->enc_key_len;
    sa->lifetime = life;
}

int pcscf_ipsec_on_401(pcscf_context *ctx, pcscf_ipsec_reg *reg, const char *impu, const pcscf_addr *src,
                       msg_t *msg, sip_t *sip)
{
    pcscf_ipsec *ip = ctx->ipsec;
    if (!ip || !reg->offered)
        return 0;
    const pcscf_cfg *c = &ctx->cfg.pcscf;
    uint8_t ck[16], ik[16];
    if (take_ck_ik(sip, ck, ik)) {
        IMS_WARN(SUBSYS, "401 for %s carries no CK/IK (not an AKA challenge?): no SAs, no Security-Server", impu);
        return 0;
    }
    ims_sa_keys keys;
    int rc = ims_secagree_keys(reg->ue.alg, reg->ue.ealg, ck, ik, &keys);
    explicit_bzero(ck, sizeof(ck));
    explicit_bzero(ik, sizeof(ik));
    if (rc)
        return 500;

    /* a temporary set of an earlier challenge of this UE client port that was never used goes */
    for (pcscf_sa_set *s = ip->sets, *n; s; s = n) {
        n = s->next;
        if (!s->active && strcmp(s->ue, src->host) == 0 && s->id != reg->came_over)
            set_delete_now(ctx, s, "replaced by a newer challenge");
    }
    /* TS 33.203 §7.4: a new challenge gets new SAs next to the UE's current ones, so the UE has to
     * offer new ports and SPIs (our port-c/port-s are fixed). Reused ones would name the same
     * kernel selectors and SPIs as a set in use: refused here, before anything is installed. */
    for (pcscf_sa_set *s = ip->sets, *n; s; s = n) {
        n = s->next;
        const ims_sa_mech *u = &reg->ue;
        if (strcmp(s->ue, src->host) ||
            !(u->port_c == s->port_uc || u->port_c == s->port_us || u->port_s == s->port_uc ||
              u->port_s == s->port_us || u->spi_c == s->sa[1].spi || u->spi_s == s->sa[2].spi ||
              u->spi_c == s->sa[2].spi || u->spi_s == s->sa[1].spi))
            continue;
        if (s->delete_at) {   /* going anyway (de-registered, replaced): now, to make room */
            set_delete_now(ctx, s, "its ports or SPIs are offered again");
            continue;
        }
        IMS_WARN(SUBSYS, "new challenge for %s at %s: its Security-Client reuses the ports or SPIs of its "
                 "current SA set (port-c %u port-s %u spi-c %u spi-s %u; in use: port-uc %u port-us %u): "
                 "no new SAs, 500 (TS 33.203 7.4 wants new ones)", impu, src->host, u->port_c, u->port_s,
                 u->spi_c, u->spi_s, s->port_uc, s->port_us);
        ims_secagree_keys_wipe(&keys);
        return 500;
    }
    pcscf_sa_set *set = calloc(1, sizeof(*set));
    uint32_t spi_pc = spi_alloc(ctx), spi_ps = spi_pc ? spi_alloc(ctx) : 0;
    if (!set || !spi_ps) {
        free(set);
        ims_secagree_keys_wipe(&keys);
        IMS_ERROR(SUBSYS, "no SA set for %s: %s", impu, set ? "SPI range exhausted" : "out of memory");
        return 500;
    }
    set->id = ip->next_id++;
    set->spi_pc = spi_pc;
    set->spi_ps = spi_ps;
    snprintf(set->ue, sizeof(set->ue), "%s", src->host);
    snprintf(set->impu, sizeof(set->impu), "%s", impu);
    set->port_uc = reg->ue.port_c;
    set->port_us = reg->ue.port_s;
    uint16_t pc = (uint16_t)c->sa_port_c, ps = (uint16_t)c->sa_port_s;
    unsigned life = (unsigned)c->sa_temp_lifetime;
    const ims_sa_mech *m = &reg->ue;
    fill_sa(&set->sa[0], src->host, m->port_c, ip->local, ps, spi_ps, PCSCF_XFRM_IN, m, &keys, life);
    fill_sa(&set->sa[1], ip->local, ps, src->host, m->port_c, m->spi_c, PCSCF_XFRM_OUT, m, &keys, life);
    fill_sa(&set->sa[2], ip->local, pc, src->host, m->port_s, m->spi_s, PCSCF_XFRM_OUT, m, &keys, life);
    fill_sa(&set->sa[3], src->host, m->port_s, ip->local, pc, spi_pc, PCSCF_XFRM_IN, m, &keys, life);
    ims_secagree_keys_wipe(&keys);
    char err[256];
    for (int i = 0; i < 4; i++) {
        if (pcscf_xfrm_add(ip->xfrm, &set->sa[i], err, sizeof(err)) == 0)
            continue;
        IMS_ERROR(SUBSYS, "SA set for %s at %s: %s", impu, src->host, err);
        for (int j = 0; j < i; j++)
            pcscf_xfrm_del(ip->xfrm, &set->sa[j], err, sizeof(err));
        explicit_bzero(set, sizeof(*set));
        free(set);
        return 500;
    }
    set->expires = ims_monotonic_s() + life;
    ims_sa_mech server = reg->ue;
    server.spi_c = spi_pc;
    server.spi_s = spi_ps;
    server.port_c = pc;
    server.port_s = ps;
    server.q = -1;
    set->server.n = 1;
    set->server.mech[0] = server;
    set->next = ip->sets;
    ip->sets = set;
    reg->created = set->id;
    ims_metric_add(ip->m_installed, 4);
    metrics_update(ip);

    char value[400];
    if (ims_secagree_format(&server, value, sizeof(value)) < 0 ||
        ims_sip_add_header(msg, sip, "Security-Server", value))
        return 500;
    IMS_INFO(SUBSYS, "temporary SA set for %s at %s: %s/%s, UE spi-c %u spi-s %u port-c %u port-s %u, ours "
             "spi-c %u spi-s %u port-c %u port-s %u, %u s", impu, src->host, ims_sa_alg_name(m->alg),
             ims_sa_ealg_name(m->ealg), m->spi_c, m->spi_s, m->port_c, m->port_s, spi_pc, spi_ps, pc, ps, life);
    return 0;
}

size_t pcscf_ipsec_on_200(pcscf_context *ctx, const pcscf_ipsec_reg *reg, const char *impu, long expires,
                          pcscf_addr *replaced, size_t max)
{
    pcscf_ipsec *ip = ctx->ipsec;
    pcscf_sa_set *set = set_by_id(ip, reg->came_over);
    if (!set)
        return 0;
    /* TS 33.203 §7.4: the UE uses the new set, so its older ones go (a moment later: a response
     * still in flight over them leaves protected); their registrations are now this set's */
    size_t n = 0;
    for (pcscf_sa_set *s = ip->sets; s; s = s->next) {
        if (s == set || s->delete_at || strcmp(s->ue, set->ue) || strcmp(s->impu, set->impu))
            continue;
        s->delete_at = ims_monotonic_s() + DELETE_DELAY_S;
        IMS_INFO(SUBSYS, "%s: SA set spi-pc %u spi-ps %u (port-uc %u) replaced by spi-pc %u spi-ps %u (port-uc %u)",
                 impu, s->spi_pc, s->spi_ps, s->port_uc, set->spi_pc, set->spi_ps, set->port_uc);
        if (n < max) {
            snprintf(replaced[n].host, sizeof(replaced[n].host), "%s", s->ue);
            replaced[n].port = s->port_uc;
            snprintf(replaced[n].transport, sizeof(replaced[n].transport), "%s", PCSCF_FLOW_SA);
            n++;
        }
    }
    if (expires <= 0)
        return n;   /* de-registration: the binding's removal deletes the set (pcscf_ipsec_flow_gone) */
    unsigned life = (unsigned)(expires + ctx->cfg.pcscf.sa_slack);
    char err[256];
    for (int i = 0; i < 4; i++)
        if (pcscf_xfrm_set_lifetime(ip->xfrm, &set->sa[i], life, err, sizeof(err)))
            IMS_WARN(SUBSYS, "SA spi %u of %s: lifetime: %s", set->sa[i].spi, impu, err);
    bool first = !set->active;
    set->active = true;
    plain_block(ctx, set->ue, true, "registered over SAs");
    set->expires = ims_monotonic_s() + life;
    if (first)
        IMS_INFO(SUBSYS, "%s registered over SA set spi-pc %u spi-ps %u (port-uc %u, port-us %u), %u s", impu,
                 set->spi_pc, set->spi_ps, set->port_uc, set->port_us, life);
    return n;
}

void pcscf_ipsec_on_failure(pcscf_context *ctx, const pcscf_ipsec_reg *reg, const char *impu,
                            const pcscf_addr *src)
{
    pcscf_ipsec *ip = ctx->ipsec;
    pcscf_sa_set *set = set_by_id(ip, reg->came_over);
    if (set && !set->active)
        set->delete_at = ims_monotonic_s() + DELETE_DELAY_S;   /* the answer still leaves over it */
    set = set_by_id(ip, reg->created);
    if (set && !set->active)
        set->delete_at = ims_monotonic_s() + DELETE_DELAY_S;
    if (!ip || reg->came_over)
        return;
    /* A REGISTER in clear that failed answered our earlier challenge without the SAs of its 401:
     * a MAC failure at the UE (TS 24.229 §5.1.1.5.3: empty response, no AUTS, no SAs set up) or
     * a UE that gave up on them. Those temporary sets will never be used: they go now, not
     * sa_temp_lifetime later. */
    for (pcscf_sa_set *s = ip->sets; s; s = s->next) {
        if (s->active || s->delete_at || strcmp(s->ue, src->host) || strcmp(s->impu, impu))
            continue;
        IMS_INFO(SUBSYS, "%s at %s: REGISTER in clear failed, temporary SA set spi-pc %u spi-ps %u "
                 "(port-uc %u) of its earlier challenge goes", impu, src->host, s->spi_pc, s->spi_ps, s->port_uc);
        s->delete_at = ims_monotonic_s() + DELETE_DELAY_S;
    }
}

void pcscf_ipsec_flow_gone(pcscf_context *ctx, const pcscf_addr *source)
{
    if (strcmp(source->transport, PCSCF_FLOW_SA))
        return;
    pcscf_sa_set *set = set_by_flow(ctx->ipsec, source->host, source->port);
    if (set)
        set->delete_at = ims_monotonic_s() + DELETE_DELAY_S;
}

int pcscf_ipsec_next_hop(pcscf_context *ctx, const pcscf_addr *flow, su_home_t *home, url_t **hop,
                         const char **ident)
{
    pcscf_sa_set *set = set_by_flow(ctx->ipsec, flow->host, flow->port);
    if (!set)
        return -1;
    char s[160];
    bool v6 = strchr(set->ue, ':') != NULL;
    snprintf(s, sizeof(s), "sip:%s%s%s:%u;transport=udp", v6 ? "[" : "", set->ue, v6 ? "]" : "", set->port_us);
    *hop = url_make(home, s);
    *ident = PCSCF_IDENT_PORT_C;
    return *hop ? 0 : -1;
}

void pcscf_ipsec_sweep(pcscf_context *ctx, int64_t now)
{
    pcscf_ipsec *ip = ctx->ipsec;
    for (pcscf_sa_set *s = ip ? ip->sets : NULL, *n; s; s = n) {
        n = s->next;
        if (s->delete_at && s->delete_at <= now)
            set_delete_now(ctx, s, "no longer used");
        else if (!s->delete_at && s->expires <= now)
            set_delete_now(ctx, s, s->active ? "registration expired" : "temporary set never used");
    }
}
