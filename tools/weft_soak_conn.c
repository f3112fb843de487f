/* weft-soak: one connection's life (connect, requests verified byte by
 * byte, an end drawn at random) on an edge-triggered epoll. */
#include "weft_soak.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

static const char http_req[] = "GET / HTTP/1.1\r\nHost: soak\r\n\r\n";

uint64_t ws_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t ws_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Byte i of request `req` of connection `serial`: what the echo must return. */
static unsigned char pattern(uint64_t serial, int req, size_t i)
{
    uint64_t x = (serial << 20 ^ (uint64_t)req << 44) + i * 0x9E3779B97F4A7C15ull;
    x ^= x >> 29;
    x *= 0xBF58476D1CE4E5B9ull;
    return (unsigned char)(x >> 56);
}

void ws_fail(ws_client *k, ws_conn *c, const char *what, int err)
{
    if (k->st.first_what[0])
        return;
    snprintf(k->st.first_what, sizeof k->st.first_what, "%s (connection %llu, request %d)", what,
             c ? (unsigned long long)c->serial : 0ull, c ? c->done + 1 : 0);
    k->st.first_err = err;
}

/* Take thinking connection c out of its wheel slot (a few entries). */
static void wheel_remove(ws_client *k, ws_conn *c)
{
    int me = (int)(c - k->c);
    for (int *p = &k->wheel[c->wake_ms % WS_WHEEL]; *p >= 0; p = &k->c[*p].next)
        if (*p == me) {
            *p = c->next;
            return;
        }
}

/* Close c's socket (an RST if reset) and give its slot back. */
static void conn_free(ws_client *k, ws_conn *c, int reset)
{
    if (c->state == WS_THINK)
        wheel_remove(k, c);
    if (reset) {
        struct linger l = {.l_onoff = 1, .l_linger = 0};
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    }
    if (c->state == WS_CONNECTING)
        k->connecting--;
    close(c->fd);
    c->fd = -1;
    c->state = WS_FREE;
    k->free_slots[k->nfree++] = (int)(c - k->c);
}

static void conn_end(ws_client *k, ws_conn *c)
{
    k->st.finished++;
    k->st.ends[c->end]++;
    conn_free(k, c, c->end == WS_END_RESET || c->end == WS_END_MIDRESET);
}

int ws_conn_open(ws_client *k, ws_conn *c)
{
    const ws_config *cfg = k->cfg;
    c->fd = socket(k->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        k->st.connect_err++;
        ws_fail(k, NULL, "socket", errno);
        return -1;
    }
    c->serial = k->st.opened++;
    c->state = WS_CONNECTING;
    c->last_ns = ws_now_ns();
    k->connecting++;
    if (cfg->source_ips > 0 && k->addr.ss_family == AF_INET) {
        int one = 1;
        setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        struct sockaddr_in src = {.sin_family = AF_INET};
        src.sin_addr.s_addr =
            htonl(0x7f000001u + (uint32_t)(c->serial % (uint64_t)cfg->source_ips));
        if (bind(c->fd, (struct sockaddr *)&src, sizeof src) < 0) {
            k->st.connect_err++;
            ws_fail(k, c, "bind", errno);
            conn_free(k, c, 0);
            return 0;
        }
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c};
    if (epoll_ctl(k->epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
        k->st.connect_err++;
        ws_fail(k, c, "epoll_ctl", errno);
        conn_free(k, c, 0);
        return 0;
    }
    if (connect(c->fd, (struct sockaddr *)&k->addr, k->addr_len) < 0 && errno != EINPROGRESS) {
        k->st.connect_err++;
        ws_fail(k, c, "connect", errno);
        conn_free(k, c, 0);
    }
    return 0; /* the connect completes with EPOLLOUT */
}

static size_t request_len(const ws_client *k, const ws_conn *c)
{
    return k->cfg->proto == WS_ECHO ? c->len : sizeof http_req - 1;
}

/* Send what is left of the request, up to `upto` bytes of it. 0, or -1
 * when the connection failed (and was freed). */
static int pump(ws_client *k, ws_conn *c, size_t upto)
{
    while (c->tx < upto) {
        size_t n = upto - c->tx;
        const char *p;
        if (k->cfg->proto == WS_ECHO) {
            if (n > sizeof k->buf)
                n = sizeof k->buf;
            for (size_t i = 0; i < n; i++)
                k->buf[i] = (char)pattern(c->serial, c->done, c->tx + i);
            p = k->buf;
        } else {
            p = http_req + c->tx;
        }
        ssize_t r = send(c->fd, p, n, MSG_NOSIGNAL);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                return 0; /* EPOLLOUT resumes */
            k->st.early_end++;
            ws_fail(k, c, "send", errno);
            conn_free(k, c, 0);
            return -1;
        }
        c->tx += (size_t)r;
        c->last_ns = ws_now_ns();
    }
    return 0;
}

