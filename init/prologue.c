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
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <net/if.h>
#include <sys/syscall.h>
#include <time.h>
#include <linux/sched.h>
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
   Python init sets up besides the early file systems and the kernel modules it lists (no data
   partition, no device rules, no other user, nothing to wait for): then this prologue loads
   those modules, sets up those file systems and starts the service before the interpreter
   starts, which under emulation takes tens of millions of instructions. The service runs at
   nice PINIT_EARLY_NICE until the Python init has adopted it (PINIT_EARLY=pid,-1 in its
   environment) and reset it.
   The record's format is init/early.py's. */
static int pinit_load_module(const char *path, const char *params) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    long rc;
    if (fd < 0) return -1;
    rc = syscall(SYS_finit_module, fd, params, 0);
    close(fd);
    return rc == 0 || errno == EEXIST ? 0 : -1;
}

/* fork(), the child already in `cgroup` (init/cgroup.py's, made here; "" = none): clone3 with
   CLONE_INTO_CGROUP. Joining after the fork (writing cgroup.procs) takes the kernel's
   threadgroup lock for writing, which waits for an RCU grace period until the slow cgroup2
   options are on: milliseconds the service would wait before its first instruction. Where
   clone3 is refused, the child joins the old way. Safe as a raw fork: nothing but this thread
   exists yet, and the child only makes system calls until it execs. */
