/*
 * hss_api.c: the HSS provisioning REST API (hss/openapi.yaml) on top of hss_store.
 *
 * Two routes are registered with method NULL and dispatch on method + path themselves, so that
 * every answer (405 included) is our JSON {"error": ...} and counted in
 * hss_api_requests_total{method,status}. Each handler fills `resp` and leaves through one `out:`
 * label, where the request is counted and the locals freed.
 *
 * Validation is hss_subscriber_from_json's job (its messages name the field path); this file
 * only adds the HTTP-level checks (JSON syntax, id in the path vs. the body, limits).
 */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "hss_api.h"
#include "ims_log.h"

#define API_SUBSCRIBERS "/api/v1/subscribers"
#define API_IDENTITIES "/api/v1/identities"
#define LIST_DEFAULT_LIMIT 100
#define LIST_MAX_LIMIT 1000

/* Counts one answered request. The label set is bounded: unknown methods are folded into
 * "other" so a scanner cannot grow the metric registry without limit. */
static void count_request(const char *method, int status)
{
    static const char *const known[] = {"GET", "POST", "PUT", "DELETE", NULL};
    const char *m = "other";
    char name[128];

    for (size_t i = 0; known[i]; i++) {
        if (method && strcmp(method, known[i]) == 0) {
            m = known[i];
            break;
        }
    }
    snprintf(name, sizeof(name), "hss_api_requests_total{method=\"%s\",status=\"%d\"}", m, status);
    ims_metric_inc(ims_metric_counter(name, "Provisioning API requests by method and HTTP status"));
}

/* Puts `obj` (consumed) as the JSON body of `resp` with `status`. */
static void send_json(ims_http_resp *resp, int status, json_object *obj)
{
    const char *text;

    if (!obj) {
        ims_http_error(resp, 500, "out of memory");
        return;
    }
    text = json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    resp->status = status;
    resp->content_type = "application/json";
    resp->body = strdup(text);
    resp->body_len = 0;
    json_object_put(obj);
    if (!resp->body)
        ims_http_error(resp, 500, "out of memory");
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Percent-decodes a path segment into a new string. libmicrohttpd normally hands us an
 * already-decoded path, in which case this is a no-op; decoding here too means a client that
 * double-encodes (or a server built without unescaping) still works. '+' is NOT a space in a
 * path (tel:+15551234 must survive). NULL on a NUL byte (%00), which no identity may contain. */
static char *url_decode(const char *in)
{
    size_t len = strlen(in), o = 0;
    char *out = malloc(len + 1);

    if (!out)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        if (in[i] == '%' && i + 2 < len && hexval((unsigned char)in[i + 1]) >= 0 &&
            hexval((unsigned char)in[i + 2]) >= 0) {
            int c = hexval((unsigned char)in[i + 1]) * 16 + hexval((unsigned char)in[i + 2]);
            if (c == 0) {
                free(out);
                return NULL;
            }
            out[o++] = (char)c;
            i += 2;
        } else {
            out[o++] = in[i];
        }
    }
    out[o] = '\0';
    return out;
}

/* Parses a request body that must be one JSON object. NULL + 400 in resp otherwise, with the
 * tokener's offset so the operator finds the typo in a large document. */
