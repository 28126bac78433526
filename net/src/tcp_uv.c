/*
 * tcp_uv.c — the libuv implementation of the world seam (core.h).
 * Objects embed their uv handles and are freed only in the close callback
 * (libuv's rule). Writes try uv_try_write first; what the kernel does not
 * take is handed to uv_write in the caller's own buffer, swapped for the
 * socket's idle one: no copy and no allocation per write.
 */
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/timerfd.h>
#endif

#include <uv.h>

#include "net.h"
#include "tcp_info.h"

typedef struct uvt {
  bn_transport_t base;
  uv_loop_t *loop;
  uv_loop_t own_loop; /* used when the caller gave no loop */
  bool owns_loop;
  bool freeing;     /* net_transport_uv_free was called */
  uv_check_t check; /* runs deferred work after I/O */
  uv_idle_t idle;   /* keeps poll from blocking while work is deferred */
  bn_defer_cb defer_cb[16];
  void *defer_ud[16];
  int ndefer;
  int closing; /* handles still closing in net_transport_uv_free */
  /* Fine timers (uvt_timer_start_us): libuv's timers count milliseconds,
   * so timers asked for in microseconds share one timerfd, armed for the
   * earliest of them and made on first use (a node without traffic classes
   * never asks). fine_fd < 0: none made. */
  int fine_fd;
  uv_poll_t fine_poll;
  bn_ttimer_t *fine_head; /* the armed fine timers, unordered */
  uint64_t fine_armed_ns; /* what fine_fd is armed for (0: disarmed) */
  /* One read buffer for all sockets: libuv delivers one read at a time and
   * on_read consumers must not keep the pointer. Several Noise frames (64
   * KiB each at most) long: a frame cut by the end of a read is copied
   * aside to be completed, and with a 64 KiB buffer that was nearly every
   * frame of a stream. */
  uint8_t rbuf[256 * 1024];
} uvt_t;

struct bn_tlistener {
  uv_tcp_t tcp;
  uvt_t *t;
  bn_accept_cb cb;
  void *ud;
};

struct bn_tsock {
  uv_tcp_t tcp;
  uv_connect_t conn_req;
  uv_shutdown_t shut_req;
  uv_timer_t linger; /* bounds a graceful close: a peer that never reads
                        must not keep our queued writes (and us) forever */
  int open_handles;  /* tcp, plus linger once started */
  uvt_t *t;
  bn_tsock_cbs_t cbs;
  void *ud;
  uv_write_t wreq[2]; /* [1] only for the last write before a graceful close */
  bn_buf_t wbuf[2];   /* what each request writes; unread bytes = in flight */
  bool closing;
  bool reading;
};

struct bn_ttimer {
  uv_timer_t timer;
  bn_timer_cb cb;
  void *ud;
  uvt_t *t;
  uint64_t fine_due_ns; /* armed as a fine timer: when (uv_hrtime), else 0 */
  bn_ttimer_t *fine_prev, *fine_next;
};

struct bn_twake {
  uv_async_t async;
  bn_wake_cb cb;
  void *ud;
};

/* ------------------------------------------------------------ deferral */

static void on_check(uv_check_t *h) {
  uvt_t *t = h->data;
  /* Callbacks may defer again: run a snapshot. */
  int n = t->ndefer;
  bn_defer_cb cbs[16];
  void *uds[16];
  memcpy(cbs, t->defer_cb, sizeof cbs);
  memcpy(uds, t->defer_ud, sizeof uds);
  t->ndefer = 0;
  for (int i = 0; i < n; i++)
    cbs[i](uds[i]);
  if (t->ndefer == 0) {
    uv_idle_stop(&t->idle);
    uv_check_stop(&t->check);
  }
}

static void on_idle(uv_idle_t *h) {
  (void)h;
}

static void uvt_defer(bn_transport_t *bt, bn_defer_cb cb, void *ud) {
  uvt_t *t = (uvt_t *)bt;
  for (int i = 0; i < t->ndefer; i++)
    if (t->defer_cb[i] == cb && t->defer_ud[i] == ud) return;
  BN_ASSERT(t->ndefer < 16); /* a few fixed deferral sites per node */
  t->defer_cb[t->ndefer] = cb;
  t->defer_ud[t->ndefer] = ud;
  t->ndefer++;
  uv_check_start(&t->check, on_check);
  uv_idle_start(&t->idle, on_idle);
}