/* The next request, or the connection's end. */
static void next_request(ws_client *k, ws_conn *c)
{
    if (c->done == c->requests || k->stopping) {
        if (c->end == WS_END_EOF) {
            shutdown(c->fd, SHUT_WR);
            c->state = WS_WAIT_EOF;
            return;
        }
        if (c->end == WS_END_MIDRESET) /* stopping before its last request */
            c->end = WS_END_RESET;
        conn_end(k, c);
        return;
    }
    c->state = WS_REQUEST;
    c->len = 1 + (size_t)(ws_rand(&k->rng) % k->cfg->max_size);
    c->tx = c->rx = c->head_len = c->body_len = c->body_rx = 0;
    if (c->end == WS_END_MIDRESET && c->done + 1 == c->requests) {
        /* Half the request, or all of it unanswered, then the reset. */
        size_t len = request_len(k, c);
        if (pump(k, c, len / 2 ? len / 2 : len) == 0)
            conn_end(k, c);
        return;
    }
    pump(k, c, request_len(k, c));
}

static void connected(ws_client *k, ws_conn *c)
{
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) {
        k->st.connect_err++;
        ws_fail(k, c, "connect", err);
        conn_free(k, c, 0);
        return;
    }
    k->connecting--;
    c->state = WS_REQUEST;
    c->last_ns = ws_now_ns();
    c->done = 0;
    c->requests = 1 + (int)(ws_rand(&k->rng) % (uint64_t)k->cfg->max_requests);
    int r = (int)(ws_rand(&k->rng) % 100);
    const ws_config *cfg = k->cfg;
    c->end = r < cfg->pct_midreset                                   ? WS_END_MIDRESET
             : r < cfg->pct_midreset + cfg->pct_reset                ? WS_END_RESET
             : r < cfg->pct_midreset + cfg->pct_reset + cfg->pct_eof ? WS_END_EOF
                                                                     : WS_END_CLOSE;
    next_request(k, c);
}

static void wheel_add(ws_client *k, ws_conn *c)
{
    int *slot = &k->wheel[c->wake_ms % WS_WHEEL];
    c->next = *slot;
    *slot = (int)(c - k->c);
}

void ws_wheel_run(ws_client *k, uint64_t now_ns)
{
    uint64_t now = now_ns / 1000000u;
    if (now - k->wheel_ms > WS_WHEEL)
        k->wheel_ms = now - WS_WHEEL; /* fell behind: every slot once */
    for (; k->wheel_ms <= now; k->wheel_ms++) {
        int *slot = &k->wheel[k->wheel_ms % WS_WHEEL];
        int i = *slot;
        *slot = -1;
        while (i >= 0) {
            ws_conn *c = &k->c[i];
            i = c->next;
            if (c->wake_ms > now) {
                wheel_add(k, c); /* a lap later */
                continue;
            }
            c->last_ns = now_ns;
            next_request(k, c);
        }
    }
}

/* A response is complete: count it and go on, after a pause if set. */
static void response_done(ws_client *k, ws_conn *c, size_t bytes)
{
    c->done++;
    k->st.requests++;
    k->st.bytes += bytes;
    if (k->cfg->think_ms && c->done < c->requests && !k->stopping) {
        c->state = WS_THINK;
        c->wake_ms = ws_now_ns() / 1000000u + ws_rand(&k->rng) % (uint64_t)(k->cfg->think_ms + 1);
        wheel_add(k, c);
        return;
    }
    next_request(k, c);
}

static void mismatch(ws_client *k, ws_conn *c, const char *what)
{
    k->st.mismatch++;
    ws_fail(k, c, what, 0);
    conn_free(k, c, 1);
}

