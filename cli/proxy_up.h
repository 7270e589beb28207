/*
 * `wsmux proxy up -f FILE`: one process serving every service of FILE
 * (cli/upfile.h), each with a proxy of its own (cli/proxy_app.h: its own
 * WebSocket, endpoint, pidfile and control socket), on one libuv loop.
 *
 * Start: every service's pidfile is taken first, all or nothing: one held
 * by another process refuses the start (exit 5), and when they are held by
 * a `proxy up` of the same FILE, that one's endpoints are shown (exit 0).
 * Each service prints its ready-made commands once its WebSocket is up,
 * then a summary line; a service the edge refuses for good (401, 404,
 * 409) stops alone, the others keep running, and the process exits with
 * that code when no service is left.
 *
 * SIGHUP (or `wsmux proxy reload`) reloads FILE: services no longer listed
 * stop as SIGTERM stops one proxy (listener closed, GOAWAY and a clean
 * close to the edge, their open connections closed), new ones start,
 * changed ones (user, address, port) restart, the others are not touched:
 * same WebSocket, same open connections. A file that does not parse, or
 * that changes "edge" or "ca", is refused with a message and nothing
 * changes. SIGINT / SIGTERM stop every service, exit 0.
 */
#ifndef WSMUX_PROXY_UP_H
#define WSMUX_PROXY_UP_H

/* argv holds the words after "up"; returns the exit code. */
int cmd_proxy_up(int argc, char **argv);

#endif