/* ------------------------------------------------------------- sockets */

static bn_tsock_t *sock_new(uvt_t *t) {
  bn_tsock_t *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->t = t;
  if (uv_tcp_init(t->loop, &s->tcp) != 0) {
    free(s);
    return NULL;
  }
  s->tcp.data = s;
  s->open_handles = 1;
  uv_tcp_nodelay(&s->tcp, 1); /* we batch ourselves: Nagle only adds latency */
  return s;
}

static void sock_set_cbs(bn_tsock_t *s, const bn_tsock_cbs_t *cbs, void *ud) {
  s->cbs = *cbs;
  s->ud = ud;
}

static void on_sock_closed(uv_handle_t *h) {
  bn_tsock_t *s = h->data;
  if (--s->open_handles > 0) return;
  if (s->cbs.on_close) s->cbs.on_close(s->ud);
  bn_buf_free(&s->wbuf[0]);
  bn_buf_free(&s->wbuf[1]);
  free(s);
}

#define LINGER_MS 2000

static void on_linger(uv_timer_t *t) {
  bn_tsock_t *s = t->data;
  uv_close((uv_handle_t *)&s->linger, on_sock_closed);
  /* The queued writes did not drain in time: close without them (this
   * cancels the shutdown request, whose callback then does nothing). */
  if (!uv_is_closing((uv_handle_t *)&s->tcp)) uv_close((uv_handle_t *)&s->tcp, on_sock_closed);
}

static void sock_close(bn_tsock_t *s, bool graceful);

static void on_shutdown(uv_shutdown_t *req, int status) {
  (void)status;
  bn_tsock_t *s = req->data;
  if (!uv_is_closing((uv_handle_t *)&s->linger)) {
    uv_timer_stop(&s->linger);
    uv_close((uv_handle_t *)&s->linger, on_sock_closed);
  }
  if (!uv_is_closing((uv_handle_t *)&s->tcp)) uv_close((uv_handle_t *)&s->tcp, on_sock_closed);
}

static void sock_close(bn_tsock_t *s, bool graceful) {
  if (s->closing) return;
  s->closing = true;
  if (s->reading) uv_read_stop((uv_stream_t *)&s->tcp);
  if (graceful && uv_is_writable((uv_stream_t *)&s->tcp)) {
    s->shut_req.data = s;
    if (uv_shutdown(&s->shut_req, (uv_stream_t *)&s->tcp, on_shutdown) == 0) {
      uv_timer_init(s->t->loop, &s->linger);
      s->linger.data = s;
      s->open_handles++;
      uv_timer_start(&s->linger, on_linger, LINGER_MS, 0);
      return;
    }
  }
  uv_close((uv_handle_t *)&s->tcp, on_sock_closed);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  (void)hint;
  bn_tsock_t *s = h->data;
  buf->base = (char *)s->t->rbuf;
  buf->len = sizeof s->t->rbuf;
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
  (void)buf;
  bn_tsock_t *s = st->data;
  if (s->closing) return;
  if (nread > 0) {
    s->cbs.on_read(s->ud, s->t->rbuf, (size_t)nread);
  } else if (nread < 0) {
    uv_read_stop(st);
    s->reading = false;
    s->cbs.on_eof(s->ud, nread == UV_EOF ? 0 : (int)nread);
  }
}

static int sock_read_start(bn_tsock_t *s) {
  if (s->closing) return BFTNET_ECLOSED;
  int rc = uv_read_start((uv_stream_t *)&s->tcp, on_alloc, on_read);
  if (rc == 0) s->reading = true;
  return rc;
}

/* A request is in flight while its buffer holds bytes (never empty when
 * handed to uv_write; reset when it completes or fails). */
static bool wbusy(const bn_tsock_t *s, int i) {
  return bn_buf_unread(&s->wbuf[i]) > 0;
}

