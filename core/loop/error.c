/* Version string, error messages and error names. */
#include "weft.h"
#include "weft_config.h"

#include <errno.h>
#include <string.h>

const char *weft_version(void)
{
    return WEFT_VERSION;
}

#ifdef _WIN32
/* mingw's strerror knows only the C runtime's codes and says "Unknown
 * error" for the POSIX supplement's (100 to 140: ECONNRESET, ENOTSOCK, ...),
 * which are what a network library returns most. glibc's wording. */
static const char *win_net_message(int code)
{
    switch (code) {
    case EADDRINUSE:
        return "Address already in use";
    case EADDRNOTAVAIL:
        return "Cannot assign requested address";
    case EAFNOSUPPORT:
        return "Address family not supported by protocol";
    case EALREADY:
        return "Operation already in progress";
    case ECANCELED:
        return "Operation canceled";
    case ECONNABORTED:
        return "Software caused connection abort";
    case ECONNREFUSED:
        return "Connection refused";
    case ECONNRESET:
        return "Connection reset by peer";
    case EDESTADDRREQ:
        return "Destination address required";
    case EHOSTUNREACH:
        return "No route to host";
    case EINPROGRESS:
        return "Operation now in progress";
    case EISCONN:
        return "Transport endpoint is already connected";
    case ELOOP:
        return "Too many levels of symbolic links";
    case EMSGSIZE:
        return "Message too long";
    case ENETDOWN:
        return "Network is down";
    case ENETRESET:
        return "Network dropped connection on reset";
    case ENETUNREACH:
        return "Network is unreachable";
    case ENOBUFS:
        return "No buffer space available";
    case ENOPROTOOPT:
        return "Protocol not available";
    case ENOTCONN:
        return "Transport endpoint is not connected";
    case ENOTSOCK:
        return "Socket operation on non-socket";
    case ENOTSUP:
        return "Operation not supported";
    case EOPNOTSUPP:
        return "Operation not supported on socket";
    case EPROTONOSUPPORT:
        return "Protocol not supported";
    case EPROTOTYPE:
        return "Protocol wrong type for socket";
    case ETIMEDOUT:
        return "Connection timed out";
    case EWOULDBLOCK:
        return "Operation would block";
    case EOWNERDEAD:
        return "Owner died";
    case EPROTO:
        return "Protocol error";
    case EBADMSG:
        return "Bad message";
    case EIDRM:
        return "Identifier removed";
    case ENODATA:
        return "No data available";
    case ENOLINK:
        return "Link has been severed";
    case ENOMSG:
        return "No message of desired type";
    case ENOSR:
        return "Out of streams resources";
    case ENOSTR:
        return "Device not a stream";
    case ENOTRECOVERABLE:
        return "State not recoverable";
    case ETIME:
        return "Timer expired";
    case ETXTBSY:
        return "Text file busy";
    case EOVERFLOW:
        return "Value too large for defined data type";
    }
    return NULL;
}
#endif

const char *weft_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
    case WEFT_EUNKNOWN_BACKEND:
        return "unknown backend name (expected io_uring, epoll, kqueue, iocp, poll or auto)";
    case WEFT_ENOT_COMPILED:
        return "backend not compiled into this build of weft";
    case WEFT_EUNAVAILABLE:
        return "backend compiled in but not usable on this system";
    case WEFT_ECLOSED:
        return "closed";
    }
#ifdef _WIN32
    const char *net = win_net_message(-err);
    if (net)
        return net;
#endif
    if (err < 0 && err > -4000) {
        /* glibc, musl, mingw and the BSDs return static strings for known
         * codes; strerror is not reentrant only for unknown ones. */
        const char *s = strerror(-err);
        if (s)
            return s;
    }
    return "unknown error";
}

/* errno names, each where the system has it. Where two names share a value
 * (EAGAIN and EWOULDBLOCK on Linux) the first listed wins. */
