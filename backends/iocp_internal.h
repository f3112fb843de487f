/* The IOCP backend's private state, shared by iocp.c (single ops, the
 * port, the socket set) and iocp_multi.c (multishot). Windows only. */
#ifndef WEFT_IOCP_INTERNAL_H
#define WEFT_IOCP_INTERNAL_H

#include "backend.h"
#include "buf_pool.h"
#include "list.h"
#include "sys.h"

#include <mswsock.h>
#include <stdatomic.h>
#include <winternl.h>
#include <ws2tcpip.h>

/* What an OVERLAPPED belongs to: every OVERLAPPED the backend hands the
 * system starts a weft__iocp_req, and the packet is routed by its kind,
 * never by socket (a closed socket's number may come back at once). */
enum {
    WEFT__REQ_OP = 1,    /* inside a weft_op (its win_ area) */
    WEFT__REQ_SLOT = 2,  /* an accept slot of a multishot accept */
    WEFT__REQ_MULTI = 3, /* a weft_multi's op_: zero-byte WSARecv or AFD poll */
};
/* How a request waits. */
enum {
    WEFT__HOW_SOCK = 1, /* an overlapped call on the socket itself */
    WEFT__HOW_AFD = 2,  /* IOCTL_AFD_POLL on the loop's AFD handle */
};

typedef struct weft__iocp_req {
    OVERLAPPED ov;
    uint8_t kind;
    uint8_t how;
    uint8_t stage; /* readiness-style connect: connect() was called */
    uint8_t pad_;
    uint32_t gen; /* the socket entry's generation when submitted */
} weft__iocp_req;

/* IOCTL_AFD_POLL's argument (not in mingw's headers; as in wepoll). */
typedef struct weft__afd_poll_handle {
    HANDLE handle;
    ULONG events;
    NTSTATUS status;
} weft__afd_poll_handle;

typedef struct weft__afd_poll_info {
    LARGE_INTEGER timeout;
    ULONG count;
    ULONG exclusive;
    weft__afd_poll_handle handles[1];
} weft__afd_poll_info;

enum {
    WEFT__AFD_RECEIVE = 0x0001,
    WEFT__AFD_SEND = 0x0004,
    WEFT__AFD_DISCONNECT = 0x0008,
    WEFT__AFD_ABORT = 0x0010,
    WEFT__AFD_LOCAL_CLOSE = 0x0020,
    WEFT__AFD_ACCEPT = 0x0080,
    WEFT__AFD_CONNECT_FAIL = 0x0100,
    /* What POLL_IN and POLL_OUT wait for (errors and a local close wake both). */
    WEFT__AFD_IN = WEFT__AFD_RECEIVE | WEFT__AFD_ACCEPT | WEFT__AFD_DISCONNECT | WEFT__AFD_ABORT |
                   WEFT__AFD_LOCAL_CLOSE | WEFT__AFD_CONNECT_FAIL,
    WEFT__AFD_OUT =
        WEFT__AFD_SEND | WEFT__AFD_CONNECT_FAIL | WEFT__AFD_ABORT | WEFT__AFD_LOCAL_CLOSE,
};

/* A pre-created socket and the address area AcceptEx writes into, from a
 * per-loop pool (grown in chunks, never per op). */
#define WEFT__ACCEPT_ADDR_ROOM (sizeof(SOCKADDR_STORAGE) + 16)
typedef struct weft__accept_slot {
    weft__iocp_req req;             /* multishot accept only: its own OVERLAPPED */
    struct weft__accept_slot *next; /* free list, or a multishot's slots */
    weft_multi *m;
    SOCKET sock;
    char addrs[2 * WEFT__ACCEPT_ADDR_ROOM];
} weft__accept_slot;

/* A weft_op's private area on Windows. */
typedef struct weft__iocp_op {
    weft__iocp_req req;
    union {
        struct {
            WSABUF wb;
            DWORD flags;
        } io;
        weft__afd_poll_info poll;
        weft__accept_slot *slot;
    } u;
} weft__iocp_op;

_Static_assert(sizeof(weft__iocp_op) <= sizeof(((weft_op *)0)->win_),
               "weft_op.win_ holds the OVERLAPPED and its call's arguments");

/* A socket this loop knows: validated once, associated with the port at
 * most once. Kept in an open-addressing hash set keyed by SOCKET. */
enum {
    WEFT__SOCK_NEW = 0,     /* not associated with this port (yet) */
    WEFT__SOCK_PORT = 1,    /* associated: overlapped calls complete here */
    WEFT__SOCK_FOREIGN = 2, /* owned by another port: AFD poll + non-blocking call */
};
typedef struct weft__sock_ent {
    SOCKET s;    /* INVALID_SOCKET: an empty slot */
    SOCKET base; /* SIO_BASE_HANDLE, what AFD polls name */
    uint32_t gen;
    uint8_t mode;
    uint8_t skip;      /* FILE_SKIP_COMPLETION_PORT_ON_SUCCESS is set */
    uint8_t type;      /* SOCK_STREAM, SOCK_DGRAM */
    uint8_t listening; /* SO_ACCEPTCONN was seen set */
    int af, proto;
} weft__sock_ent;

typedef NTSTATUS(NTAPI *weft__nt_create_file_fn)(PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES,
                                                 PIO_STATUS_BLOCK, PLARGE_INTEGER, ULONG, ULONG,
                                                 ULONG, ULONG, PVOID, ULONG);
