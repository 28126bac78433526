/* events.c — bftnet's event callback: the migration events counted per
 * peer, and an "event" line for the rare ones. */
#include <inttypes.h>

#include "replica.h"

/* Loop thread. An "event" line for the rare events (aborted, denied, peer
 * restarted), at most RP_EV_LINES_PER_S per second (the rest counted). */
static void event_line(const bftnet_event_t *ev, const char *name) {
  static uint64_t window_ns, in_window; /* loop thread only */
  uint64_t now = rp_now_ns();
  if (now - window_ns >= NS_PER_S) window_ns = now, in_window = 0;
  if (++in_window > RP_EV_LINES_PER_S) {
    atomic_fetch_add(&rp.ev_lines_suppressed, 1);
    return;
  }
  const char *peer = ev->node_id ? ev->node_id : "";
  json_t *o = json_pack("{s:s, s:s, s:o, s:s, s:s, s:s, s:o, s:b}", "type", "event", "id", rp.o.id,
                        "t_ms", jsonx_u64(rp_ms_since_start()), "event", name, "peer", peer,
                        "peer_id", ev->peer_id ? ev->peer_id : "", "stream_id",
                        jsonx_u64(ev->stream_id), "outbound", ev->outbound != 0);
  if (ev->conn_id) json_object_set_new(o, "conn", jsonx_u64(ev->conn_id));
  if (ev->type == BFTNET_EV_ABORTED) {
    json_object_set_new(o, "why", json_string(ev->mig_abort ? ev->mig_abort : ""));
    json_object_set_new(o, "lost", jsonx_u64(ev->lost));
  }
  if (ev->type == BFTNET_EV_MEMBER_UNREACHABLE || ev->type == BFTNET_EV_MEMBER_WRONG_PEER) {
    json_object_set_new(o, "error", json_string(bftnet_err_name(ev->error)));
    json_object_set_new(o, "addr", json_string(ev->remote_addr ? ev->remote_addr : ""));
    json_object_set_new(o, "expected_peer_id",
                        json_string(ev->expected_peer_id ? ev->expected_peer_id : ""));
    json_object_set_new(o, "dial_failures", jsonx_u64(ev->dial_failures));
  }
  if (ev->type == BFTNET_EV_ABORTED)
    rp_log("event: %s %s stream %s (%s), %" PRIu64 " messages unconfirmed", name,
           ev->outbound ? "our" : "the", peer[0] ? peer : "(unknown node ID)",
           ev->mig_abort ? ev->mig_abort : "?", ev->lost);
  else
    rp_log("event: %s, %s", name, peer[0] ? peer : "(unknown node ID)");
  lines_emit(o);
}

/* bftnet's event callback (loop thread): counts the migration events per
 * peer, lock-free. A PEER_RESTARTED count is what arms the receiver's switch
 * to the peer's new incarnation (stats_rx_observe). Fast: no lock, one line
 * for the rare kinds. */
void events_on_event(const bftnet_event_t *ev, void *user) {
  (void)user;
  /* A member we cannot dial (or that answers as someone else): a line,
   * not a count (the library says once per change of what fails). */
  if (ev->type == BFTNET_EV_MEMBER_UNREACHABLE || ev->type == BFTNET_EV_MEMBER_WRONG_PEER)
    return event_line(ev, bftnet_event_name(ev->type));
  if (ev->type < RP_EV_FIRST || ev->type > RP_EV_LAST) return;
  int k = (int)ev->type - RP_EV_FIRST;
  rp_peer_t *p = ev->node_id && ev->node_id[0] ? peers_find(ev->node_id) : NULL;
  if (p) {
    if (ev->type == BFTNET_EV_ABORTED) atomic_fetch_add(&p->ev_aborted_lost, ev->lost);
    atomic_fetch_add(&p->ev[k], 1);
  } else {
    atomic_fetch_add(&rp.ev_unattributed[k], 1);
  }
  if (ev->type == BFTNET_EV_ABORTED || ev->type == BFTNET_EV_DENIED ||
      ev->type == BFTNET_EV_PEER_RESTARTED)
    event_line(ev, rp_ev_names[k]);
}
