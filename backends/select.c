/* Which backends exist, which work here, and what AUTO picks. */
#include "backend.h"
#include "weft_config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char *const names[WEFT_BACKEND__COUNT] = {
    [WEFT_BACKEND_AUTO] = "auto",   [WEFT_BACKEND_IO_URING] = "io_uring",
    [WEFT_BACKEND_EPOLL] = "epoll", [WEFT_BACKEND_KQUEUE] = "kqueue",
    [WEFT_BACKEND_IOCP] = "iocp",   [WEFT_BACKEND_POLL] = "poll",
};

/* AUTO's order of preference: completion-based first, then the native
 * readiness mechanism, poll last. */
static const weft_backend_kind auto_order[] = {
    WEFT_BACKEND_IO_URING, WEFT_BACKEND_KQUEUE, WEFT_BACKEND_IOCP,
    WEFT_BACKEND_EPOLL,    WEFT_BACKEND_POLL,
};

int weft__backend_search(int (*start)(weft_backend_kind kind, void *ctx), void *ctx)
{
    int first_err = WEFT_EUNAVAILABLE;
    for (size_t i = 0; i < sizeof auto_order / sizeof auto_order[0]; i++) {
        if (!weft__backend_vtable(auto_order[i]))
            continue;
        /* libkqueue is kqueue emulated over epoll: on Linux kqueue is
         * chosen only by name (WEFT_BACKEND=kqueue). */
        if (auto_order[i] == WEFT_BACKEND_KQUEUE && WEFT_KQUEUE_LIBKQUEUE)
            continue;
        int rc = start(auto_order[i], ctx);
        if (rc == 0)
            return (int)auto_order[i];
        if (first_err == WEFT_EUNAVAILABLE)
            first_err = rc;
    }
    return first_err;
}

const weft__vtable *weft__backend_vtable(weft_backend_kind kind)
{
    switch (kind) {
#if WEFT_HAVE_IO_URING
    case WEFT_BACKEND_IO_URING:
        return &weft__uring_vtable;
#endif
#if WEFT_HAVE_EPOLL
    case WEFT_BACKEND_EPOLL:
        return &weft__epoll_vtable;
#endif
#if WEFT_HAVE_KQUEUE
    case WEFT_BACKEND_KQUEUE:
        return &weft__kqueue_vtable;
#endif
#if WEFT_HAVE_IOCP
    case WEFT_BACKEND_IOCP:
        return &weft__iocp_vtable;
#endif
#if WEFT_HAVE_POLL
    case WEFT_BACKEND_POLL:
        return &weft__poll_vtable;
#endif
    default:
        return NULL;
    }
}

const char *weft_backend_name(weft_backend_kind kind)
{
    return (unsigned)kind < WEFT_BACKEND__COUNT ? names[kind] : NULL;
}

int weft_backend_from_name(const char *name)
{
    if (name)
        for (int k = 0; k < WEFT_BACKEND__COUNT; k++)
            if (strcmp(name, names[k]) == 0)
                return k;
    return WEFT_EUNKNOWN_BACKEND;
}

int weft_backend_compiled(weft_backend_kind kind)
{
    return weft__backend_vtable(kind) != NULL;
}

int weft_backend_probe(weft_backend_kind kind)
{
    if ((unsigned)kind >= WEFT_BACKEND__COUNT || kind == WEFT_BACKEND_AUTO)
        return -EINVAL;
    if (!weft__backend_vtable(kind))
        return WEFT_ENOT_COMPILED;
    weft_loop *loop;
    weft_loop_opts opts = {.backend = kind, .ring_entries = 8};
    int rc = weft_loop_new(&opts, &loop);
    if (rc == 0)
        weft_loop_free(loop);
    return rc;
}

static int probe(weft_backend_kind kind, void *ctx)
{
    (void)ctx;
    return weft_backend_probe(kind);
}

int weft_backend_auto(void)
{
    return weft__backend_search(probe, NULL);
}
