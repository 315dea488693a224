"""Early start, defined once: the record the builder writes and the C prologue reads, and the
early file systems the prologue mounts before it starts the first service.

The C prologue (init/prologue.c) runs in the init binary before the Python interpreter. When
the builder wrote /etc/pinit.early, it sets up every step of init.rootfs.EARLY_ROOTFS (the same
list the Python init runs; it then finds them done) and starts the first service, so the
service never sees a file system mounted over it later. Here: the record's encoding and
decoding, and the C header (`c_header()`) through which the prologue reads both.

Record: NUL-terminated fields MAGIC, hostname, modc, (module path, params)..., program, cwd,
cgroup, argc, argv..., envc, env... The host name is set and the loopback interface brought up
before the service starts, as the Python init does in its "system" step. The modules are the configured `[kernel] modules` with their dependencies,
in the order the init's resolver gives (resolved by the builder, which ships them): the prologue
loads each with finit_module before anything else, and starts nothing unless every one loaded
(or was loaded already); the Python init then finds them loaded, or meets the failure itself
and applies `module_failure`. The cgroup is the service's own (init/cgroup.py), which the child
joins before it execs; "" = none.
"""

from __future__ import annotations

from init.frozen import frozen
from init.rootfs import EARLY_ROOTFS, Dir, Mount, Step, Symlink

MAGIC = "pinit-early-4"
PATH = "/etc/pinit.early"
MAX_ARGS = 256  # argv and env entries, each (the prologue's arrays)
MAX_MODULES = 64  # modules loaded before the service (the prologue's array)
MAX_BYTES = 32767  # the whole record (the prologue's buffer, less its final NUL)
# The early service's nice value until the Python init adopts it: weight 335 against PID 1's
# 1024, so a service that spins from its first instruction leaves the init about 3/4 of one CPU
# (its set-up within 1.5 times its time without early start) and still prints its first line
# before the interpreter is up.
NICE = 5
FIELDS = 2 * MAX_MODULES + 2 * MAX_ARGS + 9  # the most fields the prologue reads


@frozen
class Record:
    program: str
    cwd: str
    cgroup: str
    argv: tuple[str, ...]
    env: tuple[str, ...]
    modules: tuple[tuple[str, str], ...] = ()  # (absolute .ko path, parameters), in load order
    hostname: str = ""  # "" = leave it to the Python init


def encode(record: Record) -> bytes:
    """The record's bytes; ValueError when the prologue could not read it back whole."""
    fields = [
        MAGIC,
        record.hostname,
        str(len(record.modules)),
        *(part for module in record.modules for part in module),
        record.program,
        record.cwd,
        record.cgroup,
        str(len(record.argv)),
        *record.argv,
        str(len(record.env)),
        *record.env,
    ]
    if any("\0" in f for f in fields):
        raise ValueError("a NUL byte in the command, the environment or a module's parameters")
    if not 1 <= len(record.argv) <= MAX_ARGS or len(record.env) > MAX_ARGS:
        raise ValueError(f"more than {MAX_ARGS} arguments or environment entries")
    if len(record.modules) > MAX_MODULES:
        raise ValueError(f"more than {MAX_MODULES} modules to load first")
    data = b"".join(f.encode() + b"\0" for f in fields)
    if len(data) > MAX_BYTES:
        raise ValueError(
            f"the command and environment take {len(data)} bytes (at most {MAX_BYTES})"
        )
    return data


def decode(data: bytes) -> Record | None:
    """What the prologue reads from `data`, by the same rules; None where it starts nothing."""
    fields = data[:MAX_BYTES].split(b"\0")
    if fields[-1] == b"":
        fields.pop()  # the final field's NUL, not an empty field
    fields = fields[:FIELDS]
    if len(fields) < 3 or fields[0] != MAGIC.encode():
        return None
    try:
        modc = int(fields[2])
        at = 3 + 2 * modc  # the program
        ok = 0 <= modc <= MAX_MODULES and at + 4 <= len(fields)
        argc = int(fields[at + 3]) if ok else -1
        ok = ok and 1 <= argc <= MAX_ARGS and at + 4 + argc < len(fields)
        envc = int(fields[at + 4 + argc]) if ok else -1
    except ValueError:
        return None
    if not 0 <= envc <= MAX_ARGS or at + 5 + argc + envc > len(fields):
        return None
    text = [f.decode() for f in fields]
    return Record(
        text[at],
        text[at + 1],
        text[at + 2],
        tuple(text[at + 4 : at + 4 + argc]),
        tuple(text[at + 5 + argc : at + 5 + argc + envc]),
        tuple((text[3 + 2 * i], text[4 + 2 * i]) for i in range(modc)),
        text[1],
    )


def module_times(value: str) -> list[tuple[float, float]]:
    """The prologue's PINIT_EARLY_MODULES, "start end,start end": each module's load on
    CLOCK_BOOTTIME, in the record's order; [] for anything else."""
    try:
        pairs = [item.split() for item in value.split(",") if item]
        return [(float(start), float(end)) for start, end in pairs]
    except ValueError:
        return []


def _c(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _c_step(step: Step) -> str:
    if isinstance(step, Mount):
        return (
            f"{{'m', {_c(step.source)}, {_c(step.target)}, {_c(step.fstype)}, {step.flags}UL, "
            f"{_c(step.data)}, {_c(step.unless)}, 0755, {int(step.slow)}}}"
        )
    if isinstance(step, Dir):
        return f'{{\'d\', "", {_c(step.path)}, "", 0, "", "", 0{step.mode:o}, 0}}'
    if isinstance(step, Symlink):
        return f'{{\'l\', {_c(step.target)}, {_c(step.path)}, "", 0, "", "", 0, 0}}'
    raise TypeError(f"the prologue has no C for {step!r}")


def c_header(steps: tuple[Step, ...] = EARLY_ROOTFS) -> str:
    """The constants and the early steps, as C, for init/prologue.c."""
    rows = ",\n    ".join(_c_step(step) for step in steps)
    return (
        f"/* Generated from init/early.py: do not edit. */\n"
        f"#define PINIT_EARLY_MAGIC {_c(MAGIC)}\n"
        f"#define PINIT_EARLY_PATH {_c(PATH)}\n"
        f"#define PINIT_EARLY_MAX {MAX_ARGS}\n"
        f"#define PINIT_EARLY_MODULES {MAX_MODULES}\n"
        f"#define PINIT_EARLY_FIELDS {FIELDS}\n"
        f"#define PINIT_EARLY_BYTES {MAX_BYTES + 1}\n"
        f"#define PINIT_EARLY_NICE {NICE}\n"
        "struct pinit_step { char kind; const char *source, *target, *fstype;\n"
        "                    unsigned long flags; const char *data, *unless; int mode;\n"
        "                    int slow; };\n"
        f"static const struct pinit_step pinit_early_steps[] = {{\n    {rows}\n}};\n"
    )
