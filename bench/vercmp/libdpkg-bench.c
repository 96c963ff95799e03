/*
 * libdpkg's own comparison speed, for bench/vercmp/run.mjs: reads "A<TAB>B" lines from the file
 * named by argv[1], parses every version first (not timed), then times only the loop of
 * dpkg_version_compare() over all pairs, `rounds` times, and prints one JSON line with the rate
 * and the count of each answer (the caller checks they match ours). For a like-for-like figure
 * (ours takes strings) it also times parseversion() of both strings plus the comparison.
 */
#define LIBDPKG_VOLATILE_API 1
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <dpkg/dpkg.h>
#include <dpkg/dpkg-db.h>
#include <dpkg/version.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  if (argc < 2) { fprintf(stderr, "usage: %s PAIRS-FILE [ROUNDS]\n", argv[0]); return 2; }
  int rounds = argc > 2 ? atoi(argv[2]) : 3;
  FILE *f = fopen(argv[1], "r");
  if (!f) { perror(argv[1]); return 2; }
  size_t cap = 1 << 20, n = 0;
  struct dpkg_version *a = malloc(cap * sizeof *a), *b = malloc(cap * sizeof *b);
  char **sa = malloc(cap * sizeof *sa), **sb = malloc(cap * sizeof *sb);
  static char line[1 << 16];
  while (fgets(line, sizeof line, f)) {
    line[strcspn(line, "\n")] = 0;
    char *tab = strchr(line, '\t');
    if (!tab) continue;
    *tab = 0;
    if (n == cap) {
      cap *= 2;
      a = realloc(a, cap * sizeof *a); b = realloc(b, cap * sizeof *b);
      sa = realloc(sa, cap * sizeof *sa); sb = realloc(sb, cap * sizeof *sb);
    }
    sa[n] = strdup(line);
    sb[n] = strdup(tab + 1);
    struct dpkg_error err = DPKG_ERROR_OBJECT;
    if (parseversion(&a[n], line, &err) || parseversion(&b[n], tab + 1, &err)) {
      fprintf(stderr, "dpkg rejects a pair: %s\n", err.str);
      return 1;
    }
    n++;
  }
  fclose(f);
  long count[3] = {0, 0, 0};
  double best = 1e30;
  for (int r = 0; r < rounds; r++) {
    long c[3] = {0, 0, 0};
    double t0 = now();
    for (size_t i = 0; i < n; i++) {
      int v = dpkg_version_compare(&a[i], &b[i]);
      c[(v > 0) - (v < 0) + 1]++;
    }
    double dt = now() - t0;
    if (dt < best) best = dt;
    memcpy(count, c, sizeof c);
  }
  /* parse + compare; nffreeall() returns what parseversion() took between rounds */
  nffreeall();
  double bestParse = 1e30;
  long sink = 0;
  for (int r = 0; r < rounds; r++) {
    double t0 = now();
    for (size_t i = 0; i < n; i++) {
      struct dpkg_version x, y;
      struct dpkg_error err = DPKG_ERROR_OBJECT;
      parseversion(&x, sa[i], &err);
      parseversion(&y, sb[i], &err);
      sink += dpkg_version_compare(&x, &y) > 0;
    }
    double dt = now() - t0;
    if (dt < bestParse) bestParse = dt;
    nffreeall();
  }
  printf("{\"pairs\":%zu,\"seconds\":%.6f,\"perSecond\":%.0f,\"parseAndComparePerSecond\":%.0f,"
         "\"less\":%ld,\"equal\":%ld,\"greater\":%ld,\"sink\":%ld}\n",
         n, best, n / best, n / bestParse, count[0], count[1], count[2], sink);
  return 0;
}
