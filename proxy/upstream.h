/*
 * The edge's side of a stream: connect a relay stream's TCP handle to the
 * service's upstream (its sshd), with a timeout, then accept the stream
 * (OPEN_OK) or refuse it (OPEN_FAIL with REFUSED / UNREACHABLE /
 * CONNECT_ERROR and the reason).
 *
 * Ownership: the pending connect owns itself and frees itself when every
 * callback has run. While it is pending it is the relay stream's user
 * pointer; the relay's `finished` hook must call upstream_detach(rs) so a
 * stream that goes away mid-connect is never touched again.
 */
#ifndef WSMUX_UPSTREAM_H
#define WSMUX_UPSTREAM_H

#include <stdint.h>
#include <uv.h>

#include "proxy/relay.h"

void upstream_connect(uv_loop_t *loop, relay_stream_t *rs, const char *host,
                      uint16_t port, uint32_t timeout_ms);
void upstream_detach(relay_stream_t *rs);

#endif
