/*
 * hss_json_get.c: typed reads of provisioning JSON values with path-naming errors
 * (see hss_json_priv.h; the format itself is described in hss_json.c).
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hss_json_priv.h"
#include "ims_aka.h"

/* "<path>.<key>: <message>", or "<key>: ..." at top level, or "<path>: ..." without key. */
int hj_jfail(jctx *c, const char *path, const char *key, const char *fmt, ...)
{
    char msg[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (!c->err || c->errlen == 0)
        return -1;
    if (key && path && path[0])
        snprintf(c->err, c->errlen, "%s.%s: %s", path, key, msg);
    else
        snprintf(c->err, c->errlen, "%s: %s", key ? key : (path && path[0] ? path : "$"), msg);
    return -1;
}

/* "path.key[index]" (index < 0: no index). Paths are short (at most five levels of our own
 * key names), so a truncated one only shortens an error message. */
int hj_join_path(char *buf, size_t len, const char *path, const char *key, long index)
{
    int n;

    if (index >= 0)
        n = snprintf(buf, len, "%.120s%s%.24s[%ld]", path, path[0] ? "." : "", key, index);
    else
        n = snprintf(buf, len, "%.120s%s%.24s", path, path[0] ? "." : "", key);
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

int hj_check_keys(jctx *c, json_object *obj, const char *path, const char *const *allowed)
{
    json_object_object_foreach(obj, key, val) {
        size_t i;

        (void)val;
        for (i = 0; allowed[i]; i++)
            if (strcmp(allowed[i], key) == 0)
                break;
        if (!allowed[i])
            return hj_jfail(c, path, key, "unknown field");
    }
    return 0;
}

/* Value of key, NULL when absent or null. */
json_object *hj_jget(json_object *obj, const char *key)
{
    json_object *v = NULL;

    if (!json_object_object_get_ex(obj, key, &v))
        return NULL;
    return v;
}

/* Text the User-Data writer can carry (ims_userdata_text_ok: strict UTF-8, no control characters
 * but tab/LF/CR) and no NUL inside. json-c passes raw bytes through, so without this the API
 * accepted subscribers the HSS then could not serve in an SAA (found by tests/fuzz/fuzz_json). */
bool hj_text_ok(const char *s, size_t len)
{
    return strlen(s) == len && ims_userdata_text_ok(s);
}

int hj_get_str(jctx *c, json_object *obj, const char *path, const char *key, bool required,
               const char **out)
{
    json_object *v = hj_jget(obj, key);

    *out = NULL;
    if (!v)
        return required ? hj_jfail(c, path, key, "required") : 0;
    if (!json_object_is_type(v, json_type_string))
        return hj_jfail(c, path, key, "must be a string");
    const char *s = json_object_get_string(v);
    size_t len = (size_t)json_object_get_string_len(v);
    if (!hj_text_ok(s, len))
        return hj_jfail(c, path, key, "must be UTF-8 text without control characters");
    *out = s;
    return 0;
}

int hj_get_bool(jctx *c, json_object *obj, const char *path, const char *key, bool dflt,
                bool *out)
{
    json_object *v = hj_jget(obj, key);

    *out = dflt;
    if (!v)
        return 0;
    if (!json_object_is_type(v, json_type_boolean))
        return hj_jfail(c, path, key, "must be a boolean");
    *out = json_object_get_boolean(v);
    return 0;
}

int hj_get_int(jctx *c, json_object *obj, const char *path, const char *key, bool required,
               int64_t dflt, int64_t min, int64_t max, int64_t *out)
{
    json_object *v = hj_jget(obj, key);
    int64_t x;

    *out = dflt;
    if (!v)
        return required ? hj_jfail(c, path, key, "required") : 0;
    if (!json_object_is_type(v, json_type_int))
        return hj_jfail(c, path, key, "must be an integer");
    /* json-c clamps values beyond int64 to INT64_MAX/MIN: still out of any range used here. */
    x = json_object_get_int64(v);
    if (x < min || x > max)
        return hj_jfail(c, path, key, "must be between %" PRId64 " and %" PRId64, min, max);
    *out = x;
    return 0;
}

int hj_get_typed(jctx *c, json_object *obj, const char *path, const char *key, bool required,
                 json_type type, json_object **out)
{
    json_object *v = hj_jget(obj, key);

    *out = NULL;
    if (!v)
        return required ? hj_jfail(c, path, key, "required") : 0;
    if (!json_object_is_type(v, type))
        return hj_jfail(c, path, key, type == json_type_array ? "must be an array" : "must be an object");
    *out = v;
    return 0;
}

int hj_dup_str(jctx *c, const char *path, const char *s, char **out)
{
    *out = NULL;
    if (!s)
        return 0;
    if (!(*out = strdup(s)))
        return hj_jfail(c, path, NULL, "out of memory");
    return 0;
}

bool hj_is_hex(const char *s, size_t n)
{
    if (strlen(s) != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isxdigit((unsigned char)s[i]))
            return false;
    return true;
}

int hj_get_hex(jctx *c, json_object *obj, const char *path, const char *key, uint8_t *out,
               size_t len, bool *present)
{
    const char *s;

    *present = false;
    if (hj_get_str(c, obj, path, key, false, &s) != 0)
        return -1;
    if (!s)
        return 0;
    if (!hj_is_hex(s, 2 * len) || ims_hex_decode(s, out, len) != 0)
        return hj_jfail(c, path, key, "must be %zu hex digits", 2 * len);
    *present = true;
    return 0;
}

bool hj_has_space(const char *s)
{
    for (; *s; s++)
        if (isspace((unsigned char)*s) || iscntrl((unsigned char)*s))
            return true;
    return false;
}

/* ---------- enum values by name (tables: common/ims_userdata.c, hss_subscriber.c) ---------- */

/* "must be a, b or c" with the names of a table. */
int hj_enum_fail(jctx *c, const char *path, const char *key, const ims_enum_name *t)
{
    char list[160] = "";
    size_t off = 0;

    for (const ims_enum_name *r = t; r->name && off < sizeof(list); r++) {
        int n = snprintf(list + off, sizeof(list) - off, "%s%s",
                         r == t ? "" : r[1].name ? ", " : " or ", r->name);
        if (n < 0)
            break;
        off += (size_t)n;
    }
    return hj_jfail(c, path, key, "must be %s", list);
}

/* Optional string key naming a value of table t; dflt when absent. */
int hj_get_enum(jctx *c, json_object *obj, const char *path, const char *key,
                const ims_enum_name *t, int dflt, int *out)
{
    const ims_enum_name *r;
    const char *s;

    *out = dflt;
    if (hj_get_str(c, obj, path, key, false, &s) != 0)
        return -1;
    if (!s)
        return 0;
    if (!(r = ims_enum_by_name(t, s)))
        return hj_enum_fail(c, path, key, t);
    *out = r->value;
    return 0;
}

/* Element i of the string array key, naming a value of table t. */
int hj_get_enum_item(jctx *c, json_object *arr, size_t i, const char *path, const char *key,
                     const ims_enum_name *t, int *out)
{
    json_object *e = json_object_array_get_idx(arr, i);
    const ims_enum_name *r;
    char p[JPATH];

    hj_join_path(p, sizeof(p), path, key, (long)i);
    if (!json_object_is_type(e, json_type_string))
        return hj_jfail(c, p, NULL, "must be a string");
    if (!(r = ims_enum_by_name(t, json_object_get_string(e))))
        return hj_enum_fail(c, p, NULL, t);
    *out = r->value;
    return 0;
}
