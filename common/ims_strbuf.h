/*
 * ims_strbuf: building text. A growable string builder (SIP bodies and headers, reginfo XML,
 * metrics pages, HTTP bodies), and the formatter every "char *err, size_t errlen" API uses.
 *
 * The builder is always NUL-terminated once something was appended. An allocation failure sets
 * `failed` and makes every later call a no-op, so a caller checks once at the end.
 */
#ifndef IMS_STRBUF_H
#define IMS_STRBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

typedef struct {
    char *s;                /* NULL until something is appended */
    size_t len, cap;
    bool failed;            /* an allocation failed: the content is incomplete */
} ims_strbuf;

#define IMS_STRBUF_INIT { NULL, 0, 0, false }

void ims_strbuf_append(ims_strbuf *b, const void *data, size_t len);
void ims_strbuf_printf(ims_strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s with & < > " ' escaped (XML attribute and text content). */
void ims_strbuf_xml(ims_strbuf *b, const char *s);
/* Appends everything f still has to give. 0, or -1 on a read error (errno) or when an allocation
 * failed (b->failed). */
int ims_strbuf_read(ims_strbuf *b, FILE *f);
/* Returns the string ("" when nothing was appended; caller frees) or NULL when something failed;
 * b is reset either way. */
char *ims_strbuf_take(ims_strbuf *b);
void ims_strbuf_free(ims_strbuf *b);

/* printf into a caller's error buffer; does nothing when err is NULL or errlen 0. */
void ims_set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