static void on_write(uv_write_t *req, int status) {
  bn_tsock_t *s = req->data;
  int i = req == &s->wreq[0] ? 0 : 1;
  bn_buf_reset(&s->wbuf[i]);
  if (s->wbuf[i].cap > NET_WRITE_RETAIN) bn_buf_free(&s->wbuf[i]); /* don't pin a burst */
  if (status < 0 || s->closing) return; /* a failed write surfaces as a read error */
  if (s->cbs.on_drain) s->cbs.on_drain(s->ud);
}

static int sock_write(bn_tsock_t *s, bn_buf_t *b, bool all) {
  if (s->closing) return BFTNET_ECLOSED;
  size_t n = bn_buf_unread(b);
  if (n == 0) return 0;
  if (!wbusy(s, 0) && !wbusy(s, 1)) {
    uv_buf_t ub = uv_buf_init((char *)bn_buf_head(b), (unsigned)n);
    int rc = uv_try_write((uv_stream_t *)&s->tcp, &ub, 1);
    if (rc < 0 && rc != UV_EAGAIN) return rc;
    size_t done = rc > 0 ? (size_t)rc : 0;
    if (done == n) {
      bn_buf_reset(b);
      return 0;
    }
    bn_buf_consume(b, done);
  } else if (!all || (wbusy(s, 0) && wbusy(s, 1))) {
    return 0;
  }
  int i = wbusy(s, 0) ? 1 : 0;
  bn_buf_t idle = s->wbuf[i];
  s->wbuf[i] = *b;
  *b = idle;
  bn_buf_reset(b);
  size_t len = bn_buf_unread(&s->wbuf[i]);
  uv_buf_t ub = uv_buf_init((char *)bn_buf_head(&s->wbuf[i]), (unsigned)len);
  s->wreq[i].data = s;
  int rc = uv_write(&s->wreq[i], (uv_stream_t *)&s->tcp, &ub, 1, on_write);
  if (rc != 0) {
    bn_buf_reset(&s->wbuf[i]);
    return rc;
  }
  return 0;
}

static size_t sock_write_queued(const bn_tsock_t *s) {
  return bn_buf_unread(&s->wbuf[0]) + bn_buf_unread(&s->wbuf[1]);
}

static int sock_set_notsent_lowat(bn_tsock_t *s, uint32_t bytes) {
  uv_os_fd_t fd;
  int rc = uv_fileno((const uv_handle_t *)&s->tcp, &fd);
  if (rc != 0) return rc;
  int v = (int)BN_MIN(bytes, (uint32_t)INT_MAX);
  return setsockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &v, sizeof v) == 0 ? 0 : -errno;
}

static int sock_tx_info(const bn_tsock_t *s, bool rates, bn_tx_info_t *out) {
  uv_os_fd_t fd;
  int rc = uv_fileno((const uv_handle_t *)&s->tcp, &fd);
  if (rc != 0) return rc;
  return net__tcp_tx_info(fd, rates, out);
}

static int sock_peer_addr(const bn_tsock_t *s, struct sockaddr_storage *out) {
  int len = sizeof *out;
  return uv_tcp_getpeername(&s->tcp, (struct sockaddr *)out, &len);
}

static void on_connect(uv_connect_t *req, int status) {
  bn_tsock_t *s = req->data;
  if (s->closing) return;
  s->cbs.on_connect(s->ud, status);
}

static int uvt_dial(bn_transport_t *bt, const struct sockaddr *sa, bn_tsock_t **out) {
  uvt_t *t = (uvt_t *)bt;
  bn_tsock_t *s = sock_new(t);
  if (!s) return BFTNET_ENOMEM;
  s->conn_req.data = s;
  int rc = uv_tcp_connect(&s->conn_req, &s->tcp, sa, on_connect);
  if (rc != 0) {
    s->closing = true;
    uv_close((uv_handle_t *)&s->tcp, on_sock_closed); /* no cbs set: frees only */
    return rc;
  }
  *out = s;
  return 0;
}

/* ----------------------------------------------------------- listeners */

