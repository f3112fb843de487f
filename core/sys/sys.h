/* The system layer: the few socket calls whose spelling differs between
 * POSIX and Windows, and on Windows the one table that turns Win32, Winsock
 * and NTSTATUS codes into the negative errno values weft returns everywhere.
 * Used by the backends and net/; knows nothing of loops or ops.
 *
 * A socket is an int on every system. On Windows it is the SOCKET's value:
 * 64-bit Windows keeps handles within 32 bits so that they may be truncated
 * and sign-extended (Microsoft, "Interprocess Communication" in the 64-bit
 * programming guide), and weft_sock_handle() turns it back. */
#ifndef WEFT_SYS_H
#define WEFT_SYS_H

#include <stdint.h>

#ifdef _WIN32
#include <winsock2.h>
#include <windows.h>

/* The SOCKET behind a weft descriptor (sign extension keeps -1 as
 * INVALID_SOCKET). */
static inline SOCKET weft__sock(int fd)
{
    return (SOCKET)(intptr_t)fd;
}

/* A SOCKET as a weft descriptor, or -1 for INVALID_SOCKET. */
static inline int weft__sock_fd(SOCKET s)
{
    return s == INVALID_SOCKET ? -1 : (int)(intptr_t)s;
}

/* Win32 error or Winsock error (they share one number space) as a negative
 * errno; -EIO for a code the table lacks, 0 for 0. */
int weft__win_error(unsigned long code);

/* An NTSTATUS (what OVERLAPPED.Internal holds) as a negative errno: 0 for
 * success and warning-free statuses, the cancel-like statuses
 * (STATUS_CANCELLED, and wine's STATUS_HANDLES_CLOSED on closesocket) as
 * -ECANCELED. */
int weft__nt_error(long status);

/* Start Winsock once per process (Winsock counts its users itself).
 * 0 or a negative errno. */
int weft__net_startup(void);
#endif

/* The last failed socket call's error as a negative errno (errno on
 * POSIX, WSAGetLastError() on Windows). */
int weft__sock_error(void);

/* Close a socket; 0 or a negative errno. */
int weft__sock_close(int fd);

/* Make a socket non-blocking; 0 or a negative errno. */
int weft__sock_nonblock(int fd);

#endif