/* Echo: every byte must be the next one sent. */
static void echo_bytes(ws_client *k, ws_conn *c, const char *p, size_t n)
{
    if (c->rx + n > c->tx) {
        mismatch(k, c, "echo: more bytes than were sent");
        return;
    }
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)p[i] != pattern(c->serial, c->done, c->rx + i)) {
            mismatch(k, c, "echo: a byte differs");
            return;
        }
    c->rx += n;
    if (c->rx == c->len)
        response_done(k, c, c->len);
}

/* The value of header `name` (lower case, with its colon) in head, or -1. */
static long header_num(const char *head, size_t len, const char *name)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i + nl < len; i++) {
        if (head[i] != '\n')
            continue;
        size_t j = 0;
        while (j < nl && (head[i + 1 + j] | 0x20) == name[j])
            j++;
        if (j == nl)
            return strtol(head + i + 1 + nl, NULL, 10);
    }
    return -1;
}

/* HTTP: a head (status 200, the body's length), then the expected body. */
static void http_bytes(ws_client *k, ws_conn *c, const char *p, size_t n)
{
    size_t want = strlen(k->cfg->body);
    while (n) {
        if (c->body_len == 0) { /* in the head */
            while (n && c->head_len < sizeof c->head - 1) {
                c->head[c->head_len++] = *p++;
                n--;
                if (c->head_len >= 4 && memcmp(c->head + c->head_len - 4, "\r\n\r\n", 4) == 0)
                    break;
            }
            if (c->head_len < 4 || memcmp(c->head + c->head_len - 4, "\r\n\r\n", 4) != 0) {
                if (c->head_len == sizeof c->head - 1)
                    mismatch(k, c, "http: head too long");
                return;
            }
            c->head[c->head_len] = 0;
            if (strncmp(c->head, "HTTP/1.1 200 OK\r\n", 17) != 0 ||
                header_num(c->head, c->head_len, "content-length:") != (long)want || !want) {
                mismatch(k, c, "http: not a 200 with the expected length");
                return;
            }
            c->body_len = want;
        }
        size_t take = n < c->body_len - c->body_rx ? n : c->body_len - c->body_rx;
        if (memcmp(p, k->cfg->body + c->body_rx, take) != 0) {
            mismatch(k, c, "http: the body differs");
            return;
        }
        c->body_rx += take;
        p += take;
        n -= take;
        if (c->body_rx == c->body_len) {
            if (n) {
                mismatch(k, c, "http: bytes after the response");
                return;
            }
            response_done(k, c, c->head_len + c->body_len);
            return;
        }
    }
}

static void readable(ws_client *k, ws_conn *c)
{
    for (;;) {
        ssize_t r = recv(c->fd, k->buf, sizeof k->buf, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                return;
        }
        if (r <= 0) {
            int err = r < 0 ? errno : 0;
            if (c->state == WS_WAIT_EOF && r == 0) {
                conn_end(k, c);
            } else if (c->state == WS_WAIT_EOF) {
                k->st.no_eof++;
                ws_fail(k, c, "a reset, not an end, after our half-close", err);
                conn_free(k, c, 0);
            } else {
                k->st.early_end++;
                ws_fail(k, c, r ? "the server reset mid-request" : "the server ended mid-request",
                        err);
                conn_free(k, c, 0);
            }
            return;
        }
        c->last_ns = ws_now_ns();
        if (c->state != WS_REQUEST) {
            mismatch(k, c, "bytes after the last response");
            return;
        }
        int fd = c->fd;
        if (k->cfg->proto == WS_ECHO)
            echo_bytes(k, c, k->buf, (size_t)r);
        else
            http_bytes(k, c, k->buf, (size_t)r);
        if (c->fd != fd || c->state != WS_REQUEST)
            return; /* freed, or waiting for the end: a new edge will come */
    }
}

void ws_conn_event(ws_client *k, ws_conn *c, uint32_t events)
{
    if (c->state == WS_CONNECTING) {
        if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
            return;
        connected(k, c);
        if (c->state == WS_FREE)
            return;
    }
    if ((events & EPOLLOUT) && c->state == WS_REQUEST && pump(k, c, request_len(k, c)) < 0)
        return;
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP))
        readable(k, c);
}

void ws_conn_stall(ws_client *k, ws_conn *c)
{
    if (c->state == WS_WAIT_EOF) {
        k->st.no_eof++;
        ws_fail(k, c, "no end from the server after our half-close", 0);
    } else {
        k->st.stalled++;
        ws_fail(k, c, c->state == WS_CONNECTING ? "connect stalled" : "request stalled", 0);
    }
    conn_free(k, c, 1);
}