static void on_connection(uv_stream_t *server, int status) {
  bn_tlistener_t *l = server->data;
  if (status < 0) return;
  bn_tsock_t *s = sock_new(l->t);
  if (!s) return;
  if (uv_accept(server, (uv_stream_t *)&s->tcp) != 0) {
    s->closing = true;
    uv_close((uv_handle_t *)&s->tcp, on_sock_closed);
    return;
  }
  l->cb(l->ud, s);
}

static void on_listener_closed(uv_handle_t *h) {
  free(h->data);
}

static int uvt_listen(bn_transport_t *bt, const struct sockaddr *sa, bn_accept_cb cb, void *ud,
                      bn_tlistener_t **out) {
  uvt_t *t = (uvt_t *)bt;
  bn_tlistener_t *l = calloc(1, sizeof *l);
  if (!l) return BFTNET_ENOMEM;
  l->t = t;
  l->cb = cb;
  l->ud = ud;
  int rc = uv_tcp_init(t->loop, &l->tcp);
  if (rc != 0) {
    free(l);
    return rc;
  }
  l->tcp.data = l;
  unsigned flags = sa->sa_family == AF_INET6 ? UV_TCP_IPV6ONLY : 0;
  rc = uv_tcp_bind(&l->tcp, sa, flags);
  if (rc == 0) rc = uv_listen((uv_stream_t *)&l->tcp, 128, on_connection);
  if (rc != 0) {
    uv_close((uv_handle_t *)&l->tcp, on_listener_closed);
    return rc;
  }
  *out = l;
  return 0;
}

static int uvt_listener_addr(bn_tlistener_t *l, struct sockaddr_storage *out) {
  int len = sizeof *out;
  return uv_tcp_getsockname(&l->tcp, (struct sockaddr *)out, &len);
}

static void uvt_listener_close(bn_tlistener_t *l) {
  uv_close((uv_handle_t *)&l->tcp, on_listener_closed);
}

/* -------------------------------------------------------------- timers */

static void on_timer(uv_timer_t *h) {
  bn_ttimer_t *tm = h->data;
  tm->cb(tm->ud);
}

static int uvt_timer_new(bn_transport_t *bt, bn_timer_cb cb, void *ud, bn_ttimer_t **out) {
  uvt_t *t = (uvt_t *)bt;
  bn_ttimer_t *tm = calloc(1, sizeof *tm);
  if (!tm) return BFTNET_ENOMEM;
  uv_timer_init(t->loop, &tm->timer);
  tm->timer.data = tm;
  tm->t = t;
  tm->cb = cb;
  tm->ud = ud;
  *out = tm;
  return 0;
}

static void fine_unlink(bn_ttimer_t *tm) {
  if (!tm->fine_due_ns) return;
  if (tm->fine_prev)
    tm->fine_prev->fine_next = tm->fine_next;
  else
    tm->t->fine_head = tm->fine_next;
  if (tm->fine_next) tm->fine_next->fine_prev = tm->fine_prev;
  tm->fine_prev = tm->fine_next = NULL;
  tm->fine_due_ns = 0;
}

static void uvt_timer_start(bn_ttimer_t *tm, uint64_t timeout_ms, uint64_t repeat_ms) {
  fine_unlink(tm);
  uv_timer_start(&tm->timer, on_timer, timeout_ms, repeat_ms);
}

static void uvt_timer_stop(bn_ttimer_t *tm) {
  fine_unlink(tm);
  uv_timer_stop(&tm->timer);
}

#ifdef __linux__
/* Arms fine_fd for the earliest armed fine timer (or disarms it). */
static void fine_rearm(uvt_t *t) {
  uint64_t due = 0;
  for (bn_ttimer_t *tm = t->fine_head; tm; tm = tm->fine_next)
    if (!due || tm->fine_due_ns < due) due = tm->fine_due_ns;
  /* Armed, the handle keeps the loop running, as libuv's timers do. */
  if (due)
    uv_ref((uv_handle_t *)&t->fine_poll);
  else
    uv_unref((uv_handle_t *)&t->fine_poll);
  if (due == t->fine_armed_ns) return;
  struct itimerspec its = {0};
  /* uv_hrtime is CLOCK_MONOTONIC in nanoseconds, the timerfd's clock. */
  its.it_value.tv_sec = (time_t)(due / 1000000000u);
  its.it_value.tv_nsec = (long)(due % 1000000000u);
  if (timerfd_settime(t->fine_fd, TFD_TIMER_ABSTIME, &its, NULL) == 0) t->fine_armed_ns = due;
}