static json_object *parse_body(const ims_http_req *req, ims_http_resp *resp)
{
    json_tokener *tok = json_tokener_new();
    json_object *obj = NULL;
    enum json_tokener_error jerr;
    size_t end;

    if (!tok) {
        ims_http_error(resp, 500, "out of memory");
        return NULL;
    }
    if (req->body_len == 0) {
        ims_http_error(resp, 400, "invalid JSON at offset 0: empty body");
        goto out;
    }
    /* Strict: a trailing comma or similar is an error here, as it is for every other client. */
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    obj = json_tokener_parse_ex(tok, req->body, (int)req->body_len);
    jerr = json_tokener_get_error(tok);
    end = json_tokener_get_parse_end(tok);
    if (jerr == json_tokener_continue) {
        ims_http_error(resp, 400, "invalid JSON at offset %zu: unexpected end of input", req->body_len);
        goto out;
    }
    if (jerr != json_tokener_success) {
        ims_http_error(resp, 400, "invalid JSON at offset %zu: %s", end, json_tokener_error_desc(jerr));
        goto out;
    }
    /* json-c stops after the first complete value: anything but whitespace after it is an error
     * (two concatenated objects would otherwise silently lose the second). */
    for (size_t i = end; i < req->body_len; i++) {
        if (!isspace((unsigned char)req->body[i])) {
            ims_http_error(resp, 400, "invalid JSON at offset %zu: unexpected data after the value", i);
            json_object_put(obj);
            obj = NULL;
            goto out;
        }
    }
    if (!json_object_is_type(obj, json_type_object)) {
        ims_http_error(resp, 400, "request body must be a JSON object");
        json_object_put(obj);
        obj = NULL;
        goto out;
    }
out:
    json_tokener_free(tok);
    return obj;
}

/* Reads subscriber `id` back from the store and sends it (the stored record, not the request:
 * it carries the kept SQN, registration state and S-CSCF). */
static void send_stored(hss_store *st, const char *id, int status, ims_http_resp *resp)
{
    hss_subscriber s;
    int rc = hss_store_get(st, id, &s);

    if (rc == HSS_STORE_NOT_FOUND) {
        ims_http_error(resp, 404, "no subscriber %s", id);
        return;
    }
    if (rc != HSS_STORE_OK) {
        ims_http_error(resp, 500, "database error");
        return;
    }
    send_json(resp, status, hss_subscriber_to_json(&s));
    hss_subscriber_free(&s);
}

/* Maps a failed hss_store_put to an answer. */
static void put_error(int rc, const char *err, ims_http_resp *resp)
{
    if (rc == HSS_STORE_CONFLICT)
        ims_http_error(resp, 409, "%s", err[0] ? err : "conflict");
    else
        ims_http_error(resp, 500, "database error%s%s", err[0] ? ": " : "", err);
}

/* GET /api/v1/subscribers?after=ID&limit=N&reg_state=S. With reg_state, only subscriptions
 * having at least one IMPU in that state; paging works the same ("next" is an id either way). */
static void subscribers_list(hss_api_ctx *ctx, const ims_http_req *req, ims_http_resp *resp)
{
    const char *after = ims_http_query(req, "after");
    const char *lim = ims_http_query(req, "limit");
    const char *rs = ims_http_query(req, "reg_state");
    int state = -1;
    long limit = LIST_DEFAULT_LIMIT;
    char **ids = NULL;
    size_t n = 0;
    json_object *obj, *arr;

    if (lim) {
        char *end;
        errno = 0;
        limit = strtol(lim, &end, 10);
        if (errno || end == lim || *end || limit < 1 || limit > LIST_MAX_LIMIT) {
            ims_http_error(resp, 400, "limit: must be an integer 1..%d", LIST_MAX_LIMIT);
            goto out;
        }
    }
    if (rs) {
        /* the names of the IMPU "reg_state" field */
        const ims_enum_name *r = ims_enum_by_name(hss_reg_state_names, rs);

        if (!r) {
            ims_http_error(resp, 400, "reg_state: must be registered, unregistered or "
                           "not_registered (got \"%.64s\")", rs);
            goto out;
        }
        state = r->value;
    }
    if (after && !after[0])
        after = NULL;
    /* One more than asked tells whether another page exists without a second query. */
    if (hss_store_list_by_state(ctx->store, state, after, (size_t)limit + 1, &ids, &n) !=
        HSS_STORE_OK) {
        ims_http_error(resp, 500, "database error");
        goto out;
    }
    obj = json_object_new_object();
    arr = json_object_new_array();
    for (size_t i = 0; i < n && i < (size_t)limit; i++)
        json_object_array_add(arr, json_object_new_string(ids[i]));
    json_object_object_add(obj, "subscribers", arr);
    json_object_object_add(obj, "count", json_object_new_int64((int64_t)hss_store_count(ctx->store)));
    json_object_object_add(obj, "next",
                           n > (size_t)limit ? json_object_new_string(ids[limit - 1]) : NULL);
    send_json(resp, 200, obj);
out:
    hss_store_free_ids(ids, n);
}

