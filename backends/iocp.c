/* IOCP backend (Windows): one I/O completion port per loop.
 *
 * Every op is one overlapped call whose OVERLAPPED lives in the op's
 * private area (weft_op.win_); the packet's OVERLAPPED pointer leads back
 * to the op (container_of), never the socket, which Windows may hand out
 * again the moment it is closed. The op belongs to the system until its
 * packet is dequeued, also after a cancel or a close. Results come from
 * OVERLAPPED.Internal (an NTSTATUS) through the one error table
 * (core/sys/win_error.c). Batches come from GetQueuedCompletionStatusEx.
 *
 * Sockets: the first op on a socket checks it (SO_PROTOCOL_INFOW), makes it
 * non-blocking and associates it with the port, once, with
 * FILE_SKIP_COMPLETION_PORT_ON_SUCCESS where the provider has
 * XP1_IFS_HANDLES (stream sockets only: datagram sockets keep the port
 * packet). An immediate success then posts no packet: the op is queued
 * with weft__op_done(), whose callback runs in the callback phase, never
 * inside submit. The loop keeps the sockets it knows in a small hash set
 * keyed by SOCKET (with the association mode and a generation), dropped on
 * CLOSE and forget_fd; an op remembers the generation it was submitted
 * under, so a packet that arrives after its socket was closed (and the
 * number perhaps reused) is recognised.
 *
 * ACCEPT = AcceptEx into a pre-created socket from a per-loop slot pool,
 * then SO_UPDATE_ACCEPT_CONTEXT; CONNECT = bind to any if unbound,
 * ConnectEx, then SO_UPDATE_CONNECT_CONTEXT; RECV/SEND = WSARecv/WSASend;
 * POLL_IN/POLL_OUT = IOCTL_AFD_POLL on one \Device\Afd handle per loop,
 * opened on first use (the wepoll/mio technique).
 *
 * A socket another loop's port owns (weft_serve_threads shares one
 * listener among loops) cannot be associated here: its ops are served
 * readiness-style, an AFD poll and then the non-blocking call, again on
 * WSAEWOULDBLOCK.
 *
 * CLOSE / forget_fd: CancelIoEx(socket, NULL) and the socket's AFD polls
 * cancelled; each op still completes through its packet (-ECANCELED, or its
 * real result if it had finished). cancel = CancelIoEx(socket, &ov).
 * Wake-ups: one PostQueuedCompletionStatus behind an atomic flag. Timeouts
 * are rounded up to whole ms and waited out when the wait returns early.
 * fini cancels everything and takes packets until the system holds no
 * OVERLAPPED of the loop's (nreqs == 0).
 *
 * A socket closed without CLOSE or forget_fd leaves its entry behind; ACCEPT
 * and CONNECT check the association again (one CreateIoCompletionPort that
 * fails when all is well), so a new socket behind the old number still
 * reaches the port. Multishot requests: iocp_multi.c.
 */
#include "sys/fault.h"
#include "iocp_internal.h"
#include "loop_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef STATUS_PENDING
#define STATUS_PENDING ((NTSTATUS)0x00000103L)
#endif
#ifndef STATUS_BUFFER_OVERFLOW
#define STATUS_BUFFER_OVERFLOW ((NTSTATUS)0x80000005L)
#endif
#ifndef FILE_OPEN
#define FILE_OPEN 0x00000001
#endif
#define IOCTL_AFD_POLL 0x00012024
#define KEY_WAKE 1
#define MAX_IO 0x7ffff000u /* as on Linux: longer requests are cut */
#define SLOT_CHUNK 16

static weft__iocp_op *priv(weft_op *op)
{
    return (weft__iocp_op *)(void *)op->win_.bytes_;
}

static ULONG io_len(size_t len)
{
    return len > MAX_IO ? MAX_IO : (ULONG)len;
}

/* ---- the socket set ---- */

static uint32_t sock_hash(SOCKET s)
{
    uint64_t x = (uint64_t)s;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return (uint32_t)x;
}

weft__sock_ent *weft__iocp_sock(weft__iocp *u, SOCKET s)
{
    if (!u->cap)
        return NULL;
    uint32_t mask = u->cap - 1;
    for (uint32_t i = sock_hash(s) & mask;; i = (i + 1) & mask) {
        if (u->tab[i].s == s)
            return &u->tab[i];
        if (u->tab[i].s == INVALID_SOCKET)
            return NULL;
    }
}

static weft__sock_ent *sock_slot(weft__sock_ent *tab, uint32_t cap, SOCKET s)
{
    uint32_t mask = cap - 1, i = sock_hash(s) & mask;
    while (tab[i].s != INVALID_SOCKET)
        i = (i + 1) & mask;
    return &tab[i];
}

static int sock_reserve(weft__iocp *u)
{
    if ((u->len + 1) * 2 <= u->cap)
        return 0;
    uint32_t cap = u->cap ? u->cap * 2 : 64;
    if (cap > (1u << 30))
        return -ENOMEM;
    weft__sock_ent *tab = malloc(cap * sizeof *tab);
    if (!tab)
        return -ENOMEM;
    for (uint32_t i = 0; i < cap; i++)
        tab[i].s = INVALID_SOCKET;
    for (uint32_t i = 0; i < u->cap; i++)
        if (u->tab[i].s != INVALID_SOCKET)
            *sock_slot(tab, cap, u->tab[i].s) = u->tab[i];
    free(u->tab);
    u->tab = tab;
    u->cap = cap;
    return 0;
}

