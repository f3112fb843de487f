/* The io_uring limit reference: a minimal echo server on liburing, no
 * library of its own, written for the benchmark only. Multishot accept and
 * multishot recv into a provided buffer ring; the received buffer itself is
 * sent back (one send in flight per connection, the rest queued in order)
 * and returned to the ring once sent. The buffers are huge pages, and the
 * ring holds only as many as recent polls used (the rest wait, last freed
 * first): weft's multishot pool does both, and each made 16-64 KiB echoes
 * faster. Each kernel feature is probed, with a
 * fallback: SINGLE_ISSUER|DEFER_TASKRUN, else COOP_TASKRUN, else none; no
 * buffer ring or multishot recv: a single-shot recv into a buffer per
 * connection; no multishot accept: a single accept re-armed. It prints what
 * it took on stderr. */
#include "peer_args.h"

#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define ENTRIES 4096
#define NBUF 1024 /* provided buffers (a power of two) ... */
#define BUFSZ                                                                                      \
    32768 /* ... of this size (32 MiB of huge pages, touched as used): a 16 KiB                    \
           * message is one recv and one send */
#define BGID 1
#define NO_BID 0xffff

enum { UD_ACCEPT = 1, UD_RECV, UD_SEND };

/* user_data: kind << 56 | fd */
#define UD(kind, fd) ((uint64_t)(kind) << 56 | (uint32_t)(fd))

typedef struct conn {
    uint16_t head, tail; /* buffers received, not yet sent (FIFO through next_bid) */
    uint8_t sending;     /* a send is in flight (the head, or own) */
    uint8_t recving;     /* a recv is armed: the fd stays open until it ends */
    uint8_t open;
    char *own;        /* single-shot mode: this connection's buffer ... */
    uint32_t own_len; /* ... and the bytes in it */
} conn;

static struct io_uring ring;
static struct io_uring_buf_ring *br;
static char *bufs;
static uint16_t next_bid[NBUF];
static uint32_t len_bid[NBUF];
static conn *conns;
static int nconns;
static int multishot_recv = 1, multishot_accept = 1;
static int lfd;
/* The ring holds at most ring_goal free buffers; the others wait on a
 * stack, last freed on top. The kernel takes buffers from the ring in FIFO
 * order: with every free buffer in it, each recv would write to the least
 * recently used memory of the whole pool. An empty ring while buffers wait
 * doubles the goal, at most once per poll. */
static uint16_t spare[NBUF];
static unsigned nspare, in_ring, ring_goal = 16;
static int grown;
/* Connections whose multishot recv ended for want of buffers. */
static int *starved;
static int nstarved;

static struct io_uring_sqe *sqe_get(void)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
    if (!sqe) {
        io_uring_submit(&ring);
        sqe = io_uring_get_sqe(&ring);
    }
    return sqe;
}

static void arm_accept(void)
{
    struct io_uring_sqe *sqe = sqe_get();
    if (multishot_accept)
        io_uring_prep_multishot_accept(sqe, lfd, NULL, NULL, 0);
    else
        io_uring_prep_accept(sqe, lfd, NULL, NULL, 0);
    io_uring_sqe_set_data64(sqe, UD(UD_ACCEPT, lfd));
}

static void arm_recv(int fd)
{
    struct io_uring_sqe *sqe = sqe_get();
    conns[fd].recving = 1;
    if (!conns[fd].own) {
        io_uring_prep_recv_multishot(sqe, fd, NULL, 0, 0);
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = BGID;
    } else {
        io_uring_prep_recv(sqe, fd, conns[fd].own, PEER_BUF, 0);
    }
    io_uring_sqe_set_data64(sqe, UD(UD_RECV, fd));
}

static void give_back(uint16_t bid)
{
    spare[nspare++] = bid;
}

/* Before each wait: the ring up to its goal, most recently freed first. */
static void ring_top_up(void)
{
    unsigned room = ring_goal - in_ring, top = nspare; /* locals: the ring's stores alias */
    if (room > top)
        room = top;
    for (unsigned n = 0; n < room; n++) {
        uint16_t bid = spare[--top];
        io_uring_buf_ring_add(br, bufs + (size_t)bid * BUFSZ, BUFSZ, bid,
                              io_uring_buf_ring_mask(NBUF), (int)n);
    }
    io_uring_buf_ring_advance(br, (int)room);
    nspare = top;
    in_ring += room;
}

/* Send the head of c's queue (MSG_WAITALL: the kernel sends it all). */
static void send_head(int fd)
{
    conn *c = &conns[fd];
    struct io_uring_sqe *sqe = sqe_get();
    if (c->own)
        io_uring_prep_send(sqe, fd, c->own, c->own_len, MSG_WAITALL | MSG_NOSIGNAL);
    else
        io_uring_prep_send(sqe, fd, bufs + (size_t)c->head * BUFSZ, len_bid[c->head],
                           MSG_WAITALL | MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, UD(UD_SEND, fd));
    c->sending = 1;
}