/* POST /api/v1/subscribers */
static void subscribers_create(hss_api_ctx *ctx, const ims_http_req *req, ims_http_resp *resp)
{
    json_object *body = parse_body(req, resp);
    hss_subscriber s = {0};
    char err[512] = "";
    int rc;

    if (!body)
        goto out;
    if (hss_subscriber_from_json(body, &s, err, sizeof(err)) != 0) {
        ims_http_error(resp, 400, "%s", err);
        goto out;
    }
    rc = hss_store_put(ctx->store, &s, 1, err, sizeof(err));
    if (rc != HSS_STORE_OK) {
        put_error(rc, err, resp);
        goto out;
    }
    IMS_INFO("hss.api", "subscriber %s created (%zu IMPI, %zu IMPU)", s.id, s.n_impis, s.n_impus);
    send_stored(ctx->store, s.id, 201, resp);
    if (resp->status == 201)
        snprintf(resp->location, sizeof(resp->location), API_SUBSCRIBERS "/%s", s.id);
out:
    hss_subscriber_free(&s);
    json_object_put(body);
}

/* PUT /api/v1/subscribers/{id}: full replace. The store keeps the volatile state (SQN never
 * goes back, reg state, S-CSCF); a subscription served by an S-CSCF gets its new profile pushed. */
static void subscriber_replace(hss_api_ctx *ctx, const char *id, const ims_http_req *req,
                               ims_http_resp *resp)
{
    json_object *body = parse_body(req, resp);
    json_object *jid;
    hss_subscriber s = {0}, stored = {0};
    char err[512] = "";
    int rc;

    if (!body)
        goto out;
    if (json_object_object_get_ex(body, "id", &jid)) {
        if (!json_object_is_type(jid, json_type_string) || strcmp(json_object_get_string(jid), id) != 0) {
            ims_http_error(resp, 400, "id: does not match the id in the path (%s)", id);
            goto out;
        }
    } else {
        /* The path names the subscriber: the body may omit it. */
        json_object_object_add(body, "id", json_object_new_string(id));
    }
    if (hss_subscriber_from_json(body, &s, err, sizeof(err)) != 0) {
        ims_http_error(resp, 400, "%s", err);
        goto out;
    }
    /* PUT replaces, it does not create (POST does, with its conflict rules). A concurrent DELETE
     * between this check and the put would recreate the record; that is an acceptable outcome of
     * racing a delete with an update. */
    rc = hss_store_get(ctx->store, id, &stored);
    if (rc == HSS_STORE_NOT_FOUND) {
        ims_http_error(resp, 404, "no subscriber %s", id);
        goto out;
    }
    if (rc != HSS_STORE_OK) {
        ims_http_error(resp, 500, "database error");
        goto out;
    }
    hss_subscriber_free(&stored);
    memset(&stored, 0, sizeof(stored));
    rc = hss_store_put(ctx->store, &s, 0, err, sizeof(err));
    if (rc != HSS_STORE_OK) {
        put_error(rc, err, resp);
        goto out;
    }
    IMS_INFO("hss.api", "subscriber %s replaced (%zu IMPI, %zu IMPU)", id, s.n_impis, s.n_impus);

    /* Read back after the commit: the answer shows the kept state, and the S-CSCF assignment
     * decides whether the serving S-CSCF must be told (Cx PPR). */
    rc = hss_store_get(ctx->store, id, &stored);
    if (rc != HSS_STORE_OK) {
        ims_http_error(resp, rc == HSS_STORE_NOT_FOUND ? 404 : 500,
                       rc == HSS_STORE_NOT_FOUND ? "no subscriber %s" : "database error reading %s", id);
        goto out;
    }
    send_json(resp, 200, hss_subscriber_to_json(&stored));
    if (stored.scscf_name && stored.scscf_name[0] && ctx->on_profile_change) {
        IMS_INFO("hss.api", "subscriber %s is served by %s: pushing the new profile", id,
                 stored.scscf_name);
        ctx->on_profile_change(ctx->arg, id);
    }
out:
    hss_subscriber_free(&stored);
    hss_subscriber_free(&s);
    json_object_put(body);
}

