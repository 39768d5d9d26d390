/*
 * pcscf_bindrecord: bindings and reg-event subscriptions <-> sealed state-store records. See
 * pcscf_bindrecord.h.
 *
 * References: TS 24.229 §5.2.2.1 (what the P-CSCF stores from the 200 to REGISTER), RFC 3608
 * (Service-Route), RFC 7315 §4.1 (P-Associated-URI), RFC 6665 (the subscription's dialog),
 * RFC 2104 (HMAC).
 */
#include "pcscf_bindrecord.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ims_aka.h"
#include "ims_staterec.h"
#include "pcscf_util.h"

#define MAX_ID 255          /* identities, tags, Call-IDs */
#define MAX_URI 1024        /* contacts, routes, targets */
#define MAX_RECORD (64 * 1024)
#define MAC_HEX (2 * 16)

/* ---------- seal: "<MAC> <JSON>" ---------- */

static void mac_of(const uint8_t key[PCSCF_REC_MAC_KEY], const char *rkey, const char *json, size_t jlen,
                   char out[MAC_HEX + 1])
{
    size_t kl = strlen(rkey);
    char *buf = malloc(kl + 1 + jlen);
    uint8_t mac[16] = { 0 };
    if (buf) {
        memcpy(buf, rkey, kl);
        buf[kl] = '\n';
        memcpy(buf + kl + 1, json, jlen);
        ims_hmac_md5(key, PCSCF_REC_MAC_KEY, buf, kl + 1 + jlen, mac);
        free(buf);
    }
    ims_hex_encode(mac, sizeof(mac), out);
}

static char *seal(const uint8_t key[PCSCF_REC_MAC_KEY], const char *rkey, json_object *o)
{
    char *json = ims_staterec_dump(o);
    if (!json)
        return NULL;
    size_t n = strlen(json);
    char *out = malloc(MAC_HEX + 1 + n + 1);
    if (out) {
        mac_of(key, rkey, json, n, out);
        out[MAC_HEX] = ' ';
        memcpy(out + MAC_HEX + 1, json, n + 1);
    }
    free(json);
    return out;
}

/* The JSON of a sealed value when its MAC is ours for rkey. NULL + err. */
static json_object *unseal(const uint8_t key[PCSCF_REC_MAC_KEY], const char *rkey, const char *value, size_t len,
                           char *err, size_t errlen)
{
    if (!value || len < MAC_HEX + 2 || value[MAC_HEX] != ' ') {
        snprintf(err, errlen, "not a sealed record");
        return NULL;
    }
    char want[MAC_HEX + 1];
    mac_of(key, rkey, value + MAC_HEX + 1, len - MAC_HEX - 1, want);
    unsigned diff = 0;   /* no early exit */
    for (size_t i = 0; i < MAC_HEX; i++)
        diff |= (unsigned)(value[i] ^ want[i]);
    if (diff) {
        snprintf(err, errlen, "MAC does not match (not written by this P-CSCF under this key)");
        return NULL;
    }
    return ims_staterec_parse(value + MAC_HEX + 1, len - MAC_HEX - 1, MAX_RECORD, err, errlen);
}

/* ---------- keys ---------- */

bool pcscf_bindrecord_storable(const pcscf_addr *flow)
{
    return flow && strcasecmp(flow->transport, "udp") == 0;
}

char *pcscf_bindrecord_key(const char *impu, const pcscf_addr *flow)
{
    char id[600], out[800];
    if (!impu || !flow || !pcscf_identity_key(impu, id, sizeof(id)))
        return NULL;
    bool v6 = strchr(flow->host, ':') != NULL;
    int n = snprintf(out, sizeof(out), "bind:%s:%s%s%s:%u:%s", flow->transport, v6 ? "[" : "", flow->host,
                     v6 ? "]" : "", flow->port, id);
    return n > 0 && (size_t)n < sizeof(out) ? strdup(out) : NULL;
}

char *pcscf_subrecord_key(const char *impu)
{
    char id[600], out[700];
    if (!impu || !pcscf_identity_key(impu, id, sizeof(id)))
        return NULL;
    snprintf(out, sizeof(out), "sub:%s", id);
    return strdup(out);
}