static pid_t pinit_fork_into(const char *cgroup) {
    struct clone_args args;
    int dir = -1;
    long pid;
    if (*cgroup) {
        mkdir(cgroup, 0755);
        dir = open(cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    }
    if (dir >= 0) {
        memset(&args, 0, sizeof args);
        args.flags = CLONE_INTO_CGROUP;
        args.exit_signal = SIGCHLD;
        args.cgroup = (unsigned long long)dir;
        pid = syscall(SYS_clone3, &args, sizeof args);
        if (pid >= 0) {
            if (pid > 0) close(dir);
            return (pid_t)pid;
        }
        close(dir);
    }
    pid = fork();
    if (pid == 0 && *cgroup) {
        char procs[4096];
        int cg;
        snprintf(procs, sizeof procs, "%s/cgroup.procs", cgroup);
        cg = open(procs, O_WRONLY | O_CLOEXEC);
        if (cg >= 0) {
            write(cg, "0", 1);
            close(cg);
        }
    }
    return (pid_t)pid;
}

static void pinit_loopback_up(void) {
    struct ifreq ifr;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return;
    memset(&ifr, 0, sizeof ifr);
    strcpy(ifr.ifr_name, "lo");
    if (ioctl(fd, SIOCGIFFLAGS, &ifr) == 0) {
        ifr.ifr_flags |= IFF_UP;
        ioctl(fd, SIOCSIFFLAGS, &ifr);
    }
    close(fd);
}

static void pinit_early_start(void) {
    static char buf[PINIT_EARLY_BYTES];
    static char *field[PINIT_EARLY_FIELDS];
    char *argv[PINIT_EARLY_MAX + 1], *envp[PINIT_EARLY_MAX + 1], **cmd;
    char cmdline[4096], handover[64], times[PINIT_EARLY_MODULES * 48];
    size_t times_len = 0;
    int fd, nf = 0, modc, argc, envc, i;
    ssize_t n;
    fd = open("/proc/cmdline", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        n = read(fd, cmdline, sizeof cmdline - 1);
        close(fd);
        cmdline[n > 0 ? n : 0] = 0;
        /* A person asked for the shell, another mode or another host name: leave everything to
           the Python init. */
        if (strstr(cmdline, "pinit.shell") || strstr(cmdline, "pinit.mode") ||
            strstr(cmdline, "pinit.hostname"))
            return;
    }
    fd = open(PINIT_EARLY_PATH, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return;
    buf[n] = 0;
    for (char *p = buf; p < buf + n && nf < PINIT_EARLY_FIELDS; p += strlen(p) + 1)
        field[nf++] = p;
    if (nf < 3 || strcmp(field[0], PINIT_EARLY_MAGIC) != 0) return;
    modc = atoi(field[2]);
    if (modc < 0 || modc > PINIT_EARLY_MODULES || 3 + 2 * modc + 4 > nf) return;
    cmd = field + 3 + 2 * modc;   /* program, cwd, cgroup, argc, argv..., envc, env... */
    nf -= 3 + 2 * modc;
    argc = atoi(cmd[3]);
    if (argc < 1 || argc > PINIT_EARLY_MAX || 4 + argc >= nf) return;
    envc = atoi(cmd[4 + argc]);
    if (envc < 0 || envc > PINIT_EARLY_MAX || 5 + argc + envc > nf) return;
    for (i = 0; i < argc; i++) argv[i] = cmd[4 + i];
    argv[argc] = NULL;
    for (i = 0; i < envc; i++) envp[i] = cmd[5 + argc + i];
    envp[envc] = NULL;

    /* The modules first, before any mount: one that fails leaves the whole boot to the Python
       init, which meets the same failure, names it and applies `module_failure`. Each load's
       start and end on CLOCK_BOOTTIME go to the Python init's timeline (PINIT_EARLY_MODULES). */
    for (i = 0; i < modc; i++) {
        struct timespec t0, t1;
        clock_gettime(CLOCK_BOOTTIME, &t0);
        if (pinit_load_module(field[3 + 2 * i], field[4 + 2 * i]) != 0) return;
        clock_gettime(CLOCK_BOOTTIME, &t1);
        if (times_len < sizeof times - 64)
            times_len += (size_t)snprintf(times + times_len, sizeof times - times_len,
                                          "%s%ld.%09ld %ld.%09ld", i ? "," : "", (long)t0.tv_sec,
                                          t0.tv_nsec, (long)t1.tv_sec, t1.tv_nsec);
    }
    /* The service waits for these: its cgroup's file system plainly, its options later. */
    pinit_early_steps_run(PINIT_STEPS, 1);
    /* What the Python init's "system" step does first, so that the service sees it too: the
       host name, and 127.0.0.1 (the kernel gives lo its address when lo comes up). */
    if (*field[1]) sethostname(field[1], strlen(field[1]));
    pinit_loopback_up();
    /* Its stdout and stderr stay on the console PID 1 got from the kernel: the first lines
       appear at once, not when the Python init is up to copy them (its later runs go through
       the supervisor's pipe, into the in-memory log too). */
    /* PID 1 waits until the service has exec'd (the pipe's write end closes then, or when the
       child fails and exits): the service gets that far at full speed, not on the scheduler
       ticks the interpreter's start-up, at a higher priority, leaves it (4 ms each, HZ=250). */
    int execd[2] = {-1, -1};
    if (pipe2(execd, O_CLOEXEC) < 0) execd[0] = execd[1] = -1;
    pid_t pid = pinit_fork_into(cmd[2]);
    if (pid < 0) return;
    if (pid == 0) {
        int null = open("/dev/null", O_RDONLY);
        close(execd[0]);
        /* A little less CPU than PID 1 until the Python init adopts it: a service that spins
           from its first instruction must not starve the init's set-up. */
        setpriority(PRIO_PROCESS, 0, PINIT_EARLY_NICE);
        setsid();
        signal(SIGABRT, SIG_DFL);
        sigprocmask(SIG_SETMASK, &pinit_boot_mask, NULL);
        dup2(null, 0);
        if (chdir(cmd[1]) == 0)
            execve(cmd[0], argv, envp);
        dprintf(2, "pinit: %s: cannot execute: %s\n", cmd[0], strerror(errno));
        _exit(127);
    }
    if (execd[1] >= 0) {
        char byte;
        close(execd[1]);
        while (read(execd[0], &byte, 1) < 0 && errno == EINTR) {}
        close(execd[0]);
    }
    snprintf(handover, sizeof handover, "%d,-1", (int)pid);
    setenv("PINIT_EARLY", handover, 1);
    if (times_len) setenv("PINIT_EARLY_MODULES", times, 1);
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