static void on_fine(uv_poll_t *h, int status, int events) {
  (void)status;
  (void)events;
  uvt_t *t = h->data;
  uint64_t ticks;
  if (read(t->fine_fd, &ticks, sizeof ticks) < 0 && errno != EAGAIN) return;
  t->fine_armed_ns = 0;
  /* A callback may start, stop or free any fine timer: take one due timer
   * at a time from a fresh walk of the list (it holds a few at most). */
  for (int budget = 1024; budget > 0; budget--) {
    uint64_t now = uv_hrtime();
    bn_ttimer_t *tm = t->fine_head;
    while (tm && tm->fine_due_ns > now)
      tm = tm->fine_next;
    if (!tm) break;
    fine_unlink(tm);
    tm->cb(tm->ud);
  }
  fine_rearm(t);
}

/* A one-shot timer of microsecond precision (libuv's count milliseconds):
 * the in-flight cap re-checks a few times per millisecond while a less
 * urgent class waits for the kernel to drain. */
static void uvt_timer_start_us(bn_ttimer_t *tm, uint64_t timeout_us) {
  uvt_t *t = tm->t;
  if (t->fine_fd < 0 && !t->freeing && t->closing == 0) {
    int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (fd >= 0 && uv_poll_init(t->loop, &t->fine_poll, fd) == 0) {
      t->fine_fd = fd;
      t->fine_poll.data = t;
      uv_poll_start(&t->fine_poll, UV_READABLE, on_fine);
    } else if (fd >= 0) {
      close(fd);
    }
  }
  if (t->fine_fd < 0) { /* no timerfd: the nearest millisecond */
    uvt_timer_start(tm, (timeout_us + 999) / 1000, 0);
    return;
  }
  uvt_timer_stop(tm);
  tm->fine_due_ns = uv_hrtime() + timeout_us * 1000u;
  tm->fine_next = t->fine_head;
  if (t->fine_head) t->fine_head->fine_prev = tm;
  t->fine_head = tm;
  if (!t->fine_armed_ns || tm->fine_due_ns < t->fine_armed_ns) fine_rearm(t);
}
#endif

static void on_timer_closed(uv_handle_t *h) {
  free(h->data);
}

static void uvt_timer_free(bn_ttimer_t *tm) {
  if (!tm) return;
  fine_unlink(tm);
  uv_timer_stop(&tm->timer);
  uv_close((uv_handle_t *)&tm->timer, on_timer_closed);
}

/* ------------------------------------------------------------- wakeups */

static void on_async(uv_async_t *h) {
  bn_twake_t *w = h->data;
  w->cb(w->ud);
}

static int uvt_wake_new(bn_transport_t *bt, bn_wake_cb cb, void *ud, bn_twake_t **out) {
  uvt_t *t = (uvt_t *)bt;
  bn_twake_t *w = calloc(1, sizeof *w);
  if (!w) return BFTNET_ENOMEM;
  int rc = uv_async_init(t->loop, &w->async, on_async);
  if (rc != 0) {
    free(w);
    return rc;
  }
  w->async.data = w;
  w->cb = cb;
  w->ud = ud;
  *out = w;
  return 0;
}

static void uvt_wake_send(bn_twake_t *w) {
  uv_async_send(&w->async);
}

static void on_wake_closed(uv_handle_t *h) {
  free(h->data);
}

static void uvt_wake_free(bn_twake_t *w) {
  if (w) uv_close((uv_handle_t *)&w->async, on_wake_closed);
}

/* ---------------------------------------------------------------- loop */

static int uvt_run(bn_transport_t *bt, bn_run_mode_t mode) {
  static const uv_run_mode modes[] = {[BN_RUN_DEFAULT] = UV_RUN_DEFAULT,
                                      [BN_RUN_ONCE] = UV_RUN_ONCE,
                                      [BN_RUN_NOWAIT] = UV_RUN_NOWAIT};
  BN_ASSERT((unsigned)mode < BN_ARRAY_LEN(modes));
  return uv_run(((uvt_t *)bt)->loop, modes[mode]);
}

