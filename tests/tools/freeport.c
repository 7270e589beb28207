/*
 * wsmux-freeport: print one free TCP port on 127.0.0.1.
 *
 * Binds a TCP socket to 127.0.0.1:0, asks the kernel which port it picked
 * (getsockname), prints it and closes the socket. The port is free at that
 * moment; a caller that binds it right away (sshd in the e2e tests) wins the
 * race in practice. Used by tests/e2e/lib.sh.
 *
 * Usage: wsmux-freeport
 * Exit status: 0 with the port on stdout, 1 on failure.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc != 1) {
    fprintf(stderr, "usage: %s\n", argv[0]);
    return 1;
  }
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) {
    perror("wsmux-freeport: socket");
    return 1;
  }
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sa.sin_port = 0;
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    perror("wsmux-freeport: bind");
    close(fd);
    return 1;
  }
  socklen_t len = sizeof sa;
  if (getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
    perror("wsmux-freeport: getsockname");
    close(fd);
    return 1;
  }
  close(fd);
  printf("%u\n", (unsigned)ntohs(sa.sin_port));
  return fflush(stdout) == 0 ? 0 : 1;
}