/* Remove e, shifting back the entries of its probe run (no tombstones). */
static void sock_remove(weft__iocp *u, weft__sock_ent *e)
{
    uint32_t mask = u->cap - 1, i = (uint32_t)(e - u->tab), j = i;
    u->tab[i].s = INVALID_SOCKET;
    u->len--;
    for (;;) {
        j = (j + 1) & mask;
        if (u->tab[j].s == INVALID_SOCKET)
            return;
        uint32_t home = sock_hash(u->tab[j].s) & mask;
        /* j may move to i when its home is not within (i, j]. */
        if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
            u->tab[i] = u->tab[j];
            u->tab[j].s = INVALID_SOCKET;
            i = j;
        }
    }
}

/* Skip the port for immediate successes, where the provider allows. */
static void sock_skip(weft__iocp *u, weft__sock_ent *e)
{
    e->skip =
        u->ifs && e->type == SOCK_STREAM &&
        SetFileCompletionNotificationModes((HANDLE)e->s, FILE_SKIP_COMPLETION_PORT_ON_SUCCESS |
                                                             FILE_SKIP_SET_EVENT_ON_HANDLE);
}

/* Try to associate e's socket with the port (once). */
static void sock_associate(weft__iocp *u, weft__sock_ent *e)
{
    if (e->mode != WEFT__SOCK_NEW)
        return;
    if (!CreateIoCompletionPort((HANDLE)e->s, u->port, 0, 0)) {
        /* ERROR_INVALID_PARAMETER: another port owns it (a listener shared
         * by several loops). Anything else: serve it readiness-style too,
         * which reports the socket's own error if it has one. */
        e->mode = WEFT__SOCK_FOREIGN;
        return;
    }
    e->mode = WEFT__SOCK_PORT;
    if (u->ifs && e->type == SOCK_STREAM &&
        SetFileCompletionNotificationModes((HANDLE)e->s, FILE_SKIP_COMPLETION_PORT_ON_SUCCESS |
                                                             FILE_SKIP_SET_EVENT_ON_HANDLE))
        e->skip = 1;
}

/* Winsock says WSAENOTSOCK also for a value that is no handle at all (a
 * socket closed already, or never opened): that is POSIX's EBADF, as the
 * other backends report it. A live handle that is no socket stays ENOTSOCK.
 * Kernel handles are multiples of 4; a value with the low bits set is at
 * most a legacy console pseudo-handle (wine still makes those), no socket. */
static int bad_socket_error(SOCKET s, int rc)
{
    DWORD flags;
    if (rc == -ENOTSOCK && ((s & 3) || !GetHandleInformation((HANDLE)s, &flags)))
        return -EBADF;
    return rc;
}

/* What an entry knows of its socket: checked to be one, made non-blocking. */
static int sock_fill(weft__iocp *u, weft__sock_ent *e, SOCKET s)
{
    WSAPROTOCOL_INFOW pi;
    int pilen = sizeof pi;
    if (getsockopt(s, SOL_SOCKET, SO_PROTOCOL_INFOW, (char *)&pi, &pilen) != 0)
        return bad_socket_error(s, weft__sock_error());
    u_long on = 1;
    if (ioctlsocket(s, FIONBIO, &on) != 0)
        return weft__sock_error();
    SOCKET base = s;
    DWORD bytes = 0;
    if (WSAIoctl(s, SIO_BASE_HANDLE, NULL, 0, &base, sizeof base, &bytes, NULL, NULL) != 0)
        base = s; /* no layered provider to see through */
    *e = (weft__sock_ent){
        .s = s,
        .base = base,
        .gen = ++u->next_gen,
        .mode = WEFT__SOCK_NEW,
        .type = (uint8_t)pi.iSocketType,
        .af = pi.iAddressFamily,
        .proto = pi.iProtocol,
    };
    return 0;
}

/* The entry for s, made on first use, and (associate) s associated with
 * the port. verify: check that a known socket is still the one the entry
 * describes, for a caller who closed one without CLOSE or forget_fd and got
 * its number back: the port would never see the new socket's packets. One
 * system call, made for ACCEPT and CONNECT, the ops that begin a socket's
 * life (accepted sockets are known fresh). 0 or a negative error; *out
 * moves when another socket is added. */
int weft__iocp_sock_add(weft__iocp *u, SOCKET s, int associate, int verify, weft__sock_ent **out)
{
    weft__sock_ent *e = weft__iocp_sock(u, s);
    if (e && verify && e->mode != WEFT__SOCK_NEW &&
        CreateIoCompletionPort((HANDLE)s, u->port, 0, 0)) {
        /* Associated just now: a new socket behind an old number. */
        int rc = sock_fill(u, e, s);
        if (rc)
            return rc;
        e->mode = WEFT__SOCK_PORT;
        sock_skip(u, e);
    }
    if (!e) {
        weft__sock_ent fresh;
        int rc = sock_fill(u, &fresh, s);
        if (rc || (rc = sock_reserve(u)) != 0)
            return rc;
        e = sock_slot(u->tab, u->cap, s);
        *e = fresh;
        u->len++;
    }
    if (associate)
        sock_associate(u, e);
    *out = e;
    return 0;
}

