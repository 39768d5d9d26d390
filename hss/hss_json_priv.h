/*
 * hss_json_priv.h: the JSON reading helpers shared by the subscription reader (hss_json.c) and the
 * iFC reader (hss_json_ifc.c). Every helper reports the first problem as "<path>.<key>: ..." into
 * the context and returns -1, so that readers unwind with one check per call.
 */
#ifndef HSS_JSON_PRIV_H
#define HSS_JSON_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "hss_subscriber.h"

#define JPATH 192          /* path buffers: "%.120s.%.24s[%ld]" always fits */

/* Error context: the first failure is written to err and everything unwinds with -1. */
typedef struct {
    char *err;
    size_t errlen;
} jctx;

/* "<path>.<key>: <message>", or "<key>: ..." at top level, or "<path>: ..." without key. */
int hj_jfail(jctx *c, const char *path, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* "path.key[index]" (index < 0: no index). Paths are short (at most five levels of our own
 * key names), so a truncated one only shortens an error message. */
int hj_join_path(char *buf, size_t len, const char *path, const char *key, long index);

int hj_check_keys(jctx *c, json_object *obj, const char *path, const char *const *allowed);

/* Value of key, NULL when absent or null. */
json_object *hj_jget(json_object *obj, const char *key);

/* Text the User-Data writer can carry (ims_userdata_text_ok: strict UTF-8, no control characters
 * but tab/LF/CR) and no NUL inside. json-c passes raw bytes through, so without this the API
 * accepted subscribers the HSS then could not serve in an SAA (found by tests/fuzz/fuzz_json). */
bool hj_text_ok(const char *s, size_t len);

int hj_get_str(jctx *c, json_object *obj, const char *path, const char *key, bool required,
               const char **out);

int hj_get_bool(jctx *c, json_object *obj, const char *path, const char *key, bool dflt,
                bool *out);

int hj_get_int(jctx *c, json_object *obj, const char *path, const char *key, bool required,
               int64_t dflt, int64_t min, int64_t max, int64_t *out);

int hj_get_typed(jctx *c, json_object *obj, const char *path, const char *key, bool required,
                 json_type type, json_object **out);

int hj_dup_str(jctx *c, const char *path, const char *s, char **out);

bool hj_is_hex(const char *s, size_t n);

int hj_get_hex(jctx *c, json_object *obj, const char *path, const char *key, uint8_t *out,
               size_t len, bool *present);

bool hj_has_space(const char *s);

/* "must be a, b or c" with the names of a table. */
int hj_enum_fail(jctx *c, const char *path, const char *key, const ims_enum_name *t);

/* Optional string key naming a value of table t; dflt when absent. */
int hj_get_enum(jctx *c, json_object *obj, const char *path, const char *key,
                const ims_enum_name *t, int dflt, int *out);

/* Element i of the string array key, naming a value of table t. */
int hj_get_enum_item(jctx *c, json_object *arr, size_t i, const char *path, const char *key,
                     const ims_enum_name *t, int *out);

#endif
