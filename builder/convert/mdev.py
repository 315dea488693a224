"""A classic image's /etc/mdev.conf as pinit's [[device]] rules, where the rule is simple.

mdev.conf lines are `[-]<regex> <user>:<group> <mode> [=name|>link|!] [@|$|*command]`. A
device regex made of literal characters, `[...]` classes, `.*` and a trailing `[...]*`,
`[...]+` or `.*` becomes a glob; owner and group names are looked up in the old image's
/etc/passwd and /etc/group. `>link` becomes the rule's symlink. Commands that mount become a
note (pinit automounts labelled disks with [init] automount); anything else is listed with its
line number and the reason, never dropped silently.
"""

from __future__ import annotations

import re

from init.config import Device

_CLASS = r"\[[^\]]+\]"
_PIECE = re.compile(rf"({_CLASS}|\.\*|[A-Za-z0-9_:-])")
_TAIL = re.compile(rf"({_CLASS}|[A-Za-z0-9_-])[*+]$")


def glob_of(regex: str) -> str | None:
    """The glob matching the same names as the simple regex `regex`, or None."""
    text = regex.lstrip("^").rstrip("$")
    tail = ""
    m = _TAIL.search(text)
    if m:
        text, tail = text[: m.start()], "*"
    out, pos = [], 0
    while pos < len(text):
        piece = _PIECE.match(text, pos)
        if piece is None:
            return None
        out.append("*" if piece.group(1) == ".*" else piece.group(1))
        pos = piece.end()
    return "".join(out) + tail or None


def _ids(text: str) -> dict[str, int]:
    ids = {}
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) >= 3 and fields[2].isdigit():
            ids[fields[0]] = int(fields[2])
    return ids


def translate(conf: str, passwd: str = "", group: str = "") -> tuple[list[Device], list[str]]:
    """The rules and one report line per translated, noted or untranslated mdev.conf line."""
    users, groups = {"root": 0, **_ids(passwd)}, {"root": 0, **_ids(group)}
    rules: list[Device] = []
    report: list[str] = []
    for number, raw in enumerate(conf.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        where = f"/etc/mdev.conf line {number} `{raw.strip()}`"
        words = line.split()
        if len(words) < 3 or ":" not in words[1]:
            report.append(f"{where}: NOT translated: not of the form `regex user:group mode`")
            continue
        regex, owner, mode = words[0].lstrip("-"), words[1], words[2]
        extra = words[3:]
        if "=" in regex.split("[")[0] or regex.startswith("$") or regex.startswith("@"):
            report.append(
                f"{where}: NOT translated: environment and major,minor matches have "
                "no [[device]] form; write the rule by hand"
            )
            continue
        pattern = glob_of(regex)
        user, _, grp = owner.partition(":")
        uid = int(user) if user.isdigit() else users.get(user)
        gid = int(grp) if grp.isdigit() else groups.get(grp)
        if pattern is None:
            report.append(
                f"{where}: NOT translated: the regex `{regex}` is not a simple glob; "
                "write the [[device]] rule by hand"
            )
            continue
        if uid is None or gid is None:
            report.append(
                f"{where}: NOT translated: {owner} is not in the old /etc/passwd and "
                "/etc/group; add [[user]]/[[group]] and the rule by hand"
            )
            continue
        if not re.fullmatch(r"[0-7]{3,4}", mode):
            report.append(f"{where}: NOT translated: mode {mode} is not octal")
            continue
        symlink = ""
        for word in extra:
            if word.startswith(">"):
                symlink = word[1:]
            elif word.startswith(("@", "$", "*")):
                command = word[1:] + " " + " ".join(extra[extra.index(word) + 1 :])
                if "mount" in command:
                    report.append(
                        f"{where}: noted: its mount command is pinit's automount "
                        '([init] automount = "/media")'
                    )
                else:
                    report.append(
                        f"{where}: NOT translated: the command `{command.strip()}`; "
                        "pinit runs no commands on device events"
                    )
                break
            elif word.startswith(("=", "!")):
                report.append(f"{where}: NOT translated: renaming or hiding the node")
        rules.append(Device(kernel=pattern, uid=uid, gid=gid, mode=int(mode, 8), symlink=symlink))
        report.append(
            f'{where}: translated: [[device]] kernel = "{pattern}" '
            f"{uid}:{gid} {mode}" + (f' symlink = "{symlink}"' if symlink else "")
        )
    return rules, report
