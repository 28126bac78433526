/*
 * net.h — secure, multiplexed libp2p connections. The only header net/
 * exposes to the layers above (migration, dispatcher, receiver, facade).
 *
 * Per connection: TCP -> multistream-select /noise -> Noise XX (libp2p
 * payload) -> multistream-select /yamux/1.0.0 -> yamux streams, each opened
 * with multistream-select of its protocol. /ipfs/ping/1.0.0 is served and
 * used as the keepalive.
 *
 * Threads: everything here runs on the loop thread only.
 * Memory: net owns connections and streams. Handles passed to callbacks are
 * valid during the callback, and afterwards until their close/free callback.
 */
#ifndef BFTNET_NET_H
#define BFTNET_NET_H

#include "core.h"
#include "proto.h"

/* ------------------------------------------------- the libuv transport */
/* The production implementation of the seam (core.h): libuv TCP, timers,
 * async handles. With loop NULL it creates and owns its loop; otherwise it
 * runs on the application's. Freed with net_transport_uv_free, from any
 * thread, after ops->shutdown ran on the loop thread and the loop is no
 * longer run by anyone else: it finishes the close callbacks (and closes
 * an owned loop) before it frees. */
struct uv_loop_s;
int net_transport_uv_new(struct uv_loop_s *loop, const bn_seam_t *seam, bn_transport_t **out);
void net_transport_uv_free(bn_transport_t *t);
/* Write-queue bytes above which a socket counts as congested. */
#define NET_WRITE_HIGH_MARK (4u * 1024u * 1024u)
/* A drained write buffer larger than this is freed, not kept for reuse. */
#define NET_WRITE_RETAIN (2u * 1024u * 1024u)
/* Paced connections (net_config_t.paced): a stream's data write is at most
 * one piece, and data streams write only while the connection's unsent
 * output (its buffer and the socket's write in flight) is below the slack:
 * whatever a stream writes next waits behind less than one piece plus the
 * slack (the control frames: window updates, ping answers). */
#define NET_PACE_PIECE (16u * 1024u)
#define NET_PACE_SLACK (1024u)
/* The in-flight cap of a paced connection (net_config_t.inflight_min):
 * what the kernel may hold for it, sent and not yet acknowledged or not yet
 * sent, which a stream of priority > 0 never writes past. The larger of
 * inflight_min, NET_INFLIGHT_BDP_GAIN times the path's bandwidth-delay
 * product and NET_INFLIGHT_TICK_GAIN re-check periods at its delivery rate.
 * The round trip is the smallest the kernel measured; the rate is the
 * bytes the peer acknowledged over spans of at least NET_INFLIGHT_SPAN_NS
 * (an average: a token bucket's bursts at line rate do not inflate it), the
 * larger of the last two spans. A write is cut to the room left under the
 * cap; with less room than NET_INFLIGHT_PIECE_DIV-th of the cap the stream
 * waits, and the connection re-checks every NET_INFLIGHT_RECHECK_US to 1 ms
 * (as long as the cap's other terms cover: conn_cap_update; every
 * millisecond where the transport has no microsecond timers); the tick
 * term counts the re-checks' average real period, if longer (a busy loop
 * wakes late, and the link must not run dry meanwhile). */
#define NET_INFLIGHT_BDP_GAIN   2
#define NET_INFLIGHT_TICK_GAIN  1.25
#define NET_INFLIGHT_RECHECK_US 250u
#define NET_INFLIGHT_PIECE_DIV  4u
#define NET_INFLIGHT_SPAN_NS    10000000ull
#define NET_INFLIGHT_INFO_NS    1000000ull /* the kernel's counts are read at most this often */
#define NET_INFLIGHT_MAX        (64u * 1024u * 1024u)

/* ------------------------------------------------------------- the node */

typedef struct net net_t;
typedef struct net_conn net_conn_t;
typedef struct net_stream net_stream_t;

typedef struct net_config {
  uint32_t ping_interval_ms;
  uint32_t ping_timeout_ms;
  uint32_t handshake_timeout_ms;
  uint32_t yamux_window;
  uint32_t yamux_max_streams;
  uint32_t max_connections;
  uint32_t max_pending_handshakes;
  const bn_logger_t *log; /* the node's (NULL: the process default) */
  /* Pace data streams (NET_PACE_PIECE, NET_PACE_SLACK) instead of letting
   * them fill the connection's output up to its high marks; parked streams
   * go on by priority (net_stream_set_prio). */
  bool paced;
  uint32_t notsent_lowat; /* TCP_NOTSENT_LOWAT of every socket, bytes (0: not set) */
  /* Paced only: streams of priority > 0 write while the kernel holds less
   * than a connection's in-flight cap (NET_INFLIGHT_*), at least this many
   * bytes (0: no cap). */
  uint32_t inflight_min;
} net_config_t;

typedef struct net_cbs {
  /* A connection finished its upgrade (authenticated, multiplexed). */
  void (*on_conn_up)(void *ud, net_conn_t *c);
  /* A connection that was up ended. It is freed after the callback. */
  void (*on_conn_down)(void *ud, net_conn_t *c, bftnet_reason_t reason, int err);
  /* Optional: the application's name for a peer (a member's node ID), or
   * NULL / "" for none; logs name it beside the peer ID. */
  const char *(*peer_name)(void *ud, const peerid_t *peer);
} net_cbs_t;

