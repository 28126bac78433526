/*
 * fault_proxy.h — a fault-injecting TCP proxy on a caller-owned libuv loop.
 *
 * One proxy listens on a loopback address and forwards every connection it
 * accepts to one loopback target. Between the two sockets it can inject
 * faults, each switchable at any time:
 *
 *   cut        reset every current connection, both sides (SO_LINGER 0);
 *   blackhole  move no bytes in either direction while the sockets stay open
 *              (the proxy stops reading, so kernel buffers fill and the
 *              senders stall as on a dead path); off resumes, nothing lost;
 *   refuse     accept new connections and reset them at once;
 *   latency    hold every chunk read for a fixed delay (+ jitter), in order;
 *   slice      forward in random segments of 1..N bytes, one write each.
 *
 * Used in-process by the migration tests and, one proxy per link, by
 * bftnet-cluster (through the bftnet-proxy CLI or directly).
 *
 * Contract (libuv's):
 * - fault_proxy_t is opaque. Every function runs on the loop thread only.
 * - int functions return 0 or a negative errno (== libuv's UV_E* on Unix;
 *   uv_strerror() and bftnet_strerror() both print them). A function that
 *   fails changes nothing and calls no callback.
 * - fault_proxy_close() calls its callback exactly once, after every socket
 *   and timer of the proxy has closed; the proxy's memory is freed right
 *   after that callback returns. Until then the handle stays valid (stats
 *   may be read inside the callback); afterwards it must not be touched.
 * - Loopback only: the listen and the target address must be in
 *   127.0.0.0/8 or ::1 (IPv4-mapped 127/8 too). Any other address fails
 *   with -EPERM, so the proxy can never be turned into an open relay.
 *   opts.private_ok widens this to private addresses, for callers that
 *   run the proxy inside a network namespace of their own.
 *
 * Memory is bounded. Each connection has two directions; each direction
 * queues at most opts.queue_max bytes (in at most FAULT_PROXY_CHUNKS_MAX
 * chunks) between reading the source and writing the destination. When a
 * destination is slow (or a latency queue is full) the proxy stops reading
 * the source until the queue drains below half, so backpressure reaches the
 * sender; at most one write per direction is in flight. Connections are
 * capped at opts.max_conns (further ones are reset on accept and counted).
 * A consequence: with latency L, one direction carries at most about
 * queue_max / L bytes per second (a bandwidth-delay product); raise
 * queue_max for bulk transfers over a slow link.
 *
 * Ordering: latency never reorders — a chunk leaves no earlier than its own
 * deadline and no earlier than the chunk before it. Latency applies to both
 * directions, so an echo round trip gains at least 2 x latency.
 *
 * Half-close is forwarded: EOF from one side becomes a shutdown (FIN) to
 * the other once that direction's queue has drained. A reset or error on
 * one side resets the other.
 */
#ifndef BFTNET_TOOLS_FAULT_PROXY_H
#define BFTNET_TOOLS_FAULT_PROXY_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

/* Bounds. */
#define FAULT_PROXY_CHUNK_MAX     (64u * 1024u)  /* largest single read */
#define FAULT_PROXY_CHUNKS_MAX    1024u          /* chunks per direction */
#define FAULT_PROXY_QUEUE_DEFAULT (256u * 1024u) /* bytes per direction */
#define FAULT_PROXY_QUEUE_MIN     64u
#define FAULT_PROXY_QUEUE_MAX     (64u * 1024u * 1024u)
#define FAULT_PROXY_CONNS_DEFAULT 1024u
#define FAULT_PROXY_LATENCY_MAX   600000u /* ms, latency and jitter */
#define FAULT_PROXY_SLICE_MAX     65536u
/* Longest text fault_proxy_addr_format() writes, NUL included. */
#define FAULT_PROXY_ADDRSTRLEN 64

typedef struct fault_proxy_s fault_proxy_t;

typedef void (*fault_proxy_close_cb)(fault_proxy_t *proxy, void *arg);

/* Initial settings. Zero-initialise, then set what you need: every zero
 * field means its default. */
typedef struct fault_proxy_opts {
  uint32_t latency_ms; /* delay per chunk; 0 = none */
  uint32_t jitter_ms;  /* each chunk's delay is latency +/- uniform(jitter),
                          clamped at 0 (netem-like); order is kept */
  uint32_t slice_max;  /* 0 = off, else segments of uniform 1..slice_max */
  uint64_t seed;       /* RNG seed for slice sizes and jitter; 0 = 1 */
  size_t queue_max;    /* bytes queued per direction; 0 = default */
  uint32_t max_conns;  /* concurrent connections; 0 = default */
  int private_ok;      /* also accept private addresses (10/8, 172.16/12, 192.168/16,
                          fc00::/7): for a bridge inside network namespaces the
                          caller created (bftnet-cluster --netns); never 0.0.0.0 */
} fault_proxy_opts_t;

