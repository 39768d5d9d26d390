/*
 * scscf_regrecord: registration <-> state-store record. See scscf_regrecord.h.
 *
 * References: TS 29.228 Annex E (User-Data, common/ims_userdata*), RFC 3261 §10.3 (bindings),
 * RFC 3327 (Path), RFC 3680 / RFC 6665 (reg event subscriptions and their dialogs).
 */
#include "scscf_regrecord.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "ims_staterec.h"

#include "scscf_util.h"

#define MAX_ID 255          /* identities, tags, Call-IDs */
#define MAX_URI 1024        /* Contact, target, From/To URIs, params */
#define MAX_HDR 4096        /* Path, route set */
#define MAX_PROFILE (256 * 1024)

/* ---------- encode ---------- */

char *scscf_regrecord_key(const scscf_reg *reg)
{
    if (!reg->n_impus)
        return NULL;
    char k[512];
    scscf_identity_key(reg->impus[0].uri, k, sizeof(k));
    if (!k[0])
        return NULL;
    size_t n = strlen(k) + 5;
    char *key = malloc(n);
    if (key)
        snprintf(key, n, "reg:%s", k);
    return key;
}

char *scscf_regrecord_encode(const scscf_reg *reg, int64_t mono_now, int64_t wall_now, int64_t *ttl_s)
{
    char err[128];
    char *profile = ims_userdata_write(&reg->profile, err, sizeof(err));
    json_object *o = json_object_new_object();
    json_object *cs = json_object_new_array();
    json_object *ss = json_object_new_array();
    char *out = NULL;
    if (!profile || !o || !cs || !ss || !reg->n_impus)
        goto out;
    ims_staterec_add_int(o, "v", SCSCF_REGRECORD_VERSION);
    ims_staterec_add_str(o, "impi", reg->impi);
    ims_staterec_add_str(o, "impu", reg->impus[0].uri);
    ims_staterec_add_int(o, "id", reg->id);
    ims_staterec_add_int(o, "ncid", reg->next_contact_id);
    ims_staterec_add_int(o, "scheme", reg->auth_scheme);
    ims_staterec_add_str(o, "profile", profile);
    int64_t last = mono_now;
    for (const scscf_contact *c = reg->contacts; c; c = c->next) {
        if (c->terminated)
            continue;
        json_object *j = json_object_new_object();
        ims_staterec_add_str(j, "uri", c->uri);
        ims_staterec_add_str(j, "params", c->params);
        ims_staterec_add_str(j, "path", c->path);
        ims_staterec_add_str(j, "callid", c->call_id);
        ims_staterec_add_int(j, "cseq", c->cseq);
        ims_staterec_add_str(j, "recv", c->received);
        ims_staterec_add_int(j, "exp", wall_now + (c->expires_at - mono_now));
        ims_staterec_add_int(j, "id", c->id);
        ims_staterec_add_int(j, "ev", c->event);
        json_object_array_add(cs, j);
        if (c->expires_at > last)
            last = c->expires_at;
    }
    for (const scscf_regsub *s = reg->subs; s; s = s->next) {
        json_object *j = json_object_new_object();
        ims_staterec_add_str(j, "aor", s->aor);
        ims_staterec_add_str(j, "callid", s->call_id);
        ims_staterec_add_str(j, "ltag", s->local_tag);
        ims_staterec_add_str(j, "rtag", s->remote_tag);
        ims_staterec_add_str(j, "luri", s->local_uri);
        ims_staterec_add_str(j, "ruri", s->remote_uri);
        ims_staterec_add_str(j, "target", s->target);
        ims_staterec_add_str(j, "routes", s->routes);
        ims_staterec_add_int(j, "lcseq", s->local_cseq);
        ims_staterec_add_int(j, "rcseq", s->remote_cseq);
        ims_staterec_add_int(j, "ver", s->version);
        ims_staterec_add_int(j, "exp", wall_now + (s->expires_at - mono_now));
        json_object_array_add(ss, j);
    }
    json_object_object_add(o, "contacts", cs);
    json_object_object_add(o, "subs", ss);
    cs = ss = NULL;
    out = ims_staterec_dump(o);
    *ttl_s = last - mono_now + SCSCF_REGRECORD_GRACE_S;
out:
    json_object_put(cs);
    json_object_put(ss);
    json_object_put(o);
    free(profile);
    return out;
}

/* ---------- decode ---------- */

static int get_str(json_object *o, const char *name, size_t max, bool required, char **out, char *err, size_t errlen)
{
    return ims_staterec_str(o, name, max, required, out, err, errlen);
}

static int get_int(json_object *o, const char *name, int64_t min, int64_t max, int64_t *out, char *err, size_t errlen)
{
    return ims_staterec_int(o, name, min, max, out, err, errlen);
}

