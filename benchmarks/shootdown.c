/* What one TLB shootdown costs the thread that unmaps: bench_shootdown.py builds and runs this.
 *
 * On CPU 0 one thread maps a page, touches it and unmaps it, in a loop, as bench_stall's
 * probe does. Alone, its munmap flushes only its own TLB. With a second thread of the same
 * process spinning on CPU 1, the memory is live on two CPUs, so every munmap must
 * interrupt CPU 1 and wait for it to flush (a TLB shootdown). The difference per
 * shootdown, counted from /proc/interrupts' TLB row, is that interrupt's cost.
 * Phases alternate (alone, spinning, ...) so a drift of the machine shows in both.
 * Prints one JSON line. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

static volatile int spinning;

static void pin(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0) {
        perror("sched_setaffinity");
        exit(2);
    }
}

static void *spin(void *unused) {
    (void)unused;
    pin(1);
    while (spinning) {
    }
    return NULL;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static long tlb_interrupts(void) { /* the TLB row of /proc/interrupts, all CPUs */
    FILE *f = fopen("/proc/interrupts", "r");
    char line[8192];
    long total = 0;
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof line, f) != NULL) {
        char *p = line;
        while (*p == ' ')
            p++;
        if (strncmp(p, "TLB:", 4) != 0)
            continue;
        p += 4;
        for (;;) {
            char *end;
            long value = strtol(p, &end, 10);
            if (end == p)
                break;
            total += value;
            p = end;
        }
    }
    fclose(f);
    return total;
}

static void phase(int iterations, double *us_per_iteration, double *shootdowns_per_iteration) {
    long before = tlb_interrupts();
    double start = now();
    for (int i = 0; i < iterations; i++) {
        char *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (page == MAP_FAILED) {
            perror("mmap");
            exit(2);
        }
        page[0] = 1;
        munmap(page, 4096);
    }
    *us_per_iteration = (now() - start) / iterations * 1e6;
    *shootdowns_per_iteration = (double)(tlb_interrupts() - before) / iterations;
}

int main(int argc, char **argv) {
    int iterations = argc > 1 ? atoi(argv[1]) : 20000;
    int pairs = argc > 2 ? atoi(argv[2]) : 3;
    pin(0);
    printf("{\"iterations\": %d, \"phases\": [", iterations);
    for (int k = 0; k < pairs; k++) {
        double alone_us, alone_tlb, spin_us, spin_tlb;
        pthread_t thread;
        phase(iterations, &alone_us, &alone_tlb);
        spinning = 1;
        if (pthread_create(&thread, NULL, spin, NULL) != 0) {
            perror("pthread_create");
            return 2;
        }
        struct timespec settle = {0, 50 * 1000 * 1000};
        nanosleep(&settle, NULL);
        phase(iterations, &spin_us, &spin_tlb);
        spinning = 0;
        pthread_join(thread, NULL);
        printf("%s{\"alone_us\": %.3f, \"alone_shootdowns\": %.4f, \"spinning_us\": %.3f, "
               "\"spinning_shootdowns\": %.4f}",
               k ? ", " : "", alone_us, alone_tlb, spin_us, spin_tlb);
    }
    printf("]}\n");
    return 0;
}
