/* The http_server's responses: see http_response.h. */
#include "http_response.h"

#include <stdio.h>
#include <string.h>

static const char hello_body[] = "Hello, World!";

void http_format_date(time_t t, char out[HTTP_DATE_LEN + 1])
{
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;
#ifdef _WIN32
    gmtime_s(&tm, &t); /* the C11 Annex K order: (result, time) */
#else
    gmtime_r(&t, &tm);
#endif
    /* Through a buffer with room for any int: at -O0 (a debug build, or
     * weft as a subproject of one) gcc cannot see that the fields are
     * small and -Wformat-truncation would fail the build. */
    char full[96];
    snprintf(full, sizeof full, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday % 7],
             tm.tm_mday, months[tm.tm_mon % 12], (tm.tm_year + 1900) % 10000, tm.tm_hour, tm.tm_min,
             tm.tm_sec);
    memcpy(out, full, HTTP_DATE_LEN);
    out[HTTP_DATE_LEN] = '\0';
}

void http_responses_update(http_responses *r, time_t t)
{
    if (r->hello_len[0] && r->when == t)
        return;
    r->when = t;
    http_format_date(t, r->date);
    static const char *conn[HTTP_CONN__COUNT] = {"", "Connection: keep-alive\r\n",
                                                 "Connection: close\r\n"};
    for (int m = 0; m < HTTP_CONN__COUNT; m++) {
        int n = snprintf(r->hello[m], HTTP_HELLO_MAX,
                         "HTTP/1.1 200 OK\r\nServer: weft\r\nContent-Type: text/plain\r\n"
                         "Content-Length: %zu\r\nDate: %s\r\n%s\r\n%s",
                         sizeof hello_body - 1, r->date, conn[m], hello_body);
        r->hello_len[m] = n > 0 && n < HTTP_HELLO_MAX ? (size_t)n : 0;
    }
}

const char *http_hello(const http_responses *r, http_conn mode, int head, size_t *len)
{
    if ((unsigned)mode >= HTTP_CONN__COUNT)
        mode = HTTP_CONN_CLOSE;
    *len = r->hello_len[mode] - (head ? sizeof hello_body - 1 : 0);
    return r->hello[mode];
}

size_t http_error_response(const http_responses *r, int status, char *dst, size_t room)
{
    const char *reason;
    switch (status) {
    case 431:
        reason = "Request Header Fields Too Large";
        break;
    case 501:
        reason = "Not Implemented";
        break;
    case 505:
        reason = "HTTP Version Not Supported";
        break;
    default:
        status = 400;
        reason = "Bad Request";
        break;
    }
    int n = snprintf(dst, room,
                     "HTTP/1.1 %d %s\r\nServer: weft\r\nContent-Type: text/plain\r\n"
                     "Content-Length: %zu\r\nDate: %s\r\nConnection: close\r\n\r\n%s\n",
                     status, reason, strlen(reason) + 1, r->date, reason);
    if (n < 0)
        return 0;
    return (size_t)n < room ? (size_t)n : room - 1;
}
