/*
 * fuzz_bencode: the bencode decoder (common/ims_bencode.c) that reads every datagram an rtpengine
 * instance (or anything spoofing one) sends to the P-CSCF's ng client.
 *
 * The input is one ng body (what follows "<cookie> "). Invariants checked beyond "no crash, no
 * leak, no hang":
 *  - a refused input has a message "at byte N: ..." with N within the input (or names the limit);
 *  - an accepted document respects the limits (depth, items) and its counts are right (len of a
 *    list/dict = its items, every dict item has a key, strings are NUL-terminated);
 *  - accepted -> encoded -> decoded again -> equal, and the encoding is the input itself (bencode
 *    has exactly one encoding of a value, and the decoder refuses every other spelling).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ims_bencode.h"

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_bencode: " __VA_ARGS__);                                         \
            fputc('\n', stderr);                                                                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define DEPTH 8
#define ITEMS 512

static size_t walk(const ims_benc *v, unsigned depth)
{
    size_t items = 1;
    CHECK(v->type <= IMS_BENC_DICT, "bad type %d", (int)v->type);
    if (v->type == IMS_BENC_STR)
        CHECK(v->str && v->str[v->len] == '\0', "string not NUL-terminated");
    if (v->type == IMS_BENC_LIST || v->type == IMS_BENC_DICT) {
        CHECK(depth < DEPTH, "container at depth %u beyond the limit", depth);
        size_t n = 0;
        for (const ims_benc *it = v->first; it; it = it->next, n++) {
            CHECK((it->key != NULL) == (v->type == IMS_BENC_DICT), "key presence wrong");
            if (it->key)
                CHECK(it->key[it->key_len] == '\0', "key not NUL-terminated");
            items += walk(it, depth + 1);
        }
        CHECK(n == v->len, "container len %zu, %zu items", v->len, n);
    }
    return items;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[160] = "";
    ims_benc_limits lim = { .max_input = 65535, .max_depth = DEPTH, .max_items = ITEMS };
    ims_benc_doc *d = ims_benc_decode((const char *)data, size, &lim, err, sizeof(err));
    if (!d) {
        size_t pos;
        if (sscanf(err, "at byte %zu: ", &pos) == 1)
            CHECK(pos <= size, "error position %zu beyond %zu bytes: %s", pos, size, err);
        else
            CHECK(strstr(err, "exceeds the limit") || strstr(err, "out of memory"), "bad error '%s'", err);
        return 0;
    }
    const ims_benc *root = ims_benc_root(d);
    CHECK(root, "accepted without a root");
    CHECK(walk(root, 0) <= ITEMS, "more items than the limit");

    ims_strbuf b = IMS_STRBUF_INIT;
    ims_benc_encode(&b, root);
    CHECK(!b.failed, "encoder failed");
    CHECK(b.len == size && memcmp(b.s, data, size) == 0, "re-encoding differs from the input");
    ims_benc_doc *again = ims_benc_decode(b.s, b.len, &lim, err, sizeof(err));
    CHECK(again, "re-encoding refused: %s", err);
    CHECK(ims_benc_equal(root, ims_benc_root(again)), "round trip not equal");
    ims_benc_free(again);
    ims_strbuf_free(&b);
    ims_benc_free(d);
    return 0;
}