/* Close fd once nothing of the kernel's refers to it (a recv or send in
 * flight would otherwise complete on the next connection given that fd). */
static void maybe_close(int fd)
{
    conn *c = &conns[fd];
    if (c->open || c->sending || c->recving)
        return;
    free(c->own);
    c->own = NULL;
    close(fd);
}

static void conn_close(int fd)
{
    conn *c = &conns[fd];
    if (!c->open)
        return;
    c->open = 0;
    /* Queued buffers go back; the one in flight comes back with its CQE. */
    if (!c->own && c->head != NO_BID) {
        uint16_t b = c->sending ? next_bid[c->head] : c->head;
        while (b != NO_BID) {
            uint16_t nb = next_bid[b];
            give_back(b);
            b = nb;
        }
        if (c->sending)
            next_bid[c->head] = NO_BID;
        else
            c->head = NO_BID;
        c->tail = c->head;
    }
    shutdown(fd, SHUT_RDWR); /* ends the recv */
    maybe_close(fd);
}

static void on_accept(struct io_uring_cqe *cqe)
{
    int fd = cqe->res;
    if (!(cqe->flags & IORING_CQE_F_MORE)) {
        if (fd == -EINVAL && multishot_accept) {
            multishot_accept = 0;
            fprintf(stderr, "raw_uring_echo: no multishot accept: single accepts\n");
        }
        arm_accept();
    }
    if (fd < 0)
        return;
    if (fd >= nconns) {
        close(fd);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    conns[fd] = (conn){.head = NO_BID, .tail = NO_BID, .open = 1};
    if (!multishot_recv && !(conns[fd].own = malloc(PEER_BUF))) {
        close(fd);
        conns[fd].open = 0;
        return;
    }
    arm_recv(fd);
}

static void on_recv(struct io_uring_cqe *cqe, int fd)
{
    conn *c = &conns[fd];
    int n = cqe->res;
    int more = !c->own && (cqe->flags & IORING_CQE_F_MORE);
    if (cqe->flags & IORING_CQE_F_BUFFER)
        in_ring--;
    if (!more)
        c->recving = 0;
    if (n == -EINVAL && !c->own && c->open) {
        /* No multishot recv here: this connection and every later one
         * reads into a buffer of its own. */
        if (multishot_recv)
            fprintf(stderr, "raw_uring_echo: no multishot recv: single-shot recv\n");
        multishot_recv = 0;
        if (!(c->own = malloc(PEER_BUF))) {
            conn_close(fd);
            return;
        }
        arm_recv(fd);
        return;
    }
    if (n > 0 && (cqe->flags & IORING_CQE_F_BUFFER) && !c->open) {
        give_back((uint16_t)(cqe->flags >> IORING_CQE_BUFFER_SHIFT));
        n = 0;
    }
    if (n == -ENOBUFS && c->open) {
        if (nspare > 0 && !grown && ring_goal < NBUF) {
            ring_goal *= 2;
            grown = 1;
        }
        starved[nstarved++] = fd; /* re-armed when buffers come back */
        return;
    }
    if (n <= 0 || !c->open) {
        conn_close(fd);
        maybe_close(fd);
        return;
    }
    if (c->own) {
        c->own_len = (uint32_t)n;
        send_head(fd);
        return;
    }
    uint16_t bid = (uint16_t)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
    len_bid[bid] = (uint32_t)n;
    next_bid[bid] = NO_BID;
    if (c->tail == NO_BID)
        c->head = bid;
    else
        next_bid[c->tail] = bid;
    c->tail = bid;
    if (!c->sending)
        send_head(fd);
    if (!more)
        arm_recv(fd);
}

static void on_send(struct io_uring_cqe *cqe, int fd)
{
    conn *c = &conns[fd];
    c->sending = 0;
    if (c->own) {
        if (cqe->res != (int)c->own_len)
            conn_close(fd);
        else if (c->open)
            arm_recv(fd);
        maybe_close(fd);
        return;
    }
    uint16_t bid = c->head;
    int ok = cqe->res == (int)len_bid[bid];
    c->head = next_bid[bid];
    if (c->head == NO_BID)
        c->tail = NO_BID;
    give_back(bid);
    if (!c->open) { /* closed while this was in flight */
        maybe_close(fd);
        return;
    }
    if (!ok)
        conn_close(fd);
    else if (c->head != NO_BID)
        send_head(fd);
}

/* Setup flags, best first: each one a probe (EINVAL: not in this kernel). */
static int ring_init(size_t first)
{
    static const struct {
        unsigned flags;
        const char *name;
    } modes[] = {
        {IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN, "SINGLE_ISSUER|DEFER_TASKRUN"},
        {IORING_SETUP_COOP_TASKRUN, "COOP_TASKRUN"},
        {0, "plain"},
    };
    int rc = -EINVAL;
    for (size_t i = first; i < sizeof modes / sizeof modes[0]; i++) {
        struct io_uring_params p;
        memset(&p, 0, sizeof p);
        p.flags = modes[i].flags | IORING_SETUP_CQSIZE;
        p.cq_entries = ENTRIES * 4;
        rc = io_uring_queue_init_params(ENTRIES, &ring, &p);
        if (rc == 0) {
            fprintf(stderr, "raw_uring_echo: ring %s\n", modes[i].name);
            return 0;
        }
        if (rc != -EINVAL)
            break;
    }
    return rc;
}

/* The buffers: one mapping, aligned to 2 MiB and advised for transparent
 * huge pages where the system has them, as weft's pools are: on 4 KiB
 * pages the kernel's copies into 32 MiB miss the TLB. NULL: no memory. */
static char *bufs_map(size_t bytes)
{
    const size_t huge = (size_t)2 << 20;
    char *m = mmap(NULL, bytes + huge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return NULL;
    char *p = (char *)(((uintptr_t)m + huge - 1) & ~(uintptr_t)(huge - 1));
    if (p > m)
        munmap(m, (size_t)(p - m));
    munmap(p + bytes, huge - (size_t)(p - m));
#ifdef MADV_HUGEPAGE
    madvise(p, bytes, MADV_HUGEPAGE);
#endif
    return p;
}

/* The provided buffer ring (liburing 2.3 has no io_uring_setup_buf_ring).
 * 0, or an error: then single-shot recv. */
static int bufs_init(void)
{
    size_t bytes = NBUF * sizeof(struct io_uring_buf);
    void *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return -errno;
    bufs = bufs_map((size_t)NBUF * BUFSZ);
    if (!bufs)
        return -ENOMEM;
    struct io_uring_buf_reg reg;
    memset(&reg, 0, sizeof reg);
    reg.ring_addr = (uint64_t)(uintptr_t)m;
    reg.ring_entries = NBUF;
    reg.bgid = BGID;
    int rc = io_uring_register_buf_ring(&ring, &reg, 0);
    if (rc)
        return rc;
    br = m;
    io_uring_buf_ring_init(br);
    for (unsigned i = NBUF; i-- > 0;)
        give_back((uint16_t)i);
    ring_top_up();
    return 0;
}

static int listen_on(const peer_args *a)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)a->port)};
    if (inet_pton(AF_INET, a->host, &sa.sin_addr) != 1)
        return -EINVAL;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, PEER_BACKLOG) < 0)
        return -errno;
    return fd;
}