static void on_uvt_handle_closed(uv_handle_t *h) {
  uvt_t *t = h->data;
  /* libuv runs close callbacks in no promised order: free after both, and
   * only once the owner gave the transport up (net_transport_uv_free). */
  if (--t->closing == 0 && t->freeing && !t->owns_loop) free(t);
}

static void on_fine_closed(uv_handle_t *h) {
  uvt_t *t = h->data;
  close(t->fine_fd);
  t->fine_fd = -1;
  on_uvt_handle_closed(h);
}

static void uvt_shutdown(bn_transport_t *bt) {
  uvt_t *t = (uvt_t *)bt;
  BN_ASSERT(t->closing == 0);
  BN_ASSERT(t->fine_head == NULL); /* every timer was freed first */
  t->closing = 2;
  uv_close((uv_handle_t *)&t->check, on_uvt_handle_closed);
  uv_close((uv_handle_t *)&t->idle, on_uvt_handle_closed);
  if (t->fine_fd >= 0) {
    t->closing++;
    uv_close((uv_handle_t *)&t->fine_poll, on_fine_closed);
  }
}

/* ---------------------------------------------------------------- glue */

static const bn_transport_ops_t uvt_ops = {
    .listen = uvt_listen,
    .listener_addr = uvt_listener_addr,
    .listener_close = uvt_listener_close,
    .dial = uvt_dial,
    .sock_set_cbs = sock_set_cbs,
    .read_start = sock_read_start,
    .write = sock_write,
    .write_queued = sock_write_queued,
    .peer_addr = sock_peer_addr,
    .close = sock_close,
    .timer_new = uvt_timer_new,
    .timer_start = uvt_timer_start,
    .timer_stop = uvt_timer_stop,
    .timer_free = uvt_timer_free,
#ifdef __linux__
    .timer_start_us = uvt_timer_start_us,
#endif
    .defer = uvt_defer,
    .wake_new = uvt_wake_new,
    .wake_send = uvt_wake_send,
    .wake_free = uvt_wake_free,
    .run = uvt_run,
    .shutdown = uvt_shutdown,
    .sock_set_notsent_lowat = sock_set_notsent_lowat,
    .sock_tx_info = sock_tx_info,
};

int net_transport_uv_new(struct uv_loop_s *loop, const bn_seam_t *seam, bn_transport_t **out) {
  uvt_t *t = calloc(1, sizeof *t);
  if (!t) return BFTNET_ENOMEM;
  t->base.ops = &uvt_ops;
  t->base.seam = seam;
  t->fine_fd = -1;
  if (!loop) {
    int rc = uv_loop_init(&t->own_loop);
    if (rc != 0) {
      free(t);
      return rc;
    }
    loop = &t->own_loop;
    t->owns_loop = true;
  }
  t->loop = loop;
  uv_check_init(loop, &t->check);
  uv_idle_init(loop, &t->idle);
  t->check.data = t;
  t->idle.data = t;
  uv_unref((uv_handle_t *)&t->check);
  uv_unref((uv_handle_t *)&t->idle);
  *out = &t->base;
  return 0;
}

void net_transport_uv_free(bn_transport_t *bt) {
  if (!bt) return;
  uvt_t *t = (uvt_t *)bt;
  if (t->closing == 0 && !uv_is_closing((uv_handle_t *)&t->check)) uvt_shutdown(bt);
  t->freeing = true;
  if (t->owns_loop) {
    /* Nobody else runs this loop now: finish every close callback here. */
    uv_run(&t->own_loop, UV_RUN_DEFAULT);
    BN_ASSERT(t->closing == 0);
    int rc = uv_loop_close(&t->own_loop);
    BN_ASSERT(rc == 0); /* a handle left open is a leak of the layer that made it */
    free(t);
  } else if (t->closing == 0) {
    free(t);
  }
  /* Otherwise the application's loop runs the last close callback, which
   * frees. */
}