/* ---------- encode ---------- */

static json_object *str_array(char *const *v, size_t n)
{
    json_object *a = json_object_new_array();
    for (size_t i = 0; a && i < n; i++)
        json_object_array_add(a, json_object_new_string(v[i] ? v[i] : ""));
    return a;
}

static int64_t clamp_exp(int64_t exp, int64_t wall_now)
{
    return exp > wall_now + PCSCF_BINDRECORD_MAX_EXPIRES ? wall_now + PCSCF_BINDRECORD_MAX_EXPIRES : exp;
}

char *pcscf_bindrecord_encode(const pcscf_binding *b, const uint8_t mac_key[PCSCF_REC_MAC_KEY], int64_t mono_now,
                              int64_t wall_now, int64_t *ttl_s)
{
    if (!pcscf_bindrecord_storable(&b->source))
        return NULL;
    char *rkey = pcscf_bindrecord_key(b->impu, &b->source);
    json_object *o = json_object_new_object();
    json_object *cs = json_object_new_array();
    char *out = NULL;
    if (!rkey || !o || !cs)
        goto out;
    ims_staterec_add_int(o, "v", PCSCF_BINDRECORD_VERSION);
    ims_staterec_add_str(o, "impu", b->impu);
    ims_staterec_add_str(o, "host", b->source.host);
    ims_staterec_add_int(o, "port", b->source.port);
    ims_staterec_add_str(o, "tp", b->source.transport);
    json_object_object_add(o, "impus", str_array(b->impus, b->n_impus));
    json_object_object_add(o, "routes", str_array(b->service_route, b->n_service_route));
    int64_t last = mono_now;
    for (size_t i = 0; i < b->n_contacts && i < PCSCF_REC_MAX_CONTACTS; i++) {
        json_object *j = json_object_new_object();
        ims_staterec_add_str(j, "uri", b->contacts[i].uri);
        ims_staterec_add_int(j, "exp", wall_now + (b->contacts[i].expires - mono_now));
        json_object_array_add(cs, j);
        if (b->contacts[i].expires > last)
            last = b->contacts[i].expires;
    }
    json_object_object_add(o, "contacts", cs);
    cs = NULL;
    out = seal(mac_key, rkey, o);
    *ttl_s = last - mono_now + PCSCF_BINDRECORD_GRACE_S;
out:
    json_object_put(cs);
    json_object_put(o);
    free(rkey);
    return out;
}

char *pcscf_subrecord_encode(const pcscf_subrecord *r, const uint8_t mac_key[PCSCF_REC_MAC_KEY], int64_t wall_now,
                             int64_t *ttl_s)
{
    char *rkey = pcscf_subrecord_key(r->impu);
    json_object *o = json_object_new_object();
    char *out = NULL;
    if (rkey && o) {
        ims_staterec_add_int(o, "v", PCSCF_BINDRECORD_VERSION);
        ims_staterec_add_str(o, "impu", r->impu);
        ims_staterec_add_str(o, "callid", r->call_id);
        ims_staterec_add_str(o, "ftag", r->from_tag);
        ims_staterec_add_str(o, "ttag", r->to_tag);
        ims_staterec_add_str(o, "target", r->target);
        json_object_object_add(o, "routes", str_array(r->routes, r->n_routes));
        ims_staterec_add_int(o, "cseq", r->cseq);
        ims_staterec_add_int(o, "exp", r->expires);
        out = seal(mac_key, rkey, o);
        *ttl_s = (r->expires > wall_now ? r->expires - wall_now : 0) + PCSCF_BINDRECORD_GRACE_S;
    }
    json_object_put(o);
    free(rkey);
    return out;
}

/* ---------- decode ---------- */

/* An identity (IMPU, P-Associated-URI): a sip:, sips: or tel: URI on one line. */
static bool is_identity(const char *s)
{
    return strncasecmp(s, "tel:", 4) == 0 || ims_staterec_is_sip_uri(s, MAX_ID);
}

