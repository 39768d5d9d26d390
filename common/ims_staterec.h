/*
 * ims_staterec: reading and writing state-store records (JSON, json-c) as hostile input — the
 * field checks every CSCF's record decoder uses (scscf_regrecord.c, pcscf_bindrecord.c).
 *
 * The store is shared infrastructure and a record may be stale or written by something else:
 * a string field is refused when it is not a string, too long, holds a NUL or a control
 * character (it would end up in a SIP header); an integer when it is not one or out of range.
 */
#ifndef IMS_STATEREC_H
#define IMS_STATEREC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

/* The whole of json[0..len) as one JSON value (nothing after it). NULL + err. */
json_object *ims_staterec_parse(const char *json, size_t len, size_t max, char *err, size_t errlen);

/* String field `name` of o (malloc'd into *out): absent/null is NULL unless required; at most
 * max bytes, no NUL, no control character (multiline: CR, LF and TAB allowed). 0 / -1 + err. */
int ims_staterec_text(json_object *o, const char *name, size_t max, bool required, bool multiline, char **out,
                      char *err, size_t errlen);
/* The same on one line. */
int ims_staterec_str(json_object *o, const char *name, size_t max, bool required, char **out, char *err,
                     size_t errlen);
/* String array field: at most max_n strings as ims_staterec_str checks them, into v[] (malloc'd);
 * *n counts those stored (also on failure: the caller frees v[0..*n)). 0 / -1 + err. */
int ims_staterec_strv(json_object *o, const char *name, size_t max_n, size_t max, char **v, size_t *n, char *err,
                      size_t errlen);
/* Integer field in [min, max]. 0 / -1 + err. */
int ims_staterec_int(json_object *o, const char *name, int64_t min, int64_t max, int64_t *out, char *err,
                     size_t errlen);
/* s is a sip: or sips: URI with a host, at most max bytes. */
bool ims_staterec_is_sip_uri(const char *s, size_t max);

/* Writing: a string (NULL: left out) / an integer member. */
void ims_staterec_add_str(json_object *o, const char *name, const char *v);
void ims_staterec_add_int(json_object *o, const char *name, int64_t v);
/* o as compact JSON (malloc'd), or NULL. */
char *ims_staterec_dump(json_object *o);

#endif