static bool is_sip_uri(const char *s)
{
    return ims_staterec_is_sip_uri(s, MAX_URI);
}

static bool same_identity(const char *a, const char *b)
{
    char ka[512], kb[512];
    scscf_identity_key(a, ka, sizeof(ka));
    scscf_identity_key(b, kb, sizeof(kb));
    return ka[0] && strcmp(ka, kb) == 0;
}

static bool profile_has(const ims_subscription *sub, const char *impu)
{
    for (size_t p = 0; p < sub->n_profiles; p++)
        for (size_t i = 0; i < sub->profiles[p].n_ids; i++)
            if (sub->profiles[p].ids[i].identity && same_identity(sub->profiles[p].ids[i].identity, impu))
                return true;
    return false;
}

static int64_t clamp_exp(int64_t exp, int64_t wall_now, long max)
{
    return exp > wall_now + max ? wall_now + max : exp;
}

static int decode_contact(json_object *j, const scscf_regrecord_limits *lim, int64_t wall_now, scscf_rec_contact *c,
                          char *err, size_t errlen)
{
    int64_t v;
    if (!json_object_is_type(j, json_type_object)) {
        snprintf(err, errlen, "contact is not an object");
        return -1;
    }
    if (get_str(j, "uri", MAX_URI, true, &c->uri, err, errlen) || get_str(j, "params", MAX_URI, false, &c->params, err, errlen) ||
        get_str(j, "path", MAX_HDR, false, &c->path, err, errlen) ||
        get_str(j, "callid", MAX_ID, false, &c->call_id, err, errlen) ||
        get_str(j, "recv", 300, false, &c->received, err, errlen))
        return -1;
    if (!is_sip_uri(c->uri)) {
        snprintf(err, errlen, "contact URI is not a SIP URI");
        return -1;
    }
    if (get_int(j, "cseq", 0, UINT32_MAX, &v, err, errlen))
        return -1;
    c->cseq = (uint32_t)v;
    if (get_int(j, "id", 0, UINT32_MAX, &v, err, errlen))
        return -1;
    c->id = (uint32_t)v;
    if (get_int(j, "ev", 0, SCSCF_CEV_REJECTED, &v, err, errlen))
        return -1;
    c->event = (uint8_t)v;
    if (get_int(j, "exp", 0, INT64_MAX / 4, &v, err, errlen))
        return -1;
    c->expires = clamp_exp(v, wall_now, lim->max_expires);
    return 0;
}

static int decode_sub(json_object *j, const scscf_regrecord *r, const scscf_regrecord_limits *lim, int64_t wall_now,
                      scscf_regsub *s, char *err, size_t errlen)
{
    int64_t v;
    if (!json_object_is_type(j, json_type_object)) {
        snprintf(err, errlen, "subscription is not an object");
        return -1;
    }
    if (get_str(j, "aor", MAX_ID, true, &s->aor, err, errlen) || get_str(j, "callid", MAX_ID, true, &s->call_id, err, errlen) ||
        get_str(j, "ltag", MAX_ID, true, &s->local_tag, err, errlen) ||
        get_str(j, "rtag", MAX_ID, true, &s->remote_tag, err, errlen) ||
        get_str(j, "luri", MAX_URI, true, &s->local_uri, err, errlen) ||
        get_str(j, "ruri", MAX_URI, true, &s->remote_uri, err, errlen) ||
        get_str(j, "target", MAX_URI, true, &s->target, err, errlen) ||
        get_str(j, "routes", MAX_HDR, false, &s->routes, err, errlen))
        return -1;
    if (!is_sip_uri(s->target)) {
        snprintf(err, errlen, "subscription target is not a SIP URI");
        return -1;
    }
    /* a subscription watches an identity of this registration only */
    bool in_irs = same_identity(s->aor, r->impu) || profile_has(&r->profile, s->aor);
    if (!in_irs) {
        snprintf(err, errlen, "subscription to %s, not an identity of this registration", s->aor);
        return -1;
    }
    if (get_int(j, "lcseq", 0, UINT32_MAX, &v, err, errlen))
        return -1;
    s->local_cseq = (uint32_t)v;
    if (get_int(j, "rcseq", 0, UINT32_MAX, &v, err, errlen))
        return -1;
    s->remote_cseq = (uint32_t)v;
    if (get_int(j, "ver", 0, UINT32_MAX, &v, err, errlen))
        return -1;
    s->version = (uint32_t)v;
    if (get_int(j, "exp", 0, INT64_MAX / 4, &v, err, errlen))
        return -1;
    s->expires_at = clamp_exp(v, wall_now, lim->max_sub_expires);
    return 0;
}

