/* The reference C implementation of Argon2 (Debian's libargon2, the PHC winner's code) at
 * the same parameters as ciam's default: argon2id, m=19456 KiB, t=2, p=1, 32-byte output.
 *
 * Usage: argon2_ref THREADS SECONDS
 * Runs THREADS threads, each hashing in a loop until SECONDS have passed, and prints the
 * total number of hashes. argon2_hash allocates its memory per call (libargon2 has no API to
 * reuse it), which is what every caller of the library gets.
 *
 * Built by benches/run.sh: gcc -O3 -o argon2_ref argon2_ref.c -largon2 -lpthread
 */
#include <argon2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double seconds;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *run(void *arg) {
  unsigned long *count = arg;
  const char pwd[] = "correct horse battery staple";
  const unsigned char salt[16] = "0123456789abcdef";
  unsigned char out[32];
  double end = now() + seconds;
  while (now() < end) {
    if (argon2id_hash_raw(2, 19456, 1, pwd, sizeof pwd - 1, salt, sizeof salt, out, sizeof out) != ARGON2_OK) {
      fprintf(stderr, "argon2id_hash_raw failed\n");
      exit(1);
    }
    (*count)++;
  }
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s THREADS SECONDS\n", argv[0]);
    return 2;
  }
  int threads = atoi(argv[1]);
  seconds = atof(argv[2]);
  if (threads < 1 || threads > 256 || seconds <= 0) {
    fprintf(stderr, "bad arguments\n");
    return 2;
  }
  pthread_t tid[256];
  unsigned long counts[256] = {0};
  double start = now();
  for (int i = 0; i < threads; i++) pthread_create(&tid[i], NULL, run, &counts[i]);
  unsigned long total = 0;
  for (int i = 0; i < threads; i++) {
    pthread_join(tid[i], NULL);
    total += counts[i];
  }
  printf("%lu %.6f\n", total, now() - start);
  return 0;
}