int main(int argc, char **argv)
{
    peer_args a;
    peer_parse(&a, argc, argv, 0);
    struct rlimit rl;
    nconns =
        getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (1u << 20) ? (int)rl.rlim_cur : 1 << 20;
    conns = calloc((size_t)nconns, sizeof *conns);
    starved = calloc((size_t)nconns, sizeof *starved);
    int rc = conns && starved ? 0 : -ENOMEM;
    if (!rc)
        rc = lfd = listen_on(&a);
    if (rc >= 0)
        print_port(lfd);
    /* RAW_URING_FALLBACK=1: take every fallback (to check them). */
    const char *fb = getenv("RAW_URING_FALLBACK");
    int fallback = fb && *fb == '1';
    if (rc >= 0)
        rc = ring_init(fallback ? 2 : 0);
    if (rc < 0) {
        fprintf(stderr, "raw_uring_echo: %s:%d: %s\n", a.host, a.port, strerror(-rc));
        return 1;
    }
    if (fallback) {
        multishot_accept = 0;
        multishot_recv = 0;
        fprintf(stderr, "raw_uring_echo: RAW_URING_FALLBACK: single accepts, single-shot recv\n");
    } else if ((rc = bufs_init()) != 0) {
        multishot_recv = 0;
        fprintf(stderr, "raw_uring_echo: no provided buffer ring (%s): single-shot recv\n",
                strerror(-rc));
    }
    arm_accept();
    for (;;) {
        rc = io_uring_submit_and_wait(&ring, 1);
        if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
            fprintf(stderr, "raw_uring_echo: submit: %s\n", strerror(-rc));
            return 1;
        }
        struct io_uring_cqe *cqe;
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&ring, head, cqe)
        {
            seen++;
            int fd = (int)(uint32_t)cqe->user_data;
            switch (cqe->user_data >> 56) {
            case UD_ACCEPT:
                on_accept(cqe);
                break;
            case UD_RECV:
                on_recv(cqe, fd);
                break;
            case UD_SEND:
                on_send(cqe, fd);
                break;
            }
        }
        io_uring_cq_advance(&ring, seen);
        grown = 0;
        if (multishot_recv)
            ring_top_up();
        if (in_ring > 0)
            while (nstarved > 0) {
                int fd = starved[--nstarved];
                if (conns[fd].open && !conns[fd].recving)
                    arm_recv(fd);
            }
    }
}
