/* Socket calls whose spelling differs between POSIX and Windows. */
#include "sys.h"

#include <errno.h>

#ifdef _WIN32

int weft__sock_error(void)
{
    return weft__win_error((unsigned long)WSAGetLastError());
}

int weft__sock_close(int fd)
{
    return closesocket(weft__sock(fd)) == 0 ? 0 : weft__sock_error();
}

int weft__sock_nonblock(int fd)
{
    u_long on = 1;
    return ioctlsocket(weft__sock(fd), FIONBIO, &on) == 0 ? 0 : weft__sock_error();
}

static INIT_ONCE net_once = INIT_ONCE_STATIC_INIT;
static int net_startup_rc;

static BOOL CALLBACK start_winsock(PINIT_ONCE once, PVOID param, PVOID *ctx)
{
    (void)once, (void)param, (void)ctx;
    WSADATA wsa;
    int rc = WSAStartup(MAKEWORD(2, 2), &wsa);
    net_startup_rc = rc ? weft__win_error((unsigned long)rc) : 0;
    return TRUE;
}

/* The one piece of process-wide state: Winsock must be started before the
 * first socket call, whoever makes it, and INIT_ONCE makes that race-free.
 * It is never stopped: WSACleanup at exit is what the system does anyway. */
int weft__net_startup(void)
{
    InitOnceExecuteOnce(&net_once, start_winsock, NULL, NULL);
    return net_startup_rc;
}

#else
#include <fcntl.h>
#include <unistd.h>

int weft__sock_error(void)
{
    return errno ? -errno : -EIO;
}

int weft__sock_close(int fd)
{
    return close(fd) == 0 ? 0 : -errno;
}

int weft__sock_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -errno;
    return 0;
}
#endif