/* A socket just accepted is new, whatever the loop knew of its number. */
static void sock_fresh(weft__iocp *u, SOCKET s)
{
    weft__sock_ent *e = weft__iocp_sock(u, s);
    if (e)
        sock_remove(u, e);
}

/* ---- the accept slot pool ---- */

weft__accept_slot *weft__iocp_slot_get(weft__iocp *u)
{
    if (!u->free_slots) {
        void **chunks = realloc(u->chunks, (u->nchunks + 1) * sizeof *chunks);
        if (!chunks)
            return NULL;
        u->chunks = chunks;
        weft__accept_slot *c = calloc(SLOT_CHUNK, sizeof *c);
        if (!c)
            return NULL;
        u->chunks[u->nchunks++] = c;
        for (int i = 0; i < SLOT_CHUNK; i++) {
            c[i].sock = INVALID_SOCKET;
            c[i].next = u->free_slots;
            u->free_slots = &c[i];
        }
    }
    weft__accept_slot *s = u->free_slots;
    u->free_slots = s->next;
    s->next = NULL;
    s->m = NULL;
    return s;
}

void weft__iocp_slot_put(weft__iocp *u, weft__accept_slot *slot)
{
    if (slot->sock != INVALID_SOCKET) {
        closesocket(slot->sock);
        slot->sock = INVALID_SOCKET;
    }
    slot->m = NULL;
    slot->next = u->free_slots;
    u->free_slots = slot;
}

int weft__iocp_listening(weft__sock_ent *ent)
{
    if (ent->listening)
        return 0;
    BOOL on = FALSE;
    int len = sizeof on;
    if (getsockopt(ent->s, SOL_SOCKET, SO_ACCEPTCONN, (char *)&on, &len) != 0)
        return weft__sock_error();
    if (!on)
        return -EINVAL;
    ent->listening = 1;
    return 0;
}

