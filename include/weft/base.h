/* Version, error codes and the things every other part of weft.h uses. */
#ifndef WEFT_BASE_H
#define WEFT_BASE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define WEFT_VERSION_MAJOR 0
#define WEFT_VERSION_MINOR 1
#define WEFT_VERSION_PATCH 0

/* Error codes of weft's own, below every errno value. All other errors are
 * negative errno values (-EINVAL, -ECONNRESET, ...), also on Windows. */
enum {
    WEFT_EUNKNOWN_BACKEND = -4001, /* a backend name weft does not know */
    WEFT_ENOT_COMPILED = -4002,    /* a backend weft was built without */
    WEFT_EUNAVAILABLE = -4003,     /* compiled in, but the OS refuses it here */
    WEFT_ECLOSED = -4004,          /* the generator or object was closed */
};

/* Constructors that allocate (weft_*_new, _create, _spawn, weft_open_*)
 * return the new object through their last parameter; initialisers
 * (weft_*_init) take the caller's object first.
 *
 * Public structs that callers allocate (ops, handles, sync primitives,
 * coroutines) end with their private part: the fields after the comment
 * "Private to weft." all end in an underscore, and types and constants only
 * weft uses are named weft__ / WEFT__. Read them, never write them.
 *
 * Intrusive list links and list heads embedded in weft's caller-owned
 * structs (handles, ops, the sync primitives' waiters). Private: the one
 * list type, operated on by core/list.h. */
typedef struct weft__link {
    struct weft__link *next, *prev;
} weft__link;

typedef struct weft__list {
    weft__link *first, *last;
} weft__list;

/* The version as "major.minor.patch"; a static string. */
const char *weft_version(void);

/* A static, human-readable explanation of an error code returned by any weft
 * function (a negative errno or a WEFT_E* code). Never NULL; an unknown code
 * gives "unknown error". */
const char *weft_strerror(int err);

/* The name of the constant behind an error code, for logs and tests: a
 * static string such as "ECONNREFUSED" for -ECONNREFUSED or
 * "WEFT_EUNAVAILABLE". Where two errno names share a value (EAGAIN and
 * EWOULDBLOCK) the first in POSIX's alphabetical order is given. NULL for
 * 0, a positive value, or a code it has no name for (an errno this system
 * lacks or that weft does not list). */
const char *weft_err_name(int err);

#ifdef __cplusplus
}
#endif
#endif
