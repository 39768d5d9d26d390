/*
 * ims_userdata_int.h: what the files of the User-Data module share (ims_userdata.c model and
 * validation, ims_userdata_write.c writer, ims_userdata_read.c and ims_userdata_seq.c reader).
 * Private to common/ims_userdata*.c.
 */
#ifndef IMS_USERDATA_INT_H
#define IMS_USERDATA_INT_H

#include <stdbool.h>
#include <stddef.h>

#include <libxml/tree.h>

#include "ims_array.h"
#include "ims_strbuf.h"
#include "ims_userdata.h"

/* XML white space (S production): what the reader trims from tokens and skips between elements. */
static inline bool ud_is_xml_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* strdup that records a failure in *oom instead of returning it (NULL stays NULL). */
char *ud_dup_or_null(const char *s, bool *oom);
void ud_spt_free(ims_spt *s);
/* Deep copy; a failed strdup sets *oom and leaves d freeable. */
void ud_spt_copy(ims_spt *d, const ims_spt *s, bool *oom);

/* Smallest and largest value of an enum table (tables have no gaps, see ims_userdata.h). */
void ud_enum_range(const ims_enum_name *table, int *min, int *max);

/* Refuses what the Annex E schema cannot express: 0, or -1 with the reason in err. */
int ud_check_subscription(const ims_subscription *sub, char *err, size_t errlen);

/* xmlInitParser once per process, before the first libxml2 use of the writer or the reader. */
void ud_xml_init(void);

/* ---- reading (ims_userdata_seq.c: the strict walker and leaf readers; ims_userdata_read.c: the
 * Annex E tables) ---- */

/* Reads one occurrence of a sequence element into obj, the struct of the complex type being read.
 * path names that type in messages. Returns 0 or -1 with err set. */
typedef int (*seq_fn)(const xmlNode *el, void *obj, const char *path, char *err, size_t errlen);

/* One position of an xs:sequence. names is "Name" or, for an xs:choice, "A|B|C". */
typedef struct {
    const char *names;
    int min, max;          /* occurrences; max 0 = unbounded */
    seq_fn fn;             /* NULL: accepted and skipped (Extension content we do not use) */
} seq_item;

#define SEQ_MAX 6          /* the longest Annex E sequence we read has 5 elements */

/* A complex type: its sequence in schema order, ended by a row without names. */
typedef struct {
    const char *path;      /* for messages, e.g. "ServiceProfile/PublicIdentity" */
    bool open;             /* Extension content: unknown children are skipped (schema extensibility) */
    seq_item items[SEQ_MAX];
} seq_type;

/* Reads the children of node as the sequence t (order, occurrences, no stray text), calling each
 * element's handler with obj. 0, or -1 with the first violation in err ("line N: path: ..."). */
int ud_read_seq(const xmlNode *node, const seq_type *t, void *obj, char *err, size_t errlen);

/* "line N: <path>: <message>" into err. */
void ud_node_err(char *err, size_t errlen, const xmlNode *n, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Simple-typed leaves. Each returns 0, or -1 with err naming the element and line. */
int ud_leaf_token(const xmlNode *el, const char *path, char **out, char *err, size_t errlen);   /* trimmed, non-empty */
int ud_leaf_string(const xmlNode *el, const char *path, char **out, char *err, size_t errlen);  /* verbatim */
int ud_leaf_int(const xmlNode *el, const char *path, int min, int max, int *out, char *err, size_t errlen);
int ud_leaf_bool(const xmlNode *el, const char *path, bool empty_is_true, bool *out, char *err, size_t errlen);
int ud_leaf_enum(const xmlNode *el, const char *path, const ims_enum_name *table, int *out, char *err,
                 size_t errlen);   /* the Annex E integer, range from the table */

#endif