static int decode(const char *key, json_object *o, const scscf_regrecord_limits *lim, int64_t wall_now,
                  scscf_regrecord *r, char *err, size_t errlen)
{
    int64_t v;
    json_object *a;
    char *profile = NULL;
    if (!json_object_is_type(o, json_type_object)) {
        snprintf(err, errlen, "not a JSON object");
        return -1;
    }
    if (get_int(o, "v", 0, INT32_MAX, &v, err, errlen))
        return -1;
    if (v != SCSCF_REGRECORD_VERSION) {
        snprintf(err, errlen, "record version %lld, this S-CSCF reads %d", (long long)v, SCSCF_REGRECORD_VERSION);
        return -1;
    }
    if (get_str(o, "impi", MAX_ID, true, &r->impi, err, errlen) || get_str(o, "impu", MAX_ID, true, &r->impu, err, errlen))
        return -1;
    /* the key names the record's own registered identity: a record cannot speak for another user */
    char k[512];
    scscf_identity_key(r->impu, k, sizeof(k));
    if (strncmp(key, "reg:", 4) != 0 || !k[0] || strcmp(key + 4, k) != 0) {
        snprintf(err, errlen, "key does not name the record's identity %s", r->impu);
        return -1;
    }
    if (get_int(o, "id", 0, UINT32_MAX, &v, err, errlen))
        return -1;
    r->id = (uint32_t)v;
    if (get_int(o, "ncid", 0, UINT32_MAX, &v, err, errlen))
        return -1;
    r->next_contact_id = (uint32_t)v;
    if (get_int(o, "scheme", 0, 255, &v, err, errlen))
        return -1;
    r->auth_scheme = (uint8_t)v;
    /* XML: line breaks allowed (it never goes into a header) */
    if (ims_staterec_text(o, "profile", MAX_PROFILE, true, true, &profile, err, errlen))
        return -1;
    char perr[200];
    int prc = ims_userdata_parse(profile, strlen(profile), &r->profile, perr, sizeof(perr));
    free(profile);
    if (prc) {
        snprintf(err, errlen, "profile: %s", perr);
        return -1;
    }
    if (!profile_has(&r->profile, r->impu)) {
        snprintf(err, errlen, "%s is not in its own profile", r->impu);
        return -1;
    }
    if (!json_object_object_get_ex(o, "contacts", &a) || !json_object_is_type(a, json_type_array) ||
        json_object_array_length(a) == 0 || json_object_array_length(a) > IMS_REG_MAX_CONTACTS) {
        snprintf(err, errlen, "\"contacts\": not an array of 1..%d", IMS_REG_MAX_CONTACTS);
        return -1;
    }
    for (size_t i = 0; i < json_object_array_length(a); i++) {
        if (decode_contact(json_object_array_get_idx(a, i), lim, wall_now, &r->contacts[i], err, errlen))
            return -1;
        r->n_contacts++;
    }
    if (json_object_object_get_ex(o, "subs", &a)) {
        if (!json_object_is_type(a, json_type_array) || json_object_array_length(a) > SCSCF_REGRECORD_MAX_SUBS) {
            snprintf(err, errlen, "\"subs\": not an array of at most %d", SCSCF_REGRECORD_MAX_SUBS);
            return -1;
        }
        for (size_t i = 0; i < json_object_array_length(a); i++) {
            if (decode_sub(json_object_array_get_idx(a, i), r, lim, wall_now, &r->subs[i], err, errlen))
                return -1;
            r->n_subs++;
        }
    }
    return 0;
}

int scscf_regrecord_decode(const char *key, const char *json, size_t len, const scscf_regrecord_limits *lim,
                           int64_t wall_now, scscf_regrecord *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    json_object *o = key ? ims_staterec_parse(json, len, MAX_PROFILE * 2, err, errlen) : NULL;
    int rc = -1;
    if (!key)
        snprintf(err, errlen, "no key");
    else if (o)
        rc = decode(key, o, lim, wall_now, out, err, errlen);
    json_object_put(o);
    if (rc) {
        /* count what was decoded before the failure, so everything is freed */
        if (out->n_contacts < IMS_REG_MAX_CONTACTS)
            out->n_contacts++;
        if (out->n_subs < SCSCF_REGRECORD_MAX_SUBS)
            out->n_subs++;
        scscf_regrecord_free(out);
    }
    return rc;
}

void scscf_regrecord_free(scscf_regrecord *r)
{
    free(r->impi);
    free(r->impu);
    ims_subscription_free(&r->profile);
    for (size_t i = 0; i < r->n_contacts; i++) {
        scscf_rec_contact *c = &r->contacts[i];
        free(c->uri);
        free(c->params);
        free(c->path);
        free(c->call_id);
        free(c->received);
    }
    for (size_t i = 0; i < r->n_subs; i++)
        scscf_regsub_strings_free(&r->subs[i]);
    memset(r, 0, sizeof(*r));
}