typedef struct fault_proxy_stats {
  uint64_t accepted;        /* connections accepted (refused ones included) */
  uint64_t refused;         /* reset on accept by refuse mode */
  uint64_t over_limit;      /* reset on accept because max_conns were open */
  uint64_t connect_failed;  /* target connect failed (client then reset) */
  uint64_t cuts;            /* fault_proxy_cut() calls */
  uint64_t conns_cut;       /* connections reset by those calls */
  uint64_t conns_reset;     /* connections ended by a reset/error from a side */
  uint64_t active;          /* connections open now */
  uint64_t bytes_to_target; /* bytes written to the target, all connections */
  uint64_t bytes_to_client; /* bytes written to clients */
  uint64_t writes;          /* write calls (each slice segment is one) */
  size_t queued;            /* bytes queued now, all connections, both ways */
  size_t queued_peak;       /* largest queue any one direction ever held */
  size_t queue_max;         /* the per-direction bound (queued_peak <= it) */
} fault_proxy_stats_t;

/* Parses "127.0.0.1:9000", "[::1]:9000", "/ip4/127.0.0.1/tcp/9000" or
 * "/ip6/::1/tcp/9000" (a trailing /p2p/... is ignored) into *out. Pure: no
 * name resolution. Returns 0 or -EINVAL. Does not check for loopback. */
int fault_proxy_addr_parse(const char *text, struct sockaddr_storage *out);

/* Writes "127.0.0.1:9000" or "[::1]:9000" into buf (len >= 1, truncated
 * and NUL-terminated if short). Returns 0, or -EINVAL for another family. */
int fault_proxy_addr_format(const struct sockaddr *sa, char *buf, size_t len);

/* 1 if sa is a loopback address (127.0.0.0/8, ::1, ::ffff:127.0.0.0/104). */
int fault_proxy_addr_is_loopback(const struct sockaddr *sa);
/* 1 if sa is a private address (10/8, 172.16/12, 192.168/16, fc00::/7). */
int fault_proxy_addr_is_private(const struct sockaddr *sa);

/* Creates a proxy on loop listening on listen_addr (port 0 = any free port)
 * and forwarding to target. opts may be NULL (defaults). On success *out is
 * the proxy, already listening; close it with fault_proxy_close(). Errors:
 * -EPERM (an address is not loopback), -EINVAL (bad option or address
 * family), -ENOMEM, or the bind/listen error (-EADDRINUSE, ...). Argument
 * errors open nothing; after a bind/listen error an internal handle is still
 * closing, so run the loop (it finishes at once) before uv_loop_close().
 * The target is only contacted when a client connects. */
int fault_proxy_create(uv_loop_t *loop, const struct sockaddr *listen_addr,
                       const struct sockaddr *target, const fault_proxy_opts_t *opts,
                       fault_proxy_t **out);

/* The address the proxy is bound to (with the real port). Returns 0 or an
 * error from getsockname. */
int fault_proxy_bound_addr(const fault_proxy_t *proxy, struct sockaddr_storage *out);
/* The bound port (host order), or 0 if unknown. */
int fault_proxy_port(const fault_proxy_t *proxy);

/* Resets every current connection on both sides (SO_LINGER 0, close) and
 * drops what was queued for them. New connections are not affected.
 * Returns the number of connections cut (>= 0), or -EINVAL if closing. */
int fault_proxy_cut(fault_proxy_t *proxy);

/* Blackhole on (1) / off (0). On: no byte moves in either direction on any
 * connection, current or new (new connections are still accepted and their
 * target dialed). Off: forwarding resumes; nothing queued is lost. A write
 * already handed to the kernel when it turns on still completes. */
int fault_proxy_blackhole(fault_proxy_t *proxy, int on);

/* Refuse on (1) / off (0): new connections are accepted and reset at once;
 * connections already open keep working. */
int fault_proxy_refuse(fault_proxy_t *proxy, int on);

/* Sets the latency and jitter (ms, each <= FAULT_PROXY_LATENCY_MAX) for
 * chunks read from now on; chunks already queued keep their deadline.
 * -EINVAL if out of range. */
int fault_proxy_latency(fault_proxy_t *proxy, uint32_t ms, uint32_t jitter_ms);

/* Connections accepted from now on are reset (both sides) once they have
 * forwarded exactly `bytes` bytes, both directions together; 0 = off. For
 * cutting a fresh connection at every byte offset of an exchange. */
int fault_proxy_cut_at(fault_proxy_t *proxy, uint64_t bytes);
/* Sets slicing: 0 = off, else every write is 1..max bytes (uniform), max <=
 * FAULT_PROXY_SLICE_MAX. -EINVAL if out of range. */
int fault_proxy_slice(fault_proxy_t *proxy, uint32_t max);

/* Re-seeds the proxy's RNG (slice sizes and jitter); 0 means 1. */
void fault_proxy_seed(fault_proxy_t *proxy, uint64_t seed);

/* Copies the statistics into *out. */
void fault_proxy_stats(const fault_proxy_t *proxy, fault_proxy_stats_t *out);

/* Current switches, for reports. */
int fault_proxy_is_blackholed(const fault_proxy_t *proxy);
int fault_proxy_is_refusing(const fault_proxy_t *proxy);

/* Closes the listener and every connection (a plain close, not a reset),
 * then calls cb(proxy, arg) exactly once (cb may be NULL) and frees the
 * proxy. Returns 0, or -EINVAL if already closing (no second callback). */
int fault_proxy_close(fault_proxy_t *proxy, fault_proxy_close_cb cb, void *arg);

#endif