/* POST /api/v1/subscribers/{id}/deregister {"reason_code": 0..3, "reason_info": "..."} */
static void subscriber_deregister(hss_api_ctx *ctx, const char *id, const ims_http_req *req,
                                  ims_http_resp *resp)
{
    json_object *body = NULL, *v = NULL;
    int reason = 0;   /* PERMANENT_TERMINATION (TS 29.229 §6.3.17) */
    const char *info = NULL;
    char err[256];
    hss_subscriber sub;
    memset(&sub, 0, sizeof(sub));

    if (strcmp(req->method, "POST") != 0) {
        ims_http_error(resp, 405, "method %s not allowed on %s (POST)", req->method, req->path);
        goto out;
    }
    if (req->body_len) {
        body = parse_body(req, resp);
        if (!body)
            goto out;
        if (json_object_object_get_ex(body, "reason_code", &v)) {
            if (!json_object_is_type(v, json_type_int) || json_object_get_int(v) < 0 ||
                json_object_get_int(v) > 3) {
                ims_http_error(resp, 400, "reason_code: must be an integer 0..3");
                goto out;
            }
            reason = json_object_get_int(v);
        }
        if (json_object_object_get_ex(body, "reason_info", &v)) {
            if (!json_object_is_type(v, json_type_string)) {
                ims_http_error(resp, 400, "reason_info: must be a string");
                goto out;
            }
            info = json_object_get_string(v);
        }
    }
    if (hss_store_get(ctx->store, id, &sub) != HSS_STORE_OK) {
        ims_http_error(resp, 404, "no subscriber %s", id);
        goto out;
    }
    if (!ctx->deregister) {
        ims_http_error(resp, 501, "de-registration not available");
        goto out;
    }
    if (ctx->deregister(ctx->arg, id, reason, info, err, sizeof(err))) {
        ims_http_error(resp, 409, "%s", err);
        goto out;
    }
    json_object *ok = json_object_new_object();
    json_object_object_add(ok, "subscriber", json_object_new_string(id));
    json_object_object_add(ok, "rtr_sent_to", json_object_new_string(sub.scscf_host ? sub.scscf_host : ""));
    send_json(resp, 202, ok);
out:
    if (body)
        json_object_put(body);
    hss_subscriber_free(&sub);
}

/* /api/v1/subscribers and /api/v1/subscribers/{id} */
static void subscribers_handler(void *arg, const ims_http_req *req, ims_http_resp *resp)
{
    hss_api_ctx *ctx = arg;
    const char *rest = req->path_rest ? req->path_rest : "";
    char *id = NULL;
    int rc;

    if (rest[0] == '\0') {
        if (strcmp(req->method, "GET") == 0)
            subscribers_list(ctx, req, resp);
        else if (strcmp(req->method, "POST") == 0)
            subscribers_create(ctx, req, resp);
        else
            ims_http_error(resp, 405, "method %s not allowed on %s (GET, POST)", req->method, req->path);
        goto out;
    }
    id = url_decode(rest);
    size_t idlen = id ? strlen(id) : 0;
    if (idlen > 11 && strcmp(id + idlen - 11, "/deregister") == 0) {
        id[idlen - 11] = '\0';
        if (id[0] && !strchr(id, '/')) {
            subscriber_deregister(ctx, id, req, resp);
            goto out;
        }
    }
    if (!id || !id[0] || strchr(id, '/')) {
        ims_http_error(resp, 404, "no such resource %s", req->path);
        goto out;
    }
    if (strcmp(req->method, "GET") == 0) {
        send_stored(ctx->store, id, 200, resp);
    } else if (strcmp(req->method, "PUT") == 0) {
        subscriber_replace(ctx, id, req, resp);
    } else if (strcmp(req->method, "DELETE") == 0) {
        rc = hss_store_delete(ctx->store, id);
        if (rc == HSS_STORE_OK) {
            IMS_INFO("hss.api", "subscriber %s deleted", id);
            resp->status = 204;
        } else if (rc == HSS_STORE_NOT_FOUND) {
            ims_http_error(resp, 404, "no subscriber %s", id);
        } else {
            ims_http_error(resp, 500, "database error");
        }
    } else {
        ims_http_error(resp, 405, "method %s not allowed on %s (GET, PUT, DELETE)", req->method,
                       req->path);
    }
out:
    free(id);
    count_request(req->method, resp->status ? resp->status : 200);
}