typedef NTSTATUS(NTAPI *weft__nt_ioctl_fn)(HANDLE, HANDLE, PVOID, PVOID, PIO_STATUS_BLOCK, ULONG,
                                           PVOID, ULONG, PVOID, ULONG);
typedef NTSTATUS(NTAPI *weft__nt_cancel_fn)(HANDLE, PIO_STATUS_BLOCK, PIO_STATUS_BLOCK);

#define WEFT__IOCP_BATCH 128

typedef struct weft__iocp {
    weft__backend base;
    HANDLE port;
    HANDLE afd;  /* \Device\Afd\weft, opened on the first poll */
    int afd_err; /* why it could not be opened (0: not tried or open) */
    int closing; /* fini: nothing is re-armed */
    int ifs;     /* the TCP provider has XP1_IFS_HANDLES: skip-on-success usable */
    atomic_int wake_posted;

    LPFN_ACCEPTEX acceptex;
    LPFN_CONNECTEX connectex;
    LPFN_GETACCEPTEXSOCKADDRS getaddrs;
    weft__nt_create_file_fn nt_create_file;
    weft__nt_ioctl_fn nt_ioctl;
    weft__nt_cancel_fn nt_cancel;

    weft__sock_ent *tab; /* the socket set: cap a power of two, at most half full */
    uint32_t cap, len, next_gen;

    weft__list afd_ops; /* ops waiting for an AFD poll (to cancel on close) */
    uint64_t nreqs;     /* OVERLAPPEDs the system holds: fini waits for them all */

    weft__accept_slot *free_slots;
    void **chunks; /* the slot pool's allocations */
    size_t nchunks;

    /* Multishot (iocp_multi.c). */
    weft__list multis;   /* started, last result not yet posted */
    weft__buf_pool bufs; /* the loop's receive buffers */
    weft__list starved;  /* multishot recvs waiting for a buffer */

    /* For tests (weft__iocp_counts): the setsockopt calls wine does not need. */
    uint64_t n_update_accept, n_update_connect;

    OVERLAPPED_ENTRY ents[WEFT__IOCP_BATCH];
} weft__iocp;

/* Shared by iocp.c and iocp_multi.c. */
weft__sock_ent *weft__iocp_sock(weft__iocp *u, SOCKET s);
int weft__iocp_sock_add(weft__iocp *u, SOCKET s, int associate, int verify, weft__sock_ent **out);
weft__accept_slot *weft__iocp_slot_get(weft__iocp *u);
void weft__iocp_slot_put(weft__iocp *u, weft__accept_slot *slot);
/* 0 when ent's socket listens, else -EINVAL (what Windows' AcceptEx says;
 * wine's would wait for ever). Asked once per listener. */
int weft__iocp_listening(weft__sock_ent *ent);
/* AcceptEx into slot on listener ent; 1 done at once, 0 pending, < 0 error. */
int weft__iocp_acceptex(weft__iocp *u, weft__sock_ent *ent, weft__accept_slot *slot);
/* The accepted socket of a finished AcceptEx, ready for the caller (or an
 * error, the socket then closed). addr/room/addrlen: the peer address. */
int64_t weft__iocp_accept_done(weft__iocp *u, SOCKET listener, weft__accept_slot *slot, void *addr,
                               size_t room, uint32_t *addrlen);
/* Arm an AFD poll for op (its win_ area) on socket base: 0 (a packet will
 * come) or a negative error. Cancel it with weft__iocp_afd_cancel. */
int weft__iocp_afd_arm(weft__iocp *u, weft_op *op, SOCKET base, ULONG events);
void weft__iocp_afd_cancel(weft__iocp *u, weft_op *op);
/* op's non-blocking call (accept, recv, send, connect): the result, or
 * -EAGAIN when it would block. */
int64_t weft__iocp_try_now(weft__iocp *u, weft_op *op);
/* An NTSTATUS from an OVERLAPPED. */
static inline NTSTATUS weft__iocp_status(const OVERLAPPED *ov)
{
    return (NTSTATUS)(ULONG)(ov->Internal & 0xffffffffu);
}

int weft__iocp_multi_start(weft__backend *be, weft_multi *m);
int weft__iocp_multi_cancel(weft__backend *be, weft_multi *m);
int weft__iocp_bufs_setup(weft__backend *be, unsigned count, unsigned size);
void weft__iocp_buf_put(weft__backend *be, void *buf);
/* A packet for a multishot request. */
void weft__iocp_multi_packet(weft__iocp *u, weft__iocp_req *req);
/* fd is being closed: stop the multishot requests on it. */
void weft__iocp_multi_forget(weft__iocp *u, int fd);
/* fini: the requests no packet will end (paused, or waiting for their
 * kick_) are idle now; the others end as their packets come. */
void weft__iocp_multi_drop_idle(weft__iocp *u);
void weft__iocp_multi_fini(weft__iocp *u);

/* Test hook: how many SO_UPDATE_ACCEPT_CONTEXT / SO_UPDATE_CONNECT_CONTEXT
 * calls this loop's backend made and the system accepted. 0, or -EINVAL
 * when loop does not run on IOCP. */
int weft__iocp_counts(weft_loop *loop, uint64_t *update_accept, uint64_t *update_connect);

#endif