/* String array `name` (at most max entries), each a URI that ok accepts. */
static int get_strv(json_object *o, const char *name, size_t max, bool (*ok)(const char *), char **v, size_t *n,
                    char *err, size_t errlen)
{
    if (ims_staterec_strv(o, name, max, MAX_URI, v, n, err, errlen))
        return -1;
    for (size_t i = 0; i < *n; i++) {
        if (!ok(v[i])) {
            snprintf(err, errlen, "\"%s\"[%zu] is not a URI of its kind", name, i);
            return -1;
        }
    }
    return 0;
}

static bool is_route(const char *s)
{
    return ims_staterec_is_sip_uri(s, MAX_URI);
}

static bool numeric_host(const char *h)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, h, buf) == 1 || inet_pton(AF_INET6, h, buf) == 1;
}

static int check_version(json_object *o, char *err, size_t errlen)
{
    int64_t v;
    if (ims_staterec_int(o, "v", 0, INT32_MAX, &v, err, errlen))
        return -1;
    if (v != PCSCF_BINDRECORD_VERSION) {
        snprintf(err, errlen, "record version %lld, this P-CSCF reads %d", (long long)v, PCSCF_BINDRECORD_VERSION);
        return -1;
    }
    return 0;
}

static int decode_binding(const char *key, json_object *o, int64_t wall_now, pcscf_bindrecord *r, char *err,
                          size_t errlen)
{
    int64_t v;
    char *host = NULL, *tp = NULL;
    int rc = -1;
    if (check_version(o, err, errlen) || ims_staterec_str(o, "impu", MAX_ID, true, &r->impu, err, errlen) ||
        ims_staterec_str(o, "host", sizeof(r->source.host) - 1, true, &host, err, errlen) ||
        ims_staterec_str(o, "tp", sizeof(r->source.transport) - 1, true, &tp, err, errlen) ||
        ims_staterec_int(o, "port", 1, 65535, &v, err, errlen))
        goto out;
    if (!is_identity(r->impu)) {
        snprintf(err, errlen, "\"impu\" is not a SIP or tel URI");
        goto out;
    }
    if (!numeric_host(host)) {
        snprintf(err, errlen, "\"host\" is not a numeric address");
        goto out;
    }
    snprintf(r->source.host, sizeof(r->source.host), "%s", host);
    snprintf(r->source.transport, sizeof(r->source.transport), "%s", tp);
    r->source.port = (unsigned)v;
    if (!pcscf_bindrecord_storable(&r->source)) {
        snprintf(err, errlen, "flow over %s: only UDP bindings survive a restart", tp);
        goto out;
    }
    /* the key names the record's own flow and identity: a record cannot speak for another */
    char *own = pcscf_bindrecord_key(r->impu, &r->source);
    bool same = own && strcmp(own, key) == 0;
    free(own);
    if (!same) {
        snprintf(err, errlen, "key does not name the record's flow and identity %s", r->impu);
        goto out;
    }
    if (get_strv(o, "impus", PCSCF_REC_MAX_IMPUS, is_identity, r->impus, &r->n_impus, err, errlen) ||
        get_strv(o, "routes", PCSCF_REC_MAX_ROUTES, is_route, r->routes, &r->n_routes, err, errlen))
        goto out;
    json_object *a;
    if (!json_object_object_get_ex(o, "contacts", &a) || !json_object_is_type(a, json_type_array) ||
        json_object_array_length(a) == 0 || json_object_array_length(a) > PCSCF_REC_MAX_CONTACTS) {
        snprintf(err, errlen, "\"contacts\": not an array of 1..%d", PCSCF_REC_MAX_CONTACTS);
        goto out;
    }
    for (size_t i = 0; i < json_object_array_length(a); i++) {
        json_object *c = json_object_array_get_idx(a, i);
        pcscf_contact *rc_ = &r->contacts[i];
        if (!json_object_is_type(c, json_type_object) ||
            ims_staterec_str(c, "uri", MAX_URI, true, &rc_->uri, err, errlen))
            goto out;
        r->n_contacts++;
        if (!ims_staterec_is_sip_uri(rc_->uri, MAX_URI)) {
            snprintf(err, errlen, "contact URI is not a SIP URI");
            goto out;
        }
        if (ims_staterec_int(c, "exp", 0, INT64_MAX / 4, &v, err, errlen))
            goto out;
        rc_->expires = clamp_exp(v, wall_now);
    }
    rc = 0;
out:
    free(host);
    free(tp);
    return rc;
}

