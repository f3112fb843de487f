/* The fault schedule (fault.h). Its state is thread-local on purpose: it
 * exists only in test builds (-Dfault_injection=true), where each test
 * thread owns its own deterministic sequence; release builds have none. */
#include "fault.h"

#if WEFT_FAULT_INJECTION

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#ifdef _WIN32
#include <winsock2.h>
#define SHUT_BOTH SD_BOTH
#else
#include <sys/socket.h>
#define SHUT_BOTH SHUT_RDWR
#endif

enum { MAX_OWED = 64 };

typedef struct fault_state {
    int inited;
    unsigned rate;  /* permille; 0: off */
    unsigned kinds; /* WEFT__FK_* */
    uint64_t rng;
    uint64_t count;
    int nowed;
    struct {
        const void *owner;
        int fd;
    } owed[MAX_OWED];
} fault_state;

static _Thread_local fault_state st;

/* splitmix64: one multiply-xorshift step per decision, any seed is good. */
static uint64_t next_rand(void)
{
    uint64_t z = (st.rng += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static const struct {
    const char *name;
    unsigned bit;
} kind_names[] = {
    {"eagain", WEFT__FK_EAGAIN},   {"eintr", WEFT__FK_EINTR},   {"short", WEFT__FK_SHORT},
    {"reset", WEFT__FK_RESET},     {"emfile", WEFT__FK_EMFILE}, {"enomem", WEFT__FK_ENOMEM},
    {"enobufs", WEFT__FK_ENOBUFS}, {"sqfull", WEFT__FK_SQFULL}, {"cqovf", WEFT__FK_CQOVF},
    {"benign", WEFT__FK_BENIGN},   {"all", WEFT__FK_ALL},
};

unsigned weft__fault_parse_kinds(const char *s)
{
    char *end;
    unsigned long v = strtoul(s, &end, 0);
    if (end != s && *end == '\0')
        return (unsigned)v & WEFT__FK_ALL;
    unsigned mask = 0;
    while (*s) {
        size_t n = strcspn(s, ",");
        for (size_t i = 0; i < sizeof kind_names / sizeof kind_names[0]; i++)
            if (strlen(kind_names[i].name) == n && strncmp(kind_names[i].name, s, n) == 0)
                mask |= kind_names[i].bit;
        s += n;
        if (*s == ',')
            s++;
    }
    return mask;
}

void weft__fault_config(uint64_t seed, unsigned rate_permille, unsigned kinds)
{
    memset(&st, 0, sizeof st);
    st.inited = 1;
    st.rng = seed;
    st.rate = rate_permille > 1000 ? 1000 : rate_permille;
    st.kinds = kinds & WEFT__FK_ALL;
}

static void init_from_env(void)
{
    const char *seed = getenv("WEFT_FAULT_SEED");
    const char *rate = getenv("WEFT_FAULT_RATE");
    const char *kinds = getenv("WEFT_FAULT_KINDS");
    if (!seed || !*seed) {
        weft__fault_config(0, 0, 0);
        return;
    }
    weft__fault_config(strtoull(seed, NULL, 0),
                       rate && *rate ? (unsigned)strtoul(rate, NULL, 0) : 50,
                       kinds && *kinds ? weft__fault_parse_kinds(kinds) : WEFT__FK_ALL);
}

uint64_t weft__fault_count(void)
{
    return st.count;
}

/* What each site can suffer. */
static unsigned site_kinds(int site)
{
    switch (site) {
    case WEFT__FS_RECV:
    case WEFT__FS_SEND:
        return WEFT__FK_EAGAIN | WEFT__FK_EINTR | WEFT__FK_SHORT | WEFT__FK_RESET;
    case WEFT__FS_ACCEPT:
        return WEFT__FK_EAGAIN | WEFT__FK_EINTR | WEFT__FK_EMFILE;
    case WEFT__FS_CONNECT:
        return WEFT__FK_EINTR | WEFT__FK_RESET;
    case WEFT__FS_WAIT:
        return WEFT__FK_EINTR;
    case WEFT__FS_ALLOC:
        return WEFT__FK_ENOMEM;
    case WEFT__FS_SQE:
        return WEFT__FK_SQFULL;
    case WEFT__FS_MULTI:
        return WEFT__FK_ENOBUFS;
    case WEFT__FS_IOCP_IO:
        return WEFT__FK_SHORT | WEFT__FK_RESET;
    case WEFT__FS_MULTI_STOP:
        return WEFT__FK_CQOVF;
    }
    return 0;
}

static int owe(const void *owner, int fd)
{
    for (int i = 0; i < st.nowed; i++)
        if (st.owed[i].owner == owner && st.owed[i].fd == fd)
            return 1;
    if (st.nowed == MAX_OWED)
        return 0;
    st.owed[st.nowed].owner = owner;
    st.owed[st.nowed].fd = fd;
    st.nowed++;
    return 1;
}

int weft__fault_at(const void *owner, int fd, int site, size_t *len)
{
    if (!st.inited)
        init_from_env();
    if (!st.rate)
        return 0;
    unsigned allowed = site_kinds(site) & st.kinds;
    if (!owner)
        allowed &= ~(unsigned)WEFT__FK_EAGAIN; /* nobody would replay the owed event */
    if (!len)
        allowed &= ~(unsigned)WEFT__FK_SHORT;
    else if (*len <= 1)
        allowed &= ~(unsigned)WEFT__FK_SHORT;
    if (!allowed || next_rand() % 1000 >= st.rate)
        return 0;
    /* Pick one allowed kind, uniformly. */
    unsigned n = 0, pick;
    for (unsigned k = allowed; k; k &= k - 1)
        n++;
    pick = (unsigned)(next_rand() % n);
    unsigned kind = allowed;
    while (pick--)
        kind &= kind - 1;
    kind &= ~(kind - 1);
    if (kind == WEFT__FK_EAGAIN && owner != WEFT__FAULT_NO_OWE && !owe(owner, fd))
        return 0;
    st.count++;
    switch (kind) {
    case WEFT__FK_EAGAIN:
        return EAGAIN;
    case WEFT__FK_EINTR:
        return EINTR;
    case WEFT__FK_SHORT:
        *len = 1;
        return 0;
    case WEFT__FK_RESET:
        if (site == WEFT__FS_CONNECT)
            return ECONNREFUSED;
        /* Really gone: the peer sees the end, later calls fail on their own. */
        shutdown(fd, SHUT_BOTH);
        return site == WEFT__FS_SEND ? EPIPE : ECONNRESET;
    case WEFT__FK_EMFILE:
        return next_rand() & 1 ? EMFILE : ENFILE;
    case WEFT__FK_ENOMEM:
        return ENOMEM;
    case WEFT__FK_ENOBUFS:
        return ENOBUFS;
    case WEFT__FK_SQFULL:
        return EBUSY;
    case WEFT__FK_CQOVF:
        return ECANCELED;
    }
    return 0;
}

int weft__fault_owed_pop(const void *owner)
{
    for (int i = 0; i < st.nowed; i++) {
        if (st.owed[i].owner != owner)
            continue;
        int fd = st.owed[i].fd;
        st.owed[i] = st.owed[--st.nowed];
        return fd;
    }
    return -1;
}

int weft__fault_owed_any(const void *owner)
{
    for (int i = 0; i < st.nowed; i++)
        if (st.owed[i].owner == owner)
            return 1;
    return 0;
}

#else
typedef int weft__fault_unused; /* ISO C wants a translation unit to declare something */
#endif
