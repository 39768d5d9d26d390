/*
 * ims_staterec: field checks of state-store records. See ims_staterec.h.
 */
#include "ims_staterec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sofia-sip/url.h>

json_object *ims_staterec_parse(const char *json, size_t len, size_t max, char *err, size_t errlen)
{
    if (!json || len > max || len > INT32_MAX) {
        snprintf(err, errlen, "no record or too large");
        return NULL;
    }
    json_tokener *tok = json_tokener_new();
    if (!tok) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    json_object *o = json_tokener_parse_ex(tok, json, (int)len);
    bool complete = o && json_tokener_get_error(tok) == json_tokener_success && json_tokener_get_parse_end(tok) == len;
    json_tokener_free(tok);
    if (!complete) {
        json_object_put(o);
        snprintf(err, errlen, "not JSON");
        return NULL;
    }
    return o;
}

/* v as a checked string (see ims_staterec_text); name for the error. */
static int text_value(json_object *v, const char *name, size_t max, bool required, bool multiline, char **out,
                      char *err, size_t errlen)
{
    if (!json_object_is_type(v, json_type_string)) {
        snprintf(err, errlen, "\"%s\" is not a string", name);
        return -1;
    }
    const char *s = json_object_get_string(v);
    size_t n = (size_t)json_object_get_string_len(v);
    if (n > max || strlen(s) != n || (required && !n)) {
        snprintf(err, errlen, "\"%s\" empty, too long or with NUL", name);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        bool ws = s[i] == '\n' || s[i] == '\r' || s[i] == '\t';
        if (((unsigned char)s[i] < 0x20 && !(multiline && ws)) || s[i] == 0x7f) {
            snprintf(err, errlen, "\"%s\" holds a control character", name);
            return -1;
        }
    }
    if (!(*out = strdup(s))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

int ims_staterec_text(json_object *o, const char *name, size_t max, bool required, bool multiline, char **out,
                      char *err, size_t errlen)
{
    json_object *v;
    *out = NULL;
    if (!json_object_object_get_ex(o, name, &v) || json_object_is_type(v, json_type_null)) {
        if (!required)
            return 0;
        snprintf(err, errlen, "\"%s\" missing", name);
        return -1;
    }
    return text_value(v, name, max, required, multiline, out, err, errlen);
}

int ims_staterec_strv(json_object *o, const char *name, size_t max_n, size_t max, char **v, size_t *n, char *err,
                      size_t errlen)
{
    json_object *a;
    *n = 0;
    if (!json_object_object_get_ex(o, name, &a) || !json_object_is_type(a, json_type_array) ||
        json_object_array_length(a) > max_n) {
        snprintf(err, errlen, "\"%s\": not an array of at most %zu", name, max_n);
        return -1;
    }
    for (size_t i = 0; i < json_object_array_length(a); i++) {
        if (text_value(json_object_array_get_idx(a, i), name, max, true, false, &v[i], err, errlen))
            return -1;
        (*n)++;
    }
    return 0;
}

int ims_staterec_str(json_object *o, const char *name, size_t max, bool required, char **out, char *err,
                     size_t errlen)
{
    return ims_staterec_text(o, name, max, required, false, out, err, errlen);
}

int ims_staterec_int(json_object *o, const char *name, int64_t min, int64_t max, int64_t *out, char *err,
                     size_t errlen)
{
    json_object *v;
    if (!json_object_object_get_ex(o, name, &v) || !json_object_is_type(v, json_type_int)) {
        snprintf(err, errlen, "\"%s\" missing or not an integer", name);
        return -1;
    }
    int64_t x = json_object_get_int64(v);
    if (x < min || x > max) {
        snprintf(err, errlen, "\"%s\" out of range", name);
        return -1;
    }
    *out = x;
    return 0;
}

bool ims_staterec_is_sip_uri(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n > max || n > 4096)
        return false;
    char *buf = malloc(n + 1);
    if (!buf)
        return false;
    memcpy(buf, s, n + 1);
    url_t u;
    bool ok = url_d(&u, buf) >= 0 && (u.url_type == url_sip || u.url_type == url_sips) && u.url_host && *u.url_host;
    free(buf);
    return ok;
}

void ims_staterec_add_str(json_object *o, const char *name, const char *v)
{
    if (v)
        json_object_object_add(o, name, json_object_new_string(v));
}

void ims_staterec_add_int(json_object *o, const char *name, int64_t v)
{
    json_object_object_add(o, name, json_object_new_int64(v));
}

char *ims_staterec_dump(json_object *o)
{
    const char *txt = o ? json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN) : NULL;
    return txt ? strdup(txt) : NULL;
}