static const struct {
    int code;
    const char *name;
} errno_names[] = {
#ifdef E2BIG
    {E2BIG, "E2BIG"},
#endif
#ifdef EACCES
    {EACCES, "EACCES"},
#endif
#ifdef EADDRINUSE
    {EADDRINUSE, "EADDRINUSE"},
#endif
#ifdef EADDRNOTAVAIL
    {EADDRNOTAVAIL, "EADDRNOTAVAIL"},
#endif
#ifdef EAFNOSUPPORT
    {EAFNOSUPPORT, "EAFNOSUPPORT"},
#endif
#ifdef EAGAIN
    {EAGAIN, "EAGAIN"},
#endif
#ifdef EALREADY
    {EALREADY, "EALREADY"},
#endif
#ifdef EBADF
    {EBADF, "EBADF"},
#endif
#ifdef EBADMSG
    {EBADMSG, "EBADMSG"},
#endif
#ifdef EBUSY
    {EBUSY, "EBUSY"},
#endif
#ifdef ECANCELED
    {ECANCELED, "ECANCELED"},
#endif
#ifdef ECHILD
    {ECHILD, "ECHILD"},
#endif
#ifdef ECONNABORTED
    {ECONNABORTED, "ECONNABORTED"},
#endif
#ifdef ECONNREFUSED
    {ECONNREFUSED, "ECONNREFUSED"},
#endif
#ifdef ECONNRESET
    {ECONNRESET, "ECONNRESET"},
#endif
#ifdef EDEADLK
    {EDEADLK, "EDEADLK"},
#endif
#ifdef EDESTADDRREQ
    {EDESTADDRREQ, "EDESTADDRREQ"},
#endif
#ifdef EDOM
    {EDOM, "EDOM"},
#endif
#ifdef EDQUOT
    {EDQUOT, "EDQUOT"},
#endif
#ifdef EEXIST
    {EEXIST, "EEXIST"},
#endif
#ifdef EFAULT
    {EFAULT, "EFAULT"},
#endif
#ifdef EFBIG
    {EFBIG, "EFBIG"},
#endif
#ifdef EHOSTDOWN
    {EHOSTDOWN, "EHOSTDOWN"},
#endif
#ifdef EHOSTUNREACH
    {EHOSTUNREACH, "EHOSTUNREACH"},
#endif
#ifdef EIDRM
    {EIDRM, "EIDRM"},
#endif
#ifdef EILSEQ
    {EILSEQ, "EILSEQ"},
#endif
#ifdef EINPROGRESS
    {EINPROGRESS, "EINPROGRESS"},
#endif
#ifdef EINTR
    {EINTR, "EINTR"},
#endif
#ifdef EINVAL
    {EINVAL, "EINVAL"},
#endif
#ifdef EIO
    {EIO, "EIO"},
#endif
#ifdef EISCONN
    {EISCONN, "EISCONN"},
#endif
#ifdef EISDIR
    {EISDIR, "EISDIR"},
#endif
#ifdef ELOOP
    {ELOOP, "ELOOP"},
#endif
#ifdef EMFILE
    {EMFILE, "EMFILE"},
#endif
#ifdef EMLINK
    {EMLINK, "EMLINK"},
#endif
#ifdef EMSGSIZE
    {EMSGSIZE, "EMSGSIZE"},
#endif
#ifdef ENAMETOOLONG
    {ENAMETOOLONG, "ENAMETOOLONG"},
#endif
#ifdef ENETDOWN
    {ENETDOWN, "ENETDOWN"},
#endif
#ifdef ENETRESET
    {ENETRESET, "ENETRESET"},
#endif
#ifdef ENETUNREACH
    {ENETUNREACH, "ENETUNREACH"},
#endif
#ifdef ENFILE
    {ENFILE, "ENFILE"},
#endif
#ifdef ENOBUFS
    {ENOBUFS, "ENOBUFS"},
#endif
#ifdef ENODATA
    {ENODATA, "ENODATA"},
#endif
#ifdef ENODEV
    {ENODEV, "ENODEV"},
#endif
#ifdef ENOENT
    {ENOENT, "ENOENT"},
#endif
#ifdef ENOEXEC
    {ENOEXEC, "ENOEXEC"},
#endif
#ifdef ENOLCK
    {ENOLCK, "ENOLCK"},
#endif
#ifdef ENOMEM
    {ENOMEM, "ENOMEM"},
#endif
#ifdef ENOMSG
    {ENOMSG, "ENOMSG"},
#endif
#ifdef ENOPROTOOPT
    {ENOPROTOOPT, "ENOPROTOOPT"},
#endif
#ifdef ENOSPC
    {ENOSPC, "ENOSPC"},
#endif
#ifdef ENOSYS
    {ENOSYS, "ENOSYS"},
#endif
#ifdef ENOTBLK
    {ENOTBLK, "ENOTBLK"},
#endif
#ifdef ENOTCONN
    {ENOTCONN, "ENOTCONN"},
#endif
#ifdef ENOTDIR
    {ENOTDIR, "ENOTDIR"},
#endif
#ifdef ENOTEMPTY
    {ENOTEMPTY, "ENOTEMPTY"},
#endif
#ifdef ENOTRECOVERABLE
    {ENOTRECOVERABLE, "ENOTRECOVERABLE"},
#endif
#ifdef ENOTSOCK
    {ENOTSOCK, "ENOTSOCK"},
#endif
#ifdef ENOTSUP
    {ENOTSUP, "ENOTSUP"},
#endif
#ifdef ENOTTY
    {ENOTTY, "ENOTTY"},
#endif
#ifdef ENXIO
    {ENXIO, "ENXIO"},
#endif
#ifdef EOPNOTSUPP
    {EOPNOTSUPP, "EOPNOTSUPP"},
#endif
#ifdef EOVERFLOW
    {EOVERFLOW, "EOVERFLOW"},
#endif
#ifdef EOWNERDEAD
    {EOWNERDEAD, "EOWNERDEAD"},
#endif
#ifdef EPERM
    {EPERM, "EPERM"},
#endif
#ifdef EPFNOSUPPORT
    {EPFNOSUPPORT, "EPFNOSUPPORT"},
#endif
#ifdef EPIPE
    {EPIPE, "EPIPE"},
#endif
#ifdef EPROTO
    {EPROTO, "EPROTO"},
#endif
#ifdef EPROTONOSUPPORT
    {EPROTONOSUPPORT, "EPROTONOSUPPORT"},
#endif
#ifdef EPROTOTYPE
    {EPROTOTYPE, "EPROTOTYPE"},
#endif
#ifdef ERANGE
    {ERANGE, "ERANGE"},
#endif
#ifdef EROFS
    {EROFS, "EROFS"},
#endif
#ifdef ESHUTDOWN
    {ESHUTDOWN, "ESHUTDOWN"},
#endif
#ifdef ESOCKTNOSUPPORT
    {ESOCKTNOSUPPORT, "ESOCKTNOSUPPORT"},
#endif
#ifdef ESPIPE
    {ESPIPE, "ESPIPE"},
#endif
#ifdef ESRCH
    {ESRCH, "ESRCH"},
#endif
#ifdef ESTALE
    {ESTALE, "ESTALE"},
#endif
#ifdef ETIME
    {ETIME, "ETIME"},
#endif
#ifdef ETIMEDOUT
    {ETIMEDOUT, "ETIMEDOUT"},
#endif
#ifdef ETOOMANYREFS
    {ETOOMANYREFS, "ETOOMANYREFS"},
#endif
#ifdef ETXTBSY
    {ETXTBSY, "ETXTBSY"},
#endif
#ifdef EWOULDBLOCK
    {EWOULDBLOCK, "EWOULDBLOCK"},
#endif
#ifdef EXDEV
    {EXDEV, "EXDEV"},
#endif
};

const char *weft_err_name(int err)
{
    switch (err) {
    case WEFT_EUNKNOWN_BACKEND:
        return "WEFT_EUNKNOWN_BACKEND";
    case WEFT_ENOT_COMPILED:
        return "WEFT_ENOT_COMPILED";
    case WEFT_EUNAVAILABLE:
        return "WEFT_EUNAVAILABLE";
    case WEFT_ECLOSED:
        return "WEFT_ECLOSED";
    }
    if (err >= 0 || err <= -4000) /* weft's errors are negative; -4000 and below are its own */
        return NULL;
    for (size_t i = 0; i < sizeof errno_names / sizeof errno_names[0]; i++)
        if (errno_names[i].code == -err)
            return errno_names[i].name;
    return NULL;
}
