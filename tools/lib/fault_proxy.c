/*
 * fault_proxy.c — see fault_proxy.h. One fp_link per accepted connection,
 * two fp_dirs per link (client->target, target->client). Each direction is
 * a FIFO of chunks read from its source, drained by at most one write in
 * flight to its destination; reading stops while the FIFO is full, the
 * link is blackholed or the source sent EOF.
 *
 * Link states: CONNECTING (client accepted, target being dialed; the client
 * is not read yet) -> OPEN -> CLOSING (handles closing; freed after the last
 * of its four close callbacks). Every callback checks the state first.
 */
#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <netinet/in.h>

#include "fault_proxy.h"

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

typedef struct fp_chunk {
  struct fp_chunk *next;
  uint64_t due_ns; /* uv_hrtime() at which it may leave */
  size_t len, off; /* bytes held, bytes already written */
  char data[];
} fp_chunk_t;

typedef enum { FP_CONNECTING, FP_OPEN, FP_CLOSING } fp_state_t;

struct fp_link;

typedef struct fp_dir {
  struct fp_link *link;
  uv_tcp_t *src, *dst;
  bool to_target;
  fp_chunk_t *head, *tail;
  size_t queued; /* bytes in the FIFO (including the one being written) */
  unsigned nchunks;
  uv_timer_t timer; /* latency: fires when the head chunk is due */
  uv_write_t wreq;
  size_t wlen;
  bool writing; /* wreq in flight */
  uv_shutdown_t sreq;
  bool reading;   /* uv_read_start active on src */
  bool throttled; /* FIFO was full: stay stopped until it drains to half */
  bool eof;       /* src sent EOF */
  bool shut;      /* shutdown issued on dst */
  bool shut_done; /* ... and completed */
} fp_dir_t;

typedef struct fp_link {
  fault_proxy_t *proxy;
  struct fp_link *prev, *next;
  fp_state_t state;
  int open_handles; /* handles not yet closed (4 while alive) */
  uv_tcp_t client, target;
  uv_connect_t creq;
  fp_dir_t c2t, t2c;
  uint64_t budget;    /* cut_at armed at accept: reset after this many bytes */
  uint64_t forwarded; /* bytes written, both directions */
} fp_link_t;

struct fault_proxy_s {
  uv_loop_t *loop;
  uv_tcp_t listener;
  struct sockaddr_storage target;
  fp_link_t *links; /* every link not yet freed, CLOSING ones included */
  uint32_t latency_ms, jitter_ms, slice_max, max_conns;
  uint64_t cut_at;
  size_t queue_max;
  uint64_t rng;
  bool blackhole, refuse, closing, listener_closed;
  unsigned rejecting; /* reset-on-accept handles still closing */
  fault_proxy_stats_t st;
  fault_proxy_close_cb close_cb;
  void *close_arg;
};

static void link_close(fp_link_t *l, bool reset);
static void dir_pump(fp_dir_t *d);

/* --- RNG (splitmix64): seeded, per proxy, so a run replays. -------------- */