/* The JSON object of a sealed record under key, whose key starts with index ("bind:"). NULL + err. */
static json_object *open_record(const char *index, const char *key, const char *value, size_t len,
                                const uint8_t mac_key[PCSCF_REC_MAC_KEY], char *err, size_t errlen)
{
    if (!key || strncmp(key, index, strlen(index)) != 0) {
        snprintf(err, errlen, "not a %s key", index);
        return NULL;
    }
    json_object *o = unseal(mac_key, key, value, len, err, errlen);
    if (o && !json_object_is_type(o, json_type_object)) {
        snprintf(err, errlen, "not a JSON object");
        json_object_put(o);
        o = NULL;
    }
    return o;
}

int pcscf_bindrecord_decode(const char *key, const char *value, size_t len, const uint8_t mac_key[PCSCF_REC_MAC_KEY],
                            int64_t wall_now, pcscf_bindrecord *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    json_object *o = open_record("bind:", key, value, len, mac_key, err, errlen);
    int rc = o ? decode_binding(key, o, wall_now, out, err, errlen) : -1;
    json_object_put(o);
    if (rc)
        pcscf_bindrecord_free(out);
    return rc;
}

void pcscf_bindrecord_free(pcscf_bindrecord *r)
{
    free(r->impu);
    for (size_t i = 0; i < r->n_impus; i++)
        free(r->impus[i]);
    for (size_t i = 0; i < r->n_routes; i++)
        free(r->routes[i]);
    for (size_t i = 0; i < r->n_contacts; i++)
        free(r->contacts[i].uri);
    memset(r, 0, sizeof(*r));
}

static int decode_sub(const char *key, json_object *o, int64_t wall_now, pcscf_subrecord *r, char *err, size_t errlen)
{
    int64_t v;
    if (check_version(o, err, errlen) || ims_staterec_str(o, "impu", MAX_ID, true, &r->impu, err, errlen) ||
        ims_staterec_str(o, "callid", MAX_ID, true, &r->call_id, err, errlen) ||
        ims_staterec_str(o, "ftag", MAX_ID, true, &r->from_tag, err, errlen) ||
        ims_staterec_str(o, "ttag", MAX_ID, true, &r->to_tag, err, errlen) ||
        ims_staterec_str(o, "target", MAX_URI, true, &r->target, err, errlen))
        return -1;
    if (!is_identity(r->impu) || !ims_staterec_is_sip_uri(r->target, MAX_URI)) {
        snprintf(err, errlen, "identity or target is not a URI of its kind");
        return -1;
    }
    char *own = pcscf_subrecord_key(r->impu);
    bool same = own && strcmp(own, key) == 0;
    free(own);
    if (!same) {
        snprintf(err, errlen, "key does not name the record's identity %s", r->impu);
        return -1;
    }
    if (get_strv(o, "routes", PCSCF_REC_MAX_ROUTES, is_route, r->routes, &r->n_routes, err, errlen) ||
        ims_staterec_int(o, "cseq", 0, UINT32_MAX - 1, &v, err, errlen))
        return -1;
    r->cseq = (uint32_t)v;
    if (ims_staterec_int(o, "exp", 0, INT64_MAX / 4, &v, err, errlen))
        return -1;
    r->expires = clamp_exp(v, wall_now);
    return 0;
}

int pcscf_subrecord_decode(const char *key, const char *value, size_t len, const uint8_t mac_key[PCSCF_REC_MAC_KEY],
                           int64_t wall_now, pcscf_subrecord *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    json_object *o = open_record("sub:", key, value, len, mac_key, err, errlen);
    int rc = o ? decode_sub(key, o, wall_now, out, err, errlen) : -1;
    json_object_put(o);
    if (rc)
        pcscf_subrecord_free(out);
    return rc;
}

void pcscf_subrecord_free(pcscf_subrecord *r)
{
    free(r->impu);
    free(r->call_id);
    free(r->from_tag);
    free(r->to_tag);
    free(r->target);
    for (size_t i = 0; i < r->n_routes; i++)
        free(r->routes[i]);
    memset(r, 0, sizeof(*r));
}
