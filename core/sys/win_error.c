/* Windows: the one table from Win32 / Winsock / NTSTATUS codes to the
 * negative errno values weft returns on every system (mingw's <errno.h>
 * numbers, so weft_strerror() and weft_err_name() know them). Modelled on
 * libuv's uv_translate_sys_error and uv__ntstatus_to_winsock_error. */
#ifdef _WIN32
#include "sys.h"

#include <errno.h>
#include <winternl.h>

#ifndef STATUS_HANDLES_CLOSED
#define STATUS_HANDLES_CLOSED ((NTSTATUS)0x8000000AL)
#endif
#ifndef STATUS_CANCELLED
#define STATUS_CANCELLED ((NTSTATUS)0xC0000120L)
#endif

static const struct {
    unsigned long code;
    int err;
} win_errors[] = {
    {WSAEINTR, EINTR},
    {WSAEBADF, EBADF},
    {WSAEACCES, EACCES},
    {WSAEFAULT, EFAULT},
    {WSAEINVAL, EINVAL},
    {WSAEMFILE, EMFILE},
    {WSAEWOULDBLOCK, EAGAIN}, /* as on Linux, where they are one code */
    {WSAEINPROGRESS, EINPROGRESS},
    {WSAEALREADY, EALREADY},
    {WSAENOTSOCK, ENOTSOCK},
    {WSAEDESTADDRREQ, EDESTADDRREQ},
    {WSAEMSGSIZE, EMSGSIZE},
    {WSAEPROTOTYPE, EPROTOTYPE},
    {WSAENOPROTOOPT, ENOPROTOOPT},
    {WSAEPROTONOSUPPORT, EPROTONOSUPPORT},
    {WSAESOCKTNOSUPPORT, EPROTONOSUPPORT},
    {WSAEOPNOTSUPP, EOPNOTSUPP},
    {WSAEPFNOSUPPORT, EAFNOSUPPORT},
    {WSAEAFNOSUPPORT, EAFNOSUPPORT},
    {WSAEADDRINUSE, EADDRINUSE},
    {WSAEADDRNOTAVAIL, EADDRNOTAVAIL},
    {WSAENETDOWN, ENETDOWN},
    {WSAENETUNREACH, ENETUNREACH},
    {WSAENETRESET, ENETRESET},
    {WSAECONNABORTED, ECONNABORTED},
    {WSAECONNRESET, ECONNRESET},
    {WSAENOBUFS, ENOBUFS},
    {WSAEISCONN, EISCONN},
    {WSAENOTCONN, ENOTCONN},
    {WSAESHUTDOWN,
     EPIPE}, /* a send after shutdown: EPIPE on POSIX (wine says this after a peer's close) */
    {WSAETIMEDOUT, ETIMEDOUT},
    {WSAECONNREFUSED, ECONNREFUSED},
    {WSAELOOP, ELOOP},
    {WSAENAMETOOLONG, ENAMETOOLONG},
    {WSAEHOSTDOWN, EHOSTUNREACH},
    {WSAEHOSTUNREACH, EHOSTUNREACH},
    {WSAEPROCLIM, EAGAIN},
    {WSASYSNOTREADY, EAGAIN},
    {WSANOTINITIALISED, EPERM},
    {WSA_OPERATION_ABORTED, ECANCELED},
    {WSA_INVALID_HANDLE, EBADF},
    {WSA_NOT_ENOUGH_MEMORY, ENOMEM},
    {WSAHOST_NOT_FOUND, ENOENT},
    {WSATRY_AGAIN, EAGAIN},
    {WSANO_RECOVERY, EIO},
    {WSANO_DATA, ENOENT},
    {ERROR_ACCESS_DENIED, EACCES},
    {ERROR_INVALID_HANDLE, EBADF},
    {ERROR_NOT_ENOUGH_MEMORY, ENOMEM},
    {ERROR_OUTOFMEMORY, ENOMEM},
    {ERROR_INVALID_PARAMETER, EINVAL},
    {ERROR_INSUFFICIENT_BUFFER, ENOBUFS},
    {ERROR_BROKEN_PIPE, EPIPE},
    {ERROR_NO_DATA, EPIPE},
    {ERROR_HANDLE_EOF, EPIPE},
    {ERROR_NETNAME_DELETED, ECONNRESET}, /* a peer's reset during an overlapped call */
    {ERROR_OPERATION_ABORTED, ECANCELED},
    {ERROR_CONNECTION_REFUSED, ECONNREFUSED},
    {ERROR_CONNECTION_ABORTED, ECONNABORTED},
    {ERROR_NETWORK_UNREACHABLE, ENETUNREACH},
    {ERROR_HOST_UNREACHABLE, EHOSTUNREACH},
    {ERROR_PORT_UNREACHABLE, ECONNREFUSED},
    {ERROR_SEM_TIMEOUT, ETIMEDOUT},
    {ERROR_TIMEOUT, ETIMEDOUT},
    {ERROR_NOT_SUPPORTED, ENOTSUP},
    {ERROR_INVALID_FUNCTION, EINVAL},
    {ERROR_IO_PENDING, EINPROGRESS},
    {ERROR_NOT_FOUND, ENOENT},
    {ERROR_TOO_MANY_OPEN_FILES, EMFILE},
    {ERROR_ADDRESS_ALREADY_ASSOCIATED, EADDRINUSE},
    {ERROR_CONNECTION_INVALID, ENOTCONN},
    {ERROR_NETWORK_BUSY, EAGAIN},
    {ERROR_NOT_READY, EAGAIN}, /* an AcceptEx whose connection another accept() took (wine) */
    {ERROR_INVALID_NETNAME, EADDRNOTAVAIL},
    {ERROR_BAD_NETPATH, ENOENT},
    {ERROR_BAD_PIPE, EPIPE},
    {ERROR_PIPE_NOT_CONNECTED, ENOTCONN},
    {ERROR_BUFFER_OVERFLOW, EFAULT},
    {ERROR_FILENAME_EXCED_RANGE, ENAMETOOLONG},
};

int weft__win_error(unsigned long code)
{
    if (code == 0)
        return 0;
    for (size_t i = 0; i < sizeof win_errors / sizeof win_errors[0]; i++)
        if (win_errors[i].code == code)
            return -win_errors[i].err;
    return -EIO;
}

typedef ULONG(WINAPI *nt_to_dos_fn)(NTSTATUS);

int weft__nt_error(long status)
{
    if (status == STATUS_CANCELLED || status == STATUS_HANDLES_CLOSED)
        return -ECANCELED;
    if (status >= 0) /* success and the informational and warning classes */
        return 0;
    /* ntdll is in every process; looked up each time because errors are
     * rare and a cached pointer would be process-wide mutable state. */
    nt_to_dos_fn to_dos = (nt_to_dos_fn)(void (*)(void))GetProcAddress(
        GetModuleHandleA("ntdll.dll"), "RtlNtStatusToDosError");
    if (!to_dos)
        return -EIO;
    return weft__win_error(to_dos((NTSTATUS)status));
}
#endif
