/*
 * ims_array: append one zeroed element to a malloc'ed array that grows one element at a time
 * (models read from XML, JSON or SQL rows, where the count is not known in advance).
 */
#ifndef IMS_ARRAY_H
#define IMS_ARRAY_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Grows *arr (of *n elements of elsize bytes) by one zeroed element and returns it; NULL (and
 * *arr, *n unchanged) when memory is short or the size would overflow. */
static inline void *ims_array_append(void **arr, size_t *n, size_t elsize)
{
    if (!elsize || *n >= SIZE_MAX / elsize - 1)
        return NULL;
    char *p = realloc(*arr, (*n + 1) * elsize);
    if (!p)
        return NULL;
    *arr = p;
    memset(p + *n * elsize, 0, elsize);
    return p + (*n)++ * elsize;
}

#endif