int weft__iocp_acceptex(weft__iocp *u, weft__sock_ent *ent, weft__accept_slot *slot)
{
    if (slot->sock == INVALID_SOCKET) {
        slot->sock = WSASocketW(ent->af, ent->type, ent->proto, NULL, 0,
                                WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
        if (slot->sock == INVALID_SOCKET)
            return weft__sock_error();
    }
    DWORD bytes = 0;
    if (u->acceptex(ent->s, slot->sock, slot->addrs, 0, WEFT__ACCEPT_ADDR_ROOM,
                    WEFT__ACCEPT_ADDR_ROOM, &bytes, &slot->req.ov))
        return ent->skip ? 1 : 0;
    int err = WSAGetLastError();
    if (err == ERROR_IO_PENDING)
        return 0;
    return weft__win_error((unsigned long)err);
}

int64_t weft__iocp_accept_done(weft__iocp *u, SOCKET listener, weft__accept_slot *slot, void *addr,
                               size_t room, uint32_t *addrlen)
{
    SOCKET s = slot->sock;
    /* Without it getpeername, shutdown and friends fail on Windows (wine
     * does not need it, so the counter is what the tests check). */
    if (setsockopt(s, SOL_SOCKET, SO_UPDATE_ACCEPT_CONTEXT, (const char *)&listener,
                   sizeof listener) != 0)
        return weft__sock_error(); /* the slot keeps s and closes it */
    u->n_update_accept++;
    u_long on = 1;
    if (ioctlsocket(s, FIONBIO, &on) != 0)
        return weft__sock_error();
    if (addrlen)
        *addrlen = 0;
    if (addr && room) {
        struct sockaddr *local = NULL, *remote = NULL;
        int llen = 0, rlen = 0;
        u->getaddrs(slot->addrs, 0, WEFT__ACCEPT_ADDR_ROOM, WEFT__ACCEPT_ADDR_ROOM, &local, &llen,
                    &remote, &rlen);
        if (remote && rlen > 0) {
            memcpy(addr, remote, (size_t)rlen < room ? (size_t)rlen : room);
            if (addrlen)
                *addrlen = (uint32_t)rlen;
        }
    }
    slot->sock = INVALID_SOCKET; /* the caller's now */
    sock_fresh(u, s);
    return weft__sock_fd(s);
}

/* ---- AFD polls ---- */

static int afd_open(weft__iocp *u)
{
    if (u->afd)
        return 0;
    if (u->afd_err)
        return u->afd_err;
    if (!u->nt_create_file || !u->nt_ioctl) {
        u->afd_err = -ENOSYS;
        return u->afd_err;
    }
    static const WCHAR name[] = L"\\Device\\Afd\\weft";
    UNICODE_STRING us = {sizeof name - sizeof(WCHAR), sizeof name, (PWSTR)name};
    OBJECT_ATTRIBUTES attr;
    InitializeObjectAttributes(&attr, &us, 0, NULL, NULL);
    IO_STATUS_BLOCK iosb;
    HANDLE h = NULL;
    NTSTATUS st = u->nt_create_file(&h, SYNCHRONIZE, &attr, &iosb, NULL, 0,
                                    FILE_SHARE_READ | FILE_SHARE_WRITE, FILE_OPEN, 0, NULL, 0);
    if (st != 0) {
        u->afd_err = -ENOSYS;
        return u->afd_err;
    }
    if (!CreateIoCompletionPort(h, u->port, 0, 0)) {
        u->afd_err = weft__win_error(GetLastError());
        CloseHandle(h);
        return u->afd_err;
    }
    /* No skip-on-success here: every poll comes back through the port. */
    SetFileCompletionNotificationModes(h, FILE_SKIP_SET_EVENT_ON_HANDLE);
    u->afd = h;
    return 0;
}

/* Arm an AFD poll for req (inside op) on socket base. 0: armed, a packet
 * will come; or a negative error. */
int weft__iocp_afd_arm(weft__iocp *u, weft_op *op, SOCKET base, ULONG events)
{
    int rc = afd_open(u);
    if (rc)
        return rc;
    weft__iocp_op *p = priv(op);
    memset(&p->req.ov, 0, sizeof p->req.ov);
    p->req.how = WEFT__HOW_AFD;
    weft__afd_poll_info *pi = &p->u.poll;
    pi->timeout.QuadPart = INT64_MAX;
    pi->count = 1;
    pi->exclusive = FALSE;
    pi->handles[0].handle = (HANDLE)base;
    pi->handles[0].events = events;
    pi->handles[0].status = 0;
    IO_STATUS_BLOCK *iosb = (IO_STATUS_BLOCK *)(void *)&p->req.ov;
    iosb->Status = STATUS_PENDING;
    NTSTATUS st = u->nt_ioctl(u->afd, NULL, NULL, &p->req.ov, iosb, IOCTL_AFD_POLL, pi, sizeof *pi,
                              pi, sizeof *pi);
    if (st != STATUS_PENDING && st < 0)
        return weft__nt_error(st); /* failed at once: no packet */
    weft__list_push(&u->afd_ops, &op->link_);
    u->nreqs++;
    return 0;
}

void weft__iocp_afd_cancel(weft__iocp *u, weft_op *op)
{
    IO_STATUS_BLOCK io;
    if (u->nt_cancel)
        u->nt_cancel(u->afd, (IO_STATUS_BLOCK *)(void *)&priv(op)->req.ov, &io);
    else
        CancelIoEx(u->afd, &priv(op)->req.ov);
    /* STATUS_NOT_FOUND: its packet is already queued. */
}

static ULONG afd_events_for(const weft_op *op)
{
    switch (op->opcode) {
    case WEFT_OP_POLL_IN:
    case WEFT_OP_ACCEPT:
    case WEFT_OP_RECV:
        return WEFT__AFD_IN;
    default:
        return WEFT__AFD_OUT;
    }
}

/* ---- ops on sockets of another port: the non-blocking call ---- */

/* The call itself; -EAGAIN: not ready, poll again. */
int64_t weft__iocp_try_now(weft__iocp *u, weft_op *op)
{
    SOCKET s = weft__sock(op->fd);
    switch (op->opcode) {
    case WEFT_OP_ACCEPT: {
        SOCKADDR_STORAGE ss;
        int len = sizeof ss;
        SOCKET c = accept(s, (struct sockaddr *)&ss, &len);
        if (c == INVALID_SOCKET)
            return weft__sock_error();
        u_long on = 1;
        ioctlsocket(c, FIONBIO, &on);
        SetHandleInformation((HANDLE)c, HANDLE_FLAG_INHERIT, 0);
        sock_fresh(u, c);
        if (op->buf && op->len) {
            memcpy(op->buf, &ss, (size_t)len < op->len ? (size_t)len : op->len);
            op->addrlen = (uint32_t)len;
        }
        return weft__sock_fd(c);
    }
    case WEFT_OP_RECV: {
        int n = recv(s, op->buf, (int)io_len(op->len), op->flags);
        if (n < 0 && WSAGetLastError() == WSAEMSGSIZE)
            return io_len(op->len); /* a datagram cut to the buffer, as on POSIX */
        return n >= 0 ? n : weft__sock_error();
    }
    case WEFT_OP_SEND: {
        int n = send(s, op->buf, (int)io_len(op->len), op->flags);
        return n >= 0 ? n : weft__sock_error();
    }
    case WEFT_OP_CONNECT: {
        weft__iocp_op *p = priv(op);
        if (!p->req.stage) {
            p->req.stage = 1;
            if (connect(s, op->buf, (int)(op->len > INT32_MAX ? INT32_MAX : op->len)) == 0)
                return 0;
            int rc = weft__sock_error();
            return rc == -EINPROGRESS ? -EAGAIN : rc;
        }
        int err = 0, elen = sizeof err;
        if (getsockopt(s, SOL_SOCKET, SO_ERROR, (char *)&err, &elen) != 0)
            return weft__sock_error();
        return err ? weft__win_error((unsigned long)err) : 0;
    }
    default:
        return -EINVAL;
    }
}

/* ---- overlapped calls ---- */

#if WEFT_FAULT_INJECTION
/* Fault injection (fault.h): instead of the call, a packet of our own that
 * sock_packet() turns into the errno (nothing was transferred). */
static int fault_packet(weft__iocp *u, weft_op *op, int err)
{
    op->opflags_ |= WEFT__OPFLAG_FAULT;
    op->pad_ = (uint16_t)err;
    if (!PostQueuedCompletionStatus(u->port, 0, 0, &priv(op)->req.ov)) {
        op->opflags_ &= (uint8_t)~WEFT__OPFLAG_FAULT;
        return weft__win_error(GetLastError());
    }
    return 0;
}
#else
#define fault_packet(u, op, err) ((void)(u), (void)(op), (void)(err), 0)
#endif

/* Start op's overlapped call on ent. 0: a packet will come; 1: done at once
 * with *res; < 0: failed at once (no packet). */
static int start_overlapped(weft__iocp *u, weft_op *op, weft__sock_ent *ent, int64_t *res)
{
    weft__iocp_op *p = priv(op);
    memset(&p->req.ov, 0, sizeof p->req.ov);
    p->req.how = WEFT__HOW_SOCK;
    SOCKET s = ent->s;
    DWORD bytes = 0;
    int rc;
    switch (op->opcode) {
    case WEFT_OP_RECV:
    case WEFT_OP_SEND: {
        size_t len = op->len;
        int ferr = WEFT__FAULT(NULL, op->fd, WEFT__FS_IOCP_IO, &len);
        p->u.io.wb.buf = op->buf;
        p->u.io.wb.len = io_len(len);
        p->u.io.flags = (DWORD)op->flags;
        if (ferr)
            return fault_packet(u, op, ferr);
        if (op->opcode == WEFT_OP_RECV)
            rc = WSARecv(s, &p->u.io.wb, 1, &bytes, &p->u.io.flags, &p->req.ov, NULL);
        else
            rc = WSASend(s, &p->u.io.wb, 1, &bytes, p->u.io.flags, &p->req.ov, NULL);
        if (rc == 0) {
            *res = bytes;
            return ent->skip ? 1 : 0;
        }
        rc = WSAGetLastError();
        /* A truncated datagram is a warning: without skip mode its packet comes. */
        if (rc == WSA_IO_PENDING || (rc == WSAEMSGSIZE && !ent->skip))
            return 0;
        return weft__win_error((unsigned long)rc);
    }
    case WEFT_OP_ACCEPT: {
        if ((rc = weft__iocp_listening(ent)) != 0)
            return rc;
        weft__accept_slot *slot = weft__iocp_slot_get(u);
        if (!slot)
            return -ENOMEM;
        p->u.slot = slot;
        /* The slot's own OVERLAPPED is for multishot; a single accept uses the op's. */
        if (slot->sock == INVALID_SOCKET) {
            slot->sock = WSASocketW(ent->af, ent->type, ent->proto, NULL, 0,
                                    WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
            if (slot->sock == INVALID_SOCKET) {
                rc = weft__sock_error();
                weft__iocp_slot_put(u, slot);
                return rc;
            }
        }
        if (u->acceptex(s, slot->sock, slot->addrs, 0, WEFT__ACCEPT_ADDR_ROOM,
                        WEFT__ACCEPT_ADDR_ROOM, &bytes, &p->req.ov)) {
            if (!ent->skip)
                return 0;
            *res = weft__iocp_accept_done(u, s, slot, op->buf, op->len, &op->addrlen);
            weft__iocp_slot_put(u, slot);
            return 1;
        }
        rc = WSAGetLastError();
        if (rc == ERROR_IO_PENDING)
            return 0;
        weft__iocp_slot_put(u, slot);
        return weft__win_error((unsigned long)rc);
    }
    case WEFT_OP_CONNECT: {
        const struct sockaddr *sa = op->buf;
        int len = (int)(op->len > INT32_MAX ? INT32_MAX : op->len);
        if (len < (int)sizeof(sa->sa_family))
            return -EINVAL;
        /* ConnectEx wants a bound socket; WSAEINVAL: it is bound already. */
        SOCKADDR_STORAGE any;
        memset(&any, 0, sizeof any);
        any.ss_family = sa->sa_family;
        int alen = sa->sa_family == AF_INET6 ? (int)sizeof(struct sockaddr_in6)
                                             : (int)sizeof(struct sockaddr_in);
        if (bind(s, (struct sockaddr *)&any, alen) != 0 && WSAGetLastError() != WSAEINVAL)
            return weft__sock_error();
        if (u->connectex(s, sa, len, NULL, 0, NULL, &p->req.ov)) {
            if (!ent->skip)
                return 0;
            if (setsockopt(s, SOL_SOCKET, SO_UPDATE_CONNECT_CONTEXT, NULL, 0) != 0) {
                *res = weft__sock_error();
                return 1;
            }
            u->n_update_connect++;
            *res = 0;
            return 1;
        }
        rc = WSAGetLastError();
        if (rc == ERROR_IO_PENDING)
            return 0;
        return weft__win_error((unsigned long)rc);
    }
    default:
        return -EINVAL;
    }
}

/* Whether op's socket was closed or forgotten since it was submitted. */
static int op_orphaned(weft__iocp *u, weft_op *op)
{
    weft__sock_ent *e = weft__iocp_sock(u, weft__sock(op->fd));
    return !e || e->gen != priv(op)->req.gen;
}

static void op_finish(weft__iocp *u, weft_op *op, int64_t res)
{
    weft__op_done(u->base.loop, op, res);
}

/* The packet of an overlapped call. */
static void sock_packet(weft__iocp *u, weft_op *op)
{
    weft__iocp_op *p = priv(op);
    int64_t res = weft__nt_error(weft__iocp_status(&p->req.ov));
    int orphan = u->closing || op_orphaned(u, op);
    switch (op->opcode) {
    case WEFT_OP_RECV:
    case WEFT_OP_SEND:
        /* A datagram cut to the buffer (a warning status): its length, as on POSIX. */
        if (res == 0 || weft__iocp_status(&p->req.ov) == STATUS_BUFFER_OVERFLOW)
            res = (int64_t)p->req.ov.InternalHigh;
#if WEFT_FAULT_INJECTION
        if (op->opflags_ & WEFT__OPFLAG_FAULT) {
            op->opflags_ &= (uint8_t)~WEFT__OPFLAG_FAULT;
            res = -(int64_t)op->pad_; /* fault_packet()'s */
        }
#endif
        break;
    case WEFT_OP_ACCEPT: {
        weft__accept_slot *slot = p->u.slot;
        if ((res == -ECONNRESET || res == -EAGAIN) && !orphan &&
            !(op->opflags_ & WEFT__OPFLAG_CANCEL)) {
            /* A connection reset before it was taken: POSIX accept skips
             * those; take the next one (with a new socket, as libuv does).
             * The same when another loop's accept() on a shared listener
             * took the connection first (wine: STATUS_DEVICE_NOT_READY). */
            weft__iocp_slot_put(u, slot);
            weft__sock_ent *e = weft__iocp_sock(u, weft__sock(op->fd));
            int rc = start_overlapped(u, op, e, &res);
            if (rc == 0) {
                u->nreqs++;
                return;
            }
            op_finish(u, op, rc < 0 ? rc : res);
            return;
        }
        if (res == 0 && !orphan)
            res =
                weft__iocp_accept_done(u, weft__sock(op->fd), slot, op->buf, op->len, &op->addrlen);
        else if (res == 0)
            res = -ECANCELED; /* nobody will take it: the slot closes it */
        weft__iocp_slot_put(u, slot);
        break;
    }
    case WEFT_OP_CONNECT:
        if (res == 0) {
            if (setsockopt(weft__sock(op->fd), SOL_SOCKET, SO_UPDATE_CONNECT_CONTEXT, NULL, 0) == 0)
                u->n_update_connect++;
            else
                res = weft__sock_error();
        }
        break;
    default:
        break;
    }
    if (res < 0 && (orphan || ((op->opflags_ & WEFT__OPFLAG_CANCEL) && res == -ECONNABORTED)))
        res = -ECANCELED;
    op_finish(u, op, res);
}

/* The packet of an AFD poll: a POLL_IN/POLL_OUT is done; an op on another
 * port's socket makes its call now, and polls again if it would block. */
static void afd_packet(weft__iocp *u, weft_op *op)
{
    weft__iocp_op *p = priv(op);
    weft__list_remove(&u->afd_ops, &op->link_);
    NTSTATUS st = weft__iocp_status(&p->req.ov);
    int64_t res = weft__nt_error(st);
    ULONG events = p->u.poll.count >= 1 ? p->u.poll.handles[0].events : 0;
    if (res == 0 && (u->closing || op_orphaned(u, op) || (events & WEFT__AFD_LOCAL_CLOSE)))
        res = -ECANCELED;
    if (res == 0) {
        if (op->opcode == WEFT_OP_POLL_IN || op->opcode == WEFT_OP_POLL_OUT) {
            if (events) {
                op_finish(u, op, 0);
                return;
            }
            res = -EAGAIN; /* nothing happened (a timeout): poll again */
        } else {
            res = weft__iocp_try_now(u, op);
        }
        if (res == -EAGAIN) {
            if (op->opflags_ & WEFT__OPFLAG_CANCEL) {
                res = -ECANCELED;
            } else {
                weft__sock_ent *e = weft__iocp_sock(u, weft__sock(op->fd));
                res = weft__iocp_afd_arm(u, op, e->base, afd_events_for(op));
                if (res == 0)
                    return;
            }
        }
    }
    op_finish(u, op, res);
}

static void dispatch(weft__iocp *u, OVERLAPPED *ov)
{
    weft__iocp_req *req = weft__container_of(ov, weft__iocp_req, ov);
    u->nreqs--;
    if (req->kind != WEFT__REQ_OP) {
        weft__iocp_multi_packet(u, req);
        return;
    }
    weft_op *op = weft__container_of((unsigned char *)req, weft_op, win_.bytes_);
    if (req->how == WEFT__HOW_AFD)
        afd_packet(u, op);
    else
        sock_packet(u, op);
}

/* ---- the vtable ---- */

/* Forget fd: cancel what the system holds on it (each op completes through
 * its packet) and drop its entry. */
static void forget(weft__iocp *u, int fd)
{
    SOCKET s = weft__sock(fd);
    weft__sock_ent *e = weft__iocp_sock(u, s);
    if (!e)
        return;
    if (e->mode == WEFT__SOCK_PORT)
        CancelIoEx((HANDLE)s, NULL); /* ERROR_NOT_FOUND: nothing pending */
    sock_remove(u, e);
    weft__iocp_multi_forget(u, fd);
    for (weft__link *n = u->afd_ops.first; n; n = n->next) {
        weft_op *op = weft__container_of(n, weft_op, link_);
        if (op->fd == fd)
            weft__iocp_afd_cancel(u, op);
    }
}

static int iocp_submit(weft__backend *be, weft_op *op)
{
    weft__iocp *u = (weft__iocp *)be;
    SOCKET s = weft__sock(op->fd);
    if (op->opcode == WEFT_OP_CLOSE) {
        forget(u, op->fd);
        weft__op_done(be->loop, op, bad_socket_error(s, weft__sock_close(op->fd)));
        return 0;
    }
    int poll = op->opcode == WEFT_OP_POLL_IN || op->opcode == WEFT_OP_POLL_OUT;
    weft__sock_ent *e;
    int rc = weft__iocp_sock_add(u, s, !poll,
                                 op->opcode == WEFT_OP_ACCEPT || op->opcode == WEFT_OP_CONNECT, &e);
    if (rc == -ENOMEM)
        return weft__op_refused(be->loop, op, rc);
    if (rc) {
        weft__op_done(be->loop, op, rc); /* not a socket: the op's own error */
        return 0;
    }
    weft__iocp_op *p = priv(op);
    memset(p, 0, sizeof *p);
    p->req.kind = WEFT__REQ_OP;
    p->req.gen = e->gen;
    int64_t res = 0;
    /* ConnectEx knows IPv4 and IPv6 only: other families connect readiness-style. */
    int readiness = poll || e->mode == WEFT__SOCK_FOREIGN ||
                    (op->opcode == WEFT_OP_CONNECT && op->len >= sizeof(ADDRESS_FAMILY) &&
                     ((const struct sockaddr *)op->buf)->sa_family != AF_INET &&
                     ((const struct sockaddr *)op->buf)->sa_family != AF_INET6);
    if (readiness) {
        if (!poll) {
            /* Readiness-style: the call first, the poll when it would block. */
            res = weft__iocp_try_now(u, op);
            if (res != -EAGAIN) {
                weft__op_done(be->loop, op, res);
                return 0;
            }
        }
        rc = weft__iocp_afd_arm(u, op, e->base, afd_events_for(op));
        if (rc == -ENOMEM)
            return weft__op_refused(be->loop, op, rc);
        if (rc)
            weft__op_done(be->loop, op, rc);
        return 0;
    }
    rc = start_overlapped(u, op, e, &res);
    if (rc == -ENOMEM)
        return weft__op_refused(be->loop, op, rc);
    if (rc == 0)
        u->nreqs++;
    else
        weft__op_done(be->loop, op, rc < 0 ? rc : res);
    return 0;
}

static int iocp_cancel(weft__backend *be, weft_op *op)
{
    weft__iocp *u = (weft__iocp *)be;
    weft__iocp_op *p = priv(op);
    if (p->req.how == WEFT__HOW_AFD)
        weft__iocp_afd_cancel(u, op);
    else
        CancelIoEx((HANDLE)weft__sock(op->fd), &p->req.ov); /* ERROR_NOT_FOUND: too late */
    return 0;
}

static int iocp_forget_fd(weft__backend *be, int fd)
{
    forget((weft__iocp *)be, fd);
    return 0;
}

/* Hand a batch of packets to their requests. */
static void handle_batch(weft__iocp *u, ULONG n)
{
    for (ULONG i = 0; i < n; i++) {
        OVERLAPPED_ENTRY *en = &u->ents[i];
        if (!en->lpOverlapped) {
            if (en->lpCompletionKey == KEY_WAKE)
                atomic_store_explicit(&u->wake_posted, 0, memory_order_seq_cst);
            continue;
        }
        dispatch(u, en->lpOverlapped);
    }
}

static int iocp_poll(weft__backend *be, int64_t timeout_ns)
{
    weft__iocp *u = (weft__iocp *)be;
    uint64_t end = timeout_ns > 0 ? weft__clock_ns() + (uint64_t)timeout_ns : 0;
    int64_t left = timeout_ns;
    for (;;) {
        DWORD ms;
        if (left < 0)
            ms = INFINITE;
        else if ((uint64_t)left >= (uint64_t)(INFINITE - 1) * 1000000u)
            ms = INFINITE - 1;
        else
            ms = (DWORD)(((uint64_t)left + 999999u) / 1000000u); /* rounded up: never early */
        ULONG n = 0;
        if (GetQueuedCompletionStatusEx(u->port, u->ents, WEFT__IOCP_BATCH, &n, ms, FALSE)) {
            handle_batch(u, n);
            return 0;
        }
        DWORD err = GetLastError();
        if (err != WAIT_TIMEOUT)
            return err == WAIT_IO_COMPLETION ? 0 : weft__win_error(err);
        if (timeout_ns <= 0)
            return 0;
        /* Windows and wine may return a little early: wait out the rest. */
        uint64_t now = weft__clock_ns();
        if (now >= end)
            return 0;
        left = (int64_t)(end - now);
    }
}

static int iocp_wake(weft__backend *be)
{
    weft__iocp *u = (weft__iocp *)be;
    if (atomic_exchange_explicit(&u->wake_posted, 1, memory_order_seq_cst))
        return 0; /* one packet is on its way already */
    if (PostQueuedCompletionStatus(u->port, 0, KEY_WAKE, NULL))
        return 0;
    atomic_store_explicit(&u->wake_posted, 0, memory_order_seq_cst);
    return weft__win_error(GetLastError());
}

/* Cancel everything in flight and take every packet: once the loop is
 * freed, the system must hold no pointer into an op. */
static void drain(weft__iocp *u)
{
    u->closing = 1;
    weft__iocp_multi_drop_idle(u);
    for (uint32_t i = 0; i < u->cap; i++)
        if (u->tab[i].s != INVALID_SOCKET && u->tab[i].mode == WEFT__SOCK_PORT)
            CancelIoEx((HANDLE)u->tab[i].s, NULL);
    if (u->afd)
        CancelIoEx(u->afd, NULL);
    while (u->nreqs) {
        ULONG n = 0;
        /* Cancelled requests complete soon; a second for a slow one, then
         * cancel again in case one started meanwhile (a re-armed poll). */
        if (GetQueuedCompletionStatusEx(u->port, u->ents, WEFT__IOCP_BATCH, &n, 1000, FALSE)) {
            handle_batch(u, n);
        } else if (GetLastError() == WAIT_TIMEOUT) {
            if (u->afd)
                CancelIoEx(u->afd, NULL);
        } else {
            break; /* the port is broken: nothing more will come */
        }
    }
}

static void iocp_fini(weft__backend *be)
{
    weft__iocp *u = (weft__iocp *)be;
    if (u->port)
        drain(u);
    /* Accepted sockets nobody took are in done_ops; the loop drops those
     * ops. Slots on the free list hold no socket. */
    weft__iocp_multi_fini(u);
    for (size_t i = 0; i < u->nchunks; i++)
        free(u->chunks[i]);
    free(u->chunks);
    free(u->tab);
    if (u->afd)
        CloseHandle(u->afd);
    if (u->port)
        CloseHandle(u->port);
}

/* The Winsock extension functions, from a socket of the provider in use. */
static int get_ext(SOCKET s, GUID guid, void *fn, size_t size)
{
    DWORD bytes = 0;
    if (WSAIoctl(s, SIO_GET_EXTENSION_FUNCTION_POINTER, &guid, sizeof guid, fn, (DWORD)size, &bytes,
                 NULL, NULL) != 0)
        return weft__sock_error();
    return 0;
}

static int iocp_init(weft__backend *be, const weft_loop_opts *opts)
{
    (void)opts;
    weft__iocp *u = (weft__iocp *)be;
    int rc = weft__net_startup();
    if (rc)
        return rc;
    /* One probe socket: the extension functions and whether the provider
     * is an IFS one (no layered provider that breaks skip-on-success). */
    SOCKET s = WSASocketW(AF_INET, SOCK_STREAM, IPPROTO_TCP, NULL, 0,
                          WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
    if (s == INVALID_SOCKET)
        return weft__sock_error();
    WSAPROTOCOL_INFOW pi;
    int pilen = sizeof pi;
    if (getsockopt(s, SOL_SOCKET, SO_PROTOCOL_INFOW, (char *)&pi, &pilen) == 0)
        u->ifs = (pi.dwServiceFlags1 & XP1_IFS_HANDLES) != 0;
    GUID g_accept = WSAID_ACCEPTEX, g_connect = WSAID_CONNECTEX,
         g_addrs = WSAID_GETACCEPTEXSOCKADDRS;
    if ((rc = get_ext(s, g_accept, &u->acceptex, sizeof u->acceptex)) != 0 ||
        (rc = get_ext(s, g_connect, &u->connectex, sizeof u->connectex)) != 0 ||
        (rc = get_ext(s, g_addrs, &u->getaddrs, sizeof u->getaddrs)) != 0) {
        closesocket(s);
        return rc;
    }
    closesocket(s);
    HMODULE ntdll = GetModuleHandleA("ntdll.dll");
    if (ntdll) {
        u->nt_create_file =
            (weft__nt_create_file_fn)(void (*)(void))GetProcAddress(ntdll, "NtCreateFile");
        u->nt_ioctl =
            (weft__nt_ioctl_fn)(void (*)(void))GetProcAddress(ntdll, "NtDeviceIoControlFile");
        u->nt_cancel =
            (weft__nt_cancel_fn)(void (*)(void))GetProcAddress(ntdll, "NtCancelIoFileEx");
    }
    u->port = CreateIoCompletionPort(INVALID_HANDLE_VALUE, NULL, 0, 1);
    if (!u->port)
        return weft__win_error(GetLastError());
    return 0;
}

static int iocp_info(const weft__backend *be, char *buf, size_t size)
{
    const weft__iocp *u = (const weft__iocp *)be;
    const char *afd = u->afd                               ? "open"
                      : u->afd_err                         ? "unavailable"
                      : (u->nt_create_file && u->nt_ioctl) ? "available (opened on first poll)"
                                                           : "unavailable (no ntdll entry points)";
    return snprintf(buf, size,
                    "GetQueuedCompletionStatusEx batch %d, skip-on-success %s, AFD poll %s",
                    WEFT__IOCP_BATCH, u->ifs ? "on (IFS provider)" : "off (non-IFS provider)", afd);
}

int weft__iocp_counts(weft_loop *loop, uint64_t *update_accept, uint64_t *update_connect)
{
    if (!loop || loop->backend->vt != &weft__iocp_vtable)
        return -EINVAL;
    const weft__iocp *u = (const weft__iocp *)loop->backend;
    if (update_accept)
        *update_accept = u->n_update_accept;
    if (update_connect)
        *update_connect = u->n_update_connect;
    return 0;
}

const weft__vtable weft__iocp_vtable = {
    .name = "iocp",
    .kind = WEFT_BACKEND_IOCP,
    .size = sizeof(weft__iocp),
    .init = iocp_init,
    .fini = iocp_fini,
    .submit = iocp_submit,
    .cancel = iocp_cancel,
    .forget_fd = iocp_forget_fd,
    .poll = iocp_poll,
    .wake = iocp_wake,
    .info = iocp_info,
    .multi_start = weft__iocp_multi_start,
    .multi_cancel = weft__iocp_multi_cancel,
    .bufs_setup = weft__iocp_bufs_setup,
    .buf_put = weft__iocp_buf_put,
};
