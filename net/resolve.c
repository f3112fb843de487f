/* weft_getaddrinfo: the system resolver on the loop's executor.
 *
 * The lookup may outlive the task that asked for it (a cancelled task
 * returns at once; the job still runs on the pool), so its request lives
 * on the heap with two references, the task's and the job's: whoever
 * drops the last one frees it and the resolver's answer. A job the loop
 * drops unrun (freed while the job was queued) drops its reference too. */
#include "net_internal.h"
#include "task_internal.h"
#include "weft/executor.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#ifndef _WIN32
#include <netdb.h>
#endif

typedef struct lookup {
    atomic_int refs;
    char *host, *port;
    struct addrinfo hints;
    struct addrinfo *res;
    int gai; /* getaddrinfo's return value */
    int sys; /* errno after EAI_SYSTEM */
} lookup;

static void lookup_unref(lookup *l)
{
    if (atomic_fetch_sub(&l->refs, 1) != 1)
        return;
    if (l->res)
        freeaddrinfo(l->res);
    free(l->host);
    free(l->port);
    free(l);
}

static int lookup_job(void *arg, intptr_t *result)
{
    lookup *l = arg;
    l->gai = getaddrinfo(l->host, l->port, &l->hints, &l->res);
#ifdef EAI_SYSTEM
    l->sys = l->gai == EAI_SYSTEM ? errno : 0;
#endif
    *result = 0;
    lookup_unref(l);
    return 0;
}

/* The loop was freed with the job still queued: drop the job's reference. */
static void lookup_drop(void *arg)
{
    lookup_unref(arg);
}

static int gai_to_errno(int gai, int sys)
{
    (void)sys; /* only with EAI_SYSTEM (not on Windows) */
    switch (gai) {
    case EAI_NONAME:
#ifdef EAI_NODATA
    case EAI_NODATA:
#endif
#ifdef EAI_ADDRFAMILY
    case EAI_ADDRFAMILY:
#endif
    case EAI_SERVICE:
        return -ENOENT;
    case EAI_AGAIN:
        return -EAGAIN;
    case EAI_MEMORY:
        return -ENOMEM;
    case EAI_FAMILY:
        return -EAFNOSUPPORT;
    case EAI_SOCKTYPE:
    case EAI_BADFLAGS:
        return -EINVAL;
#ifdef EAI_SYSTEM
    case EAI_SYSTEM:
        return sys ? -sys : -EIO;
#endif
    default:
        return -EIO;
    }
}

int weft_getaddrinfo(weft_loop *loop, const char *host, const char *port, int family, int socktype,
                     weft_addr *out, size_t max)
{
    if (!loop || !out || !max || (!host && !port))
        return -EINVAL;
    if (family != AF_UNSPEC && family != AF_INET && family != AF_INET6)
        return -EINVAL;
    if (socktype != 0 && socktype != SOCK_STREAM && socktype != SOCK_DGRAM)
        return -EINVAL;
    if (!weft__in_task(loop))
        return -EPERM;
#ifdef _WIN32
    int rc0 = weft__net_startup(); /* getaddrinfo is a Winsock call */
    if (rc0)
        return rc0;
#endif
    lookup *l = calloc(1, sizeof *l);
    if (!l)
        return -ENOMEM;
    atomic_init(&l->refs, 2);
    l->host = host ? strdup(host) : NULL;
    l->port = port ? strdup(port) : NULL;
    if ((host && !l->host) || (port && !l->port)) {
        l->refs = 1;
        lookup_unref(l);
        return -ENOMEM;
    }
    l->hints.ai_family = family;
    l->hints.ai_socktype = socktype;
    l->hints.ai_flags = (host ? 0 : AI_PASSIVE) | AI_ADDRCONFIG;
    if (host && strcmp(host, "localhost") == 0)
        l->hints.ai_flags &= ~AI_ADDRCONFIG; /* loopback-only hosts still resolve localhost */
    weft_future *f;
    int rc = weft__run_in_executor_drop(loop, lookup_job, lookup_drop, l, &f);
    if (rc) {
        l->refs = 1;
        lookup_unref(l);
        return rc;
    }
    rc = weft_await(f, NULL);
    weft_future_unref(f);
    if (rc == 0) {
        if (l->gai != 0) {
            rc = gai_to_errno(l->gai, l->sys);
        } else {
            size_t n = 0;
            for (struct addrinfo *ai = l->res; ai && n < max; ai = ai->ai_next) {
                if (ai->ai_addrlen > sizeof out[n].ss ||
                    (ai->ai_family != AF_INET && ai->ai_family != AF_INET6))
                    continue;
                /* With socktype 0 each address comes once per socket type:
                 * keep one of each address. */
                int dup = 0;
                for (size_t i = 0; i < n && !dup; i++)
                    dup = out[i].len == ai->ai_addrlen &&
                          memcmp(&out[i].ss, ai->ai_addr, ai->ai_addrlen) == 0;
                if (dup)
                    continue;
                memset(&out[n], 0, sizeof out[n]);
                memcpy(&out[n].ss, ai->ai_addr, ai->ai_addrlen);
                out[n].len = (uint32_t)ai->ai_addrlen;
                n++;
            }
            rc = n ? (int)n : -ENOENT;
        }
    }
    lookup_unref(l);
    return rc;
}
