/*
 * The floor of filterPcap's fast road on this machine: the least CPU a pass over a pcap file in
 * the page cache can take, with the filter reduced to a few inline compares. Not our engine: the
 * file walked as our road walks it (mapped with MAP_POPULATE, the mapping fetched DISTANCE bytes
 * ahead of the walk, the kept records sent to /dev/null with writev from the mapping), or read
 * into a buffer of DISTANCE bytes (mode r). `tcp port 80` is inlined for the bench's frames only
 * (untagged IPv4 without options): compare its count with bench/filter.bench.mjs's.
 *
 *   cc -O2 -o /tmp/pcap-floor bench/pcap-floor.c
 *   /tmp/pcap-floor FILE.pcap m 8192     # mapped, fetched 8 KiB ahead
 *   /tmp/pcap-floor FILE.pcap r 262144   # read in 256 KiB pieces
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

static size_t packets, kept;
static struct iovec pieces[1024];
static int used, out;

static void flush(void) {
  if (used && writev(out, pieces, used) < 0) abort();
  used = 0;
}

static void emit(const uint8_t *p, size_t len) {
  if (used && (uint8_t *)pieces[used - 1].iov_base + pieces[used - 1].iov_len == p) {
    pieces[used - 1].iov_len += len;
    return;
  }
  pieces[used].iov_base = (void *)p;
  pieces[used].iov_len = len;
  if (++used == 1024) flush();
}

/* Walks the whole records of m[at, end); returns where the first partial one starts. */
static size_t walk(const uint8_t *m, size_t at, size_t end, size_t ahead) {
  const uint8_t *fetched = m + at;
  while (at + 16 <= end) {
    uint32_t cap;
    memcpy(&cap, m + at + 8, 4);
    if (at + 16 + cap > end) break;
    for (const uint8_t *to = m + (at + ahead < end ? at + ahead : end); fetched < to; fetched += 64)
      __builtin_prefetch(fetched);
    const uint8_t *p = m + at + 16;
    if (cap >= 38 && p[23] == 6 && ((p[34] == 0 && p[35] == 80) || (p[36] == 0 && p[37] == 80))) {
      emit(m + at, 16 + cap);
      kept++;
    }
    at += 16 + cap;
    packets++;
  }
  return at;
}

int main(int argc, char **argv) {
  if (argc != 4) return fprintf(stderr, "usage: %s FILE.pcap m|r DISTANCE\n", argv[0]), 2;
  struct rusage r0, r1;
  getrusage(RUSAGE_SELF, &r0);
  int fd = open(argv[1], O_RDONLY);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) return perror(argv[1]), 1;
  size_t distance = strtoul(argv[3], NULL, 10);
  out = open("/dev/null", O_WRONLY);
  if (argv[2][0] == 'm') {
    const uint8_t *m = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
    if (m == MAP_FAILED) return perror("mmap"), 1;
    walk(m, 24, st.st_size, distance);
    flush();
    munmap((void *)m, st.st_size);
  } else {
    uint8_t *buf = malloc(distance + (16 << 20) + 16);
    size_t have = 0, offset = 24;
    for (;;) {
      ssize_t got = pread(fd, buf + have, distance, offset);
      if (got < 0) abort();
      offset += got;
      have += got;
      size_t at = walk(buf, 0, have, 0);
      flush();
      memmove(buf, buf + at, have - at);
      have -= at;
      if (got == 0) break;
    }
  }
  getrusage(RUSAGE_SELF, &r1);
  double user = (r1.ru_utime.tv_sec - r0.ru_utime.tv_sec) * 1e3 + (r1.ru_utime.tv_usec - r0.ru_utime.tv_usec) / 1e3;
  double sys = (r1.ru_stime.tv_sec - r0.ru_stime.tv_sec) * 1e3 + (r1.ru_stime.tv_usec - r0.ru_stime.tv_usec) / 1e3;
  printf("%zu packets, %zu kept: user %.1f ms, system %.1f ms, CPU %.1f ms\n", packets, kept, user, sys, user + sys);
  return 0;
}