static uint64_t fp_rand(fault_proxy_t *p) {
  uint64_t z = (p->rng += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* Uniform in [0, n), n > 0. */
static uint64_t fp_uniform(fault_proxy_t *p, uint64_t n) {
  return fp_rand(p) % n;
}

/* --- Addresses ----------------------------------------------------------- */

static int parse_port(const char *s, size_t n, int *port) {
  if (n == 0 || n > 5) return -EINVAL;
  int v = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return -EINVAL;
    v = v * 10 + (s[i] - '0');
  }
  if (v > 65535) return -EINVAL;
  *port = v;
  return 0;
}

static int make_addr(const char *host, size_t hlen, bool v6, int port,
                     struct sockaddr_storage *out) {
  char h[INET6_ADDRSTRLEN + 1];
  if (hlen == 0 || hlen >= sizeof h) return -EINVAL;
  memcpy(h, host, hlen);
  h[hlen] = '\0';
  memset(out, 0, sizeof *out);
  if (v6) return uv_ip6_addr(h, port, (struct sockaddr_in6 *)out) ? -EINVAL : 0;
  return uv_ip4_addr(h, port, (struct sockaddr_in *)out) ? -EINVAL : 0;
}

/* "/ip4/H/tcp/P[/...]" or "/ip6/H/tcp/P[/...]". */
static int parse_multiaddr(const char *s, struct sockaddr_storage *out) {
  bool v6;
  if (strncmp(s, "/ip4/", 5) == 0)
    v6 = false;
  else if (strncmp(s, "/ip6/", 5) == 0)
    v6 = true;
  else
    return -EINVAL;
  const char *host = s + 5;
  const char *slash = strchr(host, '/');
  if (!slash || strncmp(slash, "/tcp/", 5) != 0) return -EINVAL;
  const char *ps = slash + 5;
  const char *end = strchr(ps, '/');
  size_t plen = end ? (size_t)(end - ps) : strlen(ps);
  int port;
  if (parse_port(ps, plen, &port)) return -EINVAL;
  return make_addr(host, (size_t)(slash - host), v6, port, out);
}

int fault_proxy_addr_parse(const char *text, struct sockaddr_storage *out) {
  if (!text || !out) return -EINVAL;
  if (text[0] == '/') return parse_multiaddr(text, out);
  int port;
  if (text[0] == '[') {
    const char *rb = strchr(text, ']');
    if (!rb || rb[1] != ':') return -EINVAL;
    if (parse_port(rb + 2, strlen(rb + 2), &port)) return -EINVAL;
    return make_addr(text + 1, (size_t)(rb - text - 1), true, port, out);
  }
  const char *colon = strrchr(text, ':');
  if (!colon || strchr(text, ':') != colon) return -EINVAL;
  if (parse_port(colon + 1, strlen(colon + 1), &port)) return -EINVAL;
  return make_addr(text, (size_t)(colon - text), false, port, out);
}

int fault_proxy_addr_format(const struct sockaddr *sa, char *buf, size_t len) {
  char h[INET6_ADDRSTRLEN];
  if (!sa || !buf || len == 0) return -EINVAL;
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
    uv_ip4_name(a, h, sizeof h);
    snprintf(buf, len, "%s:%u", h, (unsigned)ntohs(a->sin_port));
    return 0;
  }
  if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
    uv_ip6_name(a, h, sizeof h);
    snprintf(buf, len, "[%s]:%u", h, (unsigned)ntohs(a->sin6_port));
    return 0;
  }
  buf[0] = '\0';
  return -EINVAL;
}

int fault_proxy_addr_is_loopback(const struct sockaddr *sa) {
  if (!sa) return 0;
  if (sa->sa_family == AF_INET) {
    const uint8_t *b = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
    return b[0] == 127;
  }
  if (sa->sa_family == AF_INET6) {
    const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
    if (IN6_IS_ADDR_LOOPBACK(a)) return 1;
    return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
  }
  return 0;
}

