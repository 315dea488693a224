/* pinit's C prologue: runs in the init binary before Nuitka's runtime and before Py_Initialize.

   Compiled into every pinit binary by toolchain/nuitka_plugin.py, after the header that
   init/early.py generates (PINIT_EARLY_* and pinit_early_steps: the early-start record's format
   and the early file systems, defined once, in Python). It acts only as PID 1: mount /proc
   (Nuitka's start-up reads /proc/self/exe; without it, it aborts and the kernel panics), take
   the last words should the runtime end, hold signals until the Python init handles them, and
   start the first service early when the builder asked for it. */
#include <Python.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

extern PyObject *PyInit__pinit_sys(void);
extern PyObject *PyInit__cffi_backend(void);

/* PID 1 must never exit: the kernel would panic. The Python init never returns, but the
   runtime under it can end the process before the init's own code runs (a failed hard import,
   a fatal interpreter error). These are its last words: a console message, then a reboot after
   a pause long enough to read it, which is the init's default failure policy. */
static void pinit_last_words(const char *why) {
    int fd = open("/dev/console", O_WRONLY | O_NOCTTY);
    const char *msg = "pinit: FATAL: the Python runtime ended (";
    if (fd < 0) fd = 2;
    write(fd, msg, strlen(msg));
    write(fd, why, strlen(why));
    msg = "); rebooting in 5 s\n";
    write(fd, msg, strlen(msg));
    sync();
    sleep(5);
    reboot(RB_AUTOBOOT);
    for (;;) pause();
}

static void pinit_at_exit(void) { pinit_last_words("exit"); }

/* The kernel drops signals to PID 1 that have no handler, but keeps blocked ones pending: until
   the Python init installs its handlers and unblocks them (Kernel.watch_signals), a SIGTERM,
   SIGUSR1/2, Ctrl-Alt-Del's SIGINT or a child's SIGCHLD waits instead of being lost. */
static sigset_t pinit_boot_mask;

static void pinit_block_signals(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGUSR2);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, &pinit_boot_mask);
}

/* Every early step (init/rootfs.py EARLY_ROOTFS, through init/early.py's header): the Python
   init runs the same list later and finds these done. Errors are left for it to see and name. */
#define PINIT_STEPS (sizeof pinit_early_steps / sizeof *pinit_early_steps)
static void pinit_mount(const struct pinit_step *s, unsigned long flags, int with_data) {
    mount(s->source, s->target, s->fstype, s->flags | flags,
          with_data && *s->data ? s->data : NULL);
}
/* `plain`: a slow step's mount without its options (they are what makes it slow). */
static void pinit_early_steps_run(size_t count, int plain) {
    for (size_t i = 0; i < count; i++) {
        const struct pinit_step *s = &pinit_early_steps[i];
        if (s->kind == 'd') {
            mkdir(s->target, (mode_t)s->mode);
        } else if (s->kind == 'l') {
            symlink(s->source, s->target);
        } else if (s->kind == 'm') {
            if (*s->unless && access(s->unless, F_OK) == 0) continue;
            mkdir(s->target, 0755);
            pinit_mount(s, 0, !(plain && s->slow));
        }
    }
}

/* Early start. The builder writes PINIT_EARLY_PATH when the first service needs nothing the
   Python init sets up besides the early file systems (no modules, no data partition): then this
   prologue sets up those file systems and starts the service before the interpreter starts,
   which under emulation takes tens of millions of instructions. The service runs at nice
   PINIT_EARLY_NICE until the Python init has adopted it (PINIT_EARLY=pid,-1 in its
   environment) and reset it.
   The record's format is init/early.py's. */