struct bftnet_key;
int net_new(net_t **out, bn_transport_t *t, const struct bftnet_key *key, const net_config_t *cfg,
            const net_cbs_t *cbs, void *ud, bn_counters_t *counters) BFTNET_WUR;
/* Closes every listener and connection (events for those that were up).
 * done runs once everything has closed; then net_free. */
void net_close(net_t *n, void (*done)(void *ud), void *ud);
void net_free(net_t *n);
const peerid_t *net_local_id(const net_t *n);
bn_transport_t *net_transport(net_t *n);

/* Listens; writes the bound address (with /p2p/<own id>) into bound (may be
 * NULL). On any error, BFTNET_EBUFSIZE for a bound too small included,
 * nothing stays bound. */
int net_listen(net_t *n, const maddr_t *addr, char *bound, size_t cap) BFTNET_WUR;

/* Dials. cb runs exactly once (never synchronously) with the connection up,
 * or NULL and an error (BFTNET_EPEERMISMATCH, BFTNET_ETIMEDOUT, BFTNET_EAUTH,
 * BFTNET_EPROTO, BFTNET_EUNREACHABLE, -errno). If addr has /p2p/ID and a
 * connection to ID is up, it is reused. Returns an error only for bad
 * arguments / limits, and then cb does not run. */
typedef void (*net_dial_cb)(void *ud, net_conn_t *c, int err);
int net_dial(net_t *n, const maddr_t *addr, net_dial_cb cb, void *ud) BFTNET_WUR;
/* Same, but always a new connection (failback probes, path changes). */
int net_dial_fresh(net_t *n, const maddr_t *addr, net_dial_cb cb, void *ud) BFTNET_WUR;

/* During a dial callback that reports BFTNET_EPEERMISMATCH: the peer ID
 * that answered (authenticated). NULL anywhere else. */
const peerid_t *net_dial_actual_peer(const net_t *n);
/* Sends GO_AWAY (normal termination) on every connection that is up, and
 * flushes it: the peers open no new streams on them and report their end as
 * an orderly one (BFTNET_REASON_GOING_AWAY). The connections stay open. */
void net_goaway(net_t *n);
/* "r1 (12D3KooW...)" when peer_name names the peer, else its peer ID. */
#define NET_PEER_LABEL_MAX (BFTNET_NODE_ID_MAX + BFTNET_PEER_ID_MAX + 4)
void net_peer_label(net_t *n, const peerid_t *peer, char *out, size_t cap);

/* Closes every connection to peer, in any state (membership removal). */
void net_close_peer(net_t *n, const peerid_t *peer, bftnet_reason_t reason);
/* Counts connections to peer that are up. */
unsigned net_count_conns(net_t *n, const peerid_t *peer);

/* The connections up to peer, one after the other: prev NULL for the first;
 * NULL after the last. A connection whose peer sent GO_AWAY is not up for
 * new work: neither these, net_find_conn nor net_count_conns count it. */
net_conn_t *net_conn_iter(net_t *n, const peerid_t *peer, net_conn_t *prev);
/* A connection up to peer (the most recently created of those up), or NULL. */
net_conn_t *net_find_conn(net_t *n, const peerid_t *peer);

const peerid_t *net_conn_peer(const net_conn_t *c);
bool net_conn_outbound(const net_conn_t *c);
/* The address dialed (outbound) or the remote's (inbound). */
const struct sockaddr_storage *net_conn_sa(const net_conn_t *c);
/* Creation order of connections (oldest = smallest). */
uint64_t net_conn_seq(const net_conn_t *c);
bool net_conn_ready(const net_conn_t *c);
void net_conn_remote_addr(const net_conn_t *c, char *out, size_t cap);
void net_conn_set_user(net_conn_t *c, void *user);
void *net_conn_get_user(const net_conn_t *c);
/* Closes the connection (reason LOCAL_CLOSE unless given). */
void net_conn_close(net_conn_t *c, bftnet_reason_t reason, int err);
/* The peer sent GO_AWAY on this connection, or net_peer_going_away marked
 * it: its peer is going away. */
bool net_conn_going_away(const net_conn_t *c);
/* The peer sent GO_AWAY (normal termination) on this very connection. */
bool net_conn_said_goaway(const net_conn_t *c);
/* The peer is going away (it reset a stream after its GO_AWAY on one
 * connection): every connection to it that exists now, in any state, is
 * treated as if it had said GO_AWAY too (no new work; an orderly end). Its
 * GO_AWAY frames travel on separate TCP connections and arrive in any
 * order, and a connection it had not finished setting up gets none.
 * Connections made after this are not marked. */
void net_peer_going_away(net_t *n, const peerid_t *peer);
/* The same mark on one connection (one that authenticated only later). */
void net_conn_mark_going_away(net_conn_t *c);
/* The creation number the last connection got (net_conn_seq). */
uint64_t net_last_conn_seq(const net_t *n);
/* Why the connection ended (BFTNET_REASON_NONE while it has not). */
bftnet_reason_t net_conn_end_reason(const net_conn_t *c);

