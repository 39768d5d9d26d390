/*
 * ims_userdata_int.h: what the three files of the User-Data module share (ims_userdata.c model and
 * validation, ims_userdata_write.c writer, ims_userdata_read.c reader). Private to common/ims_userdata*.c.
 */
#ifndef IMS_USERDATA_INT_H
#define IMS_USERDATA_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "ims_userdata.h"

/* Writes the message into err (when err/errlen allow). */
void seterr(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* XML white space (S production): what the reader trims from tokens and skips between elements. */
static inline bool ud_is_xml_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* strdup that records a failure in *oom instead of returning it (NULL stays NULL). */
char *ud_dup_or_null(const char *s, bool *oom);
/* Grows *arr by one zeroed element; returns it or NULL (ENOMEM). */
void *ud_grow(void **arr, size_t *n, size_t elsize);
void ud_spt_free(ims_spt *s);
/* Deep copy; a failed strdup sets *oom and leaves d freeable. */
void ud_spt_copy(ims_spt *d, const ims_spt *s, bool *oom);

/* Smallest and largest value of an enum table (tables have no gaps, see ims_userdata.h). */
void ud_enum_range(const ims_enum_name *table, int *min, int *max);

/* Refuses what the Annex E schema cannot express: 0, or -1 with the reason in err. */
int ud_check_subscription(const ims_subscription *sub, char *err, size_t errlen);

/* xmlInitParser once per process, before the first libxml2 use of the writer or the reader. */
void ud_xml_init(void);

#endif