int fault_proxy_addr_is_private(const struct sockaddr *sa) {
  if (!sa) return 0;
  if (sa->sa_family == AF_INET) {
    const uint8_t *b = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
    return b[0] == 10 || (b[0] == 172 && (b[1] & 0xf0) == 16) || (b[0] == 192 && b[1] == 168);
  }
  if (sa->sa_family == AF_INET6)
    return (((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr[0] & 0xfe) == 0xfc;
  return 0;
}

static int addr_allowed(const struct sockaddr *sa, int private_ok) {
  return fault_proxy_addr_is_loopback(sa) || (private_ok && fault_proxy_addr_is_private(sa));
}

static size_t addr_len(const struct sockaddr *sa) {
  return sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

/* --- Small helpers ------------------------------------------------------- */

/* SO_LINGER {1, 0}: the close that follows sends RST instead of FIN. */
static void set_linger0(uv_handle_t *h) {
  uv_os_fd_t fd;
  if (uv_fileno(h, &fd) != 0) return;
  struct linger lg = {.l_onoff = 1, .l_linger = 0};
  (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
}

static void proxy_maybe_finish(fault_proxy_t *p) {
  if (!p->closing || !p->listener_closed || p->links || p->rejecting) return;
  if (p->close_cb) p->close_cb(p, p->close_arg);
  free(p);
}

static void on_reject_closed(uv_handle_t *h) {
  fault_proxy_t *p = h->data;
  free(h);
  p->rejecting--;
  proxy_maybe_finish(p);
}

/* Accepts the pending connection and resets it at once. */
static void reject_pending(fault_proxy_t *p) {
  uv_tcp_t *t = malloc(sizeof *t);
  if (!t) return; /* the listener stops until a later accept: best effort */
  uv_tcp_init(p->loop, t);
  t->data = p;
  if (uv_accept((uv_stream_t *)&p->listener, (uv_stream_t *)t) == 0) set_linger0((uv_handle_t *)t);
  p->rejecting++;
  uv_close((uv_handle_t *)t, on_reject_closed);
}

/* --- Directions ---------------------------------------------------------- */

static void chunk_pop(fp_dir_t *d) {
  fp_chunk_t *c = d->head;
  d->head = c->next;
  if (!d->head) d->tail = NULL;
  d->queued -= c->len;
  d->nchunks--;
  d->link->proxy->st.queued -= c->len;
  free(c);
}

static bool dir_full(const fp_dir_t *d) {
  const fault_proxy_t *p = d->link->proxy;
  return d->queued >= p->queue_max || d->nchunks >= FAULT_PROXY_CHUNKS_MAX;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);

/* Starts or stops reading src so that it reads exactly when it may. */
static void dir_update_read(fp_dir_t *d) {
  fp_link_t *l = d->link;
  fault_proxy_t *p = l->proxy;
  if (d->throttled && d->queued <= p->queue_max / 2 && d->nchunks <= FAULT_PROXY_CHUNKS_MAX / 2)
    d->throttled = false;
  bool want = l->state == FP_OPEN && !p->blackhole && !d->eof && !d->throttled;
  if (want == d->reading) return;
  if (want) {
    if (uv_read_start((uv_stream_t *)d->src, on_alloc, on_read) != 0) {
      link_close(l, true);
      return;
    }
  } else {
    uv_read_stop((uv_stream_t *)d->src);
  }
  d->reading = want;
}

static void dir_throttle(fp_dir_t *d) {
  d->throttled = true;
  dir_update_read(d);
}

static fp_dir_t *dir_of_src(fp_link_t *l, uv_handle_t *src) {
  return src == (uv_handle_t *)&l->client ? &l->c2t : &l->t2c;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  fp_link_t *l = h->data;
  fp_dir_t *d = dir_of_src(l, h);
  size_t room = d->queued < l->proxy->queue_max ? l->proxy->queue_max - d->queued : 0;
  size_t n = room < FAULT_PROXY_CHUNK_MAX ? room : FAULT_PROXY_CHUNK_MAX;
  fp_chunk_t *c = NULL;
  if (n > 0 && d->nchunks < FAULT_PROXY_CHUNKS_MAX) c = malloc(sizeof *c + n);
  if (!c) { /* read_cb gets UV_ENOBUFS */
    *buf = uv_buf_init(NULL, 0);
    return;
  }
  *buf = uv_buf_init(c->data, (unsigned)n);
}

static uint64_t chunk_due(fault_proxy_t *p) {
  int64_t ms = p->latency_ms;
  if (p->jitter_ms)
    ms += (int64_t)fp_uniform(p, 2 * (uint64_t)p->jitter_ms + 1) - (int64_t)p->jitter_ms;
  if (ms <= 0) return 0;
  return uv_hrtime() + (uint64_t)ms * 1000000u;
}

/* Queues chunk c (allocated for cap bytes) holding n bytes. */
static void dir_append(fp_dir_t *d, fp_chunk_t *c, size_t n, size_t cap) {
  fault_proxy_t *p = d->link->proxy;
  if (n < cap) { /* hold what was read, not what was offered: memory ~ queued */
    fp_chunk_t *small = realloc(c, sizeof *c + n);
    if (small) c = small;
  }
  c->next = NULL;
  c->len = n;
  c->off = 0;
  c->due_ns = chunk_due(p);
  if (d->tail)
    d->tail->next = c;
  else
    d->head = c;
  d->tail = c;
  d->queued += n;
  d->nchunks++;
  p->st.queued += n;
  if (d->queued > p->st.queued_peak) p->st.queued_peak = d->queued;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  fp_link_t *l = s->data;
  fp_dir_t *d = dir_of_src(l, (uv_handle_t *)s);
  fp_chunk_t *c = buf->base ? container_of(buf->base, fp_chunk_t, data) : NULL;
  if (nread > 0) {
    dir_append(d, c, (size_t)nread, buf->len);
    if (dir_full(d)) dir_throttle(d);
    dir_pump(d);
    return;
  }
  free(c);
  if (nread == 0) return;
  if (l->state != FP_OPEN) return;
  if (nread == UV_ENOBUFS) {
    if (d->queued == 0) { /* out of memory with nothing to drain */
      link_close(l, true);
      return;
    }
    dir_throttle(d);
    return;
  }
  if (nread == UV_EOF) {
    d->eof = true;
    dir_update_read(d);
    dir_pump(d);
    return;
  }
  l->proxy->st.conns_reset++;
  link_close(l, true);
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  fp_dir_t *d = container_of(req, fp_dir_t, sreq);
  fp_link_t *l = d->link;
  if (l->state != FP_OPEN) return;
  if (status < 0) {
    l->proxy->st.conns_reset++;
    link_close(l, true);
    return;
  }
  d->shut_done = true;
  if (l->c2t.shut_done && l->t2c.shut_done) link_close(l, false);
}

static void on_write(uv_write_t *req, int status) {
  fp_dir_t *d = container_of(req, fp_dir_t, wreq);
  fp_link_t *l = d->link;
  fault_proxy_t *p = l->proxy;
  d->writing = false;
  if (l->state != FP_OPEN) return;
  if (status < 0) {
    p->st.conns_reset++;
    link_close(l, true);
    return;
  }
  fp_chunk_t *c = d->head;
  assert(c && c->off + d->wlen <= c->len);
  c->off += d->wlen;
  p->st.writes++;
  if (d->to_target)
    p->st.bytes_to_target += d->wlen;
  else
    p->st.bytes_to_client += d->wlen;
  l->forwarded += d->wlen;
  if (l->budget && l->forwarded >= l->budget) { /* cut_at: exactly here */
    p->st.conns_cut++;
    link_close(l, true);
    return;
  }
  if (c->off == c->len) chunk_pop(d);
  dir_update_read(d);
  if (l->state == FP_OPEN) dir_pump(d);
}

static void on_timer(uv_timer_t *t) {
  fp_dir_t *d = container_of(t, fp_dir_t, timer);
  if (d->link->state == FP_OPEN) dir_pump(d);
}

/* Issues the next write (or the forwarded FIN) if it may. */
static void dir_pump(fp_dir_t *d) {
  fp_link_t *l = d->link;
  fault_proxy_t *p = l->proxy;
  if (l->state != FP_OPEN || p->blackhole || d->writing) return;
  fp_chunk_t *c = d->head;
  if (!c) {
    if (d->eof && !d->shut) {
      d->shut = true;
      if (uv_shutdown(&d->sreq, (uv_stream_t *)d->dst, on_shutdown) != 0) link_close(l, true);
    }
    return;
  }
  uint64_t now = uv_hrtime();
  if (c->due_ns > now) {
    uint64_t ms = (c->due_ns - now + 999999u) / 1000000u;
    uv_timer_start(&d->timer, on_timer, ms, 0);
    return;
  }
  size_t n = c->len - c->off;
  if (l->budget && n > l->budget - l->forwarded) n = (size_t)(l->budget - l->forwarded);
  if (p->slice_max) {
    size_t seg = 1 + (size_t)fp_uniform(p, p->slice_max);
    if (seg < n) n = seg;
  }
  uv_buf_t b = uv_buf_init(c->data + c->off, (unsigned)n);
  d->wlen = n;
  d->writing = true;
  if (uv_write(&d->wreq, (uv_stream_t *)d->dst, &b, 1, on_write) != 0) {
    d->writing = false;
    p->st.conns_reset++;
    link_close(l, true);
  }
}

/* --- Links --------------------------------------------------------------- */

static void link_free(fp_link_t *l) {
  fault_proxy_t *p = l->proxy;
  while (l->c2t.head)
    chunk_pop(&l->c2t);
  while (l->t2c.head)
    chunk_pop(&l->t2c);
  if (l->prev)
    l->prev->next = l->next;
  else
    p->links = l->next;
  if (l->next) l->next->prev = l->prev;
  free(l);
  proxy_maybe_finish(p);
}

static void on_link_handle_closed(uv_handle_t *h) {
  fp_link_t *l = h->data;
  if (--l->open_handles == 0) link_free(l);
}

/* Ends the link: a plain close, or a reset (RST) of both sockets. */
static void link_close(fp_link_t *l, bool reset) {
  if (l->state == FP_CLOSING) return;
  l->state = FP_CLOSING;
  l->proxy->st.active--;
  if (reset) {
    set_linger0((uv_handle_t *)&l->client);
    set_linger0((uv_handle_t *)&l->target);
  }
  uv_close((uv_handle_t *)&l->client, on_link_handle_closed);
  uv_close((uv_handle_t *)&l->target, on_link_handle_closed);
  uv_close((uv_handle_t *)&l->c2t.timer, on_link_handle_closed);
  uv_close((uv_handle_t *)&l->t2c.timer, on_link_handle_closed);
}

static void dir_init(fp_link_t *l, fp_dir_t *d, uv_tcp_t *src, uv_tcp_t *dst, bool to_target) {
  d->link = l;
  d->src = src;
  d->dst = dst;
  d->to_target = to_target;
  uv_timer_init(l->proxy->loop, &d->timer);
  d->timer.data = l;
}

static void on_connect(uv_connect_t *req, int status) {
  fp_link_t *l = container_of(req, fp_link_t, creq);
  if (l->state != FP_CONNECTING) return;
  if (status < 0) {
    l->proxy->st.connect_failed++;
    link_close(l, true);
    return;
  }
  l->state = FP_OPEN;
  uv_tcp_nodelay(&l->target, 1);
  dir_update_read(&l->c2t);
  if (l->state == FP_OPEN) dir_update_read(&l->t2c);
}

static void accept_link(fault_proxy_t *p) {
  fp_link_t *l = calloc(1, sizeof *l);
  if (!l) {
    reject_pending(p);
    return;
  }
  l->proxy = p;
  l->budget = p->cut_at;
  l->state = FP_CONNECTING;
  l->open_handles = 4;
  uv_tcp_init(p->loop, &l->client);
  uv_tcp_init(p->loop, &l->target);
  l->client.data = l->target.data = l;
  dir_init(l, &l->c2t, &l->client, &l->target, true);
  dir_init(l, &l->t2c, &l->target, &l->client, false);
  l->next = p->links;
  if (p->links) p->links->prev = l;
  p->links = l;
  p->st.active++;
  if (uv_accept((uv_stream_t *)&p->listener, (uv_stream_t *)&l->client) != 0) {
    link_close(l, false);
    return;
  }
  uv_tcp_nodelay(&l->client, 1);
  if (uv_tcp_connect(&l->creq, &l->target, (const struct sockaddr *)&p->target, on_connect)) {
    p->st.connect_failed++;
    link_close(l, true);
  }
}

static void on_connection(uv_stream_t *server, int status) {
  fault_proxy_t *p = container_of(server, fault_proxy_t, listener);
  if (status < 0 || p->closing) return;
  p->st.accepted++;
  if (p->refuse) {
    p->st.refused++;
    reject_pending(p);
  } else if (p->st.active >= p->max_conns) {
    p->st.over_limit++;
    reject_pending(p);
  } else {
    accept_link(p);
  }
}

/* --- Public API ---------------------------------------------------------- */

static int check_opts(const fault_proxy_opts_t *o) {
  if (o->latency_ms > FAULT_PROXY_LATENCY_MAX || o->jitter_ms > FAULT_PROXY_LATENCY_MAX)
    return -EINVAL;
  if (o->slice_max > FAULT_PROXY_SLICE_MAX) return -EINVAL;
  if (o->queue_max &&
      (o->queue_max < FAULT_PROXY_QUEUE_MIN || o->queue_max > FAULT_PROXY_QUEUE_MAX))
    return -EINVAL;
  return 0;
}

static void on_listener_closed_early(uv_handle_t *h) {
  free(h->data);
}

int fault_proxy_create(uv_loop_t *loop, const struct sockaddr *listen_addr,
                       const struct sockaddr *target, const fault_proxy_opts_t *opts,
                       fault_proxy_t **out) {
  fault_proxy_opts_t o = {0};
  if (opts) o = *opts;
  if (!loop || !listen_addr || !target || !out) return -EINVAL;
  if ((listen_addr->sa_family != AF_INET && listen_addr->sa_family != AF_INET6) ||
      (target->sa_family != AF_INET && target->sa_family != AF_INET6))
    return -EINVAL;
  if (!addr_allowed(listen_addr, o.private_ok) || !addr_allowed(target, o.private_ok))
    return -EPERM;
  int rc = check_opts(&o);
  if (rc) return rc;
  fault_proxy_t *p = calloc(1, sizeof *p);
  if (!p) return -ENOMEM;
  p->loop = loop;
  memcpy(&p->target, target, addr_len(target));
  p->latency_ms = o.latency_ms;
  p->jitter_ms = o.jitter_ms;
  p->slice_max = o.slice_max;
  p->rng = o.seed ? o.seed : 1;
  p->queue_max = o.queue_max ? o.queue_max : FAULT_PROXY_QUEUE_DEFAULT;
  p->max_conns = o.max_conns ? o.max_conns : FAULT_PROXY_CONNS_DEFAULT;
  p->st.queue_max = p->queue_max;
  uv_tcp_init(loop, &p->listener);
  p->listener.data = p;
  rc = uv_tcp_bind(&p->listener, listen_addr, 0);
  if (rc == 0) rc = uv_listen((uv_stream_t *)&p->listener, 128, on_connection);
  if (rc != 0) { /* the handle must close before p can be freed */
    uv_close((uv_handle_t *)&p->listener, on_listener_closed_early);
    return rc;
  }
  *out = p;
  return 0;
}

int fault_proxy_bound_addr(const fault_proxy_t *proxy, struct sockaddr_storage *out) {
  int len = sizeof *out;
  memset(out, 0, sizeof *out);
  return uv_tcp_getsockname(&proxy->listener, (struct sockaddr *)out, &len);
}

int fault_proxy_port(const fault_proxy_t *proxy) {
  struct sockaddr_storage ss;
  if (fault_proxy_bound_addr(proxy, &ss) != 0) return 0;
  if (ss.ss_family == AF_INET) return ntohs(((struct sockaddr_in *)&ss)->sin_port);
  if (ss.ss_family == AF_INET6) return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
  return 0;
}

int fault_proxy_cut(fault_proxy_t *proxy) {
  if (proxy->closing) return -EINVAL;
  int n = 0;
  proxy->st.cuts++;
  for (fp_link_t *l = proxy->links; l; l = l->next) {
    if (l->state == FP_CLOSING) continue;
    link_close(l, true);
    n++;
  }
  proxy->st.conns_cut += (uint64_t)n;
  return n;
}

/* Applies a switch change to every live link: reads and writes resume or stop. */
static void proxy_refresh(fault_proxy_t *p) {
  for (fp_link_t *l = p->links; l; l = l->next) {
    if (l->state != FP_OPEN) continue;
    dir_update_read(&l->c2t);
    dir_update_read(&l->t2c);
    dir_pump(&l->c2t);
    dir_pump(&l->t2c);
  }
}

int fault_proxy_blackhole(fault_proxy_t *proxy, int on) {
  if (proxy->closing) return -EINVAL;
  proxy->blackhole = on != 0;
  proxy_refresh(proxy);
  return 0;
}

int fault_proxy_refuse(fault_proxy_t *proxy, int on) {
  if (proxy->closing) return -EINVAL;
  proxy->refuse = on != 0;
  return 0;
}

int fault_proxy_latency(fault_proxy_t *proxy, uint32_t ms, uint32_t jitter_ms) {
  if (proxy->closing) return -EINVAL;
  if (ms > FAULT_PROXY_LATENCY_MAX || jitter_ms > FAULT_PROXY_LATENCY_MAX) return -EINVAL;
  proxy->latency_ms = ms;
  proxy->jitter_ms = jitter_ms;
  return 0;
}

int fault_proxy_cut_at(fault_proxy_t *proxy, uint64_t bytes) {
  if (!proxy || proxy->closing) return -EINVAL;
  proxy->cut_at = bytes;
  return 0;
}

int fault_proxy_slice(fault_proxy_t *proxy, uint32_t max) {
  if (proxy->closing) return -EINVAL;
  if (max > FAULT_PROXY_SLICE_MAX) return -EINVAL;
  proxy->slice_max = max;
  return 0;
}

void fault_proxy_seed(fault_proxy_t *proxy, uint64_t seed) {
  proxy->rng = seed ? seed : 1;
}

void fault_proxy_stats(const fault_proxy_t *proxy, fault_proxy_stats_t *out) {
  *out = proxy->st;
}

int fault_proxy_is_blackholed(const fault_proxy_t *proxy) {
  return proxy->blackhole;
}

int fault_proxy_is_refusing(const fault_proxy_t *proxy) {
  return proxy->refuse;
}

static void on_listener_closed(uv_handle_t *h) {
  fault_proxy_t *p = h->data;
  p->listener_closed = true;
  proxy_maybe_finish(p);
}

int fault_proxy_close(fault_proxy_t *proxy, fault_proxy_close_cb cb, void *arg) {
  if (proxy->closing) return -EINVAL;
  proxy->closing = true;
  proxy->close_cb = cb;
  proxy->close_arg = arg;
  uv_close((uv_handle_t *)&proxy->listener, on_listener_closed);
  for (fp_link_t *l = proxy->links; l; l = l->next)
    link_close(l, false);
  return 0;
}