/* Does `identity` look like a public identity (URI) rather than an IMPI (NAI)? */
static bool is_uri(const char *identity)
{
    return strncasecmp(identity, "sip:", 4) == 0 || strncasecmp(identity, "sips:", 5) == 0 ||
           strncasecmp(identity, "tel:", 4) == 0;
}

/* GET /api/v1/identities/{impi-or-impu} -> {"subscriber": id, "type": "impi"|"impu"} */
static void identities_handler(void *arg, const ims_http_req *req, ims_http_resp *resp)
{
    hss_api_ctx *ctx = arg;
    const char *rest = req->path_rest ? req->path_rest : "";
    hss_subscriber s = {0};
    const char *type = "impu";
    char *identity = NULL;
    json_object *obj;
    int rc;

    if (strcmp(req->method, "GET") != 0) {
        ims_http_error(resp, 405, "method %s not allowed on %s (GET)", req->method, req->path);
        goto out;
    }
    identity = url_decode(rest);
    if (!identity || !identity[0]) {
        ims_http_error(resp, 404, "no identity given: use " API_IDENTITIES "/{impi-or-impu}");
        goto out;
    }
    /* A URI is looked up as an IMPU first; a bare NAI as an IMPI first. Both are tried, since
     * nothing forbids an IMPI written as a URI. */
    if (is_uri(identity)) {
        rc = hss_store_find_by_impu(ctx->store, identity, &s);
        if (rc == HSS_STORE_NOT_FOUND) {
            type = "impi";
            rc = hss_store_find_by_impi(ctx->store, identity, &s);
        }
    } else {
        type = "impi";
        rc = hss_store_find_by_impi(ctx->store, identity, &s);
        if (rc == HSS_STORE_NOT_FOUND) {
            type = "impu";
            rc = hss_store_find_by_impu(ctx->store, identity, &s);
        }
    }
    if (rc == HSS_STORE_NOT_FOUND) {
        ims_http_error(resp, 404, "no subscriber has identity %s", identity);
        goto out;
    }
    if (rc != HSS_STORE_OK) {
        ims_http_error(resp, 500, "database error");
        goto out;
    }
    obj = json_object_new_object();
    json_object_object_add(obj, "subscriber", json_object_new_string(s.id));
    json_object_object_add(obj, "type", json_object_new_string(type));
    send_json(resp, 200, obj);
out:
    hss_subscriber_free(&s);
    free(identity);
    count_request(req->method, resp->status ? resp->status : 200);
}

int hss_api_register(ims_http *http, hss_api_ctx *ctx)
{
    if (!http || !ctx || !ctx->store)
        return -1;
    if (ims_http_route(http, NULL, API_SUBSCRIBERS, subscribers_handler, ctx) != 0)
        return -1;
    if (ims_http_route(http, NULL, API_IDENTITIES, identities_handler, ctx) != 0)
        return -1;
    return 0;
}
