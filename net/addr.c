/* Addresses: parsing, building and formatting IPv4, IPv6 and Unix-domain
 * socket addresses. No name lookups here (resolve.c). */
#include "net_internal.h"

#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifndef _WIN32
#include <arpa/inet.h>
#include <netinet/in.h>
#endif

int weft__addr_ok(const weft_addr *a)
{
    if (!a || a->len < sizeof a->ss.ss_family || a->len > sizeof a->ss)
        return 0;
    switch (a->ss.ss_family) {
    case AF_INET:
        return a->len >= sizeof(struct sockaddr_in);
    case AF_INET6:
        return a->len >= sizeof(struct sockaddr_in6);
    case AF_UNIX:
        return 1;
    }
    return 0;
}

/* inet_pton / inet_ntop are Winsock calls: Winsock must be started first
 * (if it cannot start, they fail and say why: -EINVAL). */
static void winsock_start(void)
{
#ifdef _WIN32
    weft__net_startup();
#endif
}

/* A decimal port 0..65535, the whole string. -1 if not. */
static int parse_port(const char *s)
{
    if (!*s || strlen(s) > 5)
        return -1;
    int v = 0;
    for (; *s; s++) {
        if (!isdigit((unsigned char)*s))
            return -1;
        v = v * 10 + (*s - '0');
    }
    return v <= 65535 ? v : -1;
}

int weft_addr_ip(weft_addr *out, const char *ip, int port)
{
    if (!out || !ip || port < 0 || port > 65535)
        return -EINVAL;
    winsock_start();
    memset(out, 0, sizeof *out);
    struct sockaddr_in *v4 = (struct sockaddr_in *)&out->ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&out->ss;
    if (inet_pton(AF_INET, ip, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        out->len = sizeof *v4;
        return 0;
    }
    memset(out, 0, sizeof *out);
    if (inet_pton(AF_INET6, ip, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        out->len = sizeof *v6;
        return 0;
    }
    memset(out, 0, sizeof *out);
    return -EINVAL;
}

int weft_addr_unix(weft_addr *out, const char *path)
{
    if (!out || !path || !*path)
        return -EINVAL;
    memset(out, 0, sizeof *out);
    struct sockaddr_un *un = (struct sockaddr_un *)&out->ss;
    size_t n = strlen(path);
    if (n >= sizeof un->sun_path)
        return -ENAMETOOLONG;
    un->sun_family = AF_UNIX;
    memcpy(un->sun_path, path, n);
    out->len = (uint32_t)(offsetof(struct sockaddr_un, sun_path) + n);
    if (path[0] == '@')
        un->sun_path[0] = '\0'; /* Linux abstract namespace: no trailing NUL counted */
    else
        out->len++; /* the NUL */
    return 0;
}

int weft_addr_parse(weft_addr *out, const char *str)
{
    if (!out || !str)
        return -EINVAL;
    if (strncmp(str, "unix:", 5) == 0)
        return weft_addr_unix(out, str + 5);
    char host[INET6_ADDRSTRLEN + 1];
    const char *port;
    if (str[0] == '[') {
        const char *end = strchr(str, ']');
        if (!end || end[1] != ':' || (size_t)(end - str - 1) >= sizeof host)
            return -EINVAL;
        memcpy(host, str + 1, (size_t)(end - str - 1));
        host[end - str - 1] = '\0';
        if (!strchr(host, ':'))
            return -EINVAL; /* brackets are for IPv6 only */
        port = end + 2;
    } else {
        const char *colon = strrchr(str, ':');
        if (!colon || colon == str || (size_t)(colon - str) >= sizeof host)
            return -EINVAL;
        memcpy(host, str, (size_t)(colon - str));
        host[colon - str] = '\0';
        if (strchr(host, ':'))
            return -EINVAL; /* an IPv6 address needs brackets */
        port = colon + 1;
    }
    int p = parse_port(port);
    if (p < 0)
        return -EINVAL;
    return weft_addr_ip(out, host, p);
}

int weft_addr_format(const weft_addr *a, char *buf, size_t size)
{
    if (!a || (!buf && size))
        return -EINVAL;
    if (!weft__addr_ok(a))
        return a->len ? -EAFNOSUPPORT : -EINVAL;
    winsock_start();
    char host[INET6_ADDRSTRLEN];
    switch (a->ss.ss_family) {
    case AF_INET: {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)&a->ss;
        inet_ntop(AF_INET, &v4->sin_addr, host, sizeof host);
        return snprintf(buf, size, "%s:%u", host, ntohs(v4->sin_port));
    }
    case AF_INET6: {
        const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)&a->ss;
        inet_ntop(AF_INET6, &v6->sin6_addr, host, sizeof host);
        return snprintf(buf, size, "[%s]:%u", host, ntohs(v6->sin6_port));
    }
    default: { /* AF_UNIX */
        const struct sockaddr_un *un = (const struct sockaddr_un *)&a->ss;
        size_t off = offsetof(struct sockaddr_un, sun_path);
        size_t n = a->len > off ? a->len - off : 0;
        if (n > sizeof un->sun_path)
            n = sizeof un->sun_path;
        if (n == 0)
            return snprintf(buf, size, "unix:");
        if (un->sun_path[0] == '\0') /* abstract */
            return snprintf(buf, size, "unix:@%.*s", (int)(n - 1), un->sun_path + 1);
        return snprintf(buf, size, "unix:%.*s", (int)strnlen(un->sun_path, n), un->sun_path);
    }
    }
}

int weft_addr_port(const weft_addr *a)
{
    if (!a)
        return -EINVAL;
    if (!weft__addr_ok(a))
        return a->len ? -EAFNOSUPPORT : -EINVAL;
    if (a->ss.ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
    if (a->ss.ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)&a->ss)->sin6_port);
    return -EAFNOSUPPORT;
}

int weft_addr_family(const weft_addr *a)
{
    if (!weft__addr_ok(a))
        return -EINVAL;
    return a->ss.ss_family;
}