/* What a connection tells about its peer's health, in the seam's clock. */
typedef struct net_conn_health {
  uint64_t up_ns;       /* when it became ready (0: not yet) */
  uint64_t last_rx_ns;  /* when bytes last arrived from the peer */
  uint64_t rtt_last_ns; /* the last ping round trip (0: none yet) */
  uint64_t rtt_srtt_ns; /* smoothed: srtt += (rtt - srtt) / 8, RFC 6298's */
  uint64_t rtt_max_ns;  /* the largest of the last NET_RTT_WINDOW round trips */
  uint32_t rtt_samples; /* round trips measured on it */
  /* Paced connections with an in-flight cap (0 otherwise): what the kernel
   * held at the last check, the most it held at any check, the cap. */
  uint64_t inflight, inflight_max, inflight_cap;
} net_conn_health_t;
void net_conn_health(const net_conn_t *c, net_conn_health_t *out);

/* One ping round trip on the connection; cb once with rtt or error. */
typedef void (*net_ping_cb)(void *ud, uint64_t rtt_ns, int err);
int net_conn_ping(net_conn_t *c, net_ping_cb cb, void *ud) BFTNET_WUR;

/* ------------------------------------------------------------- streams */

typedef struct net_stream_cbs {
  /* The protocol was agreed (outbound: the peer echoed it). Optional. */
  void (*on_ready)(void *ud, net_stream_t *s);
  /* Data; the handler must call net_stream_consume() for it eventually. */
  void (*on_data)(void *ud, net_stream_t *s, const uint8_t *p, size_t n);
  void (*on_fin)(void *ud, net_stream_t *s); /* peer half-closed */
  /* The stream ended abnormally: err is BFTNET_ERESET (peer RST),
   * BFTNET_ENA (protocol refused), BFTNET_ECLOSED (connection gone). */
  void (*on_error)(void *ud, net_stream_t *s, int err);
  void (*on_writable)(void *ud, net_stream_t *s);
  void (*on_free)(void *ud, net_stream_t *s); /* last callback */
  /* Optional: the peer consumed n more bytes we wrote (yamux window
   * updates, not the SYN/ACK grant). */
  void (*on_credit)(void *ud, net_stream_t *s, uint32_t n);
} net_stream_cbs_t;

/* A protocol handler for inbound streams: on_open sets the stream's
 * callbacks (net_stream_set_cbs) and returns 0, or < 0 to reset it. */
typedef int (*net_proto_open_cb)(void *ud, net_conn_t *c, net_stream_t *s);
int net_handle(net_t *n, const char *proto, net_proto_open_cb cb, void *ud) BFTNET_WUR;

/* Opens an outbound stream proposing proto (pipelined: data written right
 * away follows the proposal). */
int net_stream_open(net_conn_t *c, const char *proto, const net_stream_cbs_t *cbs, void *ud,
                    net_stream_t **out) BFTNET_WUR;
void net_stream_set_cbs(net_stream_t *s, const net_stream_cbs_t *cbs, void *ud);
/* Bytes taken (bounded by yamux credit and connection congestion; 0 means
 * wait for on_writable) or BFTNET_ESTATE / BFTNET_ECLOSED. */
int net_stream_write(net_stream_t *s, const uint8_t *p, size_t n);
int net_stream_close(net_stream_t *s); /* FIN */
void net_stream_reset(net_stream_t *s);
void net_stream_consume(net_stream_t *s, size_t n);
/* Same; flush sends the window update now instead of at half the window. */
void net_stream_credit(net_stream_t *s, size_t n, bool flush);
/* Writes up to n bytes ignoring connection congestion (small control
 * messages): the bytes taken, fewer than n only when yamux credit is short
 * (on_writable follows once it returns), or an error. */
int net_stream_write_ctl(net_stream_t *s, const uint8_t *p, size_t n);
/* Bytes net_stream_write would take now (yamux credit; 0 if congested). */
size_t net_stream_send_room(const net_stream_t *s);
/* After send_room returned 0: on_writable once the connection drains or the
 * peer's window update gives credit, whichever was missing. */
void net_stream_want_writable(net_stream_t *s);
/* The order in which streams parked on a congested connection go on when
 * it drains: lower first (0 is the most urgent; default 128), first parked
 * first among equals. */
void net_stream_set_prio(net_stream_t *s, uint8_t prio);
net_conn_t *net_stream_conn(const net_stream_t *s);
/* Bytes we wrote on s before its protocol was agreed: the multistream
 * header, our proposal or our answers (every `na`, then the echo). */
size_t net_stream_pre_bytes(const net_stream_t *s);
const char *net_stream_protocol(const net_stream_t *s);

/* The protocol IDs bftnet speaks. */
#define NET_PROTO_NOISE "/noise"
#define NET_PROTO_YAMUX "/yamux/1.0.0"
#define NET_PROTO_PING  "/ipfs/ping/1.0.0"

#endif /* BFTNET_NET_H */
