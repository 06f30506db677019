// LD_PRELOAD tracer: which 4 KiB pages of the main executable's code a run
// executes, in first-touch order. The kernel maps code 64 KiB at a time
// (fault-around), so residency cannot tell which pages ran; this can.
//
// Before the executable's own initialisers run, its executable segment is made
// PROT_NONE. Each first execution of a page traps (SIGSEGV); the handler records
// the page's offset from the load base and makes the page executable again.
// On SIGUSR2 the list is written to $WAOPS_TOUCH_OUT (hex, one page per line)
// and the process goes on.
#define _GNU_SOURCE
#include <fcntl.h>
#include <link.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MAX_PAGES (1 << 16)
static uintptr_t base, lo, hi;
static uintptr_t pages[MAX_PAGES];
static unsigned char opened[MAX_PAGES / 8];  // one bit per code page made executable
static volatile int count;
static char out_path[4096], tmp_path[4100];

// The last address this thread faulted at. Initial-exec, so the handler's
// access allocates nothing.
static __thread uintptr_t last_fault __attribute__((tls_model("initial-exec")));

static void on_segv(int sig, siginfo_t *info, void *ctx) {
    (void)ctx;
    uintptr_t a = (uintptr_t)info->si_addr;
    uintptr_t index = (a - lo) / 4096;
    uintptr_t page = a & ~(uintptr_t)4095;
    // Outside the code: a real fault, which the default action re-raises when
    // the instruction runs again.
    if (a < lo || a >= hi || index >= MAX_PAGES) {
        signal(sig, SIG_DFL);
        return;
    }
    int seen = __atomic_fetch_or(&opened[index / 8], (unsigned char)(1u << index % 8), __ATOMIC_RELAXED) &
               (1u << index % 8);
    if (seen) {
        // Another thread opened the page and may not have made it executable
        // yet: make sure, and retry. The same thread failing at the same
        // address again is a real fault (a write into code, say).
        if (last_fault == a) {
            signal(sig, SIG_DFL);
            return;
        }
        last_fault = a;
        mprotect((void *)page, 4096, PROT_READ | PROT_EXEC);
        return;
    }
    last_fault = a;
    mprotect((void *)page, 4096, PROT_READ | PROT_EXEC);
    int i = __atomic_fetch_add(&count, 1, __ATOMIC_RELAXED);
    if (i < MAX_PAGES) pages[i] = page - base;
}

static void on_dump(int sig) {
    (void)sig;
    // Written aside and renamed, so a reader never sees half a list.
    int fd = open(tmp_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return;
    char line[32];
    int n = count < MAX_PAGES ? count : MAX_PAGES;
    for (int i = 0; i < n; i++) {
        int len = 0;
        uintptr_t v = pages[i];
        char tmp[20];
        do { tmp[len++] = "0123456789abcdef"[v & 15]; v >>= 4; } while (v);
        for (int j = 0; j < len; j++) line[j] = tmp[len - 1 - j];
        line[len] = '\n';
        write(fd, line, len + 1);
    }
    close(fd);
    rename(tmp_path, out_path);
}

static int find_exe(struct dl_phdr_info *info, size_t size, void *data) {
    (void)size; (void)data;
    if (info->dlpi_name && info->dlpi_name[0]) return 0;  // the executable has no name
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *p = &info->dlpi_phdr[i];
        if (p->p_type == PT_LOAD && (p->p_flags & PF_X)) {
            base = info->dlpi_addr;
            lo = (base + p->p_vaddr) & ~(uintptr_t)4095;
            hi = (base + p->p_vaddr + p->p_memsz + 4095) & ~(uintptr_t)4095;
            return 1;
        }
    }
    return 0;
}

__attribute__((constructor)) static void start(void) {
    const char *out = getenv("WAOPS_TOUCH_OUT");
    if (!out) return;
    strncpy(out_path, out, sizeof out_path - 1);
    snprintf(tmp_path, sizeof tmp_path, "%s.tmp", out_path);
    unsetenv("LD_PRELOAD");  // children (none expected) run untraced
    dl_iterate_phdr(find_exe, NULL);
    if (!lo) return;
    static char alt[1 << 16];
    stack_t ss = {.ss_sp = alt, .ss_size = sizeof alt};
    sigaltstack(&ss, NULL);
    struct sigaction sa = {0};
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigaction(SIGSEGV, &sa, NULL);
    signal(SIGUSR2, on_dump);
    mprotect((void *)lo, hi - lo, PROT_NONE);
}