static void pinit_early_start(void) {
    static char buf[PINIT_EARLY_BYTES];
    char *field[2 * PINIT_EARLY_MAX + 9], *argv[PINIT_EARLY_MAX + 1], *envp[PINIT_EARLY_MAX + 1];
    char cmdline[4096], handover[64];
    int fd, nf = 0, argc, envc, i;
    ssize_t n;
    fd = open("/proc/cmdline", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        n = read(fd, cmdline, sizeof cmdline - 1);
        close(fd);
        cmdline[n > 0 ? n : 0] = 0;
        /* A person asked for the shell or another mode: leave everything to the Python init. */
        if (strstr(cmdline, "pinit.shell") || strstr(cmdline, "pinit.mode")) return;
    }
    fd = open(PINIT_EARLY_PATH, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return;
    buf[n] = 0;
    for (char *p = buf; p < buf + n && nf < (int)(sizeof field / sizeof *field); p += strlen(p) + 1)
        field[nf++] = p;
    if (nf < 6 || strcmp(field[0], PINIT_EARLY_MAGIC) != 0) return;
    argc = atoi(field[4]);
    if (argc < 1 || argc > PINIT_EARLY_MAX || 5 + argc >= nf) return;
    envc = atoi(field[5 + argc]);
    if (envc < 0 || envc > PINIT_EARLY_MAX || 6 + argc + envc > nf) return;
    for (i = 0; i < argc; i++) argv[i] = field[5 + i];
    argv[argc] = NULL;
    for (i = 0; i < envc; i++) envp[i] = field[6 + argc + i];
    envp[envc] = NULL;

    /* The service waits for these: its cgroup's file system plainly, its options later. */
    pinit_early_steps_run(PINIT_STEPS, 1);
    /* Its stdout and stderr stay on the console PID 1 got from the kernel: the first lines
       appear at once, not when the Python init is up to copy them (its later runs go through
       the supervisor's pipe, into the in-memory log too). */
    pid_t pid = fork();
    if (pid < 0) return;
    if (pid == 0) {
        int null = open("/dev/null", O_RDONLY);
        if (*field[3]) {   /* its cgroup (init/cgroup.py), joined before it can start anything */
            char procs[4096];
            int cg;
            mkdir(field[3], 0755);
            snprintf(procs, sizeof procs, "%s/cgroup.procs", field[3]);
            cg = open(procs, O_WRONLY | O_CLOEXEC);
            if (cg >= 0) {
                write(cg, "0", 1);
                close(cg);
            }
        }
        /* A little less CPU than PID 1 until the Python init adopts it: a service that spins
           from its first instruction must not starve the init's set-up. */
        setpriority(PRIO_PROCESS, 0, PINIT_EARLY_NICE);
        setsid();
        signal(SIGABRT, SIG_DFL);
        sigprocmask(SIG_SETMASK, &pinit_boot_mask, NULL);
        dup2(null, 0);
        if (chdir(field[2]) == 0)
            execve(field[1], argv, envp);
        dprintf(2, "pinit: %s: cannot execute: %s\n", field[1], strerror(errno));
        _exit(127);
    }
    snprintf(handover, sizeof handover, "%d,-1", (int)pid);
    setenv("PINIT_EARLY", handover, 1);
}

/* A slow early step (one that waits in the kernel, such as cgroup2's favordynmods mount) and
   the steps before it, run by a helper process while the interpreter starts: the Python init
   finds them done. After early start they are mounted already, plainly: the helper only adds
   the slow options (a remount). It exits at once; PID 1 reaps it with every other child. */
static void pinit_slow_steps(int remount) {
    size_t count = 0;
    for (size_t i = 0; i < PINIT_STEPS; i++)
        if (pinit_early_steps[i].slow) count = i + 1;
    if (count && fork() == 0) {
        if (!remount) pinit_early_steps_run(count, 0);
        else
            for (size_t i = 0; i < count; i++)
                if (pinit_early_steps[i].slow) pinit_mount(&pinit_early_steps[i], MS_REMOUNT, 1);
        _exit(0);
    }
}
static void pinit_on_abort(int sig) { (void)sig; pinit_last_words("abort"); }

extern const char pinit_inittab_names[];

__attribute__((constructor)) static void pinit_early(void) {
    /* Keep the inittab's names (pinit_inittab.c) in the binary: --gc-sections would drop them. */
    __asm__ volatile("" : : "r"(pinit_inittab_names));
    if (getpid() == 1) {
        mkdir("/proc", 0555);
        /* A second proc mount would stack rather than fail; there is none this early. */
        mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
        atexit(pinit_at_exit);
        signal(SIGABRT, pinit_on_abort);
        pinit_block_signals();
        pinit_early_start();
        pinit_slow_steps(getenv("PINIT_EARLY") != NULL);   /* early start ran every step */
    }
    PyImport_AppendInittab("_pinit_sys", PyInit__pinit_sys);
    PyImport_AppendInittab("_cffi_backend", PyInit__cffi_backend);
}
